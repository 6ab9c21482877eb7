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

from bench.errors import EXIT_FAILED_CELLS, EXIT_USAGE, BenchError, InvalidParameterError

console = Console()
errors = Console(stderr=True)
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
@click.option("--denoisers", help="Comma-separated denoiser names (default: every installed built-in).")
@click.option("--noises", multiple=True, help="NAME[:LEVEL,LEVEL...][:KEY=VALUE,...]; repeat for several noises.")
@click.option("--dataset", multiple=True, help="skimage, folder:PATH or a plugin dataset; repeatable.")
@click.option("--seeds", help="Comma-separated noise seeds, e.g. 0,1,2.")
@click.option("--mode", help="oracle, blind or oracle,blind.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), help="Where learned denoisers run.")
@click.option("--repeats", type=click.IntRange(min=1), help="Timed calls per cell; the median is kept.")
@click.option("--crop", type=int, help="Central crop side in pixels.")
@click.option("--limit", type=click.IntRange(min=1), help="Images per dataset.")
@click.option("--round8", is_flag=True, help="Round outputs to 8 bits before scoring.")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default runs/<timestamp>).")
@click.option("--quick", is_flag=True, help="A smoke sweep of a few seconds.")
@click.option("--dry-run", is_flag=True, help="List the cells and exit.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_command(denoisers, noises, dataset, seeds, mode, device, repeats, crop, limit, round8,
                out, quick, dry_run, quiet):
    """Run a sweep and print the comparison table."""
    from bench.runner import default_run_dir, plan, run_sweep
    from bench.sweep import DenoiserSpec, NoiseSpec, default_sweep, quick_sweep
    from reports.tables import render_comparison

    sweep = quick_sweep() if quick else default_sweep()
    explicit_data = bool(dataset)
    if dataset:
        sweep.datasets = list(dataset)
    if explicit_data and crop is None:
        sweep.crop = None  # a named dataset is measured whole unless asked otherwise
    if crop is not None:
        sweep.crop = crop
    if limit is not None:
        sweep.limit = limit
    if noises:
        sweep.noises = [NoiseSpec.parse(text) for text in noises]
    if denoisers is not None:
        sweep.denoisers = [DenoiserSpec(name) for name in _split(denoisers)]
    if seeds is not None:
        sweep.seeds = _ints(seeds, "--seeds")
    if mode is not None:
        sweep.modes = _split(mode)
    if device is not None:
        sweep.device = device
    if repeats is not None:
        sweep.repeats = repeats
    sweep.round8 = sweep.round8 or round8

    if dry_run:
        the_plan = plan(sweep)
        for cell in the_plan.cells:
            console.print(f"{cell.dataset}/{cell.image} {cell.noise}:{cell.level:g} seed {cell.seed} "
                          f"{cell.mode} {cell.denoiser} on {cell.device}", highlight=False)
        console.print(f"{len(the_plan.cells)} cells")
        return
    run_dir = out if out is not None else default_run_dir()
    results = run_sweep(sweep, run_dir, progress=not quiet)
    render_comparison(results, console)
    failed = int((results["status"] != "ok").sum())
    console.print(f"{len(results)} cells, {failed} failed. Results: {run_dir}/results.parquet")
    if failed:
        for _, row in results[results["status"] != "ok"].drop_duplicates("denoiser").iterrows():
            errors.print(f"[red]{row['denoiser']}[/red] failed: {row['error']}", highlight=False)
        raise click.exceptions.Exit(EXIT_FAILED_CELLS)


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
            table.add_row(entry.name, entry.summary, entry.origin,
                          "[green]yes[/green]" if reason is None else f"[red]no[/red]: {reason}")
        console.print(table)
    for problem in registry.plugin_errors:
        errors.print(f"[yellow]warning:[/yellow] {problem}", highlight=False)


@app.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
def report_command(run_dir):
    """Print the comparison tables of a saved run."""
    from bench.results import load_results
    from reports.tables import render_comparison

    results = load_results(run_dir)
    if results.empty:
        raise BenchError(f"run directory '{run_dir}' has no results yet")
    render_comparison(results, console)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bench`` console script; returns the exit status."""
    try:
        # Without standalone mode click returns the code of a raised Exit instead of exiting.
        status = app.main(args=argv, prog_name="bench", standalone_mode=False)
    except BenchError as error:
        if _state["debug"]:
            raise
        errors.print(f"[red]error:[/red] {error}", highlight=False)
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
