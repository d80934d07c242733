import pytest

from alignrec.config import RunConfig, load_config, parse_override, save_config
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
