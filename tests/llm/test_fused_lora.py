"""``llm.fused_lora`` (``llm/fused_lora.py``): each LoRA projection adds its scaled update inside one
``addmm_``; the loss and gradients are peft's (fp32), within bf16's rounding under autocast, and any
call the fused form does not cover takes peft's forward."""

from __future__ import annotations

import pytest
import torch

from alignrec.data.dataset import SequenceDataset
from alignrec.llm.encoding import collate, pack
from alignrec.llm.fused_lora import _fused_forward
from alignrec.llm.loss import training_loss
from tests.llm.conftest import tiny_llm_config
from tests.llm.test_loss import examples, trained_like


def fused_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules()
            if getattr(m.__dict__.get("forward"), "__func__", None) is _fused_forward]


def loss_and_grads(built, batch, autocast: bool) -> tuple[float, dict[str, torch.Tensor]]:
    built.model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        total, _ = training_loss(built.model, batch, built.vocab, "level", True)
    total.backward()
    return float(total.detach()), {n: p.grad.clone() for n, p in built.model.named_parameters() if p.requires_grad}


@pytest.fixture
def builds(cyclic: SequenceDataset, tiny_tokens):
    artifact, _ = tiny_tokens
    on, off = (trained_like(cyclic, artifact, fused_lora=value) for value in ("true", "false"))
    batch = collate(pack(on.encoder.encode(examples()), 128), on.pad_id)
    return on, off, batch


def test_every_adapted_projection_is_fused_and_peft_s_stay_unfused(builds) -> None:
    on, off, _ = builds
    adapted = [m for m in on.model.modules() if hasattr(m, "lora_A")]
    layers = len(on.model.get_base_model().model.layers)
    assert len(adapted) == 7 * layers and fused_layers(on.model) == adapted
    assert fused_layers(off.model) == []


def test_a_layer_with_lora_dropout_keeps_peft_s_forward(cyclic: SequenceDataset, tiny_tokens) -> None:
    from alignrec.llm.build import build_llm

    artifact, _ = tiny_tokens
    built = build_llm(tiny_llm_config(**{"lora.dropout": 0.1}), artifact, cyclic, seed=0)
    assert fused_layers(built.model) == []  # its update is not B(A(x)) * scaling of the same x


def test_in_fp32_the_loss_and_gradients_are_peft_s(builds) -> None:
    on, off, batch = builds
    loss_on, grads_on = loss_and_grads(on, batch, autocast=False)
    loss_off, grads_off = loss_and_grads(off, batch, autocast=False)
    assert loss_on == pytest.approx(loss_off, rel=1e-6)
    assert grads_on.keys() == grads_off.keys()
    for name, grad in grads_off.items():
        torch.testing.assert_close(grads_on[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_under_bf16_autocast_the_loss_is_peft_s_within_rounding(builds) -> None:
    on, off, batch = builds
    loss_on, _ = loss_and_grads(on, batch, autocast=True)
    loss_off, _ = loss_and_grads(off, batch, autocast=True)
    loss_fp32, _ = loss_and_grads(off, batch, autocast=False)
    assert loss_on != loss_off  # rounded once instead of three times: not the same bits
    assert abs(loss_on - loss_off) <= max(abs(loss_off - loss_fp32), 1e-3 * abs(loss_fp32))


def test_with_the_adapters_disabled_a_fused_layer_is_its_base_layer(builds) -> None:
    on, _, _ = builds
    layer = fused_layers(on.model)[0]
    x = torch.randn(2, 3, layer.in_features)
    with torch.no_grad():
        adapted = layer(x)
        with on.model.disable_adapter():
            plain = layer(x)
        assert not torch.allclose(adapted, plain)  # the trained-like update is not zero
        torch.testing.assert_close(plain, layer.base_layer(x))


def test_a_projection_is_one_node_of_the_graph(builds) -> None:
    """Its backward accumulates the update's input gradient into the base's inside a GEMM: no
    separate sum of two tokens x in tensors, nor the clone and copy-back that an in-place op on a
    view costs autograd (CopySlices)."""
    on, _, _ = builds
    layer = fused_layers(on.model)[0]
    out = layer(torch.randn(2, 3, layer.in_features, requires_grad=True))
    assert out.shape == (2, 3, layer.out_features)
    nodes, stack = set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and type(node).__name__ not in nodes:
            nodes.add(type(node).__name__)
            stack.extend(parent for parent, _ in node.next_functions)
    assert "_LoRALinearBackward" in nodes
    assert not nodes & {"AddBackward0", "AddmmBackward0", "MmBackward0", "CopySlices"}


def test_under_bf16_autocast_the_gradients_are_peft_s_within_rounding(builds) -> None:
    on, off, batch = builds
    _, grads_on = loss_and_grads(on, batch, autocast=True)
    _, grads_off = loss_and_grads(off, batch, autocast=True)
    _, grads_fp32 = loss_and_grads(off, batch, autocast=False)
    for name, exact in grads_fp32.items():  # as far from peft's bf16 as that is from fp32, within 2x
        gap, rounding = (grads_on[name] - grads_off[name]).abs().max(), (grads_off[name] - exact).abs().max()
        assert gap <= 2 * rounding + 1e-6 * exact.abs().max(), name
