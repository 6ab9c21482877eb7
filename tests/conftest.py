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
