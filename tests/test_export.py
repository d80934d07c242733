"""``alignrec export``: SASRec as safetensors, the LLM as a Hugging Face folder that plain transformers
loads offline and that, decoded with a trie over its item codes, ranks exactly as the run does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from alignrec.catalog import load_recommender
from alignrec.cli import EXIT_USER_ERROR, main
from alignrec.data.dataset import SequenceDataset
from alignrec.decode import CodeTrie, constrained_beam_search
from alignrec.models.sasrec import left_pad, load, load_export
from alignrec.rundir import RunDir

WORDS = ["[UNK]", "<pad>", "</s>", "A", "user's", "items,", "oldest", "first:", "What", "next?"]


def tiny_hf_backbone(folder: Path) -> Path:
    """A tied two-layer Llama with a word-level fast tokenizer, saved as a Hugging Face folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", pad_token="<pad>", eos_token="</s>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=128, tie_word_embeddings=True))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny run (SASRec + an LLM fine-tuned from the tiny HF backbone) and its export."""
    from tests.train.test_harmonized import TINY_RUN

    root = tmp_path_factory.mktemp("export")
    backbone = tiny_hf_backbone(root / "backbone")
    (root / "toy").mkdir()
    inter = {str(u): [str((u + step) % 12) for step in range(6 + u % 4)] for u in range(40)}
    (root / "toy" / "Toy.inter.json").write_text(json.dumps(inter))
    run = root / "run"
    assert main(["run", "--out", str(run), "--set", f"data.path={root / 'toy'}", "--set", "data.format=lcrec",
                 "--set", "models=[sasrec, llm]", *TINY_RUN, "--set", f"llm.backbone={backbone}",
                 "--set", f"tokenize.align.llm={backbone}"]) == 0
    assert main(["export", str(run), "--out", str(root / "export")]) == 0
    return run, root / "export"


def test_sasrec_exports_as_safetensors_that_score_as_the_run(exported) -> None:
    run, out = exported
    dataset = SequenceDataset.load(RunDir(run).data)
    model, items = load_export(out / "sasrec")
    assert items == [str(i) for i in dataset.item_ids]
    histories = [dataset.sequence(u) for u in range(5)]
    with torch.no_grad():
        expected = load(RunDir(run).model("sasrec"), dataset).eval().score_last(left_pad(histories, model.max_len))
        assert torch.equal(model.score_last(left_pad(histories, model.max_len)), expected)


def test_the_llm_loads_with_plain_transformers_and_decodes_the_run_s_lists(exported) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run, out = exported
    dataset = SequenceDataset.load(RunDir(run).data)
    model = AutoModelForCausalLM.from_pretrained(out / "llm").eval()
    tokenizer = AutoTokenizer.from_pretrained(out / "llm")
    codes = json.loads((out / "llm" / "item_codes.json").read_text())
    assert "code_prior.json" not in {p.name for p in (out / "llm").iterdir()}  # the run trained without one
    assert "# alignrec LLM recommender: Toy" in (out / "llm" / "README.md").read_text()
    assert codes["code_softmax"] == "level"  # as the run trained; the card says how to score it
    assert "log-softmax over its level's codes" in (out / "llm" / "README.md").read_text()

    # the trie from the export alone: each item's code tokens, as the tokenizer numbers them
    names = [re.findall(r"<[^>]+>", codes["items"][str(item)]) for item in dataset.item_ids]
    levels, size = codes["levels"], codes["codebook_size"]
    item_codes = np.array([[int(name.split("_")[1].rstrip(">")) for name in row] for row in names])
    prefixes = [name.split("_")[0] for name in names[0]]  # "<a", "<b": one per level
    assert len(prefixes) == levels
    token_ids = np.array([tokenizer.convert_tokens_to_ids([f"{prefix}_{c}>" for c in range(size)])
                          for prefix in prefixes])
    trie = CodeTrie.build(item_codes, token_ids)

    histories = [dataset.sequence(u) for u in range(6)]
    instruction = tokenizer(codes["prompt"]["instruction"], add_special_tokens=False)["input_ids"]
    prompts = [instruction + tokenizer.convert_tokens_to_ids(
        [t for item in h[-codes["prompt"]["history"]:] for t in names[item]]) for h in histories]
    found, _ = constrained_beam_search(model, prompts, trie, beams=5, k=5, pad_token_id=tokenizer.pad_token_id,
                                       exclude=histories, softmax=codes["code_softmax"])
    run_lists, _ = load_recommender(run, "llm", dataset).recommend(histories, 5)
    assert found.tolist() == run_lists.tolist()


def test_export_refuses_a_used_folder_and_unknown_models(exported, capsys) -> None:
    run, out = exported
    assert main(["export", str(run), "--out", str(out)]) == EXIT_USER_ERROR
    assert "exists and is not empty; give a new folder" in capsys.readouterr().err
    assert main(["export", str(run), "--out", str(out.parent / "other"), "--models", "harmonized"]) == EXIT_USER_ERROR
    assert "not exportable" in capsys.readouterr().err and not (out.parent / "other").exists()


def test_the_export_check_benchmark_agrees_on_a_tiny_export(exported) -> None:
    import subprocess
    import sys

    run, out = exported
    bench = Path(__file__).resolve().parents[1] / "bench" / "export_check.py"
    done = subprocess.run([sys.executable, str(bench), "--run", str(run), "--export", str(out), "--users", "6",
                           "--k", "5"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "identical top-5 lists: 6/6 users" in done.stdout
