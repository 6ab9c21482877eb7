"""Wavelet shrinkage with BayesShrink thresholds.

S. G. Chang, B. Yu and M. Vetterli, "Adaptive wavelet thresholding for image denoising and
compression", IEEE TIP 2000.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.interfaces import Denoiser


@dataclass
class WaveletBayesShrink(Denoiser):
    """BayesShrink soft thresholding of an orthogonal wavelet transform (scikit-image).

    Parameters
    ----------
    wavelet : str
        PyWavelets wavelet name.
    levels : int or None
        Decomposition levels; None lets scikit-image choose (three fewer than the maximum).
    """

    wavelet: str = "db1"
    levels: int | None = None

    name = "wavelet"

    def _denoise(self, noisy, sigma):
        from skimage.restoration import denoise_wavelet

        channel_axis = -1 if noisy.ndim == 3 else None
        return denoise_wavelet(
            noisy, sigma=sigma, wavelet=self.wavelet, mode="soft", wavelet_levels=self.levels,
            method="BayesShrink", rescale_sigma=True, channel_axis=channel_axis,
        )
