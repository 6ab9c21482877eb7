"""Run-to-run comparison: pair the cells two runs share and test the differences.

Typical use, to check that a change to a denoiser did not cost quality::

    from bench.store.results import load_results
    from reports import compare
    table = compare(load_results("runs/before"), load_results("runs/after"))
    table[table["status"] == "regression"]

Differences are B minus A: run A is the baseline run, run B the candidate. The statistics are
those of :mod:`reports.paired`: cells pair by image, a method's seeds of one image are
averaged first, intervals are over images, and each method's per-image differences get a
Wilcoxon signed-rank test, Holm-corrected across the methods of the condition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.errors import DataError
from bench.metrics import MetricInfo, metric_info
from reports.paired import holm, resolve_baseline, wilcoxon_p
from reports.stats import CONDITION, best_row, method_labels, run_metrics, t_half_width

#: Two cells are the same measurement when all of these agree (the image's size too: the
#: same image name cropped differently is a different image).
PAIR_KEYS = ["dataset", "image", "height", "width", "channels", "noise", "level", "noise_params",
             "seed", "mode", "denoiser", "device", "method"]
#: One comparison row per value of these.
COMPARE_GROUP = ["noise", "mode", "level", "denoiser", "device", "method"]
#: Exit status of ``bench compare --fail-on-regression`` when a regression is flagged.
EXIT_REGRESSION = 1
#: A metric's differences smaller than its margin over this are never flagged (PSNR: 0.01 dB,
#: SSIM: 0.0001).
TOLERANCE_FRACTION = 50
#: The protocol of a run written before results recorded one.
DEFAULT_PROTOCOL = "default"
#: The columns that name one image of a pair: the unit of the statistics.
IMAGE_KEYS = ["dataset", "image", "height", "width", "channels"]


def protocols(results: pd.DataFrame) -> list[str]:
    """The protocols a run's cells were scored under (``protocol`` column), sorted.

    A run written before the column existed, or a row without a value, counts as
    :data:`DEFAULT_PROTOCOL`.
    """
    if "protocol" not in results.columns:
        return [DEFAULT_PROTOCOL]
    values = results["protocol"].astype("object")
    values = values.where(values.notna() & (values != ""), DEFAULT_PROTOCOL)
    return sorted(set(values))


def check_protocols(results_a: pd.DataFrame, results_b: pd.DataFrame) -> None:
    """Refuse two runs scored under different protocols: their numbers do not compare.

    Raises
    ------
    DataError
        When the runs' :func:`protocols` differ.
    """
    found_a, found_b = protocols(results_a), protocols(results_b)
    if found_a != found_b:
        raise DataError(f"the runs were scored under different protocols (A: "
                        f"{', '.join(found_a)}; B: {', '.join(found_b)}), so their numbers do not "
                        "compare; rerun one with the other's --protocol")


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
        When the runs were scored under different protocols (:func:`check_protocols`), or
        have no cell in common.
    """
    check_protocols(results_a, results_b)
    metrics = shared_metrics(results_a, results_b) if metrics is None else metrics
    values = [info.name for info in metrics] + ["mpix_per_s", "status"]
    a, b = (results.assign(method=method_labels(results)).drop_duplicates(PAIR_KEYS)[PAIR_KEYS + values]
            for results in (results_a, results_b))
    paired = a.merge(b, on=PAIR_KEYS, suffixes=("_a", "_b"))
    if paired.empty:
        raise DataError("the two runs have no cell in common (same dataset, image and size, "
                        "noise, level, seed, mode, denoiser, its sweep parameters and device)")
    return paired


def compare(results_a: pd.DataFrame, results_b: pd.DataFrame, *, baseline: str | None = None,
            metrics: list[MetricInfo] | None = None, confidence: float = 0.95,
            tolerances: dict[str, float] | None = None) -> pd.DataFrame:
    """Paired differences of every metric between two runs, per condition and method.

    Parameters
    ----------
    results_a, results_b : pandas.DataFrame
        Results of the baseline run (A) and of the candidate run (B), see
        :data:`bench.store.results.COLUMNS`.
    baseline : str, optional
        A method (label or denoiser name, see :func:`reports.paired.resolve_baseline`) every
        method is also set against within each run, image by image: the ``m_vs_reference_a``
        and ``m_vs_reference_b`` columns. By default the best method of each condition in
        run A by the primary metric.
    metrics : list of MetricInfo, optional
        The metrics to compare, primary first; those both runs scored by default
        (:func:`shared_metrics`).
    confidence : float
        Coverage of the t-intervals of the mean differences, over images.
    tolerances : dict of str to float, optional
        Per metric name, mean differences smaller than this (in the metric's unit) are never
        flagged, however tight their interval: floating-point noise between machines is not a
        regression. A metric not named gets its ``margin`` / :data:`TOLERANCE_FRACTION`
        (0.01 dB for PSNR, 0.0001 for SSIM).

    Returns
    -------
    pandas.DataFrame
        One row per noise, mode, level and method measured in both runs, with the columns
        of :func:`comparison_columns`; ``status`` is :func:`row_status` of the row.

    Raises
    ------
    DataError
        When the runs were scored under different protocols, have no cell or no metric in
        common, or ``baseline`` names no method of them.
    """
    metrics = shared_metrics(results_a, results_b) if metrics is None else list(metrics)
    tolerances = {info.name: info.margin / TOLERANCE_FRACTION for info in metrics} | dict(
        tolerances or {})
    names = [info.name for info in metrics]
    paired = _mark_pairs(pair_cells(results_a, results_b, metrics=metrics), names)
    per_image = _pair_image_means(paired, names)
    images_of = {key: part for key, part in per_image.groupby(COMPARE_GROUP, sort=False)}
    rows = []
    for key, part in paired.groupby(COMPARE_GROUP, sort=False):
        row = _comparison_row(part, images_of.get(key, per_image.iloc[:0]), names, confidence)
        row = dict(zip(COMPARE_GROUP, key)) | row
        row["status"] = row_status(row, metrics, tolerances)
        rows.append(row)
    table = _holm_by_condition(pd.DataFrame(rows), names)
    table = _against_reference(table, per_image, metrics, baseline)
    return table.reindex(columns=comparison_columns(names))


def comparison_columns(names: list[str]) -> list[str]:
    """The columns of :func:`compare`'s table, for the metrics ``names``, in order.

    :data:`COMPARE_GROUP` (``noise`` ... ``method``), ``pairs`` (cells in common), ``n``
    (pairs ``ok`` in both runs), ``images`` (images with such a pair: the unit of the
    statistics), then for every metric ``m``: ``m_a``, ``m_b`` (means over those images, each
    image's seeds averaged first; with every seed of every image, the means over the pairs),
    ``m_diff`` (mean of B - A), ``m_ci`` (half-width of its t-interval over images; NaN with
    fewer than two images), ``m_p`` (Wilcoxon signed-rank test of the per-image
    differences), ``m_p_holm`` (Holm-corrected across the methods of the condition) --
    ``psnr_a``, ``psnr_b``, ``psnr_diff``, ``psnr_ci``, ``psnr_p``, ``psnr_p_holm``,
    ``ssim_a``, ... -- then ``reference`` and, per metric, ``m_vs_reference_a`` and
    ``m_vs_reference_b`` (mean per-image difference method - reference within run A and
    within run B, over the same images), then ``mpix_ratio`` (median MP/s of B over that of
    A: above 1 means B is faster), ``newly_failed`` (pairs ``ok`` in A, not in B), ``fixed``
    (the reverse) and ``status`` (:func:`row_status`).
    """
    return COMPARE_GROUP + ["pairs", "n", "images"] + [
        f"{name}{suffix}" for name in names
        for suffix in ("_a", "_b", "_diff", "_ci", "_p", "_p_holm")] + ["reference"] + [
        f"{name}_vs_reference{suffix}" for name in names for suffix in ("_a", "_b")] + [
        "mpix_ratio", "newly_failed", "fixed", "status"]


def _mark_pairs(paired: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Flag each pair (``both_ok``, ``newly_failed``, ``fixed``), add ``m_diff`` = B - A, and
    blank every value of a pair that is not ``ok`` in both runs."""
    both = (paired["status_a"] == "ok") & (paired["status_b"] == "ok")
    paired["both_ok"] = both
    paired["newly_failed"] = (paired["status_a"] == "ok") & (paired["status_b"] != "ok")
    paired["fixed"] = (paired["status_a"] != "ok") & (paired["status_b"] == "ok")
    for name in names:
        paired[f"{name}_diff"] = (paired[f"{name}_b"] - paired[f"{name}_a"]).where(both)
    for column in [f"{name}{suffix}" for name in names for suffix in ("_a", "_b")] + [
            "mpix_per_s_a", "mpix_per_s_b"]:
        paired[column] = paired[column].where(both)
    return paired


def _pair_image_means(paired: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Each method's values per image, over the pairs ``ok`` in both runs (seeds averaged)."""
    values = [f"{name}{suffix}" for name in names for suffix in ("_a", "_b", "_diff")]
    per_image = paired[paired["both_ok"]].groupby(COMPARE_GROUP + IMAGE_KEYS, sort=False)[values]
    return per_image.mean().reset_index()


def _comparison_row(part: pd.DataFrame, images: pd.DataFrame, names: list[str],
                    confidence: float) -> dict:
    """One method's counts, per-metric statistics and speed ratio, but not its status.

    ``part`` holds the method's pairs at one condition, ``images`` their per-image means.
    """
    row = {"pairs": len(part), "n": int(part["both_ok"].sum()), "images": len(images)}
    for name in names:
        diff = images[f"{name}_diff"].dropna()
        row[f"{name}_a"] = images[f"{name}_a"].mean()
        row[f"{name}_b"] = images[f"{name}_b"].mean()
        row[f"{name}_diff"] = diff.mean() if len(diff) else np.nan
        row[f"{name}_ci"] = t_half_width(diff.std(), len(diff), confidence)
        row[f"{name}_p"] = wilcoxon_p(diff)
    speed_a, speed_b = part["mpix_per_s_a"].median(), part["mpix_per_s_b"].median()
    row["mpix_ratio"] = speed_b / speed_a if speed_a > 0 else np.nan
    row["newly_failed"] = int(part["newly_failed"].sum())
    row["fixed"] = int(part["fixed"].sum())
    return row


def _holm_by_condition(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Add ``m_p_holm``: each ``m_p`` Holm-corrected across the methods of its condition."""
    for name in names:
        table[f"{name}_p_holm"] = np.nan
    for _, part in table.groupby(CONDITION, sort=False):
        for name in names:
            table.loc[part.index, f"{name}_p_holm"] = holm(part[f"{name}_p"])
    return table


def _against_reference(table: pd.DataFrame, per_image: pd.DataFrame,
                       metrics: list[MetricInfo], baseline: str | None) -> pd.DataFrame:
    """Add ``reference`` and each run's mean per-image difference to it (``m_vs_reference_*``)."""
    primary, names = metrics[0], [info.name for info in metrics]
    fixed = None if baseline is None else resolve_baseline(baseline, table["method"])
    images_of = {key: part for key, part in per_image.groupby(CONDITION, sort=False)}
    table["reference"] = pd.Series(None, index=table.index, dtype="object")
    for column in [f"{name}_vs_reference_{side}" for name in names for side in ("a", "b")]:
        table[column] = np.nan
    for key, part in table.groupby(CONDITION, sort=False):
        reference = fixed
        if reference is None:  # the best of run A by the primary metric
            best = best_row(part.assign(**{primary.name: part[f"{primary.name}_a"]}), primary)
            reference = None if best is None else best["method"]
        if reference is None:
            continue
        table.loc[part.index, "reference"] = reference
        at = images_of.get(key, per_image.iloc[:0])
        for name in names:
            for side in ("a", "b"):
                grid = at.pivot_table(index=IMAGE_KEYS, columns="method",
                                      values=f"{name}_{side}", aggfunc="mean", sort=False)
                if reference in grid.columns:
                    means = grid.sub(grid[reference], axis=0).mean()
                    table.loc[part.index, f"{name}_vs_reference_{side}"] = (
                        part["method"].map(means).to_numpy())
    return table


def compared_metrics(comparison: pd.DataFrame) -> list[MetricInfo]:
    """The metrics of :func:`compare`'s table (every ``m`` with an ``m_diff`` column)."""
    return [metric_info(column[:-len("_diff")]) for column in comparison.columns
            if column.endswith("_diff")]


def row_status(row: dict, metrics: list[MetricInfo], tolerances: dict[str, float]) -> str:
    """The status of one row of :func:`compare`'s table.

    - ``"regression"`` when some cell newly fails, or the interval of some metric's
      difference lies entirely on its worse side of 0 (below for a higher-is-better metric,
      above for a lower-is-better one) and the mean difference exceeds the tolerance;
    - ``"improvement"`` when one lies entirely on its better side and nothing regressed;
    - ``"unchanged"`` otherwise, including when fewer than two images leave no interval.

    The status is per row, uncorrected for the number of rows, so that a gate misses
    nothing: a uniform 1 dB loss on 3 images is a regression, although no Wilcoxon test on 3
    images can be significant. ``m_p_holm`` says which differences survive the correction
    across methods.
    """
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
