"""The ``bench`` command, run in this process (``run_cli``); the real entry point's exit
statuses are checked in a subprocess once each (the last two tests)."""

import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from bench.errors import UnknownNameError
from bench.store.results import COLUMNS
from conftest import fake_plugin, plugin_env


def test_cli_run_quick_writes_parquet_with_the_columns(run_cli, tmp_path):
    out = run_cli("run", "--quick", "--quiet", "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    assert "noisy input" in out.stdout and "MP/s" in out.stdout
    assert str(tmp_path / "run") in out.stdout
    results = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert list(results.columns) == COLUMNS
    assert (results["status"] == "ok").all()
    assert {"median", "nlm", "tv"} <= set(results["denoiser"])

    report = run_cli("report", str(tmp_path / "run"))
    assert report.returncode == 0, report.stderr
    assert "gaussian noise" in report.stdout and "median" in report.stdout


def test_cli_dry_run_counts_cells(run_cli):
    out = run_cli("run", "--dry-run", "--denoisers", "median,tv", "--noises", "gaussian:15,25",
                  "--seeds", "0,1", "--limit", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("16 cells")


def test_cli_run_on_a_folder_with_blind_mode(run_cli, tmp_path, rng):
    folder = tmp_path / "imgs"
    folder.mkdir()
    iio.imwrite(folder / "x.png", (rng.random((40, 48)) * 255).astype(np.uint8))
    out = run_cli("run", "--quiet", "--dataset", f"folder:{folder}", "--denoisers", "median",
                  "--noises", "gaussian:25", "--mode", "oracle,blind", "--out", str(tmp_path / "r"))
    assert out.returncode == 0, out.stderr
    results = pd.read_parquet(tmp_path / "r" / "results.parquet")
    assert sorted(results["mode"]) == ["blind", "oracle"]
    assert (results["height"] == 40).all() and (results["width"] == 48).all()


@pytest.fixture
def corrupt_folder(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    iio.imwrite(folder / "good.png", np.zeros((32, 32), np.uint8))
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    return folder


@pytest.mark.parametrize("args, message", [
    (["--denoisers", "medain"], "unknown denoiser 'medain'; did you mean 'median'?"),
    (["--noises", "gausian:25"], "unknown noise 'gausian'; did you mean 'gaussian'?"),
    (["--noises", "gaussian:-3"], "noise 'gaussian': sigma=-3.0 is outside its valid range"),
    (["--noises", "salt_pepper:2"], "noise 'salt_pepper': amount=2.0 is outside its valid range"),
    (["--dataset", "folder:/no/such/folder"], "dataset folder '/no/such/folder' does not exist"),
    (["--dataset", "nosuchset"], "unknown dataset 'nosuchset'"),
    (["--seeds", "a,b"], "--seeds takes integers"),
    (["--mode", "sneaky"], "unknown mode 'sneaky'"),
    (["--seeds", "-1"], "seeds must be integers of at least 0, got -1"),
    (["--metrics", "psnr,snr"], "unknown metric 'snr'"),
    (["--protocol", "kair"], "unknown protocol 'kair'"),
    (["--border", "30"], "border 30 leaves nothing of image"),
    (["--noises", "real"], "noise 'real' is not generated"),
    (["--denoisers", "nlm(h_factor=0.6"], "unbalanced parentheses in 'nlm(h_factor=0.6'"),
    (["--denoisers", "median(vst=anscombe)"], "vst must be one of gat"),
])
def test_cli_bad_input_is_one_line_and_exit_2(run_cli, args, message, tmp_path):
    out = run_cli("run", "--quick", "--quiet", "--out", str(tmp_path / "r"), *args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # refused before anything ran


def test_cli_corrupt_image_names_the_file(run_cli, corrupt_folder, tmp_path):
    out = run_cli("run", "--quiet", "--dataset", f"folder:{corrupt_folder}", "--denoisers", "median",
                  "--out", str(tmp_path / "r"))
    assert out.returncode == 2
    assert "corrupt.png" in out.stderr and "Traceback" not in out.stderr


def test_cli_empty_folder(run_cli, tmp_path):
    out = run_cli("run", "--quiet", "--dataset", f"folder:{tmp_path}")
    assert out.returncode == 2 and "holds no image" in out.stderr


def test_cli_cuda_without_gpu_is_refused(run_cli, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal cannot be observed")
    out = run_cli("run", "--quick", "--quiet", "--device", "cuda", "--out", str(tmp_path / "r"))
    assert out.returncode == 2
    assert "no CUDA GPU is available" in out.stderr


def test_cli_report_of_missing_run_dir(run_cli, tmp_path):
    out = run_cli("report", str(tmp_path / "missing"))
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_cli_debug_raises_instead_of_one_line(run_cli):
    with pytest.raises(UnknownNameError, match="unknown denoiser 'medain'"):
        run_cli("--debug", "run", "--quick", "--denoisers", "medain")
    assert run_cli("run", "--quick", "--denoisers", "medain").returncode == 2  # debug is off again


def test_cli_failed_cells_exit_1_and_keep_results(run_cli, installed_plugin, tmp_path):
    installed_plugin(fake_plugin(tmp_path / "plugin", "failing-plugin",
                                 {"fails": "broken_denoisers:Raises"}))
    out = run_cli("run", "--quick", "--quiet", "--denoisers", "median,fails", "--out", tmp_path / "r")
    assert out.returncode == 1, out.stderr
    assert "fails failed: RuntimeError: boom second line" in out.stderr
    results = pd.read_parquet(tmp_path / "r" / "results.parquet")
    assert set(results.loc[results["denoiser"] == "median", "status"]) == {"ok"}
    assert set(results.loc[results["denoiser"] == "fails", "status"]) == {"failed"}


def test_cli_prints_plugin_text_verbatim(run_cli, installed_plugin, tmp_path):
    installed_plugin(fake_plugin(tmp_path / "plugin", "markup-plugin",
                                 {"markup[/red]": "broken_denoisers:RaisesRichMarkup"}))
    listing = run_cli("list")
    assert listing.returncode == 0 and "markup[/red]" in listing.stdout
    out = run_cli("run", "--quick", "--quiet", "--denoisers", "markup[/red]", "--out", tmp_path / "r")
    assert out.returncode == 1, out.stderr
    assert "stray [/red] closing tag and [bold]styled[/bold] text" in out.stderr


def test_cli_out_naming_a_file_is_one_line(run_cli, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    out = run_cli("run", "--quick", "--quiet", "--denoisers", "median", "--out", str(target))
    assert out.returncode == 2 and "names an existing file" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and target.read_text() == "x"


def test_cli_compare_with_a_file_says_it_is_a_file(run_cli, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    out = run_cli("compare", str(target), str(tmp_path))
    assert out.returncode == 2 and "is a file, not a run directory" in out.stderr


# --- the real entry point: exit statuses as a shell sees them --------------------------------


def bench_process(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bench", *map(str, args)], capture_output=True,
                          text=True, timeout=900, env=env or plugin_env())


def test_entry_point_bad_input_exits_2_with_one_line_and_debug_shows_the_traceback():
    out = bench_process("run", "--quick", "--denoisers", "medain")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "did you mean 'median'" in out.stderr
    debug = bench_process("--debug", "run", "--quick", "--denoisers", "medain")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "UnknownNameError" in debug.stderr


def test_entry_point_failed_cells_exit_1(tmp_path):
    folder = fake_plugin(tmp_path / "plugin", "failing-plugin", {"fails": "broken_denoisers:Raises"})
    out = bench_process("run", "--quick", "--quiet", "--denoisers", "fails", "--out", tmp_path / "r",
                        env=plugin_env(folder))
    assert out.returncode == 1, out.stderr
    assert "fails failed: RuntimeError: boom second line" in out.stderr
