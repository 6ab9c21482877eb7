"""Local filters: median, Gaussian blur and bilateral.

References: Tukey, "Exploratory Data Analysis", 1977 (median); Tomasi and Manduchi,
"Bilateral filtering for gray and color images", ICCV 1998.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bench.interfaces import Denoiser
from bench.tune.space import tunable


@dataclass
class Median(Denoiser):
    """Median filter over a square window.

    Parameters
    ----------
    size : int or None
        Window side in pixels. Rule when None: 3 for sigma up to 30 (8-bit units), else 5.
        ``bench tune`` searches the odd sizes 3 to 11.
    """

    size: int | None = tunable(None, low=3, high=11, step=2)

    name = "median"
    colour = "per_channel"

    def _denoise(self, noisy, sigma):
        size = self.size if self.size is not None else (3 if sigma * 255 <= 30 else 5)
        return ndimage.median_filter(noisy, size=size, mode="reflect")


@dataclass
class GaussianBlur(Denoiser):
    """Gaussian low-pass filter.

    Parameters
    ----------
    width : float or None
        Standard deviation of the kernel in pixels. Rule when None: ``sigma_8bit / 25``,
        at least 0.5 (so 1 pixel at sigma 25, 2 at sigma 50). ``bench tune`` searches
        0.3 to 5 pixels.
    """

    width: float | None = tunable(None, low=0.3, high=5.0, log=True)

    name = "gaussian_blur"

    def _denoise(self, noisy, sigma):
        width = self.width if self.width is not None else max(0.5, sigma * 255 / 25)
        widths = (width, width, 0) if noisy.ndim == 3 else width
        return ndimage.gaussian_filter(noisy, sigma=widths, mode="reflect")


@dataclass
class Bilateral(Denoiser):
    """Edge-preserving bilateral filter, OpenCV's ``cv2.bilateralFilter`` on float32.

    Parameters
    ----------
    range_factor : float
        Range (intensity) kernel sigma as a multiple of the noise sigma.
    spatial : float
        Spatial kernel sigma in pixels; the window spans about three of them each way.
        The defaults (4, 2.5) were the best of {2, 3, 4} x {1.5, 2.5} on scikit-image's
        sample images at sigma 15, 25 and 50. ``bench tune`` searches 1 to 10 and 0.5 to
        6 pixels.
    """

    range_factor: float = tunable(4.0, low=1.0, high=10.0, log=True)
    spatial: float = tunable(2.5, low=0.5, high=6.0, log=True)

    name = "bilateral"

    def _denoise(self, noisy, sigma):
        import cv2

        image = np.ascontiguousarray(noisy, dtype=np.float32)
        # Zero sigma would make the range kernel a delta: keep a floor of one 8-bit level.
        range_sigma = max(self.range_factor * sigma, 1 / 255)
        return cv2.bilateralFilter(image, d=-1, sigmaColor=range_sigma, sigmaSpace=self.spatial)
