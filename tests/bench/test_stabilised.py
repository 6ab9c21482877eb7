import numpy as np
import pytest

from bench.errors import InvalidParameterError
from bench.metrics import PSNR
from bench.plan import noise_rng
from bench.protocol import Protocol
from bench.registry import default_registry
from bench.stabilised import Stabilised
from bench.sweep import DenoiserSpec, split_outside_parentheses


def test_denoiser_spec_parses_the_printed_method_form():
    specs = [DenoiserSpec.parse(t) for t in split_outside_parentheses("nlm(h_factor=0.7, patch_size=5),tv, bm3d(vst=gat)")]
    assert specs == [DenoiserSpec("nlm", (("h_factor", 0.7), ("patch_size", 5))), DenoiserSpec("tv"),
                     DenoiserSpec("bm3d", (("vst", "gat"),))]
    assert DenoiserSpec.parse("x(a=true, b=None, c='s')").params == (("a", True), ("b", None), ("c", "s"))


@pytest.mark.parametrize("text", ["nlm(h_factor)", "nlm(h_factor=0.7", "(a=1)", "nlm(=1)"])
def test_denoiser_spec_refuses_malformed_text(text):
    with pytest.raises(InvalidParameterError):
        [DenoiserSpec.parse(t) for t in split_outside_parentheses(text)]


def _noisy(gray_image, noise, level, **params):
    registry = default_registry()
    return registry.create_noise(noise).apply(gray_image, level, noise_rng(0, "camera", noise, level), **params)


def test_vst_is_the_identity_on_gaussian_noise(gray_image):
    registry = default_registry()
    noisy = _noisy(gray_image, "gaussian", 25)
    plain = registry.create_denoiser("gaussian_blur").denoise(noisy.image.copy(), noisy.sigma)
    wrapped = registry.create_denoiser("gaussian_blur", vst="gat")
    assert isinstance(wrapped, Stabilised) and wrapped.params()["vst"] == "gat"
    np.testing.assert_array_equal(wrapped.denoise(noisy.image.copy(), noisy.sigma, noise=noisy.model), plain)


@pytest.mark.parametrize("noise, level, params", [("poisson", 10, {}), ("poisson_gaussian", 10, {"gain": 0.01})])
@pytest.mark.parametrize("oracle", [True, False])
def test_vst_helps_nlm_on_poisson_noise(gray_image, noise, level, params, oracle):
    registry = default_registry()
    noisy = _noisy(gray_image, noise, level, **params)
    protocol, psnr = Protocol(), PSNR()
    plain = registry.create_denoiser("nlm").denoise(noisy.image.copy(), noisy.sigma if oracle else None)
    wrapped = registry.create_denoiser("nlm", vst="gat").denoise(
        noisy.image.copy(), noisy.sigma if oracle else None, noise=noisy.model if oracle else None)
    gain = psnr(gray_image, protocol.output(wrapped)) - psnr(gray_image, protocol.output(plain))
    assert gain > 0.2, f"the transform gained {gain:.2f} dB"


def test_vst_hands_the_transforms_unit_sigma_to_the_wrapped_denoiser(gray_image):
    seen = []

    class Records(Stabilised):
        pass

    inner = default_registry().create_denoiser("median")
    inner._denoise = lambda image, sigma: seen.append(sigma) or image
    noisy = _noisy(gray_image, "poisson", 10)
    Records(inner).denoise(noisy.image, noisy.sigma, noise=noisy.model)
    assert seen and seen[0] != pytest.approx(noisy.sigma)  # the transform's sigma, not the RMS


def test_unknown_vst_is_refused():
    with pytest.raises(InvalidParameterError, match="vst must be one of"):
        default_registry().create_denoiser("median", vst="anscombe2")
