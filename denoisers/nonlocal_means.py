"""Non-local means (Buades, Coll and Morel, "A non-local algorithm for image denoising", CVPR 2005)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.interfaces import Denoiser
from bench.tune.space import tunable


@dataclass
class NonLocalMeans(Denoiser):
    """Non-local means from scikit-image, fast mode, with the noise variance subtracted.

    Parameters
    ----------
    h_factor : float
        Filtering strength ``h = h_factor * sigma``; 0.6 was the best of 0.6, 0.8 and 1.0 on
        scikit-image's sample images at sigma 15, 25 and 50.
    patch_size : int
        Side of the compared patches in pixels.
    patch_distance : int
        Search radius in pixels.

    ``bench tune`` searches ``h_factor`` in 0.3 to 1.5, odd patch sizes 3 to 9 and distances
    2 to 12.
    """

    h_factor: float = tunable(0.6, low=0.3, high=1.5)
    patch_size: int = tunable(5, low=3, high=9, step=2)
    patch_distance: int = tunable(6, low=2, high=12)

    name = "nlm"

    def _denoise(self, noisy, sigma):
        from skimage.restoration import denoise_nl_means

        channel_axis = -1 if noisy.ndim == 3 else None
        return denoise_nl_means(
            noisy, h=self.h_factor * sigma, sigma=sigma, patch_size=self.patch_size,
            patch_distance=self.patch_distance, fast_mode=True, channel_axis=channel_axis,
        )


@dataclass
class NonLocalMeansOpenCV(Denoiser):
    """OpenCV's ``fastNlMeansDenoising`` (grayscale) or ``fastNlMeansDenoisingColored``.

    OpenCV works on 8-bit images only, so the noisy image is clipped to [0, 1] and rounded to
    8 bits first; that loses the part of the noise outside [0, 1], which is what a user of
    OpenCV gets too. Colour images are filtered in CIELAB, as OpenCV does.

    Parameters
    ----------
    h_factor : float
        Filtering strength ``h = h_factor * sigma_8bit`` for luminance and colour.
    template_size : int
        Side of the compared patches (odd).
    search_size : int
        Side of the search window (odd).

    ``bench tune`` searches ``h_factor`` in 0.3 to 2, odd templates 3 to 11 and odd search
    windows 7 to 35.
    """

    h_factor: float = tunable(0.9, low=0.3, high=2.0)
    template_size: int = tunable(7, low=3, high=11, step=2)
    search_size: int = tunable(21, low=7, high=35, step=2)

    name = "nlm_opencv"

    def _denoise(self, noisy, sigma):
        import cv2

        image = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
        h = float(self.h_factor * sigma * 255)
        if image.ndim == 3:
            bgr = np.ascontiguousarray(image[..., ::-1])
            out = cv2.fastNlMeansDenoisingColored(
                bgr, None, h, h, self.template_size, self.search_size
            )[..., ::-1]
        else:
            out = cv2.fastNlMeansDenoising(image, None, h, self.template_size, self.search_size)
        return out.astype(np.float32) / 255
