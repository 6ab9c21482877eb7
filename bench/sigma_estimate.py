"""Blind estimate of the Gaussian noise sigma in torch, on the image's own device.

The estimator of :func:`skimage.restoration.estimate_sigma`, written so that a tensor on a GPU
is not copied to the host to estimate its noise level: Donoho and Johnstone's median absolute
deviation of the finest diagonal detail coefficients of the 'db2' wavelet transform, divided by
the 0.75 quantile of the standard normal distribution. The transform is PyWavelets' ``dwtn``
with its default 'symmetric' extension, the one scikit-image uses: the same filter values,
output length, alignment, order of the axes and order of the sums, so that the coefficients
agree with PyWavelets' bit for bit where both round each product and sum in the image's
precision (``tests/bench/test_sigma_estimate.py``). As in scikit-image, coefficients exactly
zero are left out, the median of an even count is the mean of the two middle values, and a
colour image's sigma is the mean of its channels' sigmas.
"""

from __future__ import annotations

import numpy as np

#: PyWavelets' 'db2' decomposition high-pass filter (``pywt.Wavelet("db2").dec_hi``). Its table
#: differs from the closed form ((1 + sqrt 3) / (4 sqrt 2), ...) by about 1e-13: these values,
#: not the closed form, give PyWavelets' coefficients in float64.
DB2_DEC_HI = (-0.48296291314453416, 0.8365163037378079, -0.2241438680420134,
              -0.12940952255126037)

#: scipy.stats.norm.ppf(0.75), the MAD of a standard normal variable (scikit-image's divisor).
NORMAL_MAD = 0.6744897501960817


def estimate_sigma(image, *, channel_axis: int | None = None) -> float:
    """Estimate the standard deviation of white Gaussian noise in ``image``, on its device.

    Equal to ``skimage.restoration.estimate_sigma(image, channel_axis=channel_axis,
    average_sigmas=True)`` (within float rounding; bit for bit where both round alike), but
    computed with torch where the image lies: a tensor on a GPU stays there, and only the
    resulting number comes back to the host.

    Parameters
    ----------
    image : torch.Tensor or numpy.ndarray
        The noisy image, (H, W), or with one channel axis more when ``channel_axis`` is given.
        Any unit: the estimate is in the image's units ([0, 1] units for the suite's images).
        Float64 is computed in float64, other floating types in float32, integers in float64
        (PyWavelets' choices).
    channel_axis : int or None
        The axis of the channels, or None for a single-channel image.

    Returns
    -------
    float
        The estimated sigma in the image's units; with a channel axis, the mean of the
        channels' estimates. NaN when every detail coefficient is zero (a constant image).

    Raises
    ------
    ValueError
        When the image has not two spatial axes.

    References
    ----------
    .. [1] D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by wavelet shrinkage",
       Biometrika 81(3):425-455, 1994. :DOI:`10.1093/biomet/81.3.425`
    """
    import torch

    if isinstance(image, torch.Tensor):
        tensor = image.detach()
    else:
        array = np.asarray(image)
        if not array.flags.writeable:  # torch warns on read-only arrays; it never writes here
            array = array.copy()
        tensor = torch.from_numpy(array)
    if tensor.ndim != (2 if channel_axis is None else 3):
        axes = "two spatial axes" + ("" if channel_axis is None else " and a channel axis")
        raise ValueError(f"estimate_sigma needs an image with {axes}, "
                         f"got shape {tuple(tensor.shape)}")
    single = tensor.is_floating_point() and tensor.dtype != torch.float64
    tensor = tensor.to(torch.float32 if single else torch.float64)
    # (C, H, W), each plane contiguous: strided planes make every step below slower
    planes = tensor[None] if channel_axis is None else tensor.movedim(channel_axis, 0)
    planes = planes.contiguous()
    # PyWavelets' dwtn filters axis 0, then axis 1: the same order rounds the same way.
    detail = _high_pass_along(_high_pass_along(planes, 1), 2)
    sigmas = [_median_abs_nonzero(plane) / NORMAL_MAD for plane in detail.abs()]
    return sum(sigmas) / len(sigmas)


def _high_pass_along(planes, dim: int):
    """The 'db2' high-pass filter along ``dim`` of ``planes``, downsampled by 2, as
    ``pywt.dwt(..., "db2", mode="symmetric")`` computes its detail coefficients.

    PyWavelets gives ``floor((n + 3) / 2)`` coefficients, the o-th being
    ``sum(DB2_DEC_HI[j] * x[2 o + 1 - j] for j in 0..3)``, summed in that order but for the
    last one of an odd length (below), where ``x`` is extended by half-sample symmetry
    (``x[-1] = x[0]``, ``x[n] = x[n - 1]``), repeatedly for signals shorter than the filter.
    """
    import torch

    n = planes.shape[dim]
    count = (n + 3) // 2
    # x[-2], x[-1] and x[n] .. x[2 count - 1], folded back into 0 .. n - 1; the image itself
    # is copied in whole (a gather along the last axis is many times slower than a copy)
    device = planes.device
    outside = torch.cat([torch.arange(-2, 0, device=device),
                         torch.arange(n, 2 * count, device=device)]) % (2 * n)
    outside = torch.where(outside >= n, 2 * n - 1 - outside, outside)
    edges = planes.index_select(dim, outside)
    extended = torch.cat([edges.narrow(dim, 0, 2), planes, edges.narrow(dim, 2, 2 * count - n)],
                         dim)  # extended[p] is x[p - 2]
    # Products and sums as separate elementwise operations, not a convolution: a convolution
    # may sum in another order, and on recent GPUs runs in TF32 by default (10-bit mantissa).
    total = None
    for j, tap in enumerate(DB2_DEC_HI):
        start = 3 - j  # x[2 o + 1 - j] is extended[2 o + 3 - j]
        taken = extended.narrow(dim, start, 2 * count - 1)
        term = taken[(slice(None),) * dim + (slice(None, None, 2),)] * tap
        total = term if total is None else total + term
    if n % 2:
        # PyWavelets' right-edge loop adds the taps that reach past the end first, backwards:
        # the last coefficient of an odd length is summed as taps 2, 1, 0, 3 (other orders
        # differ from the ascending one by the swap of two terms, which rounds alike).
        def product(j):
            return extended.narrow(dim, 2 * count + 1 - j, 1) * DB2_DEC_HI[j]

        total.narrow(dim, count - 1, 1).copy_(product(2) + product(1) + product(0) + product(3))
    return total


def _median_abs_nonzero(magnitudes) -> float:
    """numpy's median of the nonzero entries of ``magnitudes`` (absolute values), as a float.

    ``torch.median`` gives the lower of the two middle values of an even count; numpy, and so
    scikit-image, gives their mean (in the array's precision), as here.
    """
    import torch

    flat = magnitudes.flatten()
    # The zeros are the smallest magnitudes: rather than copying the others out, shift the
    # ranks past them.
    zeros = int((flat == 0).sum())
    count = flat.numel() - zeros
    if count == 0:
        return float("nan")  # numpy's median of nothing (scikit-image warns, then gives NaN)
    rank = zeros + (count + 1) // 2
    lower = torch.kthvalue(flat, rank).values
    if count % 2:
        return float(lower)
    # The next rank without a second selection: the lower value again when it is repeated,
    # else the smallest value above it.
    above = flat.masked_fill(flat <= lower, float("inf")).min()
    upper = torch.where((flat <= lower).sum() > rank, lower, above)
    return float((lower + upper) / 2)
