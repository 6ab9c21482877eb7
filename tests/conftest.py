"""Shared fixtures: small clean images, a random generator, the reference data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import skimage.data


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def gray_image():
    """A 64x64 crop of scikit-image's camera, float32 in [0, 1]."""
    return (skimage.data.camera()[200:264, 200:264] / 255).astype(np.float32)


@pytest.fixture(scope="session")
def colour_image():
    """A 64x64 crop of scikit-image's astronaut, float32 in [0, 1]."""
    return (skimage.data.astronaut()[100:164, 180:244] / 255).astype(np.float32)


@pytest.fixture(params=["gray", "colour"])
def clean_image(request, gray_image, colour_image):
    return gray_image if request.param == "gray" else colour_image


def reference_folder(name: str) -> Path:
    """``$BENCH_DATA_DIR/<name>``; skip when absent, but fail under CI, where it must exist."""
    root = os.environ.get("BENCH_DATA_DIR")
    folder = Path(root) / name if root else None
    if folder is None or not folder.is_dir():
        message = f"reference data folder {name} not found (set BENCH_DATA_DIR)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


def require(module: str):
    """Import ``module``; skip when it is missing, but fail under CI, where it must be installed."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{module} is not installed; CI installs every extra")
        pytest.skip(f"{module} is not installed")


def fake_plugin(folder: Path, distribution: str, denoisers: dict[str, str]) -> Path:
    """Lay out an installed plugin distribution in ``folder`` (put it on PYTHONPATH).

    ``denoisers`` maps each name to register to its ``"module:Class"`` target; the
    distribution's version is 0.1. Returns ``folder``.
    """
    module = distribution.replace("-", "_") + "_register"
    folder.mkdir(parents=True, exist_ok=True)
    dist = folder / f"{distribution.replace('-', '_')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[denoise_bench.plugins]\nplugin = {module}:register\n")
    lines = ["def register(registry):"] + [
        f"    registry.add('denoiser', {name!r}, {target!r}, 'from {distribution}')"
        for name, target in denoisers.items()]
    (folder / f"{module}.py").write_text("\n".join(lines) + "\n")
    return folder
