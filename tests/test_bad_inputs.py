"""Every bad input through the real command line: exit status 2, one line that names the file and
line or the setting, and the fix; no traceback (issue 19, part 4).

Each case runs ``alignrec.cli.main`` in-process (an uncaught exception would fail the test), and a
few representative ones run the installed entry point in a subprocess to see what a user sees.
"""

import json
import subprocess
import sys

import pytest
import torch

from alignrec.cli import EXIT_USER_ERROR, main
from alignrec.config import SASRecConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.serve.store import open_store
from alignrec.tokenize.artifacts import save_artifact
from tests.conftest import cyclic_dataset
from tests.llm.conftest import tiny_artifact


def fails(argv: list[str], capsys) -> str:
    """Run the CLI, check it exits 2 with a single error line, and return that line."""
    capsys.readouterr()
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def prepared(lcrec_dir, tmp_path):
    """A run directory holding only the prepared toy dataset (RUN/data)."""
    run = tmp_path / "run"
    assert main(["data", "prepare", "--path", str(lcrec_dir), "--format", "lcrec", "--out", str(run / "data")]) == 0
    return run


def predictions(path, rows: dict[str, list[str]]) -> str:
    path.write_text("".join(json.dumps({"user": user, "items": items}) + "\n" for user, items in rows.items()))
    return str(path)


def evaluate(run, predictions_file: str, *extra: str) -> list[str]:
    return ["evaluate", "--data", str(run / "data"), "--predictions", predictions_file,
            "--out", str(run / "eval"), *extra]


# --- 1. bytes that are not UTF-8 -------------------------------------------------------------


def test_csv_in_latin_1_names_line_and_column_then_reads_with_encoding(tmp_path, capsys) -> None:
    csv = tmp_path / "data.csv"
    csv.write_bytes("user,item\nu1,plain\nu1,caf\u00e9\nu2,plain\n".encode("latin-1"))
    prepare = ["data", "prepare", "--path", str(csv), "--format", "csv", "--columns", "user=user,item=item",
               "--out", str(tmp_path / "p")]
    line = fails(prepare, capsys)
    assert "data.csv line 3: not valid UTF-8 (byte 0xe9 at column 7); save the file as UTF-8" in line
    assert "data.encoding / --encoding" in line
    assert main([*prepare, "--encoding", "latin-1"]) == 0
    dataset = SequenceDataset.load(tmp_path / "p")
    assert "caf\u00e9" in dataset.item_ids.tolist() and dataset.manifest["source"]["encoding"] == "latin-1"


def test_recbole_and_lcrec_files_name_the_line(tmp_path, capsys) -> None:
    (tmp_path / "rb").mkdir()
    (tmp_path / "rb" / "x.inter").write_bytes(b"user_id:token\titem_id:token\n1\t2\n1\t\xff\n")
    line = fails(["data", "prepare", "--path", str(tmp_path / "rb"), "--format", "recbole",
                  "--out", str(tmp_path / "p1")], capsys)
    assert "x.inter line 3: not valid UTF-8 (byte 0xff at column 3)" in line
    (tmp_path / "lc").mkdir()
    (tmp_path / "lc" / "X.inter.json").write_bytes(b'{\n  "u1": [1, 2],\n  "\xe9": [3]\n}\n')
    line = fails(["data", "prepare", "--path", str(tmp_path / "lc"), "--format", "lcrec",
                  "--out", str(tmp_path / "p2")], capsys)
    assert "X.inter.json line 3: not valid UTF-8 (byte 0xe9 at column 4)" in line


def test_predictions_not_in_utf_8(prepared, tmp_path, capsys) -> None:
    file = tmp_path / "p.jsonl"
    file.write_bytes(b'{"user": "0", "items": ["1"]}\n{"user": "1", "items": ["caf\xe9"]}\n')
    line = fails(evaluate(prepared, str(file)), capsys)
    assert "p.jsonl line 2: not valid UTF-8 (byte 0xe9 at column 29); JSON Lines are UTF-8" in line


def test_unknown_encoding_is_refused_before_reading(lcrec_dir, tmp_path, capsys) -> None:
    line = fails(["data", "prepare", "--path", str(lcrec_dir), "--format", "lcrec", "--encoding", "klingon",
                  "--out", str(tmp_path / "p")], capsys)
    assert "data.encoding='klingon': not a text encoding Python knows" in line
    assert not (tmp_path / "p").exists()


# --- 2. settings checked when the config loads, before any work -----------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sasrec.similarity=foo", "sasrec.similarity='foo': choose one of dot, cosine"),
        ("sasrec.hidden=65", "sasrec.hidden=65: must be a multiple of sasrec.heads=2"),
        ("device=tpu", "device='tpu': choose auto, cpu or cuda[:N]"),
        ("sasrec.layers=0", "sasrec.layers=0: must be at least 1"),
        ("sasrec.batch_size=-8", "sasrec.batch_size=-8: must be at least 1"),
        ("sasrec.max_len=0", "sasrec.max_len=0: must be at least 1"),
        ("sasrec.dropout=1.5", "sasrec.dropout=1.5: must be in [0, 1)"),
        ("sasrec.loss=mse", "sasrec.loss='mse': choose one of ce, bce"),
        ("sasrec.lr_schedule=cosine", "sasrec.lr_schedule='cosine': choose one of constant, linear"),
        ("sasrec.train_on=all", "sasrec.train_on='all': choose one of train, train+valid"),
        ("eval.ks=[0,10]", "eval.ks=[0, 10]: 0: must be at least 1"),
        ("tokenize.features=image", "tokenize.features='image': choose one of cf, text, both"),
        ("tokenize.quantizer=vq", "tokenize.quantizer='vq': choose one of rqkmeans, rqvae"),
        ("tokenize.levels=0", "tokenize.levels=0: must be at least 1"),
        ("tokenize.codebook_size=1", "tokenize.codebook_size=1: must be at least 2"),
        ("llm.token_init=zeros", "llm.token_init='zeros': choose one of aligned, random"),
        ("llm.beams=0", "llm.beams=0: must be at least 1"),
        ("llm.eval_steps=7", "llm.eval_steps=7: must be a multiple of llm.log_steps=5"),
        ("data.format=parquet", "data.format='parquet': choose one of recbole, lcrec, csv"),
        ("models=[mostpop,gpt]", "models=['mostpop', 'gpt']: 'gpt': not a model of the catalog; choose one of mostpop, sasrec, llm"),
        ("serve.threads=0", "serve.threads=0: must be at least 1"),
        ("data.encoding=klingon", "data.encoding='klingon': not a text encoding Python knows"),
    ],
)
def test_bad_setting_fails_when_the_config_loads(tmp_path, capsys, override, message) -> None:
    line = fails(["run", "--out", str(tmp_path / "run"), "--set", override], capsys)
    assert f"overrides ({override}): {message}" in line
    assert not (tmp_path / "run").exists()  # refused before any work


def test_bad_setting_in_a_file_names_the_file(tmp_path, capsys) -> None:
    (tmp_path / "c.yaml").write_text("sasrec:\n  hidden: 30\n  heads: 4\n")
    line = fails(["run", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run")], capsys)
    assert "c.yaml: sasrec.hidden=30: must be a multiple of sasrec.heads=4" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_on_a_machine_without_one_fails_before_the_data(tmp_path, capsys) -> None:
    line = fails(["run", "--out", str(tmp_path / "run"), "--set", "device=cuda"], capsys)
    assert "device='cuda': this machine has no CUDA GPU" in line
    assert not (tmp_path / "run").exists()


def test_data_prepare_flags_are_checked_like_settings(lcrec_dir, tmp_path, capsys) -> None:
    base = ["data", "prepare", "--path", str(lcrec_dir), "--format", "lcrec", "--out", str(tmp_path / "p")]
    assert "data.min_user_interactions=-4: must be at least 0" in fails([*base, "--min-user-interactions", "-4"],
                                                                        capsys)
    assert "data.separator=';;': give one character" in fails([*base, "--separator", ";;"], capsys)


# --- 3. store URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("bogus:thing", "--store 'bogus:thing': unknown scheme 'bogus'; use a file path, sqlite:PATH"),
        ("mongodb://x", "--store 'mongodb://x': unknown scheme 'mongodb'"),
        ("redis://localhost:abc/0", "--store 'redis://localhost:abc/0': port 'abc' is not a number from 1 to 65535; "
                                    "write redis://HOST:PORT/DB"),
        ("rediss://:6380/0", "--store 'rediss://:6380/0': no host; write rediss://HOST:PORT/DB"),
        ("redis://127.0.0.1:6379/x", "database 'x' is not a number"),
        ("missing.sqlite", "--store 'missing.sqlite': no such file"),
    ],
)
def test_snapshots_refuses_a_bad_store_and_creates_nothing(tmp_path, monkeypatch, capsys, url, message) -> None:
    monkeypatch.chdir(tmp_path)
    assert message in fails(["snapshots", "--store", url], capsys)
    assert list(tmp_path.iterdir()) == []


def test_activating_an_unknown_snapshot_of_an_existing_store(tmp_path, capsys) -> None:
    store = tmp_path / "s.sqlite"
    open_store(str(store)).close()
    assert "no snapshot 'v9-x'" in fails(["snapshots", "--store", str(store), "--activate", "v9-x"], capsys)


@pytest.mark.parametrize("command", ["precompute", "serve"])
def test_precompute_and_serve_refuse_a_bad_store(prepared, tmp_path, monkeypatch, capsys, command) -> None:
    monkeypatch.chdir(tmp_path)
    line = fails([command, "--run", str(prepared), "--store", "bogus:thing", "--model", "mostpop"], capsys)
    assert "--store 'bogus:thing': unknown scheme 'bogus'" in line
    assert not (tmp_path / "bogus:thing").exists()


# --- 4. k and ks beyond what the model or the lists can give --------------------------------


@pytest.mark.parametrize(
    ("k", "message"),
    [
        ("0", "serve.k=0: must be at least 1"),
        ("-3", "serve.k=-3: must be at least 1"),
        ("13", "--k 13: the run's dataset has 12 items, so no list can hold more; give --k 12 or less"),
    ],
)
def test_precompute_k_out_of_range(prepared, capsys, k, message) -> None:
    assert message in fails(["precompute", "--run", str(prepared), "--model", "mostpop", "--k", k], capsys)


@pytest.mark.parametrize(
    ("ks", "message"),
    [
        ("0,5", "--ks '0,5': cut-offs must be positive integers"),
        ("5,13", "--ks '5,13': 13 is above the 12 items of dataset 'Toy'; give cut-offs up to 12"),
        ("1,5", "--ks '1,5': the longest list in {file} has 3 items, so @5 would only repeat @3"),
    ],
)
def test_evaluate_ks_out_of_range(prepared, tmp_path, capsys, ks, message) -> None:
    file = predictions(tmp_path / "p.jsonl", {str(u): ["1", "2", "3"] for u in range(40)})
    assert message.format(file=file) in fails(evaluate(prepared, file, "--ks", ks), capsys)
    assert main(evaluate(prepared, file, "--ks", "1,3")) == 0


def test_inspect_k_out_of_range(tmp_path, capsys) -> None:
    save_artifact(tiny_artifact(cyclic_dataset(num_users=40, num_items=20)), tmp_path / "t")
    inspect = ["tokenize", "inspect", str(tmp_path / "t"), "3"]
    assert "-k 0: " in fails([*inspect, "-k", "0"], capsys) and "so give 1 to 19 neighbours" in fails(
        [*inspect, "-k", "20"], capsys)
    capsys.readouterr()
    assert main([*inspect, "-k", "19"]) == 0
    assert "nearest 19 items" in capsys.readouterr().out


# --- 5. predictions whose items are unknown --------------------------------------------------


def test_predictions_with_no_known_item_are_an_error(prepared, tmp_path, capsys) -> None:
    file = predictions(tmp_path / "internal.jsonl", {str(u): [f"item_{u % 12}"] for u in range(40)})
    line = fails(evaluate(prepared, file), capsys)
    assert f"{file}: none of its 40 item ids is in dataset 'Toy' (the first: 'item_0')" in line
    assert "write the dataset's original item ids" in line and "not internal indices" in line
    assert not (prepared / "eval").exists()


def test_predictions_with_some_unknown_items_warn_with_count_and_share(prepared, tmp_path, capsys) -> None:
    file = predictions(tmp_path / "some.jsonl", {str(u): ["1", "zzz", "2", "3"] for u in range(40)})
    capsys.readouterr()
    assert main(evaluate(prepared, file)) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: {file}: 40 of 160 item ids (25.0%) are not in dataset 'Toy' "
                   "(the first: 'zzz'); they count as misses"]


# --- what a user sees: the installed entry point, in a subprocess ---------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["snapshots", "--store", "redis://localhost:abc/0"], "port 'abc' is not a number"),
        (["run", "--set", f"sasrec.hidden={SASRecConfig().heads * 32 + 1}"], "must be a multiple of sasrec.heads"),
        (["data", "prepare", "--path", "{csv}", "--format", "csv", "--columns", "user=u,item=i", "--out", "{out}"],
         "data.csv line 2: not valid UTF-8"),
    ],
)
def test_entry_point_prints_one_line_and_no_traceback(tmp_path, argv, message) -> None:
    csv = tmp_path / "data.csv"
    csv.write_bytes(b"u,i\n1,\xe9\n")
    argv = [a.format(csv=csv, out=tmp_path / "p") for a in argv]
    done = subprocess.run([sys.executable, "-m", "alignrec.cli", *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == EXIT_USER_ERROR
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert message in done.stderr
