import numpy as np
import pytest

from bench.errors import InvalidParameterError
from bench.interfaces import NoiseModel
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


# --- the tensor path ---------------------------------------------------------------------------
#: Noises of the tensor-path tests: Poisson, and Poisson-Gaussian noise.
POISSON_NOISES = [("poisson", 10, {}), ("poisson_gaussian", 10, {"gain": 0.01})]


@pytest.mark.parametrize("gain, sigma", [(0.1, 0.0), (0.01, 10 / 255), (0.0, 25 / 255)])
def test_vst_transforms_of_a_tensor_equal_those_of_its_array(gray_image, gain, sigma, device):
    """One implementation for both: the tensor stays on its device, in float64, and agrees
    with the array within float64 rounding (torch divides by a scalar through its reciprocal)."""
    from bench.vst import generalized_anscombe, inverse_generalized_anscombe, stabilise, unstabilise

    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    noisy = (gray_image + rng.normal(0.0, 0.1, gray_image.shape)).astype(np.float32)
    tensor = torch.from_numpy(noisy).to(device)
    forward = generalized_anscombe(tensor, gain, sigma)
    assert forward.dtype == torch.float64 and forward.device == device
    expected = generalized_anscombe(noisy, gain, sigma)
    np.testing.assert_allclose(forward.cpu().numpy(), expected, rtol=1e-14, atol=0)
    inverse = inverse_generalized_anscombe(forward, gain, sigma)
    assert inverse.dtype == torch.float64 and inverse.device == device
    np.testing.assert_allclose(inverse.cpu().numpy(), inverse_generalized_anscombe(expected, gain, sigma),
                               rtol=1e-13, atol=1e-15)
    image, unit_sigma, state = stabilise(tensor, gain, sigma)
    expected_image, expected_sigma, expected_state = stabilise(noisy, gain, sigma)
    assert image.dtype == torch.float32 and image.device == device
    assert (unit_sigma, state) == (expected_sigma, expected_state)
    np.testing.assert_allclose(image.cpu().numpy(), expected_image, rtol=0, atol=1e-6)
    clean = unstabilise(image, state)
    assert clean.dtype == torch.float32 and clean.device == device
    np.testing.assert_allclose(clean.cpu().numpy(), unstabilise(expected_image, state), rtol=0, atol=1e-6)
    assert np.array_equal(tensor.cpu().numpy(), noisy)


@pytest.mark.parametrize("name", ["dncnn", "gaussian_blur"])
def test_vst_has_the_tensor_path_of_the_wrapped_denoiser(name):
    assert default_registry().create_denoiser(name, vst="gat").supports_tensor()


def _array_path(wrapped, device, noisy, sigma, model):
    """What ``wrapped.denoise_tensor`` should give, by the array path of the same code: the
    learned models' array path is their tensor path between two copies; the torch classical
    methods' is their CPU code, so for them the numpy transforms go round the wrapped
    denoiser's tensor path by hand."""
    from bench.vst import estimate_poisson_gaussian, stabilise, unstabilise

    torch = pytest.importorskip("torch")
    if wrapped.family == "learned":
        return wrapped.denoise(noisy.copy(), sigma, noise=model)
    if model is None:
        model = NoiseModel(*map(float, estimate_poisson_gaussian(noisy)))
    image, unit_sigma, state = stabilise(noisy, model.gain, model.sigma)
    out = wrapped.inner.denoise_tensor(torch.from_numpy(image).to(device), unit_sigma)
    return unstabilise(out.cpu().numpy(), state)


@pytest.mark.parametrize("name", ["dncnn", "gaussian_blur"])
@pytest.mark.parametrize("noise, level, params", POISSON_NOISES)
@pytest.mark.parametrize("oracle", [True, False])
def test_vst_tensor_path_equals_array_path(clean_image, name, noise, level, params, oracle, device):
    torch = pytest.importorskip("torch")
    noisy = _noisy(clean_image, noise, level, **params)
    sigma, model = (noisy.sigma, noisy.model) if oracle else (None, None)
    wrapped = default_registry().create_denoiser(name, vst="gat")
    wrapped.setup(device.type)
    tensor = torch.from_numpy(noisy.image).to(device)
    got = wrapped.denoise_tensor(tensor, sigma, noise=model)
    assert isinstance(got, torch.Tensor) and got.device == device
    assert got.dtype == torch.float32 and got.shape == tensor.shape
    assert np.array_equal(tensor.cpu().numpy(), noisy.image)  # the input unchanged
    expected = _array_path(wrapped, device.type, noisy.image, sigma, model)
    assert expected.dtype == np.float32
    np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=0, atol=1e-6)


def test_vst_tensor_path_hands_gaussian_noise_on(gray_image, device):
    torch = pytest.importorskip("torch")
    noisy = _noisy(gray_image, "gaussian", 25)
    wrapped = default_registry().create_denoiser("gaussian_blur", vst="gat")
    tensor = torch.from_numpy(noisy.image).to(device)
    got = wrapped.denoise_tensor(tensor, noisy.sigma, noise=noisy.model)
    assert torch.equal(got, wrapped.inner.denoise_tensor(tensor, noisy.sigma))


@pytest.mark.parametrize("name", ["dncnn", "gaussian_blur"])
@pytest.mark.parametrize("mode", ["oracle", "blind"])
def test_vst_cell_on_the_tensor_path_scores_as_on_the_array_path(name, mode):
    """A runner cell, torch on the CPU: ``tensor_path="always"`` against ``"never"``."""
    torch = pytest.importorskip("torch")
    from bench.plan import Cell
    from bench.run.worker import CellRunner, WorkerConfig

    torch.set_num_threads(1)
    cell = Cell(dataset="skimage", image="camera", noise="poisson", level=10.0, noise_params=(),
                seed=0, mode=mode, denoiser=name, params=(("vst", "gat"),), device="cpu")
    records, calls = [], []
    for tensor_path in ("always", "never"):
        runner = CellRunner(WorkerConfig(crop=72, metrics=("psnr", "ssim"), tensor_path=tensor_path))
        denoiser = runner.denoiser(cell, runner.noisy(cell).noisy.image)
        assert isinstance(denoiser, Stabilised) and denoiser.supports_tensor()
        method = denoiser.denoise_tensor
        denoiser.denoise_tensor = lambda noisy, *args, **kwargs: calls.append(tensor_path) or method(
            noisy, *args, **kwargs)
        records.append(runner.run(cell).record)
    got, expected = records
    assert got.status == expected.status == "ok", (got.error, expected.error)
    assert set(calls) == {"always"}  # the tensor path, and only where asked for
    assert got.noisy_scores == expected.noisy_scores
    for metric in ("psnr", "ssim"):
        assert abs(got.scores[metric] - expected.scores[metric]) <= 1e-6, metric
    assert got.scores["psnr"] > got.noisy_scores["psnr"] + 3  # it did denoise
