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

import fnmatch
import hashlib
import re
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
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
        return _read_file(self._files[name])


class DataWarning(UserWarning):
    """Something about the data that deserves a look but does not stop the run."""


class PairedDataset(Dataset):
    """Real noisy images with their clean references: no synthetic noise is added.

    :meth:`read` returns the clean image of a pair, :meth:`read_noisy` its noisy image.
    """

    @abstractmethod
    def read_noisy(self, name: str) -> np.ndarray:
        """Return the noisy image of pair ``name`` as stored."""

    def noisy_source(self, name: str) -> str:
        """Where the noisy image of pair ``name`` comes from, for messages."""
        return f"{name} (noisy)"


#: Sub-folder layouts of a pairs folder: (clean, noisy) folder names, matched case-insensitively.
PAIR_FOLDERS = (("clean", "noisy"), ("gt", "noisy"), ("target", "input"))
#: File-name patterns of common real-noise benchmarks: preset -> (clean glob, noisy glob).
PAIR_PRESETS = {
    "polyu": ("*_mean.*", "*_real.*"),
    "sidd": ("*GT_SRGB*", "*NOISY_SRGB*"),
}


class ImagePairs(PairedDataset):
    """Noisy/clean image pairs in a folder: ``pairs:PATH[,preset=NAME][,clean=GLOB,noisy=GLOB]``.

    Layouts, tried in this order when no option is given:

    - two sub-folders, ``clean/`` + ``noisy/``, ``gt/`` + ``noisy/`` or ``target/`` +
      ``input/``, whose files are matched by name (without the suffix);
    - one folder whose file names follow a preset's patterns: ``polyu`` (``*_mean.*`` clean,
      ``*_real.*`` noisy) or ``sidd`` (``*GT_SRGB*`` / ``*NOISY_SRGB*``).

    ``clean=GLOB,noisy=GLOB`` gives your own patterns; the parts the ``*`` (or ``?``) match
    pair the files and name the pair, so each pattern needs a wildcard. Files that find no
    partner, and two files of one side under one pair name, are an error naming them.
    """

    def __init__(self, argument: str | None = None):
        if not argument:
            raise DataError("dataset 'pairs' needs a path: pairs:PATH[,preset=polyu|sidd]"
                            "[,clean=GLOB,noisy=GLOB]")
        path, *options = argument.split(",")
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise DataError(f"pairs folder '{self.path}' does not exist or is not a folder")
        settings = {}
        for option in options:
            key, sep, value = option.partition("=")
            if not sep or key.strip() not in ("preset", "clean", "noisy"):
                raise DataError(f"pairs:{argument}: option '{option}' is not preset=NAME, "
                                "clean=GLOB or noisy=GLOB")
            settings[key.strip()] = value.strip()
        self._pairs = self._find_pairs(settings, argument)

    def _find_pairs(self, settings: dict, argument: str) -> dict[str, tuple[Path, Path]]:
        if "preset" in settings:
            if settings["preset"] not in PAIR_PRESETS:
                raise DataError(f"pairs:{argument}: unknown preset '{settings['preset']}'; "
                                f"known presets: {', '.join(PAIR_PRESETS)}")
            return self._match_patterns(*PAIR_PRESETS[settings["preset"]])
        if "clean" in settings or "noisy" in settings:
            if not ("clean" in settings and "noisy" in settings):
                raise DataError(f"pairs:{argument}: give both clean=GLOB and noisy=GLOB")
            return self._match_patterns(settings["clean"], settings["noisy"])
        folders = {p.name.lower(): p for p in self.path.iterdir() if p.is_dir()}
        for clean, noisy in PAIR_FOLDERS:
            if clean in folders and noisy in folders:
                return self._match_folders(folders[clean], folders[noisy])
        for clean, noisy in PAIR_PRESETS.values():
            if any(fnmatch.fnmatchcase(p.name, noisy) for p in _images_in(self.path)):
                return self._match_patterns(clean, noisy)
        raise DataError(
            f"pairs folder '{self.path}' has no recognised layout: use clean/ + noisy/ (or gt/ + "
            f"noisy/, target/ + input/) sub-folders, or name patterns (preset=polyu|sidd, or "
            f"clean=GLOB,noisy=GLOB)")

    def _match_folders(self, clean_dir: Path, noisy_dir: Path) -> dict[str, tuple[Path, Path]]:
        clean = _keyed(((p.stem, p) for p in _images_in(clean_dir)), "clean", self.path)
        noisy = _keyed(((p.stem, p) for p in _images_in(noisy_dir)), "noisy", self.path)
        return _pair_up(self.path, clean, noisy)

    def _match_patterns(self, clean_glob: str, noisy_glob: str) -> dict[str, tuple[Path, Path]]:
        for side, glob in (("clean", clean_glob), ("noisy", noisy_glob)):
            if "*" not in glob and "?" not in glob:
                raise DataError(f"pairs folder '{self.path}': {side}={glob} has no wildcard "
                                "(* or ?); the parts the wildcards match name the pairs")
        files = _images_in(self.path)
        clean = _keyed(((_pattern_key(clean_glob, p.name), p) for p in files), "clean", self.path)
        noisy = _keyed(((_pattern_key(noisy_glob, p.name), p) for p in files), "noisy", self.path)
        return _pair_up(self.path, clean, noisy)

    def image_names(self):
        return list(self._pairs)

    def source(self, name):
        return str(self._pairs[name][0])

    def noisy_source(self, name):
        return str(self._pairs[name][1])

    def read(self, name):
        return _read_file(self._pairs[name][0])

    def read_noisy(self, name):
        return _read_file(self._pairs[name][1])


def _images_in(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def _keyed(items, side: str, folder: Path) -> dict[str, Path]:
    """``(pair name, file)`` items as a dictionary; two files of one side under one pair name
    (``a.png`` and ``a.tif``) are an error naming both. Items whose name is None are skipped."""
    keyed: dict[str, Path] = {}
    for key, path in items:
        if key is None:
            continue
        if key in keyed:
            raise DataError(f"pairs folder '{folder}': two {side} files for pair '{key}': "
                            f"{keyed[key].name}, {path.name}")
        keyed[key] = path
    return keyed


def _pattern_key(pattern: str, name: str) -> str | None:
    """The pair name of file ``name`` under ``pattern``: the parts the wildcards match, joined
    (a trailing ``.*`` is the suffix and is left out), or None when the name does not match."""
    regex = "".join("(.*)" if c == "*" else "(.)" if c == "?" else re.escape(c) for c in pattern)
    match = re.fullmatch(regex, name)
    if match is None:
        return None
    parts = list(match.groups())
    if pattern.endswith(".*"):
        parts = parts[:-1]
    else:
        parts[-1] = Path(parts[-1]).stem if parts else ""
    return re.sub(r"_+", "_", "_".join(p for p in parts if p)).strip("_") or name


def _pair_up(folder: Path, clean: dict, noisy: dict) -> dict[str, tuple[Path, Path]]:
    lonely_noisy = sorted(noisy.keys() - clean.keys())
    lonely_clean = sorted(clean.keys() - noisy.keys())
    if lonely_noisy or lonely_clean:
        parts = []
        if lonely_noisy:
            parts.append("noisy without a clean partner: "
                         + ", ".join(noisy[k].name for k in lonely_noisy))
        if lonely_clean:
            parts.append("clean without a noisy partner: "
                         + ", ".join(clean[k].name for k in lonely_clean))
        raise DataError(f"pairs folder '{folder}': " + "; ".join(parts))
    if not clean:
        raise DataError(f"pairs folder '{folder}' holds no image pair")
    return {key: (clean[key], noisy[key]) for key in sorted(clean)}


def _read_file(path: Path) -> np.ndarray:
    import imageio.v3 as iio

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
    noisy : dict of str to numpy.ndarray
        For a :class:`PairedDataset`, each pair's real noisy image; empty otherwise.
    """

    spec: str
    images: dict[str, np.ndarray]
    content_hash: str
    noisy: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def paired(self) -> bool:
        """Whether the dataset holds real noisy/clean pairs."""
        return bool(self.noisy)


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


def read_image(dataset: Dataset, name: str, *, crop: int | None = None,
               noisy: bool = False) -> np.ndarray:
    """Read, convert (:func:`to_float_image`) and optionally centre-crop one image.

    ``noisy=True`` reads the noisy image of a pair (:class:`PairedDataset`).
    """
    if noisy:
        image = to_float_image(dataset.read_noisy(name), dataset.noisy_source(name))
    else:
        image = to_float_image(dataset.read(name), dataset.source(name))
    return _crop(image, crop)


def _crop(image: np.ndarray, crop: int | None) -> np.ndarray:
    return image if crop is None else np.ascontiguousarray(centre_crop(image, crop))


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
        For a missing or empty folder, any image that cannot be read or converted, and pairs
        whose two images differ in size. A pair whose clean image looks noisier than its
        noisy one is a :class:`DataWarning` naming it.
    """
    if crop is not None and crop < MIN_SIZE:
        raise DataError(f"crop {crop} is too small; at least {MIN_SIZE} pixels are needed")
    dataset = open_dataset(spec, registry)
    names = dataset.image_names()[:limit] if limit else dataset.image_names()
    digest = hashlib.sha256()
    images, noisy_images = {}, {}
    for name in names:
        image = read_image(dataset, name)
        if isinstance(dataset, PairedDataset):
            noisy = read_image(dataset, name, noisy=True)
            if noisy.shape != image.shape:  # refused whole: a centre crop would hide it
                check_pair(dataset, name, image, noisy)
            noisy = noisy_images[name] = _crop(noisy, crop)
            check_pair(dataset, name, _crop(image, crop), noisy)
        image = images[name] = _crop(image, crop)
        digest.update(name.encode())
        digest.update(str(image.shape).encode())
        digest.update(image.tobytes())
        if name in noisy_images:
            digest.update(noisy_images[name].tobytes())
    return LoadedDataset(spec, images, digest.hexdigest(), noisy_images)


def check_pair(dataset: PairedDataset, name: str, clean: np.ndarray, noisy: np.ndarray) -> None:
    """Refuse a pair whose images differ in shape; warn when the clean one looks noisier."""
    from bench.interfaces import estimate_sigma

    if clean.shape != noisy.shape:
        raise DataError(f"pair '{name}': clean image '{dataset.source(name)}' is "
                        f"{'x'.join(map(str, clean.shape))} but noisy image "
                        f"'{dataset.noisy_source(name)}' is {'x'.join(map(str, noisy.shape))}")
    clean_sigma, noisy_sigma = estimate_sigma(clean), estimate_sigma(noisy)
    if clean_sigma > noisy_sigma:
        warnings.warn(DataWarning(
            f"pair '{name}': the clean image '{dataset.source(name)}' looks noisier (estimated "
            f"sigma {255 * clean_sigma:.2f}) than the noisy one (sigma {255 * noisy_sigma:.2f}); "
            "are they swapped?"), stacklevel=2)
