"""``llm.compile_elementwise`` (``llm/compiled.py``): a training step's RMSNorms and SiLU gates run as
compiled kernels with eager's loss and gradients; decoding, and a machine without a C++ compiler,
keep the eager forward."""

from __future__ import annotations

import pytest
import torch

from alignrec.data.dataset import SequenceDataset
from alignrec.llm import compiled
from alignrec.llm.compiled import _mlp_forward, _norm_forward
from alignrec.llm.encoding import collate, pack
from tests.llm.test_fused_lora import loss_and_grads
from tests.llm.test_loss import examples, trained_like


def compiled_modules(model: torch.nn.Module) -> list[str]:
    return [type(m).__name__ for m in model.modules()
            if getattr(m.__dict__.get("forward"), "__func__", None) in (_norm_forward, _mlp_forward)]


@pytest.fixture
def builds(cyclic: SequenceDataset, tiny_tokens):
    artifact, _ = tiny_tokens
    on, off = (trained_like(cyclic, artifact, compile_elementwise=value) for value in ("true", "false"))
    return on, off, collate(pack(on.encoder.encode(examples()), 128), on.pad_id)


def test_every_norm_and_gated_mlp_is_compiled(builds) -> None:
    on, off, _ = builds
    layers = len(on.model.get_base_model().model.layers)
    names = compiled_modules(on.model)
    assert names.count("LlamaRMSNorm") == 2 * layers + 1 and names.count("LlamaMLP") == layers
    assert compiled_modules(off.model) == []


def test_the_loss_and_gradients_are_eager_s(builds) -> None:
    on, off, batch = builds
    loss_on, grads_on = loss_and_grads(on, batch, autocast=False)
    loss_off, grads_off = loss_and_grads(off, batch, autocast=False)
    assert loss_on == pytest.approx(loss_off, rel=1e-5)
    assert grads_on.keys() == grads_off.keys()
    for name, grad in grads_on.items():  # fp32 sums in another order: within 1e-3 of each tensor's scale
        scale = grads_off[name].abs().max()
        assert (grad - grads_off[name]).abs().max() <= 1e-3 * scale, name


def test_without_grad_the_eager_forward_runs(builds, monkeypatch: pytest.MonkeyPatch) -> None:
    on, off, batch = builds

    def no_kernels() -> tuple:
        raise AssertionError("decoding compiled a kernel")

    monkeypatch.setattr(compiled, "_kernels", no_kernels)
    with torch.no_grad():
        logits = [b.model(input_ids=batch["input_ids"]).logits for b in (on, off)]
    torch.testing.assert_close(logits[0], logits[1], rtol=0, atol=0)


def test_without_a_compiler_nothing_changes(cyclic: SequenceDataset, tiny_tokens,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "compiler_available", lambda: False)
    built = trained_like(cyclic, tiny_tokens[0])
    assert compiled_modules(built.model) == []
