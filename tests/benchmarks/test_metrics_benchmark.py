"""Speed of the suite's PSNR and SSIM (bench.fast_metrics) against scikit-image's.

Run with ``python -m pytest tests/benchmarks -p no:cacheprovider --benchmark-enable``; the
project's default ``--benchmark-disable`` runs every case once, as a test of the values. Groups
are one image size and one metric, so the table compares the implementations side by side;
``extra_info`` holds the size, the megapixels (H x W) per second of the median call and
OpenCV's thread count (SSIM runs with OpenCV pinned to one thread, as the suite's workers do,
and with its default). BLAS and OpenMP pools are pinned to one thread for the whole module.

The target (issue 12): the suite's SSIM at least 10x faster than scikit-image's on the
2048x2048 float64 gray image with one thread; ``180x180 gray`` is the sweep's image size, where
the cost per call shows.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.fast_metrics import psnr, ssim

SIZES = {  # label: (shape, dtype of the images)
    "2048x2048 gray float64": ((2048, 2048), np.float64),
    "2048x2048 gray": ((2048, 2048), np.float32),
    "512x512 gray": ((512, 512), np.float32),
    "512x512 colour": ((512, 512, 3), np.float32),
    "180x180 gray": ((180, 180), np.float32),
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """BLAS and OpenMP pools at one thread, as the suite's workers run."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module", params=sorted(SIZES))
def images(request):
    """A clean image of the size and type (scikit-image's camera or astronaut, tiled) and a
    noisy, clipped estimate of it (Gaussian sigma 25 in 8-bit units)."""
    shape, dtype = SIZES[request.param]
    sample = skimage.data.astronaut() if len(shape) == 3 else skimage.data.camera()
    tiles = (-(-shape[0] // sample.shape[0]), -(-shape[1] // sample.shape[1]))
    tiled = np.tile(sample, tiles + (1,) * (sample.ndim - 2))
    clean = (tiled[:shape[0], :shape[1]] / 255).astype(dtype)
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape).astype(dtype), 0, 1)
    return request.param, clean, noisy


@pytest.fixture(params=[1, None], ids=["cv2-1-thread", "cv2-default-threads"])
def opencv_threads(request):
    """OpenCV pinned to one thread (how the suite's workers run cells) or left at its default;
    the previous setting is restored afterwards. Yields the thread count in use."""
    import cv2

    before = cv2.getNumThreads()
    if request.param is not None:
        cv2.setNumThreads(request.param)
    yield cv2.getNumThreads()
    cv2.setNumThreads(before)


def _skimage_ssim(reference, estimate):
    # What the suite computed before: float64 copies, Wang et al.'s protocol.
    reference = reference.astype(np.float64)
    estimate = estimate.astype(np.float64)
    return structural_similarity(
        reference, estimate, data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, channel_axis=-1 if reference.ndim == 3 else None)


def _skimage_psnr(reference, estimate):
    return peak_signal_noise_ratio(reference.astype(np.float64), estimate.astype(np.float64),
                                   data_range=1.0)


def _label(benchmark, label, metric, threads=None):
    """Group by size and metric; record the size and OpenCV's threads. Before the timing."""
    benchmark.group = f"{metric} {label}"
    benchmark.extra_info["size"] = label
    benchmark.extra_info["metric"] = metric
    if threads is not None:
        benchmark.extra_info["opencv_threads"] = threads


def _throughput(benchmark, clean):
    """Megapixels (H x W) per second of the median call; nothing under --benchmark-disable."""
    stats = getattr(benchmark, "stats", None)
    if stats:
        megapixels = clean.shape[0] * clean.shape[1] / 1e6
        benchmark.extra_info["mpix_per_s"] = round(megapixels / stats.stats.median, 2)


def test_ssim_suite(benchmark, images, opencv_threads):
    label, clean, noisy = images
    _label(benchmark, label, "ssim", opencv_threads)
    value = benchmark(ssim, clean, noisy)
    _throughput(benchmark, clean)
    assert abs(value - _skimage_ssim(clean, noisy)) <= 1e-6


def test_ssim_skimage(benchmark, images):
    label, clean, noisy = images
    _label(benchmark, label, "ssim")
    value = benchmark(_skimage_ssim, clean, noisy)
    _throughput(benchmark, clean)
    assert 0 < value < 1


def test_psnr_suite(benchmark, images):
    label, clean, noisy = images
    _label(benchmark, label, "psnr")
    value = benchmark(psnr, clean, noisy)
    _throughput(benchmark, clean)
    assert abs(value - _skimage_psnr(clean, noisy)) <= 1e-10


def test_psnr_skimage(benchmark, images):
    label, clean, noisy = images
    _label(benchmark, label, "psnr")
    value = benchmark(_skimage_psnr, clean, noisy)
    _throughput(benchmark, clean)
    assert 20 < value < 25
