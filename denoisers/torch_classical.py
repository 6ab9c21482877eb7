"""The classical denoisers in PyTorch, on any device: the CPU methods' arithmetic on a tensor.

One function per method, taking the image, the noise sigma and the same parameters (same names,
same defaults, same rules from sigma) as the CPU denoiser class, so that a class can run
``TORCH_DENOISERS[self.name](tensor, sigma, **self.resolved(sigma))``: its tensor path
(``denoise_tensor``, :mod:`denoisers.on_device`), and its array path when its device is
``"cuda"``:

=================  ===========================  =================================================
suite name         function                     CPU version it reproduces
=================  ===========================  =================================================
``median``         :func:`median_filter`        ``scipy.ndimage.median_filter``, mode ``reflect``
``gaussian_blur``  :func:`gaussian_blur`        ``scipy.ndimage.gaussian_filter``, mode ``reflect``
``bilateral``      :func:`bilateral_filter`     ``cv2.bilateralFilter`` on float32, ``d=-1``
``tv``             :func:`tv_chambolle`         ``skimage.restoration.denoise_tv_chambolle``
``nlm``            :func:`nl_means_fast`        ``skimage.restoration.denoise_nl_means``, fast mode
=================  ===========================  =================================================

``nlm_opencv`` (8-bit OpenCV code), ``wavelet`` and ``bm3d`` stay on the CPU.

Images are tensors of shape (H, W) or (H, W, C), floating point, in [0, 1] units (values may
leave [0, 1], as with unclipped Gaussian noise); sigma is the noise standard deviation in the
same units (sigma 25 in 8-bit units is ``25 / 255``). Every function returns a tensor of the
input's shape, dtype and device. It computes in float32 or float64 as given (float16 and
bfloat16 in float32); the suite's images are float32. This module imports torch: callers import
it where they need it (inside ``_denoise``), so that ``bench list`` stays light; Kornia is
imported inside the two functions that use it.

Borders
-------
Each function pads the way its CPU version does, so borders agree as well as interiors:
SciPy's ``mode="reflect"`` is the half-sample symmetric extension ``(d c b a | a b c d)``
(NumPy's ``"symmetric"``), which is *not* PyTorch's or Kornia's ``"reflect"``; OpenCV's default
``BORDER_REFLECT_101`` and NumPy's ``"reflect"`` (which scikit-image's non-local means uses)
are the whole-sample extension ``(d c b | a b c d)``, which is PyTorch's ``"reflect"``. Both are
built here by index arithmetic (:func:`pad`), which also covers pads wider than the image
(repeated reflection, as SciPy, NumPy and OpenCV do), where ``torch.nn.functional.pad`` fails.
Total variation needs no padding (one-sided differences at the edges, as scikit-image). So no
method differs at its borders more than in its interior.

Agreement with the CPU versions
-------------------------------
Measured against the suite's CPU classes, float32, torch on the CPU: noisy crops of
scikit-image's camera (gray) and astronaut (colour) from 37x31 to 300x300 at Gaussian sigma
15, 25 and 50 (8-bit), and random 48x40 crops at sigma 5 to 50 (1500 for TV, 500 for NLM).
Largest absolute difference, [0, 1] units, interior and border alike
(``tests/test_torch_classical.py`` checks each bound on its cases):

* median: 0, bit-identical (a median selects a value; same window, same padding). Even
  windows take SciPy's offsets ``-(k // 2) .. (k - 1) // 2`` and its upper middle value.
* Gaussian blur: 3.6e-7 (float32 arithmetic here, float64 accumulation in SciPy).
* bilateral: 9.5e-7. OpenCV looks the range weight up in a 4096-bin-per-channel table with
  linear interpolation; here it is ``exp`` itself. Kornia's ``bilateral_blur`` is not used:
  its window is the full square, OpenCV's the disc of radius ``round(1.5 * spatial)``, which
  moved outputs by 0.02 to 0.06 and PSNR by up to -0.35 dB on the same crops.
* total variation: 2e-6, the iterations being scikit-image's operation for operation, except
  where the data-dependent stopping rule ends one iteration apart: 3 crops in 1500, up to
  1.0e-3 and 0.012 dB of PSNR there. The rule's energies are float32 sums in NumPy (pairwise,
  within an ulp or two of exact) and correctly rounded float32 sums here; where the change of
  energy falls within those ulps of ``eps * E_0`` the two decide differently. (scikit-image
  computes them in float64 instead when sigma is a NumPy float64 rather than a Python float.)
* non-local means: 5.1e-5 (typically 5e-7). scikit-image accumulates in float64, this version
  in float32; a patch distance within rounding of the cut-off (5) can be kept by one and
  dropped by the other, which moves that pixel by up to about 5e-5.

PSNR against the clean image agrees within 1e-6 dB apart from those TV stops.

References
----------
Tukey, "Exploratory Data Analysis", 1977 (median). Tomasi and Manduchi, "Bilateral filtering
for gray and color images", ICCV 1998. Chambolle, "An algorithm for total variation minimization
and applications", J. Math. Imaging Vis. 2004 (Rudin, Osher and Fatemi, Physica D 1992, for the
model). Buades, Coll and Morel, "A non-local algorithm for image denoising", CVPR 2005; Darbon
et al., "Fast nonlocal filtering applied to electron cryomicroscopy", ISBI 2008, and Froment,
"Parameter-free fast pixelwise non-local means denoising", IPOL 2014 (fast mode).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "TORCH_DENOISERS",
    "bilateral_filter",
    "gaussian_blur",
    "median_filter",
    "nl_means_fast",
    "pad",
    "tv_chambolle",
]


# --- layout and padding ---------------------------------------------------------------------
def _planes(image: torch.Tensor) -> torch.Tensor:
    """(H, W) or (H, W, C) -> (C, H, W), checking the input; half precision computes in float32."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(image).__name__}")
    if image.ndim not in (2, 3):
        raise ValueError(
            f"expected an image of shape (H, W) or (H, W, C), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"expected a floating-point image, got {image.dtype}")
    planes = image.unsqueeze(0) if image.ndim == 2 else image.permute(2, 0, 1)
    return planes if image.dtype in (torch.float32, torch.float64) else planes.float()


def _image(planes: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(C, H, W) -> the layout and dtype of ``like``, contiguous."""
    out = planes[0] if like.ndim == 2 else planes.permute(1, 2, 0)
    return out.to(like.dtype).contiguous()


def _extension(n: int, before: int, after: int, mode: str, device) -> torch.Tensor:
    """Indices into a length-``n`` axis that extend it by ``before`` and ``after`` samples."""
    index = torch.arange(-before, n + after, device=device)
    if mode == "symmetric":  # (d c b a | a b c d): SciPy "reflect", NumPy "symmetric"
        index = index.remainder(2 * n)
        return torch.where(index >= n, 2 * n - 1 - index, index)
    if mode == "reflect":  # (d c b | a b c d): NumPy/PyTorch "reflect", OpenCV REFLECT_101
        if n == 1:
            return torch.zeros_like(index)
        index = index.remainder(2 * n - 2)
        return torch.where(index >= n, 2 * n - 2 - index, index)
    raise ValueError(f"unknown padding mode {mode!r}; expected 'symmetric' or 'reflect'")


def pad(planes: torch.Tensor, width: int | tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """Extend the last two axes of a tensor by reflection, any width.

    Parameters
    ----------
    planes : torch.Tensor
        Tensor of shape (..., H, W).
    width : int or (top, bottom, left, right)
        Samples added on each side, in pixels.
    mode : {"symmetric", "reflect"}
        ``"symmetric"``: half-sample symmetric ``(d c b a | a b c d)``, SciPy's ``"reflect"``.
        ``"reflect"``: whole-sample symmetric ``(d c b | a b c d)``, NumPy's and PyTorch's
        ``"reflect"``, OpenCV's ``BORDER_REFLECT_101``. Widths beyond the image size reflect
        again, as those libraries do.

    Returns
    -------
    torch.Tensor
        Shape (..., H + top + bottom, W + left + right).
    """
    top, bottom, left, right = (width,) * 4 if isinstance(width, int) else width
    height, cols = planes.shape[-2:]
    rows = _extension(height, top, bottom, mode, planes.device)
    columns = _extension(cols, left, right, mode, planes.device)
    return planes.index_select(-2, rows).index_select(-1, columns)


# --- local filters ----------------------------------------------------------------------------
def median_filter(image: torch.Tensor, sigma: float, *, size: int | None = None) -> torch.Tensor:
    """Median over a square window, each channel on its own (SciPy ``median_filter``).

    Parameters
    ----------
    image : torch.Tensor
        (H, W) or (H, W, C), floating point, [0, 1] units.
    sigma : float
        Noise standard deviation in [0, 1] units; only picks the window when ``size`` is None.
    size : int or None
        Window side in pixels. Rule when None: 3 for sigma up to 30 (8-bit units), else 5.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device; the border extended half-sample symmetrically, as SciPy's
        ``mode="reflect"``. Odd windows use Kornia's ``median_blur``; an even window ``k``
        covers offsets ``-(k // 2)`` to ``(k - 1) // 2`` and takes the upper middle value, as
        SciPy does.
    """
    planes = _planes(image)
    size = size if size is not None else (3 if sigma * 255 <= 30 else 5)
    if size < 1:
        raise ValueError(f"median window size must be at least 1, got {size}")
    before, after = size // 2, (size - 1) // 2
    padded = pad(planes, (before, after, before, after), "symmetric")
    height, width = planes.shape[-2:]
    if size % 2:
        from kornia.filters import median_blur

        out = median_blur(padded.unsqueeze(0), (size, size))[0]
        out = out[:, before:before + height, before:before + width]
    else:
        windows = torch.stack([padded[:, i:i + height, j:j + width]
                               for i in range(size) for j in range(size)])
        out = windows.sort(dim=0).values[size * size // 2]
    return _image(out, image)


def _gaussian_radius(width: float, truncate: float = 4.0) -> int:
    """SciPy's kernel radius for a Gaussian of standard deviation ``width`` pixels."""
    return int(truncate * width + 0.5)


def gaussian_blur(image: torch.Tensor, sigma: float, *, width: float | None = None) -> torch.Tensor:
    """Gaussian low-pass filter over the two image axes (SciPy ``gaussian_filter``).

    Parameters
    ----------
    image : torch.Tensor
        (H, W) or (H, W, C), floating point, [0, 1] units; channels are not mixed.
    sigma : float
        Noise standard deviation in [0, 1] units; only sets ``width`` when that is None.
    width : float or None
        Standard deviation of the kernel in pixels. Rule when None: ``sigma_8bit / 25``, at
        least 0.5.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device. The kernel is SciPy's: ``exp(-x**2 / (2 width**2))``
        for integer ``|x| <= int(4 width + 0.5)``, normalised, applied along rows then columns
        (Kornia ``filter2d_separable``) on the half-sample symmetric extension (SciPy's
        ``mode="reflect"``).
    """
    from kornia.filters import filter2d_separable

    planes = _planes(image)
    width = width if width is not None else max(0.5, sigma * 255 / 25)
    radius = _gaussian_radius(width)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / width) ** 2)
    kernel = (kernel / kernel.sum()).to(device=planes.device, dtype=planes.dtype)[None]
    padded = pad(planes, radius, "symmetric").unsqueeze(0)
    return _image(filter2d_separable(padded, kernel, kernel, padding="valid")[0], image)


def bilateral_filter(image: torch.Tensor, sigma: float, *, range_factor: float = 4.0,
                     spatial: float = 2.5) -> torch.Tensor:
    """Bilateral filter with OpenCV's window, weights and border (``cv2.bilateralFilter``).

    Parameters
    ----------
    image : torch.Tensor
        (H, W) or (H, W, C), floating point, [0, 1] units.
    sigma : float
        Noise standard deviation in [0, 1] units.
    range_factor : float
        Range (intensity) kernel sigma as a multiple of ``sigma``, at least one 8-bit level.
    spatial : float
        Spatial kernel sigma in pixels.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device. As OpenCV with ``d=-1``: the window is the disc of radius
        ``max(1, round(1.5 * spatial))`` pixels; a neighbour's weight is
        ``exp(-r**2 / (2 spatial**2)) * exp(-delta**2 / (2 range**2))`` with ``delta`` the sum
        over channels of the absolute differences to the centre pixel (L1 in colour); the
        border is extended whole-sample symmetrically (``BORDER_REFLECT_101``).
    """
    planes = _planes(image)
    range_sigma = max(range_factor * sigma, 1 / 255)
    spatial = spatial if spatial > 0 else 1.0  # OpenCV's fallback for a non-positive sigma
    radius = max(1, round(1.5 * spatial))
    height, width = planes.shape[-2:]
    padded = pad(planes, radius, "reflect")
    range_coeff = -0.5 / range_sigma ** 2
    weighted = torch.zeros_like(planes)
    total = torch.zeros_like(planes[:1])
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            r2 = dy * dy + dx * dx
            if r2 > radius * radius:
                continue
            neighbour = padded[:, radius + dy:radius + dy + height, radius + dx:radius + dx + width]
            delta = (neighbour - planes).abs().sum(0, keepdim=True)
            weight = torch.exp(delta.square() * range_coeff) * math.exp(-0.5 * r2 / spatial ** 2)
            weighted += weight * neighbour
            total += weight
    return _image(weighted / total, image)


# --- total variation --------------------------------------------------------------------------
def _plane_sums(values: torch.Tensor) -> torch.Tensor:
    """Per-plane sums of a (C, H, W) tensor, accumulated in float64, rounded to its dtype.

    NumPy sums a float32 array pairwise into a float32 result, within an ulp or two of the
    correctly rounded sum; this is the correctly rounded sum, which keeps the energies of the
    stopping rule as close to scikit-image's as a different summation order allows.
    """
    return values.double().sum((1, 2)).to(values.dtype)


def tv_chambolle(image: torch.Tensor, sigma: float, *, weight_factor: float = 1.0,
                 eps: float = 2.0e-4, max_num_iter: int = 200) -> torch.Tensor:
    """Total-variation denoising by Chambolle's projection algorithm, channel by channel.

    The iterations of scikit-image's ``denoise_tv_chambolle`` (2-D, ``channel_axis=-1`` for
    colour), written for a batch of channels that each stop on their own.

    Parameters
    ----------
    image : torch.Tensor
        (H, W) or (H, W, C), floating point, [0, 1] units.
    sigma : float
        Noise standard deviation in [0, 1] units.
    weight_factor : float
        The TV weight is ``weight_factor * sigma``; larger smooths more. A zero weight returns
        the image unchanged (scikit-image divides by it).
    eps : float
        Stopping rule: a channel stops when its energy ``E_n`` (mean of ``d**2`` plus weight
        times the mean gradient magnitude) changes by less than ``eps * E_0`` from one iteration
        to the next.
    max_num_iter : int
        Most iterations.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device.
    """
    planes = _planes(image)
    weight = weight_factor * sigma
    if weight == 0:
        return image.clone()
    channels, height, width = planes.shape
    tau = 0.25  # 1 / (2 * ndim)
    p = torch.zeros((2, channels, height, width), dtype=planes.dtype, device=planes.device)
    g = torch.zeros_like(p)
    d = torch.zeros_like(planes)
    result = planes.clone()
    active = torch.ones(channels, dtype=torch.bool, device=planes.device)
    e_init = e_previous = None
    out = planes
    for i in range(max_num_iter):
        if i > 0:
            d = -(p[0] + p[1])
            d[:, 1:, :] += p[0, :, :-1, :]
            d[:, :, 1:] += p[1, :, :, :-1]
            out = planes + d
        else:
            out = planes
        g[0, :, :-1, :] = out[:, 1:, :] - out[:, :-1, :]
        g[1, :, :, :-1] = out[:, :, 1:] - out[:, :, :-1]
        norm = torch.sqrt(g[0].square() + g[1].square())
        energy = _plane_sums(d.square()) + _plane_sums(norm) * weight
        norm *= tau / weight
        norm += 1.0
        p -= tau * g
        p /= norm
        energy = energy / float(height * width)
        if i == 0:
            e_init = e_previous = energy
            continue
        stopped = active & ((e_previous - energy).abs() < eps * e_init)
        result = torch.where(stopped[:, None, None], out, result)
        active &= ~stopped
        if not bool(active.any()):  # the one device-to-host sync of an iteration
            break
        e_previous = energy
    else:
        result = torch.where(active[:, None, None], out, result)
    return _image(result, image)


# --- non-local means --------------------------------------------------------------------------
# scikit-image's fast exponential (Schraudolph 1999, its fast_exp.h): the high 32 bits of a
# float64 are int32(A * y) + B and the low 32 bits zero. That float64 has a 20-bit mantissa, so it
# is exact in float32, whose bits are (int32(A * y) + B - (1023 - 127) * 2**20) * 2**3.
_EXP_A = 1512775.3951951856938
_EXP_B32 = 1072632447 - (1023 - 127) * 2 ** 20
_NLM_CUTOFF = 5.0
_NLM_CHUNK = 1 << 24  # elements of one batch of shifted images


def _fast_exp(y: torch.Tensor) -> torch.Tensor:
    """scikit-image's ``_fast_exp`` (error up to about 4 %) for ``-5 <= y <= 0``, as float32."""
    bits = (torch.trunc(y.float() * _EXP_A).to(torch.int32) + _EXP_B32) * 8
    return bits.view(torch.float32)


def _box_sum(values: torch.Tensor, size: int) -> torch.Tensor:
    """Sums over ``size`` x ``size`` windows of the last two axes, 'valid' part only."""
    rows = values[..., :values.shape[-2] - size + 1, :].clone()
    for k in range(1, size):
        rows += values[..., k:k + rows.shape[-2], :]
    out = rows[..., :rows.shape[-1] - size + 1].clone()
    for k in range(1, size):
        out += rows[..., k:k + out.shape[-1]]
    return out


def nl_means_fast(image: torch.Tensor, sigma: float, *, h_factor: float = 0.6,
                  patch_size: int = 5, patch_distance: int = 6) -> torch.Tensor:
    """Non-local means, scikit-image's fast mode (``fast_mode=True``, ``sigma`` subtracted).

    For each offset ``t`` of the search window the squared-difference image between the image
    and its shift by ``t`` is box-filtered over the patch, giving the patch distance of every
    pixel to its neighbour at ``t`` at once; weights and weighted sums are accumulated offset by
    offset. Memory stays a small multiple of the image (no ``unfold``).

    Parameters
    ----------
    image : torch.Tensor
        (H, W) or (H, W, C), floating point, [0, 1] units; in colour one weight per pixel pair
        from the distance summed over channels.
    sigma : float
        Noise standard deviation in [0, 1] units.
    h_factor : float
        Filtering strength ``h = h_factor * sigma``. A zero ``h`` returns the image unchanged
        (scikit-image divides by it).
    patch_size : int
        Side of the compared patches in pixels (an even side is increased by one, as
        scikit-image does).
    patch_distance : int
        Search radius ``d`` in pixels: offsets ``-d..d`` along each axis.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device.

    Notes
    -----
    scikit-image's fast mode, reproduced as it is rather than as the textbook method:

    * the patch of a pixel spans offsets ``-(s // 2) + 1 .. s // 2`` along each axis, so
      ``s - 1`` pixels (4 x 4 for ``patch_size=5``: differences of its integral image), with
      uniform weights, yet is normalised by ``s**2``;
    * distance ``max(0, sum over the patch and the C channels of (diff**2 - 2 sigma**2))
      / (C h**2 s**2)``; a pair whose distance exceeds 5 gets weight zero, the others
      ``fast_exp(-distance)``, Schraudolph's approximation of ``exp`` (the pixel itself gets
      ``fast_exp(0) = 0.971``);
    * the image is extended whole-sample symmetrically (NumPy's ``"reflect"``) for patches and
      neighbours beyond the border.
    """
    planes = _planes(image)
    h = h_factor * sigma
    if h == 0:
        return image.clone()
    size = patch_size + 1 if patch_size % 2 == 0 else patch_size
    offset, search = size // 2, patch_distance
    channels, height, width = planes.shape
    box = 2 * offset
    padded = pad(planes, offset + search, "reflect")
    scale = 1.0 / (channels * h * h * size * size)
    noise = 2.0 * channels * sigma * sigma
    # The squared differences that the boxes of every pixel cover: image rows and columns
    # -lead .. H - 1 + offset (the box of pixel y spans y - offset + 1 .. y + offset).
    lead = max(offset - 1, 0)
    first, rows, cols = offset + search - lead, height + lead + offset, width + lead + offset
    centre = padded[:, first:first + rows, first:first + cols]
    shifts = range(-search, search + 1)
    per_batch = max(1, _NLM_CHUNK // max(1, channels * rows * cols))
    weights = torch.zeros((height, width), dtype=planes.dtype, device=planes.device)
    result = torch.zeros_like(planes)
    for dy in shifts:
        band = padded[:, first + dy:first + dy + rows, :]
        for start in range(0, len(shifts), per_batch):
            dxs = shifts[start:start + per_batch]
            # (n, C, rows, cols): the image shifted by (dy, dx) for each dx of the batch.
            moved = torch.stack([band[:, :, first + dx:first + dx + cols] for dx in dxs])
            if box:
                sq = (centre - moved).square().sum(1) - noise
                distance = _box_sum(sq, box).clamp_(min=0) * scale
            else:
                distance = torch.zeros((len(dxs), height, width), dtype=planes.dtype,
                                       device=planes.device)
            weight = torch.where(distance > _NLM_CUTOFF, 0.0,
                                 _fast_exp(-distance.clamp(max=_NLM_CUTOFF)).to(planes.dtype))
            neighbours = moved[:, :, lead:lead + height, lead:lead + width]
            weights += weight.sum(0)
            result += (weight.unsqueeze(1) * neighbours).sum(0)
    return _image(result / weights, image)


#: The suite's denoiser names mapped to their PyTorch versions, each called as
#: ``function(image, sigma, **denoiser.resolved(sigma))``.
TORCH_DENOISERS: dict[str, Callable[..., torch.Tensor]] = {
    "median": median_filter,
    "gaussian_blur": gaussian_blur,
    "bilateral": bilateral_filter,
    "tv": tv_chambolle,
    "nlm": nl_means_fast,
}
