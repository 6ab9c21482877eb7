"""Weights files of the learned denoisers: safetensors tensors plus a JSON model card.

A model is two files side by side: ``NAME.safetensors`` (the state dict; loading it never
executes code, unlike a pickle) and ``NAME.json``, its model card: the architecture and its
hyper-parameters, how it was trained (data, noise range, steps, device, wall time) and its
validation PSNR. Loading reads the card, builds the network it names and loads the tensors
with strict key and shape matching; any failure is a :class:`bench.errors.WeightsError`
naming the file and what was expected.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

from bench.errors import WeightsError
from bench.files import replacing, write_atomic

#: Folder of the shipped weights inside the ``denoisers`` package (package data).
SHIPPED_FOLDER = "weights"


def card_path(weights: str | Path) -> Path:
    """The model card beside ``weights``: same name, ``.json`` suffix."""
    return Path(weights).with_suffix(".json")


def shipped_weights(name: str) -> Path:
    """Path of the shipped weights file of model ``name`` (it may not exist)."""
    return Path(str(resources.files("denoisers").joinpath(SHIPPED_FOLDER, f"{name}.safetensors")))


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_weights(network, path: str | Path, card: dict) -> Path:
    """Write ``network``'s state dict to ``path`` (safetensors) and ``card`` beside it.

    Parameters
    ----------
    network : torch.nn.Module
        The network; its tensors are copied to the CPU.
    path : str or Path
        Destination ``.safetensors`` file; folders are created.
    card : dict
        JSON-friendly model card; ``architecture`` (``{"name": ..., **hyper-parameters}``)
        is required so the file can be loaded back. ``weights_sha256`` is added.

    Returns
    -------
    Path
        The weights path.
    """
    from safetensors.torch import save_file

    if "architecture" not in card:
        raise ValueError("a model card needs an 'architecture' entry")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in network.state_dict().items()}
    with replacing(path) as tmp:
        save_file(tensors, str(tmp), metadata={"architecture": json.dumps(card["architecture"])})
    card = dict(card, weights_file=path.name, weights_sha256=file_sha256(path))
    write_json(card_path(path), card)
    return path


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically (:func:`bench.files.write_atomic`)."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_card(weights: str | Path) -> dict:
    """Read and check the model card beside ``weights``."""
    path = card_path(weights)
    if not path.is_file():
        raise WeightsError(f"model card '{path}' is missing; expected it beside '{weights}'")
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise WeightsError(f"model card '{path}' is not readable JSON: {error}") from None
    arch = card.get("architecture") if isinstance(card, dict) else None
    if not isinstance(arch, dict) or "name" not in arch:
        raise WeightsError(f"model card '{path}' has no 'architecture' with a 'name'")
    return card


def build_network(architecture: dict, source: str = "model card"):
    """Instantiate the network described by ``{"name": ..., **hyper-parameters}``."""
    from denoisers.networks import ARCHITECTURES

    params = {k: v for k, v in architecture.items() if k != "name"}
    cls = ARCHITECTURES.get(architecture["name"])
    if cls is None:
        raise WeightsError(
            f"{source}: unknown architecture '{architecture['name']}'; "
            f"expected one of {', '.join(ARCHITECTURES)}"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as error:
        raise WeightsError(f"{source}: cannot build {architecture['name']}({params}): {error}") from None


def read_tensors(path: str | Path) -> dict:
    """Read every tensor of a safetensors file to the CPU, or raise :class:`WeightsError`."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' is missing")
    try:
        return load_file(str(path), device="cpu")
    except Exception as error:  # SafetensorError, OSError: truncated, corrupt or not safetensors
        raise WeightsError(
            f"weights file '{path}' is truncated or not a safetensors file "
            f"({type(error).__name__}: {error})"
        ) from None


def load_state(network, tensors: dict, source: str | Path) -> None:
    """Load ``tensors`` into ``network`` strictly: same keys, same shapes, or WeightsError."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_few(unexpected)}")
        raise WeightsError(
            f"weights file '{source}' does not match {type(network).__name__} "
            f"({len(expected)} tensors expected): {'; '.join(parts)}"
        )
    for key, value in expected.items():
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise WeightsError(
                f"weights file '{source}': tensor '{key}' has shape {tuple(tensors[key].shape)}, "
                f"expected {tuple(value.shape)} for {type(network).__name__}"
            )
    network.load_state_dict(tensors, strict=True)


def load_weights(path: str | Path):
    """Build the network named by the card beside ``path`` and load its weights, on the CPU.

    Parameters
    ----------
    path : str or Path
        A ``.safetensors`` file with its ``.json`` model card beside it.

    Returns
    -------
    network : torch.nn.Module
        The network in eval mode, on the CPU.
    card : dict
        The model card.

    Raises
    ------
    WeightsError
        When either file is missing, truncated or unreadable, the architecture is unknown, or
        the tensors do not match it.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' is missing")
    card = read_card(path)
    network = build_network(card["architecture"], source=str(card_path(path)))
    load_state(network, read_tensors(path), path)
    return network.eval(), card


def _few(keys: list[str], n: int = 3) -> str:
    shown = ", ".join(repr(k) for k in keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")
