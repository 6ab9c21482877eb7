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
from reports.stats import method_labels, t_half_width

#: Two cells are the same measurement when all of these agree (the image's size too: the
#: same image name cropped differently is a different image).
PAIR_KEYS = ["dataset", "image", "height", "width", "channels", "noise", "level", "noise_params",
             "seed", "mode", "denoiser", "device", "method"]
#: One comparison row per value of these.
COMPARE_GROUP = ["noise", "mode", "level", "denoiser", "device", "method"]
STATUSES = ("regression", "improvement", "unchanged")
#: Exit status of ``bench compare --fail-on-regression`` when a regression is flagged.
EXIT_REGRESSION = 1


def pair_cells(results_a: pd.DataFrame, results_b: pd.DataFrame) -> pd.DataFrame:
    """Join the cells both runs measured, on :data:`PAIR_KEYS`.

    Returns
    -------
    pandas.DataFrame
        The key columns, then ``psnr``, ``ssim``, ``mpix_per_s`` and ``status`` of each run
        with suffixes ``_a`` and ``_b``. Cells pair on their method too, so each parameter
        set of a denoiser is compared with the same parameter set in the other run.

    Raises
    ------
    DataError
        When the runs have no cell in common.
    """
    values = ["psnr", "ssim", "mpix_per_s", "status"]
    a, b = (results.assign(method=method_labels(results)).drop_duplicates(PAIR_KEYS)[PAIR_KEYS + values]
            for results in (results_a, results_b))
    paired = a.merge(b, on=PAIR_KEYS, suffixes=("_a", "_b"))
    if paired.empty:
        raise DataError("the two runs have no cell in common (same dataset, image and size, "
                        "noise, level, seed, mode, denoiser, its sweep parameters and device)")
    return paired


def compare(results_a: pd.DataFrame, results_b: pd.DataFrame, *, confidence: float = 0.95,
            psnr_tolerance: float = 0.01, ssim_tolerance: float = 1e-4) -> pd.DataFrame:
    """Paired differences of PSNR and SSIM between two runs, per condition and denoiser.

    Parameters
    ----------
    results_a, results_b : pandas.DataFrame
        Results of the baseline run (A) and of the candidate run (B), see
        :data:`bench.store.results.COLUMNS`.
    confidence : float
        Coverage of the paired t-intervals of the mean differences.
    psnr_tolerance : float
        Mean PSNR differences smaller than this, in dB, are never flagged, however tight
        their interval (floating-point noise between machines is not a regression).
    ssim_tolerance : float
        The same for SSIM (unitless).

    Returns
    -------
    pandas.DataFrame
        One row per noise, mode, level, denoiser and device measured in both runs, with
        ``method``, ``pairs`` (cells in common), ``n`` (pairs ``ok`` in both runs),
        ``psnr_a``, ``psnr_b`` (means over those pairs, dB), ``psnr_diff`` (mean of B - A,
        dB), ``psnr_ci`` (half-width of its paired t-interval; NaN when ``n < 2``),
        ``ssim_a``, ``ssim_b``, ``ssim_diff``, ``ssim_ci``, ``mpix_ratio`` (median MP/s of B
        over that of A: above 1 means B is faster), ``newly_failed`` (pairs ``ok`` in A, not
        in B), ``fixed`` (the reverse) and ``status``:

        - ``"regression"`` when some cell newly fails, or the interval of the PSNR or SSIM
          difference lies entirely below 0 (and the mean difference exceeds the tolerance);
        - ``"improvement"`` when one lies entirely above 0 and nothing regressed;
        - ``"unchanged"`` otherwise, including when ``n < 2`` leaves no interval.

    Raises
    ------
    DataError
        When the runs have no cell in common.
    """
    paired = pair_cells(results_a, results_b)
    both = (paired["status_a"] == "ok") & (paired["status_b"] == "ok")
    paired["newly_failed"] = (paired["status_a"] == "ok") & (paired["status_b"] != "ok")
    paired["fixed"] = (paired["status_a"] != "ok") & (paired["status_b"] == "ok")
    paired["psnr_diff"] = (paired["psnr_b"] - paired["psnr_a"]).where(both)
    paired["ssim_diff"] = (paired["ssim_b"] - paired["ssim_a"]).where(both)
    for column in ("psnr_a", "psnr_b", "ssim_a", "ssim_b", "mpix_per_s_a", "mpix_per_s_b"):
        paired[column] = paired[column].where(both)

    rows = []
    for key, part in paired.groupby(COMPARE_GROUP, sort=False):
        row = dict(zip(COMPARE_GROUP, key))
        row["pairs"] = len(part)
        row["n"] = int(part["psnr_diff"].notna().sum())
        for metric in ("psnr", "ssim"):
            diff = part[f"{metric}_diff"].dropna()
            row[f"{metric}_a"] = part[f"{metric}_a"].mean()
            row[f"{metric}_b"] = part[f"{metric}_b"].mean()
            row[f"{metric}_diff"] = diff.mean() if len(diff) else np.nan
            row[f"{metric}_ci"] = t_half_width(diff.std(), len(diff), confidence)
        speed_a, speed_b = part["mpix_per_s_a"].median(), part["mpix_per_s_b"].median()
        row["mpix_ratio"] = speed_b / speed_a if speed_a > 0 else np.nan
        row["newly_failed"] = int(part["newly_failed"].sum())
        row["fixed"] = int(part["fixed"].sum())
        row["status"] = _verdict(row, psnr_tolerance, ssim_tolerance)
        rows.append(row)
    columns = COMPARE_GROUP + ["pairs", "n", "psnr_a", "psnr_b", "psnr_diff", "psnr_ci",
                               "ssim_a", "ssim_b", "ssim_diff", "ssim_ci", "mpix_ratio",
                               "newly_failed", "fixed", "status"]
    return pd.DataFrame(rows, columns=columns)


def _verdict(row: dict, psnr_tolerance: float, ssim_tolerance: float) -> str:
    worse, better = row["newly_failed"] > 0, False
    for metric, tolerance in (("psnr", psnr_tolerance), ("ssim", ssim_tolerance)):
        mean, half = row[f"{metric}_diff"], row[f"{metric}_ci"]
        if not (np.isfinite(mean) and np.isfinite(half)) or abs(mean) < tolerance:
            continue
        worse |= mean + half < 0
        better |= mean - half > 0
    if worse:
        return "regression"
    return "improvement" if better else "unchanged"


def regressions(comparison: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`compare`'s table flagged ``"regression"``."""
    return comparison[comparison["status"] == "regression"].reset_index(drop=True)
