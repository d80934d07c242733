"""The one "done earlier" rule: equal settings skip or resume; other settings are made again, or refused
for a training run, whose files are never touched."""

from __future__ import annotations

import pytest

from alignrec.errors import AlignrecError
from alignrec.provenance import code_versions
from alignrec.rundir import RunDir, claim, finish

SETTINGS = {"data": "abc", "llm": {"lr": 0.001, "history": 20}, "seed": 42, "code": code_versions()}


def test_new_then_resume_then_done(tmp_path) -> None:
    folder = tmp_path / "stage"
    assert claim(folder, SETTINGS, "training", "refuse") == "new"
    assert claim(folder, SETTINGS, "training", "refuse") == "resume"  # begun, not finished
    finish(folder, SETTINGS)
    assert claim(folder, SETTINGS, "training", "refuse") == "done"


def test_a_training_run_with_other_settings_is_refused_naming_them(tmp_path) -> None:
    folder = tmp_path / "llm"
    claim(folder, SETTINGS, "llm's training", "refuse")
    (folder / "checkpoint").write_text("hours of work")
    other = {**SETTINGS, "llm": {"lr": 0.5, "history": 20}, "seed": 1}
    with pytest.raises(AlignrecError, match=r"llm's training made with other llm.lr, seed; use a new --out, or delete"):
        claim(folder, other, "llm's training", "refuse")
    newer = {**code_versions(), "alignrec": "99.0.0", "torch": "9.9"}
    with pytest.raises(AlignrecError, match=r"made by other code \(alignrec [0-9.]+ -> 99.0.0, torch .* -> 9.9\)"):
        claim(folder, {**SETTINGS, "code": newer}, "llm's training", "refuse")
    assert (folder / "checkpoint").read_text() == "hours of work"


def test_outputs_without_a_record_count_as_other_settings(tmp_path) -> None:
    folder = tmp_path / "sasrec"
    folder.mkdir()
    with pytest.raises(AlignrecError, match="with no record of its settings"):
        claim(folder, SETTINGS, "sasrec's training", "refuse", started=True)


def test_cheap_stages_are_made_again(tmp_path) -> None:
    cleared, overwritten = tmp_path / "tokens", tmp_path / "model"
    for folder in (cleared, overwritten):
        claim(folder, SETTINGS, "stage", "refuse")
        finish(folder, SETTINGS)
        (folder / "old").write_text("stale")
    other = {**SETTINGS, "seed": 7}
    assert claim(cleared, other, "item codes", "clear") == "new" and not (cleared / "old").exists()
    assert claim(overwritten, other, "evaluation", "overwrite", record="evaluation.json") == "new"
    assert (overwritten / "old").exists()  # an evaluation rewrites its own files; the rest is kept


def test_the_layout_of_a_run_and_of_one_trained_model(tmp_path) -> None:
    run = RunDir(tmp_path)
    assert run.model("sasrec").metrics == tmp_path / "sasrec" / "metrics.json"
    assert run.model("llm").rankings("test") == tmp_path / "llm" / "rankings_test.jsonl"
    assert (run.data, run.tokens, run.config) == (tmp_path / "data", tmp_path / "tokens", tmp_path / "config.yaml")
    single = RunDir(tmp_path / "out", data=tmp_path / "d", tokens=tmp_path / "t", single="llm")
    assert single.model("llm").path == tmp_path / "out" and single.tokens_given and single.data == tmp_path / "d"

