"""Paired comparison against a baseline: hand-computed changes, and a permutation test that can fail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alignrec.cli import main
from alignrec.config import EvalConfig
from alignrec.eval.paired import common_users, paired_markdown, paired_metrics, paired_rows, sign_flip_p_value
from tests.conftest import make_dataset


def test_sign_flip_p_value_matches_the_exact_one() -> None:
    # ten users all better by 1: only the all-plus and all-minus flips are as extreme, p = 2 / 2^10
    assert sign_flip_p_value(np.ones(10)) == pytest.approx(2 / 1024, abs=0.001)
    assert sign_flip_p_value(np.zeros(10)) == 1.0
    assert sign_flip_p_value(np.array([1.0, -1.0])) == 1.0
    noisy = np.random.default_rng(3).normal(0.0, 1.0, 200)
    assert sign_flip_p_value(noisy) > 0.05  # no real difference: not significant
    assert sign_flip_p_value(noisy + 0.5) < 0.001


def test_paired_rows_give_each_models_change_against_the_baseline() -> None:
    # test targets: u0 -> d, u1 -> e, u2 -> c
    dataset = make_dataset({"u0": ["a", "b", "c", "d"], "u1": ["a", "b", "e"], "u2": ["b", "a", "c"]})
    i = dataset.item_index()
    rankings = {"base": {0: [i["d"]], 1: [i["a"]], 2: [i["d"]]},  # 1 hit of 3
                "better": {0: [i["d"]], 1: [i["e"]], 2: [i["c"]]},  # 3 hits
                "subset": {0: [i["d"]], 1: [i["e"]]}}
    users = common_users(dataset, rankings)
    assert users.tolist() == [0, 1]  # the subset model ranked only u0 and u1
    rows = paired_rows(dataset, rankings, "base", users, EvalConfig(ks=[1]), metrics=("recall@1", "ndcg@1"))
    by_model = {row["model"]: row["metrics"] for row in rows}
    assert by_model["base"]["recall@1"] == {"value": 0.5, "relative": 0.0, "p": None}
    assert by_model["better"]["recall@1"]["value"] == 1.0 and by_model["better"]["recall@1"]["relative"] == 1.0
    assert math.isclose(by_model["better"]["recall@1"]["p"], 1.0)  # one user differs: a sign flip undoes it
    table = paired_markdown(rows, "base")
    assert "| base | 2 | 0.5000 (baseline) |" in table and "1.0000 (+100.0%, p=1.0000)" in table


def test_paired_metrics_follow_the_cut_offs_and_are_never_empty() -> None:
    assert paired_metrics([5, 10, 20]) == ["recall@10", "ndcg@10", "recall@20"]
    assert paired_metrics([10]) == ["recall@10", "ndcg@10"]
    assert paired_metrics([1, 2, 6]) == ["recall@6", "ndcg@6"]  # neither 10 nor 20: the largest cut-off
    dataset = make_dataset({"u0": ["a", "b", "c", "d"], "u1": ["a", "b", "e"]})
    rankings = {"base": {0: [3], 1: [0]}, "other": {0: [3], 1: [4]}}
    rows = paired_rows(dataset, rankings, "base", common_users(dataset, rankings), EvalConfig(ks=[1, 2]))
    assert list(rows[0]["metrics"]) == ["recall@2", "ndcg@2"]


def test_compare_and_run_report_the_paired_test(lcrec_dir, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--set", "models=[mostpop, sasrec]", "--set", f"data.path={lcrec_dir}",
                 "--set", "data.format=lcrec", "--set",
                 "sasrec={hidden: 8, layers: 1, heads: 1, max_len: 10, epochs: 2, eval_every: 1}"]) == 0
    assert "Against sasrec on the 40 users every model ranked" in (out / "comparison.md").read_text()
    capsys.readouterr()
    assert main(["compare", str(out / "mostpop"), str(out / "sasrec"), "--baseline", "sasrec",
                 "--data", str(out / "data")]) == 0
    printed = capsys.readouterr().out
    assert "| sasrec | 40 | " in printed and "(baseline)" in printed and "p=" in printed
    assert main(["compare", str(out), "--baseline", "gpt"]) == 2
