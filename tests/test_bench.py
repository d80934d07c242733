"""Benchmarks that cannot rot: every script under bench/ has a smoke run here, seconds each, on a tiny model
and a tiny run (the serving and store benchmarks where their tools, wrk and lmdb, are installed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alignrec.cli import main

BENCH = Path(__file__).resolve().parents[1] / "bench"
SMOKE = {  # script -> the test that runs it (a test below checks that none is missing)
    "code_prior.py": "test_the_llm_benchmarks_run_on_a_tiny_run",
    "decode.py": "test_decode_benchmark_runs_and_both_searches_agree",
    "embedded_store.py": "test_the_store_benchmark_compares_sqlite_and_lmdb",
    "export_check.py": "tests/test_export.py::test_the_export_check_benchmark_agrees_on_a_tiny_export",
    "llm_ablations.sh": "test_the_shell_benchmarks_parse_and_name_their_python",
    "llm_throughput.py": "test_the_throughput_benchmark_compares_both_paths_in_fresh_processes",
    "llm_train.py": "test_the_llm_benchmarks_run_on_a_tiny_run",
    "precompute.sh": "test_the_precompute_benchmark_resumes_and_agrees_across_engines_and_stores",
    "recent_item.py": "test_the_llm_benchmarks_run_on_a_tiny_run",
    "sasrec_loss.py": "test_the_sasrec_benchmarks_run_on_a_tiny_run",
    "sasrec_precision.py": "test_the_sasrec_benchmarks_run_on_a_tiny_run",
    "serve.py": "test_the_serving_benchmark_loads_a_tiny_run",
    "sweep.py": "test_the_sasrec_benchmarks_run_on_a_tiny_run",
    "tie_order.py": "tests/integration/test_real_data.py::test_tie_order_benchmark_writes_ml_1m_as_recbole_files",
    "ties.py": "test_the_ties_benchmark_splits_recall_by_same_second_test_items",
    "tokenize.sh": "test_the_shell_benchmarks_parse_and_name_their_python",
    "tokenize_table.py": "test_the_llm_benchmarks_run_on_a_tiny_run",
    "valid_compare.py": "test_the_llm_benchmarks_run_on_a_tiny_run",
}


def bench(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    """Run a bench script; its stdout (the test fails with its stderr if it fails)."""
    done = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=timeout, env=None if env is None else {**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_every_bench_script_has_a_smoke_run() -> None:
    scripts = {p.name for p in BENCH.iterdir() if p.suffix in (".py", ".sh")}
    assert scripts == set(SMOKE), f"add a smoke run for {sorted(scripts - set(SMOKE))}"
    here = Path(__file__).read_text(encoding="utf-8")
    for target in SMOKE.values():
        file, _, name = target.rpartition("::")
        text = (Path(__file__).parents[1] / file).read_text(encoding="utf-8") if file else here
        assert f"def {name}(" in text, target


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ID-only LC-Rec dataset: 80 users walking a 60-item cycle."""
    folder = tmp_path_factory.mktemp("bench") / "toy"
    folder.mkdir()
    inter = {str(u): [str((u + step) % 60) for step in range(6 + u % 4)] for u in range(80)}
    (folder / "Toy.inter.json").write_text(json.dumps(inter))
    return folder


@pytest.fixture(scope="module")
def tiny_run(toy: Path) -> Path:
    """MostPop, SASRec, item codes and an LLM fine-tuned 4 steps from the tiny random Llama."""
    from tests.train.test_harmonized import TINY_RUN

    run = toy.parent / "run"
    assert main(["run", "--out", str(run), "--set", f"data.path={toy}", "--set", "data.format=lcrec",
                 "--set", "models=[mostpop, sasrec, llm]", *TINY_RUN, "--set", "tokenize.codebook_size=8"]) == 0
    return run


def test_decode_benchmark_runs_and_both_searches_agree() -> None:
    out = bench("decode.py", "--users", "4", "--items", "50", "--levels", "2", "--codebook-size", "8",
                "--history", "3", "--beams", "4", "--k", "4", "--batch-size", "2")
    assert "identical top-4 lists: 100.0% of users (4/4)" in out
    assert "invalid items returned: ours 0.0%, generate 0.0%" in out


def test_the_llm_benchmarks_run_on_a_tiny_run(tiny_run: Path) -> None:
    out = bench("code_prior.py", "--run", str(tiny_run), "--users", "8", "--strengths", "0", "4", "--k", "5")
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| llm, prior")]
    assert [row[0] for row in rows] == ["| llm, prior 0", "| llm, prior 4"]
    assert all(0.0 <= float(row[1]) <= 1.0 for row in rows)

    # the same run twice: the same lists, so no change and p = 1
    out = bench("valid_compare.py", "--runs", str(tiny_run), str(tiny_run), "--users", "8", "--k", "5")
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith(f"| {tiny_run}")]
    assert len(rows) == 2 and rows[0][1:4] == rows[1][1:4] and rows[1][5] == "1.0000"
    assert rows[1][4] == ("+0.0%" if float(rows[0][2].split()[0]) else "-")  # a relative change needs a base

    out = bench("recent_item.py", "--run", str(tiny_run), "--models", "sasrec", "llm", "--users", "8", "--k", "5")
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith(("| sasrec", "| llm"))]
    assert [(row[0], row[1]) for row in rows] == [(f"| {m}", h) for m in ("sasrec", "llm")
                                                  for h in ("whole", "without the validation item")]
    assert all(0.0 <= float(row[2]) <= 1.0 and 0.0 <= float(row[4]) <= 1.0 for row in rows)
    assert all(0.0 <= float(row[6].rstrip(" |")) <= 1.0 for row in rows[1::2])  # each cut history's paired p

    out = bench("llm_train.py", "--data", str(tiny_run / "data"), "--tokens", str(tiny_run / "tokens"),
                "--backbone", "tiny-random", "--steps", "1", "--set", "llm.max_tokens=64", "--set", "llm.batch_size=2")
    assert re.search(r"bf16 / fp32 tokens/s: \d+\.\d\dx", out) and out.count("tokens/s,") == 2

    out = bench("tokenize_table.py", str(tiny_run / "tokens"))
    assert str(tiny_run / "tokens") in out and "| run | items |" in out


def test_the_throughput_benchmark_compares_both_paths_in_fresh_processes(toy: Path, tmp_path: Path) -> None:
    out = bench("llm_throughput.py", "--backbone", "tiny-random", "--data", str(toy), "--format", "lcrec", "--quick",
                "--steps", "1", "--decode-users", "4", "--threads", "1", "--set", "llm.max_tokens=64",
                "--old", "llm.decode_shared_cache=false", env={"ALIGNREC_CACHE": str(tmp_path / "cache")}, timeout=600)
    # paths that train alike (fresh processes, the same seeded weights and batches) and decode by two KV caches
    assert "same training losses on both paths: True" in out and "identical top-50 lists: True" in out
    assert re.search(r"^train speedup \d+\.\d\dx, decode speedup \d+\.\d\dx, train MFU \d+\.\d%, "
                     r"peak RSS \d+\.\d\d GiB$", out, flags=re.M)
    assert "| bfloat16 |" in out and "| float32 |" in out


def test_the_sasrec_benchmarks_run_on_a_tiny_run(tiny_run: Path, tmp_path: Path) -> None:
    data = str(tiny_run / "data")
    out = bench("sasrec_loss.py", "--data", data, "--minutes", "0.02", "--max-len", "10")
    assert re.search(r"ratio ce/bce: HR@10 \d+\.\d\dx", out)

    tiny = ["--set", "sasrec.hidden=8", "--set", "sasrec.heads=1", "--set", "sasrec.max_len=10"]
    out = bench("sasrec_precision.py", "--data", data, "--config", "default", "--steps", "2", *tiny)
    assert re.search(r"bf16 / fp32 step time: \d+\.\d\dx", out)

    out = bench("sweep.py", "sasrec", "--data", data, "--out", str(tmp_path / "sweep"), "--config", "default",
                *tiny, "--set", "sasrec.epochs=2", "--set", "threads=1", "one:", "two:dropout=0.5")
    assert "2 variants in" in out and "failed: none" in out
    assert [line.split()[0] for line in out.splitlines()[-2:]] == ["one", "two"]


def test_the_ties_benchmark_splits_recall_by_same_second_test_items(tmp_path: Path) -> None:
    """Ten users of five ratings each; for the first four the last two share a second."""
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user in range(10):
        stamps = [100, 200, 300, 400, 400 if user < 4 else 500]
        lines += [f"u{user}\t{(user + step) % 20}\t{stamp}" for step, stamp in enumerate(stamps)]
    (raw / "toy.inter").write_text("\n".join(lines) + "\n")
    assert main(["data", "prepare", "--format", "recbole", "--path", str(raw), "--out", str(tmp_path / "data")]) == 0
    hits = tmp_path / "rankings_test.jsonl"  # the test item first for the tied users only
    hits.write_text("".join(json.dumps({"user": f"u{u}", "items": [str((u + 4) % 20) if u < 4 else "0"]}) + "\n"
                            for u in range(10)))
    out = bench("ties.py", "--data", str(tmp_path / "data"), str(hits))
    assert "10.0% of consecutive ratings share a second; 40.0% of 10 test items share theirs" in out
    assert out.splitlines()[-1].split()[1:] == ["1.0000", "0.0000", "1000000000.00"]


def test_the_shell_benchmarks_parse_and_name_their_python() -> None:
    for script in ("llm_ablations.sh", "precompute.sh", "tokenize.sh"):
        done = subprocess.run(["bash", "-n", str(BENCH / script)], capture_output=True, text=True)
        assert done.returncode == 0, f"{script}: {done.stderr}"
    ablations = (BENCH / "llm_ablations.sh").read_text(encoding="utf-8")
    assert '"$HERE/sweep.py"' in ablations  # the Python it drives is smoke-tested above


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server")
def test_the_precompute_benchmark_resumes_and_agrees_across_engines_and_stores(tiny_run: Path, tmp_path: Path) -> None:
    alignrec = str(Path(sys.executable).parent / "alignrec")
    done = subprocess.run(["bash", str(BENCH / "precompute.sh"), str(tiny_run), str(tmp_path)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "ALIGNREC": alignrec, "KILL_AFTER": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    digests = done.stdout.split("must be equal)\n", 1)[1].split()
    assert len(digests) == 12 and len(set(digests[0::3])) == 1  # digest, users, store: four stores, one digest


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs Debian's wrk")
def test_the_serving_benchmark_loads_a_tiny_run(tiny_run: Path) -> None:
    store = f"sqlite:{tiny_run / 'store.sqlite'}"
    for model in ("mostpop", "sasrec"):  # its reload test flips between two published snapshots
        assert main(["precompute", "--run", str(tiny_run), "--store", store, "--model", model]) == 0
    out = bench("serve.py", "--run", str(tiny_run), "--store", store, "--seconds", "1", "--rounds", "1")
    assert "ours / bare:" in out and "admin reload without key: 401, with a wrong key: 403" in out


def test_the_store_benchmark_compares_sqlite_and_lmdb(tiny_run: Path) -> None:
    pytest.importorskip("lmdb", reason="pip install lmdb")
    store = f"sqlite:{tiny_run / 'store-lmdb.sqlite'}"
    assert main(["precompute", "--run", str(tiny_run), "--store", store, "--model", "sasrec"]) == 0
    out = bench("embedded_store.py", "--store", store, "--seconds", "0.2", "--rounds", "1")
    assert "lmdb / sqlite: load time" in out
