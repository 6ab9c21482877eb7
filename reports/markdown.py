"""Render ``report.md``: the report's tables in Markdown, images by path relative to the run."""

from __future__ import annotations

import html
import json
import os

from reports import fmt
from reports.build import ReportData, timing_note


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


def render_markdown(data: ReportData, *, margin_db: float = 0.5) -> str:
    """The report as Markdown text (the same tables as the HTML page).

    Parameters
    ----------
    data : ReportData
        From :func:`reports.build.gather`.
    margin_db : float
        The margin used for "fastest near the winner", in dB.
    """
    run, manifest = data.run, data.run.manifest
    results, summary = run.results, data.summary
    several_modes = summary["mode"].nunique() > 1
    ok = int((results["status"] == "ok").sum())
    out = [f"# Denoising benchmark — {text(run.name)}", "",
           f"Run created {text(manifest.get('created', 'at an unknown time'))}: {len(results)} cells, "
           f"{ok} finished, {len(data.failures)} failed or timed out.", ""]

    out += ["## Summary", "", "### Winners per noise and level", "",
            f"Best mean PSNR and SSIM over images and seeds; *fastest near the winner* is the "
            f"method with the highest median MP/s within {margin_db:g} dB of the best mean PSNR.", ""]
    header = ["noise"] + (["mode"] if several_modes else []) + [
        "level", "best PSNR", "dB", "best SSIM", "SSIM", "fastest near the winner", "dB", "MP/s"]
    offset = 1 if several_modes else 0
    rows = [[text(w.noise)] + ([text(w.mode)] if several_modes else []) + [
        fmt.level(w.level), text(w.psnr_winner), fmt.number(w.psnr), text(w.ssim_winner),
        fmt.number(w.ssim, 3), text(w.fastest_near), fmt.number(w.fastest_psnr),
        fmt.rate(w.fastest_mpix_per_s)] for w in data.winners.itertuples()]
    out += table(header, rows, {1 + offset, 3 + offset, 5 + offset, 7 + offset, 8 + offset})

    out += ["### Overall ranking", ""]
    rows = [[str(i), text(r.method), fmt.number(r.psnr_rank), fmt.number(r.ssim_rank),
             f"{r.psnr_wins} / {r.conditions}", fmt.number(r.psnr), fmt.rate(r.mpix_per_s)]
            for i, r in enumerate(data.ranking.itertuples(), 1)]
    out += table(["#", "method", "PSNR rank", "SSIM rank", "wins", "mean PSNR (dB)", "MP/s"],
                 rows, {0, 2, 3, 4, 5, 6})

    out += ["## Quality by noise and level", "",
            "Mean PSNR (dB) / SSIM with the half-width of the 95% t-interval over images and "
            "seeds (no interval for a single measurement); **bold**: the best of the column. "
            + text(timing_note(results)), ""]
    for t in data.tables:
        title = f"### {text(t.noise)} noise" + (f", {text(t.mode)} mode" if several_modes else "")
        rows = []
        for row in t.rows:
            cells = [_md_cell(c) for c in row.cells]
            label = f"*{text(row.label)}*" if row.baseline else text(row.label)
            rows.append([label] + cells + ["" if row.baseline else fmt.rate(row.mpix_per_s)])
        header = ["method"] + [f"level {fmt.level(lv)}" for lv in t.levels] + ["MP/s"]
        out += [title, ""] + table(header, rows, set(range(1, len(header))))

    if data.figures:
        out += ["## Plots", ""]
        for title, path in data.figures.items():
            out += [f"![{text(title)}]({_relative(path, run.run_dir)})", ""]

    if data.grids:
        out += ["## Visual comparison", "",
                "Central crops of the stored images (first seed), PSNR of the whole image.", ""]
        for grid in data.grids:
            out += [f"### {text(grid.title)}", ""]
            header = [text(tile.label) for tile in grid.tiles]
            images = [f"![{text(tile.label)}]({tile.path})" for tile in grid.tiles]
            scores = [("**%s**" if tile.best else "%s") % fmt.psnr_label(tile.psnr)
                      for tile in grid.tiles]
            out += table(header, [images, scores])

    out += ["## Failures", ""]
    if not data.failure_groups:
        out += ["Every cell finished.", ""]
    for group in data.failure_groups:
        out += [f"### {text(group['method'])} — {fmt.count(group['total'], 'cell')}", ""]
        for reason in group["reasons"]:
            out += [f"- **{text(reason['status'])}** ({fmt.count(reason['count'], 'cell')}): "
                    f"{text(reason['error'])}",
                    "  - " + "; ".join(text(cell) for cell in reason["cells"])]
        out += [""]

    env = manifest.get("environment", {})
    cpu = env.get("cpu", {})
    out += ["## Environment", ""]
    rows = [["git commit", text(env.get("git_commit") or "unknown")],
            ["platform", text(env.get("platform", "unknown"))],
            ["CPU", text(f"{cpu.get('model', 'unknown')} ({cpu.get('cores', '?')} logical cores)")],
            ["GPU", text(", ".join(env.get("gpus") or ["none"]))],
            ["device", text(manifest.get("device", ""))]]
    rows += [[f"dataset {text(name)}", text(f"{info.get('images')} images, sha256 {info.get('sha256')}")]
             for name, info in manifest.get("datasets", {}).items()]
    rows += [[text(name), text(version)] for name, version in env.get("versions", {}).items()]
    out += table(["", ""], rows)
    origins = manifest.get("denoiser_origins", {})
    out += table(["denoiser", "from", "parameters"],
                 [[text(p.denoiser), text(origins.get(p.denoiser, "")), text(p.params)]
                  for p in data.params.itertuples()])
    out += ["### Sweep configuration", ""]
    out += table(["setting", "value"], [[text(key), text(json.dumps(value, default=str))]
                                        for key, value in manifest.get("sweep", {}).items()])
    return "\n".join(out)


def _md_cell(cell: dict | None) -> str:
    if cell is None:
        return "–"
    if cell["psnr"] != cell["psnr"]:
        return f"{cell['failed']} failed"
    psnr = fmt.mean_ci(cell["psnr"], cell["psnr_ci"], 2)
    ssim = fmt.mean_ci(cell["ssim"], cell["ssim_ci"], 3)
    text_ = f"{'**' + psnr + '**' if cell['best_psnr'] else psnr} / " \
            f"{'**' + ssim + '**' if cell['best_ssim'] else ssim}"
    if cell["failed"]:
        text_ += f" ({cell['failed']} failed)"
    return text_


def _relative(path, start) -> str:
    return os.path.relpath(path, start).replace(os.sep, "/")
