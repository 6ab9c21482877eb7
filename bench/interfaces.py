"""The two interfaces every noise and denoiser implements.

Image convention, stated once for the whole suite
--------------------------------------------------
Clean images are ``float32`` arrays with values in [0, 1], shaped ``(H, W)`` for grayscale or
``(H, W, 3)`` for colour. Noisy images have the same shape and dtype but may leave [0, 1]:
Gaussian noise is not clipped (the published tables' protocol), so every denoiser must accept
values below 0 and above 1. Noise levels that denoisers receive (``sigma``) are standard
deviations in the same units as the image, i.e. a fraction of the [0, 1] range; the
literature's "sigma 25" is ``25 / 255`` here.

A denoiser must return an array of the input's shape with finite values. The runner checks
this at the boundary and records a failed cell, with the reason, when it does not hold.

The tensor path
---------------
A denoiser that computes with PyTorch may also take the image as a ``torch.Tensor`` and give
one back on the same device (:meth:`Denoiser.denoise_tensor`), so that on a GPU the image is
uploaded once and the protocol stage and the metrics score the output where it is. The
tensor convention is the array one: a floating-point tensor (float32 for the suite's
images) in [0, 1] units, shaped ``(H, W)`` or ``(H, W, C)`` with the channels last (not
torch's ``(C, H, W)``); the output is a floating-point tensor of the input's shape on the
input's device, with finite values, checked at the boundary as arrays are.
:meth:`Denoiser.supports_tensor` says whether a denoiser has this path.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from bench.errors import InvalidParameterError

Family = Literal["classical", "learned"]
ColourHandling = Literal["native", "per_channel"]


@dataclass(frozen=True)
class ParamSpec:
    """Describes one parameter of a noise generator.

    Parameters
    ----------
    name : str
        Parameter name as used in ``noise_params`` and on the command line.
    unit : str
        Human-readable unit, e.g. ``"8-bit units"`` or ``"fraction of pixels"``.
    low, high : float
        Inclusive valid range.
    default : float or bool
        Value used when the sweep does not set it.
    """

    name: str
    unit: str
    low: float
    high: float
    default: float | bool

    def check(self, owner: str, value: float) -> None:
        """Raise :class:`InvalidParameterError` when ``value`` is outside ``[low, high]``."""
        if isinstance(value, bool) or not (self.low <= value <= self.high):
            raise InvalidParameterError(
                f"{owner}: {self.name}={value!r} is outside its valid range "
                f"[{self.low:g}, {self.high:g}] ({self.unit})"
            )


@dataclass(frozen=True)
class NoiseModel:
    """The variance of a noise as a function of the clean intensity, in [0, 1] units.

    ``Var[noisy | clean] = gain * clean + sigma ** 2``: Gaussian noise has ``gain = 0``,
    Poisson noise at peak ``p`` has ``gain = 1 / p`` and ``sigma = 0``, Poisson-Gaussian
    noise has both. This is what a variance-stabilising transform needs.

    Attributes
    ----------
    gain : float
        Variance of the signal-dependent part per unit of intensity.
    sigma : float
        Standard deviation of the signal-independent Gaussian part, [0, 1] units.
    """

    gain: float = 0.0
    sigma: float = 0.0


@dataclass(frozen=True)
class NoisyImage:
    """A noisy image, the equivalent Gaussian sigma of its noise and the noise's model.

    Attributes
    ----------
    image : numpy.ndarray
        The noisy image, float32, same shape as the clean one, possibly outside [0, 1].
    sigma : float
        Equivalent Gaussian standard deviation in image units ([0, 1] scale): the root mean
        square of ``noisy - clean``, or its exact expectation where the noise model gives one.
        This is what "oracle" mode hands to denoisers.
    model : NoiseModel or None
        The noise's own parameters where it follows :class:`NoiseModel`; oracle mode hands
        them to denoisers too.
    """

    image: np.ndarray
    sigma: float
    model: NoiseModel | None = None


def rms(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Root mean square of ``noisy - clean``, computed in float64."""
    diff = noisy.astype(np.float64) - clean.astype(np.float64)
    return float(np.sqrt(np.mean(diff * diff)))


class Noise(ABC):
    """A noise generator: clean image, level and random generator in, noisy image out.

    Subclasses set the class attributes below and implement :meth:`_apply`. The swept
    parameter is :attr:`level`; other parameters are in :attr:`extra_params` and are recorded
    with every result. The same generator state gives the same noisy image on every machine
    and in every process, since only ``numpy.random.Generator`` draws are used.
    """

    #: The swept parameter: its name, unit and valid range.
    level: ClassVar[ParamSpec]
    #: Levels swept when the user names the noise without levels.
    default_levels: ClassVar[tuple[float, ...]]
    #: Further parameters with their defaults.
    extra_params: ClassVar[tuple[ParamSpec, ...]] = ()
    #: Registry name, set by the subclass.
    name: ClassVar[str]

    def params(self, **overrides: float) -> dict[str, float]:
        """Return the full parameter dictionary, defaults filled in and values checked."""
        known = {spec.name: spec for spec in self.extra_params}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise InvalidParameterError(
                f"noise '{self.name}' has no parameter {unknown[0]!r}; "
                f"its parameters are: {', '.join(known) or 'none'}"
            )
        values = {name: overrides.get(name, spec.default) for name, spec in known.items()}
        for name, spec in known.items():
            if not isinstance(spec.default, bool):
                spec.check(f"noise '{self.name}'", values[name])
        return values

    def check_level(self, level: float) -> None:
        """Raise :class:`InvalidParameterError` when ``level`` is outside the valid range."""
        self.level.check(f"noise '{self.name}'", level)

    def apply(
        self, image: np.ndarray, level: float, rng: np.random.Generator, **params: float
    ) -> NoisyImage:
        """Add noise to ``image``.

        Parameters
        ----------
        image : numpy.ndarray
            Clean float32 image in [0, 1], (H, W) or (H, W, 3).
        level : float
            Value of the swept parameter, in the unit of :attr:`level`.
        rng : numpy.random.Generator
            Source of every random draw.
        **params
            Values for :attr:`extra_params`; missing ones take their defaults.

        Returns
        -------
        NoisyImage
            The noisy float32 image and the equivalent Gaussian sigma in [0, 1] units.
        """
        self.check_level(level)
        values = self.params(**params)
        noisy = self._apply(image, level, rng, **values)
        noisy = np.asarray(noisy, dtype=np.float32)
        sigma = self.expected_sigma(level, **values)
        return NoisyImage(noisy, rms(image, noisy) if sigma is None else sigma,
                          self.model(level, **values))

    def expected_sigma(self, level: float, **params: float) -> float | None:
        """Exact standard deviation of the added noise where the model gives it, else None.

        When None, :meth:`apply` reports the measured root mean square instead.
        """
        return None

    def model(self, level: float, **params: float) -> NoiseModel | None:
        """The noise's :class:`NoiseModel` at ``level``, or None where it follows none."""
        return None

    @abstractmethod
    def _apply(self, image: np.ndarray, level: float, rng: np.random.Generator, **params):
        """Return the noisy image; ``params`` are complete and checked."""


class Denoiser(ABC):
    """A denoiser: noisy image (and, in oracle mode, its sigma) in, denoised image out.

    Subclasses are dataclasses whose fields are their parameters; a field left at ``None``
    is derived from sigma by the rule the subclass documents. They implement
    :meth:`_denoise`. In blind mode the base class estimates sigma first with
    :func:`estimate_sigma`, for the denoisers that use one (:meth:`uses_sigma`). With
    ``colour = "per_channel"`` the base class denoises a colour image channel by channel
    through :meth:`_denoise_channels`, which a subclass may override to batch the channels.

    ``warm_per_shape = True`` tells the runner that the first call at a new image shape is
    slower than the rest (kernel selection, autotuning, allocator growth, as with PyTorch on
    cuDNN or oneDNN): it then makes one untimed call per shape before timing.

    A denoiser written in PyTorch also implements :meth:`_denoise_tensor` (and, for
    ``colour = "per_channel"``, may override :meth:`_denoise_tensor_channels` to batch the
    channels): :meth:`denoise_tensor` then takes and returns tensors on their device (see the
    module docstring), and :meth:`supports_tensor` answers True. Where it can, ``_denoise``
    should be the tensor hook between two host copies, so there is one implementation.
    """

    name: ClassVar[str]
    family: ClassVar[Family] = "classical"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    colour: ClassVar[ColourHandling] = "native"
    warm_per_shape: ClassVar[bool] = False
    #: True when :meth:`denoise` and :meth:`denoise_tensor` never write into the image they are
    #: given (every built-in, checked by the tests): the runner then hands over its noisy image
    #: itself rather than a fresh copy per call. ``bench check-plugin`` checks every plugin
    #: for it ("input unchanged"); a plugin that declares nothing is given copies.
    keeps_input: ClassVar[bool] = False
    #: False when two calls on the same input may differ (threads summing in varying order,
    #: GPU atomics); ``bench check-plugin`` then allows differences up to 1e-6.
    deterministic: ClassVar[bool] = True
    #: Image channel counts handled: (1, 3) both; (1,) grayscale only (colour refused with
    #: InvalidParameterError); (3,) colour only.
    channels: ClassVar[tuple[int, ...]] = (1, 3)

    def params(self) -> dict:
        """The denoiser's parameters as a JSON-friendly dictionary."""
        if dataclasses.is_dataclass(self):
            return dataclasses.asdict(self)
        return {}

    def setup(self, device: str) -> None:
        """Prepare to run on ``device`` (load weights, move tensors). Classical: nothing."""
        if device not in self.devices:
            raise InvalidParameterError(f"denoiser '{self.name}' does not run on '{device}'")

    def synchronize(self) -> None:
        """Wait for queued device work to finish, so timings are honest. CPU: nothing."""

    def uses_sigma(self, channels: int) -> bool:
        """Whether the denoiser uses the noise level on images of ``channels`` channels.

        Blind methods (networks trained over a range of levels) answer False: they get no
        sigma, none is estimated for them in blind mode, and none is recorded.
        """
        return True

    def run_info(self) -> dict[str, str]:
        """What the results should record about how the last call ran.

        Keys the results know: ``precision`` (arithmetic of learned models) and ``gpu`` (the
        name of the GPU used). Classical methods: nothing.
        """
        return {}

    def denoise(self, noisy: np.ndarray, sigma: float | None = None, *,
                noise: NoiseModel | None = None) -> np.ndarray:
        """Denoise ``noisy``.

        Parameters
        ----------
        noisy : numpy.ndarray
            Float32 image, (H, W) or (H, W, 3); values may leave [0, 1].
        sigma : float or None
            Noise standard deviation in [0, 1] units (oracle mode), or None to estimate it
            from the image (blind mode) when the denoiser uses one.
        noise : NoiseModel or None
            The noise's own parameters (oracle mode, noises that follow the model), for
            methods that treat signal-dependent noise as such; others ignore it.

        Returns
        -------
        numpy.ndarray
            The denoised image, same shape as ``noisy``.
        """
        channels = 1 if noisy.ndim == 2 else noisy.shape[-1]
        if sigma is None and self.uses_sigma(channels):
            sigma = estimate_sigma(noisy)
        if self.colour == "per_channel" and noisy.ndim == 3:
            return self._denoise_channels(noisy, sigma)
        return self._denoise(noisy, sigma)

    def _denoise_channels(self, noisy: np.ndarray, sigma: float | None) -> np.ndarray:
        """Denoise the channels of an (H, W, C) image one by one; override to batch them."""
        return np.stack([self._denoise(noisy[..., c], sigma) for c in range(noisy.shape[-1])],
                        axis=-1)

    @abstractmethod
    def _denoise(self, noisy: np.ndarray, sigma: float | None) -> np.ndarray:
        """Denoise with a known sigma in [0, 1] units (None only where :meth:`uses_sigma`
        is False)."""

    # --- the tensor path ------------------------------------------------------------------
    def supports_tensor(self) -> bool:
        """Whether :meth:`denoise_tensor` is available.

        True when the class implements :meth:`_denoise_tensor` and does not override
        :meth:`denoise` below the class that implements it (a subclass that customises
        ``denoise``, say to pick a model by sigma, would be bypassed by the tensor path, so it
        keeps the array path unless it overrides this method too).
        """
        mro = type(self).__mro__
        hook = next(cls for cls in mro if "_denoise_tensor" in vars(cls))
        if hook is Denoiser:
            return False
        array = next(cls for cls in mro if "denoise" in vars(cls))
        return mro.index(array) >= mro.index(hook)

    def denoise_tensor(self, noisy, sigma: float | None = None, *,
                       noise: NoiseModel | None = None):
        """Denoise a torch tensor on its device: :meth:`denoise` without the host copies.

        Parameters
        ----------
        noisy : torch.Tensor
            Floating-point tensor (float32 for the suite's images), (H, W) or (H, W, C) with
            the channels last; values in [0, 1] units, possibly outside [0, 1].
        sigma : float or None
            Noise standard deviation in [0, 1] units (oracle mode), or None to estimate it
            (blind mode) when the denoiser uses one; the estimate is made on ``noisy``'s
            device (:func:`estimate_sigma`), only the number coming back to the host.
        noise : NoiseModel or None
            As for :meth:`denoise`.

        Returns
        -------
        torch.Tensor
            The denoised image: floating point, ``noisy``'s shape, on ``noisy``'s device.

        Raises
        ------
        NotImplementedError
            When the denoiser has no tensor path (:meth:`supports_tensor` is False).
        """
        if not self.supports_tensor():
            raise NotImplementedError(f"denoiser '{self.name}' has no tensor path; "
                                      "call denoise() with an array")
        channels = 1 if noisy.ndim == 2 else noisy.shape[-1]
        if sigma is None and self.uses_sigma(channels):
            sigma = estimate_sigma(noisy)
        if self.colour == "per_channel" and noisy.ndim == 3:
            return self._denoise_tensor_channels(noisy, sigma)
        return self._denoise_tensor(noisy, sigma)

    def _denoise_tensor_channels(self, noisy, sigma: float | None):
        """Denoise the channels of an (H, W, C) tensor one by one; override to batch them."""
        import torch

        return torch.stack([self._denoise_tensor(noisy[..., c], sigma)
                            for c in range(noisy.shape[-1])], dim=-1)

    def _denoise_tensor(self, noisy, sigma: float | None):
        """The tensor hook: denoise a tensor on its device, sigma as for :meth:`_denoise`.
        Not implemented here: a denoiser without it has no tensor path."""
        raise NotImplementedError(f"denoiser '{self.name}' has no tensor path")


def estimate_sigma(noisy) -> float:
    """Blind estimate of the Gaussian noise sigma, in [0, 1] units.

    The wavelet-domain median absolute deviation of Donoho and Johnstone, averaged over
    channels: for an array, :func:`skimage.restoration.estimate_sigma` itself; for a torch
    tensor, the same estimator in torch on the tensor's device
    (:func:`bench.sigma_estimate.estimate_sigma`, equal to scikit-image's within float
    rounding), so that a tensor on a GPU is not copied to the host.

    Parameters
    ----------
    noisy : numpy.ndarray or torch.Tensor
        The noisy image, (H, W) or (H, W, C) with the channels last, in [0, 1] units.

    Returns
    -------
    float
        The estimated sigma in [0, 1] units; for a colour image, the mean of the channels'.
    """
    from bench.devices import is_tensor

    channel_axis = -1 if noisy.ndim == 3 else None
    if is_tensor(noisy):
        from bench.sigma_estimate import estimate_sigma as _estimate_on_device

        return _estimate_on_device(noisy, channel_axis=channel_axis)
    from skimage.restoration import estimate_sigma as _estimate

    return float(_estimate(noisy, channel_axis=channel_axis, average_sigmas=True))
