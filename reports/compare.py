"""Run-to-run comparison: pair the cells two runs share and test the differences.

Typical use, to check that a change to a denoiser did not cost quality::

    from bench.store.results import load_results
    from reports import compare
    table = compare(load_results("runs/before"), load_results("runs/after"))
    table[table["status"] == "regression"]

Differences are B minus A: run A is the baseline, run B the candidate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.errors import DataError
from bench.metrics import MetricInfo, metric_info
from reports.stats import method_labels, run_metrics, t_half_width

#: Two cells are the same measurement when all of these agree (the image's size too: the
#: same image name cropped differently is a different image).
PAIR_KEYS = ["dataset", "image", "height", "width", "channels", "noise", "level", "noise_params",
             "seed", "mode", "denoiser", "device", "method"]
#: One comparison row per value of these.
COMPARE_GROUP = ["noise", "mode", "level", "denoiser", "device", "method"]
STATUSES = ("regression", "improvement", "unchanged")
#: Exit status of ``bench compare --fail-on-regression`` when a regression is flagged.
EXIT_REGRESSION = 1
#: A metric's differences smaller than its margin over this are never flagged (PSNR: 0.01 dB,
#: SSIM: 0.0001).
TOLERANCE_FRACTION = 50


def shared_metrics(results_a: pd.DataFrame, results_b: pd.DataFrame) -> list[MetricInfo]:
    """The metrics both runs scored, in run A's order (its primary first)."""
    names_b = {info.name for info in run_metrics(results_b)}
    shared = [info for info in run_metrics(results_a) if info.name in names_b]
    if not shared:
        raise DataError("the two runs share no metric")
    return shared


def pair_cells(results_a: pd.DataFrame, results_b: pd.DataFrame, *,
               metrics: list[MetricInfo] | None = None) -> pd.DataFrame:
    """Join the cells both runs measured, on :data:`PAIR_KEYS`.

    Parameters
    ----------
    results_a, results_b : pandas.DataFrame
        Results of the two runs.
    metrics : list of MetricInfo, optional
        The metrics to carry; those both runs scored (:func:`shared_metrics`) by default.

    Returns
    -------
    pandas.DataFrame
        The key columns, then every metric (``psnr``, ``ssim``, ...), ``mpix_per_s`` and
        ``status`` of each run with suffixes ``_a`` and ``_b``. Cells pair on their method
        too, so each parameter set of a denoiser is compared with the same parameter set in
        the other run.

    Raises
    ------
    DataError
        When the runs have no cell in common.
    """
    metrics = shared_metrics(results_a, results_b) if metrics is None else metrics
    values = [info.name for info in metrics] + ["mpix_per_s", "status"]
    a, b = (results.assign(method=method_labels(results)).drop_duplicates(PAIR_KEYS)[PAIR_KEYS + values]
            for results in (results_a, results_b))
    paired = a.merge(b, on=PAIR_KEYS, suffixes=("_a", "_b"))
    if paired.empty:
        raise DataError("the two runs have no cell in common (same dataset, image and size, "
                        "noise, level, seed, mode, denoiser, its sweep parameters and device)")
    return paired


def compare(results_a: pd.DataFrame, results_b: pd.DataFrame, *,
            metrics: list[MetricInfo] | None = None, confidence: float = 0.95,
            tolerances: dict[str, float] | None = None) -> pd.DataFrame:
    """Paired differences of every metric between two runs, per condition and method.

    Parameters
    ----------
    results_a, results_b : pandas.DataFrame
        Results of the baseline run (A) and of the candidate run (B), see
        :data:`bench.store.results.COLUMNS`.
    metrics : list of MetricInfo, optional
        The metrics to compare, primary first; those both runs scored by default
        (:func:`shared_metrics`).
    confidence : float
        Coverage of the paired t-intervals of the mean differences.
    tolerances : dict of str to float, optional
        Per metric name, mean differences smaller than this (in the metric's unit) are never
        flagged, however tight their interval: floating-point noise between machines is not a
        regression. A metric not named gets its ``margin`` / :data:`TOLERANCE_FRACTION`
        (0.01 dB for PSNR, 0.0001 for SSIM).

    Returns
    -------
    pandas.DataFrame
        One row per noise, mode, level and method measured in both runs, with ``denoiser``,
        ``device``, ``method``, ``pairs`` (cells in common), ``n`` (pairs ``ok`` in both
        runs), then for every metric ``m``: ``m_a``, ``m_b`` (means over those pairs),
        ``m_diff`` (mean of B - A) and ``m_ci`` (half-width of its paired t-interval; NaN when
        ``n < 2``) -- ``psnr_a``, ``psnr_b``, ``psnr_diff``, ``psnr_ci``, ``ssim_a``, ... --
        then ``mpix_ratio`` (median MP/s of B over that of A: above 1 means B is faster),
        ``newly_failed`` (pairs ``ok`` in A, not in B), ``fixed`` (the reverse) and
        ``status``:

        - ``"regression"`` when some cell newly fails, or the interval of some metric's
          difference lies entirely on its worse side of 0 (below for a higher-is-better
          metric, above for a lower-is-better one) and the mean difference exceeds the
          tolerance;
        - ``"improvement"`` when one lies entirely on its better side and nothing regressed;
        - ``"unchanged"`` otherwise, including when ``n < 2`` leaves no interval.

    Raises
    ------
    DataError
        When the runs have no cell or no metric in common.
    """
    metrics = shared_metrics(results_a, results_b) if metrics is None else list(metrics)
    tolerances = {info.name: info.margin / TOLERANCE_FRACTION for info in metrics} | dict(
        tolerances or {})
    names = [info.name for info in metrics]
    paired = pair_cells(results_a, results_b, metrics=metrics)
    both = (paired["status_a"] == "ok") & (paired["status_b"] == "ok")
    paired["both_ok"] = both
    paired["newly_failed"] = (paired["status_a"] == "ok") & (paired["status_b"] != "ok")
    paired["fixed"] = (paired["status_a"] != "ok") & (paired["status_b"] == "ok")
    for name in names:
        paired[f"{name}_diff"] = (paired[f"{name}_b"] - paired[f"{name}_a"]).where(both)
    for column in [f"{name}{suffix}" for name in names for suffix in ("_a", "_b")] + [
            "mpix_per_s_a", "mpix_per_s_b"]:
        paired[column] = paired[column].where(both)

    rows = []
    for key, part in paired.groupby(COMPARE_GROUP, sort=False):
        row = dict(zip(COMPARE_GROUP, key))
        row["pairs"] = len(part)
        row["n"] = int(part["both_ok"].sum())
        for name in names:
            diff = part[f"{name}_diff"].dropna()
            row[f"{name}_a"] = part[f"{name}_a"].mean()
            row[f"{name}_b"] = part[f"{name}_b"].mean()
            row[f"{name}_diff"] = diff.mean() if len(diff) else np.nan
            row[f"{name}_ci"] = t_half_width(diff.std(), len(diff), confidence)
        speed_a, speed_b = part["mpix_per_s_a"].median(), part["mpix_per_s_b"].median()
        row["mpix_ratio"] = speed_b / speed_a if speed_a > 0 else np.nan
        row["newly_failed"] = int(part["newly_failed"].sum())
        row["fixed"] = int(part["fixed"].sum())
        row["status"] = _verdict(row, metrics, tolerances)
        rows.append(row)
    columns = COMPARE_GROUP + ["pairs", "n"] + [
        f"{name}{suffix}" for name in names for suffix in ("_a", "_b", "_diff", "_ci")] + [
        "mpix_ratio", "newly_failed", "fixed", "status"]
    return pd.DataFrame(rows, columns=columns)


def compared_metrics(comparison: pd.DataFrame) -> list[MetricInfo]:
    """The metrics of :func:`compare`'s table (every ``m`` with an ``m_diff`` column)."""
    return [metric_info(column[:-len("_diff")]) for column in comparison.columns
            if column.endswith("_diff")]


def _verdict(row: dict, metrics: list[MetricInfo], tolerances: dict[str, float]) -> str:
    worse, better = row["newly_failed"] > 0, False
    for info in metrics:
        mean, half = row[f"{info.name}_diff"], row[f"{info.name}_ci"]
        if not (np.isfinite(mean) and np.isfinite(half)) or abs(mean) < tolerances[info.name]:
            continue
        sign = 1 if info.higher_is_better else -1  # a gain is positive either way
        worse |= sign * mean + half < 0
        better |= sign * mean - half > 0
    if worse:
        return "regression"
    return "improvement" if better else "unchanged"


def regressions(comparison: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`compare`'s table flagged ``"regression"``."""
    return comparison[comparison["status"] == "regression"].reset_index(drop=True)
