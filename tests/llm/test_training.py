"""Building and fine-tuning the LLM (``llm/build.py``, ``train/llm.py``) on the tiny Llama: the loss falls, a crash resumes to the same weights, torchrun runs it."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import alignrec.train.llm as training
from alignrec.data.dataset import SequenceDataset
from alignrec.io import read_json
from alignrec.train.llm import train_llm
from tests.llm.conftest import tiny_llm_config


def log_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "train_log.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_training_lowers_the_loss_and_logs_each_task(cyclic: SequenceDataset, tiny_tokens, tmp_path: Path) -> None:
    artifact, _ = tiny_tokens
    config = tiny_llm_config(max_steps=30, lr=0.01, log_steps=5, eval_steps=15, save_steps=100)
    summary = train_llm(cyclic, artifact, config, tmp_path / "run", seed=0)
    rows = log_rows(tmp_path / "run")
    assert rows[0]["step"] == "0" and rows[0]["valid_recall@10"] != ""  # the curve's starting point
    trained = [r for r in rows if r["loss"]]
    assert float(trained[-1]["loss"]) < 0.8 * float(trained[0]["loss"])
    assert trained[0]["loss_sequential"] and trained[0]["loss_negative"] and not trained[0]["loss_item_to_text"]
    assert rows[-1]["valid_recall@10"] != ""
    assert summary["tokens_per_s"] > 0 and summary["steps"] == 30
    assert read_json(tmp_path / "run" / "tasks.json")["skipped"]["preference"].startswith("the dataset has no")
    assert (tmp_path / "run" / "task_loss.png").stat().st_size > 0


def test_no_validation_runs_when_eval_steps_is_0(
    cyclic: SequenceDataset, tiny_tokens, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact, _ = tiny_tokens

    def no_validation(*args, **kwargs):
        raise AssertionError("validated with eval_steps 0")

    monkeypatch.setattr(training, "subset_metrics", no_validation)  # the final check too: its beam search is costly
    summary = train_llm(cyclic, artifact, tiny_llm_config(max_steps=2, eval_steps=0, save_steps=100),
                        tmp_path / "run", seed=0)
    assert summary["steps"] == 2 and "valid_subset_recall@10" not in summary


def test_without_a_compiler_training_says_so_and_runs_eager(
    cyclic: SequenceDataset, tiny_tokens, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from alignrec.llm import compiled

    monkeypatch.setattr(compiled, "compiler_available", lambda: False)  # read by the build and by training
    summary = train_llm(cyclic, tiny_tokens[0], tiny_llm_config(max_steps=2, eval_steps=0, save_steps=100),
                        tmp_path / "run", seed=0)
    assert summary["steps"] == 2
    assert "no C++ compiler" in capsys.readouterr().err.replace("\n", " ")


def test_a_crash_resumes_to_the_uninterrupted_weights(
    cyclic: SequenceDataset, tiny_tokens, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact, _ = tiny_tokens
    config = tiny_llm_config(max_steps=8, save_steps=4, eval_steps=0)
    train_llm(cyclic, artifact, config, tmp_path / "straight", seed=0)

    calls = {"n": 0}
    real = training.training_loss

    def crash_after_six_steps(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 6:
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "training_loss", crash_after_six_steps)
    with pytest.raises(KeyboardInterrupt):
        train_llm(cyclic, artifact, config, tmp_path / "resumed", seed=0)
    assert (tmp_path / "resumed" / "checkpoints" / "checkpoint-4").is_dir()
    calls["n"] = -100  # counts the resumed run's steps from here without crashing
    train_llm(cyclic, artifact, config, tmp_path / "resumed", seed=0)
    assert calls["n"] == -100 + 4  # only steps 5..8 ran again

    straight = load_file(tmp_path / "straight" / "model" / "adapter_model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model" / "adapter_model.safetensors")
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.allclose(straight[name], resumed[name], atol=1e-6), name
    steps = [int(r["step"]) for r in log_rows(tmp_path / "resumed")]
    assert steps == sorted(set(steps))  # no step logged twice


def test_a_checkpoint_holds_the_trainable_weights_only(cyclic: SequenceDataset, tiny_tokens, tmp_path: Path) -> None:
    """From a backbone folder whose vocabulary the code tokens resized, peft would save the whole embedding."""
    from tests.test_export import tiny_hf_backbone

    artifact, _ = tiny_tokens
    backbone = tiny_hf_backbone(tmp_path / "backbone")
    config = tiny_llm_config(backbone=str(backbone), max_steps=2, save_steps=2, eval_steps=0)
    train_llm(cyclic, artifact, config, tmp_path / "run", seed=0)
    saved = load_file(tmp_path / "run" / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors")
    assert any("trainable_tokens_delta" in name for name in saved) and any("lora_A" in name for name in saved)
    assert not [name for name in saved if "base_layer" in name]  # not the resized embedding matrix
    assert saved.keys() == load_file(tmp_path / "run" / "model" / "adapter_model.safetensors").keys()


def test_torchrun_two_processes(cyclic: SequenceDataset, tiny_tokens, tmp_path: Path) -> None:
    _, tokens = tiny_tokens
    cyclic.save(tmp_path / "data")
    torchrun = Path(sys.executable).with_name("torchrun")
    settings = ["llm.backbone=tiny-random", "llm.bf16=false", "llm.max_steps=4", "llm.save_steps=2",
                "llm.log_steps=2", "llm.eval_steps=0", "llm.history=5", "llm.batch_size=2", "llm.max_tokens=128",
                "llm.beams=10", "llm.test_users=8", "eval.ks=[1,5,10]"]
    command = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "alignrec.cli", "train", "llm",
               "--data", str(tmp_path / "data"), "--tokens", str(tokens), "--out", str(tmp_path / "run")]
    for setting in settings:
        command += ["--set", setting]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_json(tmp_path / "run" / "train_summary.json")["world_size"] == 2
    metrics = read_json(tmp_path / "run" / "metrics.json")
    assert metrics["num_users"] == 8 and metrics["diagnostics"]["invalid_item_share"] == 0.0


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_the_saved_adapter_holds_the_code_rows_without_the_embedding_matrix(tied: bool, tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    from alignrec.backbone import tiny_random_llama
    from alignrec.llm.vocab import add_code_tokens
    from alignrec.train.llm import save_adapter

    names = [f"<a_{i}>" for i in range(8)]
    rows = list(range(259, 267))
    model = tiny_random_llama(0, tied=tied)
    add_code_tokens(model, names, 1, 8, "random", seed=0)
    peft_model = get_peft_model(model, LoraConfig(
        r=4, target_modules=["q_proj"], trainable_token_indices=rows if tied else {"embed_tokens": rows, "lm_head": rows}))
    with torch.no_grad():
        for parameter in peft_model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter))
    prompt = torch.tensor([[5, 260, 261, 262]])
    expected = peft_model(prompt).logits
    save_adapter(peft_model, tmp_path / "model")
    assert (tmp_path / "model" / "adapter_model.safetensors").stat().st_size < 20_000  # no 265 x 32 matrices
    base = tiny_random_llama(0, tied=tied)
    add_code_tokens(base, names, 1, 8, "random", seed=5)  # other rows: they must come from the adapter
    reloaded = PeftModel.from_pretrained(base, tmp_path / "model").merge_and_unload()
    assert torch.allclose(reloaded(prompt).logits, expected, atol=1e-5)


@pytest.mark.parametrize("history_titles", [True, False])
def test_the_recommender_prompts_as_the_model_was_trained(tmp_path: Path, history_titles: bool) -> None:
    """llm.history_titles reaches the recommendation prompt (it used to reach only the training windows)."""
    import numpy as np

    from alignrec.llm.build import build_llm
    from alignrec.llm.tasks import sequential
    from alignrec.llm.tasks.context import TaskContext
    from alignrec.llm.tasks.metadata import ItemFacts
    from alignrec.tokenize.artifacts import save_artifact
    from tests.conftest import make_dataset
    from tests.llm.conftest import tiny_artifact

    walks = {str(u): [f"m{(u + step) % 12}" for step in range(8)] for u in range(24)}
    titled = make_dataset(walks, {f"m{i}": {"title": f"Film number {i}"} for i in range(12)}, "titled")
    artifact = tiny_artifact(titled)
    save_artifact(artifact, tmp_path / "tokens")
    config = tiny_llm_config(max_steps=1, eval_steps=0, save_steps=100, history_titles=str(history_titles).lower())
    train_llm(titled, artifact, config, tmp_path / "run", seed=0)
    recommender = build_llm(config, artifact, titled, 0, tmp_path / "run" / "model").recommender

    history = titled.sequence(0)[:4]
    prompt = recommender.encoder.prompt_ids(sequential.recommendation_prompt(history, config.history))
    trained = sequential.build(TaskContext.from_dataset(titled, config.history, 1, history_titles),
                               np.random.default_rng(0))
    trained_texts = {piece.text for example in trained for piece in example.pieces if piece.text}
    asked = recommender.prompts([history])[0]
    assert any("Film number" in text for text in trained_texts) == history_titles
    assert (asked != prompt) == history_titles  # titles add tokens to exactly the prompts trained with them
    if history_titles:
        titles = sequential.prompt_title(ItemFacts(titled), True)
        assert asked == recommender.encoder.prompt_ids(sequential.recommendation_prompt(history, config.history, titles))


def test_train_llm_refuses_checkpoints_made_with_other_settings(cyclic, tiny_tokens, tmp_path, capsys) -> None:
    """As `alignrec run` never resumes them; the same settings resume, another --out starts afresh."""
    from alignrec.cli import EXIT_USER_ERROR, main

    _, tokens = tiny_tokens
    cyclic.save(tmp_path / "data")
    settings = ["llm.backbone=tiny-random", "llm.bf16=false", "llm.max_steps=2", "llm.save_steps=2",
                "llm.log_steps=2", "llm.eval_steps=0", "llm.history=5", "llm.batch_size=2", "llm.max_tokens=128",
                "llm.beams=4", "llm.test_users=4", "eval.ks=[1,4]"]

    def train(out: str, *extra: str) -> int:
        argv = ["train", "llm", "--data", str(tmp_path / "data"), "--tokens", str(tokens), "--out", str(tmp_path / out)]
        for setting in [*settings, *extra]:
            argv += ["--set", setting]
        return main(argv)

    assert train("run") == 0
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-2").is_dir()
    assert train("run") == 0  # same settings: resumed (already finished)
    capsys.readouterr()
    assert train("run", "llm.lr=0.5") == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "training made with other llm.lr" in err and "Traceback" not in err
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-2").is_dir()  # nothing deleted
    assert train("other", "llm.lr=0.5") == 0
