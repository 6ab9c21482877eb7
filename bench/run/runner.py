"""Run a sweep: plan it, open its run directory, execute its cells, record each, finish.

:func:`run_sweep` is the Python entry point; the command line is a thin layer over it.
Re-running a sweep into a directory that already holds results resumes it: cells already
recorded are skipped. A sweep whose configuration would mix incompatible results with those
already there is refused (:func:`bench.store.manifest.check_resumable`).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import replace
from pathlib import Path

import pandas as pd

from bench.plan import Cell, Plan, make_plan
from bench.progress import ProgressBar
from bench.registry import build_registry
from bench.run.executors import default_jobs, execute
from bench.run.worker import CellResult, WorkerConfig
from bench.store.artifacts import ArtifactWriter, crop_key
from bench.store.manifest import build_manifest, check_resumable, now
from bench.store.results import CellRecord, RunStore, latest_records, load_manifest, read_records
from bench.sweep import Sweep


def default_run_dir() -> Path:
    """``runs/<UTC timestamp>/`` under the working directory."""
    return Path("runs") / _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def visual_images(loaded, count: int) -> list[str]:
    """Images whose crops a run keeps: the first grayscale and first colour ones, then the rest."""
    names = list(loaded.images)
    first_of_kind: dict[int, str] = {}
    for name in names:
        first_of_kind.setdefault(loaded.images[name].ndim, name)
    ordered = list(first_of_kind.values()) + [n for n in names if n not in first_of_kind.values()]
    return ordered[:count]


class Recorder:
    """Files each finished cell's record and crops, and advances the progress bar."""

    def __init__(self, plan: Plan, store: RunStore, advance, config: WorkerConfig):
        self.plan, self.store, self.advance, self.config = plan, store, advance, config
        self.artifacts = ArtifactWriter(store.run_dir)
        self.crops_done: set[tuple[str, str]] = set()

    def result(self, cell: Cell, result: CellResult | str) -> None:
        """A cell that ran (or failed outside the denoiser, with the reason as a string)."""
        if isinstance(result, str):
            self.lost(cell, "failed", result)
            return
        self.store.append(result.record)
        self._store_images(cell, result.record, result.images)
        self.advance(cell)

    def lost(self, cell: Cell, status: str, reason: str) -> None:
        """A cell whose worker timed out or died."""
        self.store.append(CellRecord.lost(cell, self.plan.shape(cell), self.plan.metrics, status,
                                          reason, workers=self.config.workers,
                                          timing=self.config.timing,
                                          protocol=self.config.protocol.label))
        self.advance(cell)

    def _store_images(self, cell: Cell, record: CellRecord, images: dict[str, bytes]) -> None:
        if "output" in images:
            self.artifacts.output(cell, images["output"])
        if "clean" not in images:
            return
        key = crop_key(cell.dataset, cell.image, cell.noise, cell.level, cell.seed, cell.mode)
        about = {"dataset": cell.dataset, "image": cell.image, "noise": cell.noise,
                 "level": cell.level, "seed": cell.seed, "mode": cell.mode}
        for role, scores in (("clean", {}), ("noisy", record.noisy_scores)):
            if (key, role) not in self.crops_done:
                self.crops_done.add((key, role))
                self.artifacts.crop(key, role, images[role], dict(about, **scores))
        if "denoised" in images:
            self.artifacts.crop(key, cell.method, images["denoised"],
                                dict(about, **record.scores, denoiser=cell.denoiser,
                                     device=cell.device))


def worker_config(plan: Plan, registry_factory: str | None) -> WorkerConfig:
    """What every worker of ``plan``'s sweep needs besides its cells."""
    sweep = plan.sweep
    jobs = 1 if sweep.executor == "serial" else (sweep.jobs or default_jobs())
    return WorkerConfig(
        crop=sweep.crop, repeats=sweep.repeats, protocol=sweep.resolved_protocol(),
        metrics=tuple(plan.metrics),
        visual=frozenset((spec, image) for spec, loaded in plan.datasets.items()
                         for image in visual_images(loaded, sweep.visual_images)),
        visual_seed=sweep.seeds[0], visual_size=sweep.visual_size,
        save_outputs=sweep.save_outputs, registry_factory=registry_factory, workers=jobs,
        timing="parallel" if jobs > 1 else "exclusive",
    )


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
        with :class:`bench.errors.ResumeError`; one that another run is writing, with
        :class:`bench.errors.BenchError`.
    registry_factory : str, optional
        ``"module:function"`` returning the registry to use, in this process and in every
        worker; the default registry (built-ins and installed plugins) when omitted.
    progress : bool
        Show a rich progress bar on the terminal.

    Returns
    -------
    pandas.DataFrame
        One row per cell (those run now and those recorded before), with the columns of
        :func:`bench.store.results.columns`. Failed cells have ``status`` ``"failed"`` or
        ``"timeout"`` and the reason in ``error``; the run goes on past them.
    """
    registry = build_registry(registry_factory)
    plan = make_plan(sweep, registry)
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir()
    manifest = build_manifest(plan, registry)
    config = worker_config(plan, registry_factory)
    store = RunStore(run_dir)
    try:
        previous = load_manifest(run_dir)
        if previous:
            check_resumable(previous, manifest, run_dir)
            manifest["created"] = previous.get("created", manifest["created"])
            manifest["resumed"] = previous.get("resumed", []) + [now()]
        done = set(read_records(run_dir)["cell_id"]) if previous else set()
        todo = [cell for cell in plan.cells if cell.id not in done]
        store.write_manifest(manifest)
        local = registry if registry_factory is None else None
        with ProgressBar(progress, len(todo), len(done)) as advance:
            recorder = Recorder(plan, store, advance, config)
            execute(sweep.executor, plan.groups(todo), config, recorder.result, recorder.lost,
                    jobs=config.workers, timeout=sweep.timeout, scheduler=sweep.scheduler,
                    registry=local)
        if sweep.timing == "exclusive" and config.workers > 1:
            missed = retime(plan, store, config, progress, local)
            if missed:
                manifest["exclusive_timing_missed"] = missed
                store.write_manifest(manifest)
        return store.finish(order=[cell.id for cell in plan.cells])
    finally:
        store.close()  # on any failure: the records stay, the lock is released


def retime(plan: Plan, store: RunStore, config: WorkerConfig, progress: bool,
           registry=None) -> dict[str, str]:
    """Time every ``ok`` cell again, one at a time on one worker, for publishable MP/s.

    Runs on the sweep's own executor. The quality figures are kept from the parallel run (the
    methods are deterministic); the new records replace ``seconds``, ``mpix_per_s``,
    ``workers`` and ``timing``. A cell whose re-timing fails or times out keeps its parallel
    record.

    Returns
    -------
    dict
        Cell id -> reason, for the cells whose exclusive timing was not taken.
    """
    sweep = plan.sweep
    records = latest_records(store.run_dir)
    cells = [cell for cell in plan.cells if records.get(cell.id, {}).get("status") == "ok"]
    solo = replace(config, workers=1, timing="exclusive", visual=frozenset(), save_outputs=False)
    missed: dict[str, str] = {}

    def on_result(cell: Cell, result) -> None:
        if isinstance(result, str) or result.record.status != "ok":
            missed[cell.id] = result if isinstance(result, str) else result.record.error
        else:
            record = CellRecord.from_row(records[cell.id])
            record.seconds, record.mpix_per_s = result.record.seconds, result.record.mpix_per_s
            record.workers, record.timing = 1, "exclusive"
            store.append(record)
        advance(cell)

    def on_lost(cell: Cell, status: str, reason: str) -> None:
        missed[cell.id] = f"{status}: {reason}"
        advance(cell)

    with ProgressBar(progress, len(cells), 0, "exclusive timing") as advance:
        execute(sweep.executor, plan.groups(cells), solo, on_result, on_lost, jobs=1,
                timeout=sweep.timeout, scheduler=sweep.scheduler, registry=registry)
    return missed
