"""Render ``report.html``: one self-contained file, every image embedded as a data: URI.

Rendering goes through Jinja2 with autoescape on, so every string a plugin can supply (denoiser
names, parameters, error messages, dataset names) reaches the page as text, never as markup.
The page loads nothing: inline CSS, no script, no external reference.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict
from pathlib import Path

from reports import fmt
from reports._html_template import CSS, TEMPLATE
from reports.build import ReportData, difference_label, timing_note
from reports.paired import TIE_NOTE, TOO_FEW


def data_uri(path: str | Path, mime: str = "image/png") -> str:
    """The content of ``path`` as a ``data:`` URI."""
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _environment():
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(number=fmt.number, rate=fmt.rate, level=fmt.level, ci=fmt.mean_ci,
                       count=fmt.count, score=fmt.score, name=fmt.name,
                       unit_header=fmt.unit_header, dash=_dash, difference=fmt.difference,
                       ties=fmt.ties)
    return env


def _dash(value) -> str:
    """A method name, ``"–"`` when there is none (a metric no cell scored)."""
    return "–" if value is None or value != value else value


def _lines(metrics) -> str:
    """``"PSNR (dB) on top, then SSIM"``: the order of the metrics' lines in a cell."""
    parts = [f"{fmt.name(info)} ({info.unit})" if info.unit else fmt.name(info) for info in metrics]
    return parts[0] + " on top" + "".join(f", then {part}" for part in parts[1:])


def render_html(data: ReportData) -> str:
    """The report page as a string.

    Parameters
    ----------
    data : ReportData
        From :func:`reports.build.gather`; its ``metrics`` give the columns (one per metric,
        primary first) and its ``margin`` the "fastest near the winner" margin.
    """
    run, manifest = data.run, data.run.manifest
    env = manifest.get("environment", {})
    metrics = data.metrics
    grids = []
    for grid in data.grids:
        tiles = []
        for tile in grid.tiles:
            path = run.run_dir / tile.path
            if path.is_file():
                tiles.append(dict(asdict(tile), reference=tile.reference, uri=data_uri(path)))
        grids.append({"title": grid.title, "anchor": grid.anchor, "tiles": tiles})
    results = run.results
    names = fmt.words([fmt.name(info) for info in metrics])
    context = {
        "css": CSS, "run": run, "manifest": manifest, "env": env,
        "cpu": env.get("cpu", {}), "sweep": manifest.get("sweep", {}),
        "sweep_items": [(key, json.dumps(value, default=str))
                        for key, value in manifest.get("sweep", {}).items()],
        "origins": manifest.get("denoiser_origins", {}),
        "results": results, "summary": data.summary,
        "metrics": metrics, "primary": metrics[0], "metric_names": names,
        "metric_lines": _lines(metrics),
        "direction_note": fmt.direction_note(metrics, prefix=" ", suffix="."),
        "ok_cells": int((results["status"] == "ok").sum()),
        "n_images": results[["dataset", "image"]].drop_duplicates().shape[0],
        "n_seeds": results["seed"].nunique(),
        "n_conditions": data.summary[["noise", "mode", "level"]].drop_duplicates().shape[0],
        "several_modes": data.summary["mode"].nunique() > 1,
        "winners": data.winners.to_dict("records"), "ranking": data.ranking.to_dict("records"),
        "margin": fmt.margin(data.margin, metrics[0]),
        "tie_note": TIE_NOTE, "too_few": TOO_FEW, "difference_to": difference_label(data),
        "tables": data.tables, "grids": grids, "failures": data.failures,
        "timing_note": timing_note(results), "failure_groups": data.failure_groups, "params": data.params,
        "figures": [(title, data_uri(path)) for title, path in data.figures.items()],
    }
    return _environment().from_string(TEMPLATE).render(**context)
