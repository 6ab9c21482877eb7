"""Deliberately broken denoisers for fault-isolation tests, and a registry that holds them.

Worker processes build the registry from :func:`make_registry` (``registry_factory =
"broken_denoisers:make_registry"``), so this module must be importable by name: the tests'
conftest puts ``tests/plugins`` on ``sys.path`` and spawned workers inherit it.
"""

import os
import time
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


@dataclass
class Hangs(Denoiser):
    name = "hangs"

    def _denoise(self, noisy, sigma):
        time.sleep(3600)
        return noisy


@dataclass
class ExitsWorker(Denoiser):
    """Ends its process abruptly, as a crash in native code would."""

    name = "exits_worker"

    def _denoise(self, noisy, sigma):
        os._exit(3)


@dataclass
class Segfaults(Denoiser):
    name = "segfaults"

    def _denoise(self, noisy, sigma):
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV


@dataclass
class Slow(Denoiser):
    """A correct denoiser that takes a known time, for kill-and-resume tests."""

    seconds: float = 0.3
    name = "slow"

    def _denoise(self, noisy, sigma):
        time.sleep(self.seconds)
        return noisy


@dataclass
class ReturnsUint8(Denoiser):
    """Returns 8-bit values 0-255: plausible-looking, and a 2.6 dB PSNR if it were scored."""

    name = "returns_uint8"

    def _denoise(self, noisy, sigma):
        return np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8)


TARGETS = {"returns_uint8": "ReturnsUint8", "raises": "Raises", "wrong_shape": "WrongShape", "returns_nan": "ReturnsNaN",
           "returns_list": "ReturnsList", "writes_into_input": "WritesIntoInput",
           "fails_setup": "FailsSetup", "hangs": "Hangs", "exits_worker": "ExitsWorker",
           "segfaults": "Segfaults", "slow": "Slow",
           "slow_first_call_per_shape": "SlowFirstCallPerShape"}


def make_registry():
    """The built-ins plus the broken denoisers, attributed to a fake plugin."""
    from bench.catalog import register_builtins
    from bench.registry import Registry

    registry = Registry()
    register_builtins(registry)
    with registry.registering_as("broken-denoisers", "0"):
        for name, cls in TARGETS.items():
            registry.add("denoiser", name, f"broken_denoisers:{cls}", "broken on purpose")
    return registry


@dataclass
class RaisesRichMarkup(Denoiser):
    """Its message would be console markup if printed unescaped."""

    name = "raises_rich_markup"

    def _denoise(self, noisy, sigma):
        raise RuntimeError("stray [/red] closing tag and [bold]styled[/bold] text")


@dataclass
class SlowFirstCallPerShape(Denoiser):
    """Fast except for its first call at each image shape, like a freshly autotuned GPU model."""

    first_call_seconds: float = 0.5
    name = "slow_first_call_per_shape"
    warm_per_shape = True

    def __post_init__(self):
        self.seen_shapes = set()

    def _denoise(self, noisy, sigma):
        if noisy.shape not in self.seen_shapes:
            self.seen_shapes.add(noisy.shape)
            time.sleep(self.first_call_seconds)
        return noisy


def make_slow_registry():
    """:func:`make_registry` after 4 s, like a worker starting on a heavily loaded machine."""
    time.sleep(4)
    return make_registry()
