"""Training data: images read once, random augmented noisy patches, fixed validation images.

Every random draw of a step comes from one seeded ``numpy.random.Generator``, so a run is
reproducible and a resumed run (which restores the generator's state) continues the same
sequence of patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import DataError

#: Noise levels (8-bit units) of the validation table.
VALIDATION_SIGMAS = (15.0, 25.0, 50.0)


@dataclass
class TrainingData:
    """Training and validation images in memory, float32 (H, W) in [0, 1].

    Attributes
    ----------
    train : list of numpy.ndarray
        The training images, grayscale.
    val : dict of str to numpy.ndarray
        Validation images by name (colour ones averaged to gray).
    description : dict
        What the model card records about the data: name, counts, SHA-256, validation.
    """

    train: list[np.ndarray]
    val: dict[str, np.ndarray]
    description: dict


def load_training_data(config) -> TrainingData:
    """Read the training (and validation) images of a :class:`TrainConfig` once; grayscale only.

    Without ``config.val``, ``config.holdout`` images of ``config.data`` are held out for
    validation: every k-th name, k = images // holdout.

    Raises
    ------
    DataError
        For a missing folder, a colour image, an image smaller than the patch, or no
        validation image left.
    """
    from bench.datasets import load_dataset

    loaded = load_dataset(f"folder:{config.data}")
    names = list(loaded.images)
    if config.val is not None:
        val_loaded = load_dataset(f"folder:{config.val}")
        val_names, val_images = list(val_loaded.images), val_loaded.images
        train_names = names
        val_info = {"name": Path(config.val).name, "images": len(val_names),
                    "sha256": val_loaded.content_hash}
    else:
        if not 1 <= config.holdout < len(names):
            raise DataError(f"cannot hold out {config.holdout} of the {len(names)} images "
                            f"of '{config.data}' for validation")
        stride = len(names) // config.holdout
        val_names = names[::stride][:config.holdout]
        train_names = [n for n in names if n not in set(val_names)]
        val_images = loaded.images
        val_info = {"name": f"{Path(config.data).name} (held out)", "images": len(val_names),
                    "names": val_names}
    train = [_training_image(name, loaded.images[name], config.patch) for name in train_names]
    val = {}
    for name in val_names:
        image = val_images[name]
        val[name] = image if image.ndim == 2 else image.mean(axis=-1).astype(np.float32)
    description = {
        "name": Path(config.data).name, "images": len(names), "train_images": len(train),
        "sha256": loaded.content_hash, "validation": val_info,
    }
    return TrainingData(train, val, description)


def _training_image(name: str, image: np.ndarray, patch: int) -> np.ndarray:
    if image.ndim != 2:
        raise DataError(f"training image '{name}' is colour; the models train on grayscale")
    if min(image.shape) < patch:
        raise DataError(f"training image '{name}' is {image.shape[0]}x{image.shape[1]}, "
                        f"smaller than the {patch}-pixel patch")
    return np.ascontiguousarray(image)


def sample_batch(images: list[np.ndarray], rng: np.random.Generator, batch: int, patch: int,
                 levels: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``batch`` augmented clean patches, their noisy versions and their sigmas.

    Parameters
    ----------
    images : list of numpy.ndarray
        Grayscale float32 images, each at least ``patch`` pixels a side.
    rng : numpy.random.Generator
        Source of every draw.
    batch, patch : int
        Number of patches and their side in pixels.
    levels : (float, float)
        Sigma range in 8-bit units.

    Returns
    -------
    clean, noisy : numpy.ndarray
        Float32 arrays (batch, 1, patch, patch); ``noisy`` is not clipped.
    sigma : numpy.ndarray
        Float32 (batch,) noise standard deviations in [0, 1] units.
    """
    clean = np.empty((batch, 1, patch, patch), dtype=np.float32)
    which = rng.integers(0, len(images), size=batch)
    transforms = rng.integers(0, 8, size=batch)
    for i in range(batch):
        image = images[which[i]]
        top = rng.integers(0, image.shape[0] - patch + 1)
        left = rng.integers(0, image.shape[1] - patch + 1)
        crop = image[top:top + patch, left:left + patch]
        crop = np.rot90(crop, transforms[i] % 4)
        clean[i, 0] = crop[:, ::-1] if transforms[i] >= 4 else crop
    sigma = (rng.uniform(levels[0], levels[1], size=batch) / 255).astype(np.float32)
    noise = rng.standard_normal(clean.shape, dtype=np.float32)
    noisy = clean + sigma[:, None, None, None] * noise
    return clean, noisy, sigma


def validation_set(images: dict[str, np.ndarray], seed: int,
                   sigmas: tuple[float, ...] = VALIDATION_SIGMAS,
                   ) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Fixed noisy validation images: ``(sigma_8bit, clean, noisy)`` for each image and sigma.

    The noise comes from its own generator (``[seed, 7919]``), so validating never moves the
    training sequence.
    """
    rng = np.random.default_rng([seed, 7919])
    items = []
    for sigma in sigmas:
        for image in images.values():
            noisy = image + (sigma / 255) * rng.standard_normal(image.shape, dtype=np.float32)
            items.append((sigma, image, noisy.astype(np.float32)))
    return items
