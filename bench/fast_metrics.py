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

``var d`` is computed in float32 (two float32 filters), which is exact enough while ``d`` is
small next to its local spread; every other rounding error is relative to the denominators,
under 1e-7 on one pixel. Where the estimate is biased over flat regions (a constant offset, say)
``E[d]**2`` dwarfs ``var d``; a strip of rows where it does is filtered again with ``d`` in
float64. ``var t`` is computed in float64 (two float64 filters) on small images and on strips
with many repeated values (clipped, saturated, binary, quantised), and in float32 on ``t`` minus
the strip's mean elsewhere, where the single pixels' rounding errors (up to 1e-4) have random
signs and average out over the at least 2**16 pixels required (``_SsimStrips`` says more). The
mean differs from scikit-image's by less than 1e-7 on every image ``tests/bench/
test_fast_metrics.py`` and ``tests/bench/test_ssim_precision.py`` try (real, binary, synthetic,
gray and colour; noisy at sigma 5-75, clipped, smoothed, offset, real camera noise; float32 and
float64); the plain float32 formula misses 1e-6 on some of them.

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

# Rows of the valid region in one strip of rows, and at most that many pixels: 128 rows of a
# 2048-wide image (2 MB per float64 plane). Taller strips waste less of the filters' work on the
# window's radius above and below (10 rows per strip); smaller ones stay in the CPU's cache.
# Measured (CPU time, one thread): 128 rows beat 32 or 64 by 10 % on 2048 x 2048 and 256 or
# 512 rows by 5-20 % on 512 x 512.
_STRIP_ROWS = 128
_STRIP_VALUES = 1 << 18
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
    height, width = reference.shape[:2]
    valid_h = height - 2 * SSIM_RADIUS
    rows = max(8, min(_STRIP_ROWS, _STRIP_VALUES // (width - 2 * SSIM_RADIUS)))
    if valid_h < 2 * rows:  # one strip rather than a short second one (180 x 180 images)
        rows = valid_h
    strips = _SsimStrips(rows, width, data_range)
    if reference.ndim == 2:
        return _ssim_plane(reference, estimate, strips)
    # Channel by channel, on strided views (no copies), as scikit-image does: OpenCV filtered
    # the interleaved channels of a strip about 15 % slower than the three planes one by one.
    return float(np.mean([_ssim_plane(reference[..., c], estimate[..., c], strips)
                          for c in range(reference.shape[2])]))


def _ssim_plane(x: np.ndarray, y: np.ndarray, strips: "_SsimStrips") -> float:
    """Mean SSIM map of two (H, W) images over the valid region, a strip of rows at a time."""
    height, width = x.shape
    r = SSIM_RADIUS
    valid_h, valid_w = height - 2 * r, width - 2 * r
    rows = strips.rows
    strips.biased = False
    strips.fast = valid_h * valid_w >= strips.min_fast_pixels
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

    ``d = x - y`` is filtered in float32, unless ``E[d]**2`` is large against ``var t + 2 C2``
    over the strip (an estimate biased over flat regions, where ``var d`` is a difference of
    nearly equal numbers): then ``d`` is filtered in float64, for this strip and the next ones
    until the bias goes away.

    ``t = x + y`` is filtered in float32 after subtracting the strip's mean of ``t`` (the shift
    cancels in ``var t`` and is added back to ``E[t]``), which is half the time of float64, when
    the plane has at least ``min_fast_pixels`` pixels and the strip few repeated values;
    otherwise in float64. Why both conditions: float32 errs by up to about 1e-7 on ``var t``,
    which a flat, noisy region (``var d`` near ``C2``) turns into up to 1e-4 on one pixel of the
    map. On natural images these errors have random signs, and the mean over 2**16 pixels or more
    stays within 1e-7 of scikit-image's (``tests/bench/test_ssim_precision.py``: Set12, Train400,
    PolyU20, noise sigma 5-75, clipped, smoothed, real noise); on few pixels (the 11 x 11 and
    37 x 31 cases of ``tests/bench/test_fast_metrics.py``) they do not average out, and where
    values repeat (binary images, clipped or saturated regions, 8-bit quantised estimates) the
    same rounding error repeats and adds up (1.6e-6 on scikit-image's ``horse``). The strips
    filtered in float64 cost what they did before.

    Fewer passes over memory than the plain formula: the filters work in place; the second
    moments are filtered with the taps negated (and ``-2 C2`` as OpenCV's ``delta``), so that
    one fused ``accumulateSquare`` leaves ``-(var t + 2 C2)`` and ``-var d``; everything after
    that cancellation is float32.
    """

    #: Largest mean over a strip of ``E[d]**2 / (var t + 2 C2)`` scored with float32 ``d``.
    #: float32 errs by up to about 10 * 2**-24 times that ratio on a pixel (measured on flat
    #: binary images with a constant offset, where the errors add up instead of cancelling), so
    #: 0.25 bounds the error of the mean by about 1.5e-7.
    max_bias = 0.25

    #: Fewest pixels in the valid region of a plane for the sum to be filtered in float32 (the
    #: rounding errors of single pixels, up to 1e-4, average out over many pixels, not few).
    min_fast_pixels = 1 << 16
    #: A strip where more than 1 in ``max_repeats`` pairs of neighbours along the rows hold the
    #: same ``t`` (clipped, saturated, flat or quantised regions, where the float32 rounding
    #: errors repeat and add up instead of cancelling) filters the sum in float64. Measured:
    #: 1 in 64 keeps every image of the precision tests within 1e-7 (binary ``horse`` falls back;
    #: a noisy ``camera`` clipped at sigma 25, 0.5-1.3 % repeats in its dark rows, does not).
    max_repeats = 64

    def __init__(self, rows: int, width: int, data_range: float):
        import cv2

        self._cv2 = cv2
        self.rows = rows
        self.c1 = (SSIM_K1 * data_range) ** 2
        self.c2 = (SSIM_K2 * data_range) ** 2
        self.taps64 = gaussian_window()
        self.taps32 = self.taps64.astype(np.float32)
        full = (rows + 2 * SSIM_RADIUS, width)
        self.t, self.tt = np.empty((2,) + full, np.float64)
        self.t32, self.tt32 = np.empty((2,) + full, np.float32)
        self.fast = False  # whether this plane may filter the sum in float32
        self.d, self.dd = np.empty((2,) + full, np.float32)
        self.e1, self.e2, self.e3 = np.empty((3, rows, width - 2 * SSIM_RADIUS), np.float32)
        self.d64 = None  # float64 planes for a biased difference, made when first needed
        self.biased = False  # whether the last strip's difference needed float64

    def sum(self, x: np.ndarray, y: np.ndarray) -> float:
        """Sum of the SSIM map over the valid region of the strip ``x``, ``y`` (2-D)."""
        cv2 = self._cv2
        r = SSIM_RADIUS
        n, width = x.shape
        m = n - 2 * r
        inner = (slice(r, n - r), slice(r, width - r))
        t, tt, d, dd = self.t[:n], self.tt[:n], self.d[:n], self.dd[:n]
        e1, e2, e3 = self.e1[:m], self.e2[:m], self.e3[:m]

        # The sum: mean_t = E[t] - shift, neg_var_t = E[t]**2 - E[t**2] - 2 C2; in float32 from
        # t - shift (shift: the strip's mean of t) where allowed (see the class docstring), else
        # in float64. numpy for inputs that are strided views or of two float types.
        same = x.dtype == y.dtype and x.strides[1] == y.strides[1] == x.itemsize
        shift = 0.0
        precise_t = not self.fast
        if not precise_t:
            shift = float(x[::8, ::8].mean(dtype=np.float64) + y[::8, ::8].mean(dtype=np.float64))
            t, tt = self.t32[:n], self.tt32[:n]
            if same:
                cv2.addWeighted(x, 1.0, y, 1.0, -shift, dst=t, dtype=cv2.CV_32F)
            else:
                np.add(x, y, out=t, casting="same_kind")
                t -= np.float32(shift)
            repeats = cv2.countNonZero(cv2.compare(t[:, 1:], t[:, :-1], cv2.CMP_EQ))
            precise_t = repeats * self.max_repeats > n * (width - 1)
        if precise_t:
            shift = 0.0
            t, tt = self.t[:n], self.tt[:n]
            np.add(x, y, out=t, dtype=np.float64)
        np.multiply(t, t, out=tt)
        taps = self.taps64 if precise_t else self.taps32
        self._filter(t, taps)
        self._filter(tt, taps, negate=True, delta=-2 * self.c2)
        mean_t, neg_var_t = t[inner], tt[inner]
        cv2.accumulateSquare(mean_t, neg_var_t)
        np.copyto(e2, neg_var_t, casting="same_kind")  # -(var t + 2 C2), now float32 is enough

        # The difference, in float32 unless the last strip found it biased (float64 images are
        # subtracted in float64, then rounded): mean_d = E[d], neg_var_d = -var d.
        mean_d, neg_var_d = d[inner], dd[inner]
        precise = self.biased
        if not precise:
            if same:
                cv2.subtract(x, y, dst=d, dtype=cv2.CV_32F)  # numpy's cast is slower
            else:
                np.subtract(x, y, out=d, casting="same_kind")
            np.multiply(d, d, out=dd)
            self._filter(d, self.taps32)
            self._filter(dd, self.taps32, negate=True)
            cv2.accumulateSquare(mean_d, neg_var_d)
            self.biased = precise = self._bias(mean_d, e2, e1) > self.max_bias
        if precise:
            if self.d64 is None:
                self.d64 = np.empty((2,) + self.t.shape)
            d64, dd64 = self.d64[:, :n]
            np.subtract(x, y, out=d64, dtype=np.float64)
            np.multiply(d64, d64, out=dd64)
            self._filter(d64, self.taps64)
            self._filter(dd64, self.taps64, negate=True)
            cv2.accumulateSquare(d64[inner], dd64[inner])
            np.copyto(mean_d, d64[inner], casting="same_kind")
            np.copyto(neg_var_d, dd64[inner], casting="same_kind")
            self.biased = self._bias(mean_d, e2, e1) > self.max_bias

        # The map, in float32, from -b2 (the sign is undone on the sum).
        a2, neg_b2 = neg_var_d, e3
        cv2.add(e2, neg_var_d, dst=neg_b2)                 # -(var t + var d + 2 C2)
        cv2.subtract(neg_var_d, e2, dst=a2)                # var t - var d + 2 C2
        sq_t, sq_d = e1, mean_d
        np.copyto(sq_t, mean_t, casting="same_kind")
        if shift:
            sq_t += np.float32(shift)
        cv2.multiply(sq_t, sq_t, dst=sq_t)
        cv2.multiply(mean_d, mean_d, dst=sq_d)
        b1, a1 = e2, sq_d
        cv2.addWeighted(sq_t, 1.0, sq_d, 1.0, 2 * self.c1, dst=b1)
        cv2.addWeighted(sq_t, 1.0, sq_d, -1.0, 2 * self.c1, dst=a1)
        cv2.multiply(a1, a2, dst=a1)
        cv2.multiply(b1, neg_b2, dst=b1)
        cv2.divide(a1, b1, dst=a1)
        return -self._sum(a1)

    def _bias(self, mean_d, neg_b2, scratch) -> float:
        """Mean of ``E[d]**2 / (var t + 2 C2)`` over every 4th row of the strip (an estimate
        that is cheap next to the filters)."""
        cv2 = self._cv2
        rows = slice(None, None, 4)
        ratio = cv2.multiply(mean_d[rows], mean_d[rows], dst=scratch[rows])
        cv2.divide(ratio, neg_b2[rows], dst=ratio)
        return -self._sum(ratio) / ratio.size

    def _sum(self, plane) -> float:
        """Sum of a float32 plane, accumulated in float64 (OpenCV's sum does that, four times
        faster than numpy's ``sum(dtype=float64)``)."""
        return float(self._cv2.sumElems(plane)[0])

    def _filter(self, plane, taps, *, negate=False, delta=0.0):
        """Separable Gaussian filter of the whole ``plane`` in place, times -1 if ``negate``,
        plus ``delta``; the border rows and columns are not used."""
        cv2 = self._cv2
        row_taps = -taps if negate else taps
        result = cv2.sepFilter2D(plane, -1, row_taps, taps, dst=plane, delta=delta,
                                 borderType=cv2.BORDER_REFLECT)
        if result is not plane and not np.shares_memory(result, plane):
            plane[...] = result


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
