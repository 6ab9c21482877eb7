"""The optimisation loop: random noisy patches in, trained weights and a model card out.

Each step draws a batch of patches (:func:`denoisers.training.data.sample_batch`), runs the
network and takes one Adam step on the mean squared error to the clean patches; the learning
rate follows a cosine decay to 1/100 of ``lr``. With ``precision="bf16"`` the forward pass runs
under bfloat16 autocast with fp32 master weights and an fp32 loss (on CPUs with AMX this
trains about 4x faster than fp32); the network is kept in channels-last layout, which oneDNN
and cuDNN convolve faster. Validation always runs in fp32.

Every ``checkpoint_every`` steps a checkpoint is written (:mod:`denoisers.training.checkpoint`);
``resume=True`` continues from it. At the end ``OUT/MODEL.safetensors`` and its model card
``OUT/MODEL.json`` are written (:mod:`denoisers.training.card`, :mod:`denoisers.model_io`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import WeightsError
from bench.progress import ProgressBar
from denoisers.training.card import model_card
from denoisers.training.checkpoint import load_checkpoint, save_checkpoint
from denoisers.training.config import TrainConfig, TrainResult
from denoisers.training.data import load_training_data, sample_batch, validation_set


@dataclass
class TrainingState:
    """What a run carries from step to step (and what a checkpoint restores).

    Attributes
    ----------
    network, optimizer : torch.nn.Module, torch.optim.Adam
        The network being trained and its optimiser.
    rng : numpy.random.Generator
        The source of every training patch and noise draw.
    step : int
        Steps done.
    history : list of dict
        Validation entries, oldest first.
    started : float
        ``time.perf_counter()`` at the start of training, earlier sessions included.
    """

    network: object
    optimizer: object
    rng: np.random.Generator
    step: int
    history: list[dict]
    started: float

    def seconds(self) -> float:
        """Seconds of training so far, earlier sessions included."""
        return time.perf_counter() - self.started


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
    from denoisers.model_io import card_path, save_weights

    architecture = _prepare(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    log = log or _print_to_stderr

    data = load_training_data(config)
    val_items = validation_set(data.val, config.seed)
    network, initial_card = network_to_train(config, architecture)
    state = _start(config, network, out, resume, log)
    _optimise(config, state, data.train, val_items, out, progress, log)
    if config.precise_bn:
        _precise_bn(config, state, data.train, val_items, log)

    card = model_card(config, architecture, state.network, data.description, state.history,
                      state.seconds(), initial_card)
    state.network.eval()
    weights = save_weights(state.network, out / f"{config.model}.safetensors", card)
    return TrainResult(weights, json.loads(card_path(weights).read_text()))


def _prepare(config: TrainConfig) -> dict:
    """Check the settings and the device, set torch's threads; return the architecture."""
    import torch

    config.check()
    architecture = config.architecture_spec()
    if config.device == "cuda" and not torch.cuda.is_available():
        from bench.errors import DeviceError

        raise DeviceError("--device cuda: no CUDA GPU is available here (torch sees none)")
    if config.threads:
        torch.set_num_threads(config.threads)
    return architecture


def _print_to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def network_to_train(config: TrainConfig, architecture: dict):
    """Build the network, seeded by ``config.seed``, or load ``config.init_from`` into it.

    Returns
    -------
    network : torch.nn.Module
        In training mode, on ``config.device``, channels-last.
    initial_card : dict or None
        The model card of the starting weights, when there are some.
    """
    import torch

    from denoisers.model_io import build_network, load_weights

    torch.manual_seed(config.seed)
    network = build_network(architecture, source=f"model '{config.model}'")
    initial_card = None
    if config.init_from is not None:
        source = (config.shipped_weights() if config.init_from == "shipped"
                  else Path(config.init_from))
        initial, initial_card = load_weights(source)
        if initial.state_dict().keys() != network.state_dict().keys():
            raise WeightsError(f"'{source}' does not hold a {architecture['name']} like {architecture}")
        network.load_state_dict(initial.state_dict(), strict=True)
    network.to(config.device, memory_format=torch.channels_last).train()
    return network, initial_card


def _start(config: TrainConfig, network, out: Path, resume: bool, log) -> TrainingState:
    """A fresh optimiser and generator, or the state of the checkpoint in ``out``."""
    import torch

    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    rng = np.random.default_rng(config.seed)
    step, history, elapsed = 0, [], 0.0
    if resume:
        step, saved = load_checkpoint(out, network, optimizer, config)
        rng.bit_generator.state = saved["rng"]
        history, elapsed = saved["history"], float(saved["elapsed_s"])
        log(f"resumed {config.model} at step {step} of {config.steps}")
    return TrainingState(network, optimizer, rng, step, history, time.perf_counter() - elapsed)


def _optimise(config: TrainConfig, state: TrainingState, images: list[np.ndarray],
              val_items: list, out: Path, progress: bool, log) -> None:
    """Step until ``config.steps``: validate, checkpoint and report on the way."""
    speed = _Throughput()
    loss = math.nan
    bar = ProgressBar(progress and sys.stderr.isatty(), config.steps, title="train",
                      completed=state.step)
    with bar:
        while state.step < config.steps:
            loss = train_step(config, state.network, state.optimizer, images, state.rng,
                              state.step)
            state.step += 1
            last = state.step == config.steps
            speed.add(config.batch, measure=state.step % 10 == 0 or last)
            if state.step % config.validate_every == 0 or last:
                scores = validate(state.network, val_items, config.device)
                state.history.append({"step": state.step, "seconds": round(state.seconds(), 1),
                                      "loss": loss, "psnr": scores})
                if not bar.enabled:
                    log(f"step {state.step}/{config.steps} loss {loss:.3g} "
                        f"{speed.value:.0f} patches/s val PSNR " + _scores(scores, "s{}={:.2f}"))
                speed.restart()  # the speed excludes validation
            if state.step % config.checkpoint_every == 0 or last:
                save_checkpoint(out, state.network, state.optimizer, state.step, state.rng, {
                    "config": config.to_dict(), "history": state.history,
                    "elapsed_s": state.seconds(),
                })
            latest = state.history[-1]["psnr"] if state.history else {}
            bar.update(state.step, f"loss {loss:.2e}  {speed.value:.0f} patches/s  val dB "
                       + (_scores(latest, "{}:{:.2f}") or "-"))


def _scores(psnr: dict[str, float], form: str) -> str:
    return " ".join(form.format(sigma, value) for sigma, value in psnr.items())


class _Throughput:
    """Patches per second, measured over windows that the caller ends and restarts."""

    def __init__(self):
        self.value = 0.0
        self.restart()

    def restart(self) -> None:
        self._start, self._patches = time.perf_counter(), 0

    def add(self, patches: int, *, measure: bool) -> None:
        self._patches += patches
        if measure:
            now = time.perf_counter()
            self.value = self._patches / max(now - self._start, 1e-9)
            self._start, self._patches = now, 0


def train_step(config: TrainConfig, network, optimizer, images: list[np.ndarray],
               rng: np.random.Generator, step: int) -> float:
    """One optimiser step on a fresh batch at the learning rate of ``step``; return the loss."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = learning_rate(config, step)
    clean, noisy, sigma = sample_batch(images, rng, config.batch, config.patch, config.levels)
    clean_t = torch.from_numpy(clean).to(config.device)
    noisy_t = torch.from_numpy(noisy).to(config.device, memory_format=torch.channels_last)
    sigma_t = torch.from_numpy(sigma).to(config.device)
    optimizer.zero_grad(set_to_none=True)
    with forward_precision(config):
        denoised = network(noisy_t, sigma_t)
    loss = torch.nn.functional.mse_loss(denoised.float(), clean_t)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def learning_rate(config: TrainConfig, step: int) -> float:
    """Cosine decay from ``lr`` at step 0 to ``lr / 100`` at the last step."""
    progress = min(1.0, step / max(1, config.steps - 1))
    return config.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def _precise_bn(config: TrainConfig, state: TrainingState, images: list[np.ndarray],
                val_items: list, log) -> None:
    """Re-estimate the batch-norm statistics, validate, and record it in the history."""
    # Its own generator, so the training sequence (and resuming it) is unchanged.
    recalibrate_batch_norm(state.network, images, np.random.default_rng([config.seed, 2]),
                           config, config.precise_bn)
    scores = validate(state.network, val_items, config.device)
    state.history.append({"step": state.step, "seconds": round(state.seconds(), 1),
                          "precise_bn": config.precise_bn, "psnr": scores})
    log(f"batch-norm statistics re-estimated over {config.precise_bn} batches: val PSNR "
        + _scores(scores, "s{}={:.2f}"))


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
