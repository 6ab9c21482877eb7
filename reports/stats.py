"""Summaries with confidence intervals, winners and rankings, as pandas DataFrames.

Every function takes a results table (see :data:`bench.store.results.COLUMNS`) or the output of
:func:`summarise_ci`, and returns a plain DataFrame, so the same numbers feed the reports,
the terminal and a notebook::

    from reports import load_run, summarise_ci, winners, rank
    run = load_run("runs/20260101-120000")
    summary = summarise_ci(run.results)      # one row per noise, mode, level, denoiser, device
    winners(summary)                         # who wins at each noise and level
    rank(summary)                            # mean rank of each method over all conditions

A *method* is a denoiser with the parameters the sweep set, on a device: ``"nlm"`` on the
CPU, ``"dncnn@cuda"`` on a GPU, ``"dncnn(precision=bf16)@cuda"``; one run can hold several
parameter sets of one denoiser, and each is its own method.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: The columns one summary row stands for.
GROUP = ["noise", "mode", "level", "denoiser", "device"]
#: The columns one condition (noise, mode and level) stands for.
CONDITION = ["noise", "mode", "level"]


def method_label(denoiser: str, device: str) -> str:
    """``denoiser`` on the CPU, ``denoiser@device`` elsewhere (no parameters named)."""
    from bench.sweep import method_name

    return method_name(denoiser, (), device)


def method_labels(results: pd.DataFrame) -> pd.Series:
    """The method of every row.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows with ``denoiser`` and ``device``, and the ``method`` the runner recorded
        (:func:`bench.sweep.method_name`: it names the parameters the sweep set).

    Returns
    -------
    pandas.Series
        The recorded ``method``; :func:`method_label` where none was recorded (tables made
        by hand, or runs written before the column existed).
    """
    fallback = pd.Series([method_label(d, v) for d, v in zip(results["denoiser"], results["device"])],
                         index=results.index, dtype="object")
    if "method" not in results:
        return fallback
    recorded = results["method"].astype("object")
    return recorded.where(recorded.notna() & (recorded != ""), fallback)


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
    from scipy import stats

    if n < 2 or not np.isfinite(std):
        return math.nan
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))


def _half_widths(std: pd.Series, n: pd.Series, confidence: float) -> pd.Series:
    return pd.Series([t_half_width(s, int(k), confidence) for s, k in zip(std, n)],
                     index=std.index, dtype="float64")


def summarise_ci(results: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Mean PSNR and SSIM with confidence intervals over images and seeds, and throughput.

    Parameters
    ----------
    results : pandas.DataFrame
        A run's results (see :data:`bench.store.results.COLUMNS`).
    confidence : float
        Coverage of the intervals (0.95 gives 95% intervals).

    Returns
    -------
    pandas.DataFrame
        One row per noise, mode, level and method (denoiser, device and parameter set), with
        columns ``method`` (see :func:`method_labels`), ``cells`` (all cells), ``failed`` (cells not ``ok``), ``n``
        (``ok`` cells: the images x seeds the means are over), ``psnr`` (mean, dB),
        ``psnr_ci`` (half-width of the t-interval, dB; NaN when ``n < 2``), ``ssim``,
        ``ssim_ci``, ``mpix_per_s`` (median megapixels per second) and ``seconds`` (median).
        Failed cells count in ``cells`` and ``failed`` only. Rows are ordered by noise (as
        first met), mode, level and mean PSNR, best first.
    """
    results = results.assign(method=method_labels(results))
    ok = results[results["status"] == "ok"]
    scores = ok.groupby(GROUP + ["method"], sort=False).agg(
        n=("psnr", "size"), psnr=("psnr", "mean"), psnr_std=("psnr", "std"),
        ssim=("ssim", "mean"), ssim_std=("ssim", "std"),
        mpix_per_s=("mpix_per_s", "median"), seconds=("seconds", "median"))
    counts = results.groupby(GROUP + ["method"], sort=False).agg(
        cells=("status", "size"), failed=("status", lambda s: int((s != "ok").sum())))
    summary = counts.join(scores)
    summary["n"] = summary["n"].fillna(0).astype("int64")
    summary["psnr_ci"] = _half_widths(summary["psnr_std"], summary["n"], confidence)
    summary["ssim_ci"] = _half_widths(summary["ssim_std"], summary["n"], confidence)
    summary = summary.reset_index()
    noise_order = {name: i for i, name in enumerate(results["noise"].drop_duplicates())}
    summary = summary.assign(_noise=summary["noise"].map(noise_order)).sort_values(
        ["_noise", "mode", "level", "psnr"], ascending=[True, True, True, False],
        na_position="last", kind="stable")
    columns = GROUP + ["method", "cells", "failed", "n", "psnr", "psnr_ci", "ssim", "ssim_ci",
                       "mpix_per_s", "seconds"]
    return summary[columns].reset_index(drop=True)


def noisy_baseline(results: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Mean PSNR and SSIM of the noisy inputs per noise, mode and level, with intervals.

    Each noisy image counts once, however many denoisers saw it.

    Returns
    -------
    pandas.DataFrame
        Columns ``noise``, ``mode``, ``level``, ``n``, ``psnr``, ``psnr_ci``, ``ssim``,
        ``ssim_ci``.
    """
    unique = results.drop_duplicates(["dataset", "image", "noise", "level", "noise_params",
                                      "seed", "mode"])
    base = unique.groupby(CONDITION, sort=False).agg(
        n=("noisy_psnr", "size"), psnr=("noisy_psnr", "mean"), psnr_std=("noisy_psnr", "std"),
        ssim=("noisy_ssim", "mean"), ssim_std=("noisy_ssim", "std"))
    base["psnr_ci"] = _half_widths(base["psnr_std"], base["n"], confidence)
    base["ssim_ci"] = _half_widths(base["ssim_std"], base["n"], confidence)
    return base.reset_index()[CONDITION + ["n", "psnr", "psnr_ci", "ssim", "ssim_ci"]]


def winners(summary: pd.DataFrame, *, margin_db: float = 0.5) -> pd.DataFrame:
    """The best method at each noise, mode and level, and the fastest one close to it.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`summarise_ci`.
    margin_db : float
        How far below the best mean PSNR, in dB, a method may be and still count as
        "close to the winner".

    Returns
    -------
    pandas.DataFrame
        One row per condition with at least one ``ok`` cell: ``noise``, ``mode``, ``level``,
        ``psnr_winner`` and its ``psnr``, ``ssim_winner`` and its ``ssim``, and
        ``fastest_near`` (the method with the highest median MP/s among those within
        ``margin_db`` of the best mean PSNR) with its ``fastest_psnr`` and
        ``fastest_mpix_per_s``. Ties go to the method listed first.
    """
    rows = []
    for key, part in summary.groupby(CONDITION, sort=False):
        part = part.dropna(subset=["psnr"])
        if part.empty:
            continue
        by_psnr = part.loc[part["psnr"].idxmax()]
        by_ssim = part.loc[part["ssim"].idxmax()]
        near = part[part["psnr"] >= by_psnr["psnr"] - margin_db]
        rated = near.dropna(subset=["mpix_per_s"])
        fastest = rated.loc[rated["mpix_per_s"].idxmax()] if not rated.empty else by_psnr
        rows.append({
            **dict(zip(CONDITION, key)),
            "psnr_winner": by_psnr["method"], "psnr": by_psnr["psnr"],
            "ssim_winner": by_ssim["method"], "ssim": by_ssim["ssim"],
            "fastest_near": fastest["method"], "fastest_psnr": fastest["psnr"],
            "fastest_mpix_per_s": fastest["mpix_per_s"],
        })
    return pd.DataFrame(rows, columns=CONDITION + [
        "psnr_winner", "psnr", "ssim_winner", "ssim", "fastest_near", "fastest_psnr",
        "fastest_mpix_per_s"])


def rank(summary: pd.DataFrame) -> pd.DataFrame:
    """Rank the methods at each condition by mean PSNR and SSIM; average the ranks.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`summarise_ci`.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method``, ``denoiser``, ``device``, ``psnr_rank`` and
        ``ssim_rank`` (mean rank over the conditions it finished, 1 = best),
        ``psnr_wins`` (conditions where it has the best mean PSNR), ``conditions``,
        ``psnr`` (mean of its per-condition mean PSNRs, dB) and ``mpix_per_s`` (median of
        its per-condition medians). Sorted by ``psnr_rank``, best first.
    """
    scored = summary.dropna(subset=["psnr"]).copy()
    grouped = scored.groupby(CONDITION, sort=False)
    scored["psnr_rank"] = grouped["psnr"].rank(ascending=False, method="min")
    scored["ssim_rank"] = grouped["ssim"].rank(ascending=False, method="min")
    table = scored.groupby(["method", "denoiser", "device"], sort=False).agg(
        psnr_rank=("psnr_rank", "mean"), ssim_rank=("ssim_rank", "mean"),
        psnr_wins=("psnr_rank", lambda r: int((r == 1).sum())),
        conditions=("psnr_rank", "size"), psnr=("psnr", "mean"),
        mpix_per_s=("mpix_per_s", "median"))
    return table.reset_index().sort_values(["psnr_rank", "psnr"], ascending=[True, False],
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


def pareto_front(speed: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Which points no other point beats on both speed and quality.

    Parameters
    ----------
    speed, quality : array_like
        One value per method, higher is better for both (e.g. MP/s and mean PSNR in dB).

    Returns
    -------
    numpy.ndarray of bool
        True for the points on the Pareto front; NaN points are never on it.
    """
    speed, quality = np.asarray(speed, float), np.asarray(quality, float)
    valid = np.isfinite(speed) & np.isfinite(quality)
    front = np.zeros(len(speed), dtype=bool)
    for i in np.flatnonzero(valid):
        beaten = (valid & (speed >= speed[i]) & (quality >= quality[i])
                  & ((speed > speed[i]) | (quality > quality[i])))
        front[i] = not beaten.any()
    return front


def speed_quality(summary: pd.DataFrame) -> pd.DataFrame:
    """Per noise, mode and method: mean PSNR and SSIM over the levels, median MP/s, front.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`summarise_ci`.

    Returns
    -------
    pandas.DataFrame
        Columns ``noise``, ``mode``, ``method``, ``device``, ``psnr``, ``ssim`` (means of the
        per-level means of the levels the method finished), ``mpix_per_s`` (median of the
        per-level medians) and ``pareto`` (on the speed-PSNR Pareto front of its noise and mode).
    """
    table = summary.dropna(subset=["psnr"]).groupby(
        ["noise", "mode", "method", "device"], sort=False).agg(
        psnr=("psnr", "mean"), ssim=("ssim", "mean"), mpix_per_s=("mpix_per_s", "median"))
    table = table.reset_index()
    table["pareto"] = False
    for _, part in table.groupby(["noise", "mode"], sort=False):
        table.loc[part.index, "pareto"] = pareto_front(part["mpix_per_s"], part["psnr"])
    return table
