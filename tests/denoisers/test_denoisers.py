import numpy as np
import pytest

from bench.metrics import PSNR
from bench.protocol import Protocol
from bench.registry import BUILTIN, default_registry
from bench.plan import noise_rng
from conftest import require

CLASSICAL = [e.name for e in default_registry().entries("denoiser")
             if e.origin == BUILTIN and "torch" not in e.requires]


@pytest.fixture(scope="module")
def noisy_pairs():
    """Clean and sigma-25 noisy 96x96 crops of astronaut, in colour and in gray."""
    import skimage.data

    colour = (skimage.data.astronaut()[120:216, 160:256] / 255).astype(np.float32)
    gaussian = default_registry().create_noise("gaussian")
    pairs = {}
    for channels, clean in (("colour", colour), ("gray", colour.mean(axis=-1))):
        pairs[channels] = clean, gaussian.apply(clean, 25, noise_rng(0, channels, "gaussian", 25))
    return pairs


@pytest.mark.parametrize("name", CLASSICAL)
@pytest.mark.parametrize("channels", ["gray", "colour"])
@pytest.mark.parametrize("mode", ["oracle", "blind"])
def test_denoiser_improves_psnr_at_sigma_25(name, channels, mode, noisy_pairs):
    clean, noisy = noisy_pairs[channels]
    image = noisy.image
    sigma = noisy.sigma if mode == "oracle" else None
    denoiser = default_registry().create_denoiser(name)
    out = denoiser.denoise(image.copy(), sigma)
    assert out.shape == image.shape
    assert np.all(np.isfinite(out))
    gain = PSNR()(clean, Protocol().output(out)) - PSNR()(clean, Protocol().noisy(image))
    assert gain > 2.0, f"{name} gained only {gain:.2f} dB"


@pytest.mark.parametrize("name", [e.name for e in default_registry().entries("denoiser")
                                  if e.origin == BUILTIN and e.in_default_sweep])
@pytest.mark.parametrize("channels", ["gray", "colour"])
@pytest.mark.parametrize("mode", ["oracle", "blind"])
def test_builtin_keeps_its_input_as_it_declares(name, channels, mode, noisy_pairs):
    """The runner hands a built-in its noisy image itself, not a copy (``keeps_input``)."""
    entry = default_registry().get("denoiser", name)
    for module in entry.missing():
        require(module)
    _, noisy = noisy_pairs[channels]
    given = noisy.image.copy()
    denoiser = default_registry().create_denoiser(name)
    denoiser.denoise(noisy.image, noisy.sigma if mode == "oracle" else None)
    assert denoiser.keeps_input
    assert np.array_equal(noisy.image, given)


@pytest.mark.parametrize("name", CLASSICAL)
def test_denoiser_accepts_values_outside_unit_range_and_odd_sizes(name, rng):
    image = rng.normal(0.5, 0.4, (37, 31)).astype(np.float32)  # well outside [0, 1]
    out = default_registry().create_denoiser(name).denoise(image, 0.4)
    assert out.shape == (37, 31) and np.all(np.isfinite(out))


# --- the parameter rules (fitted on Train400, docs/tuning.md; the hand rules kept) ------------

RULED = ["median", "gaussian_blur", "bilateral", "tv", "nlm", "nlm_opencv", "wavelet"]


def test_train400_rules_match_docs_tuning():
    from denoisers import filters, nonlocal_means, variational, wavelet

    assert [filters.median_size(s) for s in (15, 30, 31, 50, 55)] == [3, 3, 5, 5, 7]
    assert filters.gaussian_width(25) == pytest.approx(0.8)
    assert filters.bilateral_range_factor(25) == pytest.approx(2.58)
    assert filters.bilateral_spatial(50) == 1.8
    assert variational.tv_weight_factor(15) == pytest.approx(0.57)
    assert variational.tv_weight_factor(25) == pytest.approx(0.73)  # continuous at the knot
    assert variational.tv_weight_factor(50) == pytest.approx(0.8725)
    assert nonlocal_means.nlm_h_factor(15) == pytest.approx(0.7725)
    assert nonlocal_means.nlm_h_factor(50) == pytest.approx(0.5325)
    assert [nonlocal_means.nlm_patch_size(s) for s in (40, 45)] == [5, 7]
    assert [nonlocal_means.nlm_patch_distance(s) for s in (5, 25, 55)] == [3, 5, 7]
    assert nonlocal_means.nlm_opencv_h_factor(35) == pytest.approx(0.94)
    assert nonlocal_means.nlm_opencv_h_factor(55) == pytest.approx(0.862)
    assert [nonlocal_means.nlm_opencv_template_size(s) for s in (30, 35)] == [3, 5]
    sizes = [nonlocal_means.nlm_opencv_search_size(s) for s in (5, 15, 25, 50)]
    assert sizes == [11, 11, 13, 15] and all(n % 2 for n in sizes)
    assert [wavelet.wavelet_family(s) for s in (25, 30, 35)] == ["db2", "db2", "db1"]


@pytest.mark.parametrize("name", RULED)
def test_rule_defaults_hand_rule_and_explicit_parameters(name, noisy_pairs):
    """The default is the Train400 rule; ``rule="hand"`` is the former rule; a parameter
    given explicitly wins over either rule."""
    registry = default_registry()
    _, noisy = noisy_pairs["gray"]
    image, sigma = noisy.image, noisy.sigma
    default = registry.create_denoiser(name)
    explicit = {"median": {"size": 5}, "gaussian_blur": {"width": 1.5},
                "bilateral": {"range_factor": 3.0, "spatial": 2.0},
                "tv": {"weight_factor": 0.9, "eps": 1e-4, "max_num_iter": 300},
                "nlm": {"h_factor": 0.7, "patch_size": 7, "patch_distance": 4},
                "nlm_opencv": {"h_factor": 1.0, "template_size": 5, "search_size": 15},
                "wavelet": {"wavelet": "sym4"}}[name]
    a = registry.create_denoiser(name, **explicit).denoise(image.copy(), sigma)
    b = registry.create_denoiser(name, rule="hand", **explicit).denoise(image.copy(), sigma)
    np.testing.assert_array_equal(a, b)  # explicit parameters win over the rule
    hand = registry.create_denoiser(name, rule="hand").denoise(image.copy(), sigma)
    fitted = default.denoise(image.copy(), sigma)
    if name != "median":  # the median rules agree below sigma 50
        assert not np.array_equal(hand, fitted)


def test_hand_rule_reproduces_the_former_constants(noisy_pairs):
    registry = default_registry()
    _, noisy = noisy_pairs["gray"]
    image, sigma = noisy.image, noisy.sigma
    former = {"gaussian_blur": {"width": 1.0}, "bilateral": {"range_factor": 4.0, "spatial": 2.5},
              "tv": {"weight_factor": 1.0, "eps": 2e-4, "max_num_iter": 200},
              "nlm": {"h_factor": 0.6, "patch_size": 5, "patch_distance": 6},
              "nlm_opencv": {"h_factor": 0.9, "template_size": 7, "search_size": 21},
              "wavelet": {"wavelet": "db1"}, "median": {"size": 3}}
    for name, params in former.items():
        hand = registry.create_denoiser(name, rule="hand").denoise(image.copy(), sigma)
        given = registry.create_denoiser(name, **params).denoise(image.copy(), sigma)
        np.testing.assert_allclose(hand, given, atol=1e-6, err_msg=name)


def test_unknown_rule_is_refused():
    from bench.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="rule"):
        default_registry().create_denoiser("tv", rule="handmade")
