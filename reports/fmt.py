"""Number formatting shared by the HTML and Markdown reports (plain text, unescaped)."""

from __future__ import annotations

import math


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def mean_ci(mean: float, half: float, digits: int) -> str:
    """``"28.41 ± 0.37"``; the mean alone when there is no interval; ``"–"`` when no mean."""
    if _missing(mean):
        return "–"
    if _missing(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def number(value: float, digits: int = 2) -> str:
    """Fixed-point with ``digits`` decimals; ``"–"`` when missing."""
    return "–" if _missing(value) else f"{value:.{digits}f}"


def signed(value: float, digits: int = 2) -> str:
    """Like :func:`number` with an explicit sign."""
    return "–" if _missing(value) else f"{value:+.{digits}f}"


def rate(value: float) -> str:
    """Megapixels per second with three significant digits; ``"–"`` when missing."""
    return "–" if _missing(value) or value <= 0 else f"{value:.3g}"


def level(value: float) -> str:
    """A noise level as typed (``25``, ``0.1``)."""
    return f"{value:g}"


def psnr_label(value: float) -> str:
    """PSNR under a crop: ``"31.20 dB"``, ``"∞"`` for the clean image."""
    if _missing(value):
        return "–"
    return "reference" if math.isinf(value) else f"{value:.2f} dB"


def count(n: int, noun: str) -> str:
    """``"1 cell"``, ``"3 cells"``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
