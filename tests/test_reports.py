import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import headless
from bench.errors import DataError
from bench.store.results import load_results
from bench.run.runner import run_sweep
from bench.sweep import DenoiserSpec, NoiseSpec, Sweep
from hostile_denoisers import ERROR, IMG_NAME, SCRIPT_NAME
from reports import compare, load_run, pareto_front, rank, summarise_ci, winners, write_report
from reports.stats import GROUP

ARTIFACTS = Path(os.environ.get("BENCH_ARTIFACTS") or Path(__file__).parent / "artifacts")


def bench(*args):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, COLUMNS="200"))


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
    ok = results[results["status"] == "ok"]
    table = ok.groupby(GROUP).agg(n=("psnr", "size"), psnr=("psnr", "mean"),
                                  psnr_std=("psnr", "std"), ssim=("ssim", "mean"),
                                  ssim_std=("ssim", "std"), mpix_per_s=("mpix_per_s", "median"))
    t = stats.t.ppf(0.975, table["n"] - 1)
    table["psnr_ci"] = t * table["psnr_std"] / np.sqrt(table["n"])
    table["ssim_ci"] = t * table["ssim_std"] / np.sqrt(table["n"])
    return table


def test_summarise_ci_equals_a_groupby_of_the_parquet(run_dir):
    results = pd.read_parquet(run_dir / "results.parquet")
    expected = expected_summary(results)
    summary = summarise_ci(load_run(run_dir).results).set_index(GROUP).loc[expected.index]
    assert (summary["n"] == 6).all()  # three images x two seeds
    for column in ("n", "psnr", "psnr_ci", "ssim", "ssim_ci", "mpix_per_s"):
        np.testing.assert_allclose(summary[column], expected[column], rtol=1e-12)


def test_report_tables_show_the_groupby_numbers(run_dir):
    expected = expected_summary(pd.read_parquet(run_dir / "results.parquet"))
    page = html.unescape("".join(parse(run_dir / "report.html").text))
    markdown = (run_dir / "report.md").read_text(encoding="utf-8")
    for row in expected.itertuples():
        psnr = f"{row.psnr:.2f} ± {row.psnr_ci:.2f}"
        ssim = f"{row.ssim:.3f} ± {row.ssim_ci:.3f}"
        assert psnr in page and ssim in page
        assert psnr in markdown and ssim in markdown


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


def test_compare_flags_exactly_the_planted_regression(run_dir, tmp_path):
    plant_regression(run_dir, tmp_path / "worse", "median")
    table = compare(load_results(run_dir), load_results(tmp_path / "worse"))
    flagged = table[table["status"] == "regression"]
    assert set(flagged["denoiser"]) == {"median"} and len(flagged) == 2  # both levels
    assert np.allclose(flagged["psnr_diff"], -1.0) and (flagged["n"] == 6).all()
    assert (table.loc[table["denoiser"] != "median", "status"] == "unchanged").all()
    same = compare(load_results(run_dir), load_results(run_dir))
    assert (same["status"] == "unchanged").all() and np.allclose(same["mpix_ratio"], 1.0)

    gated = bench("compare", str(run_dir), str(tmp_path / "worse"), "--fail-on-regression")
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert gated.stdout.count("regression") >= 2 and "median" in gated.stderr
    assert "gaussian_blur" not in gated.stderr
    plain = bench("compare", str(run_dir), str(tmp_path / "worse"))
    assert plain.returncode == 0, plain.stderr
    better = bench("compare", str(tmp_path / "worse"), str(run_dir), "--fail-on-regression")
    assert better.returncode == 0 and "improvement" in better.stdout


def test_compare_disjoint_runs_or_missing_dir_is_a_clear_error(run_dir, tmp_path):
    shutil.copytree(run_dir, tmp_path / "other")
    (tmp_path / "other" / "cells.jsonl").unlink()
    table = pd.read_parquet(tmp_path / "other" / "results.parquet")
    table["seed"] += 100
    table.to_parquet(tmp_path / "other" / "results.parquet", index=False)
    with pytest.raises(DataError, match="no cell in common"):
        compare(load_results(run_dir), load_results(tmp_path / "other"))
    disjoint = bench("compare", str(run_dir), str(tmp_path / "other"))
    assert disjoint.returncode == 2 and "no cell in common" in disjoint.stderr
    assert "Traceback" not in disjoint.stderr
    missing = bench("compare", str(run_dir), str(tmp_path / "nope"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_cli_run_and_report_write_and_print_the_report(tmp_path):
    out = bench("run", "--quiet", "--denoisers", "median", "--noises", "gaussian:25",
                "--limit", "1", "--crop", "32", "--out", str(tmp_path / "r"))
    assert out.returncode == 0, out.stderr
    for name in ("report.html", "report.md"):
        assert (tmp_path / "r" / name).is_file()
        assert str(tmp_path / "r" / name) in out.stdout
    (tmp_path / "r" / "report.html").unlink()
    again = bench("report", str(tmp_path / "r"))
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


def test_report_renders_in_headless_chromium_without_errors(browser, run_dir, tmp_path):
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
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, ARTIFACTS / "report-screenshot.png")
    shutil.copy(run_dir / "report.html", ARTIFACTS / "report.html")
