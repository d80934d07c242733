"""Which torch device a stage runs on: ``auto`` takes the GPU when there is one."""

from __future__ import annotations

import torch

from alignrec.errors import AlignrecError


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
