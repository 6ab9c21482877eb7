"""Run a sweep: check it, list its cells, run them on an executor, record each as it finishes.

:func:`run_sweep` is the Python entry point; the command line is a thin layer over it.
Re-running a sweep into a directory that already holds results resumes it: cells already
recorded are skipped. A sweep whose configuration would mix incompatible results with those
already there is refused.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from bench.store.artifacts import ArtifactWriter, crop_key
from bench.datasets import LoadedDataset, load_dataset
from bench.devices import resolve_device
from bench.store.environment import describe_environment
from bench.errors import InvalidParameterError, ResumeError
from bench.run.executors import check_executor, default_jobs, run_dask, run_process, run_serial
from bench.registry import BUILTIN, Registry
from bench.store.results import SCHEMA_VERSION, RunStore, latest_records, load_manifest, read_records
from bench.sweep import MODES, TIMINGS, Cell, DenoiserSpec, Sweep
from bench.run.worker import CellResult, WorkerConfig, build_registry


@dataclass
class Plan:
    """A validated sweep: loaded datasets, resolved device and the cells to run."""

    sweep: Sweep
    devices: list[str]
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
    registry = registry or build_registry(None)
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
    if sweep.timing not in TIMINGS:
        raise InvalidParameterError(f"unknown timing '{sweep.timing}'; use parallel or exclusive")
    if not sweep.timeout > 0:
        raise InvalidParameterError(f"timeout must be positive, got {sweep.timeout}")
    if not sweep.seeds:
        raise InvalidParameterError("the sweep has no seed")
    check_executor(sweep.executor)
    wants_gpu = any("cuda" in cls.devices for cls in classes.values())
    devices = list(dict.fromkeys(resolve_device(d.strip(), wants_gpu) for d in sweep.device.split(",")))

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
    # A denoiser runs on each requested device it supports; one that supports none (every
    # classical method, when only cuda is asked for) runs on the CPU.
    runs_on = {spec.name: [d for d in devices if d in classes[spec.name].devices] or ["cpu"]
               for spec in denoisers}
    cells = []
    for spec, loaded in datasets.items():
        for image in loaded.images:
            for noise_name, levels, noise_params in noises:
                for level in levels:
                    for seed in sweep.seeds:
                        for mode in sweep.modes:
                            for den in denoisers:
                                for device in runs_on[den.name]:
                                    cells.append(Cell(spec, image, noise_name, level,
                                                      noise_params, int(seed), mode, den.name,
                                                      den.params, device))
    return Plan(sweep, devices, datasets, denoisers, cells)


def cell_id(cell: Cell) -> str:
    """A stable identifier of a cell, the key for resuming."""
    text = json.dumps([cell.dataset, cell.image, cell.noise, cell.level, cell.noise_params,
                       cell.seed, cell.mode, cell.denoiser, cell.params, cell.device], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def lost_row(cell: Cell, shape: tuple[int, ...], status: str, reason: str) -> dict:
    """The row of a cell that produced no result (its worker failed, timed out or died)."""
    return {
        "dataset": cell.dataset, "image": cell.image, "height": shape[0], "width": shape[1],
        "channels": 1 if len(shape) == 2 else shape[2], "noise": cell.noise, "level": cell.level,
        "noise_params": json.dumps(dict(cell.noise_params)), "seed": cell.seed,
        "mode": cell.mode, "sigma_used": math.nan, "denoiser": cell.denoiser,
        "params": json.dumps(dict(cell.params), default=str), "device": cell.device,
        "psnr": math.nan, "ssim": math.nan, "noisy_psnr": math.nan, "noisy_ssim": math.nan,
        "seconds": math.nan, "mpix_per_s": math.nan, "status": status, "error": reason,
    }


def default_run_dir() -> Path:
    """``runs/<UTC timestamp>/`` under the working directory."""
    return Path("runs") / _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def visual_images(loaded: LoadedDataset, count: int) -> list[str]:
    """Images whose crops a run keeps: the first grayscale and first colour ones, then the rest."""
    names = list(loaded.images)
    first_of_kind: dict[int, str] = {}
    for name in names:
        first_of_kind.setdefault(loaded.images[name].ndim, name)
    ordered = list(first_of_kind.values()) + [n for n in names if n not in first_of_kind.values()]
    return ordered[:count]


def group_by_noisy_image(cells: list[Cell]) -> list[list[Cell]]:
    """Cells that share a noisy image, together and in plan order: a worker makes it once."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.noise_key(), []).append(cell)
    return list(groups.values())


class _Recorder:
    """Turns results into records, crops and progress, in the main process."""

    def __init__(self, the_plan: Plan, store: RunStore, advance, workers: int, timing: str):
        self.plan, self.store, self.advance = the_plan, store, advance
        self.workers, self.timing = workers, timing
        self.artifacts = ArtifactWriter(store.run_dir)
        self.crops_done: set[tuple[str, str]] = set()

    def shape(self, cell: Cell) -> tuple[int, ...]:
        return self.plan.datasets[cell.dataset].images[cell.image].shape

    def result(self, cell: Cell, result: CellResult | str) -> None:
        if isinstance(result, str):  # failed outside the denoiser
            self.lost(cell, "failed", result)
            return
        row = dict(result.row, workers=self.workers, timing=self.timing, cell_id=cell_id(cell),
                   method=cell.method)
        self.store.append(row)
        self._store_images(cell, row, result.images)
        self.advance(cell)

    def lost(self, cell: Cell, status: str, reason: str) -> None:
        row = dict(lost_row(cell, self.shape(cell), status, reason), workers=self.workers,
                   timing=self.timing, cell_id=cell_id(cell), method=cell.method)
        self.store.append(row)
        self.advance(cell)

    def _store_images(self, cell: Cell, row: dict, images: dict[str, bytes]) -> None:
        if "output" in images:
            self.artifacts.output(cell, images["output"])
        if "clean" not in images:
            return
        key = crop_key(cell.dataset, cell.image, cell.noise, cell.level, cell.seed, cell.mode)
        record = {"dataset": cell.dataset, "image": cell.image, "noise": cell.noise,
                  "level": cell.level, "seed": cell.seed, "mode": cell.mode}
        for role, psnr in (("clean", math.inf), ("noisy", row["noisy_psnr"])):
            if (key, role) not in self.crops_done:
                self.crops_done.add((key, role))
                self.artifacts.crop(key, role, images[role], dict(record, psnr=psnr))
        if "denoised" in images:
            self.artifacts.crop(key, cell.method, images["denoised"],
                                dict(record, psnr=row["psnr"], denoiser=cell.denoiser,
                                     device=cell.device))


def run_sweep(sweep: Sweep, out_dir: str | Path | None = None, *,
              registry_factory: str | None = None, progress: bool = True) -> pd.DataFrame:
    """Run every cell of ``sweep`` that ``out_dir`` does not hold yet; return the results table.

    Parameters
    ----------
    sweep : Sweep
        What to run, and how (executor, jobs, timeout, timing).
    out_dir : str or Path, optional
        Run directory (``runs/<timestamp>/`` when omitted). If it already holds results of a
        compatible sweep, their cells are skipped (resume); an incompatible one is refused
        with :class:`bench.errors.ResumeError`.
    registry_factory : str, optional
        ``"module:function"`` returning the registry to use, in this process and in every
        worker; the default registry (built-ins and installed plugins) when omitted.
    progress : bool
        Show a rich progress bar on the terminal.

    Returns
    -------
    pandas.DataFrame
        One row per cell (those run now and those recorded before), with the columns of
        :data:`bench.store.results.COLUMNS`. Failed cells have ``status`` ``"failed"`` or
        ``"timeout"`` and the reason in ``error``; the run goes on past them.
    """
    registry = build_registry(registry_factory)
    the_plan = plan(sweep, registry)
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir()
    manifest = build_manifest(the_plan, registry)
    previous = load_manifest(run_dir)
    if previous:
        check_resumable(previous, manifest, run_dir)
        manifest["created"] = previous.get("created", manifest["created"])
        manifest["resumed"] = previous.get("resumed", []) + [_now()]
    done = set(read_records(run_dir)["cell_id"]) if previous else set()
    todo = [cell for cell in the_plan.cells if cell_id(cell) not in done]

    jobs = 1 if sweep.executor == "serial" else (sweep.jobs or default_jobs())
    config = WorkerConfig(
        crop=sweep.crop, repeats=sweep.repeats, round8=sweep.round8,
        visual=frozenset((spec, image) for spec, loaded in the_plan.datasets.items()
                         for image in visual_images(loaded, sweep.visual_images)),
        visual_seed=sweep.seeds[0], visual_size=sweep.visual_size,
        save_outputs=sweep.save_outputs, registry_factory=registry_factory, workers=jobs,
    )
    store = RunStore(run_dir)
    store.write_manifest(manifest)
    groups = group_by_noisy_image(todo)
    try:
        with _progress_bar(progress, len(todo), len(done)) as advance:
            recorder = _Recorder(the_plan, store, advance, jobs, "parallel" if jobs > 1 else "exclusive")
            _execute(sweep, groups, config, recorder, jobs, registry if registry_factory is None else None)
        if sweep.timing == "exclusive" and jobs > 1:
            retime(the_plan, store, sweep, config, progress)
    finally:
        store.close()
    return store.finish(order=[cell_id(cell) for cell in the_plan.cells])


def _execute(sweep: Sweep, groups, config: WorkerConfig, recorder: _Recorder, jobs: int,
             registry) -> None:
    if sweep.executor == "serial":
        run_serial(groups, config, recorder.result, registry)
    elif sweep.executor == "process":
        run_process(groups, config, recorder.result, recorder.lost, jobs=jobs, timeout=sweep.timeout)
    else:
        run_dask(groups, config, recorder.result, recorder.lost, jobs=jobs, timeout=sweep.timeout,
                 scheduler=sweep.scheduler)


def retime(the_plan: Plan, store: RunStore, sweep: Sweep, config: WorkerConfig,
           progress: bool) -> None:
    """Time every ``ok`` cell again, one at a time on one worker, for publishable MP/s.

    The quality figures are kept from the parallel run (the methods are deterministic); the
    new records replace ``seconds``, ``mpix_per_s``, ``workers`` and ``timing``.
    """
    records = latest_records(store.run_dir)
    cells = [cell for cell in the_plan.cells
             if records.get(cell_id(cell), {}).get("status") == "ok"]
    solo = replace(config, workers=1, visual=frozenset(), save_outputs=False)

    def on_result(cell: Cell, result) -> None:
        if isinstance(result, str) or result.row["status"] != "ok":
            return  # keep the parallel record
        row = dict(records[cell_id(cell)])
        row.update(seconds=result.row["seconds"],
                   mpix_per_s=result.row["mpix_per_s"], workers=1, timing="exclusive")
        store.append(row)
        advance(cell)

    with _progress_bar(progress, len(cells), 0, "exclusive timing") as advance:
        if sweep.executor == "serial":
            run_serial(group_by_noisy_image(cells), solo, on_result)
        else:
            run_process(group_by_noisy_image(cells), solo, on_result, lambda *a: None,
                        jobs=1, timeout=sweep.timeout)


#: Settings that change what a cell's numbers mean; resuming with other values is refused.
RESUME_KEYS = ("crop", "round8", "repeats")


def check_resumable(previous: dict, current: dict, run_dir: Path) -> None:
    """Refuse to resume ``run_dir`` with a sweep whose results would not be comparable.

    Adding images, noises, levels, seeds, modes or denoisers is fine. Changing the crop, the
    8-bit rounding, the repeats, a dataset's content, or the parameters of a denoiser or noise
    already in the run is not.
    """
    if previous.get("schema_version") != current["schema_version"]:
        raise ResumeError(f"run directory '{run_dir}' has results schema "
                          f"{previous.get('schema_version')}, this suite writes {current['schema_version']}")
    old, new = previous.get("sweep", {}), current["sweep"]
    for key in RESUME_KEYS:
        if old.get(key) != new.get(key):
            raise ResumeError(f"run directory '{run_dir}' was run with {key}={old.get(key)!r}, "
                              f"not {new.get(key)!r}; use another --out")
    for spec, info in current["datasets"].items():
        before = previous.get("datasets", {}).get(spec)
        if before and before["sha256"] != info["sha256"]:
            raise ResumeError(f"run directory '{run_dir}': the images of dataset '{spec}' changed "
                              "since it was run; use another --out")
    for kind in ("denoiser_params", "noise_params"):
        for name, params in current[kind].items():
            before = previous.get(kind, {}).get(name)
            if before is not None and before != params:
                raise ResumeError(f"run directory '{run_dir}': {kind.split('_')[0]} '{name}' was run "
                                  f"with parameters {before}, not {params}; use another --out")


def build_manifest(the_plan: Plan, registry: Registry) -> dict:
    """The run's manifest: schema, configuration, environment, dataset hashes."""
    return {
        "schema_version": SCHEMA_VERSION,
        "created": _now(),
        "sweep": the_plan.sweep.to_dict(),
        "device": ",".join(the_plan.devices),
        "cells": len(the_plan.cells),
        "denoiser_origins": {spec.name: registry.get("denoiser", spec.name).origin
                             for spec in the_plan.denoisers},
        "denoiser_params": {spec.name: dict(spec.params) for spec in the_plan.denoisers},
        "noise_params": {cell.noise: dict(cell.noise_params) for cell in the_plan.cells},
        "datasets": {
            spec: {"images": len(loaded.images), "sha256": loaded.content_hash}
            for spec, loaded in the_plan.datasets.items()
        },
        "environment": describe_environment(registry.plugins),
    }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class _progress_bar:
    """Context manager yielding an ``advance(cell)`` callback; silent when disabled."""

    def __init__(self, enabled: bool, total: int, done: int, title: str = "sweep"):
        self.enabled, self.total, self.done, self.title = enabled, total, done, title
        self._progress = None

    def __enter__(self):
        if not self.enabled:
            return lambda cell: None
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[cell]}"),
            console=Console(stderr=True), transient=False,
        )
        self._progress.__enter__()
        note = f"{self.title} ({self.done} done before)" if self.done else self.title
        task = self._progress.add_task(note, total=self.total, cell="")

        def advance(cell: Cell) -> None:
            self._progress.update(task, advance=1, cell=f"{cell.denoiser} on {cell.image}")

        return advance

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False
