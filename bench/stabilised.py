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

    def denoise(self, noisy: np.ndarray, sigma: float | None = None, *,
                noise: NoiseModel | None = None) -> np.ndarray:
        """Stabilise, denoise with the wrapped denoiser, invert (see the module docstring).

        ``sigma`` is not used: the transform's own sigma is handed on.
        """
        from bench.vst import estimate_poisson_gaussian, stabilise, unstabilise

        if noise is None:
            fit = estimate_poisson_gaussian(noisy)
            noise = NoiseModel(gain=float(fit.gain), sigma=float(fit.sigma))
        if noise.gain <= 0:  # Gaussian: nothing to stabilise
            return self.inner.denoise(noisy, noise.sigma if sigma is None else sigma)
        image, unit_sigma, state = stabilise(noisy, noise.gain, noise.sigma)
        channels = 1 if noisy.ndim == 2 else noisy.shape[-1]
        out = self.inner.denoise(image, unit_sigma if self.inner.uses_sigma(channels) else None)
        return unstabilise(out, state)

    def _denoise(self, noisy, sigma):  # denoise() is overridden whole
        raise NotImplementedError
