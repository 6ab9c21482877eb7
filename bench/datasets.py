"""Datasets: named collections of clean images, converted to the suite's convention.

Every image is returned as float32 in [0, 1], shaped (H, W) or (H, W, 3) (see
:mod:`bench.interfaces`). Conversion rules for files: 8- and 16-bit integers are divided by
their maximum (255, 65535), floating-point images are clipped to [0, 1], an alpha channel
is dropped (its colour values are kept as they are), a single-channel third axis is
squeezed. Anything else (more than four channels, stacks, images under
:data:`MIN_SIZE` pixels a side, unreadable files) is a :class:`DataError` naming the file,
raised when the dataset is loaded, before any cell runs.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: Smallest accepted side: smaller images leave no room for the denoisers' windows or SSIM's.
MIN_SIZE = 16


class Dataset(ABC):
    """A named collection of images, listed cheaply and loaded one at a time."""

    @abstractmethod
    def image_names(self) -> list[str]:
        """Names of the images, in a stable order."""

    @abstractmethod
    def read(self, name: str) -> np.ndarray:
        """Return image ``name`` as stored (any dtype); :func:`to_float_image` converts it."""

    def source(self, name: str) -> str:
        """Where image ``name`` comes from, for error messages (a path where there is one)."""
        return name


class SkimageSamples(Dataset):
    """Sample images bundled inside scikit-image's wheel (no download): four grayscale, four colour."""

    NAMES = ("camera", "moon", "coins", "brick", "astronaut", "coffee", "chelsea", "rocket")

    def __init__(self, argument: str | None = None):
        if argument:
            raise DataError(f"dataset 'skimage' takes no argument, got {argument!r}")

    def image_names(self):
        return list(self.NAMES)

    def read(self, name):
        import skimage.data

        return getattr(skimage.data, name)()


class ImageFolder(Dataset):
    """Every PNG, JPEG, TIFF or BMP file directly inside a folder; other files are ignored."""

    def __init__(self, argument: str | None = None):
        if not argument:
            raise DataError("dataset 'folder' needs a path: folder:PATH")
        self.path = Path(argument).expanduser()
        if not self.path.is_dir():
            raise DataError(f"dataset folder '{self.path}' does not exist or is not a folder")
        self._files = {
            p.name: p for p in sorted(self.path.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        }
        if not self._files:
            raise DataError(
                f"dataset folder '{self.path}' holds no image ({', '.join(IMAGE_SUFFIXES)})"
            )

    def image_names(self):
        return list(self._files)

    def source(self, name):
        return str(self._files[name])

    def read(self, name):
        import imageio.v3 as iio

        path = self._files[name]
        try:
            return iio.imread(path)
        except Exception as error:
            raise DataError(f"cannot read image '{path}': {error}") from None


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset's images in memory, converted, cropped and limited.

    Attributes
    ----------
    spec : str
        The dataset as the user named it, e.g. ``"skimage"`` or ``"folder:/data/Set12"``.
    images : dict of str to numpy.ndarray
        Image name to float32 image in [0, 1].
    content_hash : str
        SHA-256 over the names and pixel values, so a result can be tied to its data.
    """

    spec: str
    images: dict[str, np.ndarray]
    content_hash: str


def to_float_image(array: np.ndarray, source: str) -> np.ndarray:
    """Convert a decoded image to float32 in [0, 1], (H, W) or (H, W, 3).

    Parameters
    ----------
    array : numpy.ndarray
        Decoded image of any common dtype, (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4).
    source : str
        The file or image name, used in error messages.
    """
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] in (1, 2):  # gray, gray + alpha
        array = array[..., 0]
    elif array.ndim == 3 and array.shape[-1] == 4:  # RGBA: alpha dropped
        array = array[..., :3]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise DataError(f"image '{source}' has shape {array.shape}; expected (H, W) or (H, W, 3)")
    if min(array.shape[:2]) < MIN_SIZE:
        raise DataError(
            f"image '{source}' is {array.shape[0]}x{array.shape[1]}; at least "
            f"{MIN_SIZE}x{MIN_SIZE} pixels are needed"
        )
    if array.dtype == bool:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        if info.min < 0:
            raise DataError(f"image '{source}' has signed integer pixels ({array.dtype})")
        scale = 255 if info.max <= 255 else 65535 if info.max <= 65535 else info.max
        return (array.astype(np.float64) / scale).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise DataError(f"image '{source}' has non-finite pixel values")
        return np.clip(array, 0, 1).astype(np.float32)
    raise DataError(f"image '{source}' has unsupported pixel type {array.dtype}")


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Central ``size`` x ``size`` window of ``image`` (a side shorter than ``size`` is kept whole)."""
    height, width = image.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return image[top:top + size, left:left + size]


def read_image(dataset: Dataset, name: str, *, crop: int | None = None) -> np.ndarray:
    """Read, convert (:func:`to_float_image`) and optionally centre-crop one image."""
    image = to_float_image(dataset.read(name), dataset.source(name))
    if crop is not None:
        image = np.ascontiguousarray(centre_crop(image, crop))
    return image


def open_dataset(spec: str, registry=None) -> Dataset:
    """Instantiate the dataset named by ``spec`` (``"name"`` or ``"name:argument"``)."""
    from bench.registry import default_registry

    registry = registry or default_registry()
    name, _, argument = spec.partition(":")
    cls = registry.load("dataset", name)
    return cls(argument or None)


def load_dataset(
    spec: str, *, crop: int | None = None, limit: int | None = None, registry=None
) -> LoadedDataset:
    """Open, read, convert and hash a dataset.

    Parameters
    ----------
    spec : str
        ``"skimage"``, ``"folder:PATH"`` or a plugin dataset's name (with ``":argument"``).
    crop : int, optional
        Keep the central ``crop`` x ``crop`` window of each image.
    limit : int, optional
        Keep only the first ``limit`` images.
    registry : bench.registry.Registry, optional
        Where to look the name up; the default registry when omitted.

    Raises
    ------
    DataError
        For a missing or empty folder, or any image that cannot be read or converted.
    """
    if crop is not None and crop < MIN_SIZE:
        raise DataError(f"crop {crop} is too small; at least {MIN_SIZE} pixels are needed")
    dataset = open_dataset(spec, registry)
    names = dataset.image_names()[:limit] if limit else dataset.image_names()
    digest = hashlib.sha256()
    images = {}
    for name in names:
        image = read_image(dataset, name, crop=crop)
        images[name] = image
        digest.update(name.encode())
        digest.update(str(image.shape).encode())
        digest.update(image.tobytes())
    return LoadedDataset(spec, images, digest.hexdigest())
