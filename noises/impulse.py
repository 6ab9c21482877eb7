"""Salt-and-pepper (impulse) noise."""

from __future__ import annotations

from bench.interfaces import Noise, ParamSpec


class SaltPepper(Noise):
    """Replace a random fraction of pixels with 0 (pepper) or 1 (salt).

    The level is the fraction of pixels hit; in a colour image a hit pixel turns black or
    white in every channel. ``salt_vs_pepper`` is the share of hits that become salt.
    """

    name = "salt_pepper"
    level = ParamSpec("amount", "fraction of pixels", 0.0, 1.0, 0.1)
    default_levels = (0.05, 0.1, 0.2)
    extra_params = (ParamSpec("salt_vs_pepper", "fraction of hits set to 1", 0.0, 1.0, 0.5),)

    def _apply(self, image, level, rng, *, salt_vs_pepper):
        height, width = image.shape[:2]
        hit = rng.random((height, width)) < level
        salt = rng.random((height, width)) < salt_vs_pepper
        noisy = image.copy()
        noisy[hit & salt] = 1.0
        noisy[hit & ~salt] = 0.0
        return noisy
