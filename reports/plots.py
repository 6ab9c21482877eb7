"""Figures of a run, drawn with matplotlib's Agg renderer and saved as PNG files.

The figures are built on :class:`matplotlib.figure.Figure` directly, without ``pyplot``, so
drawing them changes no global backend or state: safe in a notebook or a headless job. The
``*_figure`` functions return the figure unsaved (to show or adjust in a notebook); the
``plot_*`` functions save it. Every metric of the run gets its row of panels against the
noise level; the throughput figure plots the primary metric.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.metrics import MetricInfo
from reports.stats import CI_SUFFIX, speed_quality, summary_metrics

#: Resolution of the saved figures.
DPI = 110
NOISY_STYLE = {"color": "0.35", "linestyle": ":", "marker": "x", "linewidth": 1.4}
#: Panels per row of the throughput figure.
SPEED_COLUMNS = 2
#: Height of one metric's row of the quality-against-level figure, in inches.
ROW_HEIGHT = 3.0


def method_colours(methods) -> dict[str, tuple]:
    """A fixed colour per method: tab10 without its grey (kept for the noisy input), then tab20."""
    from matplotlib import colormaps

    methods = list(dict.fromkeys(methods))
    if len(methods) <= 9:
        palette = [colormaps["tab10"](i) for i in range(10) if i != 7]
    else:
        palette = [colormaps["tab20"](i) for i in range(20) if i not in (14, 15)]
    return {m: palette[i % len(palette)] for i, m in enumerate(methods)}


def _panels(summary: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = summary[["noise", "mode"]].drop_duplicates()
    return list(pairs.itertuples(index=False, name=None))


def _panel_title(noise: str, mode: str, several_modes: bool) -> str:
    return f"{noise} ({mode})" if several_modes else noise


def axis_label(info: MetricInfo, *, prefix: str = "") -> str:
    """``"PSNR (dB)"``; ``"TOY (lower is better)"`` for a metric that improves downwards."""
    label = prefix + info.label
    return label if info.higher_is_better else f"{label} (lower is better)"


def quality_vs_level_figure(summary: pd.DataFrame, baseline: pd.DataFrame, *,
                            metrics: list[MetricInfo] | None = None,
                            colours: dict | None = None):
    """The figure of :func:`plot_quality_vs_level`, not saved.

    Returns
    -------
    matplotlib.figure.Figure
        One row of panels per metric (primary on top), one column per noise and mode.
    """
    from matplotlib.figure import Figure

    metrics = summary_metrics(summary, metrics)
    colours = colours or method_colours(summary["method"])
    panels = _panels(summary)
    several_modes = summary["mode"].nunique() > 1
    fig = Figure(figsize=(max(2.9 * len(panels) + 1.9, 7.5), ROW_HEIGHT * len(metrics)), dpi=DPI,
                 layout="constrained")
    axes = fig.subplots(len(metrics), len(panels), squeeze=False)
    for column, (noise, mode) in enumerate(panels):
        part = summary[(summary["noise"] == noise) & (summary["mode"] == mode)]
        base = baseline[(baseline["noise"] == noise) & (baseline["mode"] == mode)]
        levels = sorted(part["level"].unique())
        position = {lv: i for i, lv in enumerate(levels)}  # levels as evenly spaced categories
        methods = list(part["method"].unique())
        width = 0.5 if len(levels) > 1 else 0.8  # methods side by side within a level
        shift = {m: (i - (len(methods) - 1) / 2) * width / max(len(methods), 1)
                 for i, m in enumerate(methods)}
        base = base[base["level"].isin(position)].sort_values("level")
        for row, info in enumerate(metrics):
            metric = info.name
            ax = axes[row, column]
            ax.plot(base["level"].map(position), base[metric], label="noisy input", **NOISY_STYLE)
            for method in methods:
                lines = part[part["method"] == method].sort_values("level")
                if lines[metric].isna().all():
                    continue  # every cell failed: nothing to draw
                ax.errorbar(lines["level"].map(position) + shift[method], lines[metric],
                            yerr=lines[f"{metric}{CI_SUFFIX}"].fillna(0), color=colours[method],
                            marker="o", markersize=4, linewidth=1.5, capsize=2, label=method)
            ax.set_xticks(range(len(levels)))
            ax.set_xticklabels([f"{v:g}" for v in levels])
            ax.set_xlim(-0.6, len(levels) - 0.4)
            ax.grid(True, axis="y", alpha=0.3)
            if row == 0:
                ax.set_title(_panel_title(noise, mode, several_modes), fontsize=11)
            if row == len(metrics) - 1:
                ax.set_xlabel("noise level")
            if column == 0:
                ax.set_ylabel(axis_label(info))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for ax in axes.flat[1:]:  # methods missing from the first panel
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    fig.legend(list(seen.values()), list(seen.keys()), loc="outside right center", fontsize=9,
               frameon=False)
    return fig


def plot_quality_vs_level(summary: pd.DataFrame, baseline: pd.DataFrame, path: str | Path, *,
                          metrics: list[MetricInfo] | None = None,
                          colours: dict | None = None) -> Path:
    """Each metric against noise level: one row per metric (PSNR, SSIM, ...), one panel per noise.

    One line per method, with its 95% interval as error bars; the noisy input is dotted grey.
    Levels are evenly spaced categories (level 0, e.g. real noisy/clean pairs, included) and
    the methods are drawn side by side within each level, so that the error bars do not hide
    one another.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`reports.stats.summarise_ci`.
    baseline : pandas.DataFrame
        Output of :func:`reports.stats.noisy_baseline`.
    path : str or Path
        PNG file to write.
    metrics : list of MetricInfo, optional
        One row each, primary on top; :func:`reports.stats.summary_metrics` by default.
    colours : dict, optional
        Method to colour; :func:`method_colours` of the summary's methods when omitted.

    Returns
    -------
    Path
        ``path``.
    """
    fig = quality_vs_level_figure(summary, baseline, metrics=metrics, colours=colours)
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def quality_vs_speed_figure(summary: pd.DataFrame, *, metrics: list[MetricInfo] | None = None,
                            colours: dict | None = None):
    """The figure of :func:`plot_quality_vs_speed`, not saved.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    metrics = summary_metrics(summary, metrics)
    primary = metrics[0]
    colours = colours or method_colours(summary["method"])
    points = speed_quality(summary, metrics=metrics)
    points = points[points["mpix_per_s"] > 0]
    panels = _panels(summary)
    several_modes = summary["mode"].nunique() > 1
    columns = min(len(panels), SPEED_COLUMNS)
    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(5.0 * columns + 1.4, 3.7 * rows), dpi=DPI, layout="constrained")
    grid = fig.subplots(rows, columns, squeeze=False)
    axes = list(grid.flat)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, (noise, mode) in zip(axes, panels):
        part = points[(points["noise"] == noise) & (points["mode"] == mode)]
        for _, point in part.iterrows():
            gpu = point["device"] != "cpu"
            ax.scatter(point["mpix_per_s"], point[primary.name], s=46,
                       color=colours[point["method"]], marker="^" if gpu else "o", zorder=3,
                       edgecolors="black" if point["pareto"] else "none", linewidths=1.2)
        front = part[part["pareto"]].sort_values("mpix_per_s")
        if len(front) > 1:
            ax.step(front["mpix_per_s"], front[primary.name], where="post", color="black",
                    linewidth=1, alpha=0.6, zorder=2)
        _log_axis(ax, part["mpix_per_s"])
        ax.margins(y=0.14)
        ax.set_title(_panel_title(noise, mode, several_modes), fontsize=11)
        ax.set_xlabel("throughput (MP/s, log scale)")
        ax.set_ylabel(axis_label(primary, prefix="mean "))
        _label_points(ax, part, primary)
    legend = [
        Line2D([], [], marker="o", linestyle="", color="0.4", label="CPU"),
        Line2D([], [], marker="^", linestyle="", color="0.4", label="GPU"),
        Line2D([], [], marker="o", linestyle="-", color="black", markerfacecolor="white",
               label="Pareto front"),
    ]
    fig.legend(handles=legend, loc="outside right center", fontsize=9, frameon=False)
    return fig


def plot_quality_vs_speed(summary: pd.DataFrame, path: str | Path, *,
                          metrics: list[MetricInfo] | None = None,
                          colours: dict | None = None) -> Path:
    """Mean primary metric against throughput (log MP/s), one panel per noise, Pareto front.

    Each point is one method: the mean of the primary metric (PSNR by default) over the
    noise's levels against the median MP/s. CPU methods are circles, GPU methods triangles;
    points on the Pareto front (no other method both faster and better, in the metric's
    direction) are ringed and joined by a step line.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`reports.stats.summarise_ci`.
    path : str or Path
        PNG file to write.
    metrics : list of MetricInfo, optional
        Primary first (only the primary is drawn); :func:`reports.stats.summary_metrics` by
        default.
    colours : dict, optional
        Method to colour; :func:`method_colours` of the summary's methods when omitted.

    Returns
    -------
    Path
        ``path``.
    """
    fig = quality_vs_speed_figure(summary, metrics=metrics, colours=colours)
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def _log_axis(ax, values: pd.Series) -> None:
    """Log x axis spanning at least a decade, with a margin, ticks labelled as plain numbers."""
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    decades = 1.0
    if len(values) and float(values.min()) > 0:
        low, high = math.log10(float(values.min())), math.log10(float(values.max()))
        decades = max(high - low, 1.0)
        pad = 0.12 * decades + (decades - (high - low)) / 2
        ax.set_xlim(10 ** (low - pad), 10 ** (high + pad))
    subs = (1.0,) if decades > 2.5 else (1.0, 2.0, 5.0)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", alpha=0.3)


def _label_points(ax, points: pd.DataFrame, primary: MetricInfo, *,
                  fontsize: float = 7.5) -> None:
    """Name each point, trying a few offsets so that labels do not cover one another."""
    ax.autoscale_view()
    scale = ax.figure.dpi / 72  # pixels per point
    panel = ax.get_window_extent()  # labels stay inside the panel
    offsets = [(5, 3, "left"), (5, -10, "left"), (-5, 3, "right"), (-5, -10, "right"),
               (5, 11, "left"), (5, -18, "left"), (-5, 11, "right"), (-5, -18, "right")]
    placed = []
    best_first = points.sort_values(primary.name, ascending=not primary.higher_is_better)
    for _, point in best_first.iterrows():
        label = str(point["method"])
        x, y = ax.transData.transform((point["mpix_per_s"], point[primary.name]))
        w, h = 0.56 * fontsize * len(label) * scale, 1.15 * fontsize * scale

        def box(dx, dy, align):
            left = x + dx * scale - (w if align == "right" else 0)
            return (left, y + dy * scale, left + w, y + dy * scale + h)

        choice = next((o for o in offsets if box(*o)[0] >= panel.x0 and box(*o)[2] <= panel.x1
                       and not any(_overlap(box(*o), other) for other in placed)), offsets[0])
        placed.append(box(*choice))
        ax.annotate(label, (point["mpix_per_s"], point[primary.name]), xytext=choice[:2],
                    textcoords="offset points", fontsize=fontsize, color="0.2", ha=choice[2])


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
