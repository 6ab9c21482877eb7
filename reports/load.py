"""Load a run directory into what the reports need: results, manifest and stored crops.

>>> from reports import load_run
>>> run = load_run("runs/20260101-120000")        # doctest: +SKIP
>>> run.results.groupby("denoiser")["psnr"].mean()  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.store.artifacts import read_crop_index
from bench.errors import DataError
from bench.store.results import load_manifest, load_results

#: Columns of :attr:`Run.crops`, in order; one column per metric of the run follows.
CROP_COLUMNS = ["dataset", "image", "noise", "level", "seed", "mode", "role", "denoiser",
                "device", "path"]


@dataclass
class Run:
    """One loaded run directory.

    Attributes
    ----------
    run_dir : Path
        Where the run lives.
    results : pandas.DataFrame
        One row per cell (see :data:`bench.store.results.COLUMNS`).
    manifest : dict
        The run's ``manifest.json``: sweep configuration, environment, dataset hashes.
    crops : pandas.DataFrame
        One row per stored crop (see :data:`CROP_COLUMNS`); ``role`` is ``"clean"``,
        ``"noisy"`` or the method label of a denoiser, ``path`` is relative to ``run_dir``;
        the metric columns hold the noisy or denoised image's scores (NaN for the clean crop).
    """

    run_dir: Path
    results: pd.DataFrame
    manifest: dict = field(default_factory=dict)
    crops: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CROP_COLUMNS))

    @property
    def name(self) -> str:
        """The run directory's name, used as the report's title."""
        return self.run_dir.resolve().name


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run directory: results table, manifest and crop index.

    Parameters
    ----------
    run_dir : str or Path
        A directory written by ``bench run`` or :func:`bench.run.runner.run_sweep`.

    Returns
    -------
    Run

    Raises
    ------
    DataError
        When ``run_dir`` is missing, is not a run directory, or holds no cells yet.
    """
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    if results.empty:
        raise DataError(f"run directory '{run_dir}' has no results yet")
    crops = pd.DataFrame(read_crop_index(run_dir))
    crops = crops.reindex(columns=CROP_COLUMNS + [c for c in crops.columns if c not in CROP_COLUMNS])
    return Run(run_dir, results, load_manifest(run_dir), crops)
