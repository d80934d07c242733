"""Fitting the harmonized weight in a run (``alignrec.train.harmonized``): on validation users only,
the grid saved with the run, the fitted model served like any other."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alignrec.cli import EXIT_USER_ERROR, main
from alignrec.config import load_config
from alignrec.errors import ConfigError
from alignrec.io import read_json
from alignrec.models.harmonized import Candidates
from alignrec.train.harmonized import best_weight, grid_scores, guarded_weight

TINY_RUN = [
    "--set", "threads=1",
    "--set", "sasrec={hidden: 8, layers: 1, heads: 1, max_len: 10, epochs: 2, eval_every: 1}",
    "--set", "tokenize={levels: 2, codebook_size: 4, kmeans_iters: 20}",
    "--set", "tokenize.align={llm: tiny-random, steps: 5}",
    "--set", "llm={backbone: tiny-random, bf16: false, max_steps: 4, log_steps: 2, save_steps: 2, eval_steps: 0, "
             "beams: 4, history: 4, batch_size: 2, max_tokens: 64, test_users: 10}",
    "--set", "harmonized.fit_users=12", "--set", "harmonized.grid=5",
    "--set", "eval.ks=[1,5,10]",
]


def test_the_grid_scores_each_weight_and_the_best_ndcg_wins_toward_sasrec() -> None:
    candidates = Candidates(items=np.array([[1, 2], [3, 4]]), sasrec=np.array([[-1.0, -2.0], [-1.0, -2.0]]),
                            llm=np.array([[-5.0, -1.0], [-5.0, -1.0]]))
    rows = grid_scores(candidates, np.array([2, 3]), np.array([0.0, 0.5, 1.0]), 10)
    # w=0: targets at ranks 2 and 1; w=0.5 (-3 vs -1.5): ranks 1 and 2; w=1: ranks 1 and 2.
    assert [r["recall@10"] for r in rows] == [1.0, 1.0, 1.0]
    assert rows[0]["ndcg@10"] == pytest.approx((1 / np.log2(3) + 1) / 2)
    assert best_weight(rows)["weight"] == 0.0  # all equal: the one closest to SASRec
    rows[2]["ndcg@10"] += 0.1
    assert best_weight(rows)["weight"] == 1.0


def test_a_best_weight_that_does_not_beat_sasrec_significantly_is_not_kept() -> None:
    # 40 users; at w=1 the LLM lifts the target from rank 2 to rank 1 for `lifted` users, and drops it
    # from rank 1 to rank 2 for `dropped` ones; everyone else is unchanged.
    def case(lifted: int, dropped: int) -> tuple[Candidates, np.ndarray]:
        users = 40
        items = np.tile([1, 2], (users, 1))
        goal = np.ones(users, dtype=np.int64)
        goal[:lifted] = 2  # SASRec ranks item 2 second; the LLM puts it first
        llm = np.tile([-1.0, -5.0], (users, 1))
        llm[:lifted] = [-5.0, -1.0]
        llm[lifted : lifted + dropped] = [-5.0, -1.0]  # the LLM moves item 2 up where item 1 was the target
        return Candidates(items=items, sasrec=np.tile([-1.0, -2.0], (users, 1)), llm=llm), goal

    clear, goal = case(lifted=12, dropped=0)
    weight, p = guarded_weight(clear, goal, 1.0, 10, fit_p=0.05, seed=0)
    assert weight == 1.0 and p < 0.001
    noisy, goal = case(lifted=5, dropped=3)  # best on the fit users, but 5 against 3 is a coin's luck
    assert grid_scores(noisy, goal, np.array([0.0, 1.0]), 10)[1]["ndcg@10"] > grid_scores(
        noisy, goal, np.array([0.0]), 10)[0]["ndcg@10"]
    weight, p = guarded_weight(noisy, goal, 1.0, 10, fit_p=0.05, seed=0)
    assert weight == 0.0 and 0.3 < p < 0.9
    assert guarded_weight(noisy, goal, 1.0, 10, fit_p=1.0, seed=0)[0] == 1.0  # fit_p 1: the best, untested
    assert guarded_weight(noisy, goal, 0.0, 10, fit_p=0.05, seed=0) == (0.0, 1.0)


def test_harmonized_needs_held_out_validation_and_both_models_first() -> None:
    with pytest.raises(ConfigError, match="fits its weight on validation users, which sasrec.train_on=train\\+valid"):
        load_config(None, ["models=[sasrec, llm, harmonized]", "sasrec.train_on=train+valid"])
    assert load_config(None, ["models=[sasrec, llm, harmonized]", "sasrec.train_on=train+valid",
                              "harmonized.weight=0.3"]).harmonized.weight == 0.3
    with pytest.raises(ConfigError, match="the harmonized is built from llm; list llm before harmonized"):
        load_config(None, ["models=[sasrec, harmonized]"])


def test_alignrec_train_does_not_offer_it(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "harmonized", "--data", "d", "--out", "o"])
    assert "invalid choice: 'harmonized'" in capsys.readouterr().err


def test_a_run_fits_the_weight_on_validation_and_ranks_like_any_model(lcrec_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ALIGNREC_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    args = ["run", "--out", str(run), "--set", f"data.path={lcrec_dir}", "--set", "data.format=lcrec",
            "--set", "models=[sasrec, llm, harmonized]", *TINY_RUN]
    assert main(args) == 0
    fusion = read_json(run / "harmonized" / "fusion.json")
    assert fusion["split"] == "valid" and fusion["users"] == 12 and len(fusion["grid"]) == 5
    assert fusion["weight"] in [row["weight"] for row in fusion["grid"]]
    assert fusion["best_weight"] == best_weight(fusion["grid"])["weight"]
    assert fusion["weight"] == (fusion["best_weight"] if fusion["p_vs_sasrec"] < fusion["fit_p"] else 0.0)
    assert (run / "harmonized" / "fitting.png").stat().st_size > 0
    metrics = read_json(run / "harmonized" / "metrics.json")
    assert metrics["num_users"] == 10 and metrics["diagnostics"]["invalid_item_share"] == 0.0
    assert metrics["weight"] == fusion["weight"] and metrics["fit_users"] == 12
    assert "| harmonized |" in (run / "comparison.md").read_text()

    # Weight 0 through the whole stack (config -> fit -> load -> rank) is SASRec's test lists.
    (run / "zero").mkdir()
    assert main([*args[:2], str(run / "zero"), *args[3:], "--set", "harmonized.weight=0"]) == 0
    def lists(folder: str) -> dict[str, list[str]]:
        rows = [json.loads(line) for line in (run / folder / "rankings_test.jsonl").read_text().splitlines()]
        return {row["user"]: row["items"] for row in rows}
    zero, sasrec = lists("zero/harmonized"), lists("zero/sasrec")
    assert zero and all(zero[user] == sasrec[user] for user in zero)
    # A changed fit setting is another model: refused, with the fix.
    assert main([*args, "--set", "harmonized.candidates=7"]) == EXIT_USER_ERROR
