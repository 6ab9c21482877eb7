"""Rules from tuned parameters: each parameter as a function of the noise level.

Given the tuned value of a numeric parameter at several levels of one noise, :func:`fit_rule`
fits ``value = a + b * level`` by least squares and, from four levels on, also the best
continuous piecewise-linear rule with one knot at an interior level (``value = a + b * level
+ c * max(0, level - knot)``); the piecewise rule is kept when it removes at least half of
the linear rule's residual sum of squares. A categorical or integer parameter gets a step
rule instead: the value chosen at each level (:func:`step_rule`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rule:
    """A fitted rule ``value(level)``.

    Attributes
    ----------
    intercept, slope : float
        ``a`` and ``b`` of ``a + b * level``.
    knot : float or None
        The level where the slope changes (piecewise rule), or None.
    slope_after : float
        The change of slope after ``knot`` (``c``).
    r2 : float
        Coefficient of determination of the fit over the tuned values.
    """

    intercept: float
    slope: float
    knot: float | None = None
    slope_after: float = 0.0
    r2: float = float("nan")

    def __call__(self, level):
        level = np.asarray(level, dtype=float)
        value = self.intercept + self.slope * level
        if self.knot is not None:
            value = value + self.slope_after * np.maximum(0.0, level - self.knot)
        return value

    def describe(self, variable: str = "sigma") -> str:
        """``0.41 + 0.0093 sigma`` or its piecewise form, with R²."""
        text = f"{self.intercept:.4g} {'+' if self.slope >= 0 else '-'} {abs(self.slope):.4g} {variable}"
        if self.knot is not None:
            text += (f" {'+' if self.slope_after >= 0 else '-'} {abs(self.slope_after):.4g} "
                     f"max(0, {variable} - {self.knot:g})")
        return f"{text} (R² {self.r2:.2f})"


def _least_squares(columns: list[np.ndarray], values: np.ndarray) -> tuple[np.ndarray, float]:
    design = np.stack(columns, axis=1)
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    residual = values - design @ coefficients
    return coefficients, float(residual @ residual)


def fit_rule(levels, values) -> Rule | None:
    """The linear or one-knot piecewise-linear rule through ``(level, value)`` points.

    Returns None with fewer than two distinct levels.
    """
    x = np.asarray(levels, dtype=float)
    y = np.asarray(values, dtype=float)
    if len(np.unique(x)) < 2:
        return None
    total = float(((y - y.mean()) ** 2).sum())

    def r2(rss: float) -> float:
        return 1.0 - rss / total if total > 0 else 1.0

    ones = np.ones_like(x)
    (a, b), rss = _least_squares([ones, x], y)
    best, best_rss = Rule(float(a), float(b), r2=r2(rss)), rss
    if len(np.unique(x)) >= 4 and rss > 1e-12 * total:  # an exact line needs no knot
        for knot in np.unique(x)[1:-1]:
            (pa, pb, pc), prss = _least_squares([ones, x, np.maximum(0.0, x - knot)], y)
            if prss <= 0.5 * rss and (best.knot is None or prss < best_rss):
                best, best_rss = Rule(float(pa), float(pb), float(knot), float(pc), r2(prss)), prss
    return best


def step_rule(levels, values) -> str:
    """``"3 up to 25, 5 up to 45, 7 above"``: the value chosen at each level, runs merged."""
    pairs = sorted(zip((float(v) for v in levels), values))
    runs: list[list] = []
    for level, value in pairs:
        if runs and runs[-1][1] == value:
            runs[-1][0] = level
        else:
            runs.append([level, value])
    parts = [f"{value} up to {level:g}" for level, value in runs[:-1]]
    parts.append(f"{runs[-1][1]} above" if len(runs) > 1 else f"{runs[-1][1]} throughout")
    return ", ".join(parts)
