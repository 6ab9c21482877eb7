"""What defines a training run (:class:`TrainConfig`) and which models can be trained.

The trainable models are the shipped ones (``SHIPPED_MODELS`` in :mod:`bench.catalog`); each
one's architecture and default hyper-parameters are those of its shipped model card, so a
model is declared once, in the catalog and its card, and not again here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import InvalidParameterError

#: Training precisions: fp32, or bfloat16 autocast with fp32 master weights.
TRAIN_PRECISIONS = ("fp32", "bf16")


def trainable_models() -> dict[str, str]:
    """Trainable model name -> name of its shipped weights (``denoisers/weights/NAME``)."""
    from bench.catalog import SHIPPED_MODELS

    return {name: weights for name, weights, _summary in SHIPPED_MODELS}


def default_architecture(model: str) -> dict:
    """``{"name": ..., **hyper-parameters}`` from the shipped model card of ``model``.

    Raises
    ------
    WeightsError
        When the shipped model card is missing or has no architecture.
    """
    from denoisers.model_io import read_card, shipped_weights

    return dict(read_card(shipped_weights(trainable_models()[model]))["architecture"])


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in checkpoints and the model card.

    Parameters
    ----------
    model : str
        One of :func:`trainable_models`.
    data : str
        Folder of training images.
    out : str
        Output folder for checkpoints, weights and model card.
    val : str or None
        Folder of validation images; when None, ``holdout`` images of ``data`` are held out.
    holdout : int
        Images of ``data`` held out for validation when ``val`` is None (every k-th by name).
    noise : str
        Training noise; only ``"gaussian"``.
    levels : tuple of float
        Range of the training noise sigma, in 8-bit units (drawn uniformly per patch).
    steps, batch, patch : int
        Optimiser steps, patches per step, patch side in pixels.
    lr : float
        Initial Adam learning rate (cosine decay to ``lr / 100``).
    seed : int
        Seed of the network initialisation and of every random draw.
    device : str
        ``"cpu"`` or ``"cuda"``.
    architecture : dict
        Hyper-parameters overriding the model's defaults, e.g. ``{"depth": 10}``.
    init_from : str or None
        A weights file to start from (fresh optimiser), or ``"shipped"``.
    validate_every, checkpoint_every : int
        Steps between validations and between checkpoints.
    threads : int or None
        CPU threads for torch (None: torch's default).
    precision : str
        ``"fp32"``, or ``"bf16"`` for bfloat16 autocast of the forward pass (fp32 weights).
    precise_bn : int
        Batches over which the batch-norm statistics are re-estimated after the last step
        (see :func:`denoisers.training.loop.recalibrate_batch_norm`); 0 (the default) keeps
        the running averages of training.
    """

    model: str
    data: str
    out: str
    val: str | None = None
    holdout: int = 8
    noise: str = "gaussian"
    levels: tuple[float, float] = (0.0, 55.0)
    steps: int = 1000
    batch: int = 32
    patch: int = 40
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    architecture: dict = field(default_factory=dict)
    init_from: str | None = None
    validate_every: int = 250
    checkpoint_every: int = 250
    threads: int | None = None
    precision: str = "fp32"
    precise_bn: int = 0

    def check(self) -> None:
        """Raise :class:`InvalidParameterError` for values that cannot train."""
        models = trainable_models()
        if self.model not in models:
            raise InvalidParameterError(
                f"unknown model '{self.model}'; trainable models: {', '.join(models)}")
        if self.noise != "gaussian":
            raise InvalidParameterError(f"only gaussian noise can be trained, got '{self.noise}'")
        low, high = self.levels
        if not 0 <= low <= high <= 255:
            raise InvalidParameterError(f"levels {low:g}-{high:g} must satisfy 0 <= low <= high <= 255")
        if self.precise_bn < 0:
            raise InvalidParameterError(f"precise_bn must be 0 or more, got {self.precise_bn}")
        for name in ("steps", "batch", "patch", "validate_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise InvalidParameterError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.patch < 8:
            raise InvalidParameterError(f"patch must be at least 8 pixels, got {self.patch}")
        if self.lr <= 0:
            raise InvalidParameterError(f"lr must be positive, got {self.lr}")
        if self.device not in ("cpu", "cuda"):
            raise InvalidParameterError(f"device must be cpu or cuda, got '{self.device}'")
        if self.precision not in TRAIN_PRECISIONS:
            raise InvalidParameterError(
                f"precision must be one of {', '.join(TRAIN_PRECISIONS)}, got '{self.precision}'")

    def architecture_spec(self) -> dict:
        """``{"name": ..., **hyper-parameters}`` of the network to train."""
        defaults = default_architecture(self.model)
        name = defaults.pop("name")
        unknown = sorted(set(self.architecture) - set(defaults))
        if unknown:
            raise InvalidParameterError(
                f"model '{self.model}' has no hyper-parameter {unknown[0]!r}; "
                f"its hyper-parameters are: {', '.join(defaults)}")
        return {"name": name, **defaults, **self.architecture}

    def shipped_weights(self) -> Path:
        """The packaged weights of this model (what ``init_from="shipped"`` starts from)."""
        from denoisers.model_io import shipped_weights

        return shipped_weights(trainable_models()[self.model])

    def to_dict(self) -> dict:
        """The settings as JSON-friendly data (``levels`` as a list)."""
        data = dataclasses.asdict(self)
        data["levels"] = list(self.levels)
        return data


@dataclass
class TrainResult:
    """What :func:`denoisers.training.train` produced: the weights path and the model card."""

    weights: Path
    card: dict
