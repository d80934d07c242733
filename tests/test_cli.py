"""The command line, end to end on tiny files: happy paths and every bad-input case."""

import json
import subprocess
import sys

import numpy as np
import pytest

from alignrec.cli import EXIT_USER_ERROR, main
from alignrec.io import read_json


def prepare(lcrec_dir, out) -> int:
    return main(["data", "prepare", "--path", str(lcrec_dir), "--format", "lcrec", "--out", str(out)])


def test_prepare_and_stats(lcrec_dir, tmp_path, capsys) -> None:
    assert prepare(lcrec_dir, tmp_path / "p") == 0
    assert "ID-only dataset" in capsys.readouterr().out
    assert main(["data", "stats", str(tmp_path / "p"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["users"] == 40 and stats["items"] == 12


def test_evaluate_scores_a_predictions_file(lcrec_dir, tmp_path, capsys) -> None:
    prepare(lcrec_dir, tmp_path / "p")
    # The cycle's true next item for user u is (u + len - 1) % 12: predict it first.
    lines = [json.dumps({"user": str(u), "items": [str((u + 6 + u % 4 - 1) % 12)]}) for u in range(40)]
    (tmp_path / "oracle.jsonl").write_text("\n".join(lines))
    code = main(["evaluate", "--data", str(tmp_path / "p"), "--predictions", str(tmp_path / "oracle.jsonl"),
                 "--out", str(tmp_path / "eval")])
    assert code == 0
    metrics = read_json(tmp_path / "eval" / "metrics.json")
    assert metrics["model"] == "oracle" and metrics["metrics"]["recall@1"] == 1.0
    assert metrics["metrics"]["ndcg@10"] == 1.0 and metrics["num_users"] == 40


def test_run_pipeline_then_rerun_skips_finished_stages(lcrec_dir, tmp_path, capsys) -> None:
    args = ["run", "--out", str(tmp_path / "run"), "--set", "models=[mostpop, sasrec]",
            "--set", f"data.path={lcrec_dir}", "--set", "data.format=lcrec",
            "--set", "sasrec={hidden: 8, layers: 1, heads: 1, max_len: 10, epochs: 2, eval_every: 1}"]
    assert main(args) == 0
    summary = read_json(tmp_path / "run" / "summary.json")
    assert set(summary["models"]) == {"mostpop", "sasrec"}
    for file in ["config.yaml", "comparison.md", "report.html", "sasrec/metrics.json", "sasrec/training.png",
                 "sasrec/item_embeddings.npz", "mostpop/rankings_test.jsonl", "data/manifest.json"]:
        assert (tmp_path / "run" / file).is_file(), file
    first = read_json(tmp_path / "run" / "sasrec" / "metrics.json")["metrics"]
    capsys.readouterr()
    assert main(args) == 0
    assert "sasrec: done earlier, skipped" in capsys.readouterr().err
    assert read_json(tmp_path / "run" / "sasrec" / "metrics.json")["metrics"] == first


def test_compare_reads_run_directories(lcrec_dir, tmp_path, capsys) -> None:
    prepare(lcrec_dir, tmp_path / "p")
    assert main(["train", "mostpop", "--data", str(tmp_path / "p"), "--out", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "m")]) == 0
    assert "mostpop" in capsys.readouterr().out


def bad(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("files", "argv", "message"),
    [
        ({}, ["--path", "{tmp}/missing.inter", "--format", "recbole"], "missing.inter: no such file or folder"),
        ({"d.inter": "user:token\titem_id:token\nu\ti\n"}, ["--path", "{tmp}/d.inter", "--format", "recbole"],
         "d.inter line 1: missing column 'user_id'"),
        ({"X.inter.json": '{"0": [1, 2'}, ["--path", "{tmp}", "--format", "lcrec"],
         "X.inter.json line 1 column 12: malformed JSON"),
        ({"d.inter": "user_id:token\titem_id:token\nu\ti\n"},
         ["--path", "{tmp}/d.inter", "--format", "recbole", "--min-user-interactions", "3"],
         "no interaction is left after filtering"),
        ({"d.inter": "user_id:token\titem_id:token\nu\ti\nu\tj\n", "d.item": "item_id:token\ttitle:token\ni\tI\n"},
         ["--path", "{tmp}/d.inter", "--format", "recbole"],
         "d.inter line 3: item 'j' is not in the item file"),
        ({"r.csv": "a,b\n1,2\n"}, ["--path", "{tmp}/r.csv", "--format", "csv", "--columns", "user=a,item=c"],
         "no column 'c' for 'item'"),
        ({}, ["--path", "{tmp}/x", "--format", "csv", "--columns", "user"], "--columns 'user': write it as"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(tmp_path, capsys, files, argv, message) -> None:
    for name, text in files.items():
        bad(tmp_path, name, text)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = main(["data", "prepare", *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert message in " ".join(err.split())
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_no_traceback_from_the_installed_command(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alignrec.cli", "data", "stats", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == EXIT_USER_ERROR
    assert "not a prepared dataset" in result.stderr and "Traceback" not in result.stderr


def test_bad_override_is_a_user_error(capsys) -> None:
    assert main(["run", "--set", "sasrec.hiden=3"]) == EXIT_USER_ERROR
    assert "unknown setting 'sasrec.hiden'" in capsys.readouterr().err


def test_rerun_on_changed_data_redoes_the_models(lcrec_dir, tmp_path, capsys) -> None:
    args = ["run", "--out", str(tmp_path / "run"), "--set", f"data.path={lcrec_dir}",
            "--set", "data.format=lcrec", "--set", "models=[mostpop]"]
    assert main(args) == 0
    inter = json.loads((lcrec_dir / "Toy.inter.json").read_text())
    inter["new"] = [0, 1, 2, 3]
    (lcrec_dir / "Toy.inter.json").write_text(json.dumps(inter))
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "skipped" not in err and "41 users" in " ".join(err.split())
    assert read_json(tmp_path / "run" / "mostpop" / "metrics.json")["num_users"] == 41


def test_tokenize_an_id_only_dataset_then_inspect(lcrec_dir, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ALIGNREC_CACHE", str(tmp_path / "cache"))
    prepare(lcrec_dir, tmp_path / "p")
    assert main(["train", "sasrec", "--data", str(tmp_path / "p"), "--out", str(tmp_path / "s"),
                 "--set", "sasrec={hidden: 8, layers: 1, heads: 1, max_len: 10, epochs: 1}"]) == 0
    tok = ["tokenize", "--data", str(tmp_path / "p"), "--sasrec", str(tmp_path / "s"), "--out", str(tmp_path / "t"),
           "--set", "tokenize={levels: 2, codebook_size: 4, kmeans_iters: 20}",
           "--set", "tokenize.align={llm: tiny-random, steps: 5}", "--set", "threads=1"]
    capsys.readouterr()
    assert main(tok) == 0
    err = capsys.readouterr().err
    assert "ID-only" in err and "-> 0.0000" in err
    report = read_json(tmp_path / "t" / "report.json")
    assert report["features"]["kind"] == "cf" and "semantics" not in report
    assert len(read_json(tmp_path / "t" / "codes.json")) == 12
    assert main(["tokenize", "inspect", str(tmp_path / "t"), "3", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("item 3: 3\ncodes [") and len(out.splitlines()) == 5


def test_tokenize_bad_input_is_one_line_and_status_2(lcrec_dir, tmp_path, capsys) -> None:
    prepare(lcrec_dir, tmp_path / "p")
    assert main(["tokenize", "--data", str(tmp_path / "p"), "--out", str(tmp_path / "t")]) == EXIT_USER_ERROR
    assert "needs --sasrec RUN" in capsys.readouterr().err
    assert main(["tokenize", "--data", str(tmp_path / "p"), "--out", str(tmp_path / "t"),
                 "--set", "tokenize.features=text"]) == EXIT_USER_ERROR
    assert "ID-only" in capsys.readouterr().err
    assert main(["tokenize", "--out", str(tmp_path / "t")]) == EXIT_USER_ERROR
    assert main(["tokenize", "inspect", str(tmp_path), "1"]) == EXIT_USER_ERROR
    assert "not a tokenizer output" in capsys.readouterr().err


def test_run_the_whole_pipeline_with_the_llm_then_rerun(lcrec_dir, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ALIGNREC_CACHE", str(tmp_path / "cache"))
    args = ["run", "--out", str(tmp_path / "run"), "--set", f"data.path={lcrec_dir}", "--set", "data.format=lcrec",
            "--set", "models=[mostpop, sasrec, llm]", "--set", "threads=1",
            "--set", "sasrec={hidden: 8, layers: 1, heads: 1, max_len: 10, epochs: 2, eval_every: 1}",
            "--set", "tokenize={levels: 2, codebook_size: 4, kmeans_iters: 20}",
            "--set", "tokenize.align={llm: tiny-random, steps: 5}",
            "--set", "llm={backbone: tiny-random, bf16: false, max_steps: 4, log_steps: 2, save_steps: 2, "
                     "eval_steps: 2, eval_users: 5, beams: 4, history: 4, batch_size: 2, max_tokens: 64, "
                     "test_users: 10}",
            "--set", "eval.ks=[1,2,6]"]  # 6 > llm.beams: the search widens to 6 for evaluation as for serving
    assert main(args) == 0
    run = tmp_path / "run"
    for file in ["tokens/codes.json", "tokens/stage.json", "llm/metrics.json", "llm/task_loss.png",
                 "llm/model/adapter_model.safetensors", "llm/rankings_test.jsonl"]:
        assert (run / file).is_file(), file
    metrics = read_json(run / "llm" / "metrics.json")
    assert metrics["num_users"] == 10 and metrics["diagnostics"]["invalid_item_share"] == 0.0
    comparison = (run / "comparison.md").read_text()
    assert "fixed subset of 10" in comparison and comparison.count("±") == 9  # 3 models x 3 columns
    report = (run / "report.html").read_text()
    assert report.count("Skipped") == 1 and "no harmonized model" in report  # the only model not in this run
    assert report.count("data:image/png;base64,") == 5 and "p=" in report  # every other section drawn
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "tokenize: done earlier" not in err  # the llm stage was skipped whole, tokens were not needed
    assert "llm: done earlier, skipped" in err
    assert read_json(run / "llm" / "metrics.json")["metrics"] == metrics["metrics"]
    # the serving registry loads the same run's LLM
    from alignrec.catalog import load_recommender
    from alignrec.data.dataset import SequenceDataset

    llm = load_recommender(run, "llm", SequenceDataset.load(run / "data"))
    from alignrec.data.split import history

    dataset = SequenceDataset.load(run / "data")
    index = dataset.user_index()
    evaluated = [json.loads(line) for line in (run / "llm" / "rankings_test.jsonl").read_text().splitlines()]
    users = [index[row["user"]] for row in evaluated]
    served, _ = llm.recommend([history(dataset, u, "test") for u in users], 6)
    assert [row["items"] for row in evaluated] == [[str(dataset.item_ids[i]) for i in row if i >= 0] for row in served]
    items, scores = llm.recommend([np.array([0, 1, 2]), np.array([5])], 3)
    assert items.shape == (2, 3) and (items >= 0).all() and not np.isin(items[0], [0, 1, 2]).any()
    assert (np.diff(scores, axis=1) <= 0).all()


def test_precompute_then_list_and_activate_snapshots(lcrec_dir, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), "--set", f"data.path={lcrec_dir}", "--set", "data.format=lcrec",
                 "--set", "models=[mostpop]"]) == 0
    store = f"sqlite:{tmp_path / 'store.sqlite'}"
    job = ["precompute", "--run", str(run), "--store", store, "--model", "mostpop", "--k", "5"]
    capsys.readouterr()
    assert main(job) == 0
    assert "published v1-" in capsys.readouterr().out
    assert main(job) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main([*job, "--force"]) == 0
    out = capsys.readouterr().out
    assert "published v2-" in out and "40 users" in out
    assert main(["snapshots", "--store", store]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 and "published (current)" in table[2] and table[2].startswith("v2-")
    v1 = table[1].split()[0]
    assert main(["snapshots", "--store", store, "--activate", v1, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert rows[0]["state"] == "published (current)" and rows[0]["users"] == 40


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["precompute", "--run", "{tmp}/nothing"], "not a prepared dataset"),
        (["precompute", "--run", "{run}", "--store", "mongodb://x"], "unknown scheme"),
        (["precompute", "--run", "{run}", "--model", "gpt"], "model 'gpt': unknown; choose from"),
        (["precompute", "--run", "{run}", "--model", "sasrec"], "best_model.pt: missing"),
        (["precompute", "--run", "{run}", "--model", "mostpop", "--users", "{tmp}/no.txt"], "--users"),
        (["precompute", "--run", "{run}", "--model", "mostpop", "--k", "0"], "serve.k=0"),
        (["snapshots", "--store", "sqlite:{tmp}/s.sqlite", "--activate", "v9-x"], "s.sqlite': no such file"),
        (["serve", "--run", "{run}", "--store", "redis://127.0.0.1:1/0"], "Redis not reachable"),
    ],
)
def test_serving_commands_exit_2_on_bad_input(lcrec_dir, tmp_path, capsys, argv, message) -> None:
    run = tmp_path / "run"
    prepare(lcrec_dir, run / "data")
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{run}", str(run)) for a in argv]
    capsys.readouterr()
    assert main(argv) == EXIT_USER_ERROR
    assert message in " ".join(capsys.readouterr().err.split())
