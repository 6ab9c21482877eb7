"""The run directory: an append-only record of finished cells, the tidy tables, the manifest.

Layout of a run directory::

    manifest.json     schema version, sweep configuration, environment, dataset hashes
    cells.jsonl       one JSON object per finished cell, appended as each one finishes
    results.parquet   the tidy table rebuilt from cells.jsonl at the end of the run
    results.csv       the same table as CSV

Each record is written with a single ``write`` of one line and flushed, so a crash leaves at
most a torn last line, which :func:`read_records` ignores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from bench.errors import DataError

SCHEMA_VERSION = 1

#: The columns of the results table, in order.
COLUMNS = [
    "dataset", "image", "height", "width", "channels", "noise", "level", "noise_params",
    "seed", "mode", "sigma_used", "denoiser", "params", "device", "psnr", "ssim",
    "noisy_psnr", "noisy_ssim", "seconds", "mpix_per_s", "status", "error",
    # How the time was taken: concurrent workers, "parallel" or "exclusive"; the memory the
    # call needed above what was in use (CPU resident set, or CUDA allocations), in MiB; the
    # GPU's name and the arithmetic precision of learned models; the resume key; the method
    # label (denoiser, the parameters the sweep set, device: see bench.sweep.method_name).
    "workers", "timing", "peak_memory_mb", "gpu", "precision", "cell_id", "method",
]
STATUSES = ("ok", "failed", "timeout")

MANIFEST, RECORDS, PARQUET, CSV = "manifest.json", "cells.jsonl", "results.parquet", "results.csv"


class RunStore:
    """Writes one run directory.

    Parameters
    ----------
    run_dir : str or Path
        Created if missing.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._records = open(self.run_dir / RECORDS, "a", encoding="utf-8")

    def write_manifest(self, manifest: dict) -> None:
        """Write ``manifest.json`` atomically."""
        _write_atomic(self.run_dir / MANIFEST, json.dumps(manifest, indent=2, default=str))

    def append(self, row: dict) -> None:
        """Append one finished cell as one line of ``cells.jsonl``."""
        self._records.write(json.dumps(row, default=str) + "\n")
        self._records.flush()

    def finish(self, order: list[str] | None = None) -> pd.DataFrame:
        """Close the record file and write the Parquet and CSV tables; return the table.

        Parameters
        ----------
        order : list of str, optional
            Cell ids in the order the rows should have; rows of other cells follow.
        """
        self._records.close()
        frame = read_records(self.run_dir)
        if order is not None:
            rank = {cid: i for i, cid in enumerate(order)}
            keys = frame["cell_id"].map(lambda cid: rank.get(cid, len(rank)))
            frame = frame.iloc[keys.argsort(kind="stable")].reset_index(drop=True)
        tmp = self.run_dir / (PARQUET + ".tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, self.run_dir / PARQUET)
        _write_atomic(self.run_dir / CSV, frame.to_csv(index=False))
        return frame

    def close(self) -> None:
        """Close the record file without writing the tables."""
        self._records.close()


def read_records(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Build the results table from ``cells.jsonl`` (see :func:`latest_records`)."""
    return to_frame(list(latest_records(run_dir).values()))


def latest_records(run_dir: str | os.PathLike) -> dict[str, dict]:
    """The records of ``cells.jsonl`` by cell id, as written.

    A torn line (a crash mid-write) is skipped; when a cell has several records (its timing
    was redone alone), the last one wins.
    """
    path = Path(run_dir) / RECORDS
    rows: dict[str, dict] = {}
    if path.exists():
        with open(path, encoding="utf-8") as records:
            for number, line in enumerate(records):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                rows[row.get("cell_id") or str(number)] = row
    return rows


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows to a DataFrame with :data:`COLUMNS` in order and stable dtypes."""
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("height", "width", "channels", "seed", "workers"):
        frame[column] = frame[column].astype("int64")
    for column in ("level", "sigma_used", "psnr", "ssim", "noisy_psnr", "noisy_ssim",
                   "seconds", "mpix_per_s", "peak_memory_mb"):
        frame[column] = frame[column].astype("float64")
    for column in ("error", "timing", "gpu", "precision", "cell_id", "method"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame


def load_results(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Read a run's results: ``results.parquet`` if written, else the cell records.

    Raises
    ------
    DataError
        When ``run_dir`` is not a run directory.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run directory '{run_dir}' does not exist")
    if (run_dir / PARQUET).exists():
        return pd.read_parquet(run_dir / PARQUET)
    if (run_dir / RECORDS).exists():
        return read_records(run_dir)
    raise DataError(f"'{run_dir}' is not a run directory: no {PARQUET} or {RECORDS}")


def load_manifest(run_dir: str | os.PathLike) -> dict:
    """Read a run's ``manifest.json`` (an empty dict when absent)."""
    path = Path(run_dir) / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
