"""``llm.norm_casts`` (``llm/precision.py::norms_emit_autocast_dtype``): under bf16 autocast each RMSNorm
hands on bf16 once for all its projections; the loss is the one autocast's own casts give, the gradients
move less than bf16 autocast moves them from fp32, and outside autocast nothing changes."""

from __future__ import annotations

import pytest
import torch

from alignrec.data.dataset import SequenceDataset
from alignrec.llm.encoding import collate, pack
from alignrec.llm.loss import training_loss
from tests.llm.test_loss import examples, trained_like


def loss_and_grads(built, batch, autocast: bool) -> tuple[float, dict[str, torch.Tensor]]:
    built.model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        total, _ = training_loss(built.model, batch, built.vocab, "level", True)
    total.backward()
    grads = {name: p.grad.clone() for name, p in built.model.named_parameters() if p.requires_grad}
    return float(total.detach()), grads


def norm_outputs(built, batch, autocast: bool) -> set[torch.dtype]:
    dtypes: set[torch.dtype] = set()
    hooks = [m.register_forward_hook(lambda m, i, o: dtypes.add(o.dtype)) for m in built.model.modules()
             if type(m).__name__.endswith("RMSNorm")]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        training_loss(built.model, batch, built.vocab, "level", True)
    for hook in hooks:
        hook.remove()
    return dtypes


@pytest.fixture
def builds(cyclic: SequenceDataset, tiny_tokens):
    artifact, _ = tiny_tokens
    on, off = (trained_like(cyclic, artifact, norm_casts=value) for value in ("true", "false"))
    batch = collate(pack(on.encoder.encode(examples()), 128), on.pad_id)
    return on, off, batch


def test_under_autocast_the_norms_hand_on_bf16_and_lora_keeps_it(builds) -> None:
    on, off, batch = builds
    assert norm_outputs(on, batch, autocast=True) == {torch.bfloat16}
    assert norm_outputs(off, batch, autocast=True) == {torch.float32}
    assert norm_outputs(on, batch, autocast=False) == {torch.float32}  # outside autocast nothing changes
    lora_layers = [m for m in on.model.modules() if hasattr(m, "lora_A")]
    assert lora_layers and all(m.cast_input_dtype_enabled is False for m in lora_layers)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


def test_the_loss_is_autocast_s_and_the_gradients_move_less_than_autocast_moves_them(builds) -> None:
    on, off, batch = builds
    loss_on, grads_on = loss_and_grads(on, batch, autocast=True)
    loss_off, grads_off = loss_and_grads(off, batch, autocast=True)
    assert loss_on == loss_off  # the same bf16 tensors enter every projection
    _, grads_fp32 = loss_and_grads(off, batch, autocast=False)
    assert grads_on.keys() == grads_off.keys() == grads_fp32.keys()
    moved = {name: relative_error(grads_on[name], grad) for name, grad in grads_off.items()}
    assert max(moved.values()) > 0  # summed in bf16 at the norms, the layers' gradients move
    for name, grad in grads_off.items():  # but less than bf16 autocast moved them from fp32
        assert moved[name] <= relative_error(grad, grads_fp32[name]), name
    # without autocast both are the fp32 model
    assert loss_and_grads(on, batch, autocast=False)[0] == loss_and_grads(off, batch, autocast=False)[0]
