"""Images a run keeps besides its numbers: small crops for the report, optionally every output.

Layout inside the run directory::

    crops/index.jsonl                      one record per stored crop (see :func:`crop_record`)
    crops/<key>/clean.png, noisy.png, <method>.png
    outputs/<dataset>/<image>/<noise>-<level>/seed<seed>-<mode>/<method>.png   (--save-outputs)

``<method>`` is the cell's method label (:func:`bench.sweep.method_name`), made file-safe.

Crops are the central ``size`` x ``size`` window, stored as 8-bit PNG after clipping to [0, 1]:
they are for looking at, not for scoring.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

CROPS, OUTPUTS, CROP_INDEX = "crops", "outputs", "index.jsonl"


def slug(text: str) -> str:
    """A file-name-safe version of ``text``, with a short hash when characters were replaced."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"
    if safe != text:
        safe = f"{safe[-40:]}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"
    return safe


def to_png_bytes(image: np.ndarray) -> bytes:
    """Encode a float image in [0, 1] (clipped) as an 8-bit PNG."""
    import imageio.v3 as iio

    pixels = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    return iio.imwrite("<bytes>", pixels, extension=".png")


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def crop_key(dataset: str, image: str, noise: str, level: float, seed: int, mode: str) -> str:
    """The folder name of one noisy image's crops."""
    return "__".join([slug(dataset), slug(image), slug(noise), f"{level:g}", f"seed{seed}", mode])


class ArtifactWriter:
    """Writes the crops (and, if asked, the full outputs) of a run.

    Workers encode the images (:func:`to_png_bytes`); this class only files them.

    Parameters
    ----------
    run_dir : Path
        The run directory.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def crop(self, key: str, role: str, png: bytes, record: dict) -> None:
        """Store a crop (PNG bytes) as ``crops/<key>/<role>.png`` and index it."""
        folder = self.run_dir / CROPS / key
        name = slug(role) + ".png"
        write_file(folder / name, png)
        entry = dict(record, key=key, role=role, path=f"{CROPS}/{key}/{name}")
        with open(self.run_dir / CROPS / CROP_INDEX, "a", encoding="utf-8") as index:
            index.write(json.dumps(entry, default=str) + "\n")

    def output(self, cell, png: bytes) -> None:
        """Write a whole denoised image (PNG bytes) under ``outputs/``."""
        path = (self.run_dir / OUTPUTS / slug(cell.dataset) / slug(cell.image)
                / f"{slug(cell.noise)}-{cell.level:g}" / f"seed{cell.seed}-{cell.mode}"
                / f"{slug(cell.method)}.png")
        write_file(path, png)


def read_crop_index(run_dir: str | Path) -> list[dict]:
    """The crop records of a run (empty when it stored none)."""
    path = Path(run_dir) / CROPS / CROP_INDEX
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
