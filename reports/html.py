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
from reports.build import ReportData, timing_note


def data_uri(path: str | Path, mime: str = "image/png") -> str:
    """The content of ``path`` as a ``data:`` URI."""
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _environment():
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(number=fmt.number, rate=fmt.rate, level=fmt.level,
                       psnr_label=fmt.psnr_label, ci=fmt.mean_ci, count=fmt.count)
    return env


def render_html(data: ReportData, *, margin_db: float = 0.5) -> str:
    """The report page as a string.

    Parameters
    ----------
    data : ReportData
        From :func:`reports.build.gather`.
    margin_db : float
        The margin used for "fastest near the winner", in dB (shown in the text).
    """
    run, manifest = data.run, data.run.manifest
    env = manifest.get("environment", {})
    grids = []
    for grid in data.grids:
        tiles = []
        for tile in grid.tiles:
            path = run.run_dir / tile.path
            if path.is_file():
                tiles.append(dict(asdict(tile), uri=data_uri(path)))
        grids.append({"title": grid.title, "anchor": grid.anchor, "tiles": tiles})
    results = run.results
    context = {
        "css": CSS, "run": run, "manifest": manifest, "env": env,
        "cpu": env.get("cpu", {}), "sweep": manifest.get("sweep", {}),
        "sweep_items": [(key, json.dumps(value, default=str))
                        for key, value in manifest.get("sweep", {}).items()],
        "origins": manifest.get("denoiser_origins", {}),
        "results": results, "summary": data.summary,
        "ok_cells": int((results["status"] == "ok").sum()),
        "n_images": results[["dataset", "image"]].drop_duplicates().shape[0],
        "n_seeds": results["seed"].nunique(),
        "n_conditions": data.summary[["noise", "mode", "level"]].drop_duplicates().shape[0],
        "several_modes": data.summary["mode"].nunique() > 1,
        "winners": data.winners, "ranking": data.ranking, "margin": f"{margin_db:g}",
        "tables": data.tables, "grids": grids, "failures": data.failures,
        "timing_note": timing_note(results), "failure_groups": data.failure_groups, "params": data.params,
        "figures": [(title, data_uri(path)) for title, path in data.figures.items()],
    }
    return _environment().from_string(TEMPLATE).render(**context)
