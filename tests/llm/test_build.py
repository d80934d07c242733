"""Loading a finished run's LLM (``llm/build.py::load_recommender``): in bf16 it decodes from bf16-stored
linear weights (``llm/precision.py``), with the same lists and scores as the fp32-stored merged model
under autocast."""

from __future__ import annotations

import numpy as np
import torch

from alignrec.cli import main
from alignrec.config import load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.llm.build import ADAPTER, build_llm, load_recommender
from alignrec.rundir import RunDir
from alignrec.tokenize.artifacts import load_artifact
from tests.train.test_harmonized import TINY_RUN


def test_a_loaded_run_decodes_from_bf16_weights_with_the_same_lists(lcrec_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ALIGNREC_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--set", f"data.path={lcrec_dir}", "--set", "data.format=lcrec",
                 "--set", "models=[sasrec, llm]", *TINY_RUN, "--set", "llm.bf16=true"]) == 0
    run = RunDir(out)
    dataset = SequenceDataset.load(run.data)
    loaded = load_recommender(run, dataset)
    head, embedding = loaded.model.get_output_embeddings().weight, loaded.model.get_input_embeddings().weight
    assert {m.weight.dtype for m in loaded.model.modules() if isinstance(m, torch.nn.Linear)} == {torch.bfloat16}
    assert head is not embedding and embedding.dtype == torch.float32  # the residual stream stays fp32

    config = load_config(run.config)
    plain = build_llm(config.llm, load_artifact(run.tokens), dataset, config.seed, run.model("llm").file(ADAPTER))
    assert plain.recommender.bf16 and {w.dtype for w in plain.model.parameters()} == {torch.float32}
    histories = [dataset.sequence(user) for user in range(12)]
    items, scores = loaded.recommend(histories, k=4)
    plain_items, plain_scores = plain.recommender.recommend(histories, k=4)
    np.testing.assert_array_equal(items, plain_items)
    np.testing.assert_array_equal(scores, plain_scores)  # the same bf16 tensors autocast would have made
