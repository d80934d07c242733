"""Which torch device a stage runs on: ``auto`` takes the GPU when there is one."""

from __future__ import annotations

import torch

from alignrec.errors import AlignrecError


def use_bf16(setting: bool | str, device: torch.device | str) -> bool:
    """Whether to compute in bf16 (``llm.bf16``). ``auto``: where the hardware has bf16 arithmetic, a
    CUDA GPU that supports it or a CPU with AVX-512 BF16 / AMX (as oneDNN reports it). Elsewhere bf16
    matmuls are emulated: on a 2-core AVX2 EPYC 1.2 GFLOP/s a core against fp32's 45, so training
    would crawl."""
    if setting != "auto":
        return bool(setting)
    if torch.device(device).type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` if available else ``cpu``; ``cpu``/``cuda``/``cuda:N`` as given (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AlignrecError(f"device={name!r}: choose auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AlignrecError(f"device={name!r}: this machine has no CUDA GPU; use device=auto or cpu")
    if device.type not in ("cpu", "cuda"):
        raise AlignrecError(f"device={name!r}: choose auto, cpu or cuda[:N]")
    return device
