"""bench.sigma_estimate, the blind noise estimate in torch, against scikit-image's.

The reference is ``skimage.restoration.estimate_sigma(..., average_sigmas=True)``, which the
array path of blind mode calls: PyWavelets' 'db2' ``dwtn`` in 'symmetric' mode, numpy's median
of the nonzero diagonal details. The torch estimate must agree within 1e-6 (relative) on real
gray and colour images (Set12 from ``$BENCH_DATA_DIR``, scikit-image's camera and astronaut),
whole and cropped to odd sizes, at sigma 5, 25 and 50 (8-bit units), on every device. Where the
coefficients are computed alike (float32 products and sums one by one, as PyWavelets' C loop
does on x86 and as torch does on the CPU and on CUDA) they are equal bit for bit, which the
layout test checks, and so are the estimates.

The tolerance has teeth: odd crops give an even number of coefficients, whose median torch's
``median`` would take as the lower middle value, 3e-3 away on the 37x31 crop of camera
(``test_lower_middle_misses``); and a black band fails it unless zero coefficients are left
out, as scikit-image does.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import pywt  # scikit-image's estimate_sigma, and so blind mode, needs it
import skimage.data
from conftest import reference_image
from skimage.restoration import estimate_sigma as skimage_estimate

from bench.sigma_estimate import NORMAL_MAD, estimate_sigma

torch = pytest.importorskip("torch")

TOLERANCE = 1e-6  # relative
SIGMAS = (5, 25, 50)  # Gaussian noise, 8-bit units


def reference(noisy: np.ndarray) -> float:
    """scikit-image's estimate, as the array path of blind mode makes it."""
    channel_axis = -1 if noisy.ndim == 3 else None
    return float(skimage_estimate(noisy, channel_axis=channel_axis, average_sigmas=True))


def on_device(noisy: np.ndarray, device) -> float:
    return estimate_sigma(torch.from_numpy(noisy).to(device),
                          channel_axis=-1 if noisy.ndim == 3 else None)


def add_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (clean + rng.normal(0.0, sigma / 255, clean.shape)).astype(np.float32)


def assert_agrees(noisy: np.ndarray, device) -> None:
    expected, got = reference(noisy), on_device(noisy, device)
    assert abs(got - expected) <= TOLERANCE * expected, (got, expected)


@functools.cache
def sample(name: str) -> np.ndarray:
    return (getattr(skimage.data, name)() / 255).astype(np.float32)


@pytest.mark.parametrize("name", [f"{number:02d}.png" for number in range(1, 13)])
@pytest.mark.parametrize("sigma", SIGMAS)
def test_estimate_agrees_with_scikit_image_on_set12(name, sigma, device):
    assert_agrees(add_noise(reference_image("Set12", name), sigma, seed=sigma), device)


# Whole images (512x512: 257x257 coefficients, an odd count) and odd crops (37x31: 20x17, an
# even count; 31x37x3: 17x20 per channel), gray and colour.
CROPS = {
    "camera": (slice(None), slice(None)),
    "camera 37x31": (slice(200, 237), slice(180, 211)),
    "astronaut": (slice(None), slice(None)),
    "astronaut 31x37x3": (slice(100, 131), slice(180, 217)),
    "astronaut 511x509x3": (slice(1, None), slice(3, None)),
}


@pytest.mark.parametrize("case", CROPS)
@pytest.mark.parametrize("sigma", SIGMAS)
def test_estimate_agrees_with_scikit_image_on_samples(case, sigma, device):
    clean = sample(case.split()[0])[CROPS[case]]
    assert_agrees(add_noise(clean, sigma, seed=sigma), device)


def test_zero_coefficients_are_left_out_as_in_scikit_image(device):
    """A black band (exact zeros, as in letterboxed or padded images) gives detail
    coefficients exactly zero, which both leave out of the median; counted in, they would make
    it the band's zero."""
    noisy = add_noise(sample("astronaut")[:255, :253], 25, seed=3)
    noisy[:, :140] = 0
    coefficients = pywt.dwtn(noisy[..., 0], "db2")["dd"]
    assert np.mean(coefficients == 0) > 0.5  # the case is really there
    assert_agrees(noisy, device)


def test_lower_middle_misses(device):
    """The even count of an odd crop: its two middle values are far enough apart that taking
    the lower one (``torch.median``) would miss the tolerance, which the estimate does not."""
    noisy = add_noise(sample("camera")[200:237, 180:211], 25, seed=25)
    magnitudes = np.abs(pywt.dwtn(noisy, "db2")["dd"]).ravel()
    assert magnitudes.size % 2 == 0 and np.all(magnitudes != 0)
    lower_middle = float(torch.from_numpy(magnitudes).median()) / NORMAL_MAD
    expected = reference(noisy)
    assert abs(lower_middle - expected) > 100 * TOLERANCE * expected
    assert_agrees(noisy, device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_detail_coefficients_equal_pywavelets(dtype, device):
    """The transform's layout (output length, alignment, symmetric extension, repeated for
    signals shorter than the filter) and its order of sums, against ``pywt.dwtn``'s 'dd', on
    every size up to 9 and a few odd and even ones beyond."""
    from bench.sigma_estimate import _high_pass_along

    rng = np.random.default_rng(11)
    sizes = list(range(1, 10)) + [31, 36, 37]
    for height in sizes:
        for width in sizes:
            image = rng.normal(0.5, 0.2, (height, width)).astype(dtype)
            planes = torch.from_numpy(image)[None].to(device)
            got = _high_pass_along(_high_pass_along(planes, 1), 2)[0].cpu().numpy()
            np.testing.assert_array_equal(got, pywt.dwtn(image, "db2")["dd"],
                                          err_msg=f"{height}x{width}")


def test_constants_are_pywavelets_and_scipys():
    from scipy.stats import norm

    from bench.sigma_estimate import DB2_DEC_HI

    assert DB2_DEC_HI == tuple(pywt.Wavelet("db2").dec_hi)
    assert NORMAL_MAD == norm.ppf(0.75)


def test_float64_image_agrees(device):
    noisy = add_noise(sample("astronaut")[:101, :99], 25, seed=7).astype(np.float64)
    assert_agrees(noisy, device)


def test_channel_axis_first_and_arrays(device):
    """Any channel axis gives the mean of the planes' estimates; an array is taken as is."""
    noisy = add_noise(sample("astronaut")[:64, :48], 25, seed=8)
    channels_first = torch.from_numpy(noisy).to(device).permute(2, 0, 1)
    expected = reference(noisy)
    assert estimate_sigma(channels_first, channel_axis=0) == on_device(noisy, device)
    assert abs(estimate_sigma(noisy, channel_axis=-1) - expected) <= TOLERANCE * expected


def test_a_flat_image_has_no_estimate(device):
    assert np.isnan(estimate_sigma(torch.zeros(16, 16, device=device)))
    with pytest.warns(RuntimeWarning):  # scikit-image: numpy's median of nothing
        assert np.isnan(reference(np.zeros((16, 16), np.float32)))


def test_a_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"two spatial axes, got shape \(4, 4, 3\)"):
        estimate_sigma(torch.zeros(4, 4, 3))
    with pytest.raises(ValueError, match="and a channel axis, got shape"):
        estimate_sigma(torch.zeros(4, 4), channel_axis=-1)


def test_interfaces_estimate_dispatches_on_the_type(device, monkeypatch):
    """``bench.interfaces.estimate_sigma``: scikit-image's own function for an array, the
    torch estimate on the tensor's device for a tensor (the two agree, so each path is checked
    with the other one out of reach)."""
    import skimage.restoration

    import bench.sigma_estimate
    from bench.interfaces import estimate_sigma as blind_estimate

    def unreachable(*args, **kwargs):
        raise AssertionError("the other path was taken")

    noisy = add_noise(sample("astronaut")[:45, :39], 25, seed=9)
    tensor = torch.from_numpy(noisy).to(device)
    expected = {"colour": reference(noisy), "gray": reference(noisy[..., 1])}
    with monkeypatch.context() as patch:
        patch.setattr(bench.sigma_estimate, "estimate_sigma", unreachable)
        assert blind_estimate(noisy) == expected["colour"]
        assert blind_estimate(noisy[..., 1]) == expected["gray"]
    with monkeypatch.context() as patch:
        patch.setattr(skimage.restoration, "estimate_sigma", unreachable)
        assert blind_estimate(tensor) == estimate_sigma(tensor, channel_axis=-1)
        assert blind_estimate(tensor[..., 1]) == estimate_sigma(tensor[..., 1])
