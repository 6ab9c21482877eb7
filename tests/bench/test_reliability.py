"""Reliability of runs: how workers start, what they leave, who writes a run.

- The README's Python example works as a script without a ``__main__`` guard, piped to
  ``python -`` and in a notebook: workers are new interpreters, never re-imports of the
  caller's main module.
- Helper processes a denoiser starts (``sleep``, a ``multiprocessing`` pool) end with the
  sweep, whichever way their worker ends (stopped, timed out, dead), on the ``process`` and
  the ``dask`` executors.
- Workers that keep dying before they are ready stop the sweep with a
  :class:`bench.errors.WorkerStartError` carrying their stderr; finished cells stay recorded.
- :class:`bench.store.lock.RunDirLock` keeps a second run out of a run directory.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bench.errors import BenchError, RunDirError, RunDirInUseError, WorkerStartError
from bench.run.runner import run_sweep
from bench.store.lock import LOCK_FILE, RunDirLock, make_run_dir
from bench.store.results import load_results, read_records
from bench.sweep import DenoiserSpec, NoiseSpec, Sweep
from conftest import plugin_env, require

FORKING = "forking_denoisers:make_registry"

#: The README's "From Python" example with a small sweep (16 cells, two worker processes),
#: written as a user would save it: no ``if __name__ == "__main__":`` guard.
EXAMPLE = '''\
from bench import Sweep, NoiseSpec, DenoiserSpec, run_sweep, load_results
from reports import summarise_ci

results = run_sweep(Sweep(noises=[NoiseSpec("gaussian", (25,))],
                          denoisers=[DenoiserSpec("median"), DenoiserSpec("gaussian_blur")],
                          crop=32, executor="process", jobs=2), "runs/mine")
print(summarise_ci(results))
'''


def check_example_output(folder: Path, stdout: str) -> None:
    """Every cell of the example's sweep is ``ok`` and its table was printed exactly once."""
    from reports import summarise_ci

    results = load_results(folder / "runs" / "mine")
    assert len(results) == 16 and set(results["status"]) == {"ok"}, results["error"].unique()
    table = summarise_ci(results)
    # pandas lays a table out to the width it finds (a terminal, a pipe, a notebook), but always
    # shows the last column's name, once per table.
    last = re.escape(str(table.columns[-1]))
    assert len(re.findall(rf"(?<!\w){last}(?!\w)", stdout)) == 1, stdout


def test_readme_example_as_a_script_without_main_guard(tmp_path):
    (tmp_path / "example.py").write_text(EXAMPLE)
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    check_example_output(tmp_path, done.stdout)


def test_readme_example_piped_to_python_stdin(tmp_path):
    done = subprocess.run([sys.executable, "-"], input=EXAMPLE, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    check_example_output(tmp_path, done.stdout)


def test_readme_example_in_a_notebook(tmp_path):
    require("ipykernel")
    nbclient = require("nbclient")
    nbformat = require("nbformat")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(EXAMPLE)])
    path = tmp_path / "example.ipynb"
    nbformat.write(notebook, path)
    notebook = nbformat.read(path, as_version=4)
    # Raises CellExecutionError when the cell fails: the notebook's "exit status".
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = notebook.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"]
    stdout = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    check_example_output(tmp_path, stdout)


# --- helper processes ------------------------------------------------------------------------


@pytest.fixture
def helpers(monkeypatch, tmp_path):
    """Mark every process the sweep starts with a token; return the folder of helper PIDs."""
    token = uuid.uuid4().hex
    monkeypatch.setenv("BENCH_LEAK_TOKEN", token)
    folder = tmp_path / "helpers"
    folder.mkdir()
    monkeypatch.setenv("BENCH_HELPER_DIR", str(folder))
    yield folder
    for pid, _ in marked_processes(token):  # never leave them behind, even when a test fails
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def marked_processes(token: str) -> list[tuple[int, str]]:
    """``(pid, command line)`` of every running process started with ``token`` in its environment.

    Leaves out this process's own ``multiprocessing`` resource tracker (Dask's local cluster
    starts it; it lives as long as this process does, whatever the sweep does).
    """
    found = []
    marker = f"BENCH_LEAK_TOKEN={token}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if marker not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):  # gone meanwhile, or a zombie
            continue
        if parent == os.getpid() and "multiprocessing.resource_tracker" in command:
            continue
        found.append((int(entry), command))
    return found


def processes_left(token: str, grace: float = 5.0) -> list[tuple[int, str]]:
    """The marked processes still running ``grace`` seconds after a sweep, at most."""
    end = time.monotonic() + grace
    while (left := marked_processes(token)) and time.monotonic() < end:
        time.sleep(0.1)
    return left


def small_sweep(*names, **settings):
    values = dict(datasets=["skimage"], noises=[NoiseSpec("gaussian", (25,))], crop=32, limit=2,
                  denoisers=[DenoiserSpec(n) for n in names], seeds=[0], executor="process",
                  jobs=2)
    values.update(settings)
    return Sweep(**values)


def statuses(results) -> dict[str, set[str]]:
    return results.groupby("denoiser")["status"].agg(set).to_dict()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="counts processes via /proc")
def test_process_executor_leaves_no_helper_process_running(tmp_path, helpers):
    token = os.environ["BENCH_LEAK_TOKEN"]
    results = run_sweep(small_sweep("starts_sleep", "starts_pool", "median"), tmp_path / "run",
                        registry_factory=FORKING, progress=False)
    assert statuses(results) == {"starts_sleep": {"ok"}, "starts_pool": {"ok"}, "median": {"ok"}}
    assert len(list(helpers.iterdir())) >= 3  # a sleep and two pool processes at least
    assert processes_left(token) == []


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="counts processes via /proc")
def test_timed_out_and_dead_workers_leave_no_helper_process_running(tmp_path, helpers):
    token = os.environ["BENCH_LEAK_TOKEN"]
    results = run_sweep(small_sweep("sleeps_and_hangs", "sleeps_and_exits", "median", limit=1,
                                    timeout=10),
                        tmp_path / "run", registry_factory=FORKING, progress=False)
    assert statuses(results) == {"sleeps_and_hangs": {"timeout"}, "sleeps_and_exits": {"failed"},
                                 "median": {"ok"}}
    assert len(list(helpers.iterdir())) == 2  # each started its sleep before it hung or died
    assert processes_left(token) == []


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="counts processes via /proc")
def test_dask_executor_leaves_no_helper_process_running(tmp_path, helpers):
    require("dask.distributed")
    token = os.environ["BENCH_LEAK_TOKEN"]
    results = run_sweep(small_sweep("starts_sleep", "starts_pool", "sleeps_and_hangs", "median",
                                    executor="dask", timeout=10, limit=1),
                        tmp_path / "run", registry_factory=FORKING, progress=False)
    assert statuses(results) == {"starts_sleep": {"ok"}, "starts_pool": {"ok"},
                                 "sleeps_and_hangs": {"timeout"}, "median": {"ok"}}
    assert len(list(helpers.iterdir())) >= 4
    assert processes_left(token) == []


ORPHANS = """\
import sys
from bench import DenoiserSpec, NoiseSpec, Sweep, run_sweep
run_sweep(Sweep(noises=[NoiseSpec("gaussian", (25,))], crop=32, limit=2, jobs=2, timeout=600,
                denoisers=[DenoiserSpec("starts_sleep"), DenoiserSpec("sleeps_and_hangs")]),
          sys.argv[1], registry_factory="forking_denoisers:make_registry", progress=False)
"""


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="counts processes via /proc")
def test_workers_and_helpers_end_when_the_sweep_is_killed(tmp_path, helpers):
    token = os.environ["BENCH_LEAK_TOKEN"]
    env = plugin_env()  # forking_denoisers, importable in the new interpreter
    sweep = subprocess.Popen([sys.executable, "-c", ORPHANS, str(tmp_path / "run")], env=env)
    try:
        deadline = time.monotonic() + 120
        while len(list(helpers.iterdir())) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # both workers hang, after three or four sleeps were started
        # (how many depends on which worker reaches which cell first)
        assert len(list(helpers.iterdir())) >= 3 and len(marked_processes(token)) >= 6
    finally:
        sweep.kill()  # kill -9: no clean-up runs in the sweep's process
        sweep.wait()
    assert processes_left(token) == []  # each worker notices within a second


# --- workers that cannot start -----------------------------------------------------------------


@pytest.mark.parametrize("executor", ["process", pytest.param("dask", marks=pytest.mark.slow)])
def test_workers_that_cannot_start_stop_the_sweep_with_their_stderr(tmp_path, monkeypatch,
                                                                     executor):
    if executor == "dask":
        require("dask.distributed")
    monkeypatch.setenv("FORKING_DENOISERS_PARENT", str(os.getpid()))
    with pytest.raises(WorkerStartError, match="cannot start: 3 in a row ended .exit code 1. "
                                               "before they were ready; .*ImportError: "
                                               "forking_denoisers: this registry cannot be "
                                               "built in a worker") as raised:
        run_sweep(small_sweep("median", executor=executor), tmp_path,
                  registry_factory="forking_denoisers:fails_in_workers", progress=False)
    assert isinstance(raised.value, BenchError) and "\n" not in str(raised.value)
    assert "Traceback" in raised.value.stderr
    assert read_records(tmp_path).empty


def test_cells_finished_before_workers_stop_starting_stay_recorded(tmp_path, monkeypatch,
                                                                   helpers):
    monkeypatch.setenv("FORKING_DENOISERS_PARENT", str(os.getpid()))
    with pytest.raises(WorkerStartError, match="only the first worker may start"):
        run_sweep(small_sweep("median", "sleeps_and_exits", jobs=1), tmp_path / "run",
                  registry_factory="forking_denoisers:fails_after_first_worker", progress=False)
    records = read_records(tmp_path / "run")
    assert sorted(zip(records["denoiser"], records["status"])) == [("median", "ok"),
                                                                   ("sleeps_and_exits", "failed")]
    assert processes_left(os.environ["BENCH_LEAK_TOKEN"]) == []


# --- the run directory lock ---------------------------------------------------------------------


def test_run_dir_lock_refuses_a_second_holder_in_the_same_process(tmp_path):
    with RunDirLock(tmp_path / "run") as first:
        assert first.held
        assert (tmp_path / "run" / LOCK_FILE).read_text().split() == [str(os.getpid()),
                                                                      socket.gethostname()]
        message = (f"run directory '{tmp_path / 'run'}' is in use by PID {os.getpid()} on "
                   f"{socket.gethostname()}; wait for it or use another --out")
        with pytest.raises(RunDirInUseError, match=f"^{message}$".replace("(", r"\(")):
            RunDirLock(tmp_path / "run").acquire()
    assert not first.held
    with RunDirLock(tmp_path / "run"):  # released: free again
        pass


HOLD = """\
import sys
from bench.store.lock import RunDirLock
lock = RunDirLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("how", ["exits", "killed"])
def test_run_dir_lock_held_by_another_process_until_it_ends(tmp_path, how):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(RunDirInUseError, match=f"in use by PID {holder.pid} on "):
            RunDirLock(run_dir).acquire()
        if how == "killed":
            holder.kill()  # kill -9: the kernel drops the lock
        else:
            holder.stdin.close()
        holder.wait(30)
    finally:
        holder.kill()
        holder.wait()
    with RunDirLock(run_dir):  # what a resume does next
        pass


def test_run_dir_that_names_a_file_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RunDirError, match="run directory '.*file' names an existing file"):
        make_run_dir(tmp_path / "file")
    with pytest.raises(RunDirError, match="a parent of it is a file"):
        RunDirLock(tmp_path / "file" / "run").acquire()
    assert not issubclass(RunDirError, OSError)
