import numpy as np
import pytest

from bench.metrics import PSNR
from bench.protocol import Protocol
from bench.registry import BUILTIN, default_registry
from bench.plan import noise_rng

CLASSICAL = [e.name for e in default_registry().entries("denoiser")
             if e.origin == BUILTIN and "torch" not in e.requires]


@pytest.fixture(scope="module")
def noisy_pairs():
    """Clean and sigma-25 noisy 96x96 crops of astronaut, in colour and in gray."""
    import skimage.data

    colour = (skimage.data.astronaut()[120:216, 160:256] / 255).astype(np.float32)
    gaussian = default_registry().create_noise("gaussian")
    pairs = {}
    for channels, clean in (("colour", colour), ("gray", colour.mean(axis=-1))):
        pairs[channels] = clean, gaussian.apply(clean, 25, noise_rng(0, channels, "gaussian", 25))
    return pairs


@pytest.mark.parametrize("name", CLASSICAL)
@pytest.mark.parametrize("channels", ["gray", "colour"])
@pytest.mark.parametrize("mode", ["oracle", "blind"])
def test_denoiser_improves_psnr_at_sigma_25(name, channels, mode, noisy_pairs):
    clean, noisy = noisy_pairs[channels]
    image = noisy.image
    sigma = noisy.sigma if mode == "oracle" else None
    denoiser = default_registry().create_denoiser(name)
    out = denoiser.denoise(image.copy(), sigma)
    assert out.shape == image.shape
    assert np.all(np.isfinite(out))
    gain = PSNR()(clean, Protocol().output(out)) - PSNR()(clean, Protocol().noisy(image))
    assert gain > 2.0, f"{name} gained only {gain:.2f} dB"


@pytest.mark.parametrize("name", CLASSICAL)
def test_denoiser_accepts_values_outside_unit_range_and_odd_sizes(name, rng):
    image = rng.normal(0.5, 0.4, (37, 31)).astype(np.float32)  # well outside [0, 1]
    out = default_registry().create_denoiser(name).denoise(image, 0.4)
    assert out.shape == (37, 31) and np.all(np.isfinite(out))


@pytest.mark.parametrize("name", CLASSICAL)
def test_denoiser_declares_its_interface(name):
    denoiser = default_registry().create_denoiser(name)
    assert denoiser.family == "classical"
    assert "cpu" in denoiser.devices
    assert denoiser.colour in ("native", "per_channel")
    assert isinstance(denoiser.params(), dict)
