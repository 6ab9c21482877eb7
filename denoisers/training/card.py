"""The model card of a trained network: what it is, how it was trained, how well it does.

The card is written beside the weights by :func:`denoisers.model_io.save_weights`; loading
reads its ``architecture`` to build the network. Everything else is the record of training:
the data (name, counts, SHA-256 of the pixels, held-out images), noise range, steps, batch,
patch, optimiser, precision, seed, starting weights and how those were trained, wall time,
patches/s, device, threads, torch and Python versions, the command's settings (folders by name
only) and the validation PSNR per sigma with its history.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path


def model_card(config, architecture: dict, network, data_description: dict,
               history: list[dict], wall: float, initial_card: dict | None = None) -> dict:
    """The model card of a finished run, as JSON-friendly data.

    Parameters
    ----------
    config : TrainConfig
        The run's settings.
    architecture : dict
        ``{"name": ..., **hyper-parameters}`` of the trained network.
    network : torch.nn.Module
        The trained network (its parameter count and ``uses_sigma`` are recorded).
    data_description : dict
        :attr:`denoisers.training.data.TrainingData.description`.
    history : list of dict
        Validation entries (``step``, ``seconds``, ``psnr``, ...), oldest first; the last
        one's ``psnr`` is the card's ``validation_psnr``.
    wall : float
        Seconds of training, resumed sessions included.
    initial_card : dict, optional
        The card of the weights training started from (``init_from``).
    """
    return {
        "model": config.model,
        "architecture": architecture,
        "parameters": sum(p.numel() for p in network.parameters()),
        "uses_sigma": bool(getattr(network, "uses_sigma", False)),
        "training": _training_record(config, data_description, wall, initial_card),
        "validation_psnr": history[-1]["psnr"] if history else {},
        "validation_history": history,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _training_record(config, data_description: dict, wall: float,
                     initial_card: dict | None) -> dict:
    import torch

    return {
        "data": data_description,
        "noise": config.noise,
        "levels_8bit": list(config.levels),
        "steps": config.steps, "batch": config.batch, "patch": config.patch,
        "patches_seen": config.steps * config.batch,
        "optimiser": f"Adam, lr {config.lr:g} cosine to {config.lr / 100:g}",
        "precision": ("bf16 autocast, fp32 weights" if config.precision == "bf16" else "fp32"),
        "precise_bn_batches": config.precise_bn,
        "seed": config.seed,
        "init_from": (Path(config.init_from).name if config.init_from not in (None, "shipped")
                      else config.init_from),
        # How the starting weights were trained, so the card covers the whole history.
        "init_from_training": initial_card.get("training") if initial_card else None,
        "init_from_validation_psnr": initial_card.get("validation_psnr") if initial_card else None,
        "wall_time_s": round(wall, 3),
        "patches_per_s": round(config.steps * config.batch / max(wall, 1e-9), 1),
        "device": device_name(config.device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": _command(config),
    }


def _command(config) -> dict:
    """The run's settings; folders by name only, as a card must not carry a machine's paths."""
    names = {key: Path(value).name for key in ("data", "val", "out", "init_from")
             if (value := getattr(config, key)) and value != "shipped"}
    return {**config.to_dict(), **names}


def device_name(device: str) -> str:
    """``"cuda (GPU NAME)"`` or ``"cpu (MODEL, N cores)"`` for the card."""
    if device == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name()})"
    from bench.store.environment import cpu_description

    cpu = cpu_description()
    return f"cpu ({cpu['model']}, {cpu['cores']} cores)"
