"""bench.fast_metrics.ssim against scikit-image on real images: the evidence for its precision.

The suite's SSIM filters the sum of the images in float64 and their difference in float32
(``bench/fast_metrics.py`` explains why). These tests hold it to scikit-image's
``structural_similarity(..., data_range=1, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`` on float64 copies, within 1e-6, over real gray and colour images
(Set12, Train400 samples and PolyU20's clean shots from ``$BENCH_DATA_DIR``; scikit-image's own
samples when the data are absent), Gaussian noise of sigma 5 to 75 in 8-bit units, noisy inputs
clipped and not, and denoised-like smooth estimates.

The tolerance has teeth: the plain float32 computation (five float32 filters, the variances as
``E[x**2] - E[x]**2``) misses it by up to 2e-6 on scikit-image's ``text`` and ``horse``, which
``test_plain_float32_ssim_misses_the_tolerance`` checks, so that a faster float32 shortcut
cannot pass here unnoticed.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from conftest import reference_image
from skimage.metrics import structural_similarity

from bench.fast_metrics import gaussian_window, ssim

TOLERANCE = 1e-6
SIGMAS = (5, 15, 25, 50, 75)  # Gaussian noise, 8-bit units


def reference_ssim(reference, estimate):
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    return structural_similarity(
        reference, estimate, data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, channel_axis=-1 if reference.ndim == 3 else None)


# (folder, file names): gray 256x256 and 512x512 (Set12), gray 180x180 (Train400, the sweep's
# size), colour 512x512 JPEGs with saturated highlights (PolyU20's clean shots).
DATA = {
    "Set12": ("01.png", "05.png", "08.png", "12.png"),
    "Train400": ("test_001.png", "test_101.png", "test_201.png", "test_301.png"),
    "PolyU20": ("Canon5D2_5_160_6400_circuit_8_mean.JPG",
                "Canon5D2_5_160_3200_chair_11_mean.JPG"),
}
CASES = [(folder, name) for folder, names in DATA.items() for name in names]


def _estimates(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> dict:
    """What the suite scores, float32: the noisy input unclipped and clipped, and denoised-like
    outputs (the noisy image smoothed by a Gaussian, and by a median, clipped)."""
    import cv2

    noisy = clean + rng.normal(0, sigma / 255, clean.shape).astype(np.float32)
    clipped = np.clip(noisy, 0, 1)
    return {
        "noisy_unclipped": noisy,
        "clipped": clipped,
        "smoothed": np.clip(cv2.GaussianBlur(noisy, (0, 0), 0.5 + sigma / 25), 0, 1),
        "median": cv2.medianBlur(clipped, 5),
    }


def _worst(clean: np.ndarray, seed: int) -> tuple[float, str]:
    """Largest |ssim - scikit-image| over the noise levels and estimates, and where."""
    rng = np.random.default_rng(seed)
    worst = (0.0, "")
    for sigma in SIGMAS:
        for kind, estimate in _estimates(clean, sigma, rng).items():
            difference = abs(ssim(clean, estimate) - reference_ssim(clean, estimate))
            worst = max(worst, (difference, f"sigma {sigma}, {kind}"))
    return worst


@pytest.mark.parametrize("folder,name", CASES, ids=[name for _, name in CASES])
def test_ssim_precision_on_reference_images(folder, name):
    clean = reference_image(folder, name)
    difference, where = _worst(clean, seed=len(name))
    assert difference < TOLERANCE, f"{name}, {where}: {difference:.2e}"


@pytest.mark.parametrize("name", ["camera", "text", "horse", "astronaut", "coffee"])
def test_ssim_precision_on_scikit_image_samples(name):
    image = getattr(skimage.data, name)()
    clean = image.astype(np.float32) if image.dtype == bool else (image / 255).astype(np.float32)
    difference, where = _worst(clean, seed=len(name))
    assert difference < TOLERANCE, f"{name}, {where}: {difference:.2e}"


def test_ssim_precision_on_float64_images():
    # The published figure's case: float64 images (the difference is rounded to float32 once).
    rng = np.random.default_rng(3)
    clean = skimage.data.camera() / 255.0
    for sigma in (5, 25, 75):
        noisy = clean + rng.normal(0, sigma / 255, clean.shape)
        for estimate in (noisy, np.clip(noisy, 0, 1)):
            assert abs(ssim(clean, estimate) - reference_ssim(clean, estimate)) < TOLERANCE


def _plain_float32_ssim(x, y):
    """The shortcut the suite does not take: five float32 filters, float32 arithmetic."""
    import cv2

    taps = gaussian_window().astype(np.float32)
    x, y = x.astype(np.float32), y.astype(np.float32)

    def mean(a):
        return cv2.sepFilter2D(a, -1, taps, taps, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    ux, uy, uxx, uyy, uxy = mean(x), mean(y), mean(x * x), mean(y * y), mean(x * y)
    c1, c2 = 1e-4, 9e-4
    ssim_map = ((2 * ux * uy + c1) * (2 * (uxy - ux * uy) + c2)
                / ((ux * ux + uy * uy + c1) * (uxx - ux * ux + uyy - uy * uy + c2)))
    return float(ssim_map.mean(dtype=np.float64))


@pytest.mark.parametrize("name", ["text", "horse"])
def test_plain_float32_ssim_misses_the_tolerance(name):
    image = getattr(skimage.data, name)()
    clean = image.astype(np.float64) if image.dtype == bool else image / 255
    rng = np.random.default_rng(5)
    estimate = np.clip(clean + rng.normal(0, 5 / 255, clean.shape), 0, 1)
    expected = reference_ssim(clean, estimate)
    assert abs(_plain_float32_ssim(clean, estimate) - expected) > TOLERANCE
    assert abs(ssim(clean, estimate) - expected) < TOLERANCE / 10
