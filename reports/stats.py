"""Summaries with confidence intervals, winners and rankings, as pandas DataFrames.

Every function takes a results table (see :data:`bench.store.results.COLUMNS`) or the output of
:func:`summarise_ci`, and returns a plain DataFrame, so the same numbers feed the reports,
the terminal and a notebook::

    from reports import load_run, summarise_ci, winners, rank
    run = load_run("runs/20260101-120000")
    summary = summarise_ci(run.results)      # one row per noise, mode, level, denoiser, device
    winners(summary)                         # who wins at each noise and level
    rank(summary)                            # mean rank of each method over all conditions

Metrics are not named here: every function loops over the metric columns of the run
(:func:`bench.metrics.metric_columns`: ``psnr`` and ``ssim`` by default, and any metric a plugin
registers), the first being the primary one that orders the rows, and reads each metric's
direction, unit and margin from its :class:`bench.metrics.MetricInfo`.

A *method* is a denoiser with the parameters the sweep set, on a device; its *method label*,
the ``method`` column, reads ``"nlm"`` on the CPU, ``"dncnn@cuda"`` on a GPU,
``"dncnn(precision=bf16)@cuda"``; one run can hold several parameter sets of one denoiser,
and each is its own method.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.errors import DataError
from bench.metrics import DEFAULT_METRICS, NOISY_PREFIX, MetricInfo, metric_info, metric_infos

#: The columns one summary row stands for.
GROUP = ["noise", "mode", "level", "denoiser", "device"]
#: The columns one condition (noise, mode and level) stands for.
CONDITION = ["noise", "mode", "level"]
#: The columns that name one image: the statistical unit (a method's seeds of one image are
#: averaged first, since they are not independent measurements).
IMAGE = ["dataset", "image"]
#: Suffix of the column that holds the half-width of a metric's confidence interval.
CI_SUFFIX = "_ci"


def method_label(denoiser: str, device: str) -> str:
    """The method label of ``denoiser`` on ``device`` when no parameters were set: ``denoiser``
    on the CPU, ``denoiser@device`` elsewhere."""
    from bench.sweep import method_name

    return method_name(denoiser, (), device)


def method_labels(results: pd.DataFrame) -> pd.Series:
    """The method label of every row.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows with ``denoiser`` and ``device``, and the ``method`` label the runner recorded
        (:func:`bench.sweep.method_name`: it names the parameters the sweep set).

    Returns
    -------
    pandas.Series
        The recorded ``method``; :func:`method_label` where none was recorded (tables made
        by hand, or runs written before the column existed).
    """
    recorded = (results["method"].astype("object") if "method" in results
                else pd.Series(None, index=results.index, dtype="object"))
    missing = recorded.isna() | (recorded == "")
    if not missing.any():
        return recorded
    rows = results[missing]
    fallback = pd.Series([method_label(d, v) for d, v in zip(rows["denoiser"], rows["device"])],
                         index=rows.index, dtype="object")
    return recorded.where(~missing, fallback)


def t_half_width(std: float, n: int, confidence: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of a mean.

    Parameters
    ----------
    std : float
        Sample standard deviation (``ddof=1``) of the values.
    n : int
        Number of values.
    confidence : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    float
        ``t(1 - (1 - confidence) / 2, n - 1) * std / sqrt(n)``; NaN when ``n < 2``, where no
        interval can be estimated.
    """
    from scipy.special import stdtrit  # scipy.stats.t.ppf itself, without importing scipy.stats

    if n < 2 or not np.isfinite(std):
        return math.nan
    return float(stdtrit(n - 1, 0.5 + confidence / 2) * std / math.sqrt(n))


def _half_widths(std: pd.Series, n: pd.Series, confidence: float) -> pd.Series:
    return pd.Series([t_half_width(s, int(k), confidence) for s, k in zip(std, n)],
                     index=std.index, dtype="float64")


def run_metrics(results: pd.DataFrame, metrics: list[MetricInfo] | None = None) -> list[MetricInfo]:
    """The metrics of a results table, primary first.

    Parameters
    ----------
    results : pandas.DataFrame
        A run's results: a column ``m`` and ``noisy_m`` per metric ``m``.
    metrics : list of MetricInfo, optional
        Returned as given when the caller knows them.

    Returns
    -------
    list of MetricInfo
        :func:`bench.metrics.metric_infos` of ``results``; a table made by hand without the
        ``noisy_`` columns falls back to the default metrics it has (PSNR, SSIM).

    Raises
    ------
    DataError
        When the table has no metric column at all.
    """
    if metrics is not None:
        return list(metrics)
    found = metric_infos(results)
    return found or _defaults_in(results)


def summary_metrics(table: pd.DataFrame, metrics: list[MetricInfo] | None = None) -> list[MetricInfo]:
    """The metrics of a summary table (:func:`summarise_ci`, :func:`noisy_baseline`), primary first.

    A summary holds, per metric ``m``, the mean ``m`` and the half-width ``m_ci``; a summary
    made by hand without the ``_ci`` columns falls back to the default metrics it has.
    """
    if metrics is not None:
        return list(metrics)
    columns = list(table.columns)
    found = [metric_info(c) for c in columns if f"{c}{CI_SUFFIX}" in columns]
    return found or _defaults_in(table)


def _defaults_in(table: pd.DataFrame) -> list[MetricInfo]:
    found = [metric_info(name) for name in DEFAULT_METRICS if name in table.columns]
    if not found:
        raise DataError("the table has no metric column (e.g. 'psnr' beside 'noisy_psnr')")
    return found


def _ascending(info: MetricInfo) -> bool:
    """Sort order that puts the best values first."""
    return not info.higher_is_better


def image_keys(results: pd.DataFrame) -> list[str]:
    """The columns of :data:`IMAGE` that ``results`` has (a table made by hand may lack some)."""
    return [column for column in IMAGE if column in results.columns]


def _with_images(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``results`` and its image columns; a table with none gets one image per row."""
    keys = image_keys(results)
    if keys:
        return results, keys
    return results.assign(image=[f"row {i}" for i in range(len(results))]), ["image"]


def image_means(results: pd.DataFrame, *, metrics: list[MetricInfo] | None = None) -> pd.DataFrame:
    """Every method's score of every image, its seeds averaged: the unit of the statistics.

    The seeds of one image are different noise draws on the same picture, not independent
    measurements of a method's quality, so intervals and paired tests count images, not cells.

    Parameters
    ----------
    results : pandas.DataFrame
        A run's results (see :data:`bench.store.results.COLUMNS`); only ``ok`` cells count.
    metrics : list of MetricInfo, optional
        Primary first; :func:`run_metrics` of ``results`` by default.

    Returns
    -------
    pandas.DataFrame
        One row per noise, mode, level, method and image: the columns of :data:`GROUP`,
        ``method``, ``dataset`` and ``image`` (those of them the table has; a table with
        neither counts each row as an image), ``seeds`` (the ``ok`` cells averaged) and the
        mean of every metric ``m`` over them. Several noise parameter sets of one noise at
        one level are averaged too, as :func:`summarise_ci` pools them.
    """
    names = [info.name for info in run_metrics(results, metrics)]
    results, keys = _with_images(results)
    ok = results[results["status"] == "ok"].assign(
        method=method_labels(results[results["status"] == "ok"]))
    aggregations = {"seeds": ("status", "size")} | {name: (name, "mean") for name in names}
    table = ok.groupby(GROUP + ["method"] + keys, sort=False).agg(**aggregations).reset_index()
    return table[GROUP + ["method"] + keys + ["seeds"] + names]


def _image_spread(per_image: pd.DataFrame, group: list[str], names: list[str],
                  confidence: float) -> pd.DataFrame:
    """Per ``group``: ``images`` and, per metric, the t-interval half-width over images."""
    aggregations = {"images": ("seeds", "size")}
    for name in names:
        aggregations[f"{name}_std"] = (name, "std")
        aggregations[f"{name}_count"] = (name, "count")
    spread = per_image.groupby(group, sort=False).agg(**aggregations)
    for name in names:
        spread[f"{name}{CI_SUFFIX}"] = _half_widths(spread[f"{name}_std"], spread[f"{name}_count"],
                                                    confidence)
    return spread[["images"] + [f"{name}{CI_SUFFIX}" for name in names]]


def summarise_ci(results: pd.DataFrame, *, metrics: list[MetricInfo] | None = None,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Mean of every metric with a confidence interval over images, and throughput.

    Parameters
    ----------
    results : pandas.DataFrame
        A run's results (see :data:`bench.store.results.COLUMNS`).
    metrics : list of MetricInfo, optional
        The metrics to summarise, primary first; :func:`run_metrics` of ``results`` by default.
    confidence : float
        Coverage of the intervals (0.95 gives 95% intervals).

    Returns
    -------
    pandas.DataFrame
        One row per noise, mode, level and method (denoiser, device and parameter set), with
        columns ``method`` (see :func:`method_labels`), ``cells`` (all cells), ``failed``
        (cells not ``ok``), ``n`` (``ok`` cells: the images x seeds the means are over),
        ``images`` (images with an ``ok`` cell), then for every metric ``m`` (``psnr``,
        ``ssim``, ...) ``m`` (mean over the ``ok`` cells, in the metric's unit) and ``m_ci``
        (half-width of the Student-t interval over images: each image's seeds are averaged
        first, see :func:`image_means`; NaN with fewer than two images), then
        ``mpix_per_s`` (median megapixels per second) and ``seconds`` (median).
        Failed cells count in ``cells`` and ``failed`` only. Rows are ordered by noise (as
        first met), mode, level and the mean of the primary metric, best first.
    """
    metrics = run_metrics(results, metrics)
    names = [info.name for info in metrics]
    results = results.assign(method=method_labels(results))
    ok = results[results["status"] == "ok"]
    aggregations = {"n": ("status", "size")}
    for name in names:
        aggregations[name] = (name, "mean")
    aggregations.update(mpix_per_s=("mpix_per_s", "median"), seconds=("seconds", "median"))
    scores = ok.groupby(GROUP + ["method"], sort=False).agg(**aggregations)
    counts = results.groupby(GROUP + ["method"], sort=False).agg(
        cells=("status", "size"), failed=("status", lambda s: int((s != "ok").sum())))
    spread = _image_spread(image_means(results, metrics=metrics), GROUP + ["method"], names,
                           confidence)
    summary = counts.join(scores).join(spread)
    for column in ("n", "images"):
        summary[column] = summary[column].fillna(0).astype("int64")
    summary = summary.reset_index()
    noise_order = {name: i for i, name in enumerate(results["noise"].drop_duplicates())}
    summary = summary.assign(_noise=summary["noise"].map(noise_order)).sort_values(
        ["_noise", "mode", "level", names[0]], ascending=[True, True, True, _ascending(metrics[0])],
        na_position="last", kind="stable")
    columns = GROUP + ["method", "cells", "failed", "n", "images"] + _mean_ci(names) + [
        "mpix_per_s", "seconds"]
    return summary[columns].reset_index(drop=True)


def _mean_ci(names: list[str]) -> list[str]:
    return [column for name in names for column in (name, f"{name}{CI_SUFFIX}")]


def noisy_baseline(results: pd.DataFrame, *, metrics: list[MetricInfo] | None = None,
                   confidence: float = 0.95) -> pd.DataFrame:
    """Mean score of the noisy inputs per noise, mode and level, with intervals over images.

    Each noisy image counts once, however many denoisers saw it. The score of metric ``m``
    is read from the results column ``noisy_m``.

    Returns
    -------
    pandas.DataFrame
        Columns ``noise``, ``mode``, ``level``, ``n`` (noisy inputs: images x seeds),
        ``images``, then ``m`` (mean over the noisy inputs) and ``m_ci`` (half-width of the
        t-interval over images, each image's seeds averaged first) for every metric ``m``
        (``psnr``, ``psnr_ci``, ``ssim``, ``ssim_ci``, ...).
    """
    names = [info.name for info in run_metrics(results, metrics)]
    results, keys = _with_images(results)
    identity = [c for c in ["dataset", "image", "noise", "level", "noise_params", "seed", "mode"]
                if c in results.columns]
    unique = results.drop_duplicates(identity)
    aggregations = {"n": ("status", "size")}
    for name in names:
        aggregations[name] = (NOISY_PREFIX + name, "mean")
    base = unique.groupby(CONDITION, sort=False).agg(**aggregations)
    per_image = unique.groupby(CONDITION + keys, sort=False).agg(
        seeds=("status", "size"), **{name: (NOISY_PREFIX + name, "mean") for name in names})
    base = base.join(_image_spread(per_image.reset_index(), CONDITION, names, confidence))
    return base.reset_index()[CONDITION + ["n", "images"] + _mean_ci(names)]


def best_row(part: pd.DataFrame, info: MetricInfo) -> pd.Series | None:
    """The first row of ``part`` with the best value of ``info``; None when all are missing."""
    values = part[info.name].dropna()
    if values.empty:
        return None
    return part.loc[values.idxmax() if info.higher_is_better else values.idxmin()]


def within(values: pd.Series, best: float, info: MetricInfo, margin: float) -> pd.Series:
    """Which ``values`` are no more than ``margin`` worse than ``best`` (False where missing)."""
    if info.higher_is_better:
        return values >= best - margin
    return values <= best + margin


def winners(summary: pd.DataFrame, *, results: pd.DataFrame | None = None,
            metrics: list[MetricInfo] | None = None, margin: float | None = None,
            alpha: float = 0.05) -> pd.DataFrame:
    """The best method at each noise, mode and level by each metric, and the fastest one close.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`summarise_ci`.
    results : pandas.DataFrame, optional
        The results ``summary`` was made from. With them, every other method is compared
        with each winner image by image (:mod:`reports.paired`), and those it cannot tell
        apart are listed as tied.
    metrics : list of MetricInfo, optional
        Primary first; :func:`summary_metrics` of ``summary`` by default. Best is highest or
        lowest as each metric's ``higher_is_better`` says.
    margin : float, optional
        How far from the best primary mean, in its unit, a method may be and still count as
        "close to the winner"; the primary metric's ``margin`` by default (0.5 dB for PSNR).
    alpha : float
        Level of the Holm-corrected paired tests.

    Returns
    -------
    pandas.DataFrame
        One row per condition with at least one ``ok`` cell: ``noise``, ``mode``, ``level``,
        then per metric ``m`` the method ``m_winner``, its mean ``m``, ``m_tied`` (a tuple of
        the methods whose paired difference to the winner is not significant) and
        ``m_separation``: ``"separated"`` (every other method is significantly worse),
        ``"tied"`` (some are tied; a tie is not equivalence) or ``"too few images to
        separate"`` (no difference could be significant; ``m_tied`` is then empty) -- None
        without ``results`` or other methods. Then ``fastest_near`` (the method with the
        highest median MP/s within ``margin`` of the best primary mean), its primary mean
        ``fastest_<primary>`` (``fastest_psnr``) and ``fastest_mpix_per_s``. Ties of the
        means go to the method listed first.
    """
    metrics = summary_metrics(summary, metrics)
    primary = metrics[0]
    margin = primary.margin if margin is None else margin
    per_image = {} if results is None else {
        key: part for key, part in image_means(results, metrics=metrics).groupby(
            CONDITION, sort=False)}
    rows = []
    for key, part in summary.groupby(CONDITION, sort=False):
        part = part.dropna(subset=[primary.name])
        if part.empty:
            continue
        row = dict(zip(CONDITION, key))
        for info in metrics:
            row.update(_metric_winner(part, info, per_image.get(tuple(key)), alpha))
        fastest = _fastest_near(part, row[primary.name], primary, margin)
        row.update({"fastest_near": fastest["method"],
                    f"fastest_{primary.name}": fastest[primary.name],
                    "fastest_mpix_per_s": fastest["mpix_per_s"]})
        rows.append(row)
    columns = CONDITION + [f"{info.name}{suffix}" for info in metrics
                           for suffix in ("_winner", "", "_tied", "_separation")]
    columns += ["fastest_near", f"fastest_{primary.name}", "fastest_mpix_per_s"]
    return pd.DataFrame(rows, columns=columns)


def _metric_winner(part: pd.DataFrame, info: MetricInfo, per_image: pd.DataFrame | None,
                   alpha: float) -> dict:
    """The ``m_winner``, ``m``, ``m_separation`` and ``m_tied`` entries of one condition's
    :func:`winners` row, for the metric ``info``."""
    best = best_row(part, info)
    winner = None if best is None else best["method"]
    tied, separation = _ties(per_image, winner, info, alpha)
    return {f"{info.name}_winner": winner,
            info.name: np.nan if best is None else best[info.name],
            f"{info.name}_separation": separation,
            f"{info.name}_tied": tuple(m for m in part["method"] if m in tied)}


def _fastest_near(part: pd.DataFrame, best: float, primary: MetricInfo,
                  margin: float) -> pd.Series:
    """The row of the fastest method (median MP/s) within ``margin`` of the ``best`` primary
    mean; the best row by the primary metric when none of those has a speed."""
    near = part[within(part[primary.name], best, primary, margin)]
    rated = near.dropna(subset=["mpix_per_s"])
    return rated.loc[rated["mpix_per_s"].idxmax()] if not rated.empty else best_row(part, primary)


def _ties(per_image: pd.DataFrame | None, winner: str | None, info: MetricInfo,
          alpha: float) -> tuple[tuple[str, ...], str | None]:
    """The methods tied with ``winner`` by ``info`` at one condition, and the verdict."""
    from reports.paired import (SEPARATED, TIED, TOO_FEW, compare_to_reference,
                                condition_values)

    if per_image is None or winner is None:
        return (), None
    tested = compare_to_reference(condition_values(per_image, info.name), winner, info,
                                  alpha=alpha)
    verdicts = tested["verdict"].drop(winner, errors="ignore").dropna()
    if verdicts.empty:
        return (), None
    if (verdicts == TOO_FEW).any():
        return (), TOO_FEW
    tied = tuple(verdicts.index[verdicts == TIED])
    return tied, (TIED if tied else SEPARATED)


def rank(summary: pd.DataFrame, *, metrics: list[MetricInfo] | None = None) -> pd.DataFrame:
    """Rank the methods at each condition by each metric; average the ranks.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`summarise_ci`.
    metrics : list of MetricInfo, optional
        Primary first; :func:`summary_metrics` of ``summary`` by default.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method``, ``denoiser``, ``device``, ``m_rank`` for every metric
        ``m`` (``psnr_rank``, ``ssim_rank``, ...: mean rank over the conditions it finished,
        1 = best, in the metric's direction), then for the primary metric ``p``: ``p_wins``
        (conditions where it has the best mean, e.g. ``psnr_wins``), ``conditions``, ``p``
        (mean of its per-condition means, e.g. ``psnr`` in dB) and ``mpix_per_s`` (median
        of its per-condition medians). Sorted by the primary rank, best first.
    """
    metrics = summary_metrics(summary, metrics)
    primary = metrics[0].name
    scored = summary.dropna(subset=[primary]).copy()
    grouped = scored.groupby(CONDITION, sort=False)
    for info in metrics:
        scored[f"{info.name}_rank"] = grouped[info.name].rank(ascending=_ascending(info),
                                                              method="min")
    aggregations = {f"{info.name}_rank": (f"{info.name}_rank", "mean") for info in metrics}
    aggregations.update({
        f"{primary}_wins": (f"{primary}_rank", lambda r: int((r == 1).sum())),
        "conditions": (f"{primary}_rank", "size"), primary: (primary, "mean"),
        "mpix_per_s": ("mpix_per_s", "median")})
    table = scored.groupby(["method", "denoiser", "device"], sort=False).agg(**aggregations)
    return table.reset_index().sort_values(
        [f"{primary}_rank", primary], ascending=[True, _ascending(metrics[0])],
        kind="stable").reset_index(drop=True)


def failures(results: pd.DataFrame) -> pd.DataFrame:
    """Every cell that did not finish (``failed`` or ``timeout``), grouped by denoiser.

    Returns
    -------
    pandas.DataFrame
        The failed rows with columns ``method``, ``denoiser``, ``device``, ``status``,
        ``error``, ``dataset``, ``image``, ``noise``, ``level``, ``seed``, ``mode``, sorted by
        denoiser, method and reason.
    """
    columns = ["method", "denoiser", "device", "status", "error", "dataset", "image", "noise",
               "level", "seed", "mode"]
    bad = results.assign(method=method_labels(results)).loc[results["status"] != "ok", columns]
    return bad.sort_values(["denoiser", "method", "device", "status", "error"],
                           kind="stable").reset_index(drop=True)


def pareto_front(speed: np.ndarray, quality: np.ndarray, *,
                 higher_is_better: bool = True) -> np.ndarray:
    """Which points no other point beats on both speed and quality.

    Parameters
    ----------
    speed, quality : array_like
        One value per method (e.g. MP/s and mean PSNR in dB); higher speed is better.
    higher_is_better : bool
        Direction of ``quality``; False for a metric where lower is better (an error).

    Returns
    -------
    numpy.ndarray of bool
        True for the points on the Pareto front; NaN points are never on it.
    """
    speed, quality = np.asarray(speed, float), np.asarray(quality, float)
    if not higher_is_better:
        quality = -quality
    valid = np.isfinite(speed) & np.isfinite(quality)
    front = np.zeros(len(speed), dtype=bool)
    for i in np.flatnonzero(valid):
        beaten = (valid & (speed >= speed[i]) & (quality >= quality[i])
                  & ((speed > speed[i]) | (quality > quality[i])))
        front[i] = not beaten.any()
    return front


def speed_quality(summary: pd.DataFrame, *,
                  metrics: list[MetricInfo] | None = None) -> pd.DataFrame:
    """Per noise, mode and method: each metric's mean over the levels, median MP/s, front.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`summarise_ci`.
    metrics : list of MetricInfo, optional
        Primary first; :func:`summary_metrics` of ``summary`` by default.

    Returns
    -------
    pandas.DataFrame
        Columns ``noise``, ``mode``, ``method``, ``device``, one column per metric (``psnr``,
        ``ssim``, ...: means of the per-level means of the levels the method finished),
        ``mpix_per_s`` (median of the per-level medians) and ``pareto`` (on the Pareto front
        of speed and the primary metric, in its direction, of its noise and mode).
    """
    metrics = summary_metrics(summary, metrics)
    primary = metrics[0]
    aggregations = {info.name: (info.name, "mean") for info in metrics}
    aggregations["mpix_per_s"] = ("mpix_per_s", "median")
    table = summary.dropna(subset=[primary.name]).groupby(
        ["noise", "mode", "method", "device"], sort=False).agg(**aggregations)
    table = table.reset_index()
    table["pareto"] = False
    for _, part in table.groupby(["noise", "mode"], sort=False):
        table.loc[part.index, "pareto"] = pareto_front(
            part["mpix_per_s"], part[primary.name], higher_is_better=primary.higher_is_better)
    return table
