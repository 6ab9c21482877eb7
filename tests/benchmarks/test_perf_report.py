"""``scripts/perf_report.py`` runs end to end, so that the table the README quotes cannot rot.

A small run (three Train400 images, a 256x256 SSIM, three cell repeats): its ratios are not
the figures (too small to mean anything), only the script's health is checked here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import reference_folder

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_perf_report_prints_its_four_comparisons():
    train = reference_folder("Train400")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "perf_report.py"), "--data", str(train),
         "--images", "3", "--ssim-size", "256", "--repeats", "3", "--profile", "never"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = ("SSIM 256x256, suite vs", "cell overhead, gaussian_blur", "sweep of 27 cells, bench run",
            "run_sweep, process (2 workers) vs serial, 27 cells")
    table = [line for line in done.stdout.splitlines() if line.startswith(rows)]
    assert len(table) == 4 and all(line.endswith(("yes", "NO")) for line in table), done.stdout
    assert "run_sweep seconds, in the order run: serial" in done.stdout
