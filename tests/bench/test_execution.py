"""Executors, fault isolation, resume and sweep files.

The broken denoisers live in ``tests/plugins``, which the tests' conftest puts on ``sys.path``;
worker processes (and those of Dask's local cluster) find them because they receive the
caller's ``sys.path``, with no ``PYTHONPATH`` set here.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.config import load_sweep_file, sweep_from_dict
from bench.errors import ConfigError, ResumeError
from bench.store.results import RECORDS, read_records
from bench.run.runner import run_sweep
from bench.sweep import DenoiserSpec, NoiseSpec, Sweep
from conftest import fake_plugin, plugin_env, require

ROOT = Path(__file__).resolve().parents[2]
FACTORY = "broken_denoisers:make_registry"
QUALITY = ["psnr", "ssim", "noisy_psnr", "noisy_ssim", "sigma_used"]


def sweep(*names, **settings):
    values = dict(datasets=["skimage"], noises=[NoiseSpec("gaussian", (25,)), NoiseSpec("poisson", (30,))],
                  crop=40, limit=4, denoisers=[DenoiserSpec(n) for n in names], seeds=[0, 1])
    values.update(settings)
    return Sweep(**values)


def by_cell(frame):
    return frame.set_index("cell_id").sort_index()


def test_executors_give_identical_noisy_images_and_metrics(tmp_path):
    names = ("median", "tv", "nlm", "wavelet", "bilateral", "nlm_opencv", "gaussian_blur")
    serial = run_sweep(sweep(*names, executor="serial"), tmp_path / "s", progress=False)
    process = run_sweep(sweep(*names, executor="process", jobs=2), tmp_path / "p", progress=False)
    single = run_sweep(sweep(*names, executor="process", jobs=1), tmp_path / "p1", progress=False)
    assert (serial["status"] == "ok").all()
    for other in (process, single):
        pd.testing.assert_frame_equal(by_cell(serial)[QUALITY], by_cell(other)[QUALITY])
    assert set(process["workers"]) == {2} and set(serial["workers"]) == {1}
    assert list(process["cell_id"]) == list(serial["cell_id"])  # rows in plan order


@pytest.mark.slow
def test_workers_keep_to_one_clean_image_while_it_has_groups():
    """The process executor's queue (``lane=clean_image``): each worker reads an image once."""
    from bench.run.supervisor import _Pending

    groups = [[(image, level)] for image in "abc" for level in (15, 25)]
    pending = _Pending(groups, lane=lambda group: group[0][0])
    first = pending.take(None, set())
    second = pending.take(None, {first[0]})  # another worker is on image a: it starts on b
    assert (first, second) == (("a", [("a", 15)]), ("b", [("b", 15)]))
    assert pending.take("a", {"b"}) == ("a", [("a", 25)])
    pending.put_back([[("a", 25)]])  # its worker died: back at the front, in its lane
    assert pending.take(None, {"b"}) == ("a", [("a", 25)])  # its replacement takes it first
    assert pending.take("b", set()) == ("b", [("b", 25)])
    assert pending.take("b", {"c"}) == ("c", [("c", 15)])  # only c is left: shared
    assert pending.take(None, {"c"}) == ("c", [("c", 25)]) and not pending
    in_order = _Pending(groups, lane=None)
    assert [in_order.take(None, set())[1] for _ in groups] == groups


def test_dask_local_cluster_matches_serial_and_isolates_faults(tmp_path):
    require("dask.distributed")
    names = ("median", "tv", "hangs", "exits_worker")
    serial = run_sweep(sweep("median", "tv", executor="serial", limit=2, seeds=[0]),
                       tmp_path / "s", progress=False)
    # A new worker's first cell imports what the cells need: leave room on a loaded machine.
    dask_run = run_sweep(sweep(*names, executor="dask", jobs=2, timeout=10, limit=2, seeds=[0]),
                         tmp_path / "d", registry_factory=FACTORY, progress=False)
    ok = dask_run[dask_run["denoiser"].isin(["median", "tv"])]
    pd.testing.assert_frame_equal(by_cell(serial)[QUALITY], by_cell(ok)[QUALITY])
    assert set(dask_run.loc[dask_run["denoiser"] == "hangs", "status"]) == {"timeout"}
    died = dask_run[dask_run["denoiser"] == "exits_worker"]
    assert set(died["status"]) == {"failed"} and died["error"].str.contains("exit code 3").all()


def test_dask_queue_sizes_tasks_by_measured_time_and_share():
    """The Dask executor's batches: one group until a task is measured, then what
    ``DASK_TASK_SECONDS`` holds, at most an equal share of what is left; an image's groups
    together, handed-back groups first."""
    from types import SimpleNamespace

    from bench.run.executors import DASK_TASK_SECONDS, _DaskQueue

    groups = [[SimpleNamespace(dataset="d", image=image, level=level)]
              for level in range(20) for image in "ab"]  # the two images interleaved
    queue = _DaskQueue(groups)

    def take(tasks):
        return [(group[0].image, group[0].level) for group in queue.take(tasks)]

    assert take(4) == [("a", 0)]  # nothing measured yet
    queue.measured(20, 3.9 * DASK_TASK_SECONDS)  # 5 groups to a task
    assert take(4) == [("a", level) for level in range(1, 6)]
    queue.put_back([groups[2 * level] for level in (4, 5)])  # a task did not start a4, a5
    assert take(4) == [("a", level) for level in range(4, 9)]
    queue.measured(1, DASK_TASK_SECONDS / 1000)  # fast: the share of 31 left over 4 tasks binds
    assert take(4) == [("a", level) for level in range(9, 17)]
    queue.measured(1, 10 * DASK_TASK_SECONDS)  # slow groups go one at a time
    assert take(4) == [("a", 17)]
    queue.measured(1, DASK_TASK_SECONDS / 1000)
    assert take(1) == [("a", 18), ("a", 19)] + [("b", level) for level in range(20)]
    assert not queue


def test_dask_task_times_out_a_cell_and_hands_back_the_groups_it_did_not_start():
    """A task's cells keep their deadline; once its time is up it starts no further group."""
    from bench.plan import make_plan
    from bench.registry import build_registry
    from bench.run.executors import _close_dask_supervisors, _dask_task
    from bench.run.runner import worker_config

    plan = make_plan(sweep("hangs", "median", limit=1, seeds=[0, 1, 2],
                           noises=[NoiseSpec("gaussian", (25,))]), build_registry(FACTORY))
    config, groups, run = worker_config(plan, FACTORY), plan.groups(), uuid.uuid4().hex
    try:
        report = _dask_task(groups, config, 5, run, 1.0)
        outcomes = [(cell.denoiser,
                     result[0] if isinstance(result, tuple) else result.record.status)
                    for cell, result in report.results]
        assert outcomes == [("hangs", "timeout"), ("median", "ok")]  # the group went on
        assert report.ran == 1 and report.started and report.seconds >= 5
        medians = [[cell for cell in group if cell.denoiser == "median"] for group in groups]
        again = _dask_task(medians, config, 5, run, 60.0)  # the same worker process, in time
        assert again.ran == 3 and not again.started
        assert [cell for cell, _ in again.results] == [group[0] for group in medians]
        assert {result.record.status for _, result in again.results} == {"ok"}
    finally:
        assert _close_dask_supervisors(run) == 1


def test_dask_batches_match_serial_and_a_lost_dask_worker_fails_only_its_task(tmp_path,
                                                                              monkeypatch):
    """Tasks of several groups: cells as in ``serial``, a dead cell worker costs its cell only,
    and a task whose Dask worker dies records the cells it held, and no others, as failed."""
    require("dask.distributed")
    import dask

    import bench.run.executors as executors

    monkeypatch.setattr(executors, "DASK_TASK_SECONDS", 600.0)  # tasks take their full share
    monkeypatch.setattr(executors, "DASK_IN_FLIGHT", 1)
    batches = []
    take = executors._DaskQueue.take
    monkeypatch.setattr(executors._DaskQueue, "take",
                        lambda queue, tasks: batches.append(take(queue, tasks)) or batches[-1])

    def kills_its_dask_worker(groups, *args):
        """Pickled by value: the worker's own ``_dask_task``, unless the task holds a group
        of the first image with seed 1."""
        from bench.run import executors

        if any(group[0].image == first and group[0].seed == 1 for group in groups):
            os._exit(1)  # the Dask worker process itself, as the OOM killer would
        return executors._dask_task(groups, *args)

    settings = dict(limit=3, seeds=[0, 1], timeout=30)
    serial = run_sweep(sweep("median", executor="serial", **settings), tmp_path / "s",
                       progress=False)
    first = serial["image"].iloc[0]
    monkeypatch.setattr(executors, "_dask_task", kills_its_dask_worker)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        results = run_sweep(sweep("median", "exits_worker", executor="dask", jobs=2, **settings),
                            tmp_path / "d", registry_factory=FACTORY, progress=False)
    assert max(map(len, batches)) > 1
    held = {cell.id for batch in batches
            if any(group[0].image == first and group[0].seed == 1 for group in batch)
            for group in batch for cell in group}
    lost = results["error"].str.startswith("DaskTaskFailed", na=False)
    assert set(results.loc[lost, "cell_id"]) == held
    assert (results.loc[lost, "status"] == "failed").all()
    assert len(results) == 2 * len(serial) and results["cell_id"].is_unique
    ran = results[~lost]
    died = ran[ran["denoiser"] == "exits_worker"]
    assert set(died["status"]) == {"failed"} and died["error"].str.contains("exit code 3").all()
    ok = by_cell(ran[ran["denoiser"] == "median"])
    assert set(ok.index) == set(serial["cell_id"]) - held and (ok["status"] == "ok").all()
    pd.testing.assert_frame_equal(by_cell(serial).loc[ok.index, QUALITY], ok[QUALITY])


def test_process_executor_isolates_hangs_crashes_and_exceptions(tmp_path):
    names = ("median", "hangs", "exits_worker", "segfaults", "raises", "returns_nan")
    results = run_sweep(sweep(*names, executor="process", jobs=2, timeout=8, limit=2, seeds=[0],
                              noises=[NoiseSpec("gaussian", (25,))]),
                        tmp_path, registry_factory=FACTORY, progress=False)
    status = results.groupby("denoiser")["status"].agg(set).to_dict()
    errors = results.drop_duplicates("denoiser").set_index("denoiser")["error"]
    assert status["median"] == {"ok"}
    assert status["hangs"] == {"timeout"} and "no result after 8 s" in errors["hangs"]
    assert status["exits_worker"] == {"failed"} and "exit code 3" in errors["exits_worker"]
    assert status["segfaults"] == {"failed"} and "SIGSEGV" in errors["segfaults"]
    assert status["raises"] == {"failed"} and "boom" in errors["raises"]
    assert status["returns_nan"] == {"failed"}
    assert len(results) == 2 * len(names) and results["cell_id"].is_unique


def test_worker_start_up_does_not_count_against_the_cell_timeout(tmp_path):
    # The registry takes 4 s to build, longer than the cell timeout.
    results = run_sweep(sweep("median", executor="process", jobs=1, timeout=3, limit=1,
                              seeds=[0], noises=[NoiseSpec("gaussian", (25,))]),
                        tmp_path, registry_factory="broken_denoisers:make_slow_registry",
                        progress=False)
    assert list(results["status"]) == ["ok"], results["error"].tolist()


def test_rerun_into_same_directory_skips_done_cells(tmp_path):
    first = run_sweep(sweep("median", executor="serial"), tmp_path, progress=False)
    lines = (tmp_path / RECORDS).read_text().count("\n")
    extended = run_sweep(sweep("median", "gaussian_blur", executor="serial"), tmp_path, progress=False)
    assert (tmp_path / RECORDS).read_text().count("\n") == lines + len(first)  # only the new ones ran
    assert len(extended) == 2 * len(first) and extended["cell_id"].is_unique
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert len(manifest["resumed"]) == 1


@pytest.mark.parametrize("change, message", [
    (dict(crop=48), "crop=40"),
    (dict(round8=True), "protocol"),
    (dict(metrics=["psnr"]), r"metrics=\['psnr', 'ssim'\]"),
    (dict(noises=[NoiseSpec("gaussian", (25,), (("clip", True),))]), "noise 'gaussian' was run with parameters"),
])
def test_incompatible_resume_is_refused(tmp_path, change, message):
    run_sweep(sweep("median", executor="serial", limit=1), tmp_path, progress=False)
    settings = dict(executor="serial", limit=1)
    settings.update(change)
    with pytest.raises(ResumeError, match=message):
        run_sweep(sweep("median", **settings), tmp_path, progress=False)


def test_exclusive_timing_times_each_cell_alone(tmp_path):
    results = run_sweep(sweep("median", "tv", executor="process", jobs=2, timing="exclusive",
                              limit=2, seeds=[0]), tmp_path, progress=False)
    assert set(results["timing"]) == {"exclusive"} and set(results["workers"]) == {1}
    assert (results["mpix_per_s"] > 0).all() and results["cell_id"].is_unique


def test_exclusive_timing_on_a_shared_dask_cluster_runs_one_task_at_a_time_on_one_worker(
        tmp_path, monkeypatch):
    """``--timing exclusive --scheduler ADDRESS``: the re-timing tasks must not run beside each
    other on a cluster of several workers, as the records say they did not."""
    require("dask.distributed")
    from dask.distributed import LocalCluster

    import bench.run.executors as executors

    log = tmp_path / "tasks.log"

    def logged_task(groups, config, *args):
        """Pickled by value: the worker's own ``_dask_task``, its interval and worker noted."""
        import os
        import time

        from bench.run import executors

        start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of a machine
        report = executors._dask_task(groups, config, *args)
        with open(log, "a") as file:
            file.write(f"{config.timing} {os.getpid()} {start} {time.monotonic()}\n")
        return report

    monkeypatch.setattr(executors, "_dask_task", logged_task)
    monkeypatch.setattr(executors, "DASK_TASK_SECONDS", 1e-6)  # one group per task
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                      dashboard_address=None) as cluster:
        results = run_sweep(sweep("median", "tv", executor="dask", timing="exclusive",
                                  scheduler=cluster.scheduler_address, limit=2, seeds=[0]),
                            tmp_path / "run", progress=False)
    assert set(results["timing"]) == {"exclusive"} and (results["status"] == "ok").all()
    rows = [line.split() for line in log.read_text().splitlines()]
    solo = sorted((float(start), float(end), pid) for timing, pid, start, end in rows
                  if timing == "exclusive")
    assert len(solo) == len(results) // 2  # one task per group (noisy image) of the re-timing
    assert len({pid for _, _, pid in solo}) == 1
    assert all(end <= next_start for (_, end, _), (next_start, _, _) in zip(solo, solo[1:]))


def test_an_unreachable_dask_scheduler_is_a_one_line_error(tmp_path, monkeypatch):
    require("dask.distributed")
    import socket

    import bench.run.executors as executors
    from bench.errors import DeviceError

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setattr(executors, "DASK_CONNECT_SECONDS", 1)
    with pytest.raises(DeviceError, match=f"cannot reach the Dask scheduler at {address}: "):
        run_sweep(sweep("median", executor="dask", scheduler=address, limit=1, seeds=[0]),
                  tmp_path, progress=False)


def test_torn_last_record_is_ignored(tmp_path):
    run_sweep(sweep("median", executor="serial", limit=1), tmp_path, progress=False)
    with open(tmp_path / RECORDS, "a") as records:
        records.write('{"dataset": "skimage", "ima')  # a crash in the middle of a write
    assert len(read_records(tmp_path)) == 4


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_killed_sweep_resumes_without_duplicates_or_losses(run_cli, installed_plugin, tmp_path, how):
    folder = fake_plugin(tmp_path / "plugin", "slow-plugin", {"slow": "broken_denoisers:Slow"})
    env = plugin_env(folder)  # a real process to kill, with the plugin installed
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "bench", "run", "--quiet", "--denoisers", "slow,median",
               "--noises", "gaussian:15,25", "--crop", "32", "--seeds", "0,1", "--jobs", "2",
               "--out", str(run_dir)]
    expected = 8 * 2 * 2 * 2  # images x levels x seeds x denoisers
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    records = run_dir / RECORDS
    while time.monotonic() < deadline:
        if records.exists() and records.read_text().count("\n") >= 10:
            break
        time.sleep(0.05)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=60)
    recorded = read_records(run_dir)
    assert 10 <= len(recorded) < expected, f"not interrupted mid-sweep: {stderr.decode()[-2000:]}"
    assert not (run_dir / "results.parquet").exists() or how == signal.SIGINT

    installed_plugin(folder)
    resumed = run_cli("run", "--quiet", "--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    ids = [line["cell_id"] for line in lines]
    assert len(ids) == len(set(ids)) == expected  # no duplicate, no lost cell
    final = pd.read_parquet(run_dir / "results.parquet")
    assert len(final) == expected and (final["status"] == "ok").all()


def test_example_sweep_files_load():
    default = load_sweep_file(ROOT / "examples" / "sweeps" / "default.toml")
    assert [str(n) for n in default.noises] == ["gaussian:15,25,50", "poisson:30", "salt_pepper:0.1", "speckle:0.2"]
    paper = load_sweep_file(ROOT / "examples" / "sweeps" / "paper.toml")
    assert paper.seeds == [0, 1, 2] and paper.modes == ["oracle"] and paper.crop is None
    assert paper.noises[0].levels == (15, 25, 50) and paper.noises[0].params == (("clip", False),)


def test_sweep_file_unknown_key_is_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('seeds = [0]\nnoize = "gaussian"\n')
    with pytest.raises(ConfigError, match=f"{path}: unknown key 'noize'"):
        load_sweep_file(path)
    with pytest.raises(ConfigError, match="noise entry .* unknown key 'level'"):
        sweep_from_dict({"noises": [{"name": "gaussian", "level": 25}]}, "x")


def test_cli_flags_override_sweep_file(run_cli, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('datasets = ["skimage"]\ncrop = 32\nlimit = 1\nseeds = [0, 1]\n'
                    'denoisers = ["median", "tv"]\nnoises = ["gaussian:15,25"]\n')
    out = run_cli("run", "--config", path, "--seeds", "5", "--denoisers", "median", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("2 cells") and "seed 5" in out.stdout
    bad = run_cli("run", "--config", tmp_path / "none.toml")
    assert bad.returncode == 2 and "does not exist" in bad.stderr
