"""Stale results: a stage made by other code is recomputed or refused; every run records its code."""

from __future__ import annotations

import importlib
import platform

import pytest

import alignrec
from alignrec import provenance
from alignrec.cli import EXIT_USER_ERROR, main
from alignrec.io import read_json


def run_args(lcrec_dir, out) -> list[str]:
    return ["run", "--out", str(out), "--set", "models=[mostpop, sasrec]",
            "--set", f"data.path={lcrec_dir}", "--set", "data.format=lcrec",
            "--set", "sasrec={hidden: 8, layers: 1, heads: 1, max_len: 10, epochs: 2, eval_every: 1}"]


@pytest.fixture
def other_code(monkeypatch):
    """Make the running code look like another release (alignrec and torch versions changed)."""

    # Imported before provenance is patched, or they would bind the patched function for good.
    modules = [importlib.import_module(name) for name in
               ("alignrec.pipeline", "alignrec.train.sasrec", "alignrec.serve.precompute")]

    def switch(alignrec_version: str = "99.0.0", torch_version: str = "0.0.1") -> None:
        versions = {**provenance.code_versions(), "alignrec": alignrec_version, "torch": torch_version}
        monkeypatch.setattr(provenance, "code_versions", lambda: versions)
        for module in modules:
            monkeypatch.setattr(module, "code_versions", lambda: versions)

    return switch


def test_versions_name_alignrec_and_the_libraries_that_change_results() -> None:
    versions = provenance.code_versions()
    assert versions["alignrec"] == alignrec.__version__
    assert set(versions) == {"alignrec", *provenance.RESULT_LIBRARIES}
    assert versions["torch"].startswith("2.")


def test_every_run_records_its_code_and_machine(lcrec_dir, tmp_path) -> None:
    assert main(run_args(lcrec_dir, tmp_path / "run")) == 0
    for path in ("summary.json", "mostpop/metrics.json", "sasrec/metrics.json"):
        env = read_json(tmp_path / "run" / path)["environment"]
        assert env["alignrec"] == alignrec.__version__ and env["python"] == platform.python_version()
        assert {"torch", "transformers", "peft", "git_commit", "cpu_capability"} <= set(env)
    # The tests run from a checkout: the commit is recorded (a 40-hex sha, maybe marked dirty).
    commit = read_json(tmp_path / "run" / "summary.json")["environment"]["git_commit"]
    assert commit is None or len(commit.split("+")[0]) == 40


def test_a_rerun_by_other_code_recomputes_cheap_stages_and_refuses_the_sasrec_training(
    lcrec_dir, tmp_path, capsys, other_code
) -> None:
    out = tmp_path / "run"
    assert main(run_args(lcrec_dir, out)) == 0
    capsys.readouterr()
    assert main(run_args(lcrec_dir, out)) == 0
    assert "mostpop: done earlier, skipped" in capsys.readouterr().err  # same code: nothing redone

    records = [(out / "sasrec" / name).read_text() for name in ("stage.json", "evaluation.json")]
    other_code()
    code = main(run_args(lcrec_dir, out))
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR, err
    assert "mostpop's evaluation in" in err and "mostpop: done earlier" not in err  # recomputed
    assert read_json(out / "mostpop" / "metrics.json")["config"]["code"]["alignrec"] == "99.0.0"
    refusal = [line for line in err.splitlines() if "sasrec's training made by other code" in line]
    assert len(refusal) == 1 and "Traceback" not in err
    assert f"alignrec {alignrec.__version__} -> 99.0.0" in refusal[0] and f"delete {out / 'sasrec'}" in refusal[0]

    assert [(out / "sasrec" / name).read_text() for name in ("stage.json", "evaluation.json")] == records

    # Following the message recomputes SASRec with this code.
    import shutil

    shutil.rmtree(out / "sasrec")
    assert main(run_args(lcrec_dir, out)) == 0
    assert read_json(out / "sasrec" / "metrics.json")["config"]["code"]["alignrec"] == "99.0.0"


def test_a_checkpoint_from_before_settings_were_recorded_is_refused(lcrec_dir, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(run_args(lcrec_dir, out)) == 0
    for record in ("stage.json", "evaluation.json"):  # as an alignrec that kept no record left it
        (out / "sasrec" / record).unlink()
    capsys.readouterr()
    assert main(run_args(lcrec_dir, out)) == EXIT_USER_ERROR
    assert "sasrec's training made with no record of its settings" in capsys.readouterr().err
    assert (out / "sasrec" / "checkpoint.pt").is_file()  # nothing deleted
