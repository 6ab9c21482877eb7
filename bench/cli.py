"""The ``bench`` command: a thin layer that parses, calls the library and prints.

Every expected failure is a :class:`bench.errors.BenchError`, printed as one red line with
exit status 2; ``--debug`` shows the traceback instead. A sweep whose cells partly failed
exits with status 1 after writing everything it measured.
"""

from __future__ import annotations

import sys
from pathlib import Path
import click
from rich.console import Console
from rich.markup import escape

from bench.errors import EXIT_FAILED_CELLS, EXIT_USAGE, BenchError, InvalidParameterError

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long
_state = {"debug": False}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
def app(debug: bool) -> None:
    """denoise-bench: compare classical and learned image denoisers."""
    _state["debug"] = debug


def _split(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _ints(text: str, option: str) -> list[int]:
    try:
        return [int(v) for v in _split(text)]
    except ValueError:
        raise InvalidParameterError(f"{option} takes integers separated by commas, got '{text}'") from None


@app.command("run")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="A TOML sweep file; flags given here override it.")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), help="Finish the sweep recorded in this run directory.")
@click.option("--denoisers", help='Comma-separated denoisers, with parameters as results print them: "nlm(h_factor=0.7),bm3d(vst=gat)" (default: every installed built-in).')
@click.option("--noises", multiple=True, help="NAME[:LEVEL,LEVEL...][:KEY=VALUE,...]; repeat for several noises.")
@click.option("--dataset", multiple=True, help="skimage, folder:PATH or a plugin dataset; repeatable.")
@click.option("--seeds", help="Comma-separated noise seeds, e.g. 0,1,2.")
@click.option("--mode", help="oracle, blind or oracle,blind.")
@click.option("--device", help="cpu, cuda, auto, or cpu,cuda to measure both: where learned denoisers run.")
@click.option("--repeats", type=click.IntRange(min=1), help="Timed calls per cell; the median is kept.")
@click.option("--crop", type=int, help="Central crop side in pixels.")
@click.option("--limit", type=click.IntRange(min=1), help="Images per dataset.")
@click.option("--protocol", help="Protocol preset: default, dncnn-paper or kair-clip (docs/protocols.md).")
@click.option("--quantise-input", is_flag=True, default=None, help="Clip and round the noisy input to 8 bits before the denoiser.")
@click.option("--round8", is_flag=True, default=None, help="Round outputs to 8 bits before scoring.")
@click.option("--border", type=click.IntRange(min=0), help="Pixels shaved from each side before scoring.")
@click.option("--metrics", help="Comma-separated metrics, the primary one first (default psnr,ssim).")
@click.option("--executor", type=click.Choice(["process", "serial", "dask"]), help="Where cells run (default process).")
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes (default: one per CPU).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds a cell may take before it is stopped (default 600).")
@click.option("--timing", type=click.Choice(["parallel", "exclusive"]), help="exclusive: time every cell again alone, after the sweep.")
@click.option("--scheduler", help="Address of a running Dask scheduler (implies --executor dask).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default runs/<timestamp>).")
@click.option("--save-outputs", is_flag=True, default=None, help="Also write every denoised image as a PNG.")
@click.option("--params", type=click.Path(path_type=Path), help="A tuned.toml from bench tune: per-level parameters, the method labelled NAME(tuned).")
@click.option("--allow-tuned-on-test", is_flag=True, default=None, help="Run even when the test images overlap the images --params was tuned on.")
@click.option("--quick", is_flag=True, help="A smoke sweep of a few seconds.")
@click.option("--dry-run", is_flag=True, help="List the cells and exit.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--baseline", help="Method the tables show paired differences to (default: the best of each level).")
def run_command(config_file, resume_dir, out, quick, dry_run, quiet, baseline, **flags):
    """Run a sweep and print the comparison table."""
    from bench.plan import make_plan
    from bench.run.runner import default_run_dir, run_sweep

    if resume_dir is not None:
        if out is not None and Path(out) != Path(resume_dir):
            raise InvalidParameterError("--resume and --out name different directories")
        out = resume_dir
    sweep = build_sweep(flags, config_file=config_file, resume_dir=resume_dir, quick=quick)
    if dry_run:
        plan = make_plan(sweep)
        for cell in plan.cells:
            console.print(f"{cell.dataset}/{cell.image} {cell.noise}:{cell.level:g} seed {cell.seed} "
                          f"{cell.mode} {cell.denoiser} on {cell.device}", highlight=False)
        console.print(f"{len(plan.cells)} cells")
        return
    run_dir = out if out is not None else default_run_dir()
    results = run_sweep(sweep, run_dir, progress=not quiet)
    _show_and_report(run_dir, results, baseline=baseline, footer=(
        f"{len(results)} cells, {int((results['status'] != 'ok').sum())} failed. "
        f"Results: {run_dir}/results.parquet"))
    failed = int((results["status"] != "ok").sum())
    if failed:
        for _, row in results[results["status"] != "ok"].drop_duplicates("denoiser").iterrows():
            errors.print(f"[red]{escape(row['denoiser'])}[/red] {row['status']}: {escape(row['error'])}",
                         highlight=False)
        raise click.exceptions.Exit(EXIT_FAILED_CELLS)


def build_sweep(flags: dict, *, config_file=None, resume_dir=None, quick=False):
    """The sweep to run: a resumed run's, a sweep file's or a built-in one, then the flags.

    A flag the user gave always wins.
    """
    from bench.config import load_sweep_file, sweep_from_dict
    from bench.store.results import load_manifest
    from bench.sweep import (DenoiserSpec, NoiseSpec, default_sweep, quick_sweep,
                             split_outside_parentheses)
    from bench.tune.tuned import load_params_file

    if resume_dir is not None:
        manifest = load_manifest(resume_dir)
        if not manifest:
            raise InvalidParameterError(f"--resume: '{resume_dir}' holds no manifest.json to resume")
        sweep = sweep_from_dict(manifest["sweep"], f"{resume_dir}/manifest.json")
    elif config_file is not None:
        sweep = load_sweep_file(config_file)
    else:
        make = quick_sweep if quick else default_sweep
        sweep = make(list(flags["dataset"]) or None)
    converters = {
        "dataset": ("datasets", list),
        "noises": ("noises", lambda v: [NoiseSpec.parse(text) for text in v]),
        "denoisers": ("denoisers", lambda v: [DenoiserSpec.parse(item)
                                              for item in split_outside_parentheses(v)]),
        "seeds": ("seeds", lambda v: _ints(v, "--seeds")),
        "mode": ("modes", _split),
        "metrics": ("metrics", _split),
        "params": ("tuned", load_params_file),
    }
    for flag, value in flags.items():
        if value is None or value == ():
            continue
        field, convert = converters.get(flag, (flag, lambda v: v))
        setattr(sweep, field, convert(value))
    if flags.get("scheduler") and not flags.get("executor"):
        sweep.executor = "dask"
    return sweep


@app.command("list")
def list_command():
    """Show every registered denoiser, noise and dataset, and whether it can be used."""
    from rich.table import Table

    from bench.registry import KINDS, default_registry

    registry = default_registry()
    for kind in KINDS:
        table = Table(title=f"{kind}s", title_justify="left")
        for column in ("name", "summary", "from", "available"):
            table.add_column(column)
        for entry in registry.entries(kind):
            reason = entry.unavailable_reason()
            table.add_row(escape(entry.name), escape(entry.summary), escape(entry.origin),
                          "[green]yes[/green]" if reason is None else f"[red]no[/red]: {escape(reason)}")
        console.print(table)
    for problem in registry.plugin_errors:
        errors.print(f"[yellow]warning:[/yellow] {escape(problem)}", highlight=False)


@app.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--baseline", help="Method the tables show paired differences to (default: the best of each level).")
def report_command(run_dir, baseline):
    """Print the comparison tables of a saved run and write its report.html and report.md."""
    from bench.store.results import load_results

    results = load_results(run_dir)
    if results.empty:
        raise BenchError(f"run directory '{run_dir}' has no results yet")
    _show_and_report(run_dir, results, baseline=baseline)


def _show_and_report(run_dir: Path, results, *, baseline: str | None, footer: str = "") -> None:
    """Print the comparison tables of ``results`` and write the run's report, from one
    summary of the results."""
    from reports.build import summarise_run, write_report
    from reports.tables import render_comparison

    summary = summarise_run(results, baseline=baseline)
    render_comparison(results, console, summary=summary)
    if footer:
        console.print(footer)
    files = write_report(run_dir, summary=summary)
    console.print(f"Report: {files.html}\nMarkdown: {files.markdown}", highlight=False)


@app.command("compare")
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--fail-on-regression", is_flag=True,
              help="Exit with status 1 when a quality regression is flagged.")
@click.option("--baseline", help="Also show each method's paired difference to this method in A and in B.")
def compare_command(run_a, run_b, fail_on_regression, baseline):
    """Compare run B against baseline run A on the cells they share."""
    from bench.store.results import load_results
    from reports.compare import EXIT_REGRESSION, compare
    from reports.tables import render_run_comparison

    table = compare(load_results(run_a), load_results(run_b), baseline=baseline)
    render_run_comparison(table, console, names=(str(run_a), str(run_b)),
                          show_reference=baseline is not None)
    flagged = table[table["status"] == "regression"]
    if fail_on_regression and len(flagged):
        errors.print(f"[red]{len(flagged)} regression(s)[/red]: "
                     + escape(", ".join(sorted(flagged["method"].unique()))), highlight=False)
        raise click.exceptions.Exit(EXIT_REGRESSION)


@app.command("train")
@click.argument("model")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Folder of grayscale training images.")
@click.option("--val", type=click.Path(path_type=Path), help="Folder of validation images (default: hold some of --data out).")
@click.option("--holdout", type=click.IntRange(min=1), default=8, show_default=True, help="Images of --data held out for validation when --val is not given.")
@click.option("--noise", default="gaussian", show_default=True, help="Training noise (gaussian).")
@click.option("--levels", default="0-55", show_default=True, help="Noise sigma range in 8-bit units, LOW-HIGH or one value.")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Optimiser steps.")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Patches per step.")
@click.option("--patch", type=click.IntRange(min=8), default=40, show_default=True, help="Patch side in pixels.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True, help="Initial Adam learning rate (cosine decay to lr/100).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initialisation and of every random draw.")
@click.option("--arch", multiple=True, help="Architecture hyper-parameter KEY=VALUE, e.g. depth=10; repeatable.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for checkpoints, weights and model card.")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in --out.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, help="Where to train.")
@click.option("--init-from", help="Start from a weights file, or 'shipped' for the packaged weights (fresh optimiser).")
@click.option("--validate-every", type=click.IntRange(min=1), default=250, show_default=True, help="Steps between validations.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=250, show_default=True, help="Steps between checkpoints.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True, help="bf16: bfloat16 autocast with fp32 weights (much faster on GPUs and AMX CPUs).")
@click.option("--precise-bn", type=click.IntRange(min=0), default=0, show_default=True, help="Batches over which batch-norm statistics are re-estimated after the last step (0: off).")
@click.option("--quiet", is_flag=True, help="No progress bar (one line per validation instead).")
def train_command(model, data, val, holdout, noise, levels, steps, batch, patch, lr, seed, arch,
                  out, resume, device, init_from, validate_every, checkpoint_every, threads,
                  precision, precise_bn, quiet):
    """Train MODEL (dncnn, ffdnet_small, autoencoder) and write its weights and model card."""
    from denoisers.training import TrainConfig, train

    low, sep, high = levels.partition("-")
    try:
        level_range = (float(low), float(high if sep else low))
    except ValueError:
        raise InvalidParameterError(f"--levels takes LOW-HIGH in 8-bit units, got '{levels}'") from None
    architecture = {}
    for item in arch:
        key, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            raise InvalidParameterError(f"--arch takes KEY=INTEGER, got '{item}'")
        architecture[key.strip()] = int(value)
    config = TrainConfig(
        model=model, data=str(data), out=str(out), val=str(val) if val else None,
        holdout=holdout, noise=noise, levels=level_range, steps=steps, batch=batch, patch=patch,
        lr=lr, seed=seed, device=device, architecture=architecture, init_from=init_from,
        validate_every=validate_every, checkpoint_every=checkpoint_every, threads=threads,
        precision=precision, precise_bn=precise_bn,
    )
    result = train(config, resume=resume, progress=not quiet,
                   log=lambda text: errors.print(text, highlight=False))
    scores = ", ".join(f"sigma {k}: {v:.2f} dB" for k, v in result.card["validation_psnr"].items())
    console.print(f"weights: {result.weights}  model card: {result.weights.with_suffix('.json')}")
    console.print(f"validation PSNR {scores}", highlight=False)


@app.command("import-weights")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Destination folder (default: the user cache, where dncnn_paper looks).")
@click.option("--name", help="File name without suffix (default: the source's, e.g. sigma=25); one source only.")
def import_weights_command(sources, out, name):
    """Convert the DnCNN authors' MatConvNet SOURCES (.mat) to safetensors and model cards."""
    from denoisers.dncnn_paper import import_weights

    if name is not None and len(sources) > 1:
        raise InvalidParameterError("--name takes one source file; convert several without it")
    for source in sources:
        path = import_weights(source, out=out, name=name)
        console.print(f"{source} -> {path} (model card: {path.with_suffix('.json').name})",
                      highlight=False, soft_wrap=True)


@app.command("check-plugin")
@click.argument("names", nargs=-1, required=True)
@click.option("--kind", type=click.Choice(["denoiser", "noise", "metric"]), help="Check NAMES as this kind only (default: every kind each is registered as).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=600, show_default=True, help="Seconds one denoise call may take.")
def check_plugin_command(names, kind, timeout):
    """Run the contract checks the built-ins pass against NAMES (denoisers, noises, metrics).

    Prints a table per name and kind; exits with status 1 when a check fails, for a plugin's CI.
    """
    from rich.table import Table

    from bench.contract import EXIT_CHECK_FAILED, check_kind, kinds_to_check
    from bench.registry import default_registry

    registry = default_registry()
    for problem in registry.plugin_errors:
        errors.print(f"[yellow]warning:[/yellow] {escape(problem)}", highlight=False)
    targets = [(k, name) for name in names for k in kinds_to_check(name, registry, kind=kind)]
    total, failed = 0, []
    for k, name in targets:
        report = check_kind(k, name, registry, timeout=timeout)
        table = Table(title=f"{k} {escape(name)} ({escape(report.origin)})", title_justify="left")
        for column in ("check", "result", "detail"):
            table.add_column(column)
        for result in report.results:
            table.add_row(escape(result.check), "[green]pass[/green]" if result.passed
                          else "[red]fail[/red]", escape(result.detail))
        console.print(table)
        total += len(report.results)
        failed += [f"{k} {name}: {result.check}" for result in report.failures]
    console.print(f"{total} checks, {len(failed)} failed", highlight=False)
    if failed:
        errors.print(f"[red]{len(failed)} check(s) failed[/red]: " + escape("; ".join(failed)),
                     highlight=False)
        raise click.exceptions.Exit(EXIT_CHECK_FAILED)


@app.command("tune")
@click.option("--denoisers", required=True, help='Comma-separated denoisers to tune; given parameters stay fixed: "nlm(patch_size=7),tv".')
@click.option("--noises", multiple=True, help="NAME[:LEVEL,...][:KEY=VALUE,...], repeatable; each level is tuned separately (default gaussian:15,25,50). 'real': real noisy images.")
@click.option("--dataset", multiple=True, required=True, help="Tuning images: folder:PATH, skimage, pairs:PATH or a plugin dataset; repeatable.")
@click.option("--trials", type=click.IntRange(min=1), default=30, show_default=True, help="Candidates per denoiser and level (TPE); a grid of at most this many points is searched whole.")
@click.option("--crop", type=int, help="Central crop side in pixels.")
@click.option("--limit", type=click.IntRange(min=1), help="Images per dataset.")
@click.option("--metric", default="psnr", show_default=True, help="Metric whose mean is optimised (clean objective).")
@click.option("--objective", type=click.Choice(["clean", "self-supervised"]), default="clean", show_default=True, help="Score against clean images, or by the J-invariant loss on the noisy images alone.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated noise seeds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the TPE sampler.")
@click.option("--executor", type=click.Choice(["process", "serial"]), default="process", show_default=True, help="Where the trials' cells run.")
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes (default: one per CPU).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=600, show_default=True, help="Seconds a cell may take.")
@click.option("--stride", type=click.IntRange(min=2), default=4, show_default=True, help="Mask spacing of the self-supervised loss (stride² denoiser calls per image).")
@click.option("--out", type=click.Path(path_type=Path), help="Tuning directory (default tunes/<timestamp>); re-running into it resumes.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def tune_command(denoisers, noises, dataset, trials, crop, limit, metric, objective, seeds, seed,
                 executor, jobs, timeout, stride, out, quiet):
    """Choose denoiser parameters on data: per noise and level, the best mean metric."""
    import datetime as _dt

    from bench.sweep import DenoiserSpec, NoiseSpec, split_outside_parentheses
    from bench.tune.engine import TuneConfig, tune

    config = TuneConfig(
        denoisers=[DenoiserSpec.parse(item) for item in split_outside_parentheses(denoisers)],
        noises=[NoiseSpec.parse(text) for text in noises] or [NoiseSpec("gaussian", (15, 25, 50))],
        datasets=list(dataset), trials=trials, metric=metric, objective=objective, crop=crop,
        limit=limit, seeds=_ints(seeds, "--seeds"), seed=seed, executor=executor, jobs=jobs,
        timeout=timeout, stride=stride)
    out = out if out is not None else (
        Path("tunes") / _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S"))
    result = tune(config, out, progress=not quiet,
                  log=lambda text: errors.print(escape(text), highlight=False))
    console.print(f"Tuned parameters: {result.tuned_file}  (bench run --params {result.tuned_file})\n"
                  f"Report: {result.report}", highlight=False, soft_wrap=True)
    failed = [s for s in result.studies if s.best_value is None]
    if failed:
        for study in failed:
            errors.print(f"[red]{escape(study.denoiser)}[/red] at {study.condition}: every trial "
                         "failed", highlight=False)
        raise click.exceptions.Exit(EXIT_FAILED_CELLS)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one yellow line each, without Python's source-line echo."""
    errors.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bench`` console script; returns the exit status."""
    import warnings

    warnings.showwarning = _show_warning
    try:
        # Without standalone mode click returns the code of a raised Exit instead of exiting.
        status = app.main(args=argv, prog_name="bench", standalone_mode=False)
    except BenchError as error:
        if _state["debug"]:
            raise
        errors.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        return EXIT_USAGE
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return EXIT_USAGE
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/red]: cells finished so far are in the run directory's cells.jsonl")
        return 130
    except click.exceptions.Abort:
        errors.print("[red]interrupted[/red]")
        return 130
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
