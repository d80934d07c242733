"""``llm.fused_lora`` (``llm/fused_lora.py``): each LoRA projection adds its scaled update inside one
``addmm_``; the loss and gradients are peft's (fp32), within bf16's rounding under autocast, and any
call the fused form does not cover takes peft's forward."""

from __future__ import annotations

import pytest
import torch

from alignrec.data.dataset import SequenceDataset
from alignrec.llm.encoding import collate, pack
from alignrec.llm.fused_lora import _fused_forward, stacked_projection
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


def graph_nodes(*outputs: torch.Tensor) -> list[str]:
    """The backward nodes the outputs' gradients pass through, each node once."""
    seen, names, stack = set(), [], [out.grad_fn for out in outputs]
    while stack:
        node = stack.pop()
        if node is not None and node not in seen:
            seen.add(node)
            names.append(type(node).__name__)
            stack.extend(parent for parent, _ in node.next_functions)
    return names


def test_a_projection_is_one_node_of_the_graph(builds) -> None:
    """Its backward accumulates the update's input gradient into the base's inside a GEMM: no
    separate sum of two tokens x in tensors, nor the clone and copy-back that an in-place op on a
    view costs autograd (CopySlices)."""
    on, _, _ = builds
    layer = fused_layers(on.model)[0]
    out = layer(torch.randn(2, 3, layer.in_features, requires_grad=True))
    assert out.shape == (2, 3, layer.out_features)
    nodes = set(graph_nodes(out))
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


def first_attention(built) -> torch.nn.Module:
    return built.model.get_base_model().model.layers[0].self_attn


def test_projections_that_share_an_input_are_one_node_with_each_layer_s_values_and_gradients(builds) -> None:
    on, _, _ = builds
    attention = first_attention(on)
    layers = (attention.q_proj, attention.k_proj, attention.v_proj)
    x = torch.randn(2, 5, layers[0].in_features)
    stacked = stacked_projection(layers, x)
    assert graph_nodes(stacked).count("_LoRALinearBackward") == 1
    together = stacked.split([layer.out_features for layer in layers], -1)
    alone = [layer(x) for layer in layers]
    weights = [torch.randn_like(out) for out in alone]
    parameters = [p for layer in layers for p in layer.parameters() if p.requires_grad]
    grads = [torch.autograd.grad(sum((o * w).sum() for o, w in zip(outs, weights, strict=True)), parameters)
             for outs in (together, alone)]
    for ours, theirs in zip(together, alone, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(*grads, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_only_fused_layers_with_their_adapters_active_are_stacked(builds) -> None:
    on, off, _ = builds
    x = torch.randn(2, 3, first_attention(on).q_proj.in_features)
    fused, plain = ((first_attention(built).q_proj, first_attention(built).k_proj) for built in (on, off))
    assert stacked_projection(fused, x) is not None
    assert stacked_projection(plain, x) is None  # peft's own layers
    with on.model.disable_adapter():
        assert stacked_projection(fused, x) is None  # each is its base layer then


def test_the_stacked_weights_follow_a_change_to_a_base_weight(builds) -> None:
    on, _, _ = builds
    attention = first_attention(on)
    layers = (attention.q_proj, attention.k_proj)
    x = torch.randn(4, layers[0].in_features)
    stacked_projection(layers, x)  # builds the stack
    with torch.no_grad():
        layers[1].base_layer.weight.mul_(2)  # as load_state_dict would change it: in place
        stacked = stacked_projection(layers, x)
        torch.testing.assert_close(stacked[:, layers[0].out_features:], layers[1](x))


def test_a_training_step_projects_q_k_v_together(builds) -> None:
    on, _, batch = builds
    loss_and_grads(on, batch, autocast=False)
    for layer in on.model.get_base_model().model.layers:
        assert "_alignrec_stacked_weight" in layer.self_attn.q_proj.__dict__
