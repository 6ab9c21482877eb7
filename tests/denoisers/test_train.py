"""``bench train``: patches, a few steps that lower the loss, checkpoints, resume, model card."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import denoisers.training as training  # noqa: E402
from bench.cli import main  # noqa: E402
from bench.errors import InvalidParameterError, WeightsError  # noqa: E402
from bench.catalog import SHIPPED_MODELS  # noqa: E402
from denoisers import model_io  # noqa: E402
from denoisers.training import loop  # noqa: E402

TINY = {"depth": 4, "width": 8}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Ten grayscale 48x45 PNGs cut from scikit-image's camera and coins."""
    import imageio.v3 as iio
    import skimage.data

    folder = tmp_path_factory.mktemp("train_images")
    sources = [skimage.data.camera(), skimage.data.coins()]
    for i in range(10):
        image = sources[i % 2]
        top, left = 20 * i, 25 * i
        iio.imwrite(folder / f"img{i:02d}.png", image[top:top + 48, left:left + 45])
    return folder


def _config(folder, out, **overrides):
    values = dict(model="dncnn", data=str(folder), out=str(out), holdout=2, steps=6, batch=4,
                  patch=24, seed=3, architecture=dict(TINY), validate_every=3,
                  checkpoint_every=3, threads=1)
    values.update(overrides)
    return training.TrainConfig(**values)


def test_sample_batch_shapes_and_reproducible(rng):
    images = [rng.random((37, 31), dtype=np.float32) for _ in range(3)]
    first = training.sample_batch(images, np.random.default_rng(5), 6, 16, (0, 55))
    second = training.sample_batch(images, np.random.default_rng(5), 6, 16, (0, 55))
    clean, noisy, sigma = first
    assert clean.shape == noisy.shape == (6, 1, 16, 16) and sigma.shape == (6,)
    assert ((sigma >= 0) & (sigma <= 55 / 255)).all()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def _digest(arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def test_sample_batch_same_patches_as_before(image_folder, tmp_path):
    """Seed 3 draws the patches that bench/train.py drew before training moved to denoisers/."""
    data = training.load_training_data(_config(image_folder, tmp_path))
    batch = training.sample_batch(data.train, np.random.default_rng(3), 4, 24, (0, 55))
    assert _digest(batch) == "45d3669d9fd662b2ca77abb235df33eab2291a9940d3f29ba18e17e15a111182"


#: SHA-256 of the state dict (keys sorted) after 20 fp32 steps on one thread, computed with
#: bench/train.py before the move, torch 2.13.0+cpu on an x86-64 CPU (float results may differ
#: on other torch versions or instruction sets, hence the skip).
REFERENCE_TORCH = "2.13.0+cpu"
REFERENCE_WEIGHTS = {
    "dncnn": ({"depth": 4, "width": 8},
              "f3b0a54cd2a80751f245bd0d243d74c4c21c27f8b5fbd15cf2bd9a67dafc18ce"),
    "ffdnet_small": ({"depth": 4, "width": 8},
                     "de4dd12ba069953daf12803bd1c41cd8fd274da48f8777be4b7d44a48ec6c8ec"),
    "autoencoder": ({"width": 4},
                    "a1e4d0cde0ed56aff6898203a6d7d21c53b4c5ff764b8bc1bcf44849da85f627"),
}


@pytest.mark.parametrize("model", sorted(REFERENCE_WEIGHTS))
def test_train_20_steps_bit_identical_to_reference(image_folder, tmp_path, model):
    if torch.__version__ != REFERENCE_TORCH:
        pytest.skip(f"reference weights were computed with torch {REFERENCE_TORCH}")
    architecture, expected = REFERENCE_WEIGHTS[model]
    config = _config(image_folder, tmp_path, model=model, architecture=dict(architecture),
                     steps=20, validate_every=10, checkpoint_every=10)
    result = training.train(config, progress=False, log=lambda t: None)
    state = model_io.load_weights(result.weights)[0].state_dict()
    assert _digest(state[key].numpy() for key in sorted(state)) == expected


def test_trainable_models_are_the_shipped_ones_with_their_cards():
    assert list(training.trainable_models()) == [name for name, _, _ in SHIPPED_MODELS]
    for name, weights, _ in SHIPPED_MODELS:
        card = model_io.read_card(model_io.shipped_weights(weights))
        assert training.default_architecture(name) == card["architecture"]
    spec = training.TrainConfig("ffdnet_small", "data", "out", architecture={"depth": 3})
    assert spec.architecture_spec() == {"name": "FFDNet", "depth": 3, "width": 64, "channels": 1}


def test_holdout_keeps_validation_out_of_training(image_folder, tmp_path):
    data = training.load_training_data(_config(image_folder, tmp_path))
    assert len(data.train) == 8 and len(data.val) == 2
    held = {tuple(image.ravel()[:20]) for image in data.val.values()}
    assert not held & {tuple(image.ravel()[:20]) for image in data.train}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_few_steps_lowers_the_loss(image_folder, tmp_path, precision):
    config = _config(image_folder, tmp_path, steps=40, batch=8, lr=3e-3, validate_every=40,
                     checkpoint_every=40, precision=precision)
    result = training.train(config, progress=False, log=lambda text: None)
    assert result.card["training"]["precision"].startswith(precision)
    torch.manual_seed(config.seed)
    untrained = model_io.build_network(config.architecture_spec()).eval()
    trained, _ = model_io.load_weights(result.weights)
    clean, noisy, sigma = training.sample_batch(
        training.load_training_data(config).train, np.random.default_rng(0), 32, 24, (15, 35))
    clean, noisy, sigma = map(torch.from_numpy, (clean, noisy, sigma))
    with torch.inference_mode():
        before = torch.mean((untrained(noisy, sigma) - clean) ** 2)
        after = torch.mean((trained(noisy, sigma) - clean) ** 2)
    assert after < 0.8 * before


def test_train_writes_model_card(image_folder, tmp_path):
    result = training.train(_config(image_folder, tmp_path, precise_bn=5), progress=False,
                            log=lambda t: None)
    card = json.loads(model_io.card_path(result.weights).read_text())
    assert card["architecture"] == {"name": "DnCNN", "depth": 4, "width": 8, "channels": 1}
    data = card["training"]["data"]
    assert data["name"] == image_folder.name and data["images"] == 10 and len(data["sha256"]) == 64
    assert card["training"]["levels_8bit"] == [0.0, 55.0] and card["training"]["steps"] == 6
    assert card["training"]["device"].startswith("cpu") and card["training"]["wall_time_s"] >= 0
    assert set(card["validation_psnr"]) == {"15", "25", "50"}
    assert [entry["step"] for entry in card["validation_history"]] == [3, 6, 6]
    assert card["validation_history"][-1]["precise_bn"] == 5
    assert card["validation_psnr"] == card["validation_history"][-1]["psnr"]
    assert card["training"]["precise_bn_batches"] == 5


def test_recalibrate_batch_norm_replaces_bad_statistics_and_keeps_weights(image_folder, tmp_path):
    config = _config(image_folder, tmp_path)
    data = training.load_training_data(config)
    torch.manual_seed(0)
    network = model_io.build_network(config.architecture_spec())
    norms = [m for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.running_mean.fill_(5.0)
        norm.running_var.fill_(100.0)
    weights = {k: v.clone() for k, v in network.named_parameters()}
    training.recalibrate_batch_norm(network.eval(), data.train, np.random.default_rng(0), config, 8)
    for norm in norms:
        assert norm.momentum == 0.1 and int(norm.num_batches_tracked) == 8
        assert (norm.running_var < 50).all() and (norm.running_mean.abs() < 5).all()
    for key, value in network.named_parameters():
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0)
    assert not network.training
    # The statistics are the average over the batches: one batch's stats, repeated, give it.
    one = _config(image_folder, tmp_path, batch=16)
    training.recalibrate_batch_norm(network, data.train, np.random.default_rng(1), one, 1)
    first = norms[0].running_mean.clone()
    clean, noisy, sigma = training.sample_batch(data.train, np.random.default_rng(1), 16, 24,
                                                one.levels)
    with torch.no_grad():
        features = network.body[0](torch.from_numpy(noisy))
        features = network.body[2](network.body[1](features))
    torch.testing.assert_close(first, features.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)


def test_train_resume_continues_exactly(image_folder, tmp_path, monkeypatch):
    straight = training.train(_config(image_folder, tmp_path / "straight"), progress=False,
                              log=lambda t: None)

    real_save = training.save_checkpoint

    def save_then_crash(out, network, optimizer, step, rng, state):
        real_save(out, network, optimizer, step, rng, state)
        if step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", save_then_crash)
    config = _config(image_folder, tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        training.train(config, progress=False, log=lambda t: None)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    resumed = training.train(config, resume=True, progress=False, log=lambda t: None)

    a, _ = model_io.load_weights(straight.weights)
    b, _ = model_io.load_weights(resumed.weights)
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value, rtol=0, atol=1e-6)
    assert resumed.card["validation_history"][-1]["psnr"] == pytest.approx(
        straight.card["validation_history"][-1]["psnr"], abs=1e-4)


def test_train_resume_refuses_other_settings(image_folder, tmp_path):
    training.train(_config(image_folder, tmp_path), progress=False, log=lambda t: None)
    with pytest.raises(WeightsError, match="seed=3, not 4"):
        training.train(_config(image_folder, tmp_path, seed=4), resume=True, progress=False)


def test_train_resume_without_checkpoint(image_folder, tmp_path):
    with pytest.raises(WeightsError, match="nothing to resume"):
        training.train(_config(image_folder, tmp_path), resume=True, progress=False)


@pytest.mark.parametrize("overrides, message", [
    ({"model": "unet"}, "unknown model 'unet'"),
    ({"levels": (30.0, 10.0)}, "levels 30-10"),
    ({"architecture": {"height": 3}}, "no hyper-parameter 'height'"),
    ({"noise": "poisson"}, "only gaussian"),
    ({"precision": "fp16"}, "precision must be one of fp32, bf16, got 'fp16'"),
    ({"precise_bn": -1}, "precise_bn must be 0 or more"),
])
def test_train_bad_settings(image_folder, tmp_path, overrides, message):
    with pytest.raises(InvalidParameterError, match=message):
        training.train(_config(image_folder, tmp_path, **overrides), progress=False)


def test_bench_train_command_resumes_and_writes_card(image_folder, tmp_path, capsys):
    args = ["train", "autoencoder", "--data", str(image_folder), "--holdout", "2",
            "--steps", "4", "--batch", "2", "--patch", "16", "--arch", "width=4",
            "--validate-every", "2", "--checkpoint-every", "2", "--threads", "1",
            "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    assert (tmp_path / "autoencoder.safetensors").is_file()
    assert main(args[:6] + ["--steps", "6"] + args[8:] + ["--resume"]) == 0
    card = json.loads((tmp_path / "autoencoder.json").read_text())
    assert card["training"]["steps"] == 6 and card["architecture"]["width"] == 4
    assert "resumed autoencoder at step 4" in capsys.readouterr().err


def test_bench_train_command_bad_levels(image_folder, tmp_path):
    assert main(["train", "dncnn", "--data", str(image_folder), "--out", str(tmp_path),
                 "--levels", "a-b"]) == 2
