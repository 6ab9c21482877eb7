"""Write a run's report: ``report.html`` (self-contained) and ``report.md`` in the run directory.

Layout written inside the run directory::

    report.html            one file, plots and crops embedded as data: URIs, opens offline
    report.md              the same tables in Markdown, images by relative path
    report/quality_vs_level.png
    report/quality_vs_speed.png
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.metrics import MetricInfo
from reports.grids import Grid, build_grids
from reports.load import Run, load_run
from reports.stats import (CI_SUFFIX, failures, noisy_baseline, rank, run_metrics, summarise_ci,
                           summary_metrics, winners)

HTML_NAME, MARKDOWN_NAME, FIGURES = "report.html", "report.md", "report"


@dataclass
class QualityRow:
    """One method (or the noisy input) across the levels of one noise and mode.

    Each cell is None (level not run) or a dict: per metric ``m`` its mean ``m`` and
    half-width ``m_ci``, then ``n``, ``failed`` and ``best`` (the metrics by which the
    method is the best of the column).
    """

    label: str
    cells: list[dict]
    mpix_per_s: float = float("nan")
    baseline: bool = False


@dataclass
class QualityTable:
    """Method x level table of one noise and mode."""

    noise: str
    mode: str
    levels: list[float]
    rows: list[QualityRow]


@dataclass
class ReportData:
    """Everything a report shows, computed once for both renderers.

    Attributes
    ----------
    run : Run
    summary, baseline, winners, ranking, failures : pandas.DataFrame
        See :mod:`reports.stats`.
    metrics : list of MetricInfo
        The run's metrics, primary first.
    margin : float
        "Fastest near the winner" margin, in the primary metric's unit.
    tables : list of QualityTable
    grids : list of Grid
    failure_groups : list of dict
        See :func:`failure_groups`.
    params : pandas.DataFrame
        See :func:`method_params`.
    figures : dict of str to Path
        Figure title to PNG file.
    """

    run: Run
    metrics: list[MetricInfo]
    margin: float
    summary: pd.DataFrame
    baseline: pd.DataFrame
    winners: pd.DataFrame
    ranking: pd.DataFrame
    failures: pd.DataFrame
    tables: list[QualityTable]
    grids: list[Grid]
    failure_groups: list[dict] = field(default_factory=list)
    params: pd.DataFrame = field(default_factory=pd.DataFrame)
    figures: dict[str, Path] = field(default_factory=dict)


@dataclass
class ReportFiles:
    """Paths of what :func:`write_report` wrote."""

    html: Path
    markdown: Path
    figures: list[Path]


def quality_tables(summary: pd.DataFrame, baseline: pd.DataFrame, *,
                   metrics: list[MetricInfo] | None = None) -> list[QualityTable]:
    """Method x level tables per noise and mode, methods by the primary metric, best first.

    Each cell is a dict with, per metric ``m``, ``m`` and ``m_ci`` (``psnr``, ``psnr_ci``,
    ``ssim``, ``ssim_ci``, ...), ``n``, ``failed`` and ``best`` (the names of the metrics by
    which it is the column's best method, in each metric's direction); missing levels are
    None.
    """
    metrics = summary_metrics(summary, metrics)
    primary = metrics[0]
    tables = []
    for (noise, mode), part in summary.groupby(["noise", "mode"], sort=False):
        levels = sorted(part["level"].unique())
        best = {}
        for lv in levels:
            at = part[part["level"] == lv]
            best[lv] = {info.name: info.best(at[info.name]) for info in metrics}
        rows = []
        base = baseline[(baseline["noise"] == noise) & (baseline["mode"] == mode)].set_index("level")
        rows.append(QualityRow("noisy input", [
            _cell(base.loc[lv], None, metrics) if lv in base.index else None for lv in levels],
            baseline=True))
        order = part.groupby("method", sort=False)[primary.name].mean().sort_values(
            ascending=not primary.higher_is_better, na_position="last", kind="stable").index
        for method in order:
            mine = part[part["method"] == method].set_index("level")
            cells = [_cell(mine.loc[lv], best[lv], metrics) if lv in mine.index else None
                     for lv in levels]
            rows.append(QualityRow(method, cells, mine["mpix_per_s"].median()))
        tables.append(QualityTable(noise, mode, levels, rows))
    return tables


def _cell(entry: pd.Series, best: dict | None, metrics: list[MetricInfo]) -> dict:
    cell = {}
    for info in metrics:
        cell[info.name] = entry[info.name]
        cell[info.name + CI_SUFFIX] = entry[info.name + CI_SUFFIX]
    cell["n"] = entry["n"]
    cell["failed"] = int(entry.get("failed", 0))
    cell["best"] = () if best is None else tuple(
        info.name for info in metrics if cell[info.name] == best[info.name])
    return cell


def timing_note(results: pd.DataFrame) -> str:
    """How the throughput was measured, from the ``timing`` and ``workers`` columns if present."""
    if "timing" not in results or "workers" not in results:
        return ""
    ok = results[results["status"] == "ok"]
    parallel = ok[(ok["timing"] == "parallel") & (ok["workers"].fillna(1) > 1)]
    if parallel.empty:
        return "Throughput was measured with one cell running at a time."
    return (f"Throughput of {len(parallel)} of {len(ok)} cells was measured with up to "
            f"{int(parallel['workers'].max())} cells running at once, so it is lower than a "
            f"machine's single-job speed; run with --timing exclusive for publishable figures.")


def failure_groups(failed: pd.DataFrame) -> list[dict]:
    """Failed cells grouped by method, then by status and reason.

    Returns
    -------
    list of dict
        ``{"method", "denoiser", "device", "total", "reasons"}`` where each reason is
        ``{"status", "error", "count", "cells"}`` and ``cells`` lists each failed cell as
        ``"image, noise level, seed, mode"``.
    """
    groups = []
    for (method, denoiser, device), part in failed.groupby(["method", "denoiser", "device"],
                                                           sort=False):
        reasons = []
        for (status, error), cells in part.groupby(["status", "error"], sort=False):
            reasons.append({"status": status, "error": error or "(no message)",
                            "count": len(cells), "cells": [
                                f"{c.dataset}/{c.image}, {c.noise} {c.level:g}, seed {c.seed}, {c.mode}"
                                for c in cells.itertuples()]})
        groups.append({"method": method, "denoiser": denoiser,
                       "device": device, "total": len(part), "reasons": reasons})
    return groups


def method_params(results: pd.DataFrame) -> pd.DataFrame:
    """The distinct parameter sets (JSON text) each denoiser ran with.

    A failed cell records ``"{}"``; that row is left out for denoisers with real parameters.
    """
    table = results.drop_duplicates(["denoiser", "params"])[["denoiser", "params"]]
    with_params = set(table.loc[table["params"] != "{}", "denoiser"])
    keep = (table["params"] != "{}") | ~table["denoiser"].isin(with_params)
    return table[keep].reset_index(drop=True)


def gather(run: Run, *, figures_dir: str | Path | None = None) -> ReportData:
    """Compute every table of the report and draw its figures.

    Parameters
    ----------
    run : Run
        A loaded run (:func:`reports.load.load_run`).
    figures_dir : str or Path, optional
        Where the PNG figures go; ``<run_dir>/report`` when omitted.
    """
    from reports.plots import method_colours, plot_quality_vs_level, plot_quality_vs_speed

    metrics = run_metrics(run.results)
    margin = metrics[0].margin
    summary = summarise_ci(run.results, metrics=metrics)
    baseline = noisy_baseline(run.results, metrics=metrics)
    ranking = rank(summary, metrics=metrics)
    order = list(ranking["method"]) + [m for m in summary["method"].unique()
                                       if m not in set(ranking["method"])]
    failed = failures(run.results)
    data = ReportData(run, metrics, margin, summary, baseline,
                      winners(summary, metrics=metrics, margin=margin), ranking, failed,
                      quality_tables(summary, baseline, metrics=metrics),
                      build_grids(run.crops, order, results=run.results, metrics=metrics),
                      failure_groups(failed), method_params(run.results))
    figures_dir = Path(figures_dir) if figures_dir is not None else run.run_dir / FIGURES
    figures_dir.mkdir(parents=True, exist_ok=True)
    colours = method_colours(order)
    if summary[metrics[0].name].notna().any():
        data.figures["Quality against noise level"] = plot_quality_vs_level(
            summary, baseline, figures_dir / "quality_vs_level.png", metrics=metrics,
            colours=colours)
        data.figures["Quality against throughput"] = plot_quality_vs_speed(
            summary, figures_dir / "quality_vs_speed.png", metrics=metrics, colours=colours)
    return data


def write_report(run_dir: str | os.PathLike) -> ReportFiles:
    """Write ``report.html``, ``report.md`` and the figures of a run into its directory.

    Parameters
    ----------
    run_dir : str or Path
        A run directory (see :mod:`bench.store.results`).

    Returns
    -------
    ReportFiles
        The paths written.

    Raises
    ------
    DataError
        When ``run_dir`` is not a run directory or has no results.
    """
    from reports.html import render_html
    from reports.markdown import render_markdown

    run = load_run(run_dir)
    data = gather(run)
    html_path = run.run_dir / HTML_NAME
    md_path = run.run_dir / MARKDOWN_NAME
    _write_atomic(html_path, render_html(data))
    _write_atomic(md_path, render_markdown(data))
    return ReportFiles(html_path, md_path, list(data.figures.values()))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

