"""bench tune: declarations, grid and Optuna searches, tuned.toml into bench run, overlap."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import imageio.v3 as iio
import numpy as np
import pytest
import skimage.data
from scipy import ndimage

from bench.cli import main
from conftest import require
from bench.config import sweep_from_dict
from bench.errors import ConfigError, InvalidParameterError, ResumeError
from bench.interfaces import Denoiser
from bench.plan import make_plan
from bench.registry import Registry, default_registry
from bench.store.manifest import build_manifest
from bench.sweep import DenoiserSpec, NoiseSpec, Sweep, method_name
from bench.tune.engine import TuneConfig, tune
from bench.tune.rules import fit_rule, step_rule
from bench.tune.space import Tunable, grid, grid_size, search_space, tunable
from bench.tune.tuned import image_hash, load_params_file, to_toml

FACTORY = "test_tune:make_registry"


@pytest.fixture
def optuna():
    """Optuna (the ``tune`` extra): skipped without it, but required under CI."""
    return require("optuna")


@dataclass
class Toy(Denoiser):
    """Blurs only when ``width`` is 3 (the known optimum); otherwise returns its input."""

    width: int = tunable(1, low=1, high=5)
    name = "toy"

    def _denoise(self, noisy, sigma):
        return ndimage.gaussian_filter(noisy, 1.0) if self.width == 3 else noisy.copy()


@dataclass
class PluginFilter(Denoiser):
    """A plugin-style denoiser that declares its ranges with plain dictionaries."""

    strength: float = field(default=1.0, metadata={"tune": {"low": 0.1, "high": 2.0, "log": True}})
    shape: str = field(default="box", metadata={"tune": {"choices": ["box", "disc"]}})
    passes: int = 1
    name = "plugin_filter"

    def _denoise(self, noisy, sigma):
        return noisy.copy()


def make_registry():
    """The built-ins plus :class:`Toy` (importable by name for ``registry_factory``)."""
    from bench.catalog import register_builtins

    registry = Registry()
    register_builtins(registry)
    with registry.registering_as("test-tune", "0"):
        registry.add("denoiser", "toy", "test_tune:Toy", "blurs at width 3 only")
    return registry


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two folders of 48x48 gray crops: ``tune`` (three) and ``test`` (two others)."""
    root = tmp_path_factory.mktemp("tune-images")
    camera, coins = skimage.data.camera(), skimage.data.coins()
    crops = {"tune": [camera[100:148, 100:148], camera[300:348, 200:248], coins[50:98, 50:98]],
             "test": [camera[200:248, 380:428], coins[150:198, 200:248]]}
    for name, images in crops.items():
        (root / name).mkdir()
        for index, image in enumerate(images):
            iio.imwrite(root / name / f"{name}{index}.png", image)
    return root


def small_config(folders, **overrides) -> TuneConfig:
    values = dict(denoisers=[DenoiserSpec("tv")], noises=[NoiseSpec("gaussian", (15, 35))],
                  datasets=[f"folder:{folders / 'tune'}"], trials=4, executor="serial")
    values.update(overrides)
    return TuneConfig(**values)


def trial_params(out) -> list[dict]:
    """The candidates of a tuning directory, in the order they were scored."""
    lines = (out / "evaluations.jsonl").read_text().splitlines()
    return [json.loads(line)["params"] for line in lines if json.loads(line)["role"] == "trial"]


# --- declarations ------------------------------------------------------------------------------

def test_tune_declarations_read_from_field_metadata():
    from denoisers.block_matching import BM3D
    from denoisers.nonlocal_means import NonLocalMeans
    from denoisers.wavelet import WaveletBayesShrink

    space = search_space(NonLocalMeans)
    assert list(space) == ["h_factor", "patch_size", "patch_distance"]
    assert space["patch_size"].values() == [3, 5, 7, 9]
    assert space["h_factor"].contains(0.6) and not space["h_factor"].discrete
    assert grid_size(search_space(WaveletBayesShrink)) == 32
    assert search_space(BM3D) == {}
    assert NonLocalMeans().h_factor is None  # the declaration keeps the default: the rule


def test_tune_plugin_declares_its_own_with_dicts():
    space = search_space(PluginFilter)
    assert space == {"strength": Tunable(0.1, 2.0, log=True),
                     "shape": Tunable(choices=("box", "disc"))}
    assert grid({"shape": space["shape"]}) == [{"shape": "box"}, {"shape": "disc"}]


def test_tune_declaration_errors_are_clear():
    with pytest.raises(InvalidParameterError, match="low < high"):
        Tunable(2.0, 1.0)
    with pytest.raises(InvalidParameterError, match="logarithmic"):
        Tunable(0.0, 1.0, log=True)

    @dataclass
    class Bad(Denoiser):
        x: float = field(default=1.0, metadata={"tune": {"lo": 0, "high": 1}})
        name = "bad"

        def _denoise(self, noisy, sigma):
            return noisy

    with pytest.raises(InvalidParameterError, match="unknown tuning key 'lo'"):
        search_space(Bad)


def test_tune_refuses_a_denoiser_without_declarations(folders, tmp_path):
    config = small_config(folders, denoisers=[DenoiserSpec("dncnn")])
    with pytest.raises(InvalidParameterError, match="declares no tunable parameter"):
        tune(config, tmp_path / "t", progress=False)


# --- searches ---------------------------------------------------------------------------------

def test_tune_grid_finds_known_optimum(folders, tmp_path):
    config = small_config(folders, denoisers=[DenoiserSpec("toy")],
                          noises=[NoiseSpec("gaussian", (25,))], trials=10)
    result = tune(config, tmp_path / "t", registry_factory=FACTORY, progress=False)
    (study,) = result.studies
    assert study.strategy == "grid" and study.trials == 5
    assert study.best_params == {"width": 3}
    assert study.best_value > study.default_value + 1  # blurring beats the noisy input
    assert "studies.journal" not in {p.name for p in (tmp_path / "t").iterdir()}  # no Optuna


def test_tune_optuna_is_seeded_and_resumes(folders, tmp_path, optuna):
    config = small_config(folders, noises=[NoiseSpec("gaussian", (25,))], trials=4)
    first = tune(config, tmp_path / "a", progress=False)
    tune(config, tmp_path / "b", progress=False)
    assert first.studies[0].strategy == "tpe"
    assert trial_params(tmp_path / "a") == trial_params(tmp_path / "b")

    # An interrupted trial (asked, never told), then the same command with more trials.
    from bench.tune.search import journal_storage

    storage = journal_storage(tmp_path / "a" / "studies.journal")
    study = optuna.load_study(study_name="tv|gaussian@25", storage=storage)
    before = [t.params for t in study.trials]
    assert len(before) == 4
    study.ask({"weight_factor": optuna.distributions.FloatDistribution(0.2, 4.0, log=True)})
    resumed = tune(TuneConfig(**{**vars(config), "trials": 6}), tmp_path / "a", progress=False)
    states = [t.state.name for t in optuna.load_study(study_name="tv|gaussian@25",
                                                      storage=storage).trials]
    assert states.count("COMPLETE") == 6 and states.count("FAIL") == 1
    after = [t.params for t in optuna.load_study(study_name="tv|gaussian@25",
                                                 storage=storage).trials]
    assert after[:len(before)] == before  # finished trials are kept, not run again
    assert resumed.studies[0].trials == 6


def test_tune_refuses_to_resume_another_meaning(folders, tmp_path, optuna):
    tune(small_config(folders, noises=[NoiseSpec("gaussian", (25,))], trials=1), tmp_path / "t",
         progress=False)
    with pytest.raises(ResumeError, match="crop"):
        tune(small_config(folders, noises=[NoiseSpec("gaussian", (25,))], trials=1, crop=32),
             tmp_path / "t", progress=False)


def test_tune_on_process_workers(folders, tmp_path):
    config = small_config(folders, denoisers=[DenoiserSpec("median")],
                          noises=[NoiseSpec("gaussian", (25,))], executor="process", jobs=2,
                          trials=5)
    result = tune(config, tmp_path / "t", progress=False)
    assert result.studies[0].strategy == "grid" and result.studies[0].failed == 0


def test_tune_self_supervised_objective_runs(folders, tmp_path, optuna):
    config = small_config(folders, objective="self-supervised", trials=3,
                          noises=[NoiseSpec("gaussian", (25,))])
    result = tune(config, tmp_path / "t", progress=False)
    (study,) = result.studies
    assert not result.maximise and study.best_value <= study.default_value
    assert study.clean_default > 20 and study.clean_best > 20  # PSNR of both, for comparison
    tuned = load_params_file(result.tuned_file)
    assert tuned["objective"] == "self-supervised" and tuned["metric"] == "j_invariant_mse"
    assert "pixel is independent" in result.report.read_text()


# --- tuned.toml into bench run ----------------------------------------------------------------

@pytest.fixture(scope="module")
def tuned_file(folders, tmp_path_factory):
    require("optuna")
    out = tmp_path_factory.mktemp("tuned")
    result = tune(small_config(folders, trials=3), out, progress=False)
    return result.tuned_file


def test_tune_tuned_file_round_trip_into_cells(folders, tuned_file):
    tuned = load_params_file(tuned_file)
    assert set(tuned["denoisers"]["tv"]) == {"gaussian@15", "gaussian@35"}
    assert len(tuned["tuned_on"]["images"]) == 3
    sweep = Sweep(datasets=[f"folder:{folders / 'test'}"], noises=[NoiseSpec("gaussian", (15, 35))],
                  denoisers=[DenoiserSpec("tv"), DenoiserSpec("tv", (("weight_factor", 1.0),))],
                  executor="serial", tuned=tuned)
    plan = make_plan(sweep)
    tuned_cells = [cell for cell in plan.cells if cell.tuned]
    assert {cell.method for cell in tuned_cells} == {"tv(tuned)"}  # one label at every level
    for cell in tuned_cells:
        assert dict(cell.params) == tuned["denoisers"]["tv"][f"gaussian@{cell.level:g}"]
    assert {cell.method for cell in plan.cells if not cell.tuned} == {"tv(weight_factor=1.0)"}
    manifest = build_manifest(plan, default_registry())
    assert manifest["tuned"]["methods"] == {"tv(tuned)": ["gaussian@15", "gaussian@35"]}
    assert manifest["tuned"]["overlap"] == [] and len(manifest["tuned"]["tuned_on"]["images"]) == 3


def test_tune_params_option_of_bench_run(folders, tuned_file, tmp_path):
    status = main(["run", "--params", str(tuned_file), "--denoisers", "tv,median",
                   "--noises", "gaussian:15,35", "--dataset", f"folder:{folders / 'test'}",
                   "--executor", "serial", "--quiet", "--out", str(tmp_path / "run")])
    assert status == 0
    import pandas as pd

    results = pd.read_parquet(tmp_path / "run" / "results.parquet")
    rows = results[results["method"] == "tv(tuned)"]
    assert len(rows) == 4 and set(results["method"]) == {"tv(tuned)", "median"}
    tuned = load_params_file(tuned_file)["denoisers"]["tv"]
    for _, row in rows.iterrows():  # the column holds every parameter, the tuned ones among them
        recorded = json.loads(row["params"])
        assert recorded == {**recorded, **tuned[f"gaussian@{row['level']:g}"]}


def test_tune_sweep_file_may_hold_the_tuned_table(folders, tuned_file, tmp_path):
    text = f'datasets = ["folder:{folders / "test"}"]\ndenoisers = ["tv"]\n' + tuned_file.read_text()
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    from bench.config import load_sweep_file

    sweep = load_sweep_file(path)
    sweep.noises = [NoiseSpec("gaussian", (15,))]
    assert {cell.method for cell in make_plan(sweep).cells} == {"tv(tuned)"}
    with pytest.raises(ConfigError, match="unknown key 'tuned.bogus'"):
        sweep_from_dict({"tuned": {"bogus": 1, "denoisers": {"tv": {}}}}, "x.toml")


def test_tune_overlap_refused_unless_allowed(folders, tuned_file, tmp_path):
    copy = tmp_path / "renamed"  # the same pixels under another name and folder
    copy.mkdir()
    iio.imwrite(copy / "other.png", iio.imread(folders / "tune" / "tune1.png"))
    tuned = load_params_file(tuned_file)
    sweep = Sweep(datasets=[f"folder:{copy}"], noises=[NoiseSpec("gaussian", (15,))],
                  denoisers=[DenoiserSpec("tv")], executor="serial", tuned=tuned, crop=32)
    with pytest.raises(InvalidParameterError, match="allow-tuned-on-test"):
        make_plan(sweep)
    sweep.allow_tuned_on_test = True
    plan = make_plan(sweep)
    assert plan.tuned_overlap == [f"folder:{copy}/other.png"]
    manifest = build_manifest(plan, default_registry())
    assert manifest["tuned"]["overlap"] and manifest["tuned"]["allowed_overlap"]
    status = main(["run", "--params", str(tuned_file), "--denoisers", "tv", "--noises",
                   "gaussian:15", "--dataset", f"folder:{copy}", "--executor", "serial",
                   "--quiet", "--out", str(tmp_path / "run")])
    assert status == 2


# --- helpers ----------------------------------------------------------------------------------

def test_tune_image_hash_ignores_the_container():
    image = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
    assert image_hash(image) == image_hash(image.astype(np.float64))
    assert image_hash(image) != image_hash(image.T.copy())


def test_tune_toml_writer_reads_back():
    import tomllib

    data = {"tuned": {"a": 1.5, "b": "x\"y", "c": [1, 2], "d": None,
                      "denoisers": {"nlm": {"gaussian@25": {"h_factor": 0.5, "fast": True}}}}}
    back = tomllib.loads(to_toml(data))
    assert back["tuned"]["denoisers"]["nlm"]["gaussian@25"] == {"h_factor": 0.5, "fast": True}
    assert "d" not in back["tuned"] and back["tuned"]["b"] == "x\"y"


def test_tune_rules_fit_linear_and_steps():
    rule = fit_rule([5, 15, 25, 35], [0.5, 0.7, 0.9, 1.1])
    assert rule.knot is None and rule.slope == pytest.approx(0.02) and rule.r2 == pytest.approx(1)
    hinge = fit_rule([5, 15, 25, 35, 45], [1, 1, 1, 2, 3])
    assert hinge.knot == 25 and hinge(45) == pytest.approx(3)
    assert step_rule([5, 15, 25, 35], [3, 3, 5, 5]) == "3 up to 15, 5 above"


def test_tune_label_stays_the_same_across_levels():
    assert method_name("nlm", (("h_factor", 0.5),), tuned=True) == "nlm(tuned)"
    assert method_name("nlm", (("h_factor", 0.7),), "cuda", tuned=True) == "nlm(tuned)@cuda"
