import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench import metrics
from bench.registry import default_registry
from bench.sweep import noise_rng


def test_psnr_matches_scikit_image_after_clipping(clean_image, rng):
    estimate = clean_image + rng.normal(0, 0.05, clean_image.shape)
    expected = peak_signal_noise_ratio(clean_image.astype(np.float64), np.clip(estimate, 0, 1), data_range=1)
    assert metrics.psnr(clean_image, estimate) == pytest.approx(expected, abs=1e-9)


def test_psnr_unclipped_differs_for_out_of_range_values(gray_image, rng):
    estimate = gray_image + rng.normal(0, 0.2, gray_image.shape)
    assert metrics.psnr(gray_image, estimate, clip=False) < metrics.psnr(gray_image, estimate)


def test_psnr_round8_quantises_to_8_bits(gray_image, rng):
    estimate = gray_image + rng.normal(0, 0.01, gray_image.shape)
    quantised = np.round(np.clip(estimate, 0, 1) * 255) / 255
    expected = peak_signal_noise_ratio(gray_image.astype(np.float64), quantised, data_range=1)
    assert metrics.psnr(gray_image, estimate, round8=True) == pytest.approx(expected, abs=1e-9)


def test_ssim_uses_wang_protocol_not_scikit_default(clean_image, rng):
    estimate = np.clip(clean_image + rng.normal(0, 0.05, clean_image.shape), 0, 1)
    channel_axis = -1 if clean_image.ndim == 3 else None
    wang = structural_similarity(clean_image.astype(np.float64), estimate, data_range=1,
                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 channel_axis=channel_axis)
    default = structural_similarity(clean_image.astype(np.float64), estimate, data_range=1,
                                    channel_axis=channel_axis)
    assert metrics.ssim(clean_image, estimate) == pytest.approx(wang, abs=1e-12)
    assert abs(wang - default) > 1e-4


def test_ssim_colour_is_mean_over_channels(colour_image, rng):
    estimate = np.clip(colour_image + rng.normal(0, 0.05, colour_image.shape), 0, 1)
    per_channel = [metrics.ssim(colour_image[..., c], estimate[..., c]) for c in range(3)]
    assert metrics.ssim(colour_image, estimate) == pytest.approx(np.mean(per_channel), abs=1e-12)


def test_noisy_psnr_at_sigma_25_is_the_papers_20_17_db():
    import skimage.data

    clean = (skimage.data.camera() / 255).astype(np.float32)
    noisy = default_registry().create_noise("gaussian").apply(
        clean, 25, noise_rng(0, "camera", "gaussian", 25)).image
    assert metrics.psnr(clean, noisy, clip=False) == pytest.approx(20.17, abs=0.02)
