"""``alignrec report``: every section from a full run, notes for missing inputs, one self-contained file."""

from __future__ import annotations

import base64
import csv
import re
from pathlib import Path

import numpy as np
import pytest

from alignrec.cli import EXIT_USER_ERROR, main
from alignrec.config import RunConfig
from alignrec.errors import AlignrecError
from alignrec.io import write_json
from alignrec.pipeline import run_model
from alignrec.report.build import head_share, write_report
from alignrec.rundir import RunDir
from alignrec.tokenize.artifacts import TokenizerArtifact, save_artifact, token_names
from tests.conftest import make_dataset

PNG = b"\x89PNG\r\n\x1a\n"


def images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


@pytest.fixture
def partial_run(tmp_path: Path) -> Path:
    """data/ (titled items, lengths 3..12) and mostpop/ only: what `alignrec run` leaves for models=[mostpop]."""
    rng = np.random.default_rng(0)
    sequences = {f"u{u}": [f"i{j}" for j in rng.choice(20, size=3 + u % 10, replace=False)] for u in range(40)}
    dataset = make_dataset(sequences, {f"i{i}": {"title": f"Film {i}"} for i in range(20)}, "toy")
    dataset.save(tmp_path / "run" / "data")
    run_model("mostpop", dataset, RunDir(tmp_path / "run"), RunConfig(), progress=False)
    return tmp_path / "run"


def add_llm_and_tokens(run: Path) -> None:
    """An llm/ folder (metrics on a user subset, a training log) and tokens/ (2 levels of 4 codes)."""
    metrics = (run / "mostpop" / "metrics.json").read_text()
    (run / "llm").mkdir()
    assert '"user_subset": false' in metrics
    (run / "llm" / "metrics.json").write_text(
        metrics.replace('"model": "mostpop"', '"model": "llm"').replace('"user_subset": false', '"user_subset": true'))
    (run / "llm" / "rankings_test.jsonl").write_text('{"user": "u1", "items": ["i3", "i4"]}\n')
    columns = ["step", "loss", "loss_sequential", "loss_item_to_text", "valid_recall@10"]
    with open(run / "llm" / "train_log.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerow({"step": 0, "valid_recall@10": 0.0})
        for step in (5, 10):
            writer.writerow({"step": step, "loss": 3 / step, "loss_sequential": 4 / step, "loss_item_to_text": 2 / step})
        writer.writerow({"step": 10, "valid_recall@10": 0.25})
    from alignrec.data.dataset import SequenceDataset

    dataset = SequenceDataset.load(run / "data")
    n = dataset.num_items
    codes = np.stack([np.arange(n) % 4, np.arange(n) // 4 % 4], axis=1)
    save_artifact(TokenizerArtifact(
        item_ids=dataset.item_ids, titles=np.array([dataset.title(i) for i in range(n)]), codes=codes,
        codebooks=[np.eye(4, dtype=np.float32)] * 2, quantizer_state={}, projection={},
        token_embeddings=np.zeros((8, 2), dtype=np.float32), tokens=token_names(2, 4),
        report={"levels": [{"level": lv, "used": 4, "utilisation": 1.0, "perplexity": 3.9, "max_items_per_code": 5}
                           for lv in (0, 1)], "collisions": {"before": {"collision_rate": 0.2},
                                                            "after": {"collision_rate": 0.0}}},
    ), run / "tokens")


def test_a_full_run_gets_every_section_embedded_in_one_file(partial_run) -> None:
    add_llm_and_tokens(partial_run)
    (partial_run / "sasrec").mkdir()  # the baseline of the paired table: MostPop's lists under another name
    for name in ("metrics.json", "rankings_test.jsonl"):
        text = (partial_run / "mostpop" / name).read_text()
        (partial_run / "sasrec" / name).write_text(text.replace('"model": "mostpop"', '"model": "sasrec"'))
    (partial_run / "harmonized").mkdir()
    grid = [{"weight": w, "recall@10": 0.1 + w / 10, "ndcg@10": 0.05 + w / 20} for w in (0.0, 0.5, 1.0)]
    write_json(partial_run / "harmonized" / "fusion.json",
               {"weight": 0.0, "best_weight": 1.0, "p_vs_sasrec": 0.31, "fit_p": 0.05, "fitted": True,
                "select_by": "ndcg@10", "users": 30, "grid": grid})
    path, sections = write_report(partial_run)
    assert path == partial_run / "report.html" and not [s.title for s in sections if s.skipped]
    page = path.read_text()
    pngs = images(page)
    assert len(pngs) == 6 and all(p.startswith(PNG) and len(p) > 5000 for p in pngs)
    assert ("Kept w=0: the best, w=1, did not beat w=0 on validation ndcg@10 (30 users, paired p=0.31, "
            "not below harmonized.fit_p=0.05)") in page
    assert "(baseline)" in page and "(+0.0%, p=1.0000)" in page  # the same lists: no change, p = 1
    assert "llm (40 users)" in page and "best validation Recall@10 0.2500 at step 10" in page
    assert "20.00% before resolution, 0.00% after" in page and "<td>4/4</td>" in page
    assert "Skipped" not in page and "src=\"http" not in page and list(partial_run.glob("*.png")) == []


def test_missing_inputs_skip_their_sections_with_a_note(partial_run, capsys) -> None:
    assert main(["report", str(partial_run)]) == 0
    out = capsys.readouterr().out
    assert f"skipped LLM training: no {partial_run / 'llm' / 'train_log.csv'}" in out
    assert "skipped Item codes: usage per level: no" in out and f"report: {partial_run / 'report.html'}" in out
    page = (partial_run / "report.html").read_text()
    assert page.count("Skipped: ") == 4 and len(images(page)) == 3  # also no SASRec to pair with, no fit


def test_head_share_counts_slots_on_the_most_interacted_tenth() -> None:
    counts = np.array([5, 50, 1, 1, 1, 1, 1, 1, 1, 1, 40, 1, 1, 1, 1, 1, 1, 1, 1, 1])  # 20 items: the head is 1 and 10
    assert head_share(counts, np.array([1, 10, 2, 3])) == 0.5
    assert head_share(counts, np.array([0, 0])) == 0.0


def test_not_a_run_directory(tmp_path, capsys) -> None:
    with pytest.raises(AlignrecError, match="not a run directory"):
        write_report(tmp_path)
    assert main(["report", str(tmp_path / "nothing")]) == EXIT_USER_ERROR
    assert "no such run directory" in capsys.readouterr().err
