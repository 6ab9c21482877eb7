import html
import json
import os
import re
import shutil
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import headless
import toy_metric_plugin
from bench.errors import DataError
from bench.metrics import metric_info
from bench.registry import default_registry
from bench.store.results import load_results
from bench.run.runner import run_sweep
from bench.sweep import DenoiserSpec, NoiseSpec, Sweep
from hostile_denoisers import ERROR, IMG_NAME, SCRIPT_NAME
from reports import (compare, load_run, noisy_baseline, pareto_front, rank, speed_quality,
                     summarise_ci, winners, write_report)
from reports.plots import quality_vs_level_figure
from reports.stats import GROUP
from toy_metric_plugin import toy_from_psnr



@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    """Where the screenshot and the page are kept: ``$BENCH_ARTIFACTS``, else pytest's temp."""
    folder = os.environ.get("BENCH_ARTIFACTS")
    return Path(folder) if folder else tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Two denoisers, two levels, three images, two seeds; its report written."""
    path = tmp_path_factory.mktemp("reports") / "run"
    sweep = Sweep(noises=[NoiseSpec("gaussian", (15, 25))],
                  denoisers=[DenoiserSpec("median"), DenoiserSpec("gaussian_blur")],
                  crop=32, limit=3, seeds=[0, 1], executor="serial")
    run_sweep(sweep, path, progress=False)
    write_report(path)
    return path


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory):
    """A run with a plugin whose denoiser names and error message are HTML."""
    path = tmp_path_factory.mktemp("hostile") / "run"
    sweep = Sweep(noises=[NoiseSpec("gaussian", (25,))],
                  denoisers=[DenoiserSpec("median"), DenoiserSpec(SCRIPT_NAME), DenoiserSpec(IMG_NAME)],
                  crop=32, limit=2, seeds=[0], executor="serial")
    run_sweep(sweep, path, registry_factory="hostile_denoisers:make_registry", progress=False)
    write_report(path)
    return path


class Collector(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> Collector:
    parser = Collector()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def expected_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Means over the ok cells; intervals over images, each image's seeds averaged first."""
    ok = results[results["status"] == "ok"]
    table = ok.groupby(GROUP).agg(n=("psnr", "size"), psnr=("psnr", "mean"), ssim=("ssim", "mean"),
                                  mpix_per_s=("mpix_per_s", "median"))
    per_image = ok.groupby(GROUP + ["dataset", "image"])[["psnr", "ssim"]].mean()
    spread = per_image.groupby(GROUP).agg(images=("psnr", "size"), psnr_std=("psnr", "std"),
                                          ssim_std=("ssim", "std"))
    table = table.join(spread)
    t = stats.t.ppf(0.975, table["images"] - 1)
    table["psnr_ci"] = t * table["psnr_std"] / np.sqrt(table["images"])
    table["ssim_ci"] = t * table["ssim_std"] / np.sqrt(table["images"])
    return table


def test_summarise_ci_equals_a_groupby_of_the_parquet(run_dir):
    results = pd.read_parquet(run_dir / "results.parquet")
    expected = expected_summary(results)
    summary = summarise_ci(load_run(run_dir).results).set_index(GROUP).loc[expected.index]
    assert (summary["n"] == 6).all() and (summary["images"] == 3).all()  # 3 images x 2 seeds
    for column in ("n", "images", "psnr", "psnr_ci", "ssim", "ssim_ci", "mpix_per_s"):
        np.testing.assert_allclose(summary[column], expected[column], rtol=1e-12)


def test_summarise_ci_means_are_over_cells_and_intervals_over_images(run_dir):
    results = load_run(run_dir).results
    ok = results[results["status"] == "ok"]
    summary = summarise_ci(results).set_index(GROUP)
    for key, part in ok.groupby(GROUP):
        assert summary.loc[key, "psnr"] == pytest.approx(part["psnr"].mean(), rel=1e-12)
        by_image = part.groupby("image")["psnr"].mean()
        half = stats.t.ppf(0.975, 2) * by_image.std() / np.sqrt(3)
        assert summary.loc[key, "psnr_ci"] == pytest.approx(half, rel=1e-12)
        # the interval over images and seeds as if they were independent is narrower
        assert half > stats.t.ppf(0.975, 5) * part["psnr"].std() / np.sqrt(6)


def test_summarise_ci_single_measurement_has_no_interval():
    results = pd.DataFrame({"noise": ["gaussian"] * 3, "mode": "oracle", "level": [15.0, 25, 25],
                            "denoiser": "median", "device": "cpu", "psnr": [30.0, 28, 27],
                            "ssim": [0.9, 0.8, 0.7], "mpix_per_s": 1.0, "seconds": 0.1,
                            "status": "ok"})
    summary = summarise_ci(results).set_index("level")
    assert summary.loc[15.0, "n"] == 1 and np.isnan(summary.loc[15.0, "psnr_ci"])
    assert summary.loc[25.0, "psnr"] == 27.5
    assert summary.loc[25.0, "psnr_ci"] == pytest.approx(stats.t.ppf(0.975, 1) * np.std([28, 27], ddof=1) / np.sqrt(2))


def test_summarise_ci_keeps_parameter_sets_of_one_denoiser_apart(tmp_path):
    specs = [DenoiserSpec("median"), DenoiserSpec("median", (("size", 5),))]
    sweep = Sweep(datasets=["skimage"], noises=[NoiseSpec("gaussian", (25,))], crop=32, limit=2,
                  denoisers=specs, executor="serial")
    results = run_sweep(sweep, tmp_path, progress=False)
    summary = summarise_ci(results).set_index("method")
    assert sorted(summary.index) == ["median", "median(size=5)"]
    for method, part in results.groupby("method"):
        assert summary.loc[method, "psnr"] == pytest.approx(part["psnr"].mean())
    assert summary.loc["median", "psnr"] != summary.loc["median(size=5)", "psnr"]
    roles = set(load_run(tmp_path).crops["role"])
    assert {"median", "median(size=5)"} <= roles


def test_winners_and_rank_pick_best_and_fastest_within_half_a_db():
    summary = pd.DataFrame({
        "noise": "gaussian", "mode": "oracle", "level": 25.0, "denoiser": ["slow", "fast", "bad"],
        "device": ["cpu", "cuda", "cpu"], "method": ["slow", "fast@cuda", "bad"],
        "psnr": [30.0, 29.6, 27.0], "ssim": [0.80, 0.85, 0.70], "mpix_per_s": [0.1, 50.0, 100.0]})
    row = winners(summary).iloc[0]
    assert row["psnr_winner"] == "slow" and row["ssim_winner"] == "fast@cuda"
    assert row["fastest_near"] == "fast@cuda" and row["fastest_mpix_per_s"] == 50.0
    assert list(rank(summary)["method"]) == ["slow", "fast@cuda", "bad"]
    assert list(pareto_front(summary["mpix_per_s"], summary["psnr"])) == [True, True, True]
    assert list(pareto_front([1, 2, 3], [3, 2, 4])) == [False, False, True]


def test_report_plots_are_pngs_of_real_size(run_dir):
    figures = sorted((run_dir / "report").glob("*.png"))
    assert {p.name for p in figures} >= {"quality_vs_level.png", "quality_vs_speed.png"}
    for path in figures:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 10_000
        pixels = iio.imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 600
        assert pixels.std() > 10  # not a blank canvas


def test_report_html_parses_and_references_nothing_outside(run_dir):
    parser = parse(run_dir / "report.html")
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) >= 2 + 2 * 2 * 4  # two plots; 2 stored images x 2 levels x 4 crops
    for tag, attrs in parser.tags:
        for name, value in attrs.items():
            if name in ("src", "href", "srcset", "poster", "action", "data", "background"):
                assert value.startswith(("data:", "#")), (tag, name, value[:80])
        assert tag not in ("script", "link", "iframe", "object", "embed", "base")
    for forbidden in ("http:", "https:", "//cdn", "url(", "@import"):
        assert forbidden not in text
    assert "</html>" in text


def test_report_markdown_links_plots_by_relative_path(run_dir):
    markdown = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "![Quality against noise level](report/quality_vs_level.png)" in markdown
    assert "| median" in markdown and "## Environment" in markdown
    for target in re.findall(r"\]\(([^)]+)\)", markdown):
        assert (run_dir / target).is_file(), target


def test_report_escapes_plugin_names_and_errors(hostile_dir):
    results = load_results(hostile_dir)
    assert set(results.loc[results["status"] == "ok", "denoiser"]) == {"median", SCRIPT_NAME}
    page = (hostile_dir / "report.html").read_text(encoding="utf-8")
    parser = parse(hostile_dir / "report.html")
    assert not [tag for tag, _ in parser.tags if tag == "script"]
    assert not [attrs for _, attrs in parser.tags if any(k.startswith("on") for k in attrs)]
    assert "<script" not in page.lower() and "<img/src" not in page
    shown = "".join(parser.text)  # the names and the message, as text on the page
    assert SCRIPT_NAME in shown and IMG_NAME in shown and ERROR in shown
    assert "&lt;script&gt;" in page
    markdown = (hostile_dir / "report.md").read_text(encoding="utf-8")
    assert "<script" not in markdown and "<img" not in markdown and "&lt;script&gt;" in markdown


def test_report_lists_failures_by_denoiser_and_the_environment(hostile_dir):
    run = load_run(hostile_dir)
    page = html.unescape("".join(parse(hostile_dir / "report.html").text))
    failures = page[page.index("Failures"):]
    assert f"{IMG_NAME} — 2 cells" in failures and f"RuntimeError: {ERROR}" in failures
    assert failures.count("skimage/") >= 2  # each failed cell listed
    environment = page[page.rindex("Environment"):]
    env = run.manifest["environment"]
    assert env["cpu"]["model"] in environment and env["versions"]["numpy"] in environment
    assert (env["git_commit"] or "unknown") in environment
    assert "seeds[0]" in environment and 'noises["gaussian:25"]' in environment


def plant_regression(source: Path, target: Path, denoiser: str, drop_db: float = 1.0) -> None:
    shutil.copytree(source, target)
    table = pd.read_parquet(target / "results.parquet")
    hit = table["denoiser"] == denoiser
    table.loc[hit, "psnr"] -= drop_db
    table.loc[hit, "ssim"] -= 0.01
    table.to_parquet(target / "results.parquet", index=False)
    lines = []
    for line in (target / "cells.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("denoiser") == denoiser and record.get("psnr") is not None:
            record["psnr"] -= drop_db
            record["ssim"] -= 0.01
        lines.append(json.dumps(record))
    (target / "cells.jsonl").write_text("\n".join(lines) + "\n")


def test_compare_flags_exactly_the_planted_regression(run_cli, run_dir, tmp_path):
    plant_regression(run_dir, tmp_path / "worse", "median")
    table = compare(load_results(run_dir), load_results(tmp_path / "worse"))
    flagged = table[table["status"] == "regression"]
    assert set(flagged["denoiser"]) == {"median"} and len(flagged) == 2  # both levels
    assert np.allclose(flagged["psnr_diff"], -1.0) and (flagged["n"] == 6).all()
    assert (table.loc[table["denoiser"] != "median", "status"] == "unchanged").all()
    same = compare(load_results(run_dir), load_results(run_dir))
    assert (same["status"] == "unchanged").all() and np.allclose(same["mpix_ratio"], 1.0)

    gated = run_cli("compare", run_dir, tmp_path / "worse", "--fail-on-regression")
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert gated.stdout.count("regression") >= 2 and "median" in gated.stderr
    assert "gaussian_blur" not in gated.stderr
    plain = run_cli("compare", run_dir, tmp_path / "worse")
    assert plain.returncode == 0, plain.stderr
    better = run_cli("compare", tmp_path / "worse", run_dir, "--fail-on-regression")
    assert better.returncode == 0 and "improvement" in better.stdout


def test_compare_disjoint_runs_or_missing_dir_is_a_clear_error(run_cli, run_dir, tmp_path):
    shutil.copytree(run_dir, tmp_path / "other")
    (tmp_path / "other" / "cells.jsonl").unlink()
    table = pd.read_parquet(tmp_path / "other" / "results.parquet")
    table["seed"] += 100
    table.to_parquet(tmp_path / "other" / "results.parquet", index=False)
    with pytest.raises(DataError, match="no cell in common"):
        compare(load_results(run_dir), load_results(tmp_path / "other"))
    disjoint = run_cli("compare", run_dir, tmp_path / "other")
    assert disjoint.returncode == 2 and "no cell in common" in disjoint.stderr
    assert "Traceback" not in disjoint.stderr
    missing = run_cli("compare", run_dir, tmp_path / "nope")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_cli_run_and_report_write_and_print_the_report(run_cli, tmp_path):
    out = run_cli("run", "--quiet", "--denoisers", "median", "--noises", "gaussian:25",
                  "--limit", "1", "--crop", "32", "--out", tmp_path / "r")
    assert out.returncode == 0, out.stderr
    for name in ("report.html", "report.md"):
        assert (tmp_path / "r" / name).is_file()
        assert str(tmp_path / "r" / name) in out.stdout
    (tmp_path / "r" / "report.html").unlink()
    again = run_cli("report", tmp_path / "r")
    assert again.returncode == 0, again.stderr
    assert "gaussian noise" in again.stdout and str(tmp_path / "r" / "report.html") in again.stdout
    assert (tmp_path / "r" / "report.html").is_file()


@pytest.fixture(scope="module")
def browser():
    found = headless.find_chromium()
    if found is None:
        message = "chromium not found (apt-get install chromium, or set BENCH_CHROMIUM)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_browser_checks_catch_a_broken_page(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><p>x</p>'
                    '<img src="data:image/png;base64,AAAA" alt="corrupt">'
                    '<img src="https://example.invalid/remote.png" alt="remote">'
                    "<script>notDefined();</script></body></html>")
    found = headless.probe(browser, page, tmp_path)
    assert any("notDefined" in p for p in found["problems"])
    assert any("corrupt" in p for p in found["problems"])
    assert any("remote" in p for p in found["problems"])
    log = headless.screenshot(browser, page, tmp_path / "broken.png", size=(400, 300))
    assert any("notDefined" in m for m in headless.console_messages(log))


def test_report_renders_in_headless_chromium_without_errors(browser, run_dir, tmp_path, artifacts):
    png = run_dir / "report" / "screenshot.png"
    log = headless.screenshot(browser, run_dir / "report.html", png)
    assert headless.console_messages(log) == []
    pixels = iio.imread(png)
    assert pixels.shape[:2] == (2400, 1280)
    colours = np.unique(pixels[..., :3].reshape(-1, 3), axis=0)
    assert len(colours) > 500  # text, tables, plots and crops, not a blank page
    assert (pixels[..., :3] < 200).any(axis=-1).mean() > 0.02
    found = headless.probe(browser, run_dir / "report.html", tmp_path)
    assert found["problems"] == []
    assert found["images"] == len([t for t, _ in parse(run_dir / "report.html").tags if t == "img"])
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, artifacts / "report-screenshot.png")
    shutil.copy(run_dir / "report.html", artifacts / "report.html")


# A metric from a plugin: ``toy`` (tests/plugins/toy_metric_plugin.py), lower is better.

TOY = toy_metric_plugin.RootMeanSquareError.info()


def fake_metric_plugin(folder: Path, distribution: str = "toy-metric") -> Path:
    """Lay out an installed distribution whose entry point registers ``toy`` (put it on the path).

    The entry point names ``toy_metric_plugin:register``, importable from ``tests/plugins``.
    Returns ``folder``.
    """
    dist = folder / f"{distribution.replace('-', '_')}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[denoise_bench.plugins]\ntoy = toy_metric_plugin:register\n")
    return folder


@contextmanager
def toy_installed(folder: Path):
    """The default registry sees the ``toy`` plugin inside the ``with`` block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(fake_metric_plugin(folder)))
        default_registry.cache_clear()
        try:
            yield
        finally:
            default_registry.cache_clear()


@pytest.fixture
def toy_plugin(tmp_path):
    with toy_installed(tmp_path / "site"):
        yield


def add_toy_columns(run: Path, change=None) -> None:
    """Give a run directory ``toy`` and ``noisy_toy`` columns, computed from its PSNRs.

    ``change(table)`` may then edit the results table (e.g. plant a regression).
    """
    table = pd.read_parquet(run / "results.parquet")
    if "toy" not in table:
        table.insert(table.columns.get_loc("ssim") + 1, "toy", toy_from_psnr(table["psnr"]))
        table.insert(table.columns.get_loc("noisy_ssim") + 1, "noisy_toy",
                     toy_from_psnr(table["noisy_psnr"]))
    if change is not None:
        change(table)
    table.to_parquet(run / "results.parquet", index=False)
    by_cell = table.set_index("cell_id")
    lines = []
    for line in (run / "cells.jsonl").read_text().splitlines():
        record, row = {}, by_cell.loc[json.loads(line)["cell_id"]]
        for key, value in json.loads(line).items():
            record[key] = value
            if key in ("ssim", "noisy_ssim"):
                column = "toy" if key == "ssim" else "noisy_toy"
                record[column] = None if pd.isna(row[column]) else float(row[column])
        lines.append(json.dumps(record))
    (run / "cells.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def toy_dir(run_dir, tmp_path_factory):
    """The run of ``run_dir`` as if it had also scored ``toy``; its report written."""
    path = tmp_path_factory.mktemp("toy") / "run"
    shutil.copytree(run_dir, path)
    for old in ("report.html", "report.md", "report"):
        shutil.rmtree(path / old) if (path / old).is_dir() else (path / old).unlink()
    add_toy_columns(path)
    with toy_installed(tmp_path_factory.mktemp("toy-site-report")):
        write_report(path)
    return path


def toy_summary() -> pd.DataFrame:
    """One condition where the best by ``toy`` (lowest) is not the best by PSNR."""
    return pd.DataFrame({
        "noise": "gaussian", "mode": "oracle", "level": 25.0, "denoiser": ["a", "b", "c"],
        "device": "cpu", "method": ["a", "b", "c"], "psnr": [30.0, 29.0, 28.0],
        "psnr_ci": np.nan, "toy": [0.030, 0.025, 0.036], "toy_ci": np.nan,
        "mpix_per_s": [5.0, 2.0, 50.0]})


def test_toy_plugin_registers_a_lower_is_better_metric(toy_plugin):
    assert "toy" in default_registry().names("metric")
    assert default_registry().get("metric", "toy").origin == "plugin toy-metric 0.1"
    info = metric_info("toy")
    assert info == TOY and not info.higher_is_better and info.margin == 0.01
    assert info.best(pd.Series([0.3, 0.1, 0.2])) == 0.1


def test_winners_and_rank_follow_each_metrics_direction(toy_plugin):
    summary = toy_summary()
    row = winners(summary).iloc[0]  # metrics from the columns: psnr (primary), then toy
    assert row["psnr_winner"] == "a" and row["toy_winner"] == "b" and row["toy"] == 0.025
    assert row["fastest_near"] == "a"  # within 0.5 dB of 30: only a
    ranks = rank(summary).set_index("method")
    assert list(ranks.index) == ["a", "b", "c"]
    assert ranks["toy_rank"].to_dict() == {"a": 2, "b": 1, "c": 3}

    row = winners(summary, metrics=[TOY, metric_info("psnr")]).iloc[0]  # toy primary
    assert row["toy_winner"] == "b" and row["psnr_winner"] == "a"
    # within 0.01 of the lowest toy (0.025): a (5 MP/s) and b (2 MP/s), not c (50 MP/s)
    assert row["fastest_near"] == "a" and row["fastest_toy"] == 0.030
    assert row["fastest_mpix_per_s"] == 5.0
    assert list(winners(summary, metrics=[TOY], margin=0.02).columns) == [
        "noise", "mode", "level", "toy_winner", "toy", "toy_tied", "toy_separation",
        "fastest_near", "fastest_toy", "fastest_mpix_per_s"]
    assert winners(summary, metrics=[TOY], margin=0.02).iloc[0]["fastest_near"] == "c"
    ranked = rank(summary, metrics=[TOY, metric_info("psnr")])
    assert list(ranked["method"]) == ["b", "a", "c"]
    assert list(ranked["toy_wins"]) == [1, 0, 0]
    front = speed_quality(summary, metrics=[TOY]).set_index("method")["pareto"]
    assert front.to_dict() == {"a": True, "b": True, "c": True}


def test_pareto_front_respects_lower_is_better():
    assert list(pareto_front([1, 2, 3], [3, 2, 4])) == [False, False, True]
    assert list(pareto_front([1, 2, 3], [3, 2, 4], higher_is_better=False)) == [False, True, True]
    assert list(pareto_front([1, 2, 3], [1, 2, 3], higher_is_better=False)) == [True, True, True]


def test_summarise_ci_has_mean_and_interval_of_every_metric_and_keeps_level_0(toy_plugin):
    rows = []
    for level in (0.0, 0.0, 5.0):
        for denoiser, psnr, toy in (("a", 30.0, 0.05), ("b", 28.0, 0.02)):
            rows.append({"dataset": "pairs", "image": f"im{len(rows)}", "noise": "real",
                         "level": level, "noise_params": "{}", "seed": 0, "mode": "blind",
                         "denoiser": denoiser, "device": "cpu", "psnr": psnr + len(rows) % 2,
                         "ssim": 0.8, "toy": toy, "noisy_psnr": 20.0, "noisy_ssim": 0.3,
                         "noisy_toy": 0.1, "mpix_per_s": 1.0, "seconds": 0.1, "status": "ok"})
    results = pd.DataFrame(rows)
    summary = summarise_ci(results)
    assert list(summary.columns) == GROUP + [
        "method", "cells", "failed", "n", "images", "psnr", "psnr_ci", "ssim", "ssim_ci", "toy", "toy_ci",
        "mpix_per_s", "seconds"]
    assert sorted(summary["level"].unique()) == [0.0, 5.0]
    at_0 = summary[summary["level"] == 0].set_index("method")
    assert at_0.loc["a", "n"] == 2 and at_0.loc["b", "toy"] == pytest.approx(0.02)
    assert np.isfinite(at_0.loc["a", "psnr_ci"]) and at_0.loc["a", "toy_ci"] == 0
    toy_first = summarise_ci(results, metrics=[TOY])
    assert list(toy_first["method"][:2]) == ["b", "a"]  # lowest toy first
    assert "psnr" not in toy_first and "toy_ci" in toy_first
    base = noisy_baseline(results)
    assert list(base.columns) == ["noise", "mode", "level", "n", "images", "psnr", "psnr_ci", "ssim",
                                  "ssim_ci", "toy", "toy_ci"]
    assert list(base["level"]) == [0.0, 5.0] and (base["toy"] == 0.1).all()
    assert set(winners(summary)["level"]) == {0.0, 5.0}
    assert (winners(summary)["toy_winner"] == "b").all()


def test_report_of_a_run_with_toy_has_it_everywhere(toy_dir, run_dir):
    results = load_results(toy_dir)
    assert [c for c in results.columns if c in ("psnr", "ssim", "toy")] == ["psnr", "ssim", "toy"]
    ok = results[results["status"] == "ok"]
    means = ok.groupby(["noise", "mode", "level", "method"])["toy"].mean()
    lowest = means.groupby(["noise", "mode", "level"]).idxmin()

    markdown = (toy_dir / "report.md").read_text(encoding="utf-8")
    page = html.unescape("".join(parse(toy_dir / "report.html").text))
    for text in (markdown, page):
        assert "best TOY" in text and "TOY rank" in text and "TOY: lower is better" in text
        assert "best PSNR" in text and "best SSIM" in text
    winner_rows = [line for line in markdown.splitlines() if line.startswith("| gaussian |")]
    assert len(winner_rows) == len(lowest) == 2
    for line, key in zip(winner_rows, lowest):
        cells = [c.strip() for c in line.strip("|").split("|")]
        # noise, level, then per metric (PSNR, SSIM, TOY): best, its value, tied with it
        assert cells[8] == key[-1] and cells[9] == f"{means[key]:.4f}"
    expected = ok.groupby(GROUP)["toy"].mean()
    spread = ok.groupby(GROUP + ["image"])["toy"].mean().groupby(GROUP).agg(["std", "size"])
    for key, mean in expected.items():
        std, size = spread.loc[key]
        half = stats.t.ppf(0.975, size - 1) * std / np.sqrt(size)
        cell = f"{mean:.4f} ± {half:.4f}"
        assert cell in page and cell in markdown
    # the reference method: three means with intervals, "(reference)" after the first
    mean = r"\**[\d.]+ ± [\d.]+\**"  # bold for the best of the column
    assert re.search(rf"\| {mean} \(reference\) / {mean} / {mean} \|", markdown)
    # another: each mean with its paired difference to the reference (Δ), TOY's lower is better
    assert re.search(rf"\| {mean} \(Δ -[\d.]+ ± [\d.]+\) / {mean} \(Δ [-+][\d.]+ ± [\d.]+\) / "
                     rf"{mean} \(Δ \+[\d.]+ ± [\d.]+\) \|", markdown)
    crops = markdown[markdown.index("## Visual comparison"):markdown.index("## Failures")]
    assert "TOY 0.0" in crops and "SSIM 0." in crops and " dB" in crops
    assert re.search(r"\*\*TOY 0\.\d{4}\*\*", crops)  # the best denoiser by toy, in bold
    assert "TOY 0.0" in page and "SSIM 0." in page  # the HTML crop captions

    two_rows = iio.imread(run_dir / "report" / "quality_vs_level.png")
    three_rows = iio.imread(toy_dir / "report" / "quality_vs_level.png")
    assert three_rows.shape[0] > 1.3 * two_rows.shape[0]


def test_quality_vs_level_has_a_row_of_panels_per_metric(toy_dir, toy_plugin):
    results = load_results(toy_dir)
    summary = summarise_ci(results)
    figure = quality_vs_level_figure(summary, noisy_baseline(results))
    labels = [ax.get_ylabel() for ax in figure.axes if ax.get_ylabel()]
    assert labels == ["PSNR (dB)", "SSIM", "TOY (lower is better)"]
    assert len(figure.axes) == 3 * summary[["noise", "mode"]].drop_duplicates().shape[0]


def test_cli_report_and_compare_show_and_gate_on_toy(run_cli, toy_dir, toy_plugin, tmp_path):
    shown = run_cli("report", toy_dir)
    assert shown.returncode == 0, shown.stderr
    words = " ".join(shown.stdout.split())  # titles wrap at the table's width
    assert "mean PSNR (dB) / SSIM / TOY; TOY: lower is better" in words
    inputs = load_results(toy_dir).drop_duplicates(["dataset", "image", "noise", "level",
                                                    "noise_params", "seed", "mode"])
    for noisy_toy in inputs.groupby("level")["noisy_toy"].mean():  # the noisy input's row
        assert f"{noisy_toy:.4f}" in shown.stdout  # four decimals, as the plugin declares

    worse = tmp_path / "worse"  # median's toy 0.01 higher (worse), PSNR and SSIM unchanged
    shutil.copytree(toy_dir, worse)
    add_toy_columns(worse, lambda t: t.__setitem__(
        "toy", t["toy"].where(t["denoiser"] != "median", t["toy"] + 0.01)))
    table = compare(load_results(toy_dir), load_results(worse))
    reverse = compare(load_results(worse), load_results(toy_dir))
    flagged = table[table["status"] == "regression"]
    assert set(flagged["method"]) == {"median"} and len(flagged) == 2
    assert np.allclose(flagged["toy_diff"], 0.01) and np.allclose(flagged["psnr_diff"], 0)
    assert (table.loc[table["method"] != "median", "status"] == "unchanged").all()
    assert set(reverse.loc[reverse["method"] == "median", "status"]) == {"improvement"}

    gated = run_cli("compare", toy_dir, worse, "--fail-on-regression")
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "ΔTOY" in gated.stdout and "+0.0100" in gated.stdout and "median" in gated.stderr
    better = run_cli("compare", worse, toy_dir, "--fail-on-regression")
    assert better.returncode == 0 and "improvement" in better.stdout


def test_run_with_toy_as_primary_metric_ranks_and_reports_by_it(tmp_path):
    with toy_installed(tmp_path / "site"):
        sweep = Sweep(noises=[NoiseSpec("gaussian", (25,))], metrics=["toy", "psnr"],
                      denoisers=[DenoiserSpec("median"), DenoiserSpec("gaussian_blur")],
                      crop=32, limit=2, seeds=[0], executor="serial")
        results = run_sweep(sweep, tmp_path / "run", progress=False)
        write_report(tmp_path / "run")
        summary = summarise_ci(results)
        best = winners(summary).iloc[0]
    ok = results[results["status"] == "ok"]
    assert len(ok) == 4 and "ssim" not in results
    np.testing.assert_allclose(ok["toy"], toy_from_psnr(ok["psnr"]), rtol=1e-9)
    np.testing.assert_allclose(ok["noisy_toy"], toy_from_psnr(ok["noisy_psnr"]), rtol=1e-9)
    assert list(summary.columns[10:14]) == ["toy", "toy_ci", "psnr", "psnr_ci"]
    assert summary["toy"].is_monotonic_increasing  # one condition, lowest toy first
    lowest = summary.loc[summary["toy"].idxmin(), "method"]
    assert best["toy_winner"] == lowest == best["psnr_winner"]

    markdown = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert "within 0.01 of the best mean TOY. TOY: lower is better." in markdown
    assert ("| level | best TOY | TOY | tied with it | best PSNR | dB | tied with it | "
            "fastest near the winner | TOY | MP/s |") in markdown
    assert "| # | method | TOY rank | PSNR rank | wins | mean TOY | MP/s |" in markdown
    crops = markdown[markdown.index("## Visual comparison"):markdown.index("## Failures")]
    toy_rows = [line for line in crops.splitlines() if line.startswith("| reference |")]
    psnr_rows = [line for line in crops.splitlines() if line.startswith("|  |")]
    assert len(toy_rows) == len(psnr_rows) >= 1  # under each grid: TOY first, then PSNR
    assert all("**TOY 0." in row and " dB" not in row for row in toy_rows)
    assert all(" dB" in row and "TOY" not in row for row in psnr_rows)


def test_report_warns_in_red_when_tuned_on_test_images(tmp_path):
    import json
    import shutil

    from reports.build import write_report

    source = tmp_path / "src"
    run_sweep(Sweep(noises=[NoiseSpec("gaussian", (25,))], denoisers=[DenoiserSpec("median")],
                    crop=32, limit=2, executor="serial"), source, progress=False)
    run = tmp_path / "run"
    shutil.copytree(source, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["tuned"] = {"overlap": ["skimage/camera"], "allowed_overlap": True}
    (run / "manifest.json").write_text(json.dumps(manifest))
    files = write_report(run)
    assert "tuned-on-test" in files.html.read_text() and "skimage/camera" in files.html.read_text()
    assert "**Warning: Tuned on test images" in files.markdown.read_text()
    write_report(source)
    assert "Tuned on test images" not in (source / "report.md").read_text()
