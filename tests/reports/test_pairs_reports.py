"""Reports and comparisons of runs on the ``pairs:`` dataset (real noise, level 0)."""

import shutil

from bench import run_sweep
from bench.store.results import load_results
from conftest import invoke
from pair_folders import pairs_run, pairs_sweep  # noqa: F401  (pairs_run: a fixture)
from reports import compare
from reports.build import write_report


def test_pairs_run_report_has_a_real_noise_section(pairs_run, tmp_path):
    _, run_dir, _ = pairs_run
    shutil.copytree(run_dir, tmp_path / "run")
    files = write_report(tmp_path / "run")
    markdown = files.markdown.read_text()
    assert "### real noise, oracle mode" in markdown and "### real noise, blind mode" in markdown
    assert "| real | oracle | 0 |" in markdown  # the winners' rows
    assert "median" in markdown and "gaussian_blur" in markdown
    assert "real noise" in files.html.read_text()


def test_pairs_runs_compare(pairs_run, tmp_path):
    data, run_a, _ = pairs_run
    run_sweep(pairs_sweep(data, ("median",)), tmp_path / "b", progress=False)
    table = compare(load_results(run_a), load_results(tmp_path / "b"))
    assert set(table["noise"]) == {"real"} and set(table["denoiser"]) == {"median"}
    assert sorted(table["mode"]) == ["blind", "oracle"]
    assert (table["pairs"] == 2).all() and (table["psnr_diff"] == 0).all()
    assert set(table["status"]) == {"unchanged"}
    out = invoke("compare", str(run_a), str(tmp_path / "b"), "--fail-on-regression")
    assert out.returncode == 0, out.stderr
    assert "median" in out.stdout and "real" in out.stdout
