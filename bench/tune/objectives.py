"""What a candidate parameter set scores: the objectives ``bench tune`` maximises or minimises.

:class:`CleanObjective` runs the candidate's cells on :mod:`bench.run`'s own workers — the
calling process (``serial``) or supervised worker processes (``process``), kept alive for
the whole tuning so that each trial costs only its cells — and scores only the objective
metric against the clean images. :class:`SelfSupervisedObjective` needs no clean image: it
scores the J-invariant loss of Batson and Royer (2019) on the noisy images, in this process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.plan import NO_SEED, REAL, REAL_LEVEL, Cell, noise_rng
from bench.tune.tuned import condition_key


@dataclass(frozen=True)
class Condition:
    """A noise at one level, with its other parameters: what one study tunes for."""

    noise: str
    level: float
    noise_params: tuple = ()

    @property
    def key(self) -> str:
        """``"gaussian@25"``."""
        return condition_key(self.noise, self.level)

    @property
    def real(self) -> bool:
        """Whether the noisy images are real photographs (no noise is generated)."""
        return self.noise == REAL


def real_condition() -> Condition:
    """The condition of real noisy images: noise ``real``, level 0, as ``bench run`` names it."""
    return Condition(REAL, REAL_LEVEL, ())


@dataclass
class Evaluation:
    """A candidate's score: the mean over images (NaN when a cell failed) and why it failed."""

    value: float
    scores: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every image was scored."""
        return self.error is None and math.isfinite(self.value)


class CleanObjective:
    """The mean of one metric over the tuning images, computed by :mod:`bench.run` workers.

    Parameters
    ----------
    images : list of (dataset spec, image name, paired)
        The tuning images; ``paired`` marks images of a real noisy/clean pairs dataset.
    seeds : list of int
        Noise seeds: each gives one noisy copy of every image.
    metric : str
        The registered metric to score (the only one computed).
    crop : int or None
        Central crop of every image.
    executor : {"serial", "process"}
        Where the cells run.
    jobs : int
        Worker processes (``process``).
    timeout : float
        Seconds one cell may take before its worker is stopped (``process``).
    registry : bench.registry.Registry
        The registry of this process (``serial``).
    registry_factory : str or None
        How worker processes build the same registry.
    """

    def __init__(self, images, seeds, metric: str, *, crop, executor: str, jobs: int,
                 timeout: float, registry, registry_factory: str | None = None):
        from bench.protocol import preset
        from bench.run.worker import WorkerConfig

        self.images, self.seeds, self.metric = list(images), list(seeds), metric
        self.executor, self.timeout = executor, timeout
        self.config = WorkerConfig(crop=crop, repeats=1, protocol=preset("default"),
                                   metrics=(metric,), registry_factory=registry_factory,
                                   workers=jobs, timing="parallel" if jobs > 1 else "exclusive")
        self.jobs, self.registry = jobs, registry
        self._runner = self._supervisor = None

    def cells(self, denoiser: str, condition: Condition, params: tuple) -> list[Cell]:
        """The cells of one candidate: one per image and seed, oracle mode, on the CPU."""
        if condition.real:
            return [Cell(dataset, image, REAL, REAL_LEVEL, (), NO_SEED, "oracle", denoiser,
                         params, "cpu") for dataset, image, paired in self.images if paired]
        return [Cell(dataset, image, condition.noise, condition.level, condition.noise_params,
                     int(seed), "oracle", denoiser, params, "cpu")
                for dataset, image, paired in self.images if not paired for seed in self.seeds]

    def evaluate(self, denoiser: str, condition: Condition,
                 candidates: list[tuple]) -> list[Evaluation]:
        """Score every candidate (a sorted tuple of ``(name, value)`` parameters).

        The cells of all candidates go out at once, grouped by noisy image, so that the
        workers are busy whatever the number of candidates.
        """
        cells = {params: self.cells(denoiser, condition, params) for params in candidates}
        groups: dict[tuple, list[Cell]] = {}
        for params in candidates:
            for cell in cells[params]:
                groups.setdefault(cell.noise_key(), []).append(cell)
        outcome: dict[str, tuple[float, str | None]] = {}

        def on_result(cell, result) -> None:
            if isinstance(result, str):
                outcome[cell.id] = (math.nan, result)
            elif result.record.status != "ok":
                outcome[cell.id] = (math.nan, result.record.error)
            else:
                outcome[cell.id] = (float(result.record.scores[self.metric]), None)

        def on_lost(cell, status: str, reason: str) -> None:
            outcome[cell.id] = (math.nan, f"{status}: {reason}")

        self._run(list(groups.values()), on_result, on_lost)
        evaluations = []
        for params in candidates:
            results = [outcome.get(cell.id, (math.nan, "no result")) for cell in cells[params]]
            errors = [error for _, error in results if error]
            scores = [value for value, _ in results]
            value = float(np.mean(scores)) if scores and not errors else math.nan
            evaluations.append(Evaluation(value, scores, errors[0] if errors else None))
        return evaluations

    def _run(self, groups, on_result, on_lost) -> None:
        if self.executor == "serial":
            from threadpoolctl import threadpool_limits

            from bench.run.worker import CellRunner, one_line

            if self._runner is None:
                self._runner = CellRunner(self.config, self.registry)
            with threadpool_limits(self.config.threads):
                for group in groups:
                    for cell in group:
                        try:
                            result = self._runner.run(cell)
                        except Exception as error:
                            result = one_line(error)
                        on_result(cell, result)
            return
        from bench.run.executors import clean_image
        from bench.run.supervisor import Supervisor

        if self._supervisor is None:
            self._supervisor = Supervisor(self.config, self.jobs, self.timeout)
        self._supervisor.run(groups, on_result, on_lost, lane=clean_image)

    def close(self) -> None:
        """Stop the worker processes."""
        if self._supervisor is not None:
            self._supervisor.close()
            self._supervisor = None
        self._runner = None


class SelfSupervisedObjective:
    """The J-invariant self-supervised loss, averaged over the noisy images (lower is better).

    For each image the denoiser is made J-invariant by masking (a grid of ``stride`` x
    ``stride`` pixel offsets, each masked pixel replaced by the mean of its four neighbours,
    :func:`skimage.restoration.denoise_invariant`), and the loss is the mean squared
    difference between that output and the noisy image. Batson and Royer, "Noise2Self: blind
    denoising by self-supervision", ICML 2019, show that this loss equals the error against
    the unknown clean image plus a constant **when the noise of each pixel is independent of
    the others** (given the clean image); for correlated noise (demosaicked or compressed
    photographs) it favours too little smoothing.

    Parameters
    ----------
    images : list of (dataset spec, image name, paired)
        The images. With a synthetic noise they are clean images, made noisy here exactly as
        ``bench run`` does; with noise ``real`` they are the noisy images themselves (a
        pairs dataset gives its noisy images; its clean ones are not looked at).
    seeds : list of int
        Noise seeds (synthetic noise).
    crop : int or None
        Central crop of every image.
    registry : bench.registry.Registry
    stride : int
        Mask spacing in pixels: ``stride ** 2`` denoiser calls per image and candidate.
    """

    def __init__(self, images, seeds, *, crop, registry, stride: int = 4):
        self.images, self.seeds, self.crop = list(images), list(seeds), crop
        self.registry, self.stride = registry, stride
        self._noisy: dict[Condition, list[tuple[np.ndarray, float | None]]] = {}
        self._datasets: dict[str, object] = {}

    def noisy_images(self, condition: Condition) -> list[tuple[np.ndarray, float | None]]:
        """The noisy images of ``condition`` with the sigma handed to the denoiser (the exact
        sigma of a synthetic noise; None, i.e. estimated by the denoiser, for real noise)."""
        from bench.datasets import open_dataset, read_image

        if condition in self._noisy:
            return self._noisy[condition]
        images = []
        for dataset, name, paired in self.images:
            if dataset not in self._datasets:
                self._datasets[dataset] = open_dataset(dataset, self.registry)
            source = self._datasets[dataset]
            if condition.real:
                images.append((read_image(source, name, crop=self.crop, noisy=paired), None))
                continue
            if paired:
                continue
            clean = read_image(source, name, crop=self.crop)
            noise = self.registry.create_noise(condition.noise)
            for seed in self.seeds:
                rng = noise_rng(seed, name, condition.noise, condition.level)
                made = noise.apply(clean, condition.level, rng, **dict(condition.noise_params))
                images.append((made.image, made.sigma))
        self._noisy[condition] = images
        return images

    def loss(self, denoiser, noisy: np.ndarray, sigma: float | None) -> float:
        """The self-supervised loss of ``denoiser`` on one noisy image."""
        from skimage.restoration import denoise_invariant

        colour = noisy.ndim == 3

        def function(image, channel_axis=None):
            return denoiser.denoise(np.ascontiguousarray(image, dtype=np.float32), sigma)

        output = denoise_invariant(noisy.astype(np.float32), function, stride=self.stride,
                                   denoiser_kwargs={"channel_axis": -1} if colour else None)
        difference = output.astype(np.float64) - noisy.astype(np.float64)
        return float(np.mean(difference * difference))

    def evaluate(self, denoiser: str, condition: Condition,
                 candidates: list[tuple]) -> list[Evaluation]:
        """Score every candidate; a denoiser that raises fails its candidate only."""
        from bench.run.worker import one_line

        images = self.noisy_images(condition)
        evaluations = []
        for params in candidates:
            try:
                instance = self.registry.create_denoiser(denoiser, **dict(params))
                scores = [self.loss(instance, noisy, sigma) for noisy, sigma in images]
                evaluations.append(Evaluation(float(np.mean(scores)), scores))
            except Exception as error:
                evaluations.append(Evaluation(math.nan, [], one_line(error)))
        return evaluations

    def close(self) -> None:
        """Nothing to stop: the loss runs in this process."""
