"""Shared fixtures: small clean images, a random generator, the reference data folder.

The tests mirror the packages (``bench/``, ``denoisers/``, ``noises/``, ``reports/``). Helper
modules importable by name live in ``plugins/``, put on ``sys.path`` here: the plugins that runs
name by ``"module:object"`` (``broken_denoisers:make_registry``...) and shared test data
(``pair_folders``). Worker processes receive the parent's ``sys.path``; a ``bench`` subprocess
gets it through :func:`plugin_env`. The command line is tested in this process (``run_cli``).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data

#: Folder of the helper plugin modules, importable by name.
PLUGINS = Path(__file__).resolve().parent / "plugins"
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def gray_image():
    """A 64x64 crop of scikit-image's camera, float32 in [0, 1]."""
    return (skimage.data.camera()[200:264, 200:264] / 255).astype(np.float32)


@pytest.fixture(scope="session")
def colour_image():
    """A 64x64 crop of scikit-image's astronaut, float32 in [0, 1]."""
    return (skimage.data.astronaut()[100:164, 180:244] / 255).astype(np.float32)


@pytest.fixture(params=["gray", "colour"])
def clean_image(request, gray_image, colour_image):
    return gray_image if request.param == "gray" else colour_image


def reference_folder(name: str) -> Path:
    """``$BENCH_DATA_DIR/<name>``; skip when absent, but fail under CI, where it must exist."""
    root = os.environ.get("BENCH_DATA_DIR")
    folder = Path(root) / name if root else None
    if folder is None or not folder.is_dir():
        message = f"reference data folder {name} not found (set BENCH_DATA_DIR)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


@functools.cache
def _reference_image(folder: str, name: str) -> np.ndarray:
    from bench.datasets import open_dataset, read_image

    return read_image(open_dataset(f"folder:{reference_folder(folder)}"), name)


def reference_image(folder: str, name: str) -> np.ndarray:
    """Image ``name`` of ``$BENCH_DATA_DIR/<folder>`` as the suite reads it (float32 in
    [0, 1]): read once per test session, a fresh copy per call."""
    return _reference_image(folder, name).copy()


def require(module: str):
    """Import ``module``; skip when it is missing, but fail under CI, where it must be installed."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{module} is not installed; CI installs every extra")
        pytest.skip(f"{module} is not installed")


def fake_plugin(folder: Path, distribution: str, denoisers: dict[str, str]) -> Path:
    """Lay out an installed plugin distribution in ``folder`` (see ``installed_plugin``).

    ``denoisers`` maps each name to register to its ``"module:Class"`` target; the
    distribution's version is 0.1. Returns ``folder``.
    """
    module = distribution.replace("-", "_") + "_register"
    folder.mkdir(parents=True, exist_ok=True)
    dist = folder / f"{distribution.replace('-', '_')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[denoise_bench.plugins]\nplugin = {module}:register\n")
    lines = ["def register(registry):"] + [
        f"    registry.add('denoiser', {name!r}, {target!r}, 'from {distribution}')"
        for name, target in denoisers.items()]
    (folder / f"{module}.py").write_text("\n".join(lines) + "\n")
    return folder


def plugin_env(*folders: Path) -> dict[str, str]:
    """Environment of a ``bench`` subprocess that imports ``folders`` and the helper plugins."""
    path = [str(folder) for folder in folders] + [str(PLUGINS), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, COLUMNS="200", PYTHONPATH=os.pathsep.join(filter(None, path)))


@pytest.fixture
def installed_plugin(monkeypatch):
    """Install a :func:`fake_plugin` folder into this process; the default registry sees it.

    Call the returned function with the folder; ``default_registry`` is rebuilt on its next
    use, with the plugin, and after the test without it.
    """
    from bench.registry import default_registry

    def install(folder: Path) -> Path:
        monkeypatch.syspath_prepend(str(folder))
        default_registry.cache_clear()
        return folder

    yield install
    default_registry.cache_clear()


#: The example plugin distribution shipped in ``examples/``.
EXAMPLE_PLUGIN = Path(__file__).resolve().parent.parent / "examples" / "denoise-bench-example-plugin"


@pytest.fixture(scope="session")
def example_plugin_site(tmp_path_factory):
    """Folder where the example plugin is installed, entry points included (put it on the
    path with ``installed_plugin``); None when this environment has it installed already.

    pip builds from a copy of its sources, so that no ``build/`` or ``*.egg-info`` lands in
    the source tree, and installs into a private folder, leaving the environment as it was.
    """
    import importlib.metadata
    import shutil
    import subprocess

    try:
        importlib.metadata.distribution("denoise-bench-example-plugin")
        return None
    except importlib.metadata.PackageNotFoundError:
        pass
    source = tmp_path_factory.mktemp("example-plugin-src") / EXAMPLE_PLUGIN.name
    shutil.copytree(EXAMPLE_PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path_factory.mktemp("example-plugin-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    return target


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request):
    """``torch.device`` of each kind; the CUDA case is skipped on a machine without a GPU."""
    torch = pytest.importorskip("torch")
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine: torch's thread pool only waits
    yield torch.device(request.param)
    torch.set_num_threads(threads)


@pytest.fixture
def wide_console(monkeypatch):
    """The CLI's console, 200 columns wide, so that table cells are not wrapped."""
    from rich.console import Console

    from bench import cli

    monkeypatch.setattr(cli, "console", Console(width=200))


class Result:
    """What an in-process ``bench`` command left: its exit status, stdout and stderr."""

    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def invoke(*args) -> Result:
    """Run ``bench ARGS...`` in this process (``bench.cli.main``), 200 columns wide.

    Usable from fixtures of any scope; the ``run_cli`` fixture hands it to a test.
    """
    import contextlib
    import io
    import warnings

    from rich.console import Console

    from bench import cli

    out, err = io.StringIO(), io.StringIO()
    console, showwarning = cli.console, warnings.showwarning  # main() replaces showwarning
    cli.console = Console(width=200)  # table cells are not wrapped
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main([str(arg) for arg in args])
    finally:
        cli.console, warnings.showwarning = console, showwarning
    return Result(status, out.getvalue(), err.getvalue())


@pytest.fixture
def run_cli():
    """:func:`invoke`: ``run_cli("run", "--quick", ...)`` gives a :class:`Result`."""
    return invoke


@pytest.fixture(scope="module")
def torch_on_two_threads():
    """Torch's CPU thread pool at two threads for a module of learned-model tests."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)
