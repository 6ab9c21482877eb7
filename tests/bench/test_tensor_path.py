"""The tensor path of a cell: protocol stage and metrics in torch, and a cell run through it.

Everything runs with torch on the CPU (and on CUDA where there is one): the torch protocol
stage against the numpy one, the torch metrics against the numpy ones on Set12 at several
noise levels, a cell on the tensor path against the same cell on the array path, and the
output checks on tensors. Tolerances: 1e-5 for scores (measured: under 1e-8 for the metrics,
under 1e-7 for whole cells), exact equality for the 8-bit rounding steps.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import reference_folder, reference_image, require
from scipy import ndimage

from bench.plan import Cell
from bench.protocol import PRESETS, Protocol, to_luma
from bench.registry import default_registry
from bench.run.worker import CellRunner, WorkerConfig, check_output, check_output_tensor

torch = pytest.importorskip("torch")

#: Largest difference between a torch score and the numpy one (issue 12).
SCORE_TOLERANCE = 1e-5
#: Every built-in metric, luma twins included.
METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")
#: Protocols tried: the presets and a shaved border.
PROTOCOLS = {**PRESETS, "border": Protocol(round8=True, border=4)}


def set12(name: str) -> np.ndarray:
    """Image ``name`` of Set12 as float32 in [0, 1]."""
    return reference_image("Set12", name)


def set12_image(kind: str) -> np.ndarray:
    """A real gray image, or a colour one made of three real images as R, G and B."""
    if kind == "gray":
        return set12("08.png")[:300, :260]  # 512x512, cut to a non-square size
    return np.stack([set12(name) for name in ("01.png", "02.png", "05.png")], axis=-1)


def noisy_and_denoised(clean: np.ndarray, sigma8: float, rng: np.random.Generator):
    """A Gaussian-noisy image (unclipped, float32) and a smoothed one standing in for an output."""
    noisy = (clean + rng.normal(0.0, sigma8 / 255, clean.shape)).astype(np.float32)
    widths = (1.0, 1.0, 0) if clean.ndim == 3 else 1.0
    return noisy, ndimage.gaussian_filter(noisy, widths).astype(np.float32)


def metrics() -> dict:
    registry = default_registry()
    return {name: registry.create_metric(name) for name in METRICS}


# --- the protocol stage in torch --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["gray", "colour"])
@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_protocol_tensor_stages_match_numpy(kind, name, device):
    rng = np.random.default_rng(12)
    protocol = PROTOCOLS[name]
    clean = set12_image(kind)
    noisy, denoised = noisy_and_denoised(clean, 25, rng)
    # Values exactly half-way between 8-bit levels, to check that both round half to even.
    denoised.reshape(-1)[:200] = (np.arange(200) + 0.5) / 255

    def on(array):
        return torch.from_numpy(array).to(device)

    got = protocol.input(on(noisy))
    assert got.dtype == torch.float32 and got.device == device
    assert np.array_equal(got.cpu().numpy(), protocol.input(noisy))
    for stage, image in (("reference", clean), ("noisy", noisy), ("output", denoised)):
        expected = getattr(protocol, stage)(image)
        got = getattr(protocol, stage)(on(image))
        assert got.dtype == torch.float64 and got.device == device
        assert np.array_equal(got.cpu().numpy(), expected), stage
    luma = to_luma(protocol.output(on(denoised))).cpu().numpy()
    np.testing.assert_allclose(luma, to_luma(protocol.output(denoised)), rtol=0, atol=1e-12)


def test_protocol_shave_refuses_a_tensor_it_would_empty():
    from bench.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="border 8 leaves nothing of a 16x20 image"):
        Protocol(border=8).output(torch.zeros(16, 20))


# --- the metrics in torch, through the protocol stage ---------------------------------------
@pytest.mark.parametrize("kind", ["gray", "colour"])
@pytest.mark.parametrize("sigma8", [5, 15, 25, 50])
def test_torch_scores_match_numpy_on_set12(kind, sigma8, device):
    """Protocol.score on tensors (metrics' score_tensor) against numpy, every metric."""
    rng = np.random.default_rng(sigma8)
    clean = set12_image(kind)
    noisy, denoised = noisy_and_denoised(clean, sigma8, rng)
    scorers = metrics()
    clean_t = torch.from_numpy(clean).to(device)
    for name in ("default", "border") if sigma8 == 25 else ("dncnn-paper",):
        protocol = PROTOCOLS[name]
        for image, output in ((noisy, False), (denoised, True)):
            expected = protocol.score(scorers, clean, image, output=output)
            got = protocol.score(scorers, clean_t, torch.from_numpy(image).to(device),
                                 output=output)
            assert got.keys() == expected.keys()
            for metric in METRICS:
                assert abs(got[metric] - expected[metric]) <= SCORE_TOLERANCE, (name, metric)
            if kind == "gray":
                assert got["psnr_y"] == got["psnr"] and got["ssim_y"] == got["ssim"]


def test_protocol_score_uploads_an_array_reference(device):
    rng = np.random.default_rng(3)
    clean = set12("01.png")
    noisy, _ = noisy_and_denoised(clean, 25, rng)
    scorers = metrics()
    got = Protocol().score(scorers, clean, torch.from_numpy(noisy).to(device), output=False)
    expected = Protocol().score(scorers, clean, noisy, output=False)
    assert got == pytest.approx(expected, abs=SCORE_TOLERANCE)


# --- a cell through the tensor path -------------------------------------------------------------
def make_cell(denoiser: str, kind: str, mode: str, device: str = "cpu") -> Cell:
    if kind == "gray":
        dataset, image = f"folder:{reference_folder('Set12')}", "03.png"
    else:
        dataset, image = "skimage", "astronaut"
    return Cell(dataset=dataset, image=image, noise="gaussian", level=25.0,
                noise_params=(("clip", False),), seed=0, mode=mode, denoiser=denoiser,
                params=(), device=device)


def count_tensor_calls(runner: CellRunner, cell: Cell) -> list:
    """Set ``cell``'s denoiser up in ``runner`` and record each of its denoise_tensor calls."""
    denoiser = runner.denoiser(cell, runner.noisy(cell).noisy.image)
    calls = []
    if denoiser.supports_tensor():
        method = denoiser.denoise_tensor

        def counted(noisy, sigma=None, *, noise=None):
            calls.append(tuple(noisy.shape))
            return method(noisy, sigma, noise=noise)

        denoiser.denoise_tensor = counted
    return calls


def runner_for(tensor_path: str, protocol: str = "dncnn-paper", **options) -> CellRunner:
    config = WorkerConfig(crop=72, metrics=METRICS, protocol=PROTOCOLS[protocol],
                          tensor_path=tensor_path, **options)
    return CellRunner(config)


@pytest.mark.parametrize("denoiser", ["dncnn", "ffdnet_small", "gaussian_blur", "median"])
@pytest.mark.parametrize("kind", ["gray", "colour"])
@pytest.mark.parametrize("mode", ["oracle", "blind"])
def test_cell_on_the_tensor_path_scores_as_on_the_array_path(denoiser, kind, mode):
    """torch on the CPU: a learned model (the same code both ways) and torch classical
    methods (torch against SciPy on the array path, equal to float32 rounding)."""
    torch.set_num_threads(1)
    cell = make_cell(denoiser, kind, mode)
    tensor, array = runner_for("always"), runner_for("never")
    calls = count_tensor_calls(tensor, cell)
    assert count_tensor_calls(array, cell) == []
    got, expected = tensor.run(cell), array.run(cell)
    assert got.record.status == "ok", got.record.error
    assert expected.record.status == "ok", expected.record.error
    assert tuple(got.record.noisy_scores) == METRICS
    assert got.record.noisy_scores == expected.record.noisy_scores
    assert got.record.scores.keys() == expected.record.scores.keys()
    for metric in METRICS:
        assert abs(got.record.scores[metric] - expected.record.scores[metric]) <= SCORE_TOLERANCE
    np.testing.assert_equal(got.record.sigma_used, expected.record.sigma_used)  # NaN: none
    assert got.record.seconds > 0
    shape = (72, 72) if kind == "gray" else (72, 72, 3)
    assert calls[-1] == shape  # the timed call went through the tensor path


@pytest.mark.parametrize("kind", ["gray", "colour"])
@pytest.mark.parametrize("mode, level", [("oracle", 25.0), ("oracle", 35.0), ("blind", 25.0)])
def test_dncnn_paper_cell_on_the_tensor_path_scores_as_on_the_array_path(kind, mode, level):
    """The authors' released models as a folder: sigma=25's file at level 25, the blind one at
    35 and in blind mode. The same network code both ways: only the metrics' arithmetic
    differs, torch's against numpy's."""
    require("h5py")
    torch.set_num_threads(1)
    weights = reference_folder("../weights/dncnn")
    cell = dataclasses.replace(make_cell("dncnn_paper", kind, mode), level=level,
                               params=(("weights", str(weights)),))
    tensor, array = runner_for("always"), runner_for("never")
    calls = count_tensor_calls(tensor, cell)
    assert calls == [] and count_tensor_calls(array, cell) == []
    got, expected = tensor.run(cell).record, array.run(cell).record
    assert got.status == "ok", got.error
    assert expected.status == "ok", expected.error
    assert got.noisy_scores == expected.noisy_scores
    assert got.scores.keys() == expected.scores.keys()
    for metric in METRICS:
        assert abs(got.scores[metric] - expected.scores[metric]) <= 1e-8, metric
    np.testing.assert_equal(got.sigma_used, expected.sigma_used)
    assert calls and calls[-1] == ((72, 72) if kind == "gray" else (72, 72, 3))  # the timed call


@pytest.mark.parametrize("protocol", ["default", "kair-clip", "border"])
def test_cell_on_the_tensor_path_follows_the_protocol(protocol):
    torch.set_num_threads(1)
    cell = make_cell("dncnn", "colour", "oracle")
    got = runner_for("always", protocol).run(cell).record
    expected = runner_for("never", protocol).run(cell).record
    assert got.status == "ok", got.error
    assert got.noisy_scores == expected.noisy_scores
    assert got.scores == pytest.approx(expected.scores, rel=0, abs=SCORE_TOLERANCE)


@pytest.mark.parametrize("kind", ["gray", "colour"])
def test_tensor_path_brings_back_the_crops_and_outputs_the_array_path_does(kind):
    torch.set_num_threads(1)
    cell = make_cell("dncnn", kind, "blind")
    visual = frozenset({(cell.dataset, cell.image)})
    options = dict(visual=visual, visual_size=40, save_outputs=True)
    got = runner_for("always", **options).run(cell)
    expected = runner_for("never", **options).run(cell)
    assert got.record.status == "ok", got.record.error
    assert sorted(got.images) == sorted(expected.images) == ["clean", "denoised", "noisy",
                                                                "output"]
    assert got.images == expected.images  # the same network code both ways: identical PNGs


def test_auto_keeps_cpu_cells_on_the_array_path():
    cell = make_cell("gaussian_blur", "gray", "oracle")
    runner = runner_for("auto")
    calls = count_tensor_calls(runner, cell)
    assert runner.run(cell).record.status == "ok"
    assert calls == []


def test_a_denoiser_without_a_tensor_path_takes_the_array_path():
    cell = make_cell("wavelet", "gray", "oracle")
    runner = runner_for("always")
    assert not runner.denoiser(cell, runner.noisy(cell).noisy.image).supports_tensor()
    assert runner.run(cell).record.status == "ok"


def test_noisy_image_is_uploaded_once_per_noisy_image():
    cell = make_cell("gaussian_blur", "gray", "oracle")
    runner = runner_for("always")
    for name in ("gaussian_blur", "median", "dncnn"):
        assert runner.run(Cell(**{**cell.__dict__, "denoiser": name})).record.status == "ok"
    scored = runner.noisy(cell)
    reference, noisy = scored.tensors["cpu"]
    assert len(scored.tensors) == 1
    assert np.array_equal(noisy.numpy(), scored.noisy.image)  # never written into
    assert np.array_equal(reference.numpy(), scored.reference)


def test_tensor_path_values_are_checked():
    with pytest.raises(ValueError, match="tensor_path must be one of auto, always, never"):
        WorkerConfig(tensor_path="gpu")


@pytest.mark.cuda
def test_cuda_cell_takes_the_tensor_path_and_scores_as_the_array_path():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for denoiser in ("gaussian_blur", "dncnn"):
        cell = make_cell(denoiser, "colour", "oracle", device="cuda")
        tensor, array = runner_for("auto"), runner_for("never")
        calls = count_tensor_calls(tensor, cell)
        got, expected = tensor.run(cell), array.run(cell)
        assert got.record.status == "ok", got.record.error
        assert calls and got.record.gpu
        assert got.record.scores == pytest.approx(expected.record.scores, abs=SCORE_TOLERANCE)


# --- the output checks on tensors ---------------------------------------------------------------
@pytest.mark.parametrize("bad", ["shape", "nan", "inf", "integer", "type"])
def test_output_checks_refuse_tensors_with_the_array_message(bad, device):
    shape = (5, 7)
    output = {
        "shape": np.zeros((5, 7, 1), np.float32),
        "nan": np.full(shape, np.nan, np.float32),
        "inf": np.full(shape, np.inf, np.float32),
        "integer": np.zeros(shape, np.int64),
        "type": [[0.0] * 7] * 5,
    }[bad]
    with pytest.raises(ValueError) as expected:
        check_output(output, shape)
    tensor = torch.from_numpy(output).to(device) if bad != "type" else output
    message = str(expected.value).replace("numpy array", "torch tensor")
    with pytest.raises(ValueError) as got:
        check_output_tensor(tensor, shape, device)
    assert str(got.value) == message


def test_output_checks_refuse_a_tensor_on_another_device():
    with pytest.raises(ValueError, match="returned a tensor on meta, expected one on cpu"):
        check_output_tensor(torch.zeros(3, 3, device="meta"), (3, 3), torch.device("cpu"))


def test_output_checks_pass_a_good_tensor_as_float32(device):
    output = torch.rand(4, 6, 3, dtype=torch.float64, device=device)
    checked = check_output_tensor(output, (4, 6, 3), device)
    assert checked.dtype == torch.float32 and checked.device == device


class _Bad:
    """Makes a denoiser with a tensor path whose output is wrong in one way, both paths alike."""

    @staticmethod
    def make(kind: str):
        from dataclasses import dataclass

        from bench.interfaces import Denoiser

        def spoil(image):
            if kind == "shape":
                return image[1:]
            if kind == "nan":
                return image * float("nan")
            return (image * 255).round().to(torch.uint8) if torch.is_tensor(image) else (
                (image * 255).round().astype(np.uint8))

        @dataclass
        class Spoils(Denoiser):
            name = "spoils"

            def _denoise(self, noisy, sigma):
                return spoil(noisy)

            def _denoise_tensor(self, noisy, sigma):
                return spoil(noisy)

        return Spoils()


@pytest.mark.parametrize("kind", ["shape", "nan", "integer"])
def test_a_cell_with_a_bad_tensor_output_fails_with_the_array_paths_error(kind):
    cell = make_cell("gaussian_blur", "gray", "oracle")
    errors = []
    for tensor_path in ("always", "never"):
        runner = runner_for(tensor_path)
        runner._denoisers[(cell.denoiser, cell.params, cell.device)] = _Bad.make(kind)
        record = runner.run(cell).record
        assert record.status == "failed"
        assert all(np.isnan(value) for value in record.scores.values())
        errors.append(record.error)
    assert errors[0] == errors[1]
    assert errors[0].startswith("ValueError: returned ")
