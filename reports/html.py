"""Render ``report.html``: one self-contained file, every image embedded as a data: URI.

Rendering goes through Jinja2 with autoescape on, so every string a plugin can supply (denoiser
names, parameters, error messages, dataset names) reaches the page as text, never as markup.
The page loads nothing: inline CSS, no script, no external reference.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import asdict
from pathlib import Path

from reports import fmt
from reports.build import ReportData
from reports.context import ReportContext, report_context

#: The package folder of the page's Jinja2 templates (shipped as package data).
TEMPLATES = "templates"
#: The page's template, in :data:`TEMPLATES`; it includes ``report.css.j2``, the stylesheet.
TEMPLATE = "report.html.j2"


def data_uri(path: str | Path, mime: str = "image/png") -> str:
    """The content of ``path`` as a ``data:`` URI."""
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("reports", TEMPLATES),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(number=fmt.number, rate=fmt.rate, level=fmt.level, ci=fmt.mean_ci,
                       count=fmt.count, score=fmt.score, name=fmt.name,
                       unit_header=fmt.unit_header, dash=fmt.dash, difference=fmt.difference,
                       ties=fmt.ties)
    return env


def render_html(data: ReportData) -> str:
    """The report page as a string.

    Parameters
    ----------
    data : ReportData
        From :func:`reports.build.gather`; its ``metrics`` give the columns (one per metric,
        primary first) and its ``margin`` the "fastest near the winner" margin.
    """
    context = report_context(data)
    values = vars(context) | {"grids": _embedded_grids(context),
                              "figures": [(title, data_uri(path))
                                          for title, path in context.figures.items()]}
    return _environment().get_template(TEMPLATE).render(**values)


def _embedded_grids(context: ReportContext) -> list[dict]:
    """Each grid's title, anchor and the tiles whose crop exists, each with its ``data:`` URI."""
    grids = []
    for grid in context.grids:
        tiles = []
        for tile in grid.tiles:
            path = context.run.run_dir / tile.path
            if path.is_file():
                tiles.append(dict(asdict(tile), reference=tile.reference, uri=data_uri(path)))
        grids.append({"title": grid.title, "anchor": grid.anchor, "tiles": tiles})
    return grids
