"""Terminal tables: :func:`render_comparison` prints a run's summary as denoiser x level tables.

The numbers come from :func:`reports.stats.summarise_ci` and
:func:`reports.stats.noisy_baseline`, the same summaries the HTML and Markdown reports use;
every metric of the run gets its number in each cell, primary first.
"""

from __future__ import annotations

import pandas as pd

from bench.metrics import MetricInfo
from reports import fmt
from reports.stats import noisy_baseline, run_metrics, summarise_ci


def render_comparison(results: pd.DataFrame, console=None, *,
                      metrics: list[MetricInfo] | None = None) -> None:
    """Print denoiser x level tables (mean of each metric, median MP/s), one per noise and mode.

    Rows are sorted by the mean of the primary metric over the levels, best first; the first
    row is the noisy input.

    Parameters
    ----------
    results : pandas.DataFrame
        A run's results.
    console : rich.console.Console, optional
    metrics : list of MetricInfo, optional
        Primary first; :func:`reports.stats.run_metrics` of ``results`` by default.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    metrics = run_metrics(results, metrics)
    primary = metrics[0]
    summary = summarise_ci(results, metrics=metrics)
    baseline = noisy_baseline(results, metrics=metrics)
    labels = " / ".join(info.label for info in metrics)
    for (noise, mode), part in summary.groupby(["noise", "mode"], sort=False):
        levels = sorted(part["level"].unique())
        table = Table(title=f"{escape(noise)} noise, {mode} mode — mean {escape(labels)}"
                            + escape(fmt.direction_note(metrics, prefix="; ")),
                      title_justify="left")
        table.add_column("denoiser", style="bold", overflow="fold")
        for level in levels:
            table.add_column(fmt.level(level), justify="right")
        table.add_column("MP/s", justify="right")
        noisy = baseline[(baseline["noise"] == noise) & (baseline["mode"] == mode)].set_index("level")
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
                cells.append(text)
            table.add_row(escape(method), *cells, _rate(rows["mpix_per_s"].median()))
        console.print(table)


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
                          metrics: list[MetricInfo] | None = None) -> None:
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
    """
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from reports.compare import compared_metrics

    console = console or Console()
    metrics = compared_metrics(comparison) if metrics is None else metrics
    styles = {"regression": "bold red", "improvement": "green", "unchanged": "dim"}
    table = Table(title=f"{escape(names[1])} (B) against {escape(names[0])} (A): mean paired "
                        "differences B - A with 95% intervals; speed: MP/s of B over A"
                        + escape(fmt.direction_note(metrics, prefix="; ")),
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("method", min_width=8, overflow="fold")
    table.add_column("noise", overflow="fold")
    for column in ["n"] + [escape(fmt.delta_header(info)) for info in metrics] + ["speed"]:
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    several_modes = comparison["mode"].nunique() > 1
    for row in comparison.to_dict("records"):
        noise = f"{row['noise']} {fmt.level(row['level'])}" + (
            f" {row['mode']}" if several_modes else "")
        status = row["status"] + (f" ({row['newly_failed']} newly failed)"
                                  if row["newly_failed"] else "")
        diffs = [_diff(row[f"{info.name}_diff"], row[f"{info.name}_ci"], info.decimals)
                 for info in metrics]
        table.add_row(escape(row["method"]), escape(noise), f"{row['n']}/{row['pairs']}", *diffs,
                      "–" if pd.isna(row["mpix_ratio"]) else f"{row['mpix_ratio']:.2f}×",
                      f"[{styles[row['status']]}]{escape(status)}[/]")
    console.print(table)
    counts = comparison["status"].value_counts()
    console.print(f"{int(comparison['pairs'].sum())} paired cells: "
                  f"{counts.get('regression', 0)} regression(s), "
                  f"{counts.get('improvement', 0)} improvement(s), "
                  f"{counts.get('unchanged', 0)} unchanged.", highlight=False)


def _diff(mean: float, half: float, digits: int) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:+.{digits}f}" + ("" if pd.isna(half) else f"±{half:.{digits}f}")
