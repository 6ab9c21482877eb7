"""bench.fast_metrics against scikit-image's PSNR and SSIM (the suite's reference protocol).

The reference is scikit-image on float64 copies of the images, which is what the suite computed
before: ``structural_similarity(..., data_range=1, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, channel_axis=-1 for colour)`` and ``peak_signal_noise_ratio(...,
data_range=1)``. Tolerances: 1e-6 for SSIM, 1e-10 dB for PSNR, 1e-5 between torch and numpy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench import fast_metrics
from bench.fast_metrics import psnr, psnr_torch, ssim, ssim_torch

SSIM_TOLERANCE = 1e-6
PSNR_TOLERANCE_DB = 1e-10
TORCH_TOLERANCE = 1e-5
SIGMAS = (5, 15, 25, 50)  # Gaussian noise, 8-bit units


def reference_ssim(reference, estimate, data_range=1.0):
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    return structural_similarity(
        reference, estimate, data_range=data_range, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, channel_axis=-1 if reference.ndim == 3 else None)


def reference_psnr(reference, estimate):
    return peak_signal_noise_ratio(np.asarray(reference, dtype=np.float64),
                                   np.asarray(estimate, dtype=np.float64), data_range=1.0)


def _load(name: str) -> np.ndarray:
    image = np.asarray(getattr(skimage.data, name)(), dtype=np.float64)
    if image.dtype == bool or image.max() <= 1:
        return image.astype(np.float32)
    return (image / 255).astype(np.float32)


# Real images, gray and colour, plus synthetic ones with large flat areas (the hard case for
# float32 variances) and odd sizes that catch off-by-one errors in the valid region.
IMAGES = {
    "camera": lambda: _load("camera"),                        # 512x512 gray
    "astronaut": lambda: _load("astronaut"),                  # 512x512x3
    "coffee": lambda: _load("coffee"),                        # 400x600x3
    "page": lambda: _load("page"),                            # 191x384 gray, flat background
    "horse": lambda: _load("horse"),                          # 328x400 binary
    "checkerboard": lambda: _load("checkerboard"),            # 200x200, two grey levels
    "camera_37x31": lambda: _load("camera")[300:337, 200:231],
    "astronaut_37x31": lambda: _load("astronaut")[100:137, 200:231],
}


@pytest.fixture(scope="module", params=sorted(IMAGES))
def image(request):
    return IMAGES[request.param]()


def _estimates(clean: np.ndarray, sigma: float, seed: int) -> dict[str, np.ndarray]:
    """What the suite scores: the noisy input unclipped, clipped outputs, denoised-looking and
    biased outputs (float32, like the suite's images)."""
    import cv2

    rng = np.random.default_rng(seed)
    noisy = clean + rng.normal(0, sigma / 255, clean.shape).astype(np.float32)
    clipped = np.clip(noisy, 0, 1)
    smoothed = np.clip(cv2.GaussianBlur(noisy, (0, 0), 0.3 + sigma / 50), 0, 1)
    return {
        "noisy_unclipped": noisy,
        "clipped": clipped,
        "smoothed": smoothed,
        "darker": np.clip(smoothed - 0.05, 0, 1),
        "brighter_unclipped": smoothed + 0.1,
        "low_contrast": 0.8 * smoothed + 0.1,
    }


@pytest.mark.parametrize("sigma", SIGMAS)
def test_ssim_matches_scikit_image(image, sigma):
    for kind, estimate in _estimates(image, sigma, seed=sigma).items():
        expected = reference_ssim(image, estimate)
        assert abs(ssim(image, estimate) - expected) <= SSIM_TOLERANCE, kind


@pytest.mark.parametrize("sigma", SIGMAS)
def test_psnr_matches_scikit_image(image, sigma):
    for kind, estimate in _estimates(image, sigma, seed=sigma).items():
        expected = reference_psnr(image, estimate)
        assert abs(psnr(image, estimate) - expected) <= PSNR_TOLERANCE_DB, kind


@pytest.mark.parametrize("name", ["camera", "astronaut", "camera_37x31"])
@pytest.mark.parametrize("sigma", [5, 50])
def test_metrics_match_scikit_image_on_float64_images(name, sigma):
    clean = IMAGES[name]().astype(np.float64)
    rng = np.random.default_rng(sigma)
    noisy = clean + rng.normal(0, sigma / 255, clean.shape)
    for estimate in (noisy, np.clip(noisy, 0, 1), np.clip(noisy, 0, 1) + 0.1):
        assert abs(ssim(clean, estimate) - reference_ssim(clean, estimate)) <= SSIM_TOLERANCE
        assert abs(psnr(clean, estimate) - reference_psnr(clean, estimate)) <= PSNR_TOLERANCE_DB


def test_ssim_of_flat_images_with_an_offset_matches_scikit_image():
    # A constant difference over flat regions: var(x - y) is a difference of equal numbers,
    # the case that needs the float64 difference path.
    clean = IMAGES["horse"]()
    for offset in (0.01, 0.1, 0.3, -0.2):
        estimate = clean + np.float32(offset)
        assert abs(ssim(clean, estimate) - reference_ssim(clean, estimate)) <= SSIM_TOLERANCE


def test_ssim_matches_scikit_image_on_a_large_image():
    # Several strips of rows, a last short one, colour.
    clean = np.tile(IMAGES["astronaut"](), (2, 1, 1))[:1001, :700]
    estimate = _estimates(clean, 25, seed=3)["clipped"]
    assert abs(ssim(clean, estimate) - reference_ssim(clean, estimate)) <= SSIM_TOLERANCE


@pytest.mark.parametrize("shape", [(11, 11), (11, 40), (12, 11, 3), (37, 31), (37, 31, 3),
                                   (40, 30, 4)])
def test_ssim_matches_scikit_image_on_small_and_odd_shapes(shape):
    rng = np.random.default_rng(7)
    clean = rng.random(shape, dtype=np.float32)
    estimate = np.clip(clean + rng.normal(0, 0.1, shape).astype(np.float32), 0, 1)
    assert abs(ssim(clean, estimate) - reference_ssim(clean, estimate)) <= SSIM_TOLERANCE


def test_ssim_colour_is_the_mean_over_channels():
    clean = IMAGES["astronaut_37x31"]()
    estimate = _estimates(clean, 25, seed=1)["clipped"]
    per_channel = [ssim(clean[..., c], estimate[..., c]) for c in range(3)]
    assert ssim(clean, estimate) == pytest.approx(np.mean(per_channel), abs=1e-9)


def test_identical_images_give_one_and_infinity(image):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ssim(image, image) == 1.0
        assert psnr(image, image) == np.inf


def test_ssim_takes_views_and_integer_images():
    clean = IMAGES["camera"]()
    estimate = _estimates(clean, 25, seed=2)["clipped"]
    view, view_estimate = clean[::2, 1::3], estimate[::2, 1::3]  # strided views
    assert abs(ssim(view, view_estimate) - reference_ssim(view, view_estimate)) <= SSIM_TOLERANCE
    clean8 = np.round(clean * 255).astype(np.uint8)
    estimate8 = np.round(estimate * 255).astype(np.uint8)
    expected = structural_similarity(clean8, estimate8, data_range=255, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)
    assert abs(ssim(clean8, estimate8, data_range=255) - expected) <= SSIM_TOLERANCE


def test_data_range_scales_the_constants():
    clean = IMAGES["camera_37x31"]()
    estimate = _estimates(clean, 25, seed=4)["clipped"].astype(np.float64)
    clean = clean.astype(np.float64)
    assert ssim(clean * 255, estimate * 255, data_range=255) == pytest.approx(
        ssim(clean, estimate), abs=1e-7)
    assert psnr(clean * 255, estimate * 255, data_range=255) == pytest.approx(
        psnr(clean, estimate), abs=1e-9)


@pytest.mark.parametrize("shape", [(10, 40), (40, 10), (10, 10, 3), (5, 5)])
def test_ssim_rejects_images_smaller_than_the_window(shape):
    image = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match="at least that high and wide"):
        ssim(image, image)
    with pytest.raises(ValueError):  # scikit-image refuses them too
        reference_ssim(image, image)


def test_metrics_reject_mismatched_or_unsupported_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(np.zeros((20, 20)), np.zeros((20, 21)))
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(np.zeros((20, 20)), np.zeros((20, 20, 1)))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, C\)"):
        ssim(np.zeros((2, 20, 20, 3)), np.zeros((2, 20, 20, 3)))
    with pytest.raises(ValueError, match="empty"):
        psnr(np.zeros((0, 3)), np.zeros((0, 3)))


def test_gaussian_window_is_scikit_images():
    from scipy import ndimage

    # scikit-image filters with scipy's Gaussian, sigma 1.5, truncate 3.5: its response to an
    # impulse is the 2-D window.
    taps = fast_metrics.gaussian_window()
    assert taps.shape == (fast_metrics.SSIM_WINDOW,) == (11,)
    impulse = np.zeros((31, 31))
    impulse[15, 15] = 1.0
    response = ndimage.gaussian_filter(impulse, sigma=1.5, truncate=3.5, mode="reflect")
    np.testing.assert_allclose(response[10:21, 10:21], np.outer(taps, taps), rtol=0, atol=1e-17)
    assert response[:10].max() == 0 and response[21:].max() == 0


# --- torch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["camera", "astronaut", "horse", "camera_37x31",
                                  "astronaut_37x31"])
@pytest.mark.parametrize("sigma", [5, 50])
def test_torch_metrics_match_numpy(name, sigma, device):
    import torch

    clean = IMAGES[name]()
    for kind, estimate in _estimates(clean, sigma, seed=sigma).items():
        reference_t = torch.from_numpy(clean).to(device)
        estimate_t = torch.from_numpy(estimate).to(device)
        difference = ssim_torch(reference_t, estimate_t) - ssim(clean, estimate)
        assert abs(difference) <= TORCH_TOLERANCE, kind
        assert abs(psnr_torch(reference_t, estimate_t) - psnr(clean, estimate)) <= 1e-9, kind
    # and against scikit-image directly
    estimate = _estimates(clean, sigma, seed=sigma)["clipped"]
    value = ssim_torch(torch.from_numpy(clean).to(device), torch.from_numpy(estimate).to(device))
    assert abs(value - reference_ssim(clean, estimate)) <= SSIM_TOLERANCE


def test_torch_metrics_of_identical_images(device):
    import torch

    image = torch.from_numpy(IMAGES["astronaut_37x31"]()).to(device)
    assert ssim_torch(image, image) == pytest.approx(1.0, abs=1e-12)
    assert psnr_torch(image, image) == np.inf


def test_torch_ssim_rejects_what_numpy_rejects(device):
    import torch

    small = torch.zeros(10, 30, device=device)
    with pytest.raises(ValueError, match="at least that high and wide"):
        ssim_torch(small, small)
    with pytest.raises(ValueError, match="shapes differ"):
        ssim_torch(torch.zeros(20, 20, device=device), torch.zeros(20, 21, device=device))
    with pytest.raises(ValueError, match="shapes differ"):
        psnr_torch(torch.zeros(20, 20, device=device), torch.zeros(20, 21, device=device))
