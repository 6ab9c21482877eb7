"""Terminal tables: :func:`render_comparison` prints a run's summary as denoiser x level tables.

The numbers come from :func:`reports.build.summarise_run`, the summary the HTML and Markdown
reports are built from: each table is one of its :class:`reports.build.QualityTable`, so the
terminal shows the same rows, in the same order, as the pages. Every metric of the run gets its
number in each cell, primary first, and the primary metric's paired difference to the reference
method under it.
"""

from __future__ import annotations

import pandas as pd

from bench.metrics import MetricInfo
from reports import fmt
from reports.build import QualityTable, RunSummary, summarise_run
from reports.paired import SEPARATED, TIE_NOTE, TIED


def render_comparison(results: pd.DataFrame, console=None, *,
                      metrics: list[MetricInfo] | None = None, baseline: str | None = None,
                      summary: RunSummary | None = None) -> None:
    """Print denoiser x level tables (mean of each metric, median MP/s), one per noise and mode.

    Rows are sorted by the mean of the primary metric over the levels, best first; the first
    row is the noisy input. Under each mean, the primary metric's paired difference to the
    reference method with its 95% interval over images; under each table, the winner of each
    level and the methods tied with it.

    Parameters
    ----------
    results : pandas.DataFrame
        A run's results.
    console : rich.console.Console, optional
    metrics : list of MetricInfo, optional
        Primary first; :func:`reports.stats.run_metrics` of ``results`` by default.
    baseline : str, optional
        The reference method (see :func:`reports.paired.resolve_baseline`); the best method
        of each level by the primary metric by default.
    summary : RunSummary, optional
        :func:`reports.build.summarise_run` of ``results`` when already computed (the report
        uses the same one); ``metrics`` and ``baseline`` are then ignored.
    """
    from rich.console import Console

    console = console or Console()
    base = summary or summarise_run(results, baseline=baseline, metrics=metrics)
    against = "the best of each level" if base.reference is None else base.reference
    for t in base.tables:
        console.print(_quality_table(t, base.metrics, against))
        best = base.winners
        _print_winners(best[(best["noise"] == t.noise) & (best["mode"] == t.mode)],
                       base.metrics[0], console)


def _quality_table(t: QualityTable, metrics: list[MetricInfo], against: str):
    """One noise and mode's :class:`rich.table.Table`: the reports' quality table, as text."""
    from rich.markup import escape
    from rich.table import Table

    primary = metrics[0]
    labels = " / ".join(info.label for info in metrics)
    table = Table(title=f"{escape(t.noise)} noise, {t.mode} mode — mean {escape(labels)}"
                        + escape(fmt.direction_note(metrics, prefix="; ")),
                  caption=escape(f"under each mean: Δ{fmt.name(primary)}, the paired "
                                 f"difference to {against} (mean over images ± 95% interval)"),
                  title_justify="left", caption_justify="left")
    table.add_column("denoiser", style="bold", overflow="fold")
    for level in t.levels:
        table.add_column(fmt.level(level), justify="right")
    table.add_column("MP/s", justify="right")
    for row in t.rows:
        if row.baseline:
            table.add_row("noisy input", *[_score(c, metrics) if c is not None else ""
                                           for c in row.cells], "", style="dim")
        else:
            table.add_row(escape(row.label), *[_cell(c, metrics) for c in row.cells],
                          _rate(row.mpix_per_s))
    return table


def _cell(cell: dict | None, metrics: list[MetricInfo]) -> str:
    """A method's cell: its means, its failed cells, then its difference to the reference."""
    if cell is None:
        return ""
    text = _score(cell, metrics)
    if cell["failed"]:
        text += f" [red]({cell['failed']} failed)[/red]"
    return text + _delta(cell, metrics[0])


def _delta(cell: dict, primary: MetricInfo) -> str:
    """The second line of a cell: the paired difference to the reference, or "reference"."""
    if cell["reference"]:
        return "\n[dim]reference[/dim]"
    text = fmt.difference(cell[f"{primary.name}_diff"], cell[f"{primary.name}_diff_ci"],
                          primary.decimals)
    return f"\n[dim]{text}[/dim]" if text else ""


def _print_winners(best: pd.DataFrame, primary: MetricInfo, console) -> None:
    """One line per level: the winner by the primary metric and what ties with it."""
    from rich.markup import escape

    tie_shown = False
    for w in best.to_dict("records"):
        winner, separation = w[f"{primary.name}_winner"], w[f"{primary.name}_separation"]
        line = f"level {fmt.level(w['level'])}: best {fmt.name(primary)} {winner}"
        if separation == TIED:
            line += "; tied with it: " + ", ".join(w[f"{primary.name}_tied"])
        elif separation == SEPARATED:
            line += "; every other method is significantly worse"
        elif separation is not None:
            line += f"; {separation}"
        tie_shown |= separation is not None and separation != SEPARATED
        console.print(escape(line), highlight=False)
    if tie_shown:
        console.print(escape(f"(Wilcoxon signed-rank over images, Holm-corrected, 5%. {TIE_NOTE})"),
                      style="dim", highlight=False)


def _score(cell: dict, metrics: list[MetricInfo]) -> str:
    """The means of a quality-table cell, primary first; "failed" when no cell finished."""
    if pd.isna(cell[metrics[0].name]):
        return "[red]failed[/red]"
    return " / ".join(fmt.number(cell[info.name], info.decimals) for info in metrics)


def _rate(value: float) -> str:
    if pd.isna(value):
        return "–"
    return f"{value:.3g}"


def render_run_comparison(comparison: pd.DataFrame, console=None, *,
                          names: tuple[str, str] = ("A", "B"),
                          metrics: list[MetricInfo] | None = None,
                          show_reference: bool = False) -> None:
    """Print :func:`reports.compare.compare`'s table: B - A per noise, level and method.

    Parameters
    ----------
    comparison : pandas.DataFrame
        Output of :func:`reports.compare.compare`.
    console : rich.console.Console, optional
    names : (str, str)
        How to call run A (baseline) and run B (candidate) in the title.
    metrics : list of MetricInfo, optional
        The metrics compared, primary first; :func:`reports.compare.compared_metrics` of
        ``comparison`` by default.
    show_reference : bool
        Also show, per row, the primary metric's paired difference to the reference method
        within run A and within run B (``bench compare --baseline``).
    """
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from reports.compare import compared_metrics

    console = console or Console()
    metrics = compared_metrics(comparison) if metrics is None else metrics
    primary = metrics[0]
    table = Table(title=f"{escape(names[1])} (B) against {escape(names[0])} (A): mean paired "
                        "differences B - A with 95% intervals over images (seeds averaged per "
                        f"image); p: Wilcoxon signed-rank of the {fmt.name(primary)} differences, "
                        "Holm-corrected across the methods of the level; speed: MP/s of B over A"
                        + escape(fmt.direction_note(metrics, prefix="; ")),
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("method", min_width=8, overflow="fold")
    table.add_column("noise", overflow="fold")
    columns = ["n", "images"] + [escape(fmt.delta_header(info)) for info in metrics] + ["p"]
    if show_reference:
        columns.append(escape(f"{fmt.delta_header(primary)} to reference, A → B"))
    for column in columns + ["speed"]:
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    several_modes = comparison["mode"].nunique() > 1
    for row in comparison.to_dict("records"):
        table.add_row(*_comparison_row(row, metrics, several_modes=several_modes,
                                       show_reference=show_reference))
    console.print(table)
    counts = comparison["status"].value_counts()
    console.print(f"{int(comparison['pairs'].sum())} paired cells: "
                  f"{counts.get('regression', 0)} regression(s), "
                  f"{counts.get('improvement', 0)} improvement(s), "
                  f"{counts.get('unchanged', 0)} unchanged.", highlight=False)


#: How :func:`render_run_comparison` shows each status.
STATUS_STYLES = {"regression": "bold red", "improvement": "green", "unchanged": "dim"}


def _comparison_row(row: dict, metrics: list[MetricInfo], *, several_modes: bool,
                    show_reference: bool) -> list[str]:
    """One row of :func:`render_run_comparison`'s table, as Rich markup."""
    from rich.markup import escape

    primary = metrics[0]
    noise = f"{row['noise']} {fmt.level(row['level'])}" + (
        f" {row['mode']}" if several_modes else "")
    status = row["status"] + (f" ({row['newly_failed']} newly failed)"
                              if row["newly_failed"] else "")
    cells = [f"{row['n']}/{row['pairs']}", str(row["images"])]
    cells += [_diff(row[f"{info.name}_diff"], row[f"{info.name}_ci"], info.decimals)
              for info in metrics]
    cells.append(_p(row[f"{primary.name}_p_holm"]))
    if show_reference:
        cells.append(_versus(row, primary))
    return ([escape(row["method"]), escape(noise)] + [escape(c) for c in cells]
            + ["–" if pd.isna(row["mpix_ratio"]) else f"{row['mpix_ratio']:.2f}×",
               f"[{STATUS_STYLES[row['status']]}]{escape(status)}[/]"])


def _p(value: float) -> str:
    if pd.isna(value):
        return "–"
    return f"{value:.2g}" if value >= 0.001 else "<0.001"


def _versus(row: dict, primary: MetricInfo) -> str:
    """``"-0.31 → +0.05 (bm3d)"``: the method against the reference in A, then in B."""
    if row["reference"] is None or row["reference"] != row["reference"]:
        return "–"
    if row["method"] == row["reference"]:
        return f"reference ({row['reference']})"
    a, b = (row[f"{primary.name}_vs_reference_{side}"] for side in ("a", "b"))
    return (f"{fmt.signed(a, primary.decimals)} → {fmt.signed(b, primary.decimals)} "
            f"({row['reference']})")


def _diff(mean: float, half: float, digits: int) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:+.{digits}f}" + ("" if pd.isna(half) else f"±{half:.{digits}f}")
