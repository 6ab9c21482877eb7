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
from bench.files import write_atomic
from reports.grids import Grid, build_grids
from reports.load import Run, load_run
from reports.paired import paired_differences, resolve_baseline
from reports.stats import (CI_SUFFIX, failures, method_labels, noisy_baseline, rank, run_metrics,
                           summarise_ci, summary_metrics, winners)

HTML_NAME, MARKDOWN_NAME, FIGURES = "report.html", "report.md", "report"


@dataclass
class QualityRow:
    """One method (or the noisy input) across the levels of one noise and mode.

    Each cell is None (level not run) or a dict: per metric ``m`` its mean ``m``, the
    half-width ``m_ci`` of its interval over images, the paired difference to the column's
    reference method ``m_diff`` with its half-width ``m_diff_ci`` and its ``m_verdict`` (see
    :func:`reports.paired.paired_differences`), then ``n``, ``images``, ``failed``,
    ``reference`` (whether the method is the column's reference) and ``best`` (the metrics by
    which the method is the best of the column).
    """

    label: str
    cells: list[dict]
    mpix_per_s: float = float("nan")
    baseline: bool = False


@dataclass
class QualityTable:
    """Method x level table of one noise and mode; ``references``: each level's reference method."""

    noise: str
    mode: str
    levels: list[float]
    rows: list[QualityRow]
    references: list[str | None] = field(default_factory=list)


@dataclass
class ReportData:
    """Everything a report shows, computed once for both renderers.

    Attributes
    ----------
    run : Run
    summary, baseline, winners, ranking, failures : pandas.DataFrame
        See :mod:`reports.stats`.
    paired : pandas.DataFrame
        :func:`reports.paired.paired_differences` against ``reference``.
    reference : str or None
        The baseline method the quality tables' differences are to; None: the best method of
        each condition by the primary metric.
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
    paired: pd.DataFrame = field(default_factory=pd.DataFrame)
    reference: str | None = None


@dataclass
class ReportFiles:
    """Paths of what :func:`write_report` wrote."""

    html: Path
    markdown: Path
    figures: list[Path]


@dataclass
class RunSummary:
    """The statistics every view of a run starts from: the pages and the terminal tables.

    Attributes
    ----------
    metrics : list of MetricInfo
        Primary first.
    margin : float
        "Fastest near the winner" margin, in the primary metric's unit.
    reference : str or None
        The baseline method, resolved; None: the best method of each condition.
    paired, summary, noisy, winners : pandas.DataFrame
        :func:`reports.paired.paired_differences`, :func:`reports.stats.summarise_ci`,
        :func:`reports.stats.noisy_baseline` and :func:`reports.stats.winners`.
    tables : list of QualityTable
        :func:`quality_tables` of the above.
    """

    metrics: list[MetricInfo]
    margin: float
    reference: str | None
    paired: pd.DataFrame
    summary: pd.DataFrame
    noisy: pd.DataFrame
    winners: pd.DataFrame
    tables: list[QualityTable]


def summarise_run(results: pd.DataFrame, *, baseline: str | None = None,
                  metrics: list[MetricInfo] | None = None) -> RunSummary:
    """Summarise a run's results once, for the report pages and the terminal tables alike.

    Parameters
    ----------
    results : pandas.DataFrame
        A run's results.
    baseline : str, optional
        The method every method's paired difference is to (a method label or a denoiser name,
        see :func:`reports.paired.resolve_baseline`); the best method of each condition by the
        primary metric by default.
    metrics : list of MetricInfo, optional
        Primary first; :func:`reports.stats.run_metrics` of ``results`` by default.

    Raises
    ------
    DataError
        When ``baseline`` names no method of the run.
    """
    metrics = run_metrics(results, metrics)
    margin = metrics[0].margin
    reference = None if baseline is None else resolve_baseline(baseline, method_labels(results))
    paired = paired_differences(results, baseline=reference, metrics=metrics)
    summary = summarise_ci(results, metrics=metrics)
    noisy = noisy_baseline(results, metrics=metrics)
    return RunSummary(metrics, margin, reference, paired, summary, noisy,
                      winners(summary, results=results, metrics=metrics, margin=margin),
                      quality_tables(summary, noisy, metrics=metrics, paired=paired))


def quality_tables(summary: pd.DataFrame, baseline: pd.DataFrame, *,
                   metrics: list[MetricInfo] | None = None,
                   paired: pd.DataFrame | None = None) -> list[QualityTable]:
    """Method x level tables per noise and mode, methods by the primary metric, best first.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`reports.stats.summarise_ci`.
    baseline : pandas.DataFrame
        :func:`reports.stats.noisy_baseline`: the noisy input's row.
    metrics : list of MetricInfo, optional
        Primary first; :func:`reports.stats.summary_metrics` of ``summary`` by default.
    paired : pandas.DataFrame, optional
        :func:`reports.paired.paired_differences`: each cell's difference to its level's
        reference method; without it the differences are NaN.

    Each cell is a dict with, per metric ``m``, ``m``, ``m_ci``, ``m_diff``, ``m_diff_ci``
    and ``m_verdict`` (``psnr``, ``psnr_ci``, ``psnr_diff``, ...), ``n``, ``images``,
    ``failed``, ``reference`` and ``best`` (the names of the metrics by which it is the
    column's best method, in each metric's direction); missing levels are None.
    """
    metrics = summary_metrics(summary, metrics)
    primary = metrics[0]
    differences = {} if paired is None or paired.empty else {
        (row["noise"], row["mode"], row["level"], row["method"]): row
        for row in paired.to_dict("records")}
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
            cells = [_cell(mine.loc[lv], best[lv], metrics,
                           differences.get((noise, mode, lv, method)))
                     if lv in mine.index else None for lv in levels]
            rows.append(QualityRow(method, cells, mine["mpix_per_s"].median()))
        references = [_reference_at(paired, noise, mode, lv) if differences else None
                      for lv in levels]
        tables.append(QualityTable(noise, mode, levels, rows, references))
    return tables


def _reference_at(paired: pd.DataFrame, noise: str, mode: str, level: float) -> str | None:
    at = paired[(paired["noise"] == noise) & (paired["mode"] == mode) & (paired["level"] == level)]
    return None if at.empty else at["reference"].iloc[0]


def _cell(entry: pd.Series, best: dict | None, metrics: list[MetricInfo],
          difference: dict | None = None) -> dict:
    cell = {}
    for info in metrics:
        name = info.name
        cell[name] = entry[name]
        cell[name + CI_SUFFIX] = entry[name + CI_SUFFIX]
        cell[f"{name}_diff"] = float("nan") if difference is None else difference[f"{name}_diff"]
        cell[f"{name}_diff_ci"] = float("nan") if difference is None else difference[f"{name}_ci"]
        cell[f"{name}_verdict"] = None if difference is None else difference[f"{name}_verdict"]
    cell["n"] = entry["n"]
    cell["images"] = int(entry.get("images", 0))
    cell["failed"] = int(entry.get("failed", 0))
    cell["reference"] = difference is not None and difference["method"] == difference["reference"]
    cell["best"] = () if best is None else tuple(
        info.name for info in metrics if cell[info.name] == best[info.name])
    return cell


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


def gather(run: Run, *, figures_dir: str | Path | None = None, baseline: str | None = None,
           summary: RunSummary | None = None) -> ReportData:
    """Compute every table of the report and draw its figures.

    Parameters
    ----------
    run : Run
        A loaded run (:func:`reports.load.load_run`).
    figures_dir : str or Path, optional
        Where the PNG figures go; ``<run_dir>/report`` when omitted.
    baseline : str, optional
        The method the quality tables show every method's paired difference to (a method
        label or a denoiser name, see :func:`reports.paired.resolve_baseline`); the best
        method of each condition by the primary metric by default.
    summary : RunSummary, optional
        :func:`summarise_run` of ``run.results``, when already computed (``baseline`` is then
        ignored).

    Raises
    ------
    DataError
        When ``baseline`` names no method of the run.
    """
    base = summary or summarise_run(run.results, baseline=baseline)
    metrics, summary = base.metrics, base.summary
    ranking = rank(summary, metrics=metrics)
    order = list(ranking["method"]) + [m for m in summary["method"].unique()
                                       if m not in set(ranking["method"])]
    failed = failures(run.results)
    data = ReportData(run, metrics, base.margin, summary, base.noisy, base.winners, ranking,
                      failed, base.tables,
                      build_grids(run.crops, order, results=run.results, metrics=metrics),
                      failure_groups(failed), method_params(run.results), paired=base.paired,
                      reference=base.reference)
    data.figures.update(draw_figures(summary, base.noisy, order, metrics,
                                     Path(figures_dir) if figures_dir is not None
                                     else run.run_dir / FIGURES))
    return data


def draw_figures(summary: pd.DataFrame, noisy: pd.DataFrame, order: list[str],
                 metrics: list[MetricInfo], figures_dir: Path) -> dict[str, Path]:
    """Draw the report's plots into ``figures_dir`` (none when no cell finished).

    Returns
    -------
    dict of str to Path
        Figure title to PNG file, in the order the pages show them.
    """
    from reports.plots import method_colours, plot_quality_vs_level, plot_quality_vs_speed

    figures_dir.mkdir(parents=True, exist_ok=True)
    if not summary[metrics[0].name].notna().any():
        return {}
    colours = method_colours(order)
    return {
        "Quality against noise level": plot_quality_vs_level(
            summary, noisy, figures_dir / "quality_vs_level.png", metrics=metrics,
            colours=colours),
        "Quality against throughput": plot_quality_vs_speed(
            summary, figures_dir / "quality_vs_speed.png", metrics=metrics, colours=colours)}


def write_report(run_dir: str | os.PathLike, *, baseline: str | None = None,
                 summary: RunSummary | None = None) -> ReportFiles:
    """Write ``report.html``, ``report.md`` and the figures of a run into its directory.

    Parameters
    ----------
    run_dir : str or Path
        A run directory (see :mod:`bench.store.results`).
    baseline : str, optional
        The method the quality tables compare every method with, image by image (see
        :func:`gather`); the best method of each condition by default.
    summary : RunSummary, optional
        :func:`summarise_run` of the run's results, when already computed.

    Returns
    -------
    ReportFiles
        The paths written.

    Raises
    ------
    DataError
        When ``run_dir`` is not a run directory or has no results, or ``baseline`` names no
        method of the run.
    """
    from reports.html import render_html
    from reports.markdown import render_markdown

    run = load_run(run_dir)
    data = gather(run, baseline=baseline, summary=summary)
    html_path = run.run_dir / HTML_NAME
    md_path = run.run_dir / MARKDOWN_NAME
    write_atomic(html_path, render_html(data))
    write_atomic(md_path, render_markdown(data))
    return ReportFiles(html_path, md_path, list(data.figures.values()))
