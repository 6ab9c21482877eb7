"""What runs a cell, wherever it runs: in the main process, a worker process or a Dask worker.

A :class:`CellRunner` holds a worker's state: the registry, the images it has read, the last
noisy image (cells are dispatched grouped by noisy image, so it is generated once), and one
set-up, warmed-up instance per denoiser (models load once per worker, not once per cell).
Noisy images are generated here from (image, noise, level, seed), never shipped around.

On a GPU cell whose denoiser has the tensor path
(:meth:`bench.interfaces.Denoiser.denoise_tensor`) the clean and noisy images are uploaded once
per noisy image, the denoiser's output tensor is checked, prepared by the protocol stage and
scored on the device, and only the crops the report keeps (and the whole output with
``save_outputs``) come back to the host; ``WorkerConfig.tensor_path`` says where this applies.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np

from bench.datasets import centre_crop
from bench.interfaces import Denoiser, NoisyImage, estimate_sigma, rms
from bench.memory import SAMPLE_PERIOD, PeakMemory
from bench.plan import NO_SEED, Cell
from bench.protocol import Protocol
from bench.registry import build_registry
from bench.store.artifacts import to_png_bytes
from bench.store.results import CellRecord
from bench.run.worker_process import THREAD_VARIABLES
from bench.timing import megapixels_per_second, time_call

#: Side of the crop used for the warm-up call of each denoiser.
WARMUP_SIZE = 32
#: Noise level of the warm-up call, [0, 1] units (a typical level: 25 in 8-bit units).
WARMUP_SIGMA = 25 / 255
#: Decoded images a worker keeps in memory (clean, and noisy ones of real pairs).
IMAGE_CACHE = 32
#: Values of ``WorkerConfig.tensor_path``.
TENSOR_PATHS = ("auto", "always", "never")


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs besides the cells; small and picklable.

    Attributes
    ----------
    crop : int or None
        Central crop applied to every image.
    repeats : int
        Timed calls per cell.
    protocol : bench.protocol.Protocol
        How images are prepared for the metrics.
    metrics : tuple of str
        Registered metrics to score, the primary one first.
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
    timing : {"parallel", "exclusive"}
        How the throughput figures are taken, recorded with each.
    tensor_path : {"auto", "always", "never"}
        When a cell runs the denoiser's tensor path (denoise, output checks, protocol stage and
        metrics on the cell's device) rather than the array path: ``"auto"`` on every device
        but the CPU, ``"always"`` on the CPU too (tests, comparisons), ``"never"`` nowhere.
        Only denoisers that have one (``supports_tensor()``); the others take the array path.
    """

    crop: int | None = None
    repeats: int = 1
    protocol: Protocol = Protocol()
    metrics: tuple[str, ...] = ("psnr", "ssim")
    visual: frozenset = frozenset()
    visual_seed: int = 0
    visual_size: int = 96
    save_outputs: bool = False
    registry_factory: str | None = None
    threads: int = 1
    workers: int = 1
    timing: str = "exclusive"
    tensor_path: str = "auto"

    def __post_init__(self):
        if self.tensor_path not in TENSOR_PATHS:
            raise ValueError(f"tensor_path must be one of {', '.join(TENSOR_PATHS)}, "
                             f"got {self.tensor_path!r}")


@dataclass
class CellResult:
    """One finished cell: its record and the images to keep (role -> PNG bytes)."""

    record: CellRecord
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


def check_output(output, shape: tuple[int, ...]) -> np.ndarray:
    """Validate a denoiser's output at the boundary and return it as float32.

    Raises
    ------
    ValueError
        With the reason, when the output is not a floating-point array of ``shape`` with
        finite values (an integer array, such as 8-bit 0-255 values, is refused: the
        convention is floats in [0, 1]).
    """
    if not isinstance(output, np.ndarray):
        raise ValueError(f"returned {type(output).__name__}, expected a numpy array")
    if output.shape != shape:
        raise ValueError(f"returned shape {output.shape}, expected {shape}")
    if not np.issubdtype(output.dtype, np.floating):
        raise ValueError(f"returned dtype {output.dtype}, expected a floating-point array "
                         "with values in [0, 1]")
    if not _all_finite(output):
        raise ValueError("returned non-finite values (NaN or inf)")
    return output.astype(np.float32, copy=False)


def _all_finite(array: np.ndarray) -> bool:
    """Whether every value of a floating-point ``array`` is finite."""
    # x.x is finite only if every x is (NaN and inf propagate; no term is negative, so nothing
    # cancels): one BLAS pass, without np.isfinite's image-sized temporary. When it is not
    # finite, or overflows on huge values, np.isfinite decides.
    if array.dtype in (np.float32, np.float64):
        flat = array.reshape(-1)
        if np.isfinite(np.dot(flat, flat)):
            return True
    return bool(np.isfinite(array).all())


def check_output_tensor(output, shape: tuple[int, ...], device):
    """:func:`check_output` for the tensor path: the same checks and messages, on the device.

    Returns the output as a float32 tensor. Raises ValueError when it is not a floating-point
    tensor of ``shape`` on ``device`` (a ``torch.device``) with finite values.
    """
    import torch

    if not isinstance(output, torch.Tensor):
        raise ValueError(f"returned {type(output).__name__}, expected a torch tensor")
    if tuple(output.shape) != shape:
        raise ValueError(f"returned shape {tuple(output.shape)}, expected {shape}")
    if not output.is_floating_point():
        dtype = str(output.dtype).removeprefix("torch.")
        raise ValueError(f"returned dtype {dtype}, expected a floating-point array "
                         "with values in [0, 1]")
    if output.device != device:
        raise ValueError(f"returned a tensor on {output.device}, expected one on {device}")
    if not bool(torch.isfinite(output).all()):
        raise ValueError("returned non-finite values (NaN or inf)")
    return output.detach().to(torch.float32)


def one_line(error: BaseException) -> str:
    """``Type: message`` on a single line, for the ``error`` column."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclass
class ScoredNoisyImage:
    """The noisy image of a group of cells, with its clean image and its scores."""

    key: tuple
    clean: np.ndarray
    noisy: NoisyImage
    scores: dict[str, float]
    reference: np.ndarray  # the clean image as the metrics take it (Protocol.reference)
    blind_sigma: float | None = None
    #: Device -> (reference, noisy) as tensors there, made once per noisy image (tensor path).
    tensors: dict = field(default_factory=dict)


class CellRunner:
    """Runs cells in the current process, keeping images, noisy images and denoisers warm."""

    def __init__(self, config: WorkerConfig, registry=None):
        self.config = config
        self.registry = registry if registry is not None else build_registry(config.registry_factory)
        self.metrics = {name: self.registry.create_metric(name) for name in config.metrics}
        self._warm_metrics()
        self._datasets: dict[str, object] = {}
        self._images: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._denoisers: dict[tuple, Denoiser | Exception] = {}
        #: Per denoiser: its parameters as JSON and whether it has the tensor path, read once.
        self._facts: dict[tuple, tuple[str, bool]] = {}
        self._warm_shapes: set[tuple] = set()
        self._last_seconds: dict[tuple, float] = {}  # last timed call per denoiser and shape
        self._peak_mb: dict[tuple, float] = {}  # last peak memory measured, the same keys
        self._noisy: ScoredNoisyImage | None = None

    def _warm_metrics(self) -> None:
        """Score a small image once with every metric, so that their libraries are imported
        before the worker reports ready rather than inside the first cell's deadline."""
        tiny = np.linspace(0.0, 1.0, 32 * 32).reshape(32, 32)
        self.config.protocol.score(self.metrics, tiny, tiny[::-1], output=True)

    def image(self, dataset: str, name: str, *, noisy: bool = False) -> np.ndarray:
        """The clean image ``name`` of ``dataset`` (or, for a pair, its noisy image), read
        once and cached."""
        from bench.datasets import open_dataset, read_image

        key = (dataset, name, noisy)
        if key not in self._images:
            if dataset not in self._datasets:
                self._datasets[dataset] = open_dataset(dataset, self.registry)
            self._images[key] = read_image(self._datasets[dataset], name, crop=self.config.crop,
                                           noisy=noisy)
            while len(self._images) > IMAGE_CACHE:
                self._images.popitem(last=False)
        self._images.move_to_end(key)
        return self._images[key]

    def noisy(self, cell: Cell) -> ScoredNoisyImage:
        """The noisy image of ``cell`` and its scores, generated once per noise key."""
        key = cell.noise_key()
        if self._noisy is None or self._noisy.key != key:
            clean = self.image(cell.dataset, cell.image)
            if cell.real:
                image = self.image(cell.dataset, cell.image, noisy=True)
                noisy = NoisyImage(image, rms(clean, image))
            else:
                noise = self.registry.create_noise(cell.noise)
                noisy = noise.apply(clean, cell.level, cell.rng(), **dict(cell.noise_params))
            protocol = self.config.protocol
            noisy = replace(noisy, image=protocol.input(noisy.image))
            reference = protocol.reference(clean)
            scores = protocol.score_prepared(self.metrics, reference, protocol.noisy(noisy.image))
            self._noisy = ScoredNoisyImage(key, clean, noisy, scores, reference)
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
                warm = sample[:WARMUP_SIZE, :WARMUP_SIZE].copy()  # never the image itself
                try:
                    denoiser.denoise(warm, WARMUP_SIGMA)
                    denoiser.synchronize()
                except Exception:
                    pass  # the timed call will fail and record why
        instance = self._denoisers[key]
        if isinstance(instance, Exception):
            raise instance
        return instance

    def _warm_shape(self, cell: Cell, denoiser: Denoiser, image, sigma, *,
                    tensor: bool = False) -> None:
        """One untimed call at this image shape (array or, with ``tensor``, tensor path) for
        denoisers whose first call per shape is slow."""
        key = (cell.denoiser, cell.params, cell.device, tuple(image.shape), tensor)
        if denoiser.warm_per_shape and key not in self._warm_shapes:
            self._warm_shapes.add(key)
            if tensor:
                denoiser.denoise_tensor(image.clone(), sigma)
            else:
                denoiser.denoise(image.copy(), sigma)
            denoiser.synchronize()

    def _timed(self, cell: Cell, denoiser: Denoiser, call, shape: tuple[int, ...]):
        """``call()`` timed (repeats, synchronised); returns (its output, seconds, the peak
        memory in MiB measured by :class:`PeakMemory`).

        On the CPU, a call whose last run at this shape was shorter than the sampling period
        (:data:`SAMPLE_PERIOD`) is not measured again: the sampler would not wake within it,
        and reading the allocator before and after cost more than 1 % of such a cell (it walks
        the free lists, out of cache); the peak measured at this shape stands for it.
        """
        key = (cell.denoiser, cell.params, cell.device, shape)
        last = self._last_seconds.get(key)
        if cell.device == "cpu" and last is not None and last < SAMPLE_PERIOD:
            output, seconds = time_call(call, repeats=self.config.repeats,
                                        synchronize=denoiser.synchronize)
            peak_mb = self._peak_mb[key]
        else:
            with PeakMemory(cell.device) as memory:
                output, seconds = time_call(call, repeats=self.config.repeats,
                                            synchronize=denoiser.synchronize)
            peak_mb = self._peak_mb[key] = memory.peak_mb
        self._last_seconds[key] = seconds
        return output, seconds, peak_mb

    def _sigma_used(self, cell: Cell, denoiser: Denoiser, scored: ScoredNoisyImage) -> float:
        """The sigma the denoiser was given (oracle) or estimates (blind), in 8-bit units;
        NaN when it uses none."""
        clean = scored.clean
        if not denoiser.uses_sigma(1 if clean.ndim == 2 else clean.shape[2]):
            return math.nan
        if cell.mode == "oracle":
            return 255 * scored.noisy.sigma
        if scored.blind_sigma is None:
            scored.blind_sigma = estimate_sigma(scored.noisy.image)
        return 255 * scored.blind_sigma

    def run(self, cell: Cell) -> CellResult:
        """Run one cell. Every failure of the denoiser becomes a failed record with its reason."""
        scored = self.noisy(cell)
        clean, noisy = scored.clean, scored.noisy
        record = CellRecord.start(cell, clean.shape, list(self.config.metrics),
                                  workers=self.config.workers, timing=self.config.timing,
                                  protocol=self.config.protocol.label)
        record.noisy_scores = dict(scored.scores)
        oracle = cell.mode == "oracle"
        sigma = noisy.sigma if oracle else None
        output = None
        try:
            denoiser = self.denoiser(cell, noisy.image)
            record.params, tensor_path = self._facts_of(cell, denoiser)
            record.sigma_used = self._sigma_used(cell, denoiser, scored)
            model = noisy.model if oracle else None
            if tensor_path:
                output, seconds, peak_mb, scores = self._run_tensor(cell, denoiser, scored,
                                                                    sigma, model)
            else:
                self._warm_shape(cell, denoiser, noisy.image, sigma)
                image = noisy.image if denoiser.keeps_input else noisy.image.copy()
                output, seconds, peak_mb = self._timed(
                    cell, denoiser, lambda: denoiser.denoise(image, sigma, noise=model),
                    image.shape)
                output = check_output(output, clean.shape)
                protocol = self.config.protocol
                scores = protocol.score_prepared(self.metrics, scored.reference,
                                                 protocol.output(output))
            info = denoiser.run_info()
            record.scores = scores
            record.seconds = seconds
            record.mpix_per_s = megapixels_per_second(record.height, record.width, seconds)
            record.peak_memory_mb = peak_mb
            record.precision, record.gpu = info.get("precision", ""), info.get("gpu", "")
            record.status = "ok"
        except Exception as error:
            record.error = one_line(error)
            output = None
        return CellResult(record, self._images_to_keep(cell, clean, noisy.image, output))

    def _facts_of(self, cell: Cell, denoiser: Denoiser) -> tuple[str, bool]:
        """The parameters ``denoiser`` runs with, as JSON, and whether ``cell`` takes the tensor
        path: read once per set-up denoiser (its parameters are fixed once it is made)."""
        key = (cell.denoiser, cell.params, cell.device)
        if key not in self._facts:
            self._facts[key] = (json.dumps(denoiser.params(), default=str),
                                self._tensor_path(cell, denoiser))
        return self._facts[key]

    def _tensor_path(self, cell: Cell, denoiser: Denoiser) -> bool:
        """Whether ``cell`` runs on the tensor path (see ``WorkerConfig.tensor_path``)."""
        mode = self.config.tensor_path
        if mode == "never" or not denoiser.supports_tensor():
            return False
        return mode == "always" or cell.device != "cpu"

    def _run_tensor(self, cell: Cell, denoiser: Denoiser, scored: ScoredNoisyImage, sigma, model):
        """The timed call, the output checks, the protocol stage and the metrics of one cell
        on its device; returns (output tensor, seconds, peak memory in MiB, scores)."""
        reference, noisy = self._on_device(scored, cell.device)
        self._warm_tensor(cell, denoiser, noisy, sigma)
        image = noisy if denoiser.keeps_input else noisy.clone()
        output, seconds, peak_mb = self._timed(
            cell, denoiser, lambda: denoiser.denoise_tensor(image, sigma, noise=model),
            tuple(image.shape))
        output = check_output_tensor(output, scored.clean.shape, noisy.device)
        protocol = self.config.protocol
        scores = protocol.score_prepared(self.metrics, reference, protocol.output(output))
        return output, seconds, peak_mb, scores

    def _on_device(self, scored: ScoredNoisyImage, device: str):
        """The clean image as the metrics take it (:meth:`Protocol.reference`) and the noisy
        image, as tensors on ``device``: uploaded and prepared once per noisy image."""
        if device not in scored.tensors:
            import torch

            clean, noisy = (torch.from_numpy(np.ascontiguousarray(image)).to(device)
                            for image in (scored.clean, scored.noisy.image))
            scored.tensors[device] = (self.config.protocol.reference(clean), noisy)
        return scored.tensors[device]

    def _warm_tensor(self, cell: Cell, denoiser: Denoiser, image, sigma) -> None:
        """Untimed tensor-path calls: one small one per denoiser (whose failure the timed call
        records), then :meth:`_warm_shape`."""
        key = (cell.denoiser, cell.params, cell.device, "tensor")
        if key not in self._warm_shapes:
            self._warm_shapes.add(key)
            try:
                denoiser.denoise_tensor(image[:WARMUP_SIZE, :WARMUP_SIZE].clone(), WARMUP_SIGMA)
                denoiser.synchronize()
            except Exception:
                pass
        self._warm_shape(cell, denoiser, image, sigma, tensor=True)

    def _images_to_keep(self, cell: Cell, clean, noisy, output) -> dict[str, bytes]:
        images = {}
        first_seed = cell.seed in (self.config.visual_seed, NO_SEED)
        if (cell.dataset, cell.image) in self.config.visual and first_seed:
            size = self.config.visual_size
            images["clean"] = to_png_bytes(centre_crop(clean, size))
            images["noisy"] = to_png_bytes(centre_crop(noisy, size))
            if output is not None:
                images["denoised"] = to_png_bytes(_on_host(centre_crop(output, size)))
        if self.config.save_outputs and output is not None:
            images["output"] = to_png_bytes(_on_host(output))
        return images


def _on_host(image) -> np.ndarray:
    """An image as a numpy array: an array as it is, a (tensor path) tensor copied back."""
    if isinstance(image, np.ndarray):
        return image
    return image.cpu().numpy()
