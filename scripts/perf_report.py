"""The suite's speed where it matters, measured in one invocation, as one table of ratios.

Each comparison is measured in this one run, on the same machine under the same load, so the
ratios hold on a shared, noisy machine where the seconds do not:

1. SSIM: the suite's metric (``bench.metrics.SSIM``) against scikit-image's
   ``structural_similarity`` with the same protocol, on a 2048x2048 float64 image
   (target: at least 10x faster).
2. Harness overhead of one cell: :meth:`bench.run.worker.CellRunner.run` of ``gaussian_blur``
   on scikit-image's 512x512 camera at Gaussian sigma 25 against its bare work, the denoise
   call plus the metrics of the output: ``(cell - (denoise + metrics)) / (denoise +
   metrics)`` (target: at most 5 %). The worker makes the noisy image once per noisy image,
   so repeated runs of one cell leave noise generation out, as in a sweep.
3. A sweep through ``bench run`` (planning, worker processes, records, report included)
   against ``scripts/plain_loop.py``, a plain serial loop doing the same work: Train400 x
   ``gaussian_blur`` x Gaussian sigma 15, 25, 50 x seeds 0, 1, 2 (3,600 cells), both timed
   from the outside as fresh processes (target: at most 0.4x the plain loop's wall time).
4. The ``process`` executor against ``serial`` on the same sweep through ``run_sweep``, no
   report, each run twice in the order serial, process, process, serial (target: a speed-up
   of at least 0.8 per worker).

Before and after, it measures how much more work ``--jobs`` busy processes get done than one
on this machine now: the most any executor could gain (less than ``--jobs`` when other users
load the machine).

When a target is missed (or with ``--profile always``) the bench side is profiled with
cProfile: ``run_sweep`` on a small sweep with each executor (the parent process only, for
``process``), and ``CellRunner.run`` of the cell of comparison 2; the top costs are printed
with file:line, by cumulative and by own time. A timeline of each executor (first result,
steady milliseconds per cell, time after the last result) shows the workers' start and end.

Usage::

    python scripts/perf_report.py                  # the full Train400 sweep
    python scripts/perf_report.py --images 100     # the first 100 images: 900 cells
    python scripts/perf_report.py --images 100 --profile never

Thread pools are pinned to one thread in this process, and the allocator keeps freed memory
(:func:`bench.memory.keep_freed_memory`), as in the suite's workers.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "Train400"
LEVELS = (15, 25, 50)
SEEDS = (0, 1, 2)
#: Per-worker efficiency the process executor should reach (speed-up >= this x workers).
PARALLEL_EFFICIENCY = 0.8


@dataclass
class Row:
    """One comparison: the bench side's value, the reference, their ratio and the target."""

    name: str
    value: str
    reference: str
    ratio: str
    target: str
    met: bool


# --- 1. SSIM ------------------------------------------------------------------------------
def compare_ssim(size: int, repeats: int) -> tuple[Row, str]:
    """The suite's SSIM against scikit-image's on a ``size`` x ``size`` gray image."""
    import skimage.data
    from skimage.metrics import structural_similarity
    from skimage.transform import resize

    from bench.metrics import SSIM

    clean = resize(skimage.data.camera() / 255.0, (size, size), order=1)
    rng = np.random.default_rng(0)
    estimate = np.clip(clean + rng.standard_normal(clean.shape) * 10 / 255, 0.0, 1.0)
    metric = SSIM()
    sides = {
        "suite": lambda: metric(clean, estimate),
        "skimage": lambda: structural_similarity(clean, estimate, data_range=1.0,
                                                 gaussian_weights=True, sigma=1.5,
                                                 use_sample_covariance=False),
    }
    seconds, values = {"suite": [], "skimage": []}, {}
    for repeat in range(repeats):  # interleaved, in alternating order: load changes hit both
        for side in sorted(sides, reverse=repeat % 2 == 1):
            start = time.perf_counter()
            values[side] = sides[side]()
            seconds[side].append(time.perf_counter() - start)
    ours, theirs = statistics.median(seconds["suite"]), statistics.median(seconds["skimage"])
    speedup = theirs / ours
    note = (f"SSIM {size}x{size}: suite {values['suite']:.8f}, scikit-image "
            f"{values['skimage']:.8f} (difference {abs(values['suite'] - values['skimage']):.1e}); "
            f"median of {repeats}")
    return Row(f"SSIM {size}x{size}, suite vs scikit-image", f"{ours:.3f} s", f"{theirs:.3f} s",
               f"{speedup:.1f}x faster", ">= 10x", speedup >= 10), note


# --- 2. One cell ---------------------------------------------------------------------------
def camera_cell():
    """The cell of comparison 2: gaussian_blur on the 512x512 camera, Gaussian sigma 25."""
    from bench.plan import Cell

    return Cell(dataset="skimage", image="camera", noise="gaussian", level=25.0,
                noise_params=(("clip", False),), seed=0, mode="oracle",
                denoiser="gaussian_blur", params=(), device="cpu")


def compare_cell(repeats: int) -> tuple[Row, str]:
    """One cell through the harness against the bare denoise call plus the metrics."""
    from bench.run.worker import CellRunner, WorkerConfig

    runner = CellRunner(WorkerConfig())
    cell = camera_cell()
    result = runner.run(cell)  # sets the denoiser up and makes the noisy image
    if result.record.status != "ok":
        raise SystemExit(f"the cell failed: {result.record.error}")
    scored = runner.noisy(cell)
    clean, noisy = scored.clean, scored.noisy
    denoiser = runner.denoiser(cell, noisy.image)
    reference = clean.astype(np.float64)  # once per image, as any loop would

    def bare() -> tuple[float, float]:
        start = time.perf_counter()
        output = denoiser.denoise(noisy.image, noisy.sigma, noise=noisy.model)
        middle = time.perf_counter()
        output = np.clip(output.astype(np.float64), 0.0, 1.0)
        for metric in runner.metrics.values():
            metric(reference, output)
        return middle - start, time.perf_counter() - middle

    def whole() -> float:
        start = time.perf_counter()
        runner.run(cell)
        return time.perf_counter() - start

    cells, calls, metrics = [], [], []
    for repeat in range(repeats):  # alternating order; each pair is measured back to back
        if repeat % 2:
            cells.append(whole())
        call, scoring = bare()
        calls.append(call)
        metrics.append(scoring)
        if not repeat % 2:
            cells.append(whole())
    bare_s = statistics.median(c + m for c, m in zip(calls, metrics))
    harness_s = statistics.median(w - c - m for w, c, m in zip(cells, calls, metrics))
    cell_s = bare_s + harness_s
    overhead = harness_s / bare_s
    size = f"{clean.shape[0]}x{clean.shape[1]}"
    note = (f"cell {size}: denoise call {1e3 * statistics.median(calls):.2f} ms, "
            f"metrics {1e3 * statistics.median(metrics):.2f} ms, the harness's own time "
            f"{1e3 * harness_s:.2f} ms (median of {repeats} paired differences; cell median "
            f"{1e3 * statistics.median(cells):.2f} ms)")
    return Row(f"cell overhead, gaussian_blur {size}", f"{1e3 * cell_s:.1f} ms",
               f"{1e3 * bare_s:.1f} ms", f"{100 * overhead:+.1f} %", "<= 5 %",
               overhead <= 0.05), note


# --- 3. bench run against the plain loop ----------------------------------------------------
def timed(command: list[str]) -> tuple[float, str]:
    """Run ``command``; return its wall time and its stdout (exit on failure)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def compare_sweep(data: Path, images: int | None, jobs: int, work: Path) -> tuple[Row, str]:
    """``bench run`` (report included) against the plain loop, both fresh processes."""
    from bench import load_results

    levels, seeds = ",".join(map(str, LEVELS)), ",".join(map(str, SEEDS))
    limit = [str(images)] if images else []
    plain_s, text = timed([sys.executable, str(ROOT / "scripts" / "plain_loop.py"), str(data),
                           "--levels", levels, "--seeds", seeds, "--json",
                           *(["--images", *limit] if limit else [])])
    plain = json.loads(text)
    bench = [sys.executable, "-m", "bench"]
    sweep = ["--dataset", f"folder:{data}", "--denoisers", "gaussian_blur", "--noises",
             f"gaussian:{levels}", "--seeds", seeds, *(["--limit", *limit] if limit else [])]
    run_dir = work / "bench-run"
    bench_s, _ = timed([*bench, "run", *sweep, "--jobs", str(jobs), "--out", str(run_dir)])
    planning_s, _ = timed([*bench, "run", *sweep, "--dry-run"])
    report_s, _ = timed([*bench, "report", str(run_dir)])
    results = load_results(run_dir)
    cells = len(results)
    if cells != plain["cells"] or not (results["status"] == "ok").all():
        raise SystemExit(f"bench run recorded {cells} cells ({(results['status'] != 'ok').sum()} "
                         f"not ok); the plain loop {plain['cells']}")
    means = results.groupby("level")["psnr"].mean()
    agreement = ", ".join(
        f"sigma {level:g}: {means[level]:.2f} / {plain['levels'][f'{level:g}']['psnr']:.2f}"
        for level in LEVELS)
    note = (f"sweep of {cells} cells: bench run {bench_s:.1f} s, of which about {planning_s:.1f} s "
            f"start-up and planning (bench run --dry-run) and {report_s:.1f} s tables and report "
            f"(bench report); mean PSNR bench / plain loop (dB): {agreement}")
    ratio = bench_s / plain_s
    return Row(f"sweep of {cells} cells, bench run ({jobs} workers, report) vs plain loop",
               f"{bench_s:.1f} s", f"{plain_s:.1f} s", f"{ratio:.2f}x the time", "<= 0.4x",
               ratio <= 0.4), note


# --- 4. process against serial ---------------------------------------------------------------
def gaussian_blur_sweep(data: Path, images: int | None, executor: str, jobs: int):
    """The sweep of comparisons 3 and 4: ``gaussian_blur`` x :data:`LEVELS` x :data:`SEEDS`."""
    from bench import DenoiserSpec, NoiseSpec, Sweep

    return Sweep(datasets=[f"folder:{data}"], limit=images, noises=[NoiseSpec("gaussian", LEVELS)],
                 denoisers=[DenoiserSpec("gaussian_blur")], seeds=list(SEEDS), executor=executor,
                 jobs=jobs)


def compare_executors(data: Path, images: int | None, jobs: int, work: Path) -> tuple[Row, str]:
    """``run_sweep`` with the ``process`` executor against ``serial``, no report: each twice,
    in the order serial, process, process, serial, so that a drift in the machine's load
    weighs on both sides alike; the mean of each side."""
    from bench import run_sweep

    seconds = {"serial": [], "process": []}
    for run, executor in enumerate(("serial", "process", "process", "serial")):
        workers = 1 if executor == "serial" else jobs
        start = time.perf_counter()
        results = run_sweep(gaussian_blur_sweep(data, images, executor, workers),
                            work / f"{executor}-{run}", progress=False)
        seconds[executor].append(time.perf_counter() - start)
        if not (results["status"] == "ok").all():
            raise SystemExit(f"{executor}: cells failed: {results['error'].unique()}")
    serial, process = statistics.mean(seconds["serial"]), statistics.mean(seconds["process"])
    speedup = serial / process
    target = PARALLEL_EFFICIENCY * jobs
    note = ("run_sweep seconds, in the order run: " + ", ".join(
        f"{executor} {seconds[executor][i]:.2f}"
        for executor, i in (("serial", 0), ("process", 0), ("process", 1), ("serial", 1))))
    return Row(f"run_sweep, process ({jobs} workers) vs serial, {len(results)} cells",
               f"{process:.1f} s", f"{serial:.1f} s", f"{speedup:.2f}x faster",
               f">= {target:.1f}x", speedup >= target), note


# --- The machine --------------------------------------------------------------------------
def _spin(seconds: float, queue) -> None:
    end, count = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        for _ in range(10_000):
            count += 1
    queue.put(count)


def parallel_ceiling(jobs: int, seconds: float = 2.0) -> float:
    """How much more pure-Python work ``jobs`` busy processes get done than one, now.

    The most any executor can gain at the machine's present load: ``jobs`` on an idle
    machine, less on a shared one.
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")

    def work(count: int) -> int:
        queue = context.Queue()
        processes = [context.Process(target=_spin, args=(seconds, queue)) for _ in range(count)]
        for process in processes:
            process.start()
        done = sum(queue.get() for _ in processes)
        for process in processes:
            process.join()
        return done

    return work(jobs) / work(1)


# --- Profiles -------------------------------------------------------------------------------
def where(filename: str) -> str:
    """A profiled function's file: relative to site-packages, the standard library or the
    repository."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    stdlib = sysconfig.get_paths()["stdlib"]
    if filename.startswith(stdlib):
        return "stdlib/" + os.path.relpath(filename, stdlib)
    if filename.startswith(str(ROOT)):
        return os.path.relpath(filename, ROOT)
    return filename


def print_top(profile: cProfile.Profile, title: str, count: int = 10) -> None:
    """The ``count`` costliest functions by cumulative and by own time, with file:line."""
    stats = pstats.Stats(profile).stats
    rows = [(cumulative, own, calls, f"{where(file)}:{line}({function})" if line else function)
            for (file, line, function), (_, calls, own, cumulative, _) in stats.items()]
    total = max(row[0] for row in rows)
    for label, key in (("cumulative", 0), ("own time", 1)):
        print(f"\n{title}: top {count} by {label} (total {total:.2f} s)")
        print(f"{'cumul s':>8} {'own s':>8} {'calls':>8}  function")
        for cumulative, own, calls, name in sorted(rows, key=lambda row: -row[key])[:count]:
            print(f"{cumulative:8.3f} {own:8.3f} {calls:8d}  {name}")


def executor_timeline(data: Path, images: int, jobs: int) -> None:
    """When each executor hands over its results: start-up, steady state and shut-down."""
    from bench.plan import make_plan
    from bench.run.executors import execute
    from bench.run.runner import worker_config

    print(f"\nexecutors on {images} images x {len(LEVELS)} levels x {len(SEEDS)} seeds "
          "(through bench.run.executors.execute, nothing recorded)")
    print(f"{'executor':>10} {'workers':>7} {'first result s':>14} {'steady ms/cell':>14} "
          f"{'after last s':>12} {'total s':>8}")
    for executor, workers in (("serial", 1), ("process", 1), ("process", jobs)):
        plan = make_plan(gaussian_blur_sweep(data, images, executor, workers))
        stamps = []
        start = time.perf_counter()
        execute(executor, plan.groups(), worker_config(plan, None),
                lambda cell, result: stamps.append(time.perf_counter()), lambda *lost: None,
                jobs=workers, timeout=600)
        end = time.perf_counter()
        skip = len(stamps) // 10  # the first results include the workers' start
        steady = (stamps[-1] - stamps[skip]) / (len(stamps) - 1 - skip)
        print(f"{executor:>10} {workers:7d} {stamps[0] - start:14.2f} {1e3 * steady:14.2f} "
              f"{end - stamps[-1]:12.2f} {end - start:8.2f}")


def profile_bench(data: Path, images: int, jobs: int, work: Path, repeats: int) -> None:
    """cProfile of ``run_sweep`` with each executor and of ``CellRunner.run`` for one cell."""
    from bench import run_sweep
    from bench.run.worker import CellRunner, WorkerConfig

    for executor, workers in (("serial", 1), ("process", jobs)):
        sweep = gaussian_blur_sweep(data, images, executor, workers)
        profile = cProfile.Profile()
        profile.runcall(run_sweep, sweep, work / f"profile-{executor}", progress=False)
        side = " (parent process)" if executor == "process" else ""
        print_top(profile, f"run_sweep, {executor}{side}, {images} images x {len(LEVELS)} levels "
                           f"x {len(SEEDS)} seeds")
    executor_timeline(data, images, jobs)
    runner = CellRunner(WorkerConfig())
    cell = camera_cell()
    runner.run(cell)
    profile = cProfile.Profile()
    profile.runcall(lambda: [runner.run(cell) for _ in range(repeats)])
    print_top(profile, f"CellRunner.run, gaussian_blur 512x512, {repeats} runs")


# --- Report ----------------------------------------------------------------------------------
def print_table(rows: list[Row]) -> None:
    headers = ("comparison", "value", "reference", "ratio", "target", "met")
    cells = [headers] + [(r.name, r.value, r.reference, r.ratio, r.target, "yes" if r.met else "NO")
                         for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(text.ljust(width) if i == 0 else text.rjust(width)
                        for i, (text, width) in enumerate(zip(row, widths))))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main(argv: list[str] | None = None) -> None:
    from bench.run.executors import default_jobs
    from bench.memory import keep_freed_memory
    from bench.run.worker import pin_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"image folder of the sweeps (default {DEFAULT_DATA})")
    parser.add_argument("--images", type=int, default=None, metavar="N",
                        help="only the first N images of the folder (default: all)")
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help="worker processes of the process executor (default: the CPUs)")
    parser.add_argument("--ssim-size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=40,
                        help="interleaved runs of the cell comparison (default 40)")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="profile the bench side: when a target is missed (auto), "
                             "always, never")
    parser.add_argument("--profile-images", type=int, default=20,
                        help="images of the profiled sweeps (default 20)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"no folder {args.data}: give --data")
    pin_threads(1)
    keep_freed_memory()  # as a worker does: both sides of comparisons 1 and 2 run here
    print(f"{os.cpu_count()} CPUs, {args.jobs} workers, load average at start "
          f"{os.getloadavg()[0]:.1f}; thread pools pinned to 1 thread, allocator as in "
          "the workers", flush=True)

    ceilings = [parallel_ceiling(args.jobs)]
    start = time.perf_counter()
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for step, measure in (
                ("SSIM", lambda: compare_ssim(args.ssim_size, 5)),
                ("cell", lambda: compare_cell(args.repeats)),
                ("sweep", lambda: compare_sweep(args.data, args.images, args.jobs, work)),
                ("executors", lambda: compare_executors(args.data, args.images, args.jobs, work))):
            print(f"measuring: {step} ...", file=sys.stderr, flush=True)
            row, note = measure()
            rows.append(row)
            if note:
                notes.append(note)
        elapsed = time.perf_counter() - start
        ceilings.append(parallel_ceiling(args.jobs))
        print(f"\nmeasured in {elapsed:.0f} s, load average at end {os.getloadavg()[0]:.1f}; "
              f"{args.jobs} busy processes did {ceilings[0]:.2f}x (before) and {ceilings[1]:.2f}x "
              f"(after) the work of one: the most any executor could gain here\n")
        print_table(rows)
        print()
        for note in notes:
            print(note)
        if args.profile == "always" or (args.profile == "auto" and not all(r.met for r in rows)):
            profile_bench(args.data, args.profile_images, args.jobs, work, args.repeats)


if __name__ == "__main__":
    main()
