"""Additive uniform noise: the smallest useful example of the Noise interface."""

from bench.interfaces import Noise, ParamSpec


class UniformNoise(Noise):
    """``noisy = clean + U(-level, level) / 255``; its standard deviation is level / (255 sqrt 3)."""

    name = "example_uniform"
    level = ParamSpec("half_width", "8-bit units", 0.0, 255.0, 20.0)
    default_levels = (20.0, 40.0)

    def _apply(self, image, level, rng):
        return image + rng.uniform(-level, level, image.shape) / 255.0

    def expected_sigma(self, level):
        return level / 255.0 / 3 ** 0.5
