"""Fast PSNR and SSIM with the suite's published protocols, for numpy arrays and torch tensors.

They compute what ``skimage.metrics.peak_signal_noise_ratio(reference, estimate,
data_range=1)`` and ``skimage.metrics.structural_similarity(reference, estimate, data_range=1,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1)`` compute on
float64 copies of the images, without the copies and several times faster
(``tests/benchmarks/test_metrics_benchmark.py`` measures by how much):

- :func:`psnr`: ``10 log10(data_range**2 / MSE)``, the squared differences summed in float64
  one cache-sized block at a time; ``inf`` for identical images.
- :func:`ssim`: Wang et al.'s SSIM [1]_ — a Gaussian window of sigma 1.5 truncated at 3.5 sigma
  (11 taps, as scikit-image truncates it), K1 0.01, K2 0.03, population (co)variances, the mean
  of the SSIM map over the valid region (the map shaved by the window's radius, 5 pixels, on
  every side, where the border mode plays no part), the mean over channels for colour. The
  window is separable; OpenCV filters the image in strips of rows that stay in the CPU's cache.
- :func:`psnr_torch`, :func:`ssim_torch`: the same on torch tensors where they are (on a GPU,
  say), in float64, with ``conv2d``.

Why :func:`ssim` does not simply filter in float32. The local variances are differences of
nearly equal numbers, ``E[x**2] - E[x]**2``: in float32 their rounding error is about 1e-7 times
the squared grey level, which the constant ``C2 = 9e-4`` turns into errors of 1e-5 on single
pixels and, over the flat regions of binary or synthetic images, in the mean too. So the map is
computed from the sum ``t = x + y`` and the difference ``d = x - y`` of the images:

- ``2 ux uy + C1 = (E[t]**2 - E[d]**2) / 2 + C1`` and ``ux**2 + uy**2 + C1
  = (E[t]**2 + E[d]**2) / 2 + C1``;
- ``2 cov(x, y) + C2 = (var t - var d) / 2 + C2`` and ``var x + var y + C2
  = (var t + var d) / 2 + C2``.

``var t`` is computed in float64 (two float64 filters), ``var d`` in float32 (two float32
filters), which is exact enough while ``d`` is small next to its local spread; every other
rounding error is relative to the denominators, under 1e-7 on one pixel. Where the estimate is
biased over flat regions (a constant offset, say) ``E[d]**2`` dwarfs ``var d``; a strip of rows
where it does is filtered again with ``d`` in float64. The mean differs from scikit-image's by
less than 1e-7 on every image ``tests/test_fast_metrics.py`` tries (real, binary, synthetic,
gray and colour; noisy, clipped, smoothed, offset; float32 and float64), 1e-8 on natural ones.

Conventions: images are float arrays (or tensors) of one shape, ``(H, W)`` or ``(H, W, C)``
with the channels last, as everywhere in the suite; float32 images are scored as they are, with
float64 arithmetic where it matters, so they score as their float64 copies did. Integer images
are converted to float64; pass their ``data_range`` (255 for 8 bits).

References
----------
.. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment: from
   error visibility to structural similarity", IEEE Transactions on Image Processing 13(4),
   600-612, 2004. :DOI:`10.1109/TIP.2003.819861`
"""

from __future__ import annotations

import math

import numpy as np

#: Standard deviation of SSIM's Gaussian window, in pixels.
SSIM_SIGMA = 1.5
#: Where the window is truncated, in standard deviations (scikit-image's choice for SSIM).
SSIM_TRUNCATE = 3.5
#: SSIM's constants: ``C1 = (K1 * data_range)**2``, ``C2 = (K2 * data_range)**2``.
SSIM_K1, SSIM_K2 = 0.01, 0.03
#: Radius of the window (scipy.ndimage's rule ``int(truncate * sigma + 0.5)``): 5 pixels.
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
#: Side of the window, 11 pixels; SSIM needs images at least this high and wide.
SSIM_WINDOW = 2 * SSIM_RADIUS + 1

# Pixels of the valid region that one strip of rows holds (64 rows of a 2048-wide image): about
# 1 MB per float64 plane, so that a strip's planes stay in the CPU's cache between the filters
# (measured: 2**16 and 2**17 are equally fast, 2**19 a quarter slower).
_STRIP_VALUES = 1 << 17
# Values per block in psnr's sum of squared differences (512 kB of float64).
_PSNR_BLOCK = 1 << 16


def gaussian_window(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> np.ndarray:
    """The 1-D taps of the Gaussian window, as scipy.ndimage (and so scikit-image) makes them.

    Parameters
    ----------
    sigma : float
        Standard deviation, in pixels.
    truncate : float
        Radius of the window in standard deviations; the radius in pixels is
        ``int(truncate * sigma + 0.5)``.

    Returns
    -------
    numpy.ndarray
        float64 taps of length ``2 * radius + 1``, summing to 1; the 2-D window is their outer
        product.
    """
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 / (sigma * sigma) * x * x)
    return taps / taps.sum()


def psnr(reference, estimate, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio of ``estimate`` against ``reference``, in dB.

    Equal to ``skimage.metrics.peak_signal_noise_ratio`` on float64 copies of the images
    (within 1e-10 dB), without making those copies: the differences are taken in float64 one
    block at a time and their squares summed (pairwise, in float64).

    Parameters
    ----------
    reference, estimate : numpy.ndarray
        Images of one shape, any number of dimensions (``(H, W)`` or ``(H, W, C)`` in the
        suite), float32 or float64. Not clipped here: clip the estimate first if the protocol
        says so.
    data_range : float
        Peak-to-peak range of the images' values; 1 for the suite's images.

    Returns
    -------
    float
        ``10 log10(data_range**2 / MSE)``; ``inf`` when the images are identical.

    Raises
    ------
    ValueError
        If the shapes differ or the images are empty.
    """
    reference, estimate = _as_pair(reference, estimate)
    if reference.size == 0:
        raise ValueError("cannot compute the PSNR of empty images")
    x = reference.reshape(-1)  # a view for contiguous images
    y = estimate.reshape(-1)
    block = np.empty(min(_PSNR_BLOCK, x.size), dtype=np.float64)
    total = 0.0
    for start in range(0, x.size, _PSNR_BLOCK):
        stop = min(start + _PSNR_BLOCK, x.size)
        diff = block[:stop - start]
        np.subtract(x[start:stop], y[start:stop], out=diff, dtype=np.float64)
        # Not np.dot: a threaded BLAS can stall on a busy machine.
        total += float(np.square(diff, out=diff).sum())
    return _psnr_from_mse(total / x.size, data_range)


def ssim(reference, estimate, *, data_range: float = 1.0) -> float:
    """Mean structural similarity of ``estimate`` against ``reference`` (Wang et al.).

    Gaussian window of sigma 1.5 truncated at 3.5 sigma (11 x 11), K1 0.01, K2 0.03, population
    (co)variances, the mean of the SSIM map over the valid region, the mean over channels for
    colour: equal to ``skimage.metrics.structural_similarity(reference, estimate,
    data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    channel_axis=-1 for colour)`` on float64 copies of the images, within 1e-6 (the module
    docstring explains the arithmetic).

    Parameters
    ----------
    reference, estimate : numpy.ndarray
        Images of one shape, ``(H, W)`` or ``(H, W, C)`` (channels last), float32 or float64,
        at least 11 x 11. ``reference`` is the clean image; SSIM is symmetric, so the order
        changes nothing but the wording.
    data_range : float
        Peak-to-peak range of the images' values; 1 for the suite's images.

    Returns
    -------
    float
        SSIM in [-1, 1]; exactly 1.0 for identical images.

    Raises
    ------
    ValueError
        If the shapes differ, the images are not 2-D or 3-D, or smaller than the window.
    """
    reference, estimate = _as_pair(reference, estimate)
    _ssim_extent(reference.shape)
    if reference.ndim == 2:
        return _ssim_plane(reference, estimate, data_range)
    # Channel by channel, on strided views (no copies), as scikit-image does: OpenCV filtered
    # the interleaved channels of a strip about 15 % slower than the three planes one by one.
    return float(np.mean([_ssim_plane(reference[..., c], estimate[..., c], data_range)
                          for c in range(reference.shape[2])]))


def _ssim_plane(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Mean SSIM map of two (H, W) images over the valid region, a strip of rows at a time."""
    height, width = x.shape
    r = SSIM_RADIUS
    valid_h, valid_w = height - 2 * r, width - 2 * r
    rows = max(8, min(valid_h, _STRIP_VALUES // valid_w))
    strips = _SsimStrips(rows, width, data_range)
    total = 0.0
    for top in range(0, valid_h, rows):
        bottom = min(top + rows, valid_h) + 2 * r
        total += strips.sum(x[top:bottom], y[top:bottom])
    return total / (valid_h * valid_w)


class _SsimStrips:
    """SSIM map of a strip of rows, summed over its valid region; reuses its planes.

    A strip holds ``rows`` rows of the valid region plus the window's radius above and below.
    Doubled quantities throughout (the factors of 2 cancel in the ratio):

    - ``b1 = E[t]**2 + E[d]**2 + 2 C1`` and ``a1 = E[t]**2 - E[d]**2 + 2 C1``;
    - ``b2 = var t + var d + 2 C2`` and ``a2 = var t - var d + 2 C2``;

    with ``t = x + y`` filtered in float64 and ``d = x - y`` in float32, unless ``E[d]**2`` is
    large against ``var t + 2 C2`` over the strip (an estimate biased over flat regions, where
    ``var d`` is a difference of nearly equal numbers): then ``d`` is filtered in float64, for
    this strip and the next ones until the bias goes away.
    """

    #: Largest mean over a strip of ``E[d]**2 / (var t + 2 C2)`` scored with float32 ``d``.
    #: float32 errs by up to about 10 * 2**-24 times that ratio on a pixel (measured on flat
    #: binary images with a constant offset, where the errors add up instead of cancelling), so
    #: 0.25 bounds the error of the mean by about 1.5e-7.
    max_bias = 0.25

    def __init__(self, rows: int, width: int, data_range: float):
        import cv2

        self._cv2 = cv2
        self.c1 = (SSIM_K1 * data_range) ** 2
        self.c2 = (SSIM_K2 * data_range) ** 2
        self.taps64 = gaussian_window()
        self.taps32 = self.taps64.astype(np.float32)
        full = (rows + 2 * SSIM_RADIUS, width)
        inner = (rows, width)
        self.t, self.tt, self.mean_t, self.mean_tt = (np.empty(full, np.float64) for _ in range(4))
        self.d, self.dd, self.mean_d, self.mean_dd = (np.empty(full, np.float32) for _ in range(4))
        self.a1, self.a2, self.b1, self.b2 = (np.empty(inner, np.float32) for _ in range(4))
        self.biased = False  # whether the last strip's difference needed float64

    def sum(self, x: np.ndarray, y: np.ndarray) -> float:
        """Sum of the SSIM map over the valid region of the strip ``x``, ``y`` (2-D)."""
        r = SSIM_RADIUS
        n = x.shape[0]
        m = n - 2 * r
        width = x.shape[1]
        inner = slice(r, n - r)
        t, tt, mean_t, mean_tt = self.t[:n], self.tt[:n], self.mean_t[:n], self.mean_tt[:n]
        a1, a2, b1, b2 = self.a1[:m], self.a2[:m], self.b1[:m], self.b2[:m]

        # The sum: var t = E[t^2] - E[t]^2 in float64, then float32 is enough.
        np.add(x, y, out=t, dtype=np.float64)
        np.multiply(t, t, out=tt)
        self._filter(t, self.taps64, mean_t)
        self._filter(tt, self.taps64, mean_tt)
        sq_t = np.multiply(mean_t[inner], mean_t[inner], out=t[:m])
        np.subtract(mean_tt[inner], sq_t, out=b2)
        b2 += 2 * self.c2
        np.add(sq_t, 2 * self.c1, out=b1)

        # The difference, in float32 unless the last strip found it biased (float64 images are
        # subtracted in float64, then rounded).
        d, dd, mean_d, mean_dd = self.d[:n], self.dd[:n], self.mean_d[:n], self.mean_dd[:n]
        precise = self.biased
        if not precise:
            np.subtract(x, y, out=d)
            np.multiply(d, d, out=dd)
            sq_d, var_d = self._moments(d, dd, self.taps32, mean_d, mean_dd)
            self.biased = self._bias(sq_d, b2) > self.max_bias
            precise = self.biased
        if precise:
            np.subtract(x, y, out=t, dtype=np.float64)
            np.multiply(t, t, out=tt)
            sq_d64, var_d64 = self._moments(t, tt, self.taps64, mean_t, mean_tt)
            sq_d, var_d = mean_d[inner], mean_dd[inner]
            np.copyto(sq_d, sq_d64, casting="same_kind")
            np.copyto(var_d, var_d64, casting="same_kind")
            self.biased = self._bias(sq_d, b2) > self.max_bias

        np.subtract(b1, sq_d, out=a1)
        b1 += sq_d
        np.subtract(b2, var_d, out=a2)
        b2 += var_d
        a1 *= a2
        b1 *= b2
        a1 /= b1
        return self._sum(a1[:, r:width - r])

    def _bias(self, sq_d, b2) -> float:
        """Mean of ``E[d]**2 / (var t + 2 C2)`` over every 4th row of the strip (an estimate
        that is cheap next to the filters; ``a1`` is scratch)."""
        scratch = self.a1[:sq_d.shape[0]:4]
        ratio = np.divide(sq_d[::4], b2[::4], out=scratch)
        return self._sum(ratio) / ratio.size

    def _sum(self, plane) -> float:
        """Sum of a float32 plane, accumulated in float64 (OpenCV's sum does that, four times
        faster than numpy's ``sum(dtype=float64)``)."""
        return float(self._cv2.sumElems(plane)[0])

    def _moments(self, d, dd, taps, mean_d, mean_dd):
        """``(E[d]**2, var d)`` over the strip's inner rows, in ``mean_d``'s and ``mean_dd``'s
        precision (written into them)."""
        r = SSIM_RADIUS
        n = d.shape[0]
        self._filter(d, taps, mean_d)
        self._filter(dd, taps, mean_dd)
        sq_d = np.multiply(mean_d[r:n - r], mean_d[r:n - r], out=mean_d[r:n - r])
        var_d = np.subtract(mean_dd[r:n - r], sq_d, out=mean_dd[r:n - r])
        return sq_d, var_d

    def _filter(self, plane, taps, out):
        """Separable Gaussian filter of the whole ``plane`` into ``out`` (same shape and type);
        the border rows and columns are not used."""
        cv2 = self._cv2
        result = cv2.sepFilter2D(plane, -1, taps, taps, dst=out, borderType=cv2.BORDER_REFLECT)
        if result is not out and not np.shares_memory(result, out):
            out[...] = result


def psnr_torch(reference, estimate, *, data_range: float = 1.0) -> float:
    """:func:`psnr` of two torch tensors, computed on their device in float64.

    Parameters
    ----------
    reference, estimate : torch.Tensor
        Tensors of one shape on one device, any layout (``(H, W)`` or ``(H, W, C)`` in the
        suite); values in the units of ``data_range``.
    data_range : float
        Peak-to-peak range of the values; 1 for the suite's images.

    Returns
    -------
    float
        PSNR in dB; ``inf`` when the tensors are identical. Equal to :func:`psnr` of the same
        values within 1e-10 dB.

    Raises
    ------
    ValueError
        If the shapes differ or the tensors are empty.
    """
    import torch

    reference, estimate = _tensor_pair(reference, estimate)
    if reference.numel() == 0:
        raise ValueError("cannot compute the PSNR of empty images")
    with torch.no_grad():
        diff = reference.to(torch.float64) - estimate.to(torch.float64)
        mse = float(torch.mean(diff * diff))
    return _psnr_from_mse(mse, data_range)


def ssim_torch(reference, estimate, *, data_range: float = 1.0) -> float:
    """:func:`ssim` of two torch tensors, computed on their device in float64 with ``conv2d``.

    The same protocol as :func:`ssim`: the separable 11-tap Gaussian window (sigma 1.5), two 1-D
    ``conv2d`` passes without padding (so only the valid region is computed), K1 0.01, K2 0.03,
    population (co)variances, the mean over the valid region and over channels. Float64 makes
    the plain formula exact; on devices without float64 (Apple's MPS) the tensors are scored on
    the CPU.

    Parameters
    ----------
    reference, estimate : torch.Tensor
        Tensors of one shape on one device, ``(H, W)`` or ``(H, W, C)`` with the channels last
        (the layout of the suite's images, not torch's ``(C, H, W)``), at least 11 x 11.
    data_range : float
        Peak-to-peak range of the values; 1 for the suite's images.

    Returns
    -------
    float
        SSIM in [-1, 1]; equal to :func:`ssim` of the same values within 1e-6.

    Raises
    ------
    ValueError
        If the shapes differ, the tensors are not 2-D or 3-D, or smaller than the window.
    """
    import torch
    import torch.nn.functional as F

    reference, estimate = _tensor_pair(reference, estimate)
    _ssim_extent(tuple(reference.shape))
    if reference.device.type == "mps":  # no float64 there
        reference, estimate = reference.cpu(), estimate.cpu()
    with torch.no_grad():
        # (H, W[, C]) -> (C, H, W), float64.
        x = reference.to(torch.float64)
        y = estimate.to(torch.float64)
        if x.ndim == 2:
            x, y = x[None], y[None]
        else:
            x, y = x.permute(2, 0, 1), y.permute(2, 0, 1)
        channels, height, width = x.shape
        # The five planes of every channel as the channels of one image, each filtered on its
        # own (groups) and without padding: (1, 5 C, H, W) -> (1, 5 C, H - 10, W - 10).
        planes = torch.cat([x, y, x * x, y * y, x * y])[None]
        groups = 5 * channels
        rows, columns = _ssim_kernels(x.device, groups)
        planes = F.conv2d(planes, rows, groups=groups)
        planes = F.conv2d(planes, columns, groups=groups)
        ux, uy, uxx, uyy, uxy = planes[0].split(channels)
        c1 = (SSIM_K1 * data_range) ** 2
        c2 = (SSIM_K2 * data_range) ** 2
        vx = uxx - ux * ux
        vy = uyy - uy * uy
        vxy = uxy - ux * uy
        ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)
                    / ((ux * ux + uy * uy + c1) * (vx + vy + c2)))
        return float(ssim_map.mean(dim=(1, 2)).mean())


# (device, groups) -> the row and column kernels of ssim_torch's grouped conv2d, float64: made
# once per device rather than uploaded with every call.
_SSIM_KERNELS: dict = {}


def _ssim_kernels(device, groups: int):
    """The 1-D Gaussian window as ``conv2d`` weights (groups, 1, 1, 11) and (groups, 1, 11, 1)."""
    import torch

    key = (str(device), groups)
    if key not in _SSIM_KERNELS:
        taps = torch.from_numpy(gaussian_window()).to(device)
        _SSIM_KERNELS[key] = (taps.view(1, 1, 1, -1).repeat(groups, 1, 1, 1),
                              taps.view(1, 1, -1, 1).repeat(groups, 1, 1, 1))
    return _SSIM_KERNELS[key]


def _psnr_from_mse(mse: float, data_range: float) -> float:
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range * data_range / mse)


def _as_pair(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float arrays (no copy for float32/float64); shapes must match."""
    reference = _as_float(reference)
    estimate = _as_float(estimate)
    if reference.shape != estimate.shape:
        raise ValueError(f"the images' shapes differ: reference {reference.shape}, "
                         f"estimate {estimate.shape}")
    return reference, estimate


def _as_float(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype not in (np.float32, np.float64):
        image = image.astype(np.float64)
    return image


def _tensor_pair(reference, estimate):
    if reference.shape != estimate.shape:
        raise ValueError(f"the images' shapes differ: reference {tuple(reference.shape)}, "
                         f"estimate {tuple(estimate.shape)}")
    if reference.device != estimate.device:
        raise ValueError(f"the tensors are on different devices: reference on "
                         f"{reference.device}, estimate on {estimate.device}")
    return reference.detach(), estimate.detach()


def _ssim_extent(shape: tuple[int, ...]) -> tuple[int, int]:
    """(H, W) of an SSIM input of ``shape``; a clear error for what SSIM cannot score."""
    if len(shape) not in (2, 3):
        raise ValueError(f"SSIM scores (H, W) or (H, W, C) images, got shape {shape}")
    height, width = shape[:2]
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise ValueError(
            f"SSIM's Gaussian window (sigma {SSIM_SIGMA}) is {SSIM_WINDOW}x{SSIM_WINDOW} pixels: "
            f"images must be at least that high and wide, got {height}x{width}")
    return height, width
