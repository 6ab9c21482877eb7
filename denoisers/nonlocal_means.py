"""Non-local means (Buades, Coll and Morel, "A non-local algorithm for image denoising", CVPR 2005)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.interfaces import Denoiser


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
    """

    h_factor: float = 0.6
    patch_size: int = 5
    patch_distance: int = 6

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
    """

    h_factor: float = 0.9
    template_size: int = 7
    search_size: int = 21

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
