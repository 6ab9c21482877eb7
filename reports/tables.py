"""Terminal tables: :func:`render_comparison` prints a run's summary as denoiser x level tables.

The numbers come from :func:`reports.stats.summarise_ci`, :func:`reports.stats.noisy_baseline`,
:func:`reports.stats.winners` and :func:`reports.paired.paired_differences`, the same tables
the HTML and Markdown reports use; every metric of the run gets its number in each cell,
primary first, and the primary metric's paired difference to the reference method under it.
"""

from __future__ import annotations

import pandas as pd

from bench.metrics import MetricInfo
from reports import fmt
from reports.paired import SEPARATED, TIE_NOTE, TIED, paired_differences, resolve_baseline
from reports.stats import method_labels, noisy_baseline, run_metrics, summarise_ci, winners


def render_comparison(results: pd.DataFrame, console=None, *,
                      metrics: list[MetricInfo] | None = None, baseline: str | None = None) -> None:
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
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    metrics = run_metrics(results, metrics)
    primary = metrics[0]
    reference = None if baseline is None else resolve_baseline(baseline, method_labels(results))
    paired = paired_differences(results, baseline=reference, metrics=metrics)
    differences = {(r["noise"], r["mode"], r["level"], r["method"]): r
                   for r in paired.to_dict("records")}
    summary = summarise_ci(results, metrics=metrics)
    noisy_inputs = noisy_baseline(results, metrics=metrics)
    best = winners(summary, results=results, metrics=metrics)
    against = "the best of each level" if reference is None else reference
    labels = " / ".join(info.label for info in metrics)
    for (noise, mode), part in summary.groupby(["noise", "mode"], sort=False):
        levels = sorted(part["level"].unique())
        table = Table(title=f"{escape(noise)} noise, {mode} mode — mean {escape(labels)}"
                            + escape(fmt.direction_note(metrics, prefix="; ")),
                      caption=escape(f"under each mean: Δ{fmt.name(primary)}, the paired "
                                     f"difference to {against} (mean over images ± 95% interval)"),
                      title_justify="left", caption_justify="left")
        table.add_column("denoiser", style="bold", overflow="fold")
        for level in levels:
            table.add_column(fmt.level(level), justify="right")
        table.add_column("MP/s", justify="right")
        noisy = noisy_inputs[(noisy_inputs["noise"] == noise)
                             & (noisy_inputs["mode"] == mode)].set_index("level")
        table.add_row("noisy input", *[_score(noisy.loc[lv], metrics) if lv in noisy.index else ""
                                       for lv in levels], "", style="dim")
        order = part.groupby("method", sort=False)[primary.name].mean().sort_values(
            ascending=not primary.higher_is_better).index
        for method in order:
            rows = part[part["method"] == method]
            by_level = rows.set_index("level")
            cells = []
            for level in levels:
                if level not in by_level.index:
                    cells.append("")
                    continue
                entry = by_level.loc[level]
                text = _score(entry, metrics)
                if entry["failed"]:
                    text += f" [red]({int(entry['failed'])} failed)[/red]"
                text += _delta(differences.get((noise, mode, level, method)), primary)
                cells.append(text)
            table.add_row(escape(method), *cells, _rate(rows["mpix_per_s"].median()))
        console.print(table)
        _print_winners(best[(best["noise"] == noise) & (best["mode"] == mode)], primary, console)


def _delta(difference: dict | None, primary: MetricInfo) -> str:
    """The second line of a cell: the paired difference to the reference, or "reference"."""
    if difference is None:
        return ""
    if difference["method"] == difference["reference"]:
        return "\n[dim]reference[/dim]"
    text = fmt.difference(difference[f"{primary.name}_diff"], difference[f"{primary.name}_ci"],
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


def _score(entry: pd.Series, metrics: list[MetricInfo]) -> str:
    if pd.isna(entry[metrics[0].name]):
        return "[red]failed[/red]"
    return " / ".join(fmt.number(entry[info.name], info.decimals) for info in metrics)


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
    styles = {"regression": "bold red", "improvement": "green", "unchanged": "dim"}
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
        table.add_row(escape(row["method"]), escape(noise), *[escape(c) for c in cells],
                      "–" if pd.isna(row["mpix_ratio"]) else f"{row['mpix_ratio']:.2f}×",
                      f"[{styles[row['status']]}]{escape(status)}[/]")
    console.print(table)
    counts = comparison["status"].value_counts()
    console.print(f"{int(comparison['pairs'].sum())} paired cells: "
                  f"{counts.get('regression', 0)} regression(s), "
                  f"{counts.get('improvement', 0)} improvement(s), "
                  f"{counts.get('unchanged', 0)} unchanged.", highlight=False)


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
