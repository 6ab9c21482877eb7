"""The tensor path of the denoisers: ``denoise_tensor`` and ``supports_tensor``.

The learned models' array path is their tensor path between two host copies, so the two agree
exactly; the classical methods' tensor path is their torch version (``denoisers.torch_classical``,
whose agreement with the CPU versions ``tests/test_torch_classical.py`` measures). Torch on the
CPU, and on CUDA where there is one; odd sizes (37x31) to catch layout and padding slips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from bench.errors import InvalidParameterError
from bench.interfaces import Denoiser
from bench.registry import default_registry

torch = pytest.importorskip("torch")

LEARNED = ("dncnn", "ffdnet_small", "autoencoder")
CLASSICAL_ON_DEVICE = ("median", "gaussian_blur", "bilateral", "tv", "nlm")
CPU_ONLY = ("wavelet", "bm3d", "nlm_opencv")


@pytest.fixture
def device_name(device):
    """The conftest ``device`` as the name a denoiser is set up with."""
    return device.type


def noisy_image(kind: str, rng: np.random.Generator) -> np.ndarray:
    import skimage.data

    if kind == "gray":
        clean = skimage.data.camera()[200:237, 180:211] / 255
    else:
        clean = skimage.data.astronaut()[100:137, 180:211] / 255
    return (clean + rng.normal(0.0, 25 / 255, clean.shape)).astype(np.float32)


def create(name: str, **params) -> Denoiser:
    return default_registry().create_denoiser(name, **params)


@pytest.mark.parametrize("name", LEARNED + CLASSICAL_ON_DEVICE)
def test_supports_tensor_for_learned_and_gpu_classical_methods(name):
    assert create(name).supports_tensor()


@pytest.mark.parametrize("name", CPU_ONLY)
def test_cpu_only_methods_have_no_tensor_path(name):
    denoiser = create(name)
    assert not denoiser.supports_tensor()
    with pytest.raises(NotImplementedError, match=f"denoiser '{name}' has no tensor path"):
        denoiser.denoise_tensor(torch.zeros(16, 16), 0.1)


@pytest.mark.parametrize("name", CPU_ONLY[:2])
def test_vst_around_a_method_without_a_tensor_path_has_none(name):
    """``vst=gat`` has a tensor path exactly where the wrapped denoiser has one."""
    from bench.stabilised import Stabilised

    wrapped = Stabilised(create(name))
    assert Stabilised(create("dncnn")).supports_tensor()
    assert not wrapped.supports_tensor()
    with pytest.raises(NotImplementedError, match=f"denoiser '{name}' has no tensor path"):
        wrapped.denoise_tensor(torch.zeros(16, 16), 0.1)


def test_a_subclass_that_overrides_denoise_keeps_the_array_path():
    """A subclass that customises ``denoise``: the tensor path would bypass it."""

    @dataclass
    class PicksAModel(type(create("dncnn"))):
        def denoise(self, noisy, sigma=None, *, noise=None):
            return super().denoise(noisy, sigma, noise=noise)

    assert not PicksAModel(model="dncnn").supports_tensor()


# The options are shared machinery: one model tries them.
@pytest.mark.parametrize("name, params", [(name, {}) for name in LEARNED] + [
    ("dncnn", {"self_ensemble": 4}), ("dncnn", {"tile": 64})])
@pytest.mark.parametrize("kind", ["gray", "colour"])
@pytest.mark.parametrize("sigma", [25 / 255, None])
def test_learned_tensor_path_equals_array_path(name, params, kind, sigma, device_name):
    rng = np.random.default_rng(5)
    noisy = noisy_image(kind, rng)
    if params.get("tile"):
        noisy = np.tile(noisy, (3, 4) + (1,) * (noisy.ndim - 2))  # 111x124: several tiles
    denoiser = create(name, **params)
    denoiser.setup(device_name)
    expected = denoiser.denoise(noisy.copy(), sigma)
    tensor = torch.from_numpy(noisy).to(device_name)
    got = denoiser.denoise_tensor(tensor, sigma)
    assert isinstance(got, torch.Tensor) and got.device.type == device_name
    assert got.dtype == torch.float32 and tuple(got.shape) == noisy.shape
    assert np.array_equal(got.cpu().numpy(), expected)
    assert np.array_equal(tensor.cpu().numpy(), noisy)  # the input is left alone


@pytest.mark.parametrize("name", CLASSICAL_ON_DEVICE)
@pytest.mark.parametrize("kind", ["gray", "colour"])
def test_classical_tensor_path_is_the_torch_version(name, kind, device_name):
    from denoisers.torch_classical import TORCH_DENOISERS

    rng = np.random.default_rng(7)
    noisy = noisy_image(kind, rng)
    denoiser = create(name)
    denoiser.setup(device_name)
    tensor = torch.from_numpy(noisy).to(device_name)
    sigma = 25 / 255
    got = denoiser.denoise_tensor(tensor, sigma)
    assert got.device.type == device_name and got.dtype == torch.float32
    assert tuple(got.shape) == noisy.shape
    expected = TORCH_DENOISERS[name](tensor, sigma, **denoiser.resolved(sigma))
    assert torch.equal(got, expected)
    assert np.array_equal(tensor.cpu().numpy(), noisy)  # the input is left alone (keeps_input)
    # what --device cuda runs through the array path: the same call between two copies
    assert np.array_equal(denoiser.denoise_tensor_on(device_name, noisy, sigma), got.cpu().numpy())


@pytest.mark.parametrize("name", ["gaussian_blur", "dncnn", "ffdnet_small"])
@pytest.mark.parametrize("kind", ["gray", "colour"])
def test_blind_tensor_path_estimates_sigma_as_the_array_path(name, kind, device_name,
                                                             monkeypatch):
    """Blind mode on the tensor path estimates sigma on the tensor's device (no host copy of
    the image) and gets the array path's estimate (scikit-image's): the same output as the
    oracle call given that estimate, and, for the learned models, as the array path's blind
    call. 37x31 gives an even count of wavelet coefficients, whose median numpy averages."""
    from bench.interfaces import estimate_sigma

    rng = np.random.default_rng(9)
    noisy = noisy_image(kind, rng)
    denoiser = create(name)
    denoiser.setup(device_name)
    tensor = torch.from_numpy(noisy).to(device_name)
    oracle = denoiser.denoise_tensor(tensor, estimate_sigma(noisy))

    def host_copy(*args, **kwargs):
        raise AssertionError("the blind tensor path copied a tensor to the host")

    with monkeypatch.context() as patch:
        patch.setattr(torch.Tensor, "cpu", host_copy)
        patch.setattr(torch.Tensor, "numpy", host_copy)
        got = denoiser.denoise_tensor(tensor, None)
    assert torch.equal(got, oracle)
    if name in LEARNED:
        assert np.array_equal(got.cpu().numpy(), denoiser.denoise(noisy.copy(), None))


def test_learned_refuses_a_tensor_on_another_device():
    denoiser = create("dncnn")
    denoiser.setup("cpu")
    with pytest.raises(InvalidParameterError, match="set up on 'cpu', got a tensor on 'meta'"):
        denoiser.denoise_tensor(torch.zeros(16, 16, device="meta"), None)


def test_learned_sets_itself_up_on_the_tensors_device():
    denoiser = create("autoencoder")
    out = denoiser.denoise_tensor(torch.zeros(20, 24), None)
    assert out.shape == (20, 24) and denoiser._device == "cpu"


def test_a_plugin_needs_only_the_tensor_hook():
    """A denoiser written in torch implements ``_denoise_tensor`` and gets both paths."""

    @dataclass
    class Halves(Denoiser):
        name = "halves"
        colour = "per_channel"

        def _denoise(self, noisy, sigma):
            return noisy / 2

        def _denoise_tensor(self, noisy, sigma):
            assert noisy.ndim == 2  # per_channel: one plane at a time
            return noisy / 2

    denoiser = Halves()
    assert denoiser.supports_tensor()
    image = torch.rand(9, 11, 3)
    assert torch.equal(denoiser.denoise_tensor(image, 0.1), image / 2)
