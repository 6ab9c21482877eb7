"""The outputs of a tuning: ``tuned.toml``, ``summary.json``, ``report.md`` and its plots."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path

from bench.files import write_atomic
from bench.tune.rules import fit_rule, step_rule
from bench.tune.tuned import parse_condition, write_tuned

#: Folder of the report's plots, inside the tuning directory.
PLOTS_DIR = "plots"


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    return str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]+", "_", text)


def tuned_table(config, studies, hashes: dict[str, str]) -> dict:
    """The ``[tuned]`` table of ``tuned.toml``."""
    from bench.store.manifest import now
    from bench.tune.engine import SELF_SUPERVISED_METRIC

    try:
        from importlib.metadata import version

        suite = version("denoise-bench")
    except Exception:  # not installed as a distribution
        suite = None
    denoisers: dict[str, dict] = defaultdict(dict)
    scores: dict[str, dict] = defaultdict(dict)
    for study in studies:
        if study.best_value is not None:
            denoisers[study.denoiser][study.condition] = dict(study.best_params)
        scores[study.denoiser][study.condition] = {
            "default": study.default_value, "tuned": study.best_value, "trials": study.trials,
            "search": study.strategy, "clean_default": study.clean_default,
            "clean_tuned": study.clean_best}
    return {
        "metric": config.metric if config.objective == "clean" else SELF_SUPERVISED_METRIC,
        "objective": config.objective,
        "mode": "oracle",
        "created": now(),
        "seed": config.seed,
        "trials": config.trials,
        "suite_version": suite,
        "tuned_on": {"datasets": list(config.datasets), "crop": config.crop,
                     "limit": config.limit, "seeds": list(config.seeds), "images": dict(hashes)},
        "denoisers": dict(denoisers),
        "scores": dict(scores),
    }


def write_outputs(out: Path, config, studies, hashes: dict[str, str], maximise: bool):
    """Write ``tuned.toml``, ``summary.json``, the plots and ``report.md``; return a TuneResult."""
    from bench.tune.engine import TuneResult

    table = tuned_table(config, studies, hashes)
    header = ("Parameters chosen by `bench tune` on data: a sweep-file fragment.\n"
              "Apply them with `bench run --params tuned.toml`, or paste this [tuned] table "
              "into a sweep file.")
    tuned_file = write_tuned(out / "tuned.toml", table, header)
    summary = [{key: value for key, value in vars(study).items()} for study in studies]
    write_atomic(out / "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    plots = write_plots(out, config, studies)
    report = out / "report.md"
    write_atomic(report, markdown(config, studies, hashes, maximise, plots))
    return TuneResult(out, tuned_file, report, studies, table["metric"], maximise)


def markdown(config, studies, hashes, maximise: bool, plots: dict[str, str]) -> str:
    """The tuning report in Markdown."""
    from bench.tune.engine import SELF_SUPERVISED_METRIC, SELF_SUPERVISED_NOTE

    clean = config.objective == "clean"
    metric = config.metric if clean else SELF_SUPERVISED_METRIC
    direction = "higher is better" if maximise else "lower is better"
    lines = ["# bench tune report", ""]
    if clean:
        lines.append(f"Objective: mean **{metric}** over the tuning images ({direction}).")
    else:
        lines.append(f"Objective: **self-supervised**, the mean J-invariant loss "
                     f"(`{metric}`, stride {config.stride}) on the noisy images alone "
                     f"({direction}).")
        lines += ["", f"> **Assumption.** {SELF_SUPERVISED_NOTE}"]
    lines += [
        "",
        f"Tuned on {', '.join(f'`{d}`' for d in config.datasets)}: {len(hashes)} images"
        + (f", central {config.crop}×{config.crop} crops" if config.crop else ", whole images")
        + f", noise seeds {', '.join(map(str, config.seeds))}, oracle sigma. "
        f"TPE: {config.trials} trials per study, sampler seed {config.seed}; a grid of at most "
        f"{config.trials} points is searched whole.",
        "",
        "Default: the denoiser's own parameters (a parameter whose default is None keeps its "
        "documented rule). Gain: tuned − default, in the objective's unit, on the tuning "
        "images (an optimistic figure: measure it on other images with `bench run --params`).",
        "",
    ]
    extra = not clean and any(s.clean_default is not None for s in studies)
    head = ["denoiser", "noise", "search", "trials", "default", "tuned", "gain",
            "tuned parameters"]
    if extra:
        head[7:7] = ["PSNR default", "PSNR tuned"]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for s in studies:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in s.best_params.items()) or "(all failed)"
        trials = f"{s.trials}" + (f" ({s.failed} failed)" if s.failed else "")
        row = [s.denoiser, s.condition, s.strategy, trials, _fmt(s.default_value, 5),
               _fmt(s.best_value, 5), _fmt(s.gain, 3), params]
        if extra:
            row[7:7] = [_fmt(s.clean_default, 5), _fmt(s.clean_best, 5)]
        lines.append("| " + " | ".join(row) + " |")
    rules = rule_lines(studies)
    if rules:
        lines += ["", "## Parameters as a function of the level", "",
                  "Numeric parameters: least-squares `a + b·level` (or a one-knot piecewise-"
                  "linear rule where it halves the residual); discrete ones: the value "
                  "chosen at each level.", ""] + rules
    if plots:
        lines += ["", "## Objective against each parameter", ""]
        for study in studies:
            key = f"{study.denoiser}|{study.condition}"
            if key in plots:
                lines += [f"### {study.denoiser} at {study.condition}", "",
                          f"![{study.denoiser} at {study.condition}]({plots[key]})", ""]
    return "\n".join(lines).rstrip() + "\n"


def rule_lines(studies) -> list[str]:
    """Markdown lines of the fitted rules, per denoiser and noise with two levels or more."""
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for study in studies:
        if study.best_value is None:
            continue
        noise, level = parse_condition(study.condition)
        groups[(study.denoiser, noise)].append((level, study))
    lines = []
    for (denoiser, noise), items in groups.items():
        if len(items) < 2:
            continue
        items.sort(key=lambda item: item[0])
        levels = [level for level, _ in items]
        lines.append(f"- **{denoiser}**, {noise} (levels {', '.join(f'{v:g}' for v in levels)}):")
        for name, spec in items[0][1].space.items():
            values = [study.best_params.get(name) for _, study in items]
            shown = ", ".join(f"{level:g}: {_fmt(v)}" for level, v in zip(levels, values))
            continuous = "choices" not in spec and not _is_int_range(spec)
            if continuous and all(isinstance(v, (int, float)) for v in values):
                rule = fit_rule(levels, values)
                lines.append(f"  - `{name}` = {rule.describe('level')}; tuned {shown}")
            else:
                lines.append(f"  - `{name}`: {step_rule(levels, values)}; tuned {shown}")
    return lines


def _is_int_range(spec: dict) -> bool:
    return all(isinstance(spec.get(k), int) and not isinstance(spec.get(k), bool)
               for k in ("low", "high")) and isinstance(spec.get("step", 1), int)


def write_plots(out: Path, config, studies) -> dict[str, str]:
    """One PNG per study: the objective against each searched parameter; returns study ->
    relative path. Nothing when matplotlib cannot be imported."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    from bench.tune.engine import SELF_SUPERVISED_METRIC

    label = config.metric if config.objective == "clean" else SELF_SUPERVISED_METRIC
    folder = out / PLOTS_DIR
    folder.mkdir(exist_ok=True)
    written = {}
    for study in studies:
        rows = [r for r in study.history if r["value"] is not None]
        if not rows:
            continue
        names = list(study.space)
        figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8),
                                    squeeze=False)
        for axis, name in zip(axes[0], names):
            values = [r["params"].get(name) for r in rows]
            scores = [r["value"] for r in rows]
            categorical = "choices" in study.space[name]
            if categorical:
                order = [str(c) for c in study.space[name]["choices"]]
                positions = [order.index(str(v)) for v in values]
                axis.set_xticks(range(len(order)), order, rotation=45, fontsize=7)
            else:
                positions = values
                if study.space[name].get("log"):
                    axis.set_xscale("log")
            axis.scatter(positions, scores, s=12, alpha=0.6, color="tab:blue")
            best = study.best_params.get(name)
            if best is not None and study.best_value is not None:
                x = order.index(str(best)) if categorical else best
                axis.scatter([x], [study.best_value], s=50, color="tab:red", label="tuned")
            if study.default_value is not None:
                axis.axhline(study.default_value, color="grey", linestyle="--", linewidth=1,
                             label="default")
            axis.set_xlabel(name)
            axis.set_ylabel(label)
        axes[0][0].legend(fontsize=7)
        figure.suptitle(f"{study.denoiser} at {study.condition}", fontsize=9)
        figure.tight_layout()
        name = f"{_slug(study.denoiser)}_{_slug(study.condition)}.png"
        figure.savefig(folder / name, dpi=80)
        plt.close(figure)
        written[f"{study.denoiser}|{study.condition}"] = f"{PLOTS_DIR}/{name}"
    return written
