"""Which compute devices exist here. Imports torch only when a GPU question is asked."""

from __future__ import annotations

import importlib.util
import sys

from bench.errors import DeviceError


def is_tensor(value) -> bool:
    """Whether ``value`` is a torch tensor, without importing torch: only an imported torch
    can have made one, so an array never loads it."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(requested: str, wants_gpu: bool) -> str:
    """Turn ``"cpu"``, ``"cuda"`` or ``"auto"`` into the device the sweep uses.

    Parameters
    ----------
    requested : str
        What the user asked for.
    wants_gpu : bool
        Whether any selected denoiser can run on CUDA (``"auto"`` only looks for a GPU then).

    Raises
    ------
    DeviceError
        For ``"cuda"`` on a machine without a usable GPU, or an unknown device name.
    """
    if requested == "cpu":
        return "cpu"
    if requested == "cuda":
        if not cuda_available():
            raise DeviceError("--device cuda: no CUDA GPU is available here (torch sees none)")
        return "cuda"
    if requested == "auto":
        return "cuda" if wants_gpu and cuda_available() else "cpu"
    raise DeviceError(f"unknown device '{requested}'; use cpu, cuda or auto")
