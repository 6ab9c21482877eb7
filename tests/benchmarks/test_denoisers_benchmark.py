"""Speed of every built-in denoiser and noise on fixed 256x256 gray and colour images.

Run timed with ``python -m pytest tests/benchmarks --benchmark-enable``; under the project's
default ``--benchmark-disable`` each case runs once, on 64x64 crops, as a test. Groups put one
family on one device and one kind of image side by side; ``extra_info`` holds the size, the
channels and the throughput in megapixels (H x W) per second of the median call.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.datasets import open_dataset, read_image
from bench.registry import BUILTIN, default_registry

#: Side of the timed images, and of the images the disabled (test) run uses.
SIZE, TEST_SIZE = 256, 64
#: The fixed images: scikit-image's camera (gray) and astronaut (colour), centre crops.
IMAGES = {"gray": "camera", "colour": "astronaut"}
#: Gaussian sigma of the noisy input, 8-bit units.
SIGMA = 25

_registry = default_registry()
DENOISERS = [entry.name for entry in _registry.entries("denoiser")
             if entry.origin == BUILTIN and entry.available and entry.in_default_sweep]
NOISES = [entry.name for entry in _registry.entries("noise") if entry.origin == BUILTIN]


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _cases() -> list:
    """(name, device) for every denoiser and each device its class runs on; CUDA cases are
    skipped without a GPU."""
    cases = []
    for name in DENOISERS:
        for device in _registry.load("denoiser", name).devices:
            marks = ([pytest.mark.cuda, pytest.mark.skipif(not _cuda_available(),
                                                           reason="needs a CUDA GPU")]
                     if device == "cuda" else [])
            cases.append(pytest.param(name, device, marks=marks, id=f"{name}-{device}"))
    return cases


def is_slow(name: str, family: str, kind: str) -> bool:
    """Calls of a second or more at 256x256 on one CPU core: timed once, not calibrated."""
    return family == "learned" or name == "bm3d" or (kind == "colour" and name.startswith("nlm"))


@pytest.fixture
def size(benchmark) -> int:
    """The image side: :data:`SIZE` when timed, :data:`TEST_SIZE` when benchmarks are disabled."""
    return SIZE if benchmark.enabled else TEST_SIZE


@pytest.fixture(scope="module")
def clean_images():
    """kind -> size -> clean float32 image, read once per size."""
    dataset = open_dataset("skimage")
    cache: dict[tuple[str, int], np.ndarray] = {}

    def get(kind: str, size: int) -> np.ndarray:
        if (kind, size) not in cache:
            cache[kind, size] = read_image(dataset, IMAGES[kind], crop=size)
        return cache[kind, size]

    return get


@pytest.fixture(scope="module")
def set_up():
    """(name, device) -> a set-up denoiser, created and loaded once per module."""
    instances = {}

    def get(name: str, device: str):
        if (name, device) not in instances:
            denoiser = _registry.create_denoiser(name)
            denoiser.setup(device)
            instances[name, device] = denoiser
        return instances[name, device]

    return get


def psnr(clean: np.ndarray, image: np.ndarray) -> float:
    error = np.mean((clean.astype(np.float64) - np.clip(image, 0, 1)) ** 2)
    return float(10 * np.log10(1 / error))


def record_throughput(benchmark, height: int, width: int) -> None:
    """Add the median call's megapixels per second to ``extra_info`` (timed runs only)."""
    if benchmark.enabled and benchmark.stats:
        seconds = benchmark.stats["median"]
        benchmark.extra_info["mpix_per_s"] = round(height * width / 1e6 / seconds, 4)


@pytest.mark.parametrize("kind", list(IMAGES))
@pytest.mark.parametrize("name, device", _cases())
def test_denoise_speed(benchmark, name, device, kind, size, clean_images, set_up):
    clean = clean_images(kind, size)
    noise = _registry.create_noise("gaussian")
    noisy = noise.apply(clean, SIGMA, np.random.default_rng(0)).image
    denoiser = set_up(name, device)
    family = denoiser.family
    benchmark.group = f"denoise {family} {kind} {size}x{size} {device}"
    benchmark.extra_info.update(size=size, channels=1 if clean.ndim == 2 else clean.shape[2],
                                device=device, family=family)

    def call():
        output = denoiser.denoise(noisy, SIGMA / 255)
        denoiser.synchronize()
        return output

    if is_slow(name, family, kind):
        if benchmark.enabled and denoiser.warm_per_shape:
            call()  # the first call at a new shape selects kernels: untimed, as the runner does
        output = benchmark.pedantic(call, rounds=1, iterations=1)
    else:
        output = benchmark(call)
    record_throughput(benchmark, size, size)

    assert output.shape == noisy.shape
    assert np.all(np.isfinite(output))
    assert psnr(clean, output) > psnr(clean, noisy)


@pytest.mark.parametrize("kind", list(IMAGES))
@pytest.mark.parametrize("name", NOISES)
def test_noise_speed(benchmark, name, kind, size, clean_images):
    clean = clean_images(kind, size)
    noise = _registry.create_noise(name)
    level = noise.default_levels[len(noise.default_levels) // 2]
    rng = np.random.default_rng(0)
    benchmark.group = f"noise {size}x{size}"
    benchmark.extra_info.update(size=size, channels=1 if clean.ndim == 2 else clean.shape[2],
                                level=level)

    noisy = benchmark(noise.apply, clean, level, rng)
    record_throughput(benchmark, size, size)

    assert noisy.image.shape == clean.shape and noisy.image.dtype == np.float32
    assert noisy.sigma > 0
