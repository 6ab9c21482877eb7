"""Local filters: median, Gaussian blur and bilateral.

References: Tukey, "Exploratory Data Analysis", 1977 (median); Tomasi and Manduchi,
"Bilateral filtering for gray and color images", ICCV 1998.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bench.errors import InvalidParameterError
from bench.interfaces import Denoiser
from bench.tune.space import tunable
from denoisers.on_device import RunsOnCuda

#: The names of the parameter rules: ``"train400"`` (fitted on Train400, see
#: docs/tuning.md; the default) and ``"hand"`` (the constants chosen by hand before).
RULES = ("train400", "hand")

#: The hand rules the Train400 ones replaced (sigma8 is sigma in 8-bit units), kept for
#: comparison: ``rule="hand"``.
HAND_RULES = {
    "median": {"size": lambda sigma8: 3 if sigma8 <= 30 else 5},
    "gaussian_blur": {"width": lambda sigma8: max(0.5, sigma8 / 25)},
    "bilateral": {"range_factor": lambda sigma8: 4.0, "spatial": lambda sigma8: 2.5},
}


def check_rule(rule: str) -> None:
    """Refuse a rule name other than those of :data:`RULES`."""
    if rule not in RULES:
        raise InvalidParameterError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")


def median_size(sigma8: float) -> int:
    """Median window side for noise sigma ``sigma8`` (8-bit units).

    Fitted on Train400, see docs/tuning.md: 3 up to sigma 30, 5 up to 50, 7 above.
    """
    return 3 if sigma8 <= 30 else 5 if sigma8 <= 50 else 7


def gaussian_width(sigma8: float) -> float:
    """Gaussian blur width in pixels for noise sigma ``sigma8`` (8-bit units).

    Fitted on Train400, see docs/tuning.md: ``0.26 + 0.0216 sigma8``.
    """
    return 0.26 + 0.0216 * sigma8


def bilateral_range_factor(sigma8: float) -> float:
    """Bilateral range sigma as a multiple of the noise sigma, for ``sigma8`` (8-bit units).

    Fitted on Train400, see docs/tuning.md: ``1.73 + 0.034 sigma8``.
    """
    return 1.73 + 0.034 * sigma8


def bilateral_spatial(sigma8: float) -> float:
    """Bilateral spatial sigma in pixels: 1.8 at every level.

    Fitted on Train400, see docs/tuning.md (tuned 1.7 to 2.1 from sigma 15 to 45).
    """
    return 1.8


@dataclass
class Median(RunsOnCuda, Denoiser):
    """Median filter over a square window.

    Parameters
    ----------
    size : int or None
        Window side in pixels. Rule when None (:func:`median_size`, fitted on Train400, see
        docs/tuning.md): 3 for sigma up to 30 (8-bit units), 5 up to 50, 7 above.
        ``bench tune`` searches the odd sizes 3 to 11.
    rule : {"train400", "hand"}
        Which rule fills a parameter left at None: the Train400 fit, or the former hand
        rule (3 up to sigma 30, else 5), kept for comparison.
    """

    size: int | None = tunable(None, low=3, high=11, step=2)
    rule: str = "train400"

    name = "median"
    keeps_input = True
    colour = "per_channel"

    def __post_init__(self):
        check_rule(self.rule)

    def resolved(self, sigma: float) -> dict:
        """The parameters used at ``sigma`` ([0, 1] units): given ones, else the rule's."""
        rule = median_size if self.rule == "train400" else HAND_RULES["median"]["size"]
        return {"size": self.size if self.size is not None else rule(sigma * 255)}

    def _denoise(self, noisy, sigma):
        return ndimage.median_filter(noisy, size=self.resolved(sigma)["size"], mode="reflect")


@dataclass
class GaussianBlur(RunsOnCuda, Denoiser):
    """Gaussian low-pass filter.

    Parameters
    ----------
    width : float or None
        Standard deviation of the kernel in pixels. Rule when None (:func:`gaussian_width`,
        fitted on Train400, see docs/tuning.md): ``0.26 + 0.0216 sigma_8bit`` (0.58 pixel at
        sigma 15, 0.80 at 25, 1.34 at 50). ``bench tune`` searches 0.3 to 5 pixels.
    rule : {"train400", "hand"}
        Which rule fills a parameter left at None: the Train400 fit, or the former hand
        rule (``sigma_8bit / 25``, at least 0.5), kept for comparison.
    """

    width: float | None = tunable(None, low=0.3, high=5.0, log=True)
    rule: str = "train400"

    name = "gaussian_blur"
    keeps_input = True

    def __post_init__(self):
        check_rule(self.rule)

    def resolved(self, sigma: float) -> dict:
        """The parameters used at ``sigma`` ([0, 1] units): given ones, else the rule's."""
        rule = gaussian_width if self.rule == "train400" else HAND_RULES["gaussian_blur"]["width"]
        return {"width": self.width if self.width is not None else rule(sigma * 255)}

    def _denoise(self, noisy, sigma):
        width = self.resolved(sigma)["width"]
        widths = (width, width, 0) if noisy.ndim == 3 else width
        return ndimage.gaussian_filter(noisy, sigma=widths, mode="reflect")


@dataclass
class Bilateral(RunsOnCuda, Denoiser):
    """Edge-preserving bilateral filter, OpenCV's ``cv2.bilateralFilter`` on float32.

    Parameters
    ----------
    range_factor : float or None
        Range (intensity) kernel sigma as a multiple of the noise sigma. Rule when None
        (:func:`bilateral_range_factor`, fitted on Train400, see docs/tuning.md):
        ``1.73 + 0.034 sigma_8bit``.
    spatial : float or None
        Spatial kernel sigma in pixels; the window spans about three of them each way. Rule
        when None (:func:`bilateral_spatial`, fitted on Train400, see docs/tuning.md): 1.8.
        ``bench tune`` searches 1 to 10 and 0.5 to 6 pixels.
    rule : {"train400", "hand"}
        Which rule fills a parameter left at None: the Train400 fit, or the former hand
        constants (4 and 2.5 px, the best of {2, 3, 4} x {1.5, 2.5} on scikit-image's sample
        images), kept for comparison.
    """

    range_factor: float | None = tunable(None, low=1.0, high=10.0, log=True)
    spatial: float | None = tunable(None, low=0.5, high=6.0, log=True)
    rule: str = "train400"

    name = "bilateral"
    keeps_input = True

    def __post_init__(self):
        check_rule(self.rule)

    def resolved(self, sigma: float) -> dict:
        """The parameters used at ``sigma`` ([0, 1] units): given ones, else the rule's."""
        sigma8 = sigma * 255
        if self.rule == "train400":
            rules = {"range_factor": bilateral_range_factor, "spatial": bilateral_spatial}
        else:
            rules = HAND_RULES["bilateral"]
        return {key: getattr(self, key) if getattr(self, key) is not None else rule(sigma8)
                for key, rule in rules.items()}

    def _denoise(self, noisy, sigma):
        import cv2

        parameters = self.resolved(sigma)
        range_factor, spatial = parameters["range_factor"], parameters["spatial"]
        image = np.ascontiguousarray(noisy, dtype=np.float32)
        # Zero sigma would make the range kernel a delta: keep a floor of one 8-bit level.
        range_sigma = max(range_factor * sigma, 1 / 255)
        return cv2.bilateralFilter(image, d=-1, sigmaColor=range_sigma, sigmaSpace=spatial)
