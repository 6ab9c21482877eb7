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

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING


from bench.errors import DataError
from bench.files import replacing, write_atomic
from bench.metrics import DEFAULT_METRICS, NOISY_PREFIX

if TYPE_CHECKING:  # pandas loads when a table is built, not when a worker records a cell
    import pandas as pd

SCHEMA_VERSION = 2


@dataclass
class CellRecord:
    """One row of the results table: what ran, how it scored, how long it took.

    Every row is built through this type — by the worker for a cell that ran, by
    :meth:`lost` for one whose worker timed out or died — so the columns, their types and the
    Parquet schema are defined here once. ``scores`` and ``noisy_scores`` hold one value per
    metric of the run and become the columns ``<metric>`` and ``noisy_<metric>``.
    """

    dataset: str
    image: str
    height: int
    width: int
    channels: int
    noise: str
    #: The swept level of a synthetic noise; 0 for real noise (never NaN: groupby drops NaN).
    level: float
    noise_params: str  # JSON
    seed: int
    mode: str
    #: The protocol stage's options (a preset's name, or key=value pairs): bench.protocol.
    protocol: str
    #: The sigma the denoiser was given or estimated, 8-bit units; NaN when it used none.
    sigma_used: float
    denoiser: str
    params: str  # JSON: the parameters the denoiser ran with, defaults included
    device: str
    scores: dict[str, float]
    noisy_scores: dict[str, float]
    seconds: float
    mpix_per_s: float
    status: str  # "ok", "failed" or "timeout"
    error: str
    #: Concurrent workers when the time was taken, and "parallel" or "exclusive".
    workers: int
    timing: str
    #: Memory the call needed above what was in use (the C allocator's in-use bytes, or
    #: CUDA's), MiB. A CPU call shorter than 5 ms repeats the figure measured at its shape.
    peak_memory_mb: float
    #: The GPU's name and the arithmetic precision (learned models): Denoiser.run_info().
    gpu: str
    precision: str
    cell_id: str
    #: The label of what ran: denoiser, the parameters the sweep set, device.
    method: str

    @classmethod
    def start(cls, cell, shape: tuple[int, ...], metrics: list[str], *, workers: int,
              timing: str, protocol: str) -> CellRecord:
        """The record of ``cell`` before it runs: no score, status ``failed``."""
        return cls(
            dataset=cell.dataset, image=cell.image, height=int(shape[0]), width=int(shape[1]),
            channels=1 if len(shape) == 2 else int(shape[2]), noise=cell.noise,
            level=float(cell.level), noise_params=json.dumps(dict(cell.noise_params)),
            seed=cell.seed, mode=cell.mode, protocol=protocol, sigma_used=math.nan, denoiser=cell.denoiser,
            params=json.dumps(dict(cell.params), default=str), device=cell.device,
            scores=dict.fromkeys(metrics, math.nan), noisy_scores=dict.fromkeys(metrics, math.nan),
            seconds=math.nan, mpix_per_s=math.nan, status="failed", error="", workers=workers,
            timing=timing, peak_memory_mb=math.nan, gpu="", precision="", cell_id=cell.id,
            method=cell.method)

    @classmethod
    def lost(cls, cell, shape: tuple[int, ...], metrics: list[str], status: str, reason: str,
             *, workers: int, timing: str, protocol: str) -> CellRecord:
        """The record of a cell that produced no result (its worker timed out or died)."""
        record = cls.start(cell, shape, metrics, workers=workers, timing=timing,
                           protocol=protocol)
        record.status, record.error = status, reason
        return record

    @classmethod
    def from_row(cls, row: dict) -> CellRecord:
        """The record of a row of ``cells.jsonl`` or of the results table."""
        metrics = metric_names(row)
        values = {name: row.get(name) for name in _FIELDS}
        values["scores"] = {m: row[m] for m in metrics}
        values["noisy_scores"] = {m: row[NOISY_PREFIX + m] for m in metrics}
        return cls(**values)

    def to_row(self) -> dict:
        """The flat row: the metric columns take the place of ``scores``/``noisy_scores``."""
        row = {}
        for name in FIELD_NAMES:
            if name == "scores":
                row.update(self.scores)
                row.update({NOISY_PREFIX + m: v for m, v in self.noisy_scores.items()})
            elif name != "noisy_scores":
                row[name] = getattr(self, name)
        return row


#: The record's fields in order, and those that are one column each.
FIELD_NAMES = [f.name for f in dataclasses.fields(CellRecord)]
_FIELDS = [name for name in FIELD_NAMES if name not in ("scores", "noisy_scores")]
_DTYPES = {f.name: {"int": "int64", "float": "float64", "str": "str"}[f.type]
           for f in dataclasses.fields(CellRecord) if f.name in _FIELDS}


def columns(metrics: list[str]) -> list[str]:
    """The columns of a results table scoring ``metrics``, in order."""
    at = FIELD_NAMES.index("scores")
    return (_FIELDS[:at] + list(metrics) + [NOISY_PREFIX + m for m in metrics]
            + _FIELDS[at:])


#: The columns of a results table with the default metrics.
COLUMNS = columns(list(DEFAULT_METRICS))


def metric_names(row: dict) -> list[str]:
    """The metrics a row scores: every key ``m`` with a ``noisy_m`` beside it, in order."""
    return [key for key in row
            if not key.startswith(NOISY_PREFIX) and NOISY_PREFIX + key in row]


MANIFEST, RECORDS, PARQUET, CSV = "manifest.json", "cells.jsonl", "results.parquet", "results.csv"


class RunStore:
    """Writes one run directory, holding its lock (:class:`bench.store.lock.RunDirLock`)
    from creation to :meth:`close` or :meth:`finish`.

    Parameters
    ----------
    run_dir : str or Path
        Created if missing.
    """

    def __init__(self, run_dir: str | os.PathLike):
        from bench.store.lock import RunDirLock, make_run_dir

        self.run_dir = make_run_dir(run_dir)
        self._lock = RunDirLock(self.run_dir)
        self._lock.acquire()  # a second writer is refused here, naming the holder
        self._records = open(self.run_dir / RECORDS, "a", encoding="utf-8")

    def write_manifest(self, manifest: dict) -> None:
        """Write ``manifest.json`` atomically."""
        write_atomic(self.run_dir / MANIFEST, json.dumps(manifest, indent=2, default=str))

    def append(self, record: CellRecord) -> None:
        """Append one finished cell as one line of ``cells.jsonl``."""
        self._records.write(json.dumps(record.to_row(), default=str) + "\n")
        self._records.flush()

    def finish(self, order: list[str] | None = None) -> pd.DataFrame:
        """Close the record file, write the Parquet and CSV tables, release the lock; return
        the table.

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
        with replacing(self.run_dir / PARQUET) as tmp:
            frame.to_parquet(tmp, index=False)
        write_atomic(self.run_dir / CSV, frame.to_csv(index=False))
        self.close()
        return frame

    def close(self) -> None:
        """Close the record file without writing the tables, and release the lock."""
        self._records.close()
        self._lock.release()


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


def to_frame(rows: list[dict], metrics: list[str] | None = None) -> pd.DataFrame:
    """Rows to a DataFrame with the columns of :func:`columns` in order and stable dtypes.

    Parameters
    ----------
    rows : list of dict
        Flat rows (:meth:`CellRecord.to_row`).
    metrics : list of str, optional
        The metric columns; by default those of the rows (the default metrics when empty).
    """
    if metrics is None:
        found = dict.fromkeys(m for row in rows for m in metric_names(row))
        metrics = list(found) or list(DEFAULT_METRICS)
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns(metrics))
    for column, dtype in _DTYPES.items():
        if dtype == "str":
            frame[column] = frame[column].fillna("").astype(str)
        else:
            frame[column] = frame[column].astype(dtype)
    for column in list(metrics) + [NOISY_PREFIX + m for m in metrics]:
        frame[column] = frame[column].astype("float64")
    return frame


def load_results(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Read a run's results: ``results.parquet`` if written, else the cell records.

    Raises
    ------
    DataError
        When ``run_dir`` is not a run directory.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise DataError(f"'{run_dir}' is a file, not a run directory")
    if not run_dir.is_dir():
        raise DataError(f"run directory '{run_dir}' does not exist")
    if (run_dir / PARQUET).exists():
        import pandas as pd

        return pd.read_parquet(run_dir / PARQUET)
    if (run_dir / RECORDS).exists():
        return read_records(run_dir)
    raise DataError(f"'{run_dir}' is not a run directory: no {PARQUET} or {RECORDS}")


def load_manifest(run_dir: str | os.PathLike) -> dict:
    """Read a run's ``manifest.json`` (an empty dict when absent)."""
    path = Path(run_dir) / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
