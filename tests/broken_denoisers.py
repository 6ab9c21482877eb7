"""Deliberately broken denoisers for fault-isolation tests."""

from dataclasses import dataclass

import numpy as np

from bench.interfaces import Denoiser


@dataclass
class Raises(Denoiser):
    name = "raises"

    def _denoise(self, noisy, sigma):
        raise RuntimeError("boom\nsecond line")


@dataclass
class WrongShape(Denoiser):
    name = "wrong_shape"

    def _denoise(self, noisy, sigma):
        return noisy[:-1]


@dataclass
class ReturnsNaN(Denoiser):
    name = "returns_nan"

    def _denoise(self, noisy, sigma):
        out = noisy.copy()
        out[0, 0] = np.nan
        return out


@dataclass
class ReturnsList(Denoiser):
    name = "returns_list"

    def _denoise(self, noisy, sigma):
        return noisy.tolist()


@dataclass
class WritesIntoInput(Denoiser):
    """Scribbles over its input: the runner must give each denoiser its own copy."""

    name = "writes_into_input"

    def _denoise(self, noisy, sigma):
        noisy[...] = 0.5
        return noisy


@dataclass
class FailsSetup(Denoiser):
    name = "fails_setup"

    def setup(self, device):
        raise OSError("weights file missing")

    def _denoise(self, noisy, sigma):
        return noisy
