"""Train the learned denoisers: random noisy patches in, weights and a model card out.

:func:`train` is the library entry point; ``bench train`` is a thin layer over it. Training
images are read once into memory. Each step draws a batch of random patches (random image,
position and one of the eight flips/rotations) and Gaussian noise with a sigma drawn
uniformly from the level range, all from one seeded ``numpy.random.Generator``, so a run is
reproducible and a resumed run continues the same sequence. The loss is the mean squared
error to the clean patch; Adam with a cosine learning-rate decay to 1/100 of ``lr``. With
``precision="bf16"`` the forward pass runs under bfloat16 autocast with fp32 master weights and
an fp32 loss (on CPUs with AMX this trains about 4x faster than fp32); the network is kept in
channels-last layout, which oneDNN and cuDNN convolve faster. Validation always runs in fp32.

Every ``checkpoint_every`` steps the model, optimiser, step, generator state and history are
written to ``OUT/checkpoint.safetensors`` and ``OUT/checkpoint.json`` (no pickle);
``resume=True`` continues from there. At the end ``OUT/MODEL.safetensors`` and its model card
``OUT/MODEL.json`` are written (see :mod:`denoisers.model_io`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import DataError, InvalidParameterError, WeightsError

#: Trainable models: name -> (architecture, default hyper-parameters, uses a noise-level map).
MODELS = {
    "dncnn": ("DnCNN", {"depth": 17, "width": 64, "channels": 1}),
    "ffdnet_small": ("FFDNet", {"depth": 12, "width": 64, "channels": 1}),
    "autoencoder": ("ConvAutoencoder", {"width": 32, "levels": 2, "channels": 1}),
}
#: Noise levels (8-bit units) of the validation table.
VALIDATION_SIGMAS = (15.0, 25.0, 50.0)
#: Training precisions: fp32, or bfloat16 autocast with fp32 master weights.
TRAIN_PRECISIONS = ("fp32", "bf16")


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in checkpoints and the model card.

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    data : str
        Folder of training images.
    out : str
        Output folder for checkpoints, weights and model card.
    val : str or None
        Folder of validation images; when None, ``holdout`` images of ``data`` are held out.
    holdout : int
        Images of ``data`` held out for validation when ``val`` is None (every k-th by name).
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
        (see :func:`recalibrate_batch_norm`); 0 (the default) keeps the running averages of
        training.
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
        if self.model not in MODELS:
            raise InvalidParameterError(
                f"unknown model '{self.model}'; trainable models: {', '.join(MODELS)}")
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
        name, defaults = MODELS[self.model]
        unknown = sorted(set(self.architecture) - set(defaults))
        if unknown:
            raise InvalidParameterError(
                f"model '{self.model}' has no hyper-parameter {unknown[0]!r}; "
                f"its hyper-parameters are: {', '.join(defaults)}")
        return {"name": name, **defaults, **self.architecture}

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["levels"] = list(self.levels)
        return data


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    weights: Path
    card: dict


# ---------------------------------------------------------------------------------- data


@dataclass
class TrainingData:
    """Training and validation images in memory, float32 (H, W) in [0, 1]."""

    train: list[np.ndarray]
    val: dict[str, np.ndarray]
    description: dict


def load_training_data(config: TrainConfig) -> TrainingData:
    """Read the training (and validation) images once; grayscale only.

    Raises
    ------
    DataError
        For a missing folder, a colour image, an image smaller than the patch, or no
        validation image left.
    """
    from bench.datasets import load_dataset

    loaded = load_dataset(f"folder:{config.data}")
    names = list(loaded.images)
    if config.val is not None:
        val_loaded = load_dataset(f"folder:{config.val}")
        val_names, val_images = list(val_loaded.images), val_loaded.images
        train_names = names
        val_info = {"name": Path(config.val).name, "images": len(val_names),
                    "sha256": val_loaded.content_hash}
    else:
        if not 1 <= config.holdout < len(names):
            raise DataError(f"cannot hold out {config.holdout} of the {len(names)} images "
                            f"of '{config.data}' for validation")
        stride = len(names) // config.holdout
        val_names = names[::stride][:config.holdout]
        train_names = [n for n in names if n not in set(val_names)]
        val_images = loaded.images
        val_info = {"name": f"{Path(config.data).name} (held out)", "images": len(val_names),
                    "names": val_names}
    train = []
    for name in train_names:
        image = loaded.images[name]
        if image.ndim != 2:
            raise DataError(f"training image '{name}' is colour; the models train on grayscale")
        if min(image.shape) < config.patch:
            raise DataError(f"training image '{name}' is {image.shape[0]}x{image.shape[1]}, "
                            f"smaller than the {config.patch}-pixel patch")
        train.append(np.ascontiguousarray(image))
    val = {}
    for name in val_names:
        image = val_images[name]
        val[name] = image if image.ndim == 2 else image.mean(axis=-1).astype(np.float32)
    description = {
        "name": Path(config.data).name, "images": len(names), "train_images": len(train),
        "sha256": loaded.content_hash, "validation": val_info,
    }
    return TrainingData(train, val, description)


def sample_batch(images: list[np.ndarray], rng: np.random.Generator, batch: int, patch: int,
                 levels: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``batch`` augmented clean patches, their noisy versions and their sigmas.

    Parameters
    ----------
    images : list of numpy.ndarray
        Grayscale float32 images, each at least ``patch`` pixels a side.
    rng : numpy.random.Generator
        Source of every draw.
    batch, patch : int
        Number of patches and their side in pixels.
    levels : (float, float)
        Sigma range in 8-bit units.

    Returns
    -------
    clean, noisy : numpy.ndarray
        Float32 arrays (batch, 1, patch, patch); ``noisy`` is not clipped.
    sigma : numpy.ndarray
        Float32 (batch,) noise standard deviations in [0, 1] units.
    """
    clean = np.empty((batch, 1, patch, patch), dtype=np.float32)
    which = rng.integers(0, len(images), size=batch)
    transforms = rng.integers(0, 8, size=batch)
    for i in range(batch):
        image = images[which[i]]
        top = rng.integers(0, image.shape[0] - patch + 1)
        left = rng.integers(0, image.shape[1] - patch + 1)
        crop = image[top:top + patch, left:left + patch]
        crop = np.rot90(crop, transforms[i] % 4)
        clean[i, 0] = crop[:, ::-1] if transforms[i] >= 4 else crop
    sigma = (rng.uniform(levels[0], levels[1], size=batch) / 255).astype(np.float32)
    noise = rng.standard_normal(clean.shape, dtype=np.float32)
    noisy = clean + sigma[:, None, None, None] * noise
    return clean, noisy, sigma


def validation_set(images: dict[str, np.ndarray], seed: int,
                   sigmas: tuple[float, ...] = VALIDATION_SIGMAS) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Fixed noisy validation images: ``(sigma_8bit, clean, noisy)`` for each image and sigma."""
    rng = np.random.default_rng([seed, 7919])
    items = []
    for sigma in sigmas:
        for image in images.values():
            noisy = image + (sigma / 255) * rng.standard_normal(image.shape, dtype=np.float32)
            items.append((sigma, image, noisy.astype(np.float32)))
    return items


def validate(network, items, device: str) -> dict[str, float]:
    """Mean PSNR (dB, output clipped, data range 1) per sigma over the validation items."""
    import torch

    from bench.metrics import PSNR

    psnr = PSNR()

    was_training = network.training
    network.eval()
    scores: dict[float, list[float]] = {}
    with torch.inference_mode():
        for sigma, clean, noisy in items:
            x = torch.from_numpy(noisy)[None, None].to(device)
            s = torch.full((1,), sigma / 255, device=device)
            out = network(x, s)[0, 0].float().cpu().numpy()
            scores.setdefault(sigma, []).append(psnr(clean, np.clip(out, 0.0, 1.0)))
    network.train(was_training)
    return {f"{sigma:g}": float(np.mean(v)) for sigma, v in scores.items()}


def forward_precision(config: TrainConfig):
    """The autocast context of a training forward pass: bfloat16 for ``bf16``, else a no-op."""
    import torch

    return torch.autocast(device_type=config.device, dtype=torch.bfloat16,
                          enabled=config.precision == "bf16")


def recalibrate_batch_norm(network, images: list[np.ndarray], rng: np.random.Generator,
                           config: TrainConfig, batches: int) -> None:
    """Re-estimate every batch-norm layer's running statistics over ``batches`` fresh batches.

    During training the running mean and variance are an exponential average of the last few
    dozen batches, taken while the weights still moved, so they are noisy (the validation
    PSNR of consecutive checkpoints wanders by tenths of a dB). Averaging the batch statistics
    of many batches with the final weights ("precise BN", Wu & Johnson, "Rethinking 'Batch'
    in BatchNorm", 2021) removes that noise. Only the buffers change; no weight is trained.
    """
    import torch

    norms = [m for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or batches < 1:
        return
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average of the batch statistics
    was_training = network.training
    network.train()
    with torch.no_grad(), forward_precision(config):
        for _ in range(batches):
            _, noisy, sigma = sample_batch(images, rng, config.batch, config.patch, config.levels)
            network(torch.from_numpy(noisy).to(config.device, memory_format=torch.channels_last),
                    torch.from_numpy(sigma).to(config.device))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    network.train(was_training)


# ----------------------------------------------------------------------- checkpoints


def learning_rate(config: TrainConfig, step: int) -> float:
    """Cosine decay from ``lr`` at step 0 to ``lr / 100`` at the last step."""
    progress = min(1.0, step / max(1, config.steps - 1))
    return config.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def save_checkpoint(out: Path, network, optimizer, step: int, rng: np.random.Generator,
                    state: dict) -> None:
    """Write ``checkpoint.safetensors`` (tensors) and ``checkpoint.json`` (the rest), atomically."""
    import os

    from safetensors.torch import save_file

    from denoisers.model_io import write_json

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    optim = optimizer.state_dict()
    for index, values in optim["state"].items():
        for key, value in values.items():
            tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous().reshape(value.shape)
    tmp = out / "checkpoint.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, out / "checkpoint.safetensors")
    write_json(out / "checkpoint.json", dict(
        state, step=step, rng=rng.bit_generator.state, param_groups=optim["param_groups"],
    ))


def load_checkpoint(out: Path, network, optimizer, config: TrainConfig) -> tuple[int, dict]:
    """Restore a checkpoint into ``network`` and ``optimizer``; return (step, saved state).

    Raises
    ------
    WeightsError
        When the checkpoint is missing, unreadable, or was made with another configuration.
    """
    import torch

    from denoisers.model_io import load_state, read_tensors

    path = out / "checkpoint.json"
    if not path.is_file():
        raise WeightsError(f"nothing to resume: '{path}' is missing")
    try:
        saved = json.loads(path.read_text())
    except ValueError as error:
        raise WeightsError(f"checkpoint '{path}' is not readable JSON: {error}") from None
    previous = dict(saved["config"])
    current = config.to_dict()
    for key in ("model", "architecture", "seed", "batch", "patch", "levels", "noise", "lr"):
        if previous.get(key) != current.get(key):
            raise WeightsError(
                f"checkpoint '{path}' was made with {key}={previous.get(key)!r}, "
                f"not {current.get(key)!r}; resume with the same settings or a new --out")
    tensors = read_tensors(out / "checkpoint.safetensors")
    model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    load_state(network, model, out / "checkpoint.safetensors")
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    device = next(network.parameters()).device
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    for values in optimizer.state.values():
        for name, value in values.items():
            if torch.is_tensor(value) and name != "step":
                values[name] = value.to(device)
    return int(saved["step"]), saved


# ---------------------------------------------------------------------------- training


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True,
          log=None) -> TrainResult:
    """Train ``config.model`` and write its weights and model card into ``config.out``.

    Parameters
    ----------
    config : TrainConfig
        The run's settings.
    resume : bool
        Continue from ``OUT/checkpoint.*`` instead of starting afresh.
    progress : bool
        Show a rich progress bar (loss, patches/s, latest validation PSNR) on a terminal;
        elsewhere one line is logged per validation.
    log : callable, optional
        ``log(text)`` for the per-validation lines (default: print to stderr).

    Returns
    -------
    TrainResult
        The weights path and the model card.
    """
    import torch

    from denoisers.model_io import build_network, load_weights, save_weights, shipped_weights

    config.check()
    architecture = config.architecture_spec()
    if config.device == "cuda" and not torch.cuda.is_available():
        from bench.errors import DeviceError

        raise DeviceError("--device cuda: no CUDA GPU is available here (torch sees none)")
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))

    data = load_training_data(config)
    val_items = validation_set(data.val, config.seed)

    torch.manual_seed(config.seed)
    network = build_network(architecture, source=f"model '{config.model}'")
    initial_card = None
    if config.init_from is not None:
        source = shipped_weights(config.model) if config.init_from == "shipped" else Path(config.init_from)
        initial, initial_card = load_weights(source)
        if initial.state_dict().keys() != network.state_dict().keys():
            raise WeightsError(f"'{source}' does not hold a {architecture['name']} like {architecture}")
        network.load_state_dict(initial.state_dict(), strict=True)
    network.to(config.device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    rng = np.random.default_rng(config.seed)

    step, history, elapsed = 0, [], 0.0
    if resume:
        step, saved = load_checkpoint(out, network, optimizer, config)
        rng.bit_generator.state = saved["rng"]
        history, elapsed = saved["history"], float(saved["elapsed_s"])
        log(f"resumed {config.model} at step {step} of {config.steps}")

    latest = history[-1]["psnr"] if history else {}
    started = time.perf_counter() - elapsed
    window_start, window_patches = time.perf_counter(), 0
    speed, loss_value = 0.0, math.nan
    with _TrainProgress(progress, config.steps, step) as bar:
        while step < config.steps:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            clean, noisy, sigma = sample_batch(data.train, rng, config.batch, config.patch,
                                               config.levels)
            clean_t = torch.from_numpy(clean).to(config.device)
            noisy_t = torch.from_numpy(noisy).to(config.device, memory_format=torch.channels_last)
            sigma_t = torch.from_numpy(sigma).to(config.device)
            optimizer.zero_grad(set_to_none=True)
            with forward_precision(config):
                denoised = network(noisy_t, sigma_t)
            loss = torch.nn.functional.mse_loss(denoised.float(), clean_t)
            loss.backward()
            optimizer.step()
            step += 1
            window_patches += config.batch
            loss_value = float(loss.detach())
            if step % 10 == 0 or step == config.steps:
                now = time.perf_counter()
                speed = window_patches / max(now - window_start, 1e-9)
                window_start, window_patches = now, 0
            if step % config.validate_every == 0 or step == config.steps:
                latest = validate(network, val_items, config.device)
                history.append({"step": step, "seconds": round(time.perf_counter() - started, 1),
                                "loss": loss_value, "psnr": latest})
                if not bar.enabled:
                    log(f"step {step}/{config.steps} loss {loss_value:.3g} "
                        f"{speed:.0f} patches/s val PSNR "
                        + " ".join(f"s{k}={v:.2f}" for k, v in latest.items()))
                window_start, window_patches = time.perf_counter(), 0  # speed excludes validation
            if step % config.checkpoint_every == 0 or step == config.steps:
                save_checkpoint(out, network, optimizer, step, rng, {
                    "config": config.to_dict(), "history": history,
                    "elapsed_s": time.perf_counter() - started,
                })
            bar.update(step, loss_value, speed, latest)

    if config.precise_bn:
        # Its own generator, so the training sequence (and resuming it) is unchanged.
        recalibrate_batch_norm(network, data.train, np.random.default_rng([config.seed, 2]),
                               config, config.precise_bn)
        latest = validate(network, val_items, config.device)
        history.append({"step": step, "seconds": round(time.perf_counter() - started, 1),
                        "precise_bn": config.precise_bn, "psnr": latest})
        log(f"batch-norm statistics re-estimated over {config.precise_bn} batches: val PSNR "
            + " ".join(f"s{k}={v:.2f}" for k, v in latest.items()))

    wall = time.perf_counter() - started
    card = {
        "model": config.model,
        "architecture": architecture,
        "parameters": sum(p.numel() for p in network.parameters()),
        "uses_sigma": bool(getattr(network, "uses_sigma", False)),
        "training": {
            "data": data.description,
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
            "device": _device_name(config.device),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            # Folders by name only: a card must not carry the paths of the machine it was made on.
            "command": {**config.to_dict(), **{key: Path(value).name
                                               for key in ("data", "val", "out", "init_from")
                                               if (value := getattr(config, key)) and value != "shipped"}},
        },
        "validation_psnr": latest,
        "validation_history": history,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    network.eval()
    weights = save_weights(network, out / f"{config.model}.safetensors", card)
    return TrainResult(weights, json.loads((out / f"{config.model}.json").read_text()))


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name()})"
    from bench.store.environment import cpu_description

    cpu = cpu_description()
    return f"cpu ({cpu['model']}, {cpu['cores']} cores)"


class _TrainProgress:
    """A rich progress bar with loss, patches/s and validation PSNR; inert when disabled."""

    def __init__(self, enabled: bool, total: int, start: int):
        self.enabled = enabled and sys.stderr.isatty()
        self.total, self.start = total, start
        self._progress = self._task = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                console=Console(stderr=True),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("train", total=self.total,
                                                 completed=self.start, info="")
        return self

    def update(self, step: int, loss: float, speed: float, latest: dict) -> None:
        if self._progress is None:
            return
        val = " ".join(f"{k}:{v:.2f}" for k, v in latest.items()) or "-"
        self._progress.update(self._task, completed=step,
                              info=f"loss {loss:.2e}  {speed:.0f} patches/s  val dB {val}")

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False
