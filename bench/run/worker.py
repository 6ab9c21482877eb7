"""What runs a cell, wherever it runs: in the main process, a worker process or a Dask worker.

A :class:`CellRunner` holds a worker's state: the registry, the images it has read, the last
noisy image (cells are dispatched grouped by noisy image, so it is generated once), and one
set-up, warmed-up instance per denoiser (models load once per worker, not once per cell).
Noisy images are generated here from (image, noise, level, seed), never shipped around.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from bench import metrics
from bench.store.artifacts import to_png_bytes
from bench.datasets import centre_crop
from bench.interfaces import Denoiser, estimate_sigma
from bench.memory import PeakMemory
from bench.sweep import Cell, noise_rng
from bench.timing import megapixels_per_second, time_call

#: Side of the crop used for the warm-up call of each denoiser.
WARMUP_SIZE = 32
#: Decoded images a worker keeps in memory.
IMAGE_CACHE = 32
#: Environment variables that size native thread pools; set in worker processes before
#: numpy, OpenCV or torch are imported.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs besides the cells; small and picklable.

    Attributes
    ----------
    crop : int or None
        Central crop applied to every image.
    repeats : int
        Timed calls per cell.
    round8 : bool
        Round outputs to 8 bits before scoring.
    visual : frozenset of (dataset, image)
        Images whose crops are returned for the report (seed ``visual_seed`` only).
    visual_seed : int
    visual_size : int
    save_outputs : bool
        Return every denoised image as a PNG.
    registry_factory : str or None
        ``"module:function"`` building the registry in the worker; the default registry
        (built-ins and installed plugins) when None.
    threads : int
        Threads each native library may use in a worker.
    workers : int
        Number of workers running concurrently, recorded with every throughput figure.
    """

    crop: int | None = None
    repeats: int = 1
    round8: bool = False
    visual: frozenset = frozenset()
    visual_seed: int = 0
    visual_size: int = 96
    save_outputs: bool = False
    registry_factory: str | None = None
    threads: int = 1
    workers: int = 1


@dataclass
class CellResult:
    """One finished cell: its result row and the images to keep (role -> PNG bytes)."""

    row: dict
    images: dict[str, bytes] = field(default_factory=dict)


def pin_threads(threads: int) -> None:
    """Limit the native thread pools of this process (BLAS/OpenMP, OpenCV, torch)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def build_registry(factory: str | None):
    """The registry named by ``factory`` (``"module:function"``), or the default one."""
    from bench.registry import default_registry

    if factory is None:
        return default_registry()
    import importlib

    module, _, function = factory.partition(":")
    return getattr(importlib.import_module(module), function)()


def gpu_name() -> str:
    """Name of the current CUDA device (torch is loaded whenever a cell runs on CUDA)."""
    import torch

    return torch.cuda.get_device_name(torch.cuda.current_device())


def check_output(output, shape: tuple[int, ...]) -> np.ndarray:
    """Validate a denoiser's output at the boundary and return it as float32.

    Raises
    ------
    ValueError
        With the reason, when the output is not an array of ``shape`` with finite values.
    """
    if not isinstance(output, np.ndarray):
        raise ValueError(f"returned {type(output).__name__}, expected a numpy array")
    if output.shape != shape:
        raise ValueError(f"returned shape {output.shape}, expected {shape}")
    if not np.issubdtype(output.dtype, np.number):
        raise ValueError(f"returned dtype {output.dtype}, expected a numeric array")
    if not np.all(np.isfinite(output)):
        raise ValueError("returned non-finite values (NaN or inf)")
    return output.astype(np.float32, copy=False)


def one_line(error: BaseException) -> str:
    """``Type: message`` on a single line, for the ``error`` column."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclass
class _NoisyImage:
    key: tuple
    clean: np.ndarray
    noisy: object  # bench.interfaces.NoisyImage
    scores: tuple[float, float]
    blind_sigma: float | None = None


class CellRunner:
    """Runs cells in the current process, keeping images, noisy images and denoisers warm."""

    def __init__(self, config: WorkerConfig, registry=None):
        self.config = config
        self.registry = registry if registry is not None else build_registry(config.registry_factory)
        self._datasets: dict[str, object] = {}
        self._images: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._denoisers: dict[tuple, Denoiser | Exception] = {}
        self._warm_shapes: set[tuple] = set()
        self._noisy: _NoisyImage | None = None

    def image(self, dataset: str, name: str) -> np.ndarray:
        """The clean image ``name`` of ``dataset``, read once and cached."""
        from bench.datasets import open_dataset, read_image

        key = (dataset, name)
        if key not in self._images:
            if dataset not in self._datasets:
                self._datasets[dataset] = open_dataset(dataset, self.registry)
            self._images[key] = read_image(self._datasets[dataset], name, crop=self.config.crop)
            while len(self._images) > IMAGE_CACHE:
                self._images.popitem(last=False)
        self._images.move_to_end(key)
        return self._images[key]

    def noisy(self, cell: Cell) -> _NoisyImage:
        """The noisy image of ``cell`` and its scores, generated once per noise key."""
        key = cell.noise_key()
        if self._noisy is None or self._noisy.key != key:
            clean = self.image(cell.dataset, cell.image)
            noise = self.registry.create_noise(cell.noise)
            rng = noise_rng(cell.seed, cell.image, cell.noise, cell.level)
            noisy = noise.apply(clean, cell.level, rng, **dict(cell.noise_params))
            scores = (metrics.psnr(clean, noisy.image, clip=False),
                      metrics.ssim(clean, noisy.image, clip=False))
            self._noisy = _NoisyImage(key, clean, noisy, scores)
        return self._noisy

    def denoiser(self, cell: Cell, sample: np.ndarray) -> Denoiser:
        """The set-up, warmed-up denoiser of ``cell``; a set-up failure is re-raised per cell."""
        key = (cell.denoiser, cell.params, cell.device)
        if key not in self._denoisers:
            try:
                denoiser = self.registry.create_denoiser(cell.denoiser, **dict(cell.params))
                denoiser.setup(cell.device)
                self._denoisers[key] = denoiser
            except Exception as error:
                self._denoisers[key] = error
            else:
                warm = np.ascontiguousarray(sample[:WARMUP_SIZE, :WARMUP_SIZE])
                try:
                    denoiser.denoise(warm, 25 / 255)
                    denoiser.synchronize()
                except Exception:
                    pass  # the timed call will fail and record why
        instance = self._denoisers[key]
        if isinstance(instance, Exception):
            raise instance
        return instance

    def _warm_shape(self, cell: Cell, denoiser: Denoiser, image: np.ndarray, sigma) -> None:
        """One untimed call at this image shape for denoisers whose first call per shape is slow."""
        key = (cell.denoiser, cell.params, cell.device, image.shape)
        if denoiser.warm_per_shape and key not in self._warm_shapes:
            self._warm_shapes.add(key)
            denoiser.denoise(image.copy(), sigma)
            denoiser.synchronize()

    def run(self, cell: Cell) -> CellResult:
        """Run one cell. Every failure of the denoiser becomes a failed row with its reason."""
        noisy_image = self.noisy(cell)
        clean, noisy = noisy_image.clean, noisy_image.noisy
        if cell.mode == "blind" and noisy_image.blind_sigma is None:
            noisy_image.blind_sigma = estimate_sigma(noisy.image)
        height, width = clean.shape[:2]
        sigma = noisy.sigma if cell.mode == "oracle" else None
        row = {
            "dataset": cell.dataset, "image": cell.image, "height": height, "width": width,
            "channels": 1 if clean.ndim == 2 else clean.shape[2], "noise": cell.noise,
            "level": cell.level, "noise_params": json.dumps(dict(cell.noise_params)),
            "seed": cell.seed, "mode": cell.mode,
            "sigma_used": 255 * (noisy.sigma if sigma is not None else noisy_image.blind_sigma),
            "denoiser": cell.denoiser, "params": json.dumps(dict(cell.params), default=str),
            "device": cell.device, "psnr": math.nan, "ssim": math.nan,
            "noisy_psnr": noisy_image.scores[0], "noisy_ssim": noisy_image.scores[1],
            "seconds": math.nan, "mpix_per_s": math.nan, "status": "failed", "error": "",
            "workers": self.config.workers, "peak_memory_mb": math.nan,
            "gpu": gpu_name() if cell.device == "cuda" else "", "precision": "",
        }
        output = None
        try:
            denoiser = self.denoiser(cell, noisy.image)
            params = denoiser.params()
            row["params"] = json.dumps(params, default=str)
            row["precision"] = str(params.get("precision", ""))
            self._warm_shape(cell, denoiser, noisy.image, sigma)
            image = noisy.image.copy()  # a denoiser that writes into its input must not leak
            with PeakMemory(cell.device) as memory:
                output, seconds = time_call(lambda: denoiser.denoise(image, sigma),
                                            repeats=self.config.repeats,
                                            synchronize=denoiser.synchronize)
            output = check_output(output, clean.shape)
            row.update(peak_memory_mb=memory.peak_mb,
                psnr=metrics.psnr(clean, output, round8=self.config.round8),
                ssim=metrics.ssim(clean, output, round8=self.config.round8),
                seconds=seconds, mpix_per_s=megapixels_per_second(height, width, seconds),
                status="ok",
            )
        except Exception as error:
            row["error"] = one_line(error)
            output = None
        return CellResult(row, self._images_to_keep(cell, clean, noisy.image, output))

    def _images_to_keep(self, cell: Cell, clean, noisy, output) -> dict[str, bytes]:
        images = {}
        if (cell.dataset, cell.image) in self.config.visual and cell.seed == self.config.visual_seed:
            size = self.config.visual_size
            images["clean"] = to_png_bytes(centre_crop(clean, size))
            images["noisy"] = to_png_bytes(centre_crop(noisy, size))
            if output is not None:
                images["denoised"] = to_png_bytes(centre_crop(output, size))
        if self.config.save_outputs and output is not None:
            images["output"] = to_png_bytes(output)
        return images
