"""The classical denoisers in torch agree with their CPU versions, keep device and dtype."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import skimage.data

torch = pytest.importorskip("torch")

from bench.registry import default_registry  # noqa: E402
from conftest import require  # noqa: E402
from denoisers import torch_classical  # noqa: E402
from denoisers.torch_classical import TORCH_DENOISERS, pad  # noqa: E402

NAMES = ["median", "gaussian_blur", "bilateral", "tv", "nlm"]
#: Largest absolute difference from the CPU version, [0, 1] units: (interior, border). Measured
#: on the cases below: 0, 2.4e-7, 4.2e-7, 3.9e-7 and 2.4e-7, borders included; the bounds cover
#: the worst seen over wider sweeps (0, 3.6e-7, 9.5e-7, 2e-6, 5.1e-5; module docstring).
TOLERANCE = {
    "median": (0.0, 0.0),
    "gaussian_blur": (1e-6, 1e-6),
    "bilateral": (5e-6, 5e-6),
    "tv": (1e-3, 1e-3),  # converged TV (eps 1e-5, 2000 iterations) accumulates float32 rounding
    "nlm": (1e-4, 1e-4),
}
#: Largest PSNR difference from the CPU version against the clean image, dB.
PSNR_TOLERANCE = 1e-3
#: Kornia is needed by these two only.
USES_KORNIA = {"median", "gaussian_blur"}

pytestmark = pytest.mark.usefixtures("torch_on_two_threads")


def _function(name):
    if name in USES_KORNIA:
        require("kornia")
    return TORCH_DENOISERS[name]


def _border(name: str, sigma: float) -> int:
    """Pixels from the edge within which a method's output depends on its padding."""
    if name == "median":
        return 2 if sigma * 255 > 30 else 1
    if name == "gaussian_blur":
        return int(4 * max(0.5, sigma * 255 / 25) + 0.5)
    if name == "bilateral":
        return 4  # round(1.5 * 2.5)
    if name == "nlm":
        return 2 + 6  # patch radius + search radius
    return 1  # tv: one-sided differences at the edge


@functools.lru_cache(maxsize=None)
def _case(channels: str, shape: tuple[int, int], sigma8: int):
    """Clean crop of camera (gray) or astronaut (colour) and its Gaussian-noisy version."""
    rng = np.random.default_rng(sigma8 * 1000 + shape[0])
    source = skimage.data.camera() if channels == "gray" else skimage.data.astronaut()
    clean = (source[200:200 + shape[0], 180:180 + shape[1]] / 255).astype(np.float32)
    noisy = (clean + rng.normal(0, sigma8 / 255, clean.shape)).astype(np.float32)
    return clean, noisy


@functools.lru_cache(maxsize=None)
def _outputs(name: str, channels: str, shape: tuple[int, int], sigma8: int):
    clean, noisy = _case(channels, shape, sigma8)
    sigma = sigma8 / 255
    cpu = default_registry().create_denoiser(name)
    expected = cpu.denoise(noisy.copy(), sigma)
    got = _function(name)(torch.from_numpy(noisy), sigma, **cpu.resolved(sigma)).numpy()
    return clean, expected, got


def _psnr(clean, estimate):
    return 10 * np.log10(1 / np.mean((np.clip(estimate, 0, 1) - clean) ** 2, dtype=np.float64))


CASES = [pytest.param(channels, shape, sigma8, id=f"{channels}-{shape[0]}x{shape[1]}-s{sigma8}")
         for channels in ("gray", "colour") for shape in ((37, 31), (96, 96))
         for sigma8 in (15, 50)]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("channels", "shape", "sigma8"), CASES)
def test_torch_classical_matches_cpu_in_interior_and_border(name, channels, shape, sigma8):
    _, expected, got = _outputs(name, channels, shape, sigma8)
    assert got.shape == expected.shape and got.dtype == np.float32
    border = _border(name, sigma8 / 255)
    difference = np.abs(got - expected)
    interior_tolerance, border_tolerance = TOLERANCE[name]
    assert difference[border:-border, border:-border].max() <= interior_tolerance
    assert difference.max() <= border_tolerance


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("channels", "shape", "sigma8"), CASES)
def test_torch_classical_psnr_matches_cpu(name, channels, shape, sigma8):
    clean, expected, got = _outputs(name, channels, shape, sigma8)
    assert abs(_psnr(clean, got) - _psnr(clean, expected)) <= PSNR_TOLERANCE


@pytest.mark.parametrize(("name", "params"), [
    ("median", {"size": 4}),  # even window: SciPy's offsets and upper middle value
    ("median", {"size": 9}),  # the largest window `bench tune` tries
    ("gaussian_blur", {"width": 3.5}),  # radius 14, wider than the tiny image: reflected again
    ("gaussian_blur", {"width": 0.3}),
    ("bilateral", {"range_factor": 2.0, "spatial": 1.5}),
    ("bilateral", {"spatial": 6.0}),
    ("tv", {"weight_factor": 4.0}),
    ("nlm", {"h_factor": 1.0, "patch_size": 4, "patch_distance": 3}),  # even patch: one more
    ("nlm", {"h_factor": 1.5, "patch_size": 9, "patch_distance": 12}),
])
@pytest.mark.parametrize("shape", [(37, 31), (37, 31, 3), (5, 3)], ids=["gray", "colour", "tiny"])
def test_torch_classical_takes_the_cpu_parameters(name, params, shape, rng):
    noisy = rng.normal(0.5, 0.3, shape).astype(np.float32)  # values outside [0, 1] too
    cpu = default_registry().create_denoiser(name, **params)
    expected = cpu.denoise(noisy.copy(), 0.1)
    got = _function(name)(torch.from_numpy(noisy), 0.1, **cpu.resolved(0.1)).numpy()
    assert np.abs(got - expected).max() <= TOLERANCE[name][1]


def test_every_denoiser_offered_on_cuda_without_a_network_has_a_torch_version():
    classes = {entry.name: entry.load() for entry in default_registry().entries("denoiser")
               if entry.available}
    offered = {name for name, cls in classes.items()
               if cls.family == "classical" and "cuda" in cls.devices}
    assert offered == set(TORCH_DENOISERS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(37, 31), (37, 31, 3)], ids=["gray", "colour"])
def test_torch_classical_keeps_device_dtype_and_shape(name, dtype, shape, device, rng):
    image = torch.as_tensor(rng.random(shape), dtype=dtype, device=device)
    out = _function(name)(image, 25 / 255)
    assert out.device == image.device and out.dtype == dtype and out.shape == image.shape
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", NAMES)
def test_torch_classical_on_the_device_matches_cpu_library(name, device):
    _, noisy = _case("colour", (37, 31), 25)
    cpu = default_registry().create_denoiser(name)
    expected = cpu.denoise(noisy.copy(), 25 / 255)
    got = _function(name)(torch.from_numpy(noisy).to(device), 25 / 255, **cpu.resolved(25 / 255)).cpu().numpy()
    assert np.abs(got - expected).max() <= TOLERANCE[name][1]


@pytest.mark.parametrize("name", ["tv", "nlm"])
def test_torch_classical_zero_strength_returns_the_image(name, rng):
    image = torch.as_tensor(rng.random((9, 7)), dtype=torch.float32)
    out = TORCH_DENOISERS[name](image, 0.0)
    assert torch.equal(out, image) and out.data_ptr() != image.data_ptr()


@pytest.mark.parametrize("mode", ["symmetric", "reflect"])  # NumPy's modes of the same names
@pytest.mark.parametrize("size", [1, 2, 3, 6])
@pytest.mark.parametrize("width", [1, 4, 13])
def test_pad_matches_numpy_even_beyond_the_image(mode, size, width, rng):
    planes = rng.random((2, size, size + 1)).astype(np.float32)
    expected = np.pad(planes, ((0, 0), (width, width), (width, width)), mode=mode)
    assert np.array_equal(pad(torch.from_numpy(planes), width, mode).numpy(), expected)


@pytest.mark.parametrize("image, error, match", [
    (torch.zeros(4), ValueError, "shape"),
    (torch.zeros(2, 4, 4, 3), ValueError, "shape"),
    (torch.zeros(4, 4, dtype=torch.int64), TypeError, "floating-point"),
    (np.zeros((4, 4), dtype=np.float32), TypeError, "torch.Tensor"),
])
def test_torch_classical_rejects_bad_images(image, error, match):
    with pytest.raises(error, match=match):
        torch_classical.bilateral_filter(image, 0.1)


def test_pad_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown padding mode"):
        pad(torch.zeros(1, 3, 3), 1, "circular")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels", ["gray", "colour"])
def test_classical_denoiser_dispatches_to_its_torch_version_off_the_cpu(name, channels):
    """What ``--device cuda`` runs, exercised with torch on the CPU."""
    _, noisy = _case(channels, (37, 31), 25)
    denoiser = default_registry().create_denoiser(name)
    expected = denoiser.denoise(noisy.copy(), 25 / 255)
    got = denoiser.denoise_tensor_on("cpu", noisy.copy(), 25 / 255)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.abs(got - expected).max() <= max(TOLERANCE[name][1], 1e-6)
