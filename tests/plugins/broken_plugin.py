"""A deliberately broken plugin for the contract checks, and a registry that holds it.

Each broken class breaks one rule of :mod:`bench.contract`; :data:`BROKEN` says which checks
each must fail, and nothing else. A few well-behaved classes use the declarations the
checks honour (``deterministic = False``, ``channels = (1,)``, ``keeps_input = True``, a tensor
path, ``denoise_tensor_on``). :func:`make_registry` is a
``registry_factory``; :func:`register` is an entry-point ``register`` function, so a fake
installed distribution can name it (``conftest.fake_plugin``). This module must be
importable by name: the tests' conftest puts ``tests/plugins`` on ``sys.path``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bench.errors import InvalidParameterError
from bench.interfaces import Denoiser, Noise, ParamSpec
from bench.metrics import Metric

DISTRIBUTION = "broken-plugin"


@dataclass
class _Smooth(Denoiser):
    """A correct 3x3 mean filter that the broken denoisers below spoil one way each."""

    name = "smooth"
    colour = "per_channel"

    def _denoise(self, noisy, sigma):
        return ndimage.uniform_filter(noisy, size=3, mode="reflect")


class ReturnsUint8(_Smooth):
    """Returns 8-bit values 0-255."""

    def _denoise(self, noisy, sigma):
        return np.round(np.clip(super()._denoise(noisy, sigma), 0, 1) * 255).astype(np.uint8)


class WritesIntoInput(_Smooth):
    """Smooths its input in place."""

    def _denoise(self, noisy, sigma):
        noisy[...] = super()._denoise(noisy, sigma)
        return noisy.copy()


class NonDeterministic(_Smooth):
    """Adds fresh random noise on every call."""

    def _denoise(self, noisy, sigma):
        return super()._denoise(noisy, sigma) + np.random.default_rng().normal(0, 1e-3, noisy.shape)


class Jitters(_Smooth):
    """Differs by about 1e-8 between calls and declares it: allowed."""

    deterministic = False

    def _denoise(self, noisy, sigma):
        jitter = np.random.default_rng().uniform(0, 1e-8, noisy.shape)
        return super()._denoise(noisy, sigma) + jitter


class JittersUndeclared(Jitters):
    """The same jitter without the declaration."""

    deterministic = True


class WrongShape(_Smooth):
    """Drops the last row."""

    def _denoise(self, noisy, sigma):
        return super()._denoise(noisy, sigma)[:-1]


class RefusesOutsideRange(_Smooth):
    """Refuses input below 0 or above 1."""

    def _denoise(self, noisy, sigma):
        if noisy.min() < 0 or noisy.max() > 1:
            raise ValueError("input must be in [0, 1]")
        return super()._denoise(noisy, sigma)


class BreaksBlind(_Smooth):
    """Says it needs no sigma, then uses it."""

    def uses_sigma(self, channels):
        return False

    def _denoise(self, noisy, sigma):
        size = 3 if sigma * 255 <= 30 else 5
        return ndimage.uniform_filter(noisy, size=size, mode="reflect")


@dataclass
class GrayOnlyUndeclared(_Smooth):
    """Fails on colour input without declaring that it does gray only."""

    colour = "native"

    def _denoise(self, noisy, sigma):
        if noisy.ndim != 2:
            raise ValueError("expected a 2-D image")
        return super()._denoise(noisy, sigma)


@dataclass
class GrayOnlyDeclared(GrayOnlyUndeclared):
    """Declares grayscale only and refuses colour with the suite's error: allowed."""

    channels = (1,)

    def _denoise(self, noisy, sigma):
        if noisy.ndim != 2:
            raise InvalidParameterError(f"denoiser '{self.name}' handles grayscale images only")
        return super()._denoise(noisy, sigma)


class Hangs(_Smooth):
    """Never finishes a call (in practice)."""

    def _denoise(self, noisy, sigma):
        time.sleep(3600)
        return noisy


class WritesIntoInputDeclared(WritesIntoInput):
    """Smooths its input in place, and declares that it never writes into it."""

    keeps_input = True


def _mean3(plane):
    """The 3x3 mean of an (H, W) tensor, edges replicated (SciPy's ``reflect`` at this width)."""
    import torch.nn.functional as F

    padded = F.pad(plane[None, None], (1, 1, 1, 1), mode="replicate")
    return F.avg_pool2d(padded, 3, stride=1)[0, 0]


@dataclass
class _TorchSmooth(Denoiser):
    """A correct 3x3 mean filter written in torch: its array path is its tensor hook between two
    host copies, as :class:`bench.interfaces.Denoiser` recommends. Spoiled below one way each."""

    name = "torch_smooth"
    colour = "per_channel"
    keeps_input = True

    def _denoise(self, noisy, sigma):
        import torch

        return _TorchSmooth._denoise_tensor(self, torch.from_numpy(noisy), sigma).numpy()

    def _denoise_tensor(self, noisy, sigma):
        return _mean3(noisy)


class TensorReturnsUint8(_TorchSmooth):
    """The tensor path returns 8-bit values 0-255."""

    def _denoise_tensor(self, noisy, sigma):
        import torch

        return torch.round(_mean3(noisy).clamp(0, 1) * 255).to(torch.uint8)


@dataclass
class TensorChannelsFirst(_TorchSmooth):
    """The tensor path hands colour back in torch's (C, H, W) layout."""

    colour = "native"

    def _denoise(self, noisy, sigma):
        if noisy.ndim == 2:
            return super()._denoise(noisy, sigma)
        return np.stack([super(TensorChannelsFirst, self)._denoise(noisy[..., c], sigma)
                         for c in range(noisy.shape[-1])], axis=-1)

    def _denoise_tensor(self, noisy, sigma):
        import torch

        if noisy.ndim == 2:
            return _mean3(noisy)
        return torch.stack([_mean3(noisy[..., c]) for c in range(noisy.shape[-1])])


class TensorClamps(_TorchSmooth):
    """The tensor path clips its output to [0, 1]; the array path does not."""

    def _denoise_tensor(self, noisy, sigma):
        return _mean3(noisy).clamp(0, 1)


class TensorWritesIntoInput(_TorchSmooth):
    """The tensor path smooths its input in place (and the class declares keeps_input)."""

    def _denoise_tensor(self, noisy, sigma):
        noisy.copy_(_mean3(noisy))
        return noisy.clone()


@dataclass
class _PortedSmooth(_Smooth):
    """The SciPy mean filter with a torch port as its tensor path: its array path on the CPU
    stays SciPy, and ``denoise_tensor_on`` is the array path of the port (as
    :class:`denoisers.on_device.RunsOnCuda` has it). The two round differently: allowed."""

    name = "ported_smooth"

    def _denoise_tensor(self, noisy, sigma):
        return _mean3(noisy)

    def denoise_tensor_on(self, device, noisy, sigma, *, noise=None):
        import torch

        image = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32)).to(device)
        return self.denoise_tensor(image, sigma, noise=noise).cpu().numpy()


class PortComputesSomethingElse(_PortedSmooth):
    """The torch port is a 5x5 mean filter, not the 3x3 one of the CPU code."""

    def _denoise_tensor(self, noisy, sigma):
        import torch.nn.functional as F

        padded = F.pad(noisy[None, None], (2, 2, 2, 2), mode="replicate")
        return F.avg_pool2d(padded, 5, stride=1)[0, 0]


class _Additive(Noise):
    """Correct additive uniform noise, spoiled below one way each."""

    name = "additive"
    level = ParamSpec("half_width", "8-bit units", 0.0, 255.0, 20.0)
    default_levels = (10.0, 20.0)

    def _apply(self, image, level, rng):
        return image + rng.uniform(-level, level, image.shape) / 255


class IgnoresSeed(_Additive):
    """Draws from a generator of its own instead of the one it is given."""

    def _apply(self, image, level, rng):
        return super()._apply(image, level, np.random.default_rng())


class DefaultLevelOutOfRange(_Additive):
    """Sweeps a default level its own range refuses."""

    default_levels = (10.0, 300.0)


class AcceptsAnyLevel(_Additive):
    """Checks no level."""

    def check_level(self, level):
        pass

    def _apply(self, image, level, rng):
        return super()._apply(image, abs(level), rng)


class RefusesWithValueError(_Additive):
    """Refuses a bad level with a plain ValueError, not the suite's error."""

    def check_level(self, level):
        if not 0 <= level <= 255:
            raise ValueError("bad level")


class Float64Image(_Additive):
    """Returns a float64 image."""

    def apply(self, image, level, rng, **params):
        noisy = super().apply(image, level, rng, **params)
        return type(noisy)(noisy.image.astype(np.float64), noisy.sigma, noisy.model)


class NegativeSigma(_Additive):
    """Reports a negative sigma."""

    def expected_sigma(self, level):
        return -level / 255


class MSEHigherIsBetter(Metric):
    """Mean squared error that claims higher is better: identity scores worst."""

    name = "mse_higher_is_better"
    higher_is_better = True

    def score(self, reference, estimate):
        return float(np.mean((reference - estimate) ** 2))


class BadAttributes(Metric):
    """A negative margin and a direction given as text."""

    name = "bad_attributes"
    higher_is_better = "yes"
    margin = -1.0

    def score(self, reference, estimate):
        return float(-np.mean((reference - estimate) ** 2))


class LogMetric(Metric):
    """Takes the logarithm of the estimate: NaN on a noisy input below 0."""

    name = "log_metric"
    higher_is_better = False

    def score(self, reference, estimate):
        with np.errstate(invalid="ignore"):
            return float(np.mean(np.abs(np.log(reference + 0.01) - np.log(estimate + 0.01))))


class GrayOnlyMetric(Metric):
    """Scores (H, W) images only."""

    name = "gray_only_metric"
    higher_is_better = False

    def score(self, reference, estimate):
        if reference.ndim != 2:
            raise ValueError("expected 2-D images")
        return float(np.mean(np.abs(reference - estimate)))


#: name -> (kind, class, the checks it must fail).
BROKEN = {
    "returns_uint8": ("denoiser", "ReturnsUint8", {"floating dtype"}),
    "writes_into_input": ("denoiser", "WritesIntoInput", {"input unchanged"}),
    "non_deterministic": ("denoiser", "NonDeterministic", {"deterministic"}),
    "jitters_undeclared": ("denoiser", "JittersUndeclared", {"deterministic"}),
    "wrong_shape": ("denoiser", "WrongShape", {"output shape", "grayscale and colour"}),
    "refuses_outside_range": ("denoiser", "RefusesOutsideRange", {"input outside [0, 1]"}),
    "breaks_blind": ("denoiser", "BreaksBlind", {"oracle and blind"}),
    "gray_only_undeclared": ("denoiser", "GrayOnlyUndeclared", {"grayscale and colour"}),
    "ignores_seed": ("noise", "IgnoresSeed", {"seeding"}),
    "default_level_out_of_range": ("noise", "DefaultLevelOutOfRange", {"level range"}),
    "accepts_any_level": ("noise", "AcceptsAnyLevel", {"level range"}),
    "refuses_with_value_error": ("noise", "RefusesWithValueError", {"level range"}),
    "float64_image": ("noise", "Float64Image", {"output shape and dtype"}),
    "negative_sigma": ("noise", "NegativeSigma", {"sigma"}),
    "mse_higher_is_better": ("metric", "MSEHigherIsBetter", {"identity is best"}),
    "bad_attributes": ("metric", "BadAttributes", {"declared attributes"}),
    "log_metric": ("metric", "LogMetric", {"finite on a noisy pair"}),
    "gray_only_metric": ("metric", "GrayOnlyMetric", {"grayscale and colour"}),
    "writes_into_input_declared": ("denoiser", "WritesIntoInputDeclared", {"input unchanged"}),
    "tensor_returns_uint8": ("denoiser", "TensorReturnsUint8",
                             {"tensor output", "tensor blind", "tensor agrees with array"}),
    "tensor_channels_first": ("denoiser", "TensorChannelsFirst",
                              {"tensor output", "tensor agrees with array"}),
    "tensor_clamps": ("denoiser", "TensorClamps", {"tensor agrees with array"}),
    "tensor_writes_into_input": ("denoiser", "TensorWritesIntoInput", {"tensor input unchanged"}),
    "port_computes_something_else": ("denoiser", "PortComputesSomethingElse",
                                     {"tensor agrees with array"}),
}

#: Classes that use a declaration the checks honour, and pass.
WELL_DECLARED = {
    "jitters": ("denoiser", "Jitters"),
    "gray_only_declared": ("denoiser", "GrayOnlyDeclared"),
    "smooth": ("denoiser", "_Smooth"),
    "torch_smooth": ("denoiser", "_TorchSmooth"),
    "ported_smooth": ("denoiser", "_PortedSmooth"),
    "additive": ("noise", "_Additive"),
}


def register(registry):
    """Add every class of this module to ``registry`` (an entry point's ``register``)."""
    for name, (kind, cls, *_) in {**BROKEN, **WELL_DECLARED}.items():
        registry.add(kind, name, f"broken_plugin:{cls}", "broken on purpose")
    registry.add("denoiser", "hangs", "broken_plugin:Hangs", "never finishes")


def make_registry():
    """The built-ins plus this module's classes, attributed to a fake plugin."""
    from bench.catalog import register_builtins
    from bench.registry import Registry

    registry = Registry()
    register_builtins(registry)
    with registry.registering_as(DISTRIBUTION, "0"):
        register(registry)
    return registry
