import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from bench.store.results import COLUMNS
from conftest import fake_plugin


def bench(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          timeout=900, env=dict(os.environ, COLUMNS="200", **(env or {})))


def test_cli_run_quick_writes_parquet_with_the_columns(tmp_path):
    out = bench("run", "--quick", "--quiet", "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    assert "noisy input" in out.stdout and "MP/s" in out.stdout
    assert str(tmp_path / "run") in out.stdout
    results = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert list(results.columns) == COLUMNS
    assert (results["status"] == "ok").all()
    assert {"median", "nlm", "tv"} <= set(results["denoiser"])

    report = bench("report", str(tmp_path / "run"))
    assert report.returncode == 0, report.stderr
    assert "gaussian noise" in report.stdout and "median" in report.stdout


def test_cli_dry_run_counts_cells():
    out = bench("run", "--dry-run", "--denoisers", "median,tv", "--noises", "gaussian:15,25",
                "--seeds", "0,1", "--limit", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("16 cells")


def test_cli_run_on_a_folder_with_blind_mode(tmp_path, rng):
    folder = tmp_path / "imgs"
    folder.mkdir()
    iio.imwrite(folder / "x.png", (rng.random((40, 48)) * 255).astype(np.uint8))
    out = bench("run", "--quiet", "--dataset", f"folder:{folder}", "--denoisers", "median",
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
def test_cli_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    out = bench("run", "--quick", "--quiet", "--out", str(tmp_path / "r"), *args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # refused before anything ran


def test_cli_corrupt_image_names_the_file(corrupt_folder, tmp_path):
    out = bench("run", "--quiet", "--dataset", f"folder:{corrupt_folder}", "--denoisers", "median",
                "--out", str(tmp_path / "r"))
    assert out.returncode == 2
    assert "corrupt.png" in out.stderr and "Traceback" not in out.stderr


def test_cli_empty_folder(tmp_path):
    out = bench("run", "--quiet", "--dataset", f"folder:{tmp_path}")
    assert out.returncode == 2 and "holds no image" in out.stderr


def test_cli_cuda_without_gpu_is_refused(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal cannot be observed")
    out = bench("run", "--quick", "--quiet", "--device", "cuda", "--out", str(tmp_path / "r"))
    assert out.returncode == 2
    assert "no CUDA GPU is available" in out.stderr


def test_cli_report_of_missing_run_dir(tmp_path):
    out = bench("report", str(tmp_path / "missing"))
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_cli_debug_shows_traceback(tmp_path):
    out = bench("--debug", "run", "--quick", "--denoisers", "medain")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_cli_failed_cells_exit_1_and_keep_results(tmp_path):
    folder = fake_plugin(tmp_path / "plugin", "failing-plugin", {"fails": "broken_denoisers:Raises"})
    out = bench("run", "--quick", "--quiet", "--denoisers", "median,fails", "--out", str(tmp_path / "r"),
                env={"PYTHONPATH": os.pathsep.join([str(folder), str(Path(__file__).parent)])})
    assert out.returncode == 1, out.stderr
    assert "fails failed: RuntimeError: boom second line" in out.stderr
    results = pd.read_parquet(tmp_path / "r" / "results.parquet")
    assert set(results.loc[results["denoiser"] == "median", "status"]) == {"ok"}
    assert set(results.loc[results["denoiser"] == "fails", "status"]) == {"failed"}


def test_cli_prints_plugin_text_verbatim(tmp_path):
    folder = fake_plugin(tmp_path / "plugin", "markup-plugin",
                         {"markup[/red]": "broken_denoisers:RaisesRichMarkup"})
    env = {"PYTHONPATH": os.pathsep.join([str(folder), str(Path(__file__).parent)])}
    listing = bench("list", env=env)
    assert listing.returncode == 0 and "markup[/red]" in listing.stdout
    out = bench("run", "--quick", "--quiet", "--denoisers", "markup[/red]", "--out", str(tmp_path / "r"), env=env)
    assert out.returncode == 1, out.stderr
    assert "stray [/red] closing tag and [bold]styled[/bold] text" in out.stderr


def test_cli_out_naming_a_file_is_one_line(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    out = bench("run", "--quick", "--quiet", "--denoisers", "median", "--out", str(target))
    assert out.returncode == 2 and "names an existing file" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and target.read_text() == "x"


def test_cli_compare_with_a_file_says_it_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    out = bench("compare", str(target), str(tmp_path))
    assert out.returncode == 2 and "is a file, not a run directory" in out.stderr
