"""Wavelet shrinkage with BayesShrink (or VisuShrink) thresholds.

S. G. Chang, B. Yu and M. Vetterli, "Adaptive wavelet thresholding for image denoising and
compression", IEEE TIP 2000 (BayesShrink); D. L. Donoho and I. M. Johnstone, "Ideal spatial
adaptation by wavelet shrinkage", Biometrika 1994 (VisuShrink).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.interfaces import Denoiser
from bench.tune.space import tunable
from denoisers.filters import check_rule

#: Wavelet families ``bench tune`` tries (PyWavelets names).
TUNED_WAVELETS = ("db1", "db2", "db4", "db8", "sym4", "sym8", "coif1", "coif3")

#: The hand rule the Train400 one replaced, kept for comparison (``rule="hand"``).
HAND_RULES = {"wavelet": {"wavelet": lambda sigma8: "db1"}}


def wavelet_family(sigma8: float) -> str:
    """Wavelet family for noise sigma ``sigma8`` (8-bit units).

    Fitted on Train400, see docs/tuning.md: db2 up to sigma 30, db1 above (BayesShrink, soft
    throughout).
    """
    return "db2" if sigma8 <= 30 else "db1"


@dataclass
class WaveletBayesShrink(Denoiser):
    """Soft or hard thresholding of an orthogonal wavelet transform (scikit-image).

    Parameters
    ----------
    wavelet : str or None
        PyWavelets wavelet name. Rule when None (:func:`wavelet_family`, fitted on Train400,
        see docs/tuning.md): db2 up to sigma 30 (8-bit units), db1 above.
    levels : int or None
        Decomposition levels; None lets scikit-image choose (three fewer than the maximum).
    method : {"BayesShrink", "VisuShrink"}
        Threshold rule: one adaptive threshold per sub-band (BayesShrink), or the universal
        threshold ``sigma * sqrt(2 log n)`` (VisuShrink).
    mode : {"soft", "hard"}
        Thresholding function.
    rule : {"train400", "hand"}
        Which rule fills ``wavelet`` when None: the Train400 fit, or the former hand choice
        (db1 at every level), kept for comparison. BayesShrink and soft are the defaults of
        both.

    ``bench tune`` searches the families of :data:`TUNED_WAVELETS`, both methods and both
    modes (a grid of 32 points).
    """

    wavelet: str | None = tunable(None, choices=TUNED_WAVELETS)
    levels: int | None = None
    method: str = tunable("BayesShrink", choices=("BayesShrink", "VisuShrink"))
    mode: str = tunable("soft", choices=("soft", "hard"))
    rule: str = "train400"

    name = "wavelet"
    keeps_input = True

    def __post_init__(self):
        check_rule(self.rule)

    def _denoise(self, noisy, sigma):
        from skimage.restoration import denoise_wavelet

        rule = wavelet_family if self.rule == "train400" else HAND_RULES["wavelet"]["wavelet"]
        wavelet = self.wavelet if self.wavelet is not None else rule(sigma * 255)
        channel_axis = -1 if noisy.ndim == 3 else None
        return denoise_wavelet(
            noisy, sigma=sigma, wavelet=wavelet, mode=self.mode, wavelet_levels=self.levels,
            method=self.method, rescale_sigma=True, channel_axis=channel_axis,
        )
