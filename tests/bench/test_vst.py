"""Variance stabilisation: the generalized Anscombe transform, its exact unbiased inverse,
the stabilise/unstabilise pair and the blind Poisson-Gaussian estimate (denoisers/vst.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import skimage.data

from bench.errors import InvalidParameterError
from bench.vst import (
    algebraic_inverse_generalized_anscombe,
    estimate_poisson_gaussian,
    generalized_anscombe,
    inverse_generalized_anscombe,
    stabilise,
    unstabilise,
)
from conftest import require

# (gain, sigma) in image units: Poisson at peak 2, 10, 30; two Poisson-Gaussian mixtures.
MODELS = {
    "poisson_peak2": (1 / 2, 0.0),
    "poisson_peak10": (1 / 10, 0.0),
    "poisson_peak30": (1 / 30, 0.0),
    "poisson_gaussian": (0.02, 5 / 255),
    "poisson_gaussian_strong_read": (0.01, 10 / 255),
}


def draw(clean, gain, sigma, rng):
    """The suite's Poisson-Gaussian noise (noises/poisson_gaussian.py), any gain and sigma."""
    return gain * rng.poisson(clean / gain) + sigma * rng.standard_normal(np.shape(clean))


@pytest.mark.parametrize("model", ["poisson_peak10", "poisson_gaussian"])
def test_gat_forward_gives_unit_variance(model, rng):
    gain, sigma = MODELS[model]
    for counts in (5.0, 20.0, 80.0):  # expected photons: the transform is near exact here
        transformed = generalized_anscombe(draw(np.full(200_000, counts * gain), gain, sigma,
                                                rng), gain, sigma)
        assert transformed.var() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("model", list(MODELS))
def test_gat_exact_unbiased_inverse_of_ideal_denoiser_has_no_bias(model, rng):
    """Monte Carlo: E[f(z)] (what an ideal denoiser returns), inverted, gives the clean value;
    the algebraic inverse is visibly low wherever there is about a photon or more."""
    gain, sigma = MODELS[model]
    samples = 400_000
    for clean in (0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
        transformed = generalized_anscombe(draw(np.full(samples, clean), gain, sigma, rng),
                                           gain, sigma)
        ideal = transformed.mean()
        unbiased = float(inverse_generalized_anscombe(ideal, gain, sigma))
        algebraic = float(algebraic_inverse_generalized_anscombe(ideal, gain, sigma))
        # Monte Carlo error of the mean, carried through d(clean)/dD ~ gain * D / 2.
        spread = gain * ideal / 2 * transformed.std() / math.sqrt(samples)
        counts = clean / gain
        assert abs(unbiased - clean) <= 0.05 * gain + 4 * spread, (clean, unbiased)
        if counts >= 1:
            assert clean - algebraic >= 0.15 * gain, (clean, algebraic)


def test_gat_inverse_below_range_is_zero_and_finite():
    values = np.array([-3.0, 0.0, 1e-9, 0.5, 2 * math.sqrt(3 / 8), 1.3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        poisson = inverse_generalized_anscombe(values, 0.1, 0.0)
        mixed = inverse_generalized_anscombe(values, 0.02, 5 / 255)
    assert np.all(poisson[:5] == 0) and poisson[5] > 0
    assert np.all(mixed == 0)  # E[f] of zero photons is above 1.3 with this read noise
    assert np.all(np.diff(inverse_generalized_anscombe(np.linspace(1.3, 20, 500), 0.1, 0.0))
                  > 0)


def test_gat_forward_below_domain_is_zero():
    gain, sigma = 0.02, 5 / 255
    lowest = -0.375 * gain - sigma ** 2 / gain
    out = generalized_anscombe(np.array([lowest - 1.0, lowest, 0.0]), gain, sigma)
    assert out[0] == 0 and out[1] == pytest.approx(0, abs=1e-6) and out[2] > 0


@pytest.mark.parametrize("shape", [(37, 31), (37, 31, 3)])
def test_stabilise_gives_denoiser_sigma_and_unstabilise_inverts(shape, rng):
    gain, sigma = MODELS["poisson_gaussian"]
    clean = np.full(shape, 0.4, dtype=np.float32)
    image, sigma01, state = stabilise(draw(clean, gain, sigma, rng).astype(np.float32),
                                      gain, sigma)
    assert image.dtype == np.float32 and image.shape == shape
    low, high = generalized_anscombe(np.array([0.0, 1.0]), gain, sigma)
    assert sigma01 == pytest.approx(1 / (high - low))
    assert image.std() == pytest.approx(sigma01, rel=0.15)  # unit variance, rescaled
    assert 0 < image.mean() < 1
    # A perfect denoiser returns E[f] rescaled: unstabilise gives the clean image back.
    many = generalized_anscombe(draw(np.full(400_000, 0.4), gain, sigma, rng), gain, sigma)
    ideal = np.full(shape, (many.mean() - state.offset) / state.scale, dtype=np.float32)
    restored = unstabilise(ideal, state)
    assert restored.dtype == np.float32 and restored.shape == shape
    assert np.allclose(restored, 0.4, atol=2e-3)


def test_stabilise_is_identity_for_gaussian_noise(gray_image, rng):
    noisy = gray_image + rng.standard_normal(gray_image.shape).astype(np.float32) * 0.1
    image, sigma01, state = stabilise(noisy, 0.0, 0.1)
    assert sigma01 == pytest.approx(0.1)
    assert np.allclose(image, noisy, atol=1e-6)
    assert np.allclose(unstabilise(image, state), noisy, atol=1e-6)


@pytest.mark.parametrize("gain, sigma, match", [
    (-0.1, 0.0, "gain >= 0"), (0.1, -1.0, "sigma >= 0"), (0.0, 0.0, "no noise"),
    (float("nan"), 0.1, "finite"),
])
def test_gat_rejects_invalid_noise_model(gain, sigma, match):
    with pytest.raises(InvalidParameterError, match=match):
        stabilise(np.zeros((8, 8), np.float32), gain, sigma)


def test_gat_with_bm3d_beats_bm3d_on_rms_sigma(gray_image):
    bm3d = require("bm3d")
    rng = np.random.default_rng(3)
    peak = 10.0
    noisy = (rng.poisson(gray_image * peak) / peak).astype(np.float32)
    rms = float(np.sqrt(np.mean((noisy - gray_image) ** 2)))
    direct = bm3d.bm3d(noisy.astype(np.float64), sigma_psd=rms)
    image, sigma01, state = stabilise(noisy, 1 / peak, 0.0)
    through = unstabilise(bm3d.bm3d(image.astype(np.float64), sigma_psd=sigma01), state)

    def psnr(estimate):
        return 10 * math.log10(1 / np.mean((np.clip(estimate, 0, 1) - gray_image) ** 2))

    assert psnr(through) > psnr(direct) + 1.0


ESTIMATE_IMAGES = ("camera", "coins", "astronaut", "chelsea")
ESTIMATE_MODELS = {"poisson_peak10": (0.1, 0.0), "poisson_peak30": (1 / 30, 0.0),
                   "poisson_gaussian": (0.01, 10 / 255), "gaussian": (0.0, 25 / 255)}


@pytest.fixture(scope="module")
def sample_images():
    """Centre 256 x 256 crops of four bundled scikit-image samples, float32 in [0, 1]."""
    images = {}
    for name in ESTIMATE_IMAGES:
        image = getattr(skimage.data, name)()
        top, left = (image.shape[0] - 256) // 2, (image.shape[1] - 256) // 2
        images[name] = (image[top:top + 256, left:left + 256] / 255).astype(np.float32)
    return images


@pytest.mark.parametrize("model", list(ESTIMATE_MODELS))
def test_estimate_poisson_gaussian_accuracy(model, sample_images):
    gain, sigma = ESTIMATE_MODELS[model]
    rng = np.random.default_rng(7)
    for name, clean in sample_images.items():
        noisy = (draw(clean, gain, sigma, rng) if gain else
                 clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
        fit = estimate_poisson_gaussian(noisy)
        low, high = np.quantile(clean, [0.05, 0.95])
        x = np.linspace(max(low, 0.02), high, 20)
        error = np.sqrt(fit.gain * x + fit.sigma ** 2) / np.sqrt(gain * x + sigma ** 2) - 1
        assert np.max(np.abs(error)) < 0.15, (name, fit)
        if sigma == 0:
            assert fit.gain == pytest.approx(gain, rel=0.12), (name, fit)
        if gain == 0:
            assert fit.gain < 0.005 and fit.sigma == pytest.approx(sigma, abs=2 / 255), (name,
                                                                                         fit)


def test_estimate_poisson_gaussian_tells_poisson_from_gaussian(gray_image, rng):
    """Equal noise at mid-grey, but only Poisson noise grows with intensity; the white-noise
    MAD estimate cannot tell them apart."""
    clean = np.tile(np.linspace(0.05, 0.95, 128, dtype=np.float32), (128, 1))
    poisson = estimate_poisson_gaussian(draw(clean, 0.05, 0.0, rng))
    gaussian = estimate_poisson_gaussian(clean + math.sqrt(0.025) * rng.standard_normal(
        clean.shape))
    assert poisson.gain == pytest.approx(0.05, rel=0.1) and poisson.sigma < 0.03
    assert gaussian.gain < 0.003 and gaussian.sigma == pytest.approx(math.sqrt(0.025), rel=0.05)


def test_estimate_poisson_gaussian_rejects_tiny_image():
    with pytest.raises(InvalidParameterError, match="at least 16 pixels"):
        estimate_poisson_gaussian(np.zeros((15, 40), np.float32))
