"""`alignrec compare` tells ablations of one model apart by their run folders."""

import json

from alignrec.eval.compare import SHORT_NOTE, collect_metrics, markdown_table, metric_cell, row_labels


def write_run(folder, model: str, recall: float) -> None:
    folder.mkdir(parents=True)
    metrics = {"recall@10": recall, "ndcg@10": recall / 2}
    row = {"dataset": "tiny", "model": model, "split": "test", "num_users": 3, "metrics": metrics}
    (folder / "metrics.json").write_text(json.dumps(row))


def test_repeated_models_are_labelled_by_their_folder(tmp_path) -> None:
    write_run(tmp_path / "sasrec", "sasrec", 0.3)
    write_run(tmp_path / "abl" / "aligned", "llm", 0.2)
    write_run(tmp_path / "abl" / "random", "llm", 0.1)
    rows = collect_metrics([tmp_path / "sasrec", tmp_path / "abl"])
    assert row_labels(rows) == ["sasrec", "llm (aligned)", "llm (random)"]
    table = markdown_table(rows)
    assert "| llm (aligned) | test | 0.2000 | 0.1000 |" in table and "| sasrec | test | 0.3000 |" in table
    assert table.splitlines()[-1].endswith("| - |")  # no wall time recorded


def test_a_cut_off_above_the_model_s_list_is_flagged() -> None:
    short = {"model": "llm", "split": "test", "dataset": "d", "num_users": 3, "wall_time_s": 1.0,
             "metrics": {"recall@10": 0.1, "recall@20": 0.2, "ndcg@10": 0.05}, "diagnostics": {"ranked_items": 10}}
    full = {**short, "model": "sasrec", "diagnostics": {"ranked_items": 20}}
    assert metric_cell(short, "recall@10") == "0.1000" and metric_cell(short, "recall@20") == "0.2000\u2020"
    assert metric_cell(full, "recall@20") == "0.2000" and metric_cell(short, "ndcg@20") == "-"
    assert metric_cell(short, "mrr") == "-"
    assert SHORT_NOTE in markdown_table([short, full]) and SHORT_NOTE not in markdown_table([full])
