"""Wavelet shrinkage with BayesShrink (or VisuShrink) thresholds.

S. G. Chang, B. Yu and M. Vetterli, "Adaptive wavelet thresholding for image denoising and
compression", IEEE TIP 2000 (BayesShrink); D. L. Donoho and I. M. Johnstone, "Ideal spatial
adaptation by wavelet shrinkage", Biometrika 1994 (VisuShrink).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.interfaces import Denoiser
from bench.tune.space import tunable

#: Wavelet families ``bench tune`` tries (PyWavelets names).
TUNED_WAVELETS = ("db1", "db2", "db4", "db8", "sym4", "sym8", "coif1", "coif3")


@dataclass
class WaveletBayesShrink(Denoiser):
    """Soft or hard thresholding of an orthogonal wavelet transform (scikit-image).

    Parameters
    ----------
    wavelet : str
        PyWavelets wavelet name.
    levels : int or None
        Decomposition levels; None lets scikit-image choose (three fewer than the maximum).
    method : {"BayesShrink", "VisuShrink"}
        Threshold rule: one adaptive threshold per sub-band (BayesShrink), or the universal
        threshold ``sigma * sqrt(2 log n)`` (VisuShrink).
    mode : {"soft", "hard"}
        Thresholding function.

    ``bench tune`` searches the families of :data:`TUNED_WAVELETS`, both methods and both
    modes (a grid of 32 points).
    """

    wavelet: str = tunable("db1", choices=TUNED_WAVELETS)
    levels: int | None = None
    method: str = tunable("BayesShrink", choices=("BayesShrink", "VisuShrink"))
    mode: str = tunable("soft", choices=("soft", "hard"))

    name = "wavelet"

    def _denoise(self, noisy, sigma):
        from skimage.restoration import denoise_wavelet

        channel_axis = -1 if noisy.ndim == 3 else None
        return denoise_wavelet(
            noisy, sigma=sigma, wavelet=self.wavelet, mode=self.mode, wavelet_levels=self.levels,
            method=self.method, rescale_sigma=True, channel_axis=channel_axis,
        )
