"""A denoiser for Gaussian noise applied to Poisson(-Gaussian) noise the way its authors do.

``vst="gat"`` on any denoiser (``bm3d(vst=gat)``) wraps it in :class:`Stabilised`: the
noisy image goes through the generalized Anscombe transform (:mod:`bench.vst`), the wrapped
denoiser removes the now unit-variance noise at the transform's sigma, and the exact unbiased
inverse maps the result back. Oracle mode hands the transform the noise model's own
parameters (:class:`bench.interfaces.NoiseModel`: Poisson peak as gain, Gaussian sigma);
blind mode, and noises without such a model, estimate them from the image
(:func:`bench.vst.estimate_poisson_gaussian`). Blind wrapped denoisers (learned networks that
take no sigma) simply denoise the stabilised image. For Gaussian noise (gain 0) the transform
is the identity and the wrapped denoiser runs as it would alone.

Around a denoiser with a tensor path (learned models, the torch classical methods) the
wrapper has one too (:meth:`Stabilised.denoise_tensor`): on a GPU cell the image stays on
the device through the transform, the denoiser and the inverse.
"""

from __future__ import annotations

import numpy as np

from bench.errors import InvalidParameterError
from bench.interfaces import Denoiser, NoiseModel

#: Values of the ``vst`` parameter: the generalized Anscombe transform.
VSTS = ("gat",)


class Stabilised(Denoiser):
    """``denoiser`` run inside a variance-stabilising transform.

    Parameters
    ----------
    denoiser : Denoiser
        The wrapped denoiser, set up by this wrapper's :meth:`setup`.
    vst : {"gat"}
        The transform.
    """

    def __init__(self, denoiser: Denoiser, vst: str = "gat"):
        if vst not in VSTS:
            raise InvalidParameterError(f"denoiser '{denoiser.name}': vst must be one of "
                                        f"{', '.join(VSTS)}, got {vst!r}")
        self.inner, self.vst = denoiser, vst
        self.name = denoiser.name
        self.family, self.devices = denoiser.family, denoiser.devices
        self.warm_per_shape = denoiser.warm_per_shape
        self.keeps_input = denoiser.keeps_input  # the transform makes a new image, or passes it on

    def params(self) -> dict:
        return {**self.inner.params(), "vst": self.vst}

    def setup(self, device: str) -> None:
        self.inner.setup(device)

    def synchronize(self) -> None:
        self.inner.synchronize()

    def uses_sigma(self, channels: int) -> bool:
        return self.inner.uses_sigma(channels)

    def run_info(self) -> dict[str, str]:
        return self.inner.run_info()

    def supports_tensor(self) -> bool:
        """Whether :meth:`denoise_tensor` is available: when the wrapped denoiser has a
        tensor path (the transforms themselves run on any tensor)."""
        return self.inner.supports_tensor()

    def denoise(self, noisy: np.ndarray, sigma: float | None = None, *,
                noise: NoiseModel | None = None) -> np.ndarray:
        """Stabilise, denoise with the wrapped denoiser, invert (see the module docstring).

        Parameters
        ----------
        noisy : numpy.ndarray
            Float32 image, (H, W) or (H, W, 3), [0, 1] units; values may leave [0, 1].
        sigma : float or None
            Not used by the transform, which hands on its own sigma; for Gaussian noise
            (gain 0) it is handed on as given, in [0, 1] units.
        noise : NoiseModel or None
            The noise model (oracle mode), or None to estimate it from the image
            (:func:`bench.vst.estimate_poisson_gaussian`).

        Returns
        -------
        numpy.ndarray
            The float32 estimate of the clean image, shape of ``noisy``.
        """
        if noise is None:
            noise = _fitted(noisy)
        return self._stabilised(self.inner.denoise, noisy, sigma, noise)

    def denoise_tensor(self, noisy, sigma: float | None = None, *,
                       noise: NoiseModel | None = None):
        """:meth:`denoise` on a torch tensor: the transforms and the wrapped denoiser's tensor
        path run on the tensor's device.

        Blind mode fits the noise model on a host copy of ``noisy``
        (:func:`bench.vst.estimate_poisson_gaussian` is numpy code): one device-to-host copy
        of the image, the same fit as the array path's.

        Parameters
        ----------
        noisy : torch.Tensor
            Floating-point tensor, (H, W) or (H, W, C) with the channels last, [0, 1] units.
        sigma : float or None
            As for :meth:`denoise`.
        noise : NoiseModel or None
            As for :meth:`denoise`.

        Returns
        -------
        torch.Tensor
            The float32 estimate of the clean image (the wrapped denoiser's output, as it
            is, for Gaussian noise): ``noisy``'s shape, on ``noisy``'s device.

        Raises
        ------
        NotImplementedError
            When the wrapped denoiser has no tensor path.
        """
        if not self.supports_tensor():
            raise NotImplementedError(f"denoiser '{self.name}' has no tensor path; "
                                      "call denoise() with an array")
        if noise is None:
            noise = _fitted(noisy.detach().cpu().numpy())
        return self._stabilised(self.inner.denoise_tensor, noisy, sigma, noise)

    def _stabilised(self, denoise, noisy, sigma: float | None, noise: NoiseModel):
        """``denoise`` (the wrapped denoiser's array or tensor path) inside the transform."""
        from bench.vst import stabilise, unstabilise

        if noise.gain <= 0:  # Gaussian: nothing to stabilise
            return denoise(noisy, noise.sigma if sigma is None else sigma)
        image, unit_sigma, state = stabilise(noisy, noise.gain, noise.sigma)
        channels = 1 if noisy.ndim == 2 else noisy.shape[-1]
        out = denoise(image, unit_sigma if self.inner.uses_sigma(channels) else None)
        return unstabilise(out, state)

    def _denoise(self, noisy, sigma):  # denoise() is overridden whole
        raise NotImplementedError


def _fitted(noisy: np.ndarray) -> NoiseModel:
    """The Poisson-Gaussian model estimated from the array ``noisy`` (blind mode)."""
    from bench.vst import estimate_poisson_gaussian

    fit = estimate_poisson_gaussian(noisy)
    return NoiseModel(gain=float(fit.gain), sigma=float(fit.sigma))
