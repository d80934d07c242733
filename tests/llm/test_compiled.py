"""``llm.compile_elementwise`` (``llm/compiled.py``): a training step's RMSNorms, SiLU gates and RoPE run
as compiled kernels with eager's loss and gradients; decoding, a model without the setting, and a
machine without a C++ compiler keep the eager forward."""

from __future__ import annotations

import pytest
import torch

from alignrec.data.dataset import SequenceDataset
from alignrec.llm import compiled
from alignrec.llm.compiled import _attention_forward, _mlp_forward, _norm_forward
from alignrec.llm.encoding import collate, pack
from alignrec.llm.precision import emits_autocast_dtype, is_rms_norm
from tests.llm.test_fused_lora import loss_and_grads
from tests.llm.test_loss import examples, trained_like


def compiled_modules(model: torch.nn.Module) -> list[str]:
    return [type(m).__name__ for m in model.modules()
            if getattr(m.__dict__.get("forward"), "__func__", None) in (_norm_forward, _mlp_forward, _attention_forward)]


@pytest.fixture
def builds(cyclic: SequenceDataset, tiny_tokens):
    artifact, _ = tiny_tokens
    on, off = (trained_like(cyclic, artifact, compile_elementwise=value) for value in ("true", "false"))
    return on, off, collate(pack(on.encoder.encode(examples()), 128), on.pad_id)


def test_every_norm_gated_mlp_and_attention_is_compiled(builds) -> None:
    on, off, _ = builds
    layers = len(on.model.get_base_model().model.layers)
    names = compiled_modules(on.model)
    assert names.count("LlamaRMSNorm") == 2 * layers + 1 and names.count("LlamaMLP") == layers
    assert names.count("LlamaAttention") == layers
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


def test_a_norm_that_hands_on_bf16_casts_inside_its_kernel(builds) -> None:
    on, _, _ = builds  # built with llm.norm_casts
    norm = next(m for m in on.model.modules() if is_rms_norm(m))
    assert emits_autocast_dtype(norm)
    hidden = torch.randn(3, 7, norm.weight.shape[0], requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = _norm_forward(norm, hidden)  # the forward alone, without the hook's cast
        eager = norm._alignrec_eager_forward(hidden).to(torch.bfloat16)
    assert fused.dtype == torch.bfloat16
    torch.testing.assert_close(fused, eager, rtol=1e-2, atol=1e-2)  # one bf16 rounding of the same fp32 value
    assert (fused != eager).float().mean() < 0.01


def test_rope_is_transformers_rounded_to_the_queries_dtype_and_keeps_their_layout() -> None:
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as eager

    torch.manual_seed(0)
    # the projections' layout: [B, T, H, D] memory seen as [B, H, T, D]
    query = torch.randn(2, 10, 4, 8).to(torch.bfloat16).transpose(1, 2).requires_grad_()
    key = torch.randn(2, 10, 2, 8).to(torch.bfloat16).transpose(1, 2).requires_grad_()
    angles = torch.randn(2, 10, 4)
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    want = eager(query, key, cos, sin)  # fp32: bf16 queries times fp32 tables
    got = [r.transpose(1, 2) for r in compiled._kernels()[2](query.transpose(1, 2), key.transpose(1, 2), cos, sin)]
    for ours, theirs in zip(got, want, strict=True):
        assert ours.dtype == torch.bfloat16 and theirs.dtype == torch.float32
        assert ours.transpose(1, 2).is_contiguous()  # no copy on the way to attention
        torch.testing.assert_close(ours, theirs.to(torch.bfloat16), rtol=0, atol=0)
    # gradients: eager rounds each of RoPE's two terms to bf16 before summing them, the kernel sums in
    # fp32 and rounds once, so it is as close to the exact (fp64) gradient or closer. The output's
    # gradient is bf16-valued either way: it comes from the attention's bf16 matmuls.
    weights = [torch.randn(g.shape).bfloat16().float() for g in got]
    inputs = (query, key)
    ours = torch.autograd.grad(sum((g.float() * w).sum() for g, w in zip(got, weights, strict=True)), inputs)
    theirs = torch.autograd.grad(sum((g * w).sum() for g, w in zip(want, weights, strict=True)), inputs)
    exact_inputs = [x.detach().double().requires_grad_() for x in inputs]
    exact_out = eager(*exact_inputs, cos.double(), sin.double())
    exact = torch.autograd.grad(sum((g * w.double()).sum() for g, w in zip(exact_out, weights, strict=True)), exact_inputs)
    for a, b, truth in zip(ours, theirs, exact, strict=True):
        assert (a.double() - truth).abs().max() <= (b.double() - truth).abs().max()


def test_a_model_without_the_setting_never_runs_a_kernel(builds, monkeypatch: pytest.MonkeyPatch) -> None:
    on, off, batch = builds

    def no_kernels() -> tuple:
        raise AssertionError("a model without llm.compile_elementwise ran a compiled kernel")

    monkeypatch.setattr(compiled, "_kernels", no_kernels)
    loss_and_grads(off, batch, autocast=False)


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
