import json

import numpy as np
import pandas as pd
import pytest

from bench.errors import DataError, InvalidParameterError, UnknownNameError
from bench.store.results import COLUMNS, load_manifest, load_results
from bench.plan import make_plan as plan
from bench.run.runner import run_sweep
from bench.sweep import DenoiserSpec, NoiseSpec, Sweep

BROKEN = ["raises", "wrong_shape", "returns_nan", "returns_list", "writes_into_input", "fails_setup",
          "returns_uint8"]


FACTORY = "broken_denoisers:make_registry"


@pytest.fixture
def registry():
    from broken_denoisers import make_registry

    return make_registry()


def small_sweep(*names, **overrides):
    settings = dict(datasets=["skimage"], noises=[NoiseSpec("gaussian", (25,))], crop=32, limit=2,
                    denoisers=[DenoiserSpec(n) for n in names], executor="serial")
    settings.update(overrides)
    return Sweep(**settings)


class FakeClock:
    """A clock that only the denoiser's ``time.sleep`` moves: timings free of machine load."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_first_call_per_shape_is_not_timed(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("bench.timing.time", clock)  # the serial executor times in this process
    monkeypatch.setattr("broken_denoisers.time", clock)
    # Gray and colour crops give two shapes the 32x32 set-up warm-up has not seen.
    sweep = small_sweep("slow_first_call_per_shape", crop=40, limit=8)
    results = run_sweep(sweep, tmp_path, registry_factory=FACTORY, progress=False)
    assert set(results["channels"]) == {1, 3} and (results["status"] == "ok").all()
    assert clock.now >= 2 * 0.5  # both first calls did sleep, untimed
    assert (results["seconds"] == 0).all(), results["seconds"].max()


def test_run_sweep_returns_tidy_table_and_writes_run_dir(tmp_path, registry):
    sweep = small_sweep("median", "gaussian_blur", seeds=[0, 1], modes=["oracle", "blind"])
    results = run_sweep(sweep, tmp_path / "run", registry_factory=FACTORY, progress=False)
    assert list(results.columns) == COLUMNS
    assert len(results) == 2 * 2 * 2 * 2  # images x seeds x modes x denoisers
    assert (results["status"] == "ok").all()
    assert (results["psnr"] > results["noisy_psnr"]).all()
    oracle = results[results["mode"] == "oracle"]
    assert np.allclose(oracle["sigma_used"], 25.0)
    blind = results[results["mode"] == "blind"]
    assert ((blind["sigma_used"] - 25).abs() < 5).all()
    assert (results["mpix_per_s"] > 0).all()
    json.loads(results["params"].iloc[0])
    for name in ("results.parquet", "results.csv", "manifest.json", "cells.jsonl"):
        assert (tmp_path / "run" / name).exists()
    pd.testing.assert_frame_equal(load_results(tmp_path / "run"), results)
    csv = pd.read_csv(tmp_path / "run" / "results.csv")
    assert len(csv) == len(results)


def test_manifest_records_configuration_environment_and_hashes(tmp_path, registry):
    run_sweep(small_sweep("median"), tmp_path, registry_factory=FACTORY, progress=False)
    manifest = load_manifest(tmp_path)
    assert manifest["schema_version"] == 2
    assert manifest["sweep"]["noises"] == ["gaussian:25"]
    assert set(manifest["environment"]["versions"]) >= {"numpy", "scikit-image", "python"}
    assert manifest["environment"]["cpu"]["cores"] >= 1
    assert len(manifest["datasets"]["skimage"]["sha256"]) == 64


def test_same_sweep_gives_identical_metrics(tmp_path, registry):
    sweep = small_sweep("median", "tv", "nlm")
    first = run_sweep(sweep, tmp_path / "a", registry_factory=FACTORY, progress=False)
    second = run_sweep(sweep, tmp_path / "b", registry_factory=FACTORY, progress=False)
    for column in ("psnr", "ssim", "noisy_psnr", "noisy_ssim"):
        assert np.array_equal(first[column].to_numpy(), second[column].to_numpy())


def test_broken_denoisers_fail_their_cells_and_the_sweep_goes_on(tmp_path, registry):
    results = run_sweep(small_sweep("median", *BROKEN), tmp_path, registry_factory=FACTORY, progress=False)
    status = results.groupby("denoiser")["status"].unique().map(list).to_dict()
    assert status["median"] == ["ok"]
    assert status["writes_into_input"] == ["ok"]  # scribbling on its own copy is harmless
    reasons = results.drop_duplicates("denoiser").set_index("denoiser")["error"]
    assert "RuntimeError: boom second line" == reasons["raises"]
    assert "shape (31, 32), expected (32, 32)" in reasons["wrong_shape"]
    assert "non-finite" in reasons["returns_nan"]
    assert "returned list" in reasons["returns_list"]
    assert "weights file missing" in reasons["fails_setup"]
    assert "returned dtype uint8, expected a floating-point array" in reasons["returns_uint8"]
    for name in BROKEN:
        if name != "writes_into_input":
            assert status[name] == ["failed"]
    failed = results[results["status"] == "failed"]
    assert failed["psnr"].isna().all()


def test_every_denoiser_sees_the_same_noisy_image(tmp_path, registry):
    """A plugin that writes into its input (and does not declare ``keeps_input``) is given a
    copy: the denoisers after it on the same noisy image score as they do alone."""
    alone = run_sweep(small_sweep("gaussian_blur"), tmp_path / "alone", registry_factory=FACTORY,
                      progress=False)
    after = run_sweep(small_sweep("writes_into_input", "gaussian_blur"), tmp_path / "after",
                      registry_factory=FACTORY, progress=False)
    blur = after[after["denoiser"] == "gaussian_blur"]
    assert list(blur["psnr"]) == list(alone["psnr"]) and len(blur) == 2
    assert (after.groupby("image")["noisy_psnr"].nunique() == 1).all()


def test_plan_refuses_bad_input_before_running(registry):
    with pytest.raises(UnknownNameError, match="did you mean 'median'"):
        plan(small_sweep("mediann"), registry)
    with pytest.raises(InvalidParameterError, match="outside its valid range"):
        plan(small_sweep("median", noises=[NoiseSpec("gaussian", (-5,))]), registry)
    with pytest.raises(InvalidParameterError, match="unknown mode 'psychic'"):
        plan(small_sweep("median", modes=["psychic"]), registry)
    with pytest.raises(InvalidParameterError, match="denoiser 'median'.*colour"):
        plan(Sweep(denoisers=[DenoiserSpec("median", (("colour", 3),))]), registry)
    with pytest.raises(DataError, match="does not exist"):
        plan(small_sweep("median", datasets=["folder:/nonexistent/folder"]), registry)


def test_default_sweep_selects_every_available_builtin(registry):
    from bench.plan import select_denoisers

    names = [spec.name for spec in select_denoisers(Sweep(), registry)]
    assert "median" in names and "nlm" in names
    assert not set(names) & set(BROKEN)  # plugins are named, never run by default


def test_noise_spec_parsing():
    spec = NoiseSpec.parse("poisson_gaussian:10,25:gain=0.02")
    assert spec == NoiseSpec("poisson_gaussian", (10.0, 25.0), (("gain", 0.02),))
    assert NoiseSpec.parse("gaussian::clip=true").params == (("clip", True),)
    assert str(NoiseSpec.parse("gaussian:15,25")) == "gaussian:15,25"
    with pytest.raises(InvalidParameterError, match="levels must be numbers"):
        NoiseSpec.parse("gaussian:abc")
