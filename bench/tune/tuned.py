"""``tuned.toml``: parameters chosen by ``bench tune``, per denoiser, noise and level.

The file is a sweep-file fragment: one ``[tuned]`` table, which ``bench run --params FILE``
reads, and which may also be pasted into a sweep file given to ``--config``::

    [tuned]
    metric = "psnr"
    objective = "clean"

    [tuned.tuned_on]
    datasets = ["folder:/data/Train400"]
    crop = 128
    limit = 40

    [tuned.tuned_on.images]        # per-image content hash -> where the image came from
    "9f86d0...": "folder:/data/Train400/test_001.png"

    [tuned.denoisers.nlm."gaussian@25"]
    h_factor = 0.62
    patch_size = 5
    patch_distance = 7

The image hashes (:func:`image_hash`, over the whole decoded image, whatever the crop) let
``bench run`` refuse a test set that overlaps the tuning images.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from pathlib import Path

import numpy as np

from bench.errors import ConfigError
from bench.files import write_atomic

#: Keys of the ``[tuned]`` table.
TUNED_KEYS = ("metric", "objective", "mode", "created", "seed", "trials", "suite_version",
              "tuned_on", "denoisers", "scores", "source")
#: The label suffix of a method run with tuned parameters: ``nlm(tuned)``.
TUNED_LABEL = "tuned"


def condition_key(noise: str, level: float) -> str:
    """``"gaussian@25"``: a noise and level, as the manifest names them."""
    return f"{noise}@{float(level):g}"


def parse_condition(key: str) -> tuple[str, float]:
    """``"gaussian@25"`` -> ``("gaussian", 25.0)``; a malformed key is a ValueError."""
    noise, sep, level = key.rpartition("@")
    if not sep or not noise:
        raise ValueError(f"'{key}' is not NOISE@LEVEL")
    return noise, float(level)


def image_hash(image: np.ndarray) -> str:
    """SHA-256 of a whole decoded image (float32 in [0, 1], as :mod:`bench.datasets` converts
    it) and its shape: the same picture gives the same hash whatever the file format."""
    digest = hashlib.sha256(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image, dtype=np.float32).tobytes())
    return digest.hexdigest()


def dataset_hashes(spec: str, *, limit: int | None = None, registry=None) -> dict[str, str]:
    """Content hash -> ``"SPEC/NAME"`` for each image of a dataset, read whole (uncropped).

    For a dataset of real noisy/clean pairs both images of each pair are hashed.
    """
    from bench.datasets import PairedDataset, open_dataset, read_image

    dataset = open_dataset(spec, registry)
    names = dataset.image_names()[:limit] if limit else dataset.image_names()
    hashes = {}
    for name in names:
        hashes.setdefault(image_hash(read_image(dataset, name)), f"{spec}/{name}")
        if isinstance(dataset, PairedDataset):
            hashes.setdefault(image_hash(read_image(dataset, name, noisy=True)),
                              f"{spec}/{name} (noisy)")
    return hashes


def overlap(tuned: dict, hashes: dict[str, str]) -> list[str]:
    """Test images (``"SPEC/NAME"``) whose content is among the tuning images of ``tuned``."""
    tuned_on = tuned.get("tuned_on", {}).get("images", {})
    return sorted(where for digest, where in hashes.items() if digest in tuned_on)


def params_for(tuned: dict | None, denoiser: str, noise: str, level: float) -> dict | None:
    """The tuned parameters of ``denoiser`` at ``noise`` and ``level``, or None."""
    if not tuned:
        return None
    return tuned.get("denoisers", {}).get(denoiser, {}).get(condition_key(noise, level))


def tuned_label(denoiser: str) -> str:
    """``"nlm(tuned)"``: one label for a method at every level it was tuned for."""
    return f"{denoiser}({TUNED_LABEL})"


def check_tuned(data, source: str) -> dict:
    """Check the ``[tuned]`` table of a sweep file or params file and return it.

    Raises
    ------
    ConfigError
        Naming ``source`` and what is wrong: an unknown key, a condition that is not
        ``NOISE@LEVEL``, a parameter value that is not a number, string or boolean.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: 'tuned' must be a table, not {data!r}")
    unknown = sorted(set(data) - set(TUNED_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key 'tuned.{unknown[0]}'; known keys: "
                          f"{', '.join(TUNED_KEYS)}")
    denoisers = data.get("denoisers")
    if not isinstance(denoisers, dict) or not denoisers:
        raise ConfigError(f"{source}: 'tuned.denoisers' must hold a table per denoiser")
    for name, conditions in denoisers.items():
        if not isinstance(conditions, dict):
            raise ConfigError(f"{source}: 'tuned.denoisers.{name}' must be a table of "
                              "NOISE@LEVEL tables")
        for key, params in conditions.items():
            try:
                parse_condition(key)
            except ValueError as error:
                raise ConfigError(f"{source}: tuned.denoisers.{name}: {error}") from None
            if not isinstance(params, dict):
                raise ConfigError(f"{source}: tuned.denoisers.{name}.\"{key}\" must be a table "
                                  "of parameters")
            for param, value in params.items():
                if not isinstance(value, (bool, int, float, str)):
                    raise ConfigError(f"{source}: tuned.denoisers.{name}.\"{key}\".{param} must "
                                      f"be a number, string or boolean, not {value!r}")
    images = data.get("tuned_on", {}).get("images", {})
    if not isinstance(images, dict):
        raise ConfigError(f"{source}: 'tuned.tuned_on.images' must be a table of hash = image")
    return data


def load_params_file(path: str | Path) -> dict:
    """Read ``tuned.toml`` (or any TOML file with a ``[tuned]`` table) and return that table.

    Raises
    ------
    ConfigError
        When the file is missing, unreadable, has keys besides ``tuned``, or a bad table.

    Returns
    -------
    dict
        The table, with ``source`` set to the file's path (recorded in the run's manifest).
    """
    from bench.config import read_toml

    path = Path(path)
    data = read_toml(path, "params file")
    if "tuned" not in data:
        raise ConfigError(f"params file '{path}' has no [tuned] table (write one with bench tune)")
    others = sorted(set(data) - {"tuned"})
    if others:
        raise ConfigError(f"params file '{path}': unknown key '{others[0]}'; a params file holds "
                          "only the [tuned] table (use --config for a whole sweep)")
    table = check_tuned(data["tuned"], str(path))
    return dict(table, source=str(path))


# --- writing ----------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\t", "\\t"))
    return f'"{escaped}"'


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def to_toml(data: dict, header: str = "") -> str:
    """A small TOML writer for nested tables of scalars and lists (``None`` values omitted)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]

    def table(path: list[str], content: dict) -> None:
        scalars = {k: v for k, v in content.items() if not isinstance(v, dict) and v is not None}
        tables = {k: v for k, v in content.items() if isinstance(v, dict)}
        if path and (scalars or not tables):
            lines.append("")
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        for key, value in scalars.items():
            lines.append(f"{_key(key)} = {_value(value)}")
        for key, value in tables.items():
            table(path + [key], value)

    table([], data)
    return "\n".join(lines).lstrip("\n") + "\n"


def write_tuned(path: str | Path, tuned: dict, header: str = "") -> Path:
    """Write ``tuned`` as the ``[tuned]`` table of a TOML file; return the path."""
    path = Path(path)
    text = to_toml({"tuned": tuned}, header)
    tomllib.loads(text)  # never write a file that would not read back
    write_atomic(path, text)
    return path
