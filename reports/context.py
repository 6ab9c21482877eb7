"""What both report pages show, worked out once: :class:`ReportContext` from a :class:`ReportData`.

:func:`reports.html.render_html` and :func:`reports.markdown.render_markdown` read every count,
note and record from the same :class:`ReportContext`; each adds only its own markup (the HTML
page embeds the images, the Markdown file links them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.metrics import MetricInfo
from reports import fmt
from reports.build import QualityTable, ReportData
from reports.grids import Grid
from reports.load import Run
from reports.paired import TIE_NOTE, TOO_FEW


@dataclass
class ReportContext:
    """The values a report page shows, plain text (unescaped) where they are text.

    Attributes
    ----------
    run : Run
    manifest, env, cpu, sweep, origins : dict
        The run's manifest, its ``environment``, the environment's ``cpu``, the ``sweep``
        configuration and the ``denoiser_origins`` (empty dicts when absent).
    sweep_items : list of (str, str)
        Each sweep setting with its value as JSON text.
    results, summary, failures, params : pandas.DataFrame
        The run's results, :func:`reports.stats.summarise_ci`, the failed cells and
        :func:`reports.build.method_params`.
    metrics : list of MetricInfo
        Primary first; ``primary`` is the first.
    metric_names : str
        ``"PSNR and SSIM"``.
    metric_lines : str
        ``"PSNR (dB) on top, then SSIM"``: the order of the metrics' lines in a table cell.
    lower_is_better : str
        ``"TOY: lower is better"`` when a metric improves downwards, else ``""``.
    ok_cells, n_images, n_seeds, n_conditions : int
        Finished cells, distinct images, seeds and noise/mode/level conditions.
    several_modes : bool
        Whether the run holds more than one mode (the tables then show it).
    winners, ranking : list of dict
        The records of :func:`reports.stats.winners` and :func:`reports.stats.rank`.
    margin : str
        The "fastest near the winner" margin with its unit (``"0.5 dB"``).
    tie_note, too_few : str
        :data:`reports.paired.TIE_NOTE` and :data:`reports.paired.TOO_FEW`.
    difference_to : str
        What the quality tables' Δ is (:func:`difference_label`).
    timing_note : str
        How the throughput was measured (:func:`timing_note`).
    tuned_on_test : str
        A warning when the run's tuned parameters (``bench run --params``) were tuned on some
        of its test images, allowed with ``--allow-tuned-on-test``; else ``""``.
    tables, grids, failure_groups, figures
        As in :class:`reports.build.ReportData`.
    """

    run: Run
    manifest: dict
    env: dict
    cpu: dict
    sweep: dict
    origins: dict
    sweep_items: list[tuple[str, str]]
    results: pd.DataFrame
    summary: pd.DataFrame
    failures: pd.DataFrame
    params: pd.DataFrame
    metrics: list[MetricInfo]
    primary: MetricInfo
    metric_names: str
    metric_lines: str
    lower_is_better: str
    ok_cells: int
    n_images: int
    n_seeds: int
    n_conditions: int
    several_modes: bool
    winners: list[dict]
    ranking: list[dict]
    margin: str
    tie_note: str
    too_few: str
    difference_to: str
    timing_note: str
    tuned_on_test: str
    tables: list[QualityTable]
    grids: list[Grid]
    failure_groups: list[dict]
    figures: dict[str, Path]


def report_context(data: ReportData) -> ReportContext:
    """The values both pages show, from :func:`reports.build.gather`'s tables.

    Parameters
    ----------
    data : ReportData
        Its ``metrics`` give the columns (one per metric, primary first) and its ``margin`` the
        "fastest near the winner" margin, in the primary metric's unit.
    """
    run, manifest, metrics = data.run, data.run.manifest, data.metrics
    env, results, summary = manifest.get("environment", {}), run.results, data.summary
    sweep = manifest.get("sweep", {})
    return ReportContext(
        run=run, manifest=manifest, env=env, cpu=env.get("cpu", {}), sweep=sweep,
        origins=manifest.get("denoiser_origins", {}),
        sweep_items=[(key, json.dumps(value, default=str)) for key, value in sweep.items()],
        results=results, summary=summary, failures=data.failures, params=data.params,
        metrics=metrics, primary=metrics[0],
        metric_names=fmt.words([fmt.name(info) for info in metrics]),
        metric_lines=metric_lines(metrics), lower_is_better=fmt.direction_note(metrics),
        ok_cells=int((results["status"] == "ok").sum()),
        n_images=results[["dataset", "image"]].drop_duplicates().shape[0],
        n_seeds=results["seed"].nunique(),
        n_conditions=summary[["noise", "mode", "level"]].drop_duplicates().shape[0],
        several_modes=summary["mode"].nunique() > 1,
        winners=data.winners.to_dict("records"), ranking=data.ranking.to_dict("records"),
        margin=fmt.margin(data.margin, metrics[0]), tie_note=TIE_NOTE, too_few=TOO_FEW,
        difference_to=difference_label(data), timing_note=timing_note(results),
        tuned_on_test=tuned_on_test(manifest),
        tables=data.tables, grids=data.grids, failure_groups=data.failure_groups,
        figures=data.figures)


def tuned_on_test(manifest: dict) -> str:
    """The warning for a run whose tuned parameters saw some of its test images."""
    overlap = (manifest.get("tuned") or {}).get("overlap") or []
    if not overlap:
        return ""
    names = ", ".join(str(name) for name in overlap[:5]) + (" ..." if len(overlap) > 5 else "")
    return (f"Tuned on test images: the parameters of this run's tuned methods were chosen on "
            f"{len(overlap)} of its test images ({names}); their scores are optimistic "
            "(--allow-tuned-on-test).")


def metric_lines(metrics: list[MetricInfo]) -> str:
    """``"PSNR (dB) on top, then SSIM"``: the order of the metrics' lines in a cell."""
    parts = [f"{fmt.name(info)} ({info.unit})" if info.unit else fmt.name(info) for info in metrics]
    return parts[0] + " on top" + "".join(f", then {part}" for part in parts[1:])


def difference_label(data: ReportData) -> str:
    """What the quality tables' Δ is: ``"paired difference to bm3d"``, or to each level's best."""
    if data.reference is not None:
        return f"paired difference to {data.reference}"
    return (f"paired difference to the best method of the level by the mean "
            f"{data.metrics[0].name.upper()} (marked reference)")


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
