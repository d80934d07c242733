import dataclasses
import json
import typing
from pathlib import Path

import pytest

from alignrec.config import (
    DataConfig,
    RunConfig,
    builtin_config_names,
    check_config,
    load_config,
    parse_override,
    save_config,
    to_dict,
)
from alignrec.errors import ConfigError


def test_defaults_file_and_overrides_stack(tmp_path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("name: x\nsasrec:\n  hidden: 32\n  lr: 0.01\n")
    config = load_config(file, ["sasrec.epochs=3", "data.dataset=ml-1m", "eval.ks=[1,10]"])
    assert config.name == "x" and config.sasrec.hidden == 32 and config.sasrec.lr == 0.01
    assert config.sasrec.epochs == 3 and config.data.dataset == "ml-1m" and config.eval.ks == [1, 10]
    assert config.sasrec.layers == RunConfig().sasrec.layers  # untouched defaults stay


def test_presets_load_by_name() -> None:
    assert load_config("default").data.dataset == "ml-100k"


def test_full_preset_is_the_default_pipeline_trained_longer() -> None:
    default, full = load_config("default"), load_config("full")
    assert full.models == default.models and full.data == default.data and full.tokenize == default.tokenize
    assert full.llm.tasks == default.llm.tasks and full.llm.token_init == default.llm.token_init
    assert full.llm.max_steps == 0 and full.llm.max_minutes == 0 and full.llm.epochs >= 3
    assert full.llm.test_users == 0 and full.sasrec.max_minutes == 0  # every test user; no time caps


def test_extends_stacks_a_file_on_a_preset_then_overrides(tmp_path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("extends: ml-1m\nname: mine\nsasrec:\n  hidden: 32\n")
    config, preset = load_config(file, ["sasrec.lr=0.01"]), load_config("ml-1m")
    assert config.name == "mine" and config.sasrec.hidden == 32 and config.sasrec.lr == 0.01
    assert config.data == preset.data and config.sasrec.relative_bias == preset.sasrec.relative_bias
    assert config.sasrec.relative_bias != RunConfig().sasrec.relative_bias  # came from the preset


def test_extends_reads_a_relative_file_beside_the_extending_one(tmp_path) -> None:
    (tmp_path / "base.yaml").write_text("seed: 7\nsasrec:\n  hidden: 16\n  layers: 1\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nsasrec:\n  layers: 3\n")
    config = load_config(tmp_path / "child.yaml")
    assert (config.seed, config.sasrec.hidden, config.sasrec.layers) == (7, 16, 3)


def test_extends_loop_and_unknown_base_are_clear_errors(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match=r"'extends' loops back"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nothing-here\n")
    with pytest.raises(ConfigError, match=r"c.yaml: extends config 'nothing-here': no such file"):
        load_config(tmp_path / "c.yaml")


def test_unknown_key_names_the_file_key_and_valid_keys(tmp_path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("sasrec:\n  hiden: 32\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown setting 'sasrec.hiden'; valid settings here: hidden"):
        load_config(file)


def test_wrong_type_is_reported() -> None:
    with pytest.raises(ConfigError, match=r"sasrec.epochs: expected int, got 'many'"):
        load_config(None, ["sasrec.epochs=many"])


def test_int_is_accepted_for_float() -> None:
    assert load_config(None, ["sasrec.lr=1"]).sasrec.lr == 1.0


def test_bad_yaml_names_the_line(tmp_path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("name: x\nsasrec: [\n")
    with pytest.raises(ConfigError, match=r"c.yaml line \d+: not valid YAML"):
        load_config(file)


def test_missing_config_lists_presets() -> None:
    with pytest.raises(ConfigError, match=r"no such file, and not a preset \(presets: .*default"):
        load_config("nope.yaml")


def test_override_syntax() -> None:
    assert parse_override("a.b=2") == {"a": {"b": 2}}
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("a.b")


def test_saved_config_loads_back_identically(tmp_path) -> None:
    config = load_config(None, ["sasrec.epochs=7", "data.columns={user: u, item: i}"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


@pytest.mark.parametrize("name", builtin_config_names())
def test_every_preset_passes_its_own_rules(name: str) -> None:
    assert isinstance(load_config(name), RunConfig)


def _unchecked(cls: type, prefix: str = "") -> set[str]:
    """Settings that are neither a bool, a section nor a field with a declared rule."""
    names = set()
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        key = f"{prefix}{item.name}"
        if dataclasses.is_dataclass(hints[item.name]):
            names |= _unchecked(hints[item.name], f"{key}.")
        elif hints[item.name] is not bool and not item.metadata.get("checks"):
            names.add(key)
    return names


def test_every_number_and_choice_has_a_rule() -> None:
    # free text (names, paths, model names resolved later) and any number on a rating scale
    assert _unchecked(RunConfig) == {
        "name", "data.path", "data.min_rating", "data.item_path", "data.item_columns", "tokenize.align.llm",
        "llm.backbone", "llm.lora.target_modules", "serve.model", "serve.api_key",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sasrec.heads=3"], r"sasrec.hidden=64: must be a multiple of sasrec.heads=3"),
        (["sasrec.heads=0"], r"sasrec.heads=0: must be at least 1"),  # not a division by zero in hidden's rule
        (["sasrec.exclude_seen=true", "sasrec.loss=bce"], r"sasrec.exclude_seen=True: needs sasrec.loss=ce"),
        (["data.path=x.csv"], r"data.format=None: data.path is set, so say how to read it: recbole, lcrec, csv"),
        (["data.dataset=ml-20m"], r"data.dataset='ml-20m': not a built-in dataset; choose one of ml-100k, ml-1m"),
        (["data.columns={usr: a}"], r"data.columns=\{'usr': 'a'\}: map only user, item, timestamp, rating"),
        (["models=[llm]"], r"models=\['llm'\]: the llm is built from sasrec \(tokenize.features=both\); list sasrec before llm"),
        (["models=[]"], r"models=\[\]: give at least one"),
        (["seed=-1"], r"seed=-1: must be in \[0, 4294967295\]"),
        (["sasrec.lr=0"], r"sasrec.lr=0.0: must be above 0"),
        (["data.encoding=base64"], r"data.encoding='base64': not a text encoding"),
        (["tokenize.text_fields=[title, plot]"], r"tokenize.text_fields=\['title', 'plot'\]: 'plot': choose one of"),
    ],
)
def test_rules_name_the_setting_and_the_fix(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


@pytest.mark.parametrize(
    "overrides",
    [["device=cuda:1"], ["data.path=x", "data.dataset=mine", "data.format=csv"], ["models=[llm]", "tokenize.features=text"],
     ["data.encoding=latin-1"], ["data.separator=tab"], ["llm.eval_steps=0"], ["sasrec.init_std=null"]],
)
def test_valid_combinations_pass(overrides) -> None:
    load_config(None, overrides)


def test_check_config_checks_a_section_built_in_code() -> None:
    check_config(DataConfig())
    with pytest.raises(ConfigError, match=r"^data.max_history=-1: must be at least 0$"):
        check_config(DataConfig(max_history=-1), "data")


FROZEN_DICTS = Path(__file__).parent / "fixtures" / "config_dicts.json"
"""``to_dict`` of the defaults and of each preset as the dataclass config (commit 66403f8) made them:
stage fingerprints hash these dicts, so a run made then must still resume as done."""


@pytest.mark.parametrize("name", ["RunConfig()", "default", "ml-1m", "full", "instruments"])
def test_to_dict_is_what_earlier_runs_recorded(name: str) -> None:
    config = RunConfig() if name == "RunConfig()" else load_config(name)
    # repr tells 1 from 1.0, a list from a tuple, and one key order from another
    assert repr(to_dict(config)) == repr(json.loads(FROZEN_DICTS.read_text(encoding="utf-8"))[name])
