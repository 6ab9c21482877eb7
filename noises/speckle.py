"""Speckle: multiplicative Gaussian noise."""

from __future__ import annotations

from bench.interfaces import Noise, ParamSpec


class Speckle(Noise):
    """Multiplicative noise, ``noisy = clean * (1 + N(0, level^2))``.

    The level is the relative standard deviation (0.2 means 20 % of the intensity), the
    model of :func:`skimage.util.random_noise` in ``"speckle"`` mode. Being signal dependent,
    its equivalent Gaussian sigma is measured.
    """

    name = "speckle"
    level = ParamSpec("sigma", "relative standard deviation", 0.0, 2.0, 0.2)
    default_levels = (0.1, 0.2, 0.3)

    def _apply(self, image, level, rng):
        return image * (1.0 + level * rng.standard_normal(image.shape))
