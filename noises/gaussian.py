"""Additive white Gaussian noise, the literature's benchmark noise."""

from __future__ import annotations

import numpy as np

from bench.interfaces import Noise, NoiseModel, ParamSpec


class Gaussian(Noise):
    """Additive white Gaussian noise, ``noisy = clean + N(0, (level / 255)^2)``.

    The level is sigma in 8-bit units, as in the published tables (sigma 25 means 25/255 of the
    [0, 1] range). The result is not clipped unless ``clip`` is true: unclipped is the protocol
    of the published tables (Zhang et al., "Beyond a Gaussian Denoiser", IEEE TIP 2017).
    """

    name = "gaussian"
    level = ParamSpec("sigma", "8-bit units (0-255)", 0.0, 255.0, 25.0)
    default_levels = (15.0, 25.0, 50.0)
    extra_params = (ParamSpec("clip", "clip the result to [0, 1]", 0, 1, False),)

    def _apply(self, image, level, rng, *, clip):
        noisy = rng.standard_normal(image.shape)  # worked on in place: no temporaries
        noisy *= level / 255.0
        noisy += image
        return np.clip(noisy, 0.0, 1.0, out=noisy) if clip else noisy

    def expected_sigma(self, level, *, clip):
        # Clipping shrinks the noise by an image-dependent amount: measure it instead.
        return None if clip else level / 255.0

    def model(self, level, *, clip):
        return None if clip else NoiseModel(gain=0.0, sigma=level / 255.0)
