"""Poisson-Gaussian noise, the usual model of a raw camera sensor."""

from __future__ import annotations

from bench.interfaces import Noise, NoiseModel, ParamSpec


class PoissonGaussian(Noise):
    """Signal-dependent shot noise plus signal-independent read noise.

    ``noisy = gain * Poisson(clean / gain) + N(0, (level / 255)^2)`` (Foi et al., "Practical
    Poissonian-Gaussian noise modeling and fitting for single-image raw-data", IEEE TIP 2008).
    The swept level is the Gaussian sigma in 8-bit units; ``gain`` (the variance of the
    Poisson part per unit of intensity) is a recorded parameter. The equivalent Gaussian sigma
    is measured.
    """

    name = "poisson_gaussian"
    level = ParamSpec("sigma", "8-bit units (0-255)", 0.0, 255.0, 10.0)
    default_levels = (5.0, 10.0, 25.0)
    extra_params = (ParamSpec("gain", "Poisson variance per unit intensity", 1e-6, 1.0, 0.01),)

    def _apply(self, image, level, rng, *, gain):
        shot = gain * rng.poisson(image / gain)
        return shot + rng.standard_normal(image.shape) * (level / 255.0)

    def model(self, level, *, gain):
        return NoiseModel(gain=gain, sigma=level / 255.0)
