"""The protocol stage: how images are prepared before the metrics score them.

Published numbers differ by up to a dB through details that are not the method's: whether
the output is clipped and rounded to 8 bits, whether a border is shaved. They live here, once,
in front of every metric, so that a metric only ever compares two prepared images.

Today's protocol (the published grayscale tables'): the denoised output is clipped to [0, 1]
(and, with ``round8``, rounded to 8-bit levels); the noisy input is scored as it is, unclipped
(Gaussian sigma 25 then gives the papers' 20.17 dB); the clean reference as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Protocol:
    """Options of the protocol stage.

    Attributes
    ----------
    round8 : bool
        Round the denoised output to 8-bit levels before scoring (implies clipping), as some
        published code does.
    """

    round8: bool = False

    def output(self, image) -> np.ndarray:
        """A denoised image, prepared for scoring: float64, clipped, optionally rounded."""
        out = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
        return np.round(out * 255.0) / 255.0 if self.round8 else out

    def noisy(self, image) -> np.ndarray:
        """A noisy input, prepared for scoring: float64, unclipped."""
        return np.asarray(image, dtype=np.float64)

    def reference(self, image) -> np.ndarray:
        """The clean reference, prepared for scoring: float64."""
        return np.asarray(image, dtype=np.float64)


def score(metrics: dict, reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Every metric of ``metrics`` (name -> :class:`bench.metrics.Metric`) on prepared images."""
    return {name: metric(reference, estimate) for name, metric in metrics.items()}
