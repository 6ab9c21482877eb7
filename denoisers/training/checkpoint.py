"""Checkpoints of a training run: save every few steps, resume exactly.

A checkpoint is two files in the output folder, both written atomically and neither
pickled: ``checkpoint.safetensors`` (the model's tensors as ``model.KEY`` and Adam's state as
``optim.INDEX.NAME``) and ``checkpoint.json`` (the step, the generator's state, Adam's
parameter groups, and the caller's state: configuration, history, elapsed seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.errors import WeightsError

#: Settings a resumed run must share with its checkpoint (``steps`` may differ: the schedule
#: is recomputed).
RESUME_KEYS = ("model", "architecture", "seed", "batch", "patch", "levels", "noise", "lr")


def save_checkpoint(out: Path, network, optimizer, step: int, rng: np.random.Generator,
                    state: dict) -> None:
    """Write ``checkpoint.safetensors`` (tensors) and ``checkpoint.json`` (the rest), atomically.

    Parameters
    ----------
    out : Path
        The run's output folder.
    network, optimizer : torch.nn.Module, torch.optim.Optimizer
        What is saved; tensors are copied to the CPU.
    step : int
        Steps done.
    rng : numpy.random.Generator
        The training generator, whose state is saved.
    state : dict
        JSON-friendly entries stored as they are (``config``, ``history``, ``elapsed_s``).
    """
    from safetensors.torch import save_file

    from bench.files import replacing
    from denoisers.model_io import write_json

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    optim = optimizer.state_dict()
    for index, values in optim["state"].items():
        for key, value in values.items():
            tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous().reshape(value.shape)
    with replacing(out / "checkpoint.safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_json(out / "checkpoint.json", dict(
        state, step=step, rng=rng.bit_generator.state, param_groups=optim["param_groups"],
    ))


def load_checkpoint(out: Path, network, optimizer, config) -> tuple[int, dict]:
    """Restore a checkpoint into ``network`` and ``optimizer``; return (step, saved state).

    Raises
    ------
    WeightsError
        When the checkpoint is missing, unreadable, or was made with another configuration.
    """
    from denoisers.model_io import load_state, read_tensors

    path = out / "checkpoint.json"
    saved = _read_saved(path)
    previous = dict(saved["config"])
    current = config.to_dict()
    for key in RESUME_KEYS:
        if previous.get(key) != current.get(key):
            raise WeightsError(
                f"checkpoint '{path}' was made with {key}={previous.get(key)!r}, "
                f"not {current.get(key)!r}; resume with the same settings or a new --out")
    tensors = read_tensors(out / "checkpoint.safetensors")
    model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    load_state(network, model, out / "checkpoint.safetensors")
    _load_optimizer(optimizer, tensors, saved["param_groups"],
                    next(network.parameters()).device)
    return int(saved["step"]), saved


def _read_saved(path: Path) -> dict:
    if not path.is_file():
        raise WeightsError(f"nothing to resume: '{path}' is missing")
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise WeightsError(f"checkpoint '{path}' is not readable JSON: {error}") from None


def _load_optimizer(optimizer, tensors: dict, param_groups: list, device) -> None:
    """Load Adam's ``optim.INDEX.NAME`` tensors; moments to ``device``, step counts stay."""
    import torch

    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})
    for values in optimizer.state.values():
        for name, value in values.items():
            if torch.is_tensor(value) and name != "step":
                values[name] = value.to(device)
