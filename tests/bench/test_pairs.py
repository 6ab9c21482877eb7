"""The ``pairs:`` dataset: real noisy images with their clean references, from folder to run.

Pair folders are built in ``tmp_path`` (``tests/plugins/pair_folders.py``); their reports are
checked in ``tests/reports/test_pairs_reports.py``. PolyU20 checks the dataset and the metric
against the independent figures of ``shared/datasets/README.md``.
"""

import json
import re
import shutil
import warnings

import imageio.v3 as iio
import numpy as np
import pytest

from bench import DenoiserSpec, NoiseSpec, Sweep, run_sweep
from bench.datasets import DataWarning, load_dataset
from bench.errors import DataError, InvalidParameterError
from bench.interfaces import estimate_sigma, rms
from bench.metrics import PSNR
from bench.plan import NO_SEED, REAL, REAL_LEVEL, make_plan
from bench.protocol import Protocol
from bench.store.results import RECORDS
from conftest import invoke, reference_folder
from pair_folders import (SIGMA8, SIZE, noisy_copy, pairs_run,  # noqa: F401  (a fixture)
                          pairs_sweep, pattern, two_folders, write_pair)

def load_quietly(spec, **options):
    """Load ``spec``; return it with the DataWarnings raised while loading."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_dataset(spec, **options)
    return loaded, [w for w in caught if issubclass(w.category, DataWarning)]


# --- layouts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("clean_dir, noisy_dir", [
    ("clean", "noisy"), ("gt", "noisy"), ("target", "input"), ("GT", "Noisy")])
def test_pairs_two_folders_match_by_stem(tmp_path, rng, clean_dir, noisy_dir):
    written = two_folders(tmp_path, rng, clean_dir, noisy_dir)
    loaded, warned = load_quietly(f"pairs:{tmp_path}")
    assert loaded.paired and not warned
    assert list(loaded.images) == ["a", "b"] == list(loaded.noisy)
    for name, (clean, noisy) in written.items():
        assert loaded.images[name].dtype == np.float32 and loaded.noisy[name].dtype == np.float32
        assert np.array_equal(loaded.images[name], (clean / 255).astype(np.float32))
        assert np.array_equal(loaded.noisy[name], (noisy / 255).astype(np.float32))
    assert loaded.images["a"].shape == (SIZE, SIZE) and loaded.images["b"].shape == (SIZE, SIZE, 3)


def test_pairs_stems_match_across_suffixes(tmp_path, rng):
    write_pair(tmp_path / "clean" / "x.png", tmp_path / "noisy" / "x.bmp", rng)
    write_pair(tmp_path / "clean" / "y.tif", tmp_path / "noisy" / "y.png", rng, channels=3)
    loaded, _ = load_quietly(f"pairs:{tmp_path}")
    assert list(loaded.images) == ["x", "y"]


def test_pairs_crop_and_limit_apply_to_both_images(tmp_path, rng):
    written = two_folders(tmp_path, rng)
    loaded, _ = load_quietly(f"pairs:{tmp_path}", crop=16, limit=1)
    assert list(loaded.images) == ["a"] == list(loaded.noisy)
    clean, noisy = written["a"]
    assert np.array_equal(loaded.images["a"] * 255, clean[8:24, 8:24].astype(np.float32))
    assert np.array_equal(loaded.noisy["a"] * 255, noisy[8:24, 8:24].astype(np.float32))


def test_pairs_hash_covers_the_noisy_images(tmp_path, rng):
    two_folders(tmp_path, rng)
    before = load_quietly(f"pairs:{tmp_path}")[0].content_hash
    iio.imwrite(tmp_path / "noisy" / "a.png", noisy_copy(pattern(1, rng), rng))
    assert load_quietly(f"pairs:{tmp_path}")[0].content_hash != before


POLYU_NAMES = ["Canon5D2_5_160_3200_chair_11", "NikonD800_4_1600_bike_3", "Sony_A7II_3200_plant_5"]
SIDD_NAMES = ["0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N", "0151"]


@pytest.mark.parametrize("options", ["", ",preset=polyu"])
def test_pairs_polyu_names(tmp_path, rng, options):
    written = {name: write_pair(tmp_path / f"{name}_mean.JPG", tmp_path / f"{name}_real.JPG", rng,
                                channels=3) for name in POLYU_NAMES}
    loaded, _ = load_quietly(f"pairs:{tmp_path}{options}")
    assert list(loaded.images) == sorted(written)
    name = POLYU_NAMES[0]  # JPEG is lossy: compare with the decoded files
    assert np.array_equal(loaded.images[name] * 255,
                          iio.imread(tmp_path / f"{name}_mean.JPG").astype(np.float32))
    assert np.array_equal(loaded.noisy[name] * 255,
                          iio.imread(tmp_path / f"{name}_real.JPG").astype(np.float32))


@pytest.mark.parametrize("options", ["", ",preset=sidd"])
def test_pairs_sidd_names(tmp_path, rng, options):
    for name in SIDD_NAMES:
        write_pair(tmp_path / f"{name}_GT_SRGB_010.PNG", tmp_path / f"{name}_NOISY_SRGB_010.PNG", rng,
                   channels=3)
    loaded, _ = load_quietly(f"pairs:{tmp_path}{options}")
    assert list(loaded.images) == sorted(f"{name}_010" for name in SIDD_NAMES)


@pytest.mark.parametrize("files, options, names", [
    ([("s1_clean.png", "s1_noisy.png"), ("s2_clean.png", "s2_noisy.png")],
     ",clean=*_clean.png,noisy=*_noisy.png", ["s1", "s2"]),
    ([("ref-7.png", "in-7.bmp"), ("ref-8.tif", "in-8.png")], ",clean=ref-*.*,noisy=in-*.*", ["7", "8"]),
    ([("gt1.png", "n1.png"), ("gt2.png", "n2.png")], ",clean=gt?.png,noisy=n?.png", ["1", "2"]),
])
def test_pairs_custom_globs(tmp_path, rng, files, options, names):
    for clean, noisy in files:
        write_pair(tmp_path / clean, tmp_path / noisy, rng)
    (tmp_path / "notes.txt").write_text("ignored")
    loaded, _ = load_quietly(f"pairs:{tmp_path}{options}")
    assert list(loaded.images) == names


# --- errors -----------------------------------------------------------------------------------

def _unmatched(root, rng):
    write_pair(root / "clean" / "a.png", root / "noisy" / "a.png", rng)
    write_pair(root / "clean" / "c.png", root / "noisy" / "b.png", rng)
    return f"pairs:{root}", {}


def _unmatched_pattern(root, rng):
    write_pair(root / "x_mean.png", root / "x_real.png", rng)
    iio.imwrite(root / "y_real.png", pattern(1, rng))
    return f"pairs:{root}", {}


def _size_mismatch(root, rng):
    write_pair(root / "clean" / "a.png", root / "noisy" / "a.png", rng)
    iio.imwrite(root / "noisy" / "a.png", pattern(1, rng, 40))
    return f"pairs:{root}", {}


def _size_mismatch_cropped(root, rng):  # a centre crop to a common size must not hide it
    spec, _ = _size_mismatch(root, rng)
    return spec, {"crop": 24}


def _gray_and_colour(root, rng):
    write_pair(root / "clean" / "a.png", root / "noisy" / "a.png", rng)
    iio.imwrite(root / "noisy" / "a.png", pattern(3, rng))
    return f"pairs:{root}", {}


def _no_layout(root, rng):
    write_pair(root / "one.png", root / "two.png", rng)
    return f"pairs:{root}", {}


def _clean_folder_only(root, rng):
    write_pair(root / "clean" / "a.png", root / "other" / "a.png", rng)
    return f"pairs:{root}", {}


def _empty_folders(root, rng):
    (root / "clean").mkdir()
    (root / "noisy").mkdir()
    return f"pairs:{root}", {}


def _two_files_one_pair(root, rng):
    write_pair(root / "clean" / "a.png", root / "noisy" / "a.png", rng)
    iio.imwrite(root / "clean" / "a.bmp", pattern(1, rng))
    return f"pairs:{root}", {}


def _with(options):
    def build(root, rng):
        write_pair(root / "clean" / "a.png", root / "noisy" / "a.png", rng)
        return f"pairs:{root}{options}", {}
    return build


PAIR_ERRORS = {
    "missing folder": (lambda root, rng: (f"pairs:{root / 'nowhere'}", {}),
                       r"pairs folder '.*nowhere' does not exist"),
    "no path": (lambda root, rng: ("pairs", {}), r"dataset 'pairs' needs a path: pairs:PATH"),
    "unmatched files": (_unmatched, r"noisy without a clean partner: b\.png; "
                                    r"clean without a noisy partner: c\.png"),
    "unmatched pattern": (_unmatched_pattern, r"noisy without a clean partner: y_real\.png$"),
    "size mismatch": (_size_mismatch, r"pair 'a': clean image '.*clean/a\.png' is 32x32 but "
                                      r"noisy image '.*noisy/a\.png' is 40x40"),
    "size mismatch under a crop": (_size_mismatch_cropped, r"is 32x32 but noisy image .* is 40x40"),
    "gray and colour": (_gray_and_colour, r"pair 'a': .* is 32x32 but .* is 32x32x3"),
    "no layout": (_no_layout, r"has no recognised layout: use clean/ \+ noisy/"),
    "one sub-folder": (_clean_folder_only, r"has no recognised layout"),
    "no pair": (_empty_folders, r"holds no image pair"),
    "two files, one pair": (_two_files_one_pair, r"two clean files for pair 'a': a\.bmp, a\.png"),
    "bad option": (_with(",colour=rgb"), r"option 'colour=rgb' is not preset=NAME, clean=GLOB"),
    "option without value": (_with(",polyu"), r"option 'polyu' is not preset=NAME"),
    "unknown preset": (_with(",preset=dnd"), r"unknown preset 'dnd'; known presets: polyu, sidd"),
    "one glob": (_with(",clean=*_gt.png"), r"give both clean=GLOB and noisy=GLOB"),
    "glob without wildcard": (_with(",clean=a.png,noisy=b.png"), r"clean=a\.png has no wildcard"),
}


@pytest.mark.parametrize("case", PAIR_ERRORS)
def test_pairs_error_is_one_line_naming_the_cause(tmp_path, rng, case):
    build, message = PAIR_ERRORS[case]
    spec, options = build(tmp_path, rng)
    with pytest.raises(DataError, match=message) as error:
        load_dataset(spec, **options)
    assert "\n" not in str(error.value)



def cli_error(out, message):
    """``out`` is a refusal: exit status 2, one line on stderr matching ``message``."""
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error:") and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert re.search(message, out.stderr), out.stderr


@pytest.mark.parametrize("case", ["unmatched files", "size mismatch", "no layout", "bad option"])
def test_cli_pairs_error_is_one_red_line_and_exit_2(tmp_path, rng, case):
    build, message = PAIR_ERRORS[case]
    (tmp_path / "data").mkdir()
    spec, _ = build(tmp_path / "data", rng)
    out = invoke("run", "--quick", "--quiet", "--denoisers", "median", "--dataset", spec,
                "--out", str(tmp_path / "run"))
    cli_error(out, message)
    assert not (tmp_path / "run").exists()  # refused before anything ran


def test_cli_noise_real_is_refused(tmp_path, rng):
    two_folders(tmp_path / "data", rng)
    out = invoke("run", "--quick", "--quiet", "--denoisers", "median", "--noises", "real",
                "--dataset", f"pairs:{tmp_path / 'data'}", "--out", str(tmp_path / "run"))
    cli_error(out, "noise 'real' is not generated: it comes with the noisy images of a pairs: "
                   "dataset")
    assert not (tmp_path / "run").exists()


def test_swapped_pair_is_a_warning_naming_it(tmp_path, rng):
    written = two_folders(tmp_path, rng)
    clean, noisy = written["b"]  # b's images change places
    iio.imwrite(tmp_path / "clean" / "b.png", noisy)
    iio.imwrite(tmp_path / "noisy" / "b.png", clean)
    with pytest.warns(DataWarning, match=r"pair 'b': the clean image '.*clean/b\.png' looks "
                                         r"noisier .* are they swapped\?") as caught:
        loaded = load_dataset(f"pairs:{tmp_path}")
    assert [str(w.message) for w in caught if "pair 'a'" in str(w.message)] == []
    assert list(loaded.images) == ["a", "b"]  # a warning: the data still loads


# --- planning and running ---------------------------------------------------------------------

def test_plan_has_one_real_cell_per_image_mode_and_method(tmp_path, rng):
    two_folders(tmp_path / "pairs", rng)
    (tmp_path / "plain").mkdir()
    iio.imwrite(tmp_path / "plain" / "p.png", pattern(1, rng))
    plan = make_plan(Sweep(datasets=[f"pairs:{tmp_path / 'pairs'}", f"folder:{tmp_path / 'plain'}"],
                           noises=[NoiseSpec("gaussian", (15, 25))], seeds=[0, 1, 2],
                           modes=["oracle", "blind"], denoisers=[DenoiserSpec("median")],
                           executor="serial"))
    real = [cell for cell in plan.cells if cell.real]
    synthetic = [cell for cell in plan.cells if not cell.real]
    assert len(real) == 2 * 2  # images x modes, whatever the seeds and the sweep's noises
    assert {(c.noise, c.level, c.seed, c.noise_params) for c in real} == {(REAL, REAL_LEVEL, NO_SEED, ())}
    assert {c.dataset for c in real} == {f"pairs:{tmp_path / 'pairs'}"}
    assert len(synthetic) == 1 * 2 * 3 * 2  # image x levels x seeds x modes
    assert {c.noise for c in synthetic} == {"gaussian"}
    assert len({cell.id for cell in plan.cells}) == len(plan.cells)


def test_noise_real_cannot_be_swept(tmp_path, rng):
    two_folders(tmp_path, rng)
    with pytest.raises(InvalidParameterError, match="noise 'real' is not generated"):
        make_plan(Sweep(datasets=[f"pairs:{tmp_path}"], noises=[NoiseSpec("real")],
                        denoisers=[DenoiserSpec("median")], executor="serial"))


def test_pairs_run_has_one_row_per_image_mode_and_denoiser(pairs_run):
    _, _, results = pairs_run
    assert len(results) == 2 * 2 * 2
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert set(results["noise"]) == {"real"}
    assert set(results["level"]) == {0.0} and set(results["seed"]) == {-1}
    assert set(results["protocol"]) == {"default"}
    assert not results.duplicated(["image", "mode", "denoiser"]).any()
    assert set(map(tuple, results[["image", "channels"]].values)) == {("a", 1), ("b", 3)}


def test_pairs_run_sigma_and_noisy_scores(pairs_run):
    data, _, results = pairs_run
    loaded = load_dataset(f"pairs:{data}")
    for _, row in results.iterrows():
        clean, noisy = loaded.images[row["image"]], loaded.noisy[row["image"]]
        # Oracle: the RMS of noisy - clean over the whole image, all channels, in 8-bit units.
        expected = 255 * (rms(clean, noisy) if row["mode"] == "oracle" else estimate_sigma(noisy))
        assert row["sigma_used"] == pytest.approx(expected, rel=1e-6)
        mse = np.mean((noisy.astype(np.float64) - clean) ** 2)
        assert row["noisy_psnr"] == pytest.approx(10 * np.log10(1 / mse), abs=1e-9)
    oracle = results[results["mode"] == "oracle"]
    assert oracle["sigma_used"].between(SIGMA8 - 2, SIGMA8 + 2).all()
    assert (results["psnr"] > results["noisy_psnr"]).any()


def test_pairs_run_manifest(pairs_run):
    data, run_dir, _ = pairs_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["noise_params"] == {"real": {}}
    assert manifest["method_params"]["median"] == {"real@0": {}}
    assert manifest["datasets"][f"pairs:{data}"]["images"] == 2
    assert manifest["protocol"] == {"quantise_input": False, "round8": False, "border": 0}


def test_pairs_run_resume_skips_done_cells(pairs_run, tmp_path):
    data, run_dir, first = pairs_run
    shutil.copytree(run_dir, tmp_path / "run")
    lines = (tmp_path / "run" / RECORDS).read_text().count("\n")
    again = run_sweep(pairs_sweep(data), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / RECORDS).read_text().count("\n") == lines  # nothing ran again
    assert sorted(again["cell_id"]) == sorted(first["cell_id"])
    wider = run_sweep(pairs_sweep(data, ("median", "gaussian_blur", "tv")), tmp_path / "run",
                      progress=False)
    assert (tmp_path / "run" / RECORDS).read_text().count("\n") == lines + 4  # tv's cells only
    assert len(wider) == 12 and wider["cell_id"].is_unique


# --- PolyU20: the dataset and the metric against independent figures --------------------------

def test_polyu20_noisy_psnr_matches_the_independent_figure():
    folder = reference_folder("PolyU20")
    loaded, warned = load_quietly(f"pairs:{folder}")  # PolyU's names are recognised unasked
    assert len(loaded.images) == 20 and not warned
    assert all(not name.endswith(("_mean", "_real")) for name in loaded.images)
    protocol, psnr = Protocol(), {"psnr": PSNR()}
    scores = [protocol.score(psnr, loaded.images[name], loaded.noisy[name], output=False)["psnr"]
              for name in loaded.images]
    assert np.mean(scores) == pytest.approx(35.805, abs=0.01)
    sigmas = [255 * rms(loaded.images[name], loaded.noisy[name]) for name in loaded.images]
    assert np.mean(sigmas) == pytest.approx(4.31, abs=0.01)
    assert min(sigmas) == pytest.approx(2.27, abs=0.01) and max(sigmas) == pytest.approx(7.04, abs=0.01)
