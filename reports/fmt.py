"""Number and label formatting shared by the reports and the terminal (plain text, unescaped).

Metric arguments are :class:`bench.metrics.MetricInfo` objects.
"""

from __future__ import annotations

import math
import numbers


def _missing(value) -> bool:
    """None or NaN, including NumPy's floating scalars (``numpy.float32("nan")``)."""
    return value is None or (isinstance(value, numbers.Real) and math.isnan(value))


def mean_ci(mean: float, half: float, digits: int) -> str:
    """``"28.41 ± 0.37"``; the mean alone when there is no interval; ``"–"`` when no mean.

    An infinite mean prints as ``"inf"`` (only :func:`score` writes ``"∞"``).
    """
    if _missing(mean):
        return "–"
    if _missing(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def difference(mean: float, half: float, digits: int) -> str:
    """A paired difference with its interval: ``"Δ -0.42 ± 0.13"``; ``""`` when missing."""
    if _missing(mean):
        return ""
    text = f"Δ {mean:+.{digits}f}"
    return text if _missing(half) else f"{text} ± {half:.{digits}f}"


def ties(tied, separation) -> str:
    """The winners table's "tied with it" cell: the tied methods, ``"–"`` when every other
    method is significantly worse, the verdict when there are too few images, ``""`` untested.
    """
    if separation is None or _missing(separation):
        return ""
    if separation == "tied":
        return ", ".join(tied)
    if separation == "separated":
        return "–"
    return str(separation)


def number(value: float, digits: int = 2) -> str:
    """Fixed-point with ``digits`` decimals; ``"–"`` when missing, ``"inf"`` when infinite."""
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


def score(value: float, info) -> str:
    """A metric's value under a crop: ``"31.20 dB"`` with a unit, ``"SSIM 0.853"`` without.

    ``"–"`` when missing; an infinite PSNR (an output equal to the clean image) is ``"∞ dB"``.
    """
    if _missing(value):
        return "–"
    if math.isinf(value):
        text = "∞" if value > 0 else "−∞"
    else:
        text = f"{value:.{info.decimals}f}"
    return f"{text} {info.unit}" if info.unit else f"{name(info)} {text}"


def name(info) -> str:
    """A metric's display name: ``"PSNR"``."""
    return info.name.upper()


def unit_header(info) -> str:
    """Header of a column of a metric's values: its unit (``"dB"``), else its name (``"SSIM"``)."""
    return info.unit or name(info)


def delta_header(info) -> str:
    """Header of a column of differences: ``"ΔPSNR dB"``, ``"ΔSSIM"``."""
    return f"Δ{name(info)}" + (f" {info.unit}" if info.unit else "")


def words(items) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def direction_note(metrics, *, prefix: str = "", suffix: str = "") -> str:
    """``prefix + "TOY: lower is better" + suffix`` when a metric improves downwards, else ``""``."""
    lower = [name(info) for info in metrics if not info.higher_is_better]
    return f"{prefix}{words(lower)}: lower is better{suffix}" if lower else ""


def margin(value: float, info) -> str:
    """A margin in a metric's unit: ``"0.5 dB"``, ``"0.01"``."""
    return f"{value:g} {info.unit}" if info.unit else f"{value:g}"


def count(n: int, noun: str) -> str:
    """``"1 cell"``, ``"3 cells"``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def dash(value) -> str:
    """A method label, ``"–"`` when there is none (None or NaN: a metric no cell scored)."""
    return "–" if _missing(value) else value
