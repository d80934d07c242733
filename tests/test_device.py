"""``device: auto`` falls back to the CPU; a GPU asked for on a machine without one is a clear error."""

import pytest
import torch

from alignrec.device import resolve_device, use_bf16
from alignrec.errors import AlignrecError


def test_auto_follows_the_machine() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused() -> None:
    with pytest.raises(AlignrecError, match="no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.parametrize("name", ["tpu", "gpu!", "mps"])
def test_unknown_devices_are_refused(name: str) -> None:
    with pytest.raises(AlignrecError, match="choose auto, cpu or cuda"):
        resolve_device(name)


def test_bf16_auto_follows_the_hardware_and_explicit_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    assert use_bf16(True, "cpu") is True and use_bf16(False, "cpu") is False
    for native in (True, False):  # an AVX-512 BF16 / AMX CPU, then an AVX2-only one
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda native=native: native)
        assert use_bf16("auto", "cpu") is native
        assert use_bf16("auto", torch.device("cpu")) is native
