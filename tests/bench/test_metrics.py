import numpy as np
import pandas as pd
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.metrics import PSNR, SSIM, metric_columns, metric_info
from bench.plan import noise_rng
from bench.protocol import Protocol
from bench.registry import default_registry

psnr, ssim = PSNR(), SSIM()


def test_psnr_of_a_clipped_output_matches_scikit_image(clean_image, rng):
    estimate = clean_image + rng.normal(0, 0.05, clean_image.shape)
    expected = peak_signal_noise_ratio(clean_image.astype(np.float64), np.clip(estimate, 0, 1), data_range=1)
    assert psnr(clean_image, Protocol().output(estimate)) == pytest.approx(expected, abs=1e-9)


def test_protocol_scores_noisy_inputs_unclipped(gray_image, rng):
    estimate = gray_image + rng.normal(0, 0.2, gray_image.shape)
    protocol = Protocol()
    assert psnr(gray_image, protocol.noisy(estimate)) < psnr(gray_image, protocol.output(estimate))


def test_protocol_round8_quantises_outputs_to_8_bits(gray_image, rng):
    estimate = gray_image + rng.normal(0, 0.01, gray_image.shape)
    quantised = np.round(np.clip(estimate, 0, 1) * 255) / 255
    expected = peak_signal_noise_ratio(gray_image.astype(np.float64), quantised, data_range=1)
    assert psnr(gray_image, Protocol(round8=True).output(estimate)) == pytest.approx(expected, abs=1e-9)


def test_ssim_uses_wang_protocol_not_scikit_default(clean_image, rng):
    estimate = np.clip(clean_image + rng.normal(0, 0.05, clean_image.shape), 0, 1)
    channel_axis = -1 if clean_image.ndim == 3 else None
    wang = structural_similarity(clean_image.astype(np.float64), estimate, data_range=1,
                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 channel_axis=channel_axis)
    default = structural_similarity(clean_image.astype(np.float64), estimate, data_range=1,
                                    channel_axis=channel_axis)
    assert ssim(clean_image, estimate) == pytest.approx(wang, abs=1e-7)
    assert abs(wang - default) > 1e-4


def test_ssim_colour_is_mean_over_channels(colour_image, rng):
    estimate = np.clip(colour_image + rng.normal(0, 0.05, colour_image.shape), 0, 1)
    per_channel = [ssim(colour_image[..., c], estimate[..., c]) for c in range(3)]
    assert ssim(colour_image, estimate) == pytest.approx(np.mean(per_channel), abs=1e-7)


def test_noisy_psnr_at_sigma_25_is_the_papers_20_17_db():
    import skimage.data

    clean = (skimage.data.camera() / 255).astype(np.float32)
    noisy = default_registry().create_noise("gaussian").apply(
        clean, 25, noise_rng(0, "camera", "gaussian", 25)).image
    assert psnr(clean, Protocol().noisy(noisy)) == pytest.approx(20.17, abs=0.02)


def test_metric_scores_torch_tensors_like_arrays(gray_image, rng):
    torch = pytest.importorskip("torch")
    estimate = np.clip(gray_image + rng.normal(0, 0.05, gray_image.shape), 0, 1)
    on_host = psnr(gray_image, estimate)
    assert psnr(torch.from_numpy(gray_image), torch.from_numpy(estimate)) == pytest.approx(on_host, abs=1e-9)
    assert ssim(torch.from_numpy(gray_image), torch.from_numpy(estimate)) == pytest.approx(
        ssim(gray_image, estimate), abs=1e-7)


def test_metrics_are_registry_entries_primary_first_and_unknown_higher_is_better():
    registry = default_registry()
    assert registry.names("metric")[:2] == ["psnr", "ssim"]
    assert metric_info("not_registered", registry).higher_is_better


def test_metric_columns_are_those_with_a_noisy_twin_primary_first():
    frame = pd.DataFrame(columns=["denoiser", "ssim", "psnr", "toy", "noisy_psnr", "noisy_ssim",
                                  "noisy_toy", "noisy_only", "seconds"])
    assert metric_columns(frame) == ["ssim", "psnr", "toy"]
