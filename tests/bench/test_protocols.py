"""The protocol stage: 8-bit input and output, shaved borders, luma metrics, and their records.

Runs use :class:`Recorder`, a denoiser that saves what it receives and returns it unchanged,
so every score of a run can be recomputed by hand from the clean image and that input.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import skimage.data
from skimage.metrics import structural_similarity

from bench import DenoiserSpec, NoiseSpec, Sweep, run_sweep
from bench.datasets import load_dataset
from bench.errors import InvalidParameterError, ResumeError, UnknownNameError
from bench.interfaces import Denoiser
from bench.metrics import PSNR, SSIM, PSNRLuma, SSIMLuma
from bench.plan import noise_rng
from bench.protocol import PRESETS, Protocol, preset, to_luma
from bench.registry import Registry, default_registry
from conftest import invoke

FACTORY = "test_protocols:make_registry"
SIGMA8 = 25


@dataclass
class Recorder(Denoiser):
    """Saves each input it receives (``NNNN.npy``) and its sigma under ``folder``; returns the
    input unchanged."""

    folder: str = ""
    name = "recorder"

    def _denoise(self, noisy, sigma):
        folder = Path(self.folder)
        index = len(list(folder.glob("*.npy")))
        np.save(folder / f"{index:04d}.npy", noisy)
        (folder / f"{index:04d}.sigma").write_text(repr(sigma))
        return noisy.copy()


def make_registry():
    """The built-ins plus :class:`Recorder` (importable by name for ``registry_factory``)."""
    from bench.catalog import register_builtins

    registry = Registry()
    register_builtins(registry)
    with registry.registering_as("test-protocols", "0"):
        registry.add("denoiser", "recorder", "test_protocols:Recorder", "records its input")
    return registry


def received(folder: Path) -> list[np.ndarray]:
    """Every input the recorder saved in ``folder``."""
    return [np.load(path) for path in sorted(folder.glob("*.npy"))]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder with a 32x32 gray (``g.png``) and a 32x32 colour (``c.png``) crop."""
    folder = tmp_path_factory.mktemp("images")
    iio.imwrite(folder / "g.png", skimage.data.camera()[200:232, 200:232])
    iio.imwrite(folder / "c.png", skimage.data.astronaut()[100:132, 180:212])
    return folder


def noisy_input(clean: np.ndarray, image: str, seed: int = 0) -> np.ndarray:
    """The Gaussian noisy image a run makes of ``clean`` (name ``image``) at sigma 25."""
    noise = default_registry().create_noise("gaussian")
    return noise.apply(clean, SIGMA8, noise_rng(seed, image, "gaussian", SIGMA8)).image


def recorded_run(images, tmp_path, metrics=("psnr", "ssim"), **settings):
    """Run the recorder on ``images`` at Gaussian sigma 25, oracle; return (results, inputs folder)."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    sweep = Sweep(datasets=[f"folder:{images}"], noises=[NoiseSpec("gaussian", (SIGMA8,))],
                  denoisers=[DenoiserSpec("recorder", (("folder", str(inputs)),))],
                  metrics=list(metrics), executor="serial", **settings)
    results = run_sweep(sweep, tmp_path / "run", registry_factory=FACTORY, progress=False)
    assert (results["status"] == "ok").all(), results["error"].tolist()
    return results, inputs


def psnr_by_hand(clean, estimate):
    mse = np.mean((np.asarray(clean, np.float64) - np.asarray(estimate, np.float64)) ** 2)
    return 10 * np.log10(1 / mse)


def ssim_by_hand(clean, estimate):
    return structural_similarity(np.asarray(clean, np.float64), np.asarray(estimate, np.float64),
                                 data_range=1, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False,
                                 channel_axis=-1 if np.ndim(clean) == 3 else None)


# --- the presets ------------------------------------------------------------------------------

def test_protocol_label_names_the_preset_of_its_options():
    assert {name: p.label for name, p in PRESETS.items()} == {name: name for name in PRESETS}
    assert Protocol(border=4).label == "quantise_input=False,round8=False,border=4"
    assert Protocol(round8=True).label == "dncnn-paper"  # the options are the preset's


@pytest.mark.parametrize("name, quantised", [("default", False), ("dncnn-paper", False),
                                              ("kair-clip", True)])
def test_denoiser_receives_the_protocols_input(images, tmp_path, name, quantised):
    results, inputs = recorded_run(images, tmp_path, protocol=name)
    loaded = load_dataset(f"folder:{images}")
    expected = {}
    for image, clean in loaded.images.items():
        noisy = noisy_input(clean, image)
        expected[image] = np.round(np.clip(noisy, 0, 1) * 255) / 255 if quantised else noisy
    calls = received(inputs)
    assert len(calls) >= 2
    for call in calls:  # the timed calls and the warm-up (a crop of the first noisy image)
        assert any(call.shape == e.shape and np.allclose(call, e, rtol=0, atol=1e-7)
                   for e in expected.values())
        if quantised:
            assert len(np.unique(call)) <= 256 and 0 <= call.min() and call.max() <= 1
            assert np.allclose(call * 255, np.round(call * 255), rtol=0, atol=1e-4)
        else:
            assert len(np.unique(call)) > 256
    if not quantised:  # unclipped float noise
        assert any(call.min() < 0 or call.max() > 1 for call in calls)
    for index in range(len(calls)):  # oracle sigma: the nominal one, quantised input or not
        sigma = float((inputs / f"{index:04d}.sigma").read_text())
        assert sigma == pytest.approx(SIGMA8 / 255)
    for _, row in results.iterrows():  # the noisy input is scored as the denoiser received it
        clean = loaded.images[row["image"]]
        assert row["noisy_psnr"] == pytest.approx(psnr_by_hand(clean, expected[row["image"]]),
                                                  abs=1e-4)


@pytest.mark.parametrize("name", ["default", "dncnn-paper", "kair-clip"])
def test_output_is_clipped_and_rounded_by_the_protocol(images, tmp_path, name):
    results, _ = recorded_run(images, tmp_path, protocol=name)
    protocol = PRESETS[name]
    loaded = load_dataset(f"folder:{images}")
    for _, row in results.iterrows():
        clean = loaded.images[row["image"]]
        output = protocol.input(noisy_input(clean, row["image"]))  # the recorder returns its input
        scored = np.clip(output, 0, 1)
        if protocol.round8:
            scored = np.round(scored * 255) / 255
        assert row["psnr"] == pytest.approx(psnr_by_hand(clean, scored), abs=1e-4)
        assert row["ssim"] == pytest.approx(ssim_by_hand(clean, scored), abs=1e-5)


def test_round8_output_has_8_bit_levels(gray_image, rng):
    estimate = gray_image + rng.normal(0, 0.1, gray_image.shape)
    rounded = Protocol(round8=True).output(estimate)
    assert rounded.min() >= 0 and rounded.max() <= 1
    assert np.array_equal(rounded * 255, np.round(rounded * 255))
    assert np.abs(rounded - np.clip(estimate, 0, 1)).max() <= 0.5 / 255 + 1e-12
    assert not np.array_equal(Protocol().output(estimate), rounded)


def test_quantised_input_has_at_most_256_levels(clean_image, rng):
    noisy = (clean_image + rng.normal(0, 0.1, clean_image.shape)).astype(np.float32)
    quantised = Protocol(quantise_input=True).input(noisy)
    assert quantised.dtype == np.float32 and quantised.shape == noisy.shape
    assert len(np.unique(quantised)) <= 256 and quantised.min() >= 0 and quantised.max() <= 1
    assert Protocol().input(noisy) is noisy  # the default hands the float image on untouched


@pytest.mark.parametrize("border", [1, 4])
def test_border_shaves_the_scored_region(images, tmp_path, border):
    results, _ = recorded_run(images, tmp_path, border=border)
    loaded = load_dataset(f"folder:{images}")
    inner = slice(border, -border)
    for _, row in results.iterrows():
        clean = loaded.images[row["image"]]
        noisy = noisy_input(clean, row["image"])
        assert row["psnr"] == pytest.approx(
            psnr_by_hand(clean[inner, inner], np.clip(noisy, 0, 1)[inner, inner]), abs=1e-4)
        assert row["ssim"] == pytest.approx(
            ssim_by_hand(clean[inner, inner], np.clip(noisy, 0, 1)[inner, inner]), abs=1e-5)
        assert row["noisy_psnr"] == pytest.approx(
            psnr_by_hand(clean[inner, inner], noisy[inner, inner]), abs=1e-4)
        assert row["psnr"] != pytest.approx(psnr_by_hand(clean, np.clip(noisy, 0, 1)), abs=1e-4)
    assert set(results["protocol"]) == {f"quantise_input=False,round8=False,border={border}"}


def test_border_in_the_score(clean_image, rng):
    estimate = clean_image + rng.normal(0, 0.05, clean_image.shape)
    metrics = {"psnr": PSNR(), "ssim": SSIM()}
    scores = Protocol(border=3).score(metrics, clean_image, estimate, output=True)
    shaved_clean, shaved = clean_image[3:-3, 3:-3], np.clip(estimate, 0, 1)[3:-3, 3:-3]
    assert scores["psnr"] == pytest.approx(psnr_by_hand(shaved_clean, shaved), abs=1e-9)
    assert scores["ssim"] == pytest.approx(ssim_by_hand(shaved_clean, shaved), abs=1e-7)


# --- luma metrics -----------------------------------------------------------------------------

LUMA = {"psnr": PSNR(), "ssim": SSIM(), "psnr_y": PSNRLuma(), "ssim_y": SSIMLuma()}


def test_luma_metrics_equal_rgb_metrics_on_gray(gray_image, rng):
    estimate = gray_image + rng.normal(0, 0.05, gray_image.shape)
    for protocol in (Protocol(), Protocol(round8=True, border=2)):
        scores = protocol.score(LUMA, gray_image, estimate, output=True)
        assert scores["psnr_y"] == scores["psnr"] and scores["ssim_y"] == scores["ssim"]


def luma_by_hand(rgb):
    """BT.601 studio-swing Y in 8-bit units (16-235) of 8-bit-rounded RGB."""
    r, g, b = np.moveaxis(np.round(np.clip(rgb, 0, 1) * 255), -1, 0)
    return 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255


def test_luma_metrics_match_bt601_by_hand_on_colour(colour_image, rng):
    estimate = colour_image + rng.normal(0, 0.05, colour_image.shape)
    scores = Protocol().score(LUMA, colour_image, estimate, output=True)
    y_clean, y_estimate = luma_by_hand(colour_image), luma_by_hand(estimate)
    mse = np.mean((y_clean - y_estimate) ** 2)  # 8-bit units: peak 255
    assert scores["psnr_y"] == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-6)
    ssim = structural_similarity(y_clean, y_estimate, data_range=255, gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False)
    assert scores["ssim_y"] == pytest.approx(ssim, abs=1e-6)
    assert scores["psnr_y"] != pytest.approx(scores["psnr"], abs=0.01)
    assert to_luma(colour_image).shape == colour_image.shape[:2]
    assert 16 / 255 <= to_luma(colour_image).min() and to_luma(colour_image).max() <= 235 / 255


def test_luma_metrics_in_a_run(images, tmp_path):
    results, _ = recorded_run(images, tmp_path, metrics=("psnr", "ssim", "psnr_y", "ssim_y"),
                              protocol="kair-clip")
    gray, colour = (results[results["image"] == name].iloc[0] for name in ("g.png", "c.png"))
    for metric in ("psnr", "ssim"):
        for prefix in ("", "noisy_"):
            assert gray[f"{prefix}{metric}_y"] == gray[f"{prefix}{metric}"]
    clean = load_dataset(f"folder:{images}").images["c.png"]
    output = PRESETS["kair-clip"].input(noisy_input(clean, "c.png"))
    mse = np.mean((luma_by_hand(clean) - luma_by_hand(output)) ** 2)
    assert colour["psnr_y"] == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-4)


# --- records: results, manifest, resume ------------------------------------------------------

def test_protocol_is_recorded_in_rows_and_manifest(images, tmp_path):
    results, _ = recorded_run(images, tmp_path, protocol="kair-clip")
    assert set(results["protocol"]) == {"kair-clip"}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["protocol"] == {"quantise_input": True, "round8": True, "border": 0}
    assert manifest["sweep"]["protocol"] == "kair-clip"


def test_resume_with_another_protocol_is_refused(images, tmp_path):
    recorded_run(images, tmp_path, protocol="default")
    lines = (tmp_path / "run" / "cells.jsonl").read_text()
    sweep = Sweep(datasets=[f"folder:{images}"], noises=[NoiseSpec("gaussian", (SIGMA8,))],
                  denoisers=[DenoiserSpec("recorder", (("folder", str(tmp_path / "inputs")),))],
                  executor="serial", protocol="dncnn-paper")
    with pytest.raises(ResumeError, match=r"was run with protocol default, not dncnn-paper"):
        run_sweep(sweep, tmp_path / "run", registry_factory=FACTORY, progress=False)
    sweep.protocol, sweep.border = "default", 2
    with pytest.raises(ResumeError, match=r"protocol default, not quantise_input=False,round8=False,border=2"):
        run_sweep(sweep, tmp_path / "run", registry_factory=FACTORY, progress=False)
    assert (tmp_path / "run" / "cells.jsonl").read_text() == lines


@pytest.mark.parametrize("settings, error, message", [
    (dict(protocol="dncnn"), UnknownNameError,
     r"unknown protocol 'dncnn'; did you mean 'dncnn-paper'\? Known protocols: default, "),
    (dict(protocol="nope"), UnknownNameError, r"unknown protocol 'nope'. Known protocols"),
    (dict(border=16), InvalidParameterError, r"border 16 leaves nothing of image '.*' \(32x32\)"),
    (dict(border=-1), InvalidParameterError, r"border must be a whole number of pixels"),
    (dict(border=2.5), InvalidParameterError, r"border must be a whole number of pixels"),
    (dict(round8=1), InvalidParameterError, r"round8 must be true or false, got 1"),
    (dict(quantise_input="yes"), InvalidParameterError, r"quantise_input must be true or false"),
])
def test_bad_protocol_is_refused_before_anything_runs(images, tmp_path, settings, error, message):
    sweep = Sweep(datasets=[f"folder:{images}"], noises=[NoiseSpec("gaussian", (SIGMA8,))],
                  denoisers=[DenoiserSpec("median")], executor="serial", **settings)
    with pytest.raises(error, match=message) as raised:
        run_sweep(sweep, tmp_path / "run", progress=False)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "run").exists()


def test_preset_lookup():
    assert preset("kair-clip") is PRESETS["kair-clip"]
    with pytest.raises(UnknownNameError, match="kair-clip"):
        preset("kair")


# --- the command line -------------------------------------------------------------------------


def test_cli_protocol_flags_are_recorded(images, tmp_path):
    out = invoke("run", "--quiet", "--dataset", f"folder:{images}", "--denoisers", "median",
                "--noises", "gaussian:25", "--executor", "serial", "--protocol", "kair-clip",
                "--border", "2", "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    results = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert set(results["protocol"]) == {"quantise_input=True,round8=True,border=2"}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["protocol"] == {"quantise_input": True, "round8": True, "border": 2}

    resumed = invoke("run", "--quiet", "--resume", str(tmp_path / "run"), "--protocol", "default")
    assert resumed.returncode == 2
    assert "was run with protocol quantise_input=True,round8=True,border=2" in resumed.stderr
    assert len(resumed.stderr.strip().splitlines()) == 1 and "Traceback" not in resumed.stderr


@pytest.mark.parametrize("args, message", [
    (["--protocol", "kair"], "unknown protocol 'kair'; did you mean 'kair-clip'?"),
    (["--border", "24"], "border 24 leaves nothing of image"),
])
def test_cli_bad_protocol_is_one_line_and_exit_2(tmp_path, args, message):
    out = invoke("run", "--quick", "--quiet", "--denoisers", "median", "--out",
                str(tmp_path / "run"), *args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
