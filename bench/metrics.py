"""Image quality metrics: registry entries with a name, a unit and a direction.

A metric scores an estimate against its clean reference. It sees images that the protocol
stage (:mod:`bench.protocol`) has already prepared (clipped, rounded, border shaved), so a
metric holds no protocol option of its own. Both arguments are numpy arrays, or torch tensors
on one device; a metric without a torch implementation scores tensors on the host.

Built-ins (see :mod:`bench.catalog`):

- ``psnr``: peak signal-to-noise ratio, data range 1, in dB.
- ``ssim``: Wang et al., "Image quality assessment: from error visibility to structural
  similarity", IEEE TIP 2004 — Gaussian window sigma 1.5, K1 0.01, K2 0.03, population
  covariance, mean over the valid region, the mean over channels for colour.

Both are computed by :mod:`bench.fast_metrics` (separable filtering; equal to scikit-image's
``peak_signal_noise_ratio`` and ``structural_similarity`` with that protocol within 1e-7, and
about 10x faster for SSIM), on the host or, for tensors, on their device.
- ``psnr_y``, ``ssim_y``: the same on the BT.601 luma channel (``space = "y"``: the protocol
  stage converts, :func:`bench.protocol.to_luma`); equal to ``psnr``/``ssim`` on grayscale.

A results table holds, for every metric ``m`` of the run, the column ``m`` (the denoised image)
and ``noisy_m`` (the noisy input); :func:`metric_columns` finds them and :func:`metric_info`
says how to read them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bench.devices import is_tensor

#: Prefix of the column that holds a metric's score of the noisy input.
NOISY_PREFIX = "noisy_"
#: The metrics a sweep scores when it names none; the first is the primary one.
DEFAULT_METRICS = ("psnr", "ssim")


@dataclass(frozen=True)
class MetricInfo:
    """How to read a metric's column.

    Attributes
    ----------
    name : str
        Registry name, also the results column.
    unit : str
        Unit of the values, e.g. ``"dB"``; empty when unitless.
    higher_is_better : bool
        Direction of improvement.
    margin : float
        A difference that matters, in the metric's unit: "fastest near the best" counts methods
        within this of the best (0.5 dB for PSNR).
    needs_reference : bool
        Whether the metric compares with a clean image (all built-ins do).
    decimals : int
        Decimals worth printing.
    """

    name: str
    unit: str = ""
    higher_is_better: bool = True
    margin: float = 0.0
    needs_reference: bool = True
    decimals: int = 3

    @property
    def label(self) -> str:
        """``"PSNR (dB)"``-style axis and column label."""
        return f"{self.name.upper()} ({self.unit})" if self.unit else self.name.upper()

    def best(self, values):
        """The best of ``values`` (a pandas Series or array) in this metric's direction."""
        return values.max() if self.higher_is_better else values.min()


class Metric(ABC):
    """A quality metric. Subclasses set the class attributes and implement :meth:`score`.

    Override :meth:`score_tensor` to score torch tensors where they are (on a GPU, say);
    by default they are moved to the host and scored by :meth:`score`. ``space = "y"`` asks
    the protocol stage for the luma channel instead of RGB.
    """

    name: ClassVar[str]
    space: ClassVar[str] = "rgb"
    unit: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    margin: ClassVar[float] = 0.0
    needs_reference: ClassVar[bool] = True
    decimals: ClassVar[int] = 3

    @classmethod
    def info(cls) -> MetricInfo:
        """The metric's :class:`MetricInfo`."""
        return MetricInfo(cls.name, cls.unit, cls.higher_is_better, cls.margin,
                          cls.needs_reference, cls.decimals)

    def __call__(self, reference, estimate) -> float:
        """Score ``estimate`` against ``reference`` (numpy arrays or torch tensors)."""
        if is_tensor(reference):
            return float(self.score_tensor(reference, estimate))
        return float(self.score(np.asarray(reference), np.asarray(estimate)))

    @abstractmethod
    def score(self, reference: np.ndarray, estimate: np.ndarray) -> float:
        """Score two float arrays of one shape, (H, W) or (H, W, C), data range 1 (the
        protocol stage hands over float64)."""

    def score_tensor(self, reference, estimate) -> float:
        """Score two torch tensors of one shape; the default scores them on the host."""
        return self.score(reference.detach().double().cpu().numpy(),
                          estimate.detach().double().cpu().numpy())


class PSNR(Metric):
    """Peak signal-to-noise ratio, ``10 log10(1 / MSE)`` for data range 1; ``inf`` if equal."""

    name = "psnr"
    unit = "dB"
    margin = 0.5
    decimals = 2

    def score(self, reference, estimate):
        from bench.fast_metrics import psnr

        return psnr(reference, estimate)

    def score_tensor(self, reference, estimate):
        from bench.fast_metrics import psnr_torch

        return psnr_torch(reference, estimate)


class SSIM(Metric):
    """Structural similarity with Wang et al.'s protocol (see the module docstring)."""

    name = "ssim"
    margin = 0.005
    decimals = 3

    def score(self, reference, estimate):
        from bench.fast_metrics import ssim

        return ssim(reference, estimate)

    def score_tensor(self, reference, estimate):
        from bench.fast_metrics import ssim_torch

        return ssim_torch(reference, estimate)


class PSNRLuma(PSNR):
    """PSNR on the BT.601 luma channel (KAIR/SwinIR's ``test_y_channel``)."""

    name = "psnr_y"
    space = "y"


class SSIMLuma(SSIM):
    """SSIM on the BT.601 luma channel (KAIR/SwinIR's ``test_y_channel``)."""

    name = "ssim_y"
    space = "y"


def metric_columns(results) -> list[str]:
    """The metric columns of a results table: every ``m`` that has a ``noisy_m`` beside it.

    Parameters
    ----------
    results : pandas.DataFrame
        A run's results.

    Returns
    -------
    list of str
        In the table's column order; the first is the run's primary metric.
    """
    columns = list(results.columns)
    return [c for c in columns if not c.startswith(NOISY_PREFIX) and NOISY_PREFIX + c in columns]


def metric_info(name: str, registry=None) -> MetricInfo:
    """How to read the column of metric ``name``.

    Looks the metric up in ``registry`` (the default registry when None); a metric that is not
    registered here (a run made with a plugin that is not installed) reads as a unitless,
    higher-is-better score.
    """
    from bench.errors import BenchError
    from bench.registry import default_registry

    registry = registry if registry is not None else default_registry()
    try:
        return registry.load("metric", name).info()
    except BenchError:
        return MetricInfo(name)


def metric_infos(results, registry=None) -> list[MetricInfo]:
    """:func:`metric_info` of every metric column of ``results``, primary first."""
    return [metric_info(name, registry) for name in metric_columns(results)]
