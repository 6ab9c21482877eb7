"""Poisson (shot) noise."""

from __future__ import annotations

from bench.interfaces import Noise, NoiseModel, ParamSpec


class Poisson(Noise):
    """Photon-counting noise, ``noisy = Poisson(peak * clean) / peak``.

    The level is the peak photon count, the expected number of photons at intensity 1:
    lower is noisier. The noise is signal dependent, so its equivalent Gaussian sigma is
    measured (root mean square of ``noisy - clean``).
    """

    name = "poisson"
    level = ParamSpec("peak", "photons at intensity 1", 1e-3, 1e6, 30.0)
    default_levels = (10.0, 30.0, 100.0)

    def _apply(self, image, level, rng):
        return rng.poisson(image * level) / level

    def model(self, level):
        return NoiseModel(gain=1.0 / level, sigma=0.0)
