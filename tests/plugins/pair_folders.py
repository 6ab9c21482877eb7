"""Folders of clean/noisy pairs for the ``pairs:`` dataset tests, and a small run of them.

Pairs are 32x32 8-bit test patterns (gray and colour) with noisy = clean + Gaussian noise,
written as PNG. Shared by ``tests/bench/test_pairs.py`` and ``tests/reports/test_pairs_reports.py``;
import :func:`pairs_run` into a test module to use the fixture there.
"""

import numpy as np
import imageio.v3 as iio
import pytest

from bench import DenoiserSpec, Sweep, run_sweep

SIZE = 32
#: Noise of the test pairs, 8-bit units.
SIGMA8 = 12


def pattern(channels, rng, size=SIZE):
    """A smooth 8-bit test pattern: clean enough that a noise estimate tells it from its noisy copy."""
    y, x = np.mgrid[:size, :size]
    base = 128 + 70 * np.sin(x / 4 + rng.uniform(0, 6)) * np.cos(y / 5)
    planes = np.stack([base, 0.7 * base + 40, 255 - base], axis=-1)
    image = planes[..., 0] if channels == 1 else planes
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def noisy_copy(clean, rng, sigma8=SIGMA8):
    return np.clip(np.round(clean + rng.normal(0, sigma8, clean.shape)), 0, 255).astype(np.uint8)


def write_pair(clean_path, noisy_path, rng, channels=1, size=SIZE):
    """Write a clean pattern and its noisy copy; return both (uint8)."""
    clean = pattern(channels, rng, size)
    noisy = noisy_copy(clean, rng)
    for path, image in ((clean_path, clean), (noisy_path, noisy)):
        path.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(path, image)
    return clean, noisy


def two_folders(root, rng, clean_dir="clean", noisy_dir="noisy"):
    """``root/<clean_dir>/{a,b}.png`` and ``root/<noisy_dir>/{a,b}.png``: a gray pair, a colour pair."""
    return {name: write_pair(root / clean_dir / f"{name}.png", root / noisy_dir / f"{name}.png",
                             rng, channels)
            for name, channels in (("a", 1), ("b", 3))}


def pairs_sweep(folder, denoisers=("median", "gaussian_blur")):
    return Sweep(datasets=[f"pairs:{folder}"], denoisers=[DenoiserSpec(d) for d in denoisers],
                 modes=["oracle", "blind"], seeds=[0, 1, 2], executor="serial")


@pytest.fixture(scope="module")
def pairs_run(tmp_path_factory):
    """One run of median and Gaussian blur, oracle and blind, seeds 0-2, on a gray and a colour pair."""
    root = tmp_path_factory.mktemp("pairs_run")
    two_folders(root / "data", np.random.default_rng(7))
    results = run_sweep(pairs_sweep(root / "data"), root / "run", progress=False)
    return root / "data", root / "run", results
