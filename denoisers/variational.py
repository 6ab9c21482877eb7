"""Total-variation denoising (Rudin, Osher and Fatemi, Physica D 1992)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.interfaces import Denoiser
from bench.tune.space import tunable


@dataclass
class TotalVariation(Denoiser):
    """Total-variation denoising with Chambolle's projection algorithm (scikit-image).

    A. Chambolle, "An algorithm for total variation minimization and applications",
    J. Math. Imaging Vis. 2004.

    Parameters
    ----------
    weight_factor : float
        The TV weight is ``weight_factor * sigma`` (sigma in [0, 1] units); larger smooths more.
        1.0 was the best of 0.6, 1, 1.5 and 2 on scikit-image's sample images.
        ``bench tune`` searches 0.2 to 4.
    eps : float
        Stopping tolerance: iterations stop when the energy changes by less than ``eps``
        times its initial value (scikit-image's default, 2e-4).
    max_num_iter : int
        Iteration limit (scikit-image's default, 200).

    With the default tolerance the iterations stop early, at a point that jumps with the
    weight, so the PSNR is a jagged function of ``weight_factor`` (differences of a few tenths
    of a dB between weights 2 % apart); ``eps=1e-5, max_num_iter=2000`` converges and gives a
    smooth curve (see docs/tuning.md).
    """

    weight_factor: float = tunable(1.0, low=0.2, high=4.0, log=True)
    eps: float = 2.0e-4
    max_num_iter: int = 200

    name = "tv"

    def _denoise(self, noisy, sigma):
        from skimage.restoration import denoise_tv_chambolle

        channel_axis = -1 if noisy.ndim == 3 else None
        return denoise_tv_chambolle(noisy, weight=self.weight_factor * sigma, eps=self.eps,
                                    max_num_iter=self.max_num_iter, channel_axis=channel_axis)
