"""Image quality metrics with the published protocols.

PSNR: data range 1, the estimate clipped to [0, 1] (optionally rounded to 8 bits first, as
some published code does). SSIM: Wang et al., "Image quality assessment: from error
visibility to structural similarity", IEEE TIP 2004 — Gaussian window sigma 1.5, K1 0.01,
K2 0.03, population covariance, mean over the valid region, the mean over channels for colour.
"""

from __future__ import annotations

import numpy as np


def prepare(image: np.ndarray, *, clip: bool = True, round8: bool = False) -> np.ndarray:
    """Return ``image`` as float64, clipped to [0, 1] and optionally quantised to 8 bits."""
    out = np.asarray(image, dtype=np.float64)
    if clip or round8:
        out = np.clip(out, 0.0, 1.0)
    if round8:
        out = np.round(out * 255.0) / 255.0
    return out


def psnr(reference: np.ndarray, estimate: np.ndarray, *, clip: bool = True,
         round8: bool = False) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1].

    Parameters
    ----------
    reference : numpy.ndarray
        Clean image in [0, 1].
    estimate : numpy.ndarray
        Image to score, same shape.
    clip : bool
        Clip ``estimate`` to [0, 1] first (denoised outputs); False for noisy inputs.
    round8 : bool
        Round ``estimate`` to 8-bit levels first (implies clipping).

    Returns
    -------
    float
        ``10 log10(1 / MSE)``; ``inf`` for identical images.
    """
    from skimage.metrics import peak_signal_noise_ratio

    reference = np.asarray(reference, dtype=np.float64)
    return float(peak_signal_noise_ratio(
        reference, prepare(estimate, clip=clip, round8=round8), data_range=1.0
    ))


def ssim(reference: np.ndarray, estimate: np.ndarray, *, clip: bool = True,
         round8: bool = False) -> float:
    """Structural similarity with Wang et al.'s protocol (see the module docstring).

    Parameters are as for :func:`psnr`. Colour images (H, W, 3) give the mean over channels.
    """
    from skimage.metrics import structural_similarity

    reference = np.asarray(reference, dtype=np.float64)
    return float(structural_similarity(
        reference, prepare(estimate, clip=clip, round8=round8), data_range=1.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=-1 if reference.ndim == 3 else None,
    ))
