import json
import re
from pathlib import Path

import pydantic
import pytest

from alignrec.config import (
    DataConfig,
    LLMConfig,
    RunConfig,
    SASRecConfig,
    Section,
    builtin_config_names,
    check_config,
    load_config,
    parse_override,
    parse_section,
    recorded_dict,
    save_config,
    to_dict,
    unwrap,
)
from alignrec.config_reference import field_rules
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
    with pytest.raises(ConfigError, match=r"unknown setting 'llm.tasks.sequentiall'; valid settings here: "
                                          r"sequential, item_to_text, text_to_item, query_to_item, preference, negative$"):
        load_config(None, ["llm.tasks.sequentiall.weight=1"])
    with pytest.raises(ConfigError, match=r"unknown setting 'extends'; valid settings here: name, seed, threads"):
        load_config(None, ["extends=x"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sasrec.epochs=many", r"sasrec.epochs: expected int, got 'many'"),  # no string for a number
        ("sasrec.epochs=true", r"sasrec.epochs: expected int, got True"),  # a bool is no int
        ("sasrec.epochs=2.0", r"sasrec.epochs: expected int, got 2.0"),
        ("sasrec.lr=true", r"sasrec.lr: expected float, got True"),
        ("sasrec.tied=1", r"sasrec.tied: expected true or false, got 1"),
        ("sasrec.tied=null", r"sasrec.tied: expected true or false, got None"),
        ("name=3", r"name: expected str, got 3"),
        ("eval.ks=5", r"eval.ks: expected a list, got 5"),
        ("eval.ks=[1,x]", r"eval.ks\[1\]: expected int, got 'x'"),
        ("data.columns=[a]", r"data.columns: expected a mapping, got \['a'\]"),
        ("data.columns={user: 3}", r"data.columns.user: expected str, got 3"),
        ("data.item_columns={1: title}", r"data.item_columns: expected str keys, got 1"),
        ("sasrec=3", r"sasrec: expected a mapping of settings, got 3"),
    ],
)
def test_wrong_type_is_reported(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^defaults \+ overrides \({re.escape(override)}\): {message}$"):
        load_config(None, [override])


def test_int_is_accepted_for_float() -> None:
    lr = load_config(None, ["sasrec.lr=1"]).sasrec.lr
    assert lr == 1.0 and isinstance(lr, float)
    assert isinstance(load_config("default").sasrec.max_minutes, float)  # written `max_minutes: 8`


def test_a_wrong_key_or_type_is_reported_before_a_broken_rule() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting 'sasrec.hiden'"):
        load_config(None, ["sasrec.heads=0", "sasrec.hiden=3"])
    with pytest.raises(ConfigError, match=r"sasrec.epochs: expected int"):
        load_config(None, ["sasrec.heads=0", "sasrec.epochs=x"])


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


def _unchecked(cls: type[Section], prefix: str = "") -> set[str]:
    """Settings that are neither a bool, a section nor a field with a rule (a constraint, a choice,
    a ``check_<name>`` validator) that docs/config.md lists."""
    names = set()
    for name, info in cls.model_fields.items():
        annotation = unwrap(info.annotation)[0]
        if isinstance(annotation, type) and issubclass(annotation, Section):
            names |= _unchecked(annotation, f"{prefix}{name}.")
        elif annotation is not bool and not field_rules(cls, name, info):
            names.add(f"{prefix}{name}")
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
        (["models=[mostpop, sasrec, llm, harmonized]", "sasrec.train_on=train+valid"],
         r"models=\[.*\]: the harmonized model fits its weight on validation users, which sasrec.train_on=train\+valid "
         r"trains on; set sasrec.train_on=train, or give harmonized.weight a number"),
        (["llm.eval_steps=7"], r"llm.eval_steps=7: must be a multiple of llm.log_steps=5 \(validation runs at a"),
        (["sasrec.similarity=foo"], r"sasrec.similarity='foo': choose one of dot, cosine$"),
        (["llm.bf16=maybe"], r"llm.bf16='maybe': choose true, false or auto$"),
        (["llm.bf16=1"], r"llm.bf16=1: choose true, false or auto$"),
        (["sasrec.dropout=1"], r"sasrec.dropout=1.0: must be in \[0, 1\)$"),  # shown as the float it loads as
        (["harmonized.weight=1.5"], r"harmonized.weight=1.5: must be in \[0, 1\]$"),
        (["tokenize.codebook_size=1"], r"tokenize.codebook_size=1: must be at least 2$"),
        (["eval.ks=[5, 0]"], r"eval.ks=\[5, 0\]: 0: must be at least 1$"),
        (["device=tpu"], r"device='tpu': choose auto, cpu or cuda\[:N\]$"),
        (["data.separator=;;"], r"data.separator=';;': give one character"),
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
     ["data.encoding=latin-1"], ["data.separator=tab"], ["llm.eval_steps=0"], ["sasrec.init_std=null"],
     ["sasrec.exclude_seen=true"], ["sasrec.heads=4", "sasrec.hidden=32"],
     ["models=[mostpop, sasrec, llm, harmonized]", "sasrec.train_on=train+valid", "harmonized.weight=0.5"]],
)
def test_valid_combinations_pass(overrides) -> None:
    load_config(None, overrides)


def test_a_section_is_checked_when_built_and_again_by_check_config() -> None:
    with pytest.raises(pydantic.ValidationError):  # in code: a bug, with pydantic's own message
        DataConfig(max_history=-1)
    with pytest.raises(ConfigError, match=r"^data.max_history=-1: must be at least 0$"):
        parse_section(DataConfig, {"max_history": -1}, "data")  # from a user (the CLI's flags): one line
    config = DataConfig()
    check_config(config)
    config.max_history = -1  # assignments are not checked...
    with pytest.raises(ConfigError, match=r"^data.max_history=-1: must be at least 0$"):
        check_config(config, "data")  # ...until the section is used
    run = RunConfig()
    run.sasrec.heads = 3
    with pytest.raises(ConfigError, match=r"^sasrec.hidden=64: must be a multiple of sasrec.heads=3 "):
        check_config(run)


def test_a_copy_takes_changes_and_each_config_its_own_lists() -> None:
    config = SASRecConfig()
    assert config.model_copy(update={"loss": "bce"}).loss == "bce" and config.loss == "ce"
    assert RunConfig().eval.ks is not RunConfig().eval.ks  # a list default is copied for each config


FROZEN_DICTS = Path(__file__).parent / "fixtures" / "config_dicts.json"
"""``to_dict`` of the defaults and of each preset as the dataclass config (commit 66403f8) made them,
but for deliberate changes since (``llm.bf16`` now ``auto``; the new ``harmonized.fit_p`` and
``llm.code_prior``; ``tracking``, ``serve.workers``, ``serve.follow_s``, which no stage records; LoRA
dropout off by default, and the default run's 100 LLM steps, with alignrec 0.3.0; ``llm.decode_shared_cache``,
the same lists by another KV cache; ``llm.segment_attention``, the same values by another attention;
``llm.norm_casts``, the same forward by one cast per norm; ``llm.fused_lora``, the same sum in one matmul; ``llm.compile_elementwise``, the same norms, gates and RoPE in fused kernels;
``llm.code_softmax``, each code normalised over its level, a new objective; and the default run's LLM
steps, what its 20 minutes buy as training gets faster):
stage fingerprints hash these dicts, so a run made then must still resume as done."""


@pytest.mark.parametrize("name", ["RunConfig()", "default", "ml-1m", "full", "instruments"])
def test_to_dict_is_what_earlier_runs_recorded(name: str) -> None:
    config = RunConfig() if name == "RunConfig()" else load_config(name)
    # repr tells 1 from 1.0, a list from a tuple, and one key order from another
    assert repr(to_dict(config)) == repr(json.loads(FROZEN_DICTS.read_text(encoding="utf-8"))[name])


def test_a_setting_added_at_the_old_behaviour_is_recorded_only_when_changed() -> None:
    """Stage records leave out llm.code_prior at its default, so runs recorded before it existed resume."""
    assert "code_prior" in to_dict(LLMConfig()) and "code_prior" not in recorded_dict(LLMConfig())
    assert recorded_dict(LLMConfig(code_prior=1.0))["code_prior"] == 1.0
    assert recorded_dict(SASRecConfig()) == to_dict(SASRecConfig())
