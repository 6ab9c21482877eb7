"""DnCNN with the authors' released MatConvNet models: reading, picking, converting, scoring.

Most tests write small MatConvNet-like files themselves (MATLAB v7.3 layout: HDF5, axes
reversed, trailing singleton dropped, cell array of layer structs), so they run anywhere.
The tests on the released files read them from ``$BENCH_DATA_DIR/../weights/dncnn``: skipped
without it, failing under ``CI=true``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import reference_folder

# The 'matlab' extra; CI installs every extra, so there a missing h5py fails instead.
h5py = pytest.importorskip("h5py") if os.environ.get("CI") != "true" else __import__("h5py")
torch = pytest.importorskip("torch")

from bench.cli import main  # noqa: E402
from bench.errors import InvalidParameterError, WeightsError  # noqa: E402
from denoisers.dncnn_paper import (  # noqa: E402
    DnCNNPaper, default_weights_dir, import_weights, load_model, resolve_weights)
from denoisers.matconvnet import conv_chain, read_simplenn  # noqa: E402
from denoisers.model_io import file_sha256  # noqa: E402

#: Set12, sigma 25, DnCNN-S (sigma=25.mat), mean over seeds 0-2: $BENCH_DATA_DIR/README.md.
DNCNN_S_SET12_SIGMA25 = 30.445


# --- writing MatConvNet-like files ----------------------------------------------------------
def _matlab(group, name, array, matlab_class):
    """Store a MATLAB array as MATLAB v7.3 does: column-major, i.e. its axes reversed for HDF5."""
    array = np.asarray(array)
    if array.ndim < 2:
        array = array.reshape(-1, 1)
    while array.ndim > 2 and array.shape[-1] == 1:  # MATLAB drops trailing singletons
        array = array[..., 0]
    dataset = group.create_dataset(name, data=np.transpose(array))
    dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class)
    return dataset


def _text(group, name, text):
    _matlab(group, name, np.array([ord(c) for c in text], dtype=np.uint16).reshape(1, -1), "char")


def write_simplenn(path, convs, *, layer_types=None, pad=1):
    """Write a simplenn network of ``convs`` ((out, in, kh, kw) filters, biases), ReLUs between.

    ``layer_types`` replaces the sequence of layer types (e.g. to add a 'bnorm' layer).
    """
    types = layer_types or ["conv", "relu"] * (len(convs) - 1) + ["conv"]
    with h5py.File(path, "w", userblock_size=512) as handle:
        refs = handle.create_group("#refs#")
        net = handle.create_group("net")
        net.attrs["MATLAB_class"] = np.bytes_("struct")
        layer_refs, pending = [], list(convs)
        for index, kind in enumerate(types):
            layer = refs.create_group(f"layer{index}")
            layer.attrs["MATLAB_class"] = np.bytes_("struct")
            _text(layer, "type", kind)
            if kind == "conv":
                weight, bias = pending.pop(0)
                # MATLAB's filter bank is [kh, kw, in, out]; torch's is (out, in, kh, kw).
                matlab_filters = np.transpose(weight, (2, 3, 1, 0)).astype(np.float32)
                filters = _matlab(refs, f"filters{index}", matlab_filters, "single")
                biases = _matlab(refs, f"biases{index}",
                                 np.asarray(bias, np.float32).reshape(1, -1), "single")
                pair = np.array([[filters.ref], [biases.ref]], dtype=h5py.ref_dtype)
                cell = layer.create_dataset("weights", data=pair)
                cell.attrs["MATLAB_class"] = np.bytes_("cell")
                _matlab(layer, "pad", np.full((1, 1), float(pad)), "double")
                _matlab(layer, "stride", np.ones((1, 1)), "double")
            elif kind == "relu":
                _matlab(layer, "leak", np.zeros((1, 1)), "double")
            layer_refs.append(layer.ref)
        layer_cell = np.array(layer_refs, dtype=h5py.ref_dtype).reshape(-1, 1)
        cells = net.create_dataset("layers", data=layer_cell)
        cells.attrs["MATLAB_class"] = np.bytes_("cell")
    with open(path, "r+b") as stream:
        stream.write(b"MATLAB 7.3 MAT-file, written by denoise-bench's tests")
    return Path(path)


def random_convs(seed, depth=3, width=4):
    rng = np.random.default_rng(seed)
    convs = []
    for index in range(depth):
        cin = 1 if index == 0 else width
        cout = 1 if index == depth - 1 else width
        weight = rng.normal(0, 0.3, (cout, cin, 3, 3)).astype(np.float32)
        convs.append((weight, rng.normal(0, 0.05, cout).astype(np.float32)))
    return convs


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache, so tests never see or write the real one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return default_weights_dir()


@pytest.fixture
def small_mat(tmp_path):
    return write_simplenn(tmp_path / "small.mat", random_convs(0))


def released(name: str) -> Path:
    path = reference_folder("../weights/dncnn") / name
    assert path.is_file(), f"{path} is missing"
    return path


# --- reading ---------------------------------------------------------------------------------
def test_read_simplenn_layout_matches_torch(tmp_path):
    convs = random_convs(1, depth=4, width=5)
    layers = read_simplenn(write_simplenn(tmp_path / "net.mat", convs))
    read = conv_chain(layers, "net.mat")
    assert len(layers) == 7 and len(read) == 4
    for (weight, bias), layer in zip(convs, read):
        np.testing.assert_array_equal(layer.weight, weight)  # last layer: its singleton restored
        np.testing.assert_array_equal(layer.bias, bias)
        assert layer.pad == (1, 1, 1, 1) and layer.stride == (1, 1)


def test_load_model_forward_is_input_minus_the_chain(small_mat, rng):
    from scipy.signal import correlate2d

    network = load_model(small_mat)
    x = rng.random((9, 7)).astype(np.float32)
    features = [x.astype(np.float64)]
    for index, (weight, bias) in enumerate(random_convs(0)):
        padded = [np.pad(f, 1) for f in features]
        features = [sum(correlate2d(p, weight[o, i], mode="valid") for i, p in enumerate(padded))
                    + bias[o] for o in range(weight.shape[0])]
        if index < 2:
            features = [np.maximum(f, 0) for f in features]
    with torch.inference_mode():
        out = network(torch.from_numpy(x)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(out, x - features[0], atol=1e-5)
    assert network.receptive_radius == 3 and network.multiple == 1 and not network.uses_sigma


def test_read_simplenn_missing_file_names_it(tmp_path):
    with pytest.raises(WeightsError, match="nowhere.mat' is missing"):
        read_simplenn(tmp_path / "nowhere.mat")
    with pytest.raises(WeightsError, match="nowhere.mat"):
        DnCNNPaper(weights=str(tmp_path / "nowhere.mat"))


@pytest.mark.parametrize("content, reason", [
    (b"not a MATLAB file at all" * 40, "is not a MATLAB v7.3"),
    (b"MATLAB 5.0 MAT-file, Platform: GLNXA64" + bytes(200), r"is a MATLAB v5/v7 MAT-file.*-v7\.3"),
])
def test_read_simplenn_not_hdf5_names_it(tmp_path, content, reason):
    path = tmp_path / "junk.mat"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=rf"junk\.mat' {reason}"):
        read_simplenn(path)


def test_read_simplenn_truncated_file_names_it(tmp_path, small_mat):
    data = small_mat.read_bytes()
    path = tmp_path / "cut.mat"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"cut\.mat"):
        load_model(path)


def test_read_simplenn_without_net_names_it(tmp_path):
    path = tmp_path / "other.mat"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    with pytest.raises(WeightsError, match=r"other\.mat' holds no variable 'net'"):
        read_simplenn(path)


def test_read_simplenn_unsupported_layer_names_it(tmp_path):
    path = write_simplenn(tmp_path / "bn.mat", random_convs(2, depth=2),
                          layer_types=["conv", "bnorm", "relu", "conv"])
    with pytest.raises(WeightsError, match=r"bn\.mat', layer 2: a 'bnorm' layer"):
        read_simplenn(path)


def test_conv_chain_rejects_other_padding(tmp_path):
    path = write_simplenn(tmp_path / "pad0.mat", random_convs(3, depth=2), pad=0)
    with pytest.raises(WeightsError, match=r"pad0\.mat', layer 1 of 3: .*expected 3x3, pad 1"):
        load_model(path)


def test_conv_chain_rejects_a_channel_mismatch(tmp_path):
    convs = random_convs(4, depth=3, width=4)
    convs[1] = (np.zeros((4, 3, 3, 3), np.float32), np.zeros(4, np.float32))
    with pytest.raises(WeightsError,
                       match=r"layer 3 of 5: takes 3 channels but the layer before gives 4"):
        load_model(write_simplenn(tmp_path / "mismatch.mat", convs))


# --- the denoiser ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(37, 31), (31, 37, 3)])
def test_dncnn_paper_odd_sizes(small_mat, rng, shape):
    noisy = rng.random(shape).astype(np.float32)
    given = noisy.copy()
    out = DnCNNPaper(weights=str(small_mat)).denoise(noisy, 25 / 255)
    assert out.shape == shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert DnCNNPaper.keeps_input and np.array_equal(noisy, given)  # handed no copy by the runner
    network = load_model(small_mat)
    planes = noisy[None, None] if noisy.ndim == 2 else np.moveaxis(noisy, -1, 0)[:, None]
    with torch.inference_mode():
        expected = network(torch.from_numpy(np.ascontiguousarray(planes))).numpy()
    expected = expected[0, 0] if noisy.ndim == 2 else np.moveaxis(expected[:, 0], 0, -1)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_dncnn_paper_tiles_agree_with_whole_image(small_mat, rng):
    noisy = rng.random((150, 133)).astype(np.float32)
    whole = DnCNNPaper(weights=str(small_mat)).denoise(noisy, None)
    tiled = DnCNNPaper(weights=str(small_mat), tile=64).denoise(noisy, None)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


@pytest.fixture
def level_folder(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for seed, name in enumerate(["sigma=15.mat", "sigma=25.mat", "GD_Gray_Blind.mat"]):
        write_simplenn(folder / name, random_convs(10 + seed))
    (folder / "README.txt").write_text("ignored")
    return folder


def _same_as(out, path, noisy):
    """Whether ``out`` is the model in ``path`` applied to ``noisy``, gray or channel by channel
    (the denoiser runs channels-last, so float rounding may differ; distinct models differ by
    far more)."""
    planes = noisy[None, None] if noisy.ndim == 2 else np.moveaxis(noisy, -1, 0)[:, None]
    with torch.inference_mode():
        expected = load_model(path)(torch.from_numpy(np.ascontiguousarray(planes)))[:, 0].numpy()
    expected = expected[0] if noisy.ndim == 2 else np.moveaxis(expected, 0, -1)
    return np.allclose(out, expected, rtol=0, atol=1e-5)


def test_dncnn_paper_folder_picks_the_level_file(level_folder, rng):
    noisy = rng.random((33, 29)).astype(np.float32)
    denoiser = DnCNNPaper(weights=str(level_folder))
    assert denoiser.uses_sigma(1)
    for sigma, name in [(15 / 255, "sigma=15.mat"), (np.float32(25 / 255), "sigma=25.mat"),
                        (35 / 255, "GD_Gray_Blind.mat"), (None, "GD_Gray_Blind.mat"),
                        (25.1 / 255, "GD_Gray_Blind.mat")]:
        assert _same_as(denoiser.denoise(noisy, sigma), level_folder / name, noisy), (sigma, name)


def test_dncnn_paper_folder_without_blind_model_says_so(level_folder, rng):
    (level_folder / "GD_Gray_Blind.mat").unlink()
    denoiser = DnCNNPaper(weights=str(level_folder))
    noisy = rng.random((20, 20)).astype(np.float32)
    assert _same_as(denoiser.denoise(noisy, 15 / 255), level_folder / "sigma=15.mat", noisy)
    with pytest.raises(WeightsError, match=r"sigma 50 \(8-bit units\).*needs the blind model.*"
                                           r"holds only sigma=15, sigma=25"):
        denoiser.denoise(noisy, 50 / 255)
    with pytest.raises(WeightsError, match=r"blind mode \(no sigma given\) needs the blind model "
                                           r".*GD_Gray_Blind\.mat.*github\.com/cszn/DnCNN"):
        denoiser.denoise(noisy, None)
    with pytest.raises(WeightsError, match=r"sigma 50 \(8-bit units\).*needs the blind model"):
        denoiser.denoise_tensor(torch.from_numpy(noisy), 50 / 255)


# --- the tensor path -------------------------------------------------------------------------
#: Sigmas in [0, 1] units (None: blind) in an order where each call of a folder of sigma=15,
#: sigma=25 and blind models picks another model than the call before; PICKED: the file each picks.
ALTERNATING_SIGMAS = (25 / 255, 35 / 255, 15 / 255, None, np.float32(25 / 255))
PICKED = ("sigma=25.mat", "GD_Gray_Blind.mat", "sigma=15.mat", "GD_Gray_Blind.mat",
          "sigma=25.mat")


def assert_tensor_path_equals_array_path(denoiser, noisy, sigmas, device) -> list:
    """For each sigma, the tensor path first, then the array path: bit-for-bit equal outputs
    (returned, as arrays).

    Each sigma's tensor call follows the previous sigma's array call, so a tensor path that
    kept the model of the call before (instead of picking its own) would differ.
    """
    outputs, previous = [], None
    for sigma in sigmas:
        tensor = torch.from_numpy(noisy).to(device)
        got = denoiser.denoise_tensor(tensor, sigma)
        assert isinstance(got, torch.Tensor) and got.device == device
        assert got.dtype == torch.float32 and tuple(got.shape) == noisy.shape
        expected = denoiser.denoise(noisy.copy(), sigma)
        assert np.array_equal(got.cpu().numpy(), expected), sigma
        assert np.array_equal(tensor.cpu().numpy(), noisy)  # the input is left alone
        if previous is not None and denoiser.uses_sigma(1):
            assert not np.array_equal(expected, previous), sigma  # another model than before
        outputs.append(expected)
        previous = expected
    return outputs


@pytest.mark.parametrize("shape", [(37, 31), (31, 37, 3)])
def test_dncnn_paper_tensor_path_picks_the_model_as_the_array_path(level_folder, rng, shape,
                                                                    device):
    """A folder: sigma=25's file at sigma 25, the blind model at 35 and in blind mode."""
    noisy = rng.random(shape).astype(np.float32)
    denoiser = DnCNNPaper(weights=str(level_folder))
    denoiser.setup(device.type)
    assert denoiser.supports_tensor()
    outputs = assert_tensor_path_equals_array_path(denoiser, noisy, ALTERNATING_SIGMAS, device)
    if device.type == "cpu":  # CUDA's TF32 convolutions are further from the CPU than 1e-5
        for out, name in zip(outputs, PICKED):
            assert _same_as(out, level_folder / name, noisy), name


@pytest.mark.parametrize("shape", [(37, 31), (31, 37, 3)])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_dncnn_paper_single_file_tensor_path_equals_array_path(small_mat, rng, shape, precision,
                                                               device):
    noisy = rng.random(shape).astype(np.float32)
    denoiser = DnCNNPaper(weights=str(small_mat), precision=precision)
    denoiser.setup(device.type)
    assert denoiser.supports_tensor()
    assert_tensor_path_equals_array_path(denoiser, noisy, (25 / 255, None), device)


def test_dncnn_paper_tensor_path_sets_up_on_the_tensors_device(small_mat):
    denoiser = DnCNNPaper(weights=str(small_mat))
    out = denoiser.denoise_tensor(torch.zeros(20, 24), None)
    assert out.shape == (20, 24) and denoiser._device == "cpu"
    with pytest.raises(InvalidParameterError, match="set up on 'cpu', got a tensor on 'meta'"):
        denoiser.denoise_tensor(torch.zeros(16, 16, device="meta"), 25 / 255)


def test_dncnn_paper_folder_errors_name_the_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match=r"empty' holds no model"):
        DnCNNPaper(weights=str(empty))
    twice = tmp_path / "twice"
    twice.mkdir()
    write_simplenn(twice / "GD_Gray_Blind.mat", random_convs(5))
    write_simplenn(twice / "my_blind.mat", random_convs(6))
    with pytest.raises(WeightsError,
                       match=r"twice' holds 2 blind models \(GD_Gray_Blind\.mat, my_blind\.mat\)"):
        DnCNNPaper(weights=str(twice))


def test_dncnn_paper_single_file_serves_every_level(small_mat, rng):
    denoiser = DnCNNPaper(weights=str(small_mat))
    assert not denoiser.uses_sigma(1)
    noisy = rng.random((24, 24)).astype(np.float32)
    assert np.array_equal(denoiser.denoise(noisy, 50 / 255), denoiser.denoise(noisy, None))


def test_dncnn_paper_other_file_types_are_refused(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"\x80\x04")
    with pytest.raises(WeightsError, match=r"model\.pth' is neither a MATLAB \.mat file"):
        DnCNNPaper(weights=str(path))


def test_dncnn_paper_records_sha256_not_path(level_folder, small_mat):
    params = DnCNNPaper(weights=str(small_mat)).params()
    assert params["weights_sha256"] == {"all": file_sha256(small_mat)}
    assert "weights" not in params
    folder_params = DnCNNPaper(weights=str(level_folder), precision="bf16").params()
    assert folder_params["weights_sha256"] == {
        "15": file_sha256(level_folder / "sigma=15.mat"),
        "25": file_sha256(level_folder / "sigma=25.mat"),
        "blind": file_sha256(level_folder / "GD_Gray_Blind.mat")}
    assert folder_params["precision"] == "bf16"
    for recorded in (params, folder_params):
        text = json.dumps(recorded)
        assert str(small_mat.parent) not in text and ".mat" not in text


def test_dncnn_paper_without_weights_says_where_to_get_them(cache):
    with pytest.raises(WeightsError, match=r"github\.com/cszn/DnCNN \(folder model/\).*"
                                           r"'weights' parameter.*bench import-weights"):
        DnCNNPaper()


# --- converting ------------------------------------------------------------------------------
def test_import_weights_round_trip_is_bit_identical(tmp_path, cache, rng):
    source = write_simplenn(tmp_path / "sigma=25.mat", random_convs(7, depth=4, width=6))
    converted = import_weights(source)
    assert converted == cache / "sigma=25.safetensors"
    card = json.loads(converted.with_suffix(".json").read_text())
    assert card["source"]["file"] == "sigma=25.mat"
    assert card["source"]["sha256"] == file_sha256(source)
    assert card["architecture"] == {"name": "ResidualConvChain", "depth": 4, "width": 6,
                                    "channels": 1}
    noisy = rng.random((37, 31)).astype(np.float32)
    from_mat = DnCNNPaper(weights=str(source)).denoise(noisy, 25 / 255)
    for weights in (str(converted), "sigma=25", None):  # the file, its name in the cache, the cache
        assert np.array_equal(DnCNNPaper(weights=weights).denoise(noisy, 25 / 255), from_mat)
    assert DnCNNPaper().params()["weights_sha256"] == {"25": file_sha256(converted)}


def test_import_weights_refuses_the_package_folder(small_mat):
    import denoisers

    with pytest.raises(InvalidParameterError, match="into the package"):
        import_weights(small_mat, out=Path(denoisers.__file__).parent / "weights")


def test_cli_import_weights(tmp_path, small_mat, capsys):
    out = tmp_path / "converted"
    assert main(["import-weights", str(small_mat), "--out", str(out), "--name", "mine"]) == 0
    assert (out / "mine.safetensors").is_file() and (out / "mine.json").is_file()
    assert resolve_weights(str(out / "mine.safetensors")).files == {"all": out / "mine.safetensors"}
    broken = tmp_path / "broken.mat"
    broken.write_bytes(b"garbage")
    assert main(["import-weights", str(broken), "--out", str(out)]) == 2
    assert "broken.mat" in capsys.readouterr().err


def test_converted_weights_with_a_foreign_card_are_refused(tmp_path, cache, small_mat):
    converted = import_weights(small_mat, out=tmp_path)
    card = json.loads(converted.with_suffix(".json").read_text())
    card["architecture"]["name"] = "DnCNN"
    converted.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match=r"small\.json' describes a 'DnCNN'"):
        load_model(converted)


# --- the released files ----------------------------------------------------------------------
@pytest.mark.parametrize("name, depth", [("sigma=25.mat", 17), ("GD_Gray_Blind.mat", 20)])
def test_released_models_load(name, depth):
    network = load_model(released(name))
    assert network.receptive_radius == depth
    weights = 64 * 9 * 2 + 64 * 64 * 9 * (depth - 2)
    assert sum(p.numel() for p in network.parameters()) == weights + 64 * (depth - 1) + 1


def test_released_model_round_trip_and_hash(tmp_path, cache, rng):
    source = released("sigma=25.mat")
    converted = import_weights(source, out=tmp_path)
    noisy = rng.random((37, 31)).astype(np.float32)
    from_mat = DnCNNPaper(weights=str(source))
    assert np.array_equal(DnCNNPaper(weights=str(converted)).denoise(noisy, 25 / 255),
                          from_mat.denoise(noisy, 25 / 255))
    assert from_mat.params()["weights_sha256"]["all"].startswith("5a5404c9")


def _set12_psnr(args):
    """Mean PSNR over Set12 of the sigma=25 DnCNN-S, as a sweep scores it, for one seed."""
    folder, weights, seed = args
    torch.set_num_threads(1)
    from bench.datasets import load_dataset
    from bench.registry import default_registry

    try:
        from bench.plan import noise_rng
    except ImportError:  # before the planning module existed
        from bench.sweep import noise_rng
    noise = default_registry().create_noise("gaussian")
    denoiser = DnCNNPaper(weights=weights)
    scores = []
    for name, clean in load_dataset(f"folder:{folder}").images.items():
        noisy = noise.apply(clean, 25, noise_rng(seed, name, "gaussian", 25.0)).image
        output = np.clip(denoiser.denoise(noisy, 25 / 255), 0, 1)
        scores.append(10 * np.log10(1 / np.mean((output.astype(np.float64) - clean) ** 2)))
    return float(np.mean(scores))


@pytest.mark.parametrize("shape", [(37, 31), (31, 37, 3)])
def test_released_models_tensor_path_equals_array_path(rng, shape, device):
    """The authors' folder (sigma=15, 25, 50 and the blind model), every way of picking."""
    folder = released("sigma=25.mat").parent
    noisy = rng.random(shape).astype(np.float32)
    denoiser = DnCNNPaper(weights=str(folder))
    denoiser.setup(device.type)
    assert denoiser.supports_tensor()
    assert_tensor_path_equals_array_path(denoiser, noisy, ALTERNATING_SIGMAS, device)


@pytest.mark.slow
def test_dncnn_s_on_set12_sigma25_matches_reference():
    jobs = [(reference_folder("Set12"), str(released("sigma=25.mat")), seed) for seed in (0, 1, 2)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        per_seed = list(pool.map(_set12_psnr, jobs))
    mean = sum(per_seed) / len(per_seed)
    print(f"DnCNN-S sigma=25.mat, Set12 sigma 25: per seed {per_seed}, mean {mean:.3f} dB")
    assert abs(mean - DNCNN_S_SET12_SIGMA25) <= 0.05
