"""Paired statistics: every method against a reference method on the same noisy images.

Every method of a run denoises the same noisy images, so two methods are compared image by
image: the per-image differences cancel what makes one image harder than another, and a
difference far smaller than the spread of the images can be told apart. The steps, for each
noise, mode and level (a *condition*) and each metric:

1. the unit is the image: a method's seeds of one image are averaged first
   (:func:`reports.stats.image_means`), since they are noise draws on the same picture, not
   independent measurements;
2. for each method, the per-image differences method - reference over the images both
   finished, their mean and its Student-t interval over images;
3. one paired test per method: the Wilcoxon signed-rank test of those differences (two-sided;
   differences of exactly zero are dropped, as in Wilcoxon's original test, and differences
   that are all zero give p = 1);
4. Holm's step-down correction across the methods of the condition (the family is the
   comparisons with the reference), and a verdict at level ``alpha``.

A difference that is not significant is a *tie*; a tie is not equivalence: it says the test
could not tell the two methods apart on these images, not that they are equally good.
When even a perfect result could not be significant -- the exact test's smallest p-value with
``n`` images is ``2 / 2**n``, and Holm multiplies the smallest p-value by the number of
comparisons -- the verdict is :data:`TOO_FEW` rather than :data:`TIED` (8 images and 10
comparisons: 0.0078 x 10 = 0.078 > 0.05).

::

    from reports import load_run, paired_differences
    run = load_run("runs/20260101-120000")
    paired_differences(run.results)                    # against the best method of each condition
    paired_differences(run.results, baseline="bm3d")   # against BM3D
"""

from __future__ import annotations

import difflib
import math

import numpy as np
import pandas as pd

from bench.errors import DataError
from bench.metrics import MetricInfo
from reports.stats import CONDITION, GROUP, best_row, image_means, method_labels, run_metrics

#: Significance level of the paired tests, after Holm's correction.
ALPHA = 0.05
#: Verdicts of a method against the reference of its condition.
REFERENCE, BETTER, WORSE, TIED = "reference", "better", "worse", "tied"
#: The verdict when no difference could be significant with so few images (see the module).
TOO_FEW = "too few images to separate"
#: What :func:`reports.stats.winners` says when every other method is significantly worse.
SEPARATED = "separated"
#: Said wherever ties are shown.
TIE_NOTE = ("A tie is not equivalence: the paired test could not tell the methods apart on "
            "these images, which does not show that they are equally good.")


def wilcoxon_p(differences) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test of paired differences.

    Parameters
    ----------
    differences : array_like
        One difference per image (NaN values are ignored).

    Returns
    -------
    float
        The p-value of :func:`scipy.stats.wilcoxon` on the nonzero differences (exact for up
        to 50 of them, the normal approximation beyond); 1.0 when every difference is zero
        (no evidence of a difference; scipy would warn or raise); NaN when there is none.
    """
    from scipy import stats

    values = np.asarray(differences, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    nonzero = values[values != 0]
    if nonzero.size == 0:
        return 1.0
    return float(stats.wilcoxon(nonzero).pvalue)


def wilcoxon_columns(differences: np.ndarray) -> np.ndarray:
    """:func:`wilcoxon_p` of every column of an images x methods array of differences.

    Columns that are complete and free of zeros (the usual case: every method finished every
    image) go to :func:`scipy.stats.wilcoxon` in one call along axis 0; the others one by one.
    """
    from scipy import stats

    differences = np.asarray(differences, dtype=float)
    p = np.full(differences.shape[1], np.nan)
    clean = np.isfinite(differences).all(axis=0) & (differences != 0).all(axis=0)
    if differences.shape[0] and clean.any():
        p[clean] = np.atleast_1d(stats.wilcoxon(differences[:, clean], axis=0).pvalue)
    for column in np.flatnonzero(~clean):
        p[column] = wilcoxon_p(differences[:, column])
    return p


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979, Scand. J. Statist. 6:65-70).

    The k-th smallest of m p-values is multiplied by ``m - k + 1``; the adjusted values are
    made non-decreasing in that order and capped at 1. A hypothesis is rejected at level
    ``alpha`` when its adjusted p-value is below ``alpha``.

    Parameters
    ----------
    p_values : array_like
        Raw p-values of one family; NaN entries are left out of the family and stay NaN.

    Returns
    -------
    numpy.ndarray
        The adjusted p-values, in the input's order.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    m = valid.size
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for k, index in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[index]))
        adjusted[index] = running
    return adjusted


def smallest_p(n: int) -> float:
    """The smallest two-sided p-value the exact Wilcoxon test can give with ``n`` differences.

    ``2 / 2**n`` (every difference of one sign); 1 with none.
    """
    return 1.0 if n < 1 else min(1.0, 2.0 / 2.0 ** n)


def can_separate(images: int, comparisons: int, alpha: float = ALPHA) -> bool:
    """Whether any of ``comparisons`` paired tests over ``images`` images could be significant.

    Holm's first step asks the smallest p-value to be at most ``alpha / comparisons``; the
    exact Wilcoxon test cannot go below :func:`smallest_p` of ``images``. With 8 images and 10
    comparisons (11 methods): 0.0078 x 10 > 0.05, so no; with 30 images, yes.
    """
    return comparisons > 0 and smallest_p(images) * comparisons < alpha


def compare_to_reference(values: pd.DataFrame, reference: str, info: MetricInfo, *,
                         confidence: float = 0.95, alpha: float = ALPHA) -> pd.DataFrame:
    """Paired differences of every method to ``reference`` at one condition, by one metric.

    Parameters
    ----------
    values : pandas.DataFrame
        One row per image, one column per method: the method's score of the image (its seeds
        averaged); NaN where the method has no ``ok`` cell on the image.
    reference : str
        The column every other one is compared with.
    info : MetricInfo
        The metric: its direction says which sign of the difference is ``better``.
    confidence : float
        Coverage of the t-intervals of the mean differences.
    alpha : float
        Level of the tests after Holm's correction.

    Returns
    -------
    pandas.DataFrame
        Indexed by method (the columns of ``values``): ``images`` (paired images), ``diff``
        (mean over them of method - reference, in the metric's unit), ``ci`` (half-width of
        its t-interval; NaN with fewer than two images), ``p`` (:func:`wilcoxon_p`),
        ``p_holm`` (:func:`holm` across the methods compared) and ``verdict``:
        :data:`REFERENCE` for the reference itself; :data:`TOO_FEW` for every method when no
        comparison of the condition could be significant (:func:`can_separate`, with the
        largest number of paired images); else :data:`BETTER` or :data:`WORSE` when
        ``p_holm < alpha`` (in the metric's direction), :data:`TIED` otherwise; None for a
        method that shares no image with the reference (or when the reference has none).
    """
    methods = list(values.columns)
    matrix = values.to_numpy(dtype=float)
    has_reference = reference in methods
    if has_reference:
        differences = matrix - matrix[:, [methods.index(reference)]]
    else:
        differences = np.full(matrix.shape, np.nan)
    n, mean, half = _column_means(differences, confidence)
    compared = np.array([has_reference and m != reference for m in methods], dtype=bool)
    p = np.full(len(methods), np.nan)
    if compared.any():
        p[compared] = wilcoxon_columns(differences[:, compared])
    table = pd.DataFrame({"images": n.astype("int64"), "diff": mean, "ci": half, "p": p},
                         index=pd.Index(methods, name="method"))
    table["p_holm"] = holm(table["p"])
    reference = reference if has_reference else None
    table["verdict"] = _verdicts(table, reference, info, alpha)
    return table


def _column_means(differences: np.ndarray, confidence: float) -> tuple[np.ndarray, ...]:
    """Per column of ``differences`` (NaN: no pair): the count, the mean and the half-width of
    its Student-t interval (NaN with fewer than two values)."""
    from scipy.special import stdtrit  # scipy.stats.t.ppf itself, without importing scipy.stats

    finite = np.isfinite(differences)
    n = finite.sum(axis=0)
    filled = np.where(finite, differences, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, filled.sum(axis=0) / n, np.nan)
        squares = np.where(finite, (differences - mean) ** 2, 0.0).sum(axis=0)
        std = np.sqrt(squares / (n - 1))
        half = np.where(n > 1, stdtrit(np.maximum(n - 1, 1), 0.5 + confidence / 2) * std
                        / np.sqrt(np.maximum(n, 1)), np.nan)
    return n, mean, half


def _verdicts(table: pd.DataFrame, reference: str | None, info: MetricInfo,
              alpha: float) -> pd.Series:
    """The ``verdict`` column of :func:`compare_to_reference` (``reference``: None when absent)."""
    compared = table["p"].notna()
    separable = can_separate(int(table.loc[compared, "images"].max()) if compared.any() else 0,
                             int(compared.sum()), alpha)
    sign = 1 if info.higher_is_better else -1
    verdicts = []
    for method, row in table.iterrows():
        if method == reference:
            verdicts.append(REFERENCE)
        elif not np.isfinite(row["p"]):
            verdicts.append(None)
        elif not separable:
            verdicts.append(TOO_FEW)
        elif row["p_holm"] < alpha:
            verdicts.append(BETTER if sign * row["diff"] > 0 else WORSE)
        else:
            verdicts.append(TIED)
    return pd.Series(verdicts, index=table.index, dtype="object")


def condition_values(per_image: pd.DataFrame, name: str) -> pd.DataFrame:
    """One condition's :func:`reports.stats.image_means` rows as an image x method table of ``name``."""
    keys = [c for c in per_image.columns if c in ("dataset", "image")]
    return per_image.set_index(keys + ["method"])[name].unstack("method")


def resolve_baseline(baseline: str, methods) -> str:
    """The method a ``--baseline`` names: a method label, or a denoiser run as one method only.

    Parameters
    ----------
    baseline : str
        A method label (``"bm3d"``, ``"dncnn@cuda"``, ``"median(size=5)"``) or a denoiser name.
    methods : iterable of str
        The methods of the run.

    Raises
    ------
    DataError
        When ``baseline`` names no method of the run (the closest are suggested), or names a
        denoiser that ran as several methods (they are listed).
    """
    methods = list(dict.fromkeys(methods))
    if baseline in methods:
        return baseline
    matching = [m for m in methods if m.split("(")[0].split("@")[0] == baseline]
    if len(matching) == 1:
        return matching[0]
    if matching:
        raise DataError(f"baseline '{baseline}' ran as several methods: {', '.join(matching)}; "
                        "name one of them")
    close = difflib.get_close_matches(baseline, methods, n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise DataError(f"baseline '{baseline}' is not a method of this run (methods: "
                    f"{', '.join(methods)}){hint}")


def references(results: pd.DataFrame, *, baseline: str | None = None,
               metrics: list[MetricInfo] | None = None) -> pd.DataFrame:
    """The reference method of each condition: ``baseline``, or the best by the primary metric.

    Returns
    -------
    pandas.DataFrame
        ``noise``, ``mode``, ``level``, ``reference``: the method with the best mean of the
        primary metric over its ``ok`` cells (the winner of :func:`reports.stats.winners`),
        or :func:`resolve_baseline` of ``baseline`` at every condition. Conditions where no
        cell finished have no row.
    """
    primary = run_metrics(results, metrics)[0]
    labelled = results.assign(method=method_labels(results))
    ok = labelled[labelled["status"] == "ok"]
    if baseline is not None:
        name = resolve_baseline(baseline, labelled["method"])
        conditions = ok[CONDITION].drop_duplicates()
        return conditions.assign(reference=name).reset_index(drop=True)
    means = ok.groupby(CONDITION + ["method"], sort=False)[primary.name].mean().reset_index()
    rows = []
    for key, part in means.groupby(CONDITION, sort=False):
        best = best_row(part.reset_index(drop=True), primary)
        if best is not None:
            rows.append(dict(zip(CONDITION, key), reference=best["method"]))
    return pd.DataFrame(rows, columns=CONDITION + ["reference"])


def paired_differences(results: pd.DataFrame, *, baseline: str | None = None,
                       metrics: list[MetricInfo] | None = None, confidence: float = 0.95,
                       alpha: float = ALPHA) -> pd.DataFrame:
    """Every method's paired difference to a reference method, per condition and metric.

    Parameters
    ----------
    results : pandas.DataFrame
        A run's results (see :data:`bench.store.results.COLUMNS`).
    baseline : str, optional
        The reference method (a method label or a denoiser name, see
        :func:`resolve_baseline`); by default the best method of each condition by the mean
        of the primary metric.
    metrics : list of MetricInfo, optional
        Primary first; :func:`reports.stats.run_metrics` of ``results`` by default.
    confidence : float
        Coverage of the t-intervals over images.
    alpha : float
        Level of the Holm-corrected Wilcoxon tests.

    Returns
    -------
    pandas.DataFrame
        One row per noise, mode, level and method with an ``ok`` cell: the columns of
        :data:`reports.stats.GROUP`, ``method``, ``reference``, ``images`` (images paired
        with the reference by the primary metric), then for every metric ``m``: ``m_diff``
        (mean over images of method - reference, the seeds of each image averaged first),
        ``m_ci`` (half-width of its t-interval over images), ``m_p`` (Wilcoxon signed-rank),
        ``m_p_holm`` (Holm-corrected across the methods of the condition) and ``m_verdict``
        (see :func:`compare_to_reference`). The reference's own row has difference 0 and
        verdict ``"reference"``; a condition where the baseline has no ``ok`` cell has NaN
        differences and no verdicts. Rows follow the conditions as first met, then the
        reference first and the others by their primary difference, best first.

    Raises
    ------
    DataError
        When ``baseline`` names no method of the run.
    """
    metrics = run_metrics(results, metrics)
    reference_of = {tuple(r[:3]): r[3] for r in references(
        results, baseline=baseline, metrics=metrics).itertuples(index=False)}
    per_image = image_means(results, metrics=metrics)
    columns = GROUP + ["method", "reference", "images"] + [
        f"{info.name}{suffix}" for info in metrics
        for suffix in ("_diff", "_ci", "_p", "_p_holm", "_verdict")]
    tables = []
    for key, part in per_image.groupby(CONDITION, sort=False):
        reference = reference_of.get(tuple(key))
        if reference is not None:
            table = _condition_differences(part, dict(zip(CONDITION, key)), reference, metrics,
                                           confidence=confidence, alpha=alpha)
            tables.append(table[columns])
    if not tables:
        return pd.DataFrame(columns=columns)
    return pd.concat(tables, ignore_index=True)


def _condition_differences(part: pd.DataFrame, condition: dict, reference: str,
                           metrics: list[MetricInfo], *, confidence: float,
                           alpha: float) -> pd.DataFrame:
    """:func:`paired_differences` at one condition: ``part`` holds its per-image means.

    Rows: the reference first, then the other methods by their primary difference, best first.
    """
    primary = metrics[0]
    identity = part.drop_duplicates("method").set_index("method")[["denoiser", "device"]]
    table = identity.assign(**condition, reference=reference)
    for info in metrics:
        tested = compare_to_reference(condition_values(part, info.name), reference, info,
                                      confidence=confidence, alpha=alpha)
        if info is primary:
            table["images"] = tested["images"]
        for column in ("diff", "ci", "p", "p_holm", "verdict"):
            table[f"{info.name}_{column}"] = tested[column]
    table = table.rename_axis("method").reset_index()
    order = table[f"{primary.name}_diff"] * (1 if primary.higher_is_better else -1)
    return table.assign(_first=table["method"] != reference, _order=-order).sort_values(
        ["_first", "_order"], na_position="last", kind="stable")
