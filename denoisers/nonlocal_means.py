"""Non-local means (Buades, Coll and Morel, "A non-local algorithm for image denoising", CVPR 2005)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.interfaces import Denoiser
from bench.tune.space import tunable
from denoisers.on_device import RunsOnCuda
from denoisers.filters import check_rule

#: The hand rules the Train400 ones replaced, kept for comparison (``rule="hand"``).
HAND_RULES = {
    "nlm": {"h_factor": lambda sigma8: 0.6, "patch_size": lambda sigma8: 5,
            "patch_distance": lambda sigma8: 6},
    "nlm_opencv": {"h_factor": lambda sigma8: 0.9, "template_size": lambda sigma8: 7,
                   "search_size": lambda sigma8: 21},
}


def nlm_h_factor(sigma8: float) -> float:
    """scikit-image NLM strength ``h / sigma`` for noise sigma ``sigma8`` (8-bit units).

    Fitted on Train400, see docs/tuning.md: ``0.96 - 0.0125 sigma8`` up to sigma 25, then
    ``0.65 - 0.0047 (sigma8 - 25)``.
    """
    if sigma8 <= 25:
        return 0.96 - 0.0125 * sigma8
    return 0.65 - 0.0047 * (sigma8 - 25)


def nlm_patch_size(sigma8: float) -> int:
    """scikit-image NLM patch side: 5 up to sigma 40 (8-bit units), 7 above.

    Fitted on Train400, see docs/tuning.md.
    """
    return 5 if sigma8 <= 40 else 7


def nlm_patch_distance(sigma8: float) -> int:
    """scikit-image NLM search radius: ``round(2.9 + 0.08 sigma8)`` pixels.

    Fitted on Train400, see docs/tuning.md.
    """
    return int(round(2.9 + 0.08 * sigma8))


def nlm_opencv_h_factor(sigma8: float) -> float:
    """OpenCV NLM strength ``h / sigma`` for noise sigma ``sigma8`` (8-bit units).

    Fitted on Train400, see docs/tuning.md: ``1.36 - 0.012 sigma8`` up to sigma 35, then
    ``0.94 - 0.0039 (sigma8 - 35)``.
    """
    if sigma8 <= 35:
        return 1.36 - 0.012 * sigma8
    return 0.94 - 0.0039 * (sigma8 - 35)


def nlm_opencv_template_size(sigma8: float) -> int:
    """OpenCV NLM template side: 3 up to sigma 30 (8-bit units), 5 above.

    Fitted on Train400, see docs/tuning.md.
    """
    return 3 if sigma8 <= 30 else 5


def nlm_opencv_search_size(sigma8: float) -> int:
    """OpenCV NLM search window side: the odd number nearest ``9.6 + 0.114 sigma8``.

    Fitted on Train400, see docs/tuning.md.
    """
    return 2 * int(round((9.6 + 0.114 * sigma8 - 1) / 2)) + 1


@dataclass
class NonLocalMeans(RunsOnCuda, Denoiser):
    """Non-local means from scikit-image, fast mode, with the noise variance subtracted.

    Parameters
    ----------
    h_factor : float or None
        Filtering strength ``h = h_factor * sigma``. Rule when None (:func:`nlm_h_factor`,
        fitted on Train400, see docs/tuning.md): ``0.96 - 0.0125 sigma_8bit`` up to sigma
        25, then ``0.65 - 0.0047 (sigma_8bit - 25)``.
    patch_size : int or None
        Side of the compared patches in pixels. Rule when None (:func:`nlm_patch_size`):
        5 up to sigma 40, 7 above.
    patch_distance : int or None
        Search radius in pixels. Rule when None (:func:`nlm_patch_distance`):
        ``round(2.9 + 0.08 sigma_8bit)``.
    rule : {"train400", "hand"}
        Which rule fills a parameter left at None: the Train400 fit, or the former hand
        constants (0.6, the best of 0.6, 0.8 and 1.0 on scikit-image's sample images;
        patch 5; distance 6), kept for comparison.

    ``bench tune`` searches ``h_factor`` in 0.3 to 1.5, odd patch sizes 3 to 9 and distances
    2 to 12.
    """

    h_factor: float | None = tunable(None, low=0.3, high=1.5)
    patch_size: int | None = tunable(None, low=3, high=9, step=2)
    patch_distance: int | None = tunable(None, low=2, high=12)
    rule: str = "train400"

    name = "nlm"
    keeps_input = True

    def __post_init__(self):
        check_rule(self.rule)

    def resolved(self, sigma: float) -> dict:
        """The parameters used at ``sigma`` ([0, 1] units): given ones, else the rule's."""
        return _resolve(self, sigma * 255, {"h_factor": nlm_h_factor, "patch_size": nlm_patch_size,
                                            "patch_distance": nlm_patch_distance})

    def _denoise(self, noisy, sigma):
        from skimage.restoration import denoise_nl_means

        p = self.resolved(sigma)
        channel_axis = -1 if noisy.ndim == 3 else None
        return denoise_nl_means(
            noisy, h=p["h_factor"] * sigma, sigma=sigma, patch_size=p["patch_size"],
            patch_distance=p["patch_distance"], fast_mode=True, channel_axis=channel_axis,
        )


@dataclass
class NonLocalMeansOpenCV(Denoiser):
    """OpenCV's ``fastNlMeansDenoising`` (grayscale) or ``fastNlMeansDenoisingColored``.

    OpenCV works on 8-bit images only, so the noisy image is clipped to [0, 1] and rounded to
    8 bits first; that loses the part of the noise outside [0, 1], which is what a user of
    OpenCV gets too. Colour images are filtered in CIELAB, as OpenCV does.

    Parameters
    ----------
    h_factor : float or None
        Filtering strength ``h = h_factor * sigma_8bit`` for luminance and colour. Rule when
        None (:func:`nlm_opencv_h_factor`, fitted on Train400, see docs/tuning.md):
        ``1.36 - 0.012 sigma_8bit`` up to sigma 35, then ``0.94 - 0.0039 (sigma_8bit - 35)``.
    template_size : int or None
        Side of the compared patches (odd). Rule when None
        (:func:`nlm_opencv_template_size`): 3 up to sigma 30, 5 above.
    search_size : int or None
        Side of the search window (odd). Rule when None (:func:`nlm_opencv_search_size`):
        the odd number nearest ``9.6 + 0.114 sigma_8bit``.
    rule : {"train400", "hand"}
        Which rule fills a parameter left at None: the Train400 fit, or the former hand
        constants (0.9, 7, 21), kept for comparison.

    ``bench tune`` searches ``h_factor`` in 0.3 to 2, odd templates 3 to 11 and odd search
    windows 7 to 35.
    """

    h_factor: float | None = tunable(None, low=0.3, high=2.0)
    template_size: int | None = tunable(None, low=3, high=11, step=2)
    search_size: int | None = tunable(None, low=7, high=35, step=2)
    rule: str = "train400"

    name = "nlm_opencv"
    keeps_input = True

    def __post_init__(self):
        check_rule(self.rule)

    def _denoise(self, noisy, sigma):
        import cv2

        p = _resolve(self, sigma * 255, {"h_factor": nlm_opencv_h_factor,
                                         "template_size": nlm_opencv_template_size,
                                         "search_size": nlm_opencv_search_size})
        image = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
        h = float(p["h_factor"] * sigma * 255)
        if image.ndim == 3:
            bgr = np.ascontiguousarray(image[..., ::-1])
            out = cv2.fastNlMeansDenoisingColored(
                bgr, None, h, h, p["template_size"], p["search_size"]
            )[..., ::-1]
        else:
            out = cv2.fastNlMeansDenoising(image, None, h, p["template_size"], p["search_size"])
        return out.astype(np.float32) / 255


def _resolve(denoiser, sigma8: float, train400: dict) -> dict:
    """The denoiser's parameters named in ``train400``: each given one as given, each None
    one from its rule (``train400``, or the hand rule with ``rule="hand"``) at ``sigma8``."""
    rules = train400 if denoiser.rule == "train400" else HAND_RULES[denoiser.name]
    values = {}
    for key, rule in rules.items():
        value = getattr(denoiser, key)
        values[key] = value if value is not None else rule(sigma8)
    return values
