"""Run a sweep: plan its cells, make each noisy image once, denoise, score, record.

:func:`run_sweep` is the Python entry point; the command line is a thin layer over it.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench import metrics
from bench.datasets import LoadedDataset, load_dataset
from bench.devices import resolve_device
from bench.environment import describe_environment
from bench.errors import InvalidParameterError
from bench.interfaces import Denoiser, estimate_sigma
from bench.registry import BUILTIN, Registry, default_registry
from bench.results import SCHEMA_VERSION, RunStore
from bench.sweep import MODES, Cell, DenoiserSpec, Sweep, noise_rng
from bench.timing import megapixels_per_second, time_call

#: Side of the crop used for the warm-up call of each denoiser.
WARMUP_SIZE = 32


@dataclass
class Plan:
    """A validated sweep: loaded datasets, resolved device and the cells to run."""

    sweep: Sweep
    device: str
    datasets: dict[str, LoadedDataset]
    denoisers: list[DenoiserSpec]
    cells: list[Cell]


def select_denoisers(sweep: Sweep, registry: Registry) -> list[DenoiserSpec]:
    """The sweep's denoisers, or every available built-in when it names none."""
    if sweep.denoisers is not None:
        for spec in sweep.denoisers:
            registry.get("denoiser", spec.name)  # unknown names fail here
        return list(sweep.denoisers)
    return [
        DenoiserSpec(entry.name) for entry in registry.entries("denoiser")
        if entry.origin == BUILTIN and entry.available
    ]


def plan(sweep: Sweep, registry: Registry | None = None) -> Plan:
    """Check every name, level and file of ``sweep`` and list its cells.

    Nothing runs here, so every user error surfaces before the first cell: unknown names,
    missing extras, levels out of range, unreadable images, a missing GPU.
    """
    registry = registry or default_registry()
    denoisers = select_denoisers(sweep, registry)
    if not denoisers:
        raise InvalidParameterError("the sweep has no denoiser to run")
    classes = {spec.name: registry.load("denoiser", spec.name) for spec in denoisers}
    for spec in denoisers:  # parameters are checked by constructing once
        registry.create_denoiser(spec.name, **dict(spec.params))
    for mode in sweep.modes:
        if mode not in MODES:
            raise InvalidParameterError(f"unknown mode '{mode}'; use oracle or blind")
    if sweep.repeats < 1:
        raise InvalidParameterError(f"repeats must be at least 1, got {sweep.repeats}")
    wants_gpu = any("cuda" in cls.devices for cls in classes.values())
    device = resolve_device(sweep.device, wants_gpu)

    noises = []
    for spec in sweep.noises:
        noise = registry.create_noise(spec.name)
        levels = spec.levels or noise.default_levels
        for level in levels:
            noise.check_level(level)
        params = tuple(sorted(noise.params(**dict(spec.params)).items()))
        noises.append((spec.name, tuple(float(v) for v in levels), params))

    datasets = {
        spec: load_dataset(spec, crop=sweep.crop, limit=sweep.limit, registry=registry)
        for spec in sweep.datasets
    }
    cells = []
    for spec, loaded in datasets.items():
        for image in loaded.images:
            for noise_name, levels, noise_params in noises:
                for level in levels:
                    for seed in sweep.seeds:
                        for mode in sweep.modes:
                            for den in denoisers:
                                cell_device = device if device in classes[den.name].devices else "cpu"
                                cells.append(Cell(spec, image, noise_name, level, noise_params,
                                                  int(seed), mode, den.name, den.params,
                                                  cell_device))
    return Plan(sweep, device, datasets, denoisers, cells)


def check_output(output, shape: tuple[int, ...]) -> np.ndarray:
    """Validate a denoiser's output at the boundary and return it as float32.

    Raises
    ------
    ValueError
        With the reason, when the output is not an array of ``shape`` with finite values.
    """
    if not isinstance(output, np.ndarray):
        raise ValueError(f"returned {type(output).__name__}, expected a numpy array")
    if output.shape != shape:
        raise ValueError(f"returned shape {output.shape}, expected {shape}")
    if not np.issubdtype(output.dtype, np.number):
        raise ValueError(f"returned dtype {output.dtype}, expected a numeric array")
    if not np.all(np.isfinite(output)):
        raise ValueError("returned non-finite values (NaN or inf)")
    return output.astype(np.float32, copy=False)


class DenoiserPool:
    """One instance per (denoiser, params, device), set up and warmed up on first use."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._instances: dict[tuple, Denoiser | Exception] = {}

    def get(self, cell: Cell, sample: np.ndarray) -> Denoiser:
        key = (cell.denoiser, cell.params, cell.device)
        if key not in self._instances:
            try:
                denoiser = self.registry.create_denoiser(cell.denoiser, **dict(cell.params))
                denoiser.setup(cell.device)
                self._instances[key] = denoiser
            except Exception as error:  # recorded on every cell of this denoiser
                self._instances[key] = error
            else:
                warm = np.ascontiguousarray(sample[:WARMUP_SIZE, :WARMUP_SIZE])
                try:
                    denoiser.denoise(warm, 25 / 255)
                    denoiser.synchronize()
                except Exception:
                    pass  # the timed call will fail and record why
        instance = self._instances[key]
        if isinstance(instance, Exception):
            raise instance
        return instance


def run_cell(cell: Cell, clean: np.ndarray, noisy, noisy_scores: tuple[float, float],
             blind_sigma: float, pool: DenoiserPool, *, repeats: int = 1,
             round8: bool = False) -> dict:
    """Run one cell and return its result row; failures become a row with the reason."""
    height, width = clean.shape[:2]
    sigma = noisy.sigma if cell.mode == "oracle" else None
    row = {
        "dataset": cell.dataset, "image": cell.image, "height": height, "width": width,
        "channels": 1 if clean.ndim == 2 else clean.shape[2], "noise": cell.noise,
        "level": cell.level, "noise_params": json.dumps(dict(cell.noise_params)),
        "seed": cell.seed, "mode": cell.mode,
        "sigma_used": 255 * (noisy.sigma if sigma is not None else blind_sigma),
        "denoiser": cell.denoiser, "params": "{}", "device": cell.device,
        "psnr": math.nan, "ssim": math.nan,
        "noisy_psnr": noisy_scores[0], "noisy_ssim": noisy_scores[1],
        "seconds": math.nan, "mpix_per_s": math.nan, "status": "failed", "error": "",
    }
    try:
        denoiser = pool.get(cell, noisy.image)
        row["params"] = json.dumps(denoiser.params(), default=str)
        image = noisy.image.copy()  # a denoiser that writes into its input must not leak
        output, seconds = time_call(lambda: denoiser.denoise(image, sigma), repeats=repeats,
                                    synchronize=denoiser.synchronize)
        output = check_output(output, clean.shape)
        row.update(
            psnr=metrics.psnr(clean, output, round8=round8),
            ssim=metrics.ssim(clean, output, round8=round8),
            seconds=seconds, mpix_per_s=megapixels_per_second(height, width, seconds),
            status="ok",
        )
    except Exception as error:
        row["error"] = one_line(error)
    return row


def one_line(error: BaseException) -> str:
    """``Type: message`` on a single line, for the ``error`` column."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def default_run_dir() -> Path:
    """``runs/<UTC timestamp>/`` under the working directory."""
    return Path("runs") / _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def run_sweep(sweep: Sweep, out_dir: str | Path | None = None, *,
              registry: Registry | None = None, progress: bool = True) -> pd.DataFrame:
    """Run every cell of ``sweep`` and return the tidy results table.

    Parameters
    ----------
    sweep : Sweep
        What to run.
    out_dir : str or Path, optional
        Run directory to write (``runs/<timestamp>/`` when omitted).
    registry : Registry, optional
        Where names are looked up; the default registry when omitted.
    progress : bool
        Show a rich progress bar on the terminal.

    Returns
    -------
    pandas.DataFrame
        One row per cell with the columns of :data:`bench.results.COLUMNS`. Failed cells
        have ``status == "failed"`` and the reason in ``error``; the run goes on past them.
    """
    registry = registry or default_registry()
    the_plan = plan(sweep, registry)
    store = RunStore(out_dir if out_dir is not None else default_run_dir())
    store.write_manifest(build_manifest(the_plan, registry))
    pool = DenoiserPool(registry)
    try:
        with _progress_bar(progress, len(the_plan.cells)) as advance:
            for group in _group_by_noisy_image(the_plan.cells):
                first = group[0]
                clean = the_plan.datasets[first.dataset].images[first.image]
                noise = registry.create_noise(first.noise)
                rng = noise_rng(first.seed, first.image, first.noise, first.level)
                noisy = noise.apply(clean, first.level, rng, **dict(first.noise_params))
                scores = (metrics.psnr(clean, noisy.image, clip=False),
                          metrics.ssim(clean, noisy.image, clip=False))
                blind = estimate_sigma(noisy.image) if any(c.mode == "blind" for c in group) else math.nan
                for cell in group:
                    store.append(run_cell(cell, clean, noisy, scores, blind, pool,
                                          repeats=sweep.repeats, round8=sweep.round8))
                    advance(cell)
    except BaseException:
        store.close()
        raise
    return store.finish()


def _group_by_noisy_image(cells: list[Cell]) -> list[list[Cell]]:
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.noise_key(), []).append(cell)
    return list(groups.values())


def build_manifest(the_plan: Plan, registry: Registry) -> dict:
    """The run's manifest: schema, configuration, environment, dataset hashes."""
    origins = {
        spec.name: registry.get("denoiser", spec.name).origin for spec in the_plan.denoisers
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sweep": the_plan.sweep.to_dict(),
        "device": the_plan.device,
        "cells": len(the_plan.cells),
        "denoiser_origins": origins,
        "datasets": {
            spec: {"images": len(loaded.images), "sha256": loaded.content_hash}
            for spec, loaded in the_plan.datasets.items()
        },
        "environment": describe_environment(registry.plugins),
    }


class _progress_bar:
    """Context manager yielding an ``advance(cell)`` callback; silent when disabled."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total
        self._progress = None

    def __enter__(self):
        if not self.enabled:
            return lambda cell: None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
        from rich.console import Console

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[cell]}"),
            console=Console(stderr=True), transient=False,
        )
        self._progress.__enter__()
        task = self._progress.add_task("sweep", total=self.total, cell="")

        def advance(cell: Cell) -> None:
            self._progress.update(task, advance=1, cell=f"{cell.denoiser} on {cell.image}")

        return advance

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False
