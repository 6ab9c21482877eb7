"""Render ``report.md``: the report's tables in Markdown, images by path relative to the run."""

from __future__ import annotations

import html
import os

from reports import fmt
from reports.build import ReportData
from reports.context import ReportContext, report_context


def text(value) -> str:
    """``value`` as inert Markdown text: HTML escaped, table pipes and emphasis escaped."""
    escaped = html.escape(str(value), quote=False)
    for char in ("\\", "|", "`", "*", "[", "]"):
        escaped = escaped.replace(char, "\\" + char)
    return " ".join(escaped.split())


def table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    """A pipe table; columns whose index is in ``right`` are right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def render_markdown(data: ReportData) -> str:
    """The report as Markdown text (the same tables as the HTML page).

    Parameters
    ----------
    data : ReportData
        From :func:`reports.build.gather`; its ``metrics`` give the columns (one per metric,
        primary first) and its ``margin`` the "fastest near the winner" margin.
    """
    ctx = report_context(data)
    sections = (_header, _winners, _ranking, _quality, _plots, _visual, _failures, _environment)
    return "\n".join(line for section in sections for line in section(ctx))


def _direction(ctx: ReportContext) -> str:
    """``" TOY: lower is better."`` when a metric improves downwards, else ``""``."""
    return f" {text(ctx.lower_is_better)}." if ctx.lower_is_better else ""


def _header(ctx: ReportContext) -> list[str]:
    """The title and the run's cell counts."""
    return [f"# Denoising benchmark — {text(ctx.run.name)}", "",
            f"Run created {text(ctx.manifest.get('created', 'at an unknown time'))}: "
            f"{len(ctx.results)} cells, {ctx.ok_cells} finished, {len(ctx.failures)} failed or "
            f"timed out.", ""] + ([f"**Warning: {text(ctx.tuned_on_test)}**", ""]
                                  if ctx.tuned_on_test else [])


def _winners(ctx: ReportContext) -> list[str]:
    """Summary: the winners per noise and level, who ties with them, the fastest near them."""
    metrics, primary, modes = ctx.metrics, ctx.primary, ctx.several_modes
    out = ["## Summary", "", "### Winners per noise and level", "",
           f"Best mean {text(ctx.metric_names)} over images and seeds; "
           f"*tied with it*: the methods whose paired difference to the winner is not "
           f"significant (Wilcoxon signed-rank test over images, each image's seeds averaged "
           f"first, Holm-corrected across the methods of the level, 5%); –: every other method "
           f"is significantly worse; *{text(ctx.too_few)}*: with so few images no difference "
           f"could be significant (the exact test's smallest p-value with n images is 2/2^n, "
           f"and Holm multiplies it by the number of comparisons). {text(ctx.tie_note)} "
           f"*Fastest near the winner* is the method with the highest median MP/s within "
           f"{text(ctx.margin)} of the best mean {text(fmt.name(primary))}."
           + _direction(ctx), ""]
    header = ["noise"] + (["mode"] if modes else []) + ["level"]
    for info in metrics:
        header += [f"best {text(fmt.name(info))}", text(fmt.unit_header(info)), "tied with it"]
    header += ["fastest near the winner", text(fmt.unit_header(primary)), "MP/s"]
    rows = []
    for w in ctx.winners:
        row = [text(w["noise"])] + ([text(w["mode"])] if modes else []) + [fmt.level(w["level"])]
        for info in metrics:
            row += [text(fmt.dash(w[f"{info.name}_winner"])),
                    fmt.number(w[info.name], info.decimals),
                    text(fmt.ties(w[f"{info.name}_tied"], w[f"{info.name}_separation"]))]
        row += [text(w["fastest_near"]),
                fmt.number(w[f"fastest_{primary.name}"], primary.decimals),
                fmt.rate(w["fastest_mpix_per_s"])]
        rows.append(row)
    first = 2 if modes else 1  # the level column
    right = ({first} | {first + 3 * i + 2 for i in range(len(metrics))}
             | {len(header) - 2, len(header) - 1})
    return out + table(header, rows, right)


def _ranking(ctx: ReportContext) -> list[str]:
    """Summary: the overall ranking."""
    metrics, primary = ctx.metrics, ctx.primary
    rows = [[str(i), text(r["method"])] + [fmt.number(r[f"{info.name}_rank"]) for info in metrics]
            + [f"{r[primary.name + '_wins']} / {r['conditions']}",
               fmt.number(r[primary.name], primary.decimals), fmt.rate(r["mpix_per_s"])]
            for i, r in enumerate(ctx.ranking, 1)]
    header = (["#", "method"] + [f"{text(fmt.name(info))} rank" for info in metrics]
              + ["wins", f"mean {text(primary.label)}", "MP/s"])
    return ["### Overall ranking", ""] + table(header, rows, {0} | set(range(2, len(header))))


def _quality(ctx: ReportContext) -> list[str]:
    """The method x level tables, one per noise (and mode)."""
    out = ["## Quality by noise and level", "",
           f"Mean {text(' / '.join(info.label for info in ctx.metrics))} over images and seeds, "
           "± the half-width of its 95% interval over images (each image's seeds averaged "
           "first; none with a single image); (Δ …): the " + text(ctx.difference_to)
           + ", the mean over images of the per-image difference ± the half-width of its 95% "
           "t-interval over images. **bold**: the best of the column." + _direction(ctx) + " "
           + text(ctx.timing_note), ""]
    for t in ctx.tables:
        title = f"### {text(t.noise)} noise" + (
            f", {text(t.mode)} mode" if ctx.several_modes else "")
        rows = []
        for row in t.rows:
            cells = [_md_cell(c, ctx.metrics) for c in row.cells]
            label = f"*{text(row.label)}*" if row.baseline else text(row.label)
            rows.append([label] + cells + ["" if row.baseline else fmt.rate(row.mpix_per_s)])
        header = ["method"] + [f"level {fmt.level(lv)}" for lv in t.levels] + ["MP/s"]
        out += [title, ""] + table(header, rows, set(range(1, len(header))))
    return out


def _plots(ctx: ReportContext) -> list[str]:
    """The figures, linked by path relative to the run directory; nothing without figures."""
    if not ctx.figures:
        return []
    out = ["## Plots", ""]
    for title, path in ctx.figures.items():
        out += [f"![{text(title)}]({_relative(path, ctx.run.run_dir)})", ""]
    return out


def _visual(ctx: ReportContext) -> list[str]:
    """The crop grids, each crop with its image's scores; nothing without stored crops."""
    if not ctx.grids:
        return []
    out = ["## Visual comparison", "",
           f"Central crops of the stored images (first seed), {text(ctx.metric_names)} of the "
           f"whole image; **bold**: the best denoiser.", ""]
    for grid in ctx.grids:
        out += [f"### {text(grid.title)}", ""]
        header = [text(tile.label) for tile in grid.tiles]
        images = [f"![{text(tile.label)}]({tile.path})" for tile in grid.tiles]
        scores = [[_md_score(tile, info, first=i == 0) for tile in grid.tiles]
                  for i, info in enumerate(ctx.metrics)]
        out += table(header, [images] + scores)
    return out


def _failures(ctx: ReportContext) -> list[str]:
    """Failed cells by method, then by status and reason."""
    out = ["## Failures", ""]
    if not ctx.failure_groups:
        out += ["Every cell finished.", ""]
    for group in ctx.failure_groups:
        out += [f"### {text(group['method'])} — {fmt.count(group['total'], 'cell')}", ""]
        for reason in group["reasons"]:
            out += [f"- **{text(reason['status'])}** ({fmt.count(reason['count'], 'cell')}): "
                    f"{text(reason['error'])}",
                    "  - " + "; ".join(text(cell) for cell in reason["cells"])]
        out += [""]
    return out


def _environment(ctx: ReportContext) -> list[str]:
    """Machine, packages, datasets, denoiser origins and parameters, sweep configuration."""
    env, cpu, manifest = ctx.env, ctx.cpu, ctx.manifest
    rows = [["git commit", text(env.get("git_commit") or "unknown")],
            ["platform", text(env.get("platform", "unknown"))],
            ["CPU", text(f"{cpu.get('model', 'unknown')} ({cpu.get('cores', '?')} logical cores)")],
            ["GPU", text(", ".join(env.get("gpus") or ["none"]))],
            ["device", text(manifest.get("device", ""))]]
    rows += [[f"dataset {text(name)}",
              text(f"{info.get('images')} images, sha256 {info.get('sha256')}")]
             for name, info in manifest.get("datasets", {}).items()]
    rows += [[text(name), text(version)] for name, version in env.get("versions", {}).items()]
    out = ["## Environment", ""] + table(["", ""], rows)
    out += table(["denoiser", "from", "parameters"],
                 [[text(p.denoiser), text(ctx.origins.get(p.denoiser, "")), text(p.params)]
                  for p in ctx.params.itertuples()])
    out += ["### Sweep configuration", ""]
    return out + table(["setting", "value"],
                       [[text(key), text(value)] for key, value in ctx.sweep_items])


def _md_score(tile, info, *, first: bool) -> str:
    """A tile's score by ``info``, bold for the best denoiser; "reference" for the clean image."""
    if tile.reference:
        return "reference" if first else ""
    label = text(fmt.score(tile.scores.get(info.name), info))
    return f"**{label}**" if info.name in tile.best else label


def _md_cell(cell: dict | None, metrics) -> str:
    if cell is None:
        return "–"
    primary = metrics[0].name
    if cell[primary] != cell[primary]:
        return f"{cell['failed']} failed"
    parts = []
    for i, info in enumerate(metrics):
        value = fmt.mean_ci(cell[info.name], cell[info.name + "_ci"], info.decimals)
        value = f"**{value}**" if info.name in cell["best"] else value
        delta = fmt.difference(cell[f"{info.name}_diff"], cell[f"{info.name}_diff_ci"],
                               info.decimals)
        if cell["reference"]:
            value += " (reference)" if i == 0 else ""
        elif delta:
            value += f" ({delta})"
        parts.append(value)
    text_ = " / ".join(parts)
    if cell["failed"]:
        text_ += f" ({cell['failed']} failed)"
    return text_


def _relative(path, start) -> str:
    return os.path.relpath(path, start).replace(os.sep, "/")
