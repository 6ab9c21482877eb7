"""Overlapping tiles, so a network's memory stays bounded whatever the image size.

The image is cut into windows of at most ``tile`` pixels a side whose cores tile the image
exactly; each window extends its core by ``overlap`` pixels on every side that is inside
the image. When ``overlap`` is at least the network's receptive radius and window origins
are multiples of the network's :attr:`multiple` (its total downsampling), each core pixel
sees the same input as in a whole-image pass, so tiled and untiled outputs agree up to
floating-point summation order. Windows of the same shape are batched into one forward pass.
"""

from __future__ import annotations

import math

from bench.errors import InvalidParameterError


def windows_1d(length: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int, int, int]]:
    """Split ``[0, length)`` into windows and their cores.

    Parameters
    ----------
    length : int
        Image side in pixels.
    tile : int
        Largest window side in pixels (rounded down to a multiple of ``multiple``).
    overlap : int
        Context kept on each inner side of a core (rounded up to a multiple of ``multiple``).
    multiple : int
        Window and core origins are multiples of this.

    Returns
    -------
    list of (window_start, window_stop, core_start, core_stop)
        One window covering everything when ``length <= tile``.
    """
    if length <= tile:
        return [(0, length, 0, length)]
    overlap = math.ceil(overlap / multiple) * multiple
    tile = tile // multiple * multiple
    step = tile - 2 * overlap
    if step < multiple:
        raise InvalidParameterError(
            f"tile {tile} is too small for an overlap of {overlap} pixels on each side; "
            f"use a tile of at least {2 * overlap + multiple}")
    out = []
    for core in range(0, length, step):
        stop = min(core + step, length)
        out.append((max(0, core - overlap), min(length, stop + overlap), core, stop))
    return out


def tiled_apply(function, x, sigma, *, tile: int, overlap: int, multiple: int = 1,
                batch: int = 8):
    """Apply ``function(x_batch, sigma_batch)`` to ``x`` tile by tile.

    Parameters
    ----------
    function : callable
        Maps a tensor (n, C, h, w) and noise levels (n,) to a tensor (n, C, h, w).
    x : torch.Tensor
        Images (N, C, H, W).
    sigma : torch.Tensor
        Noise levels (N,), one per image.
    tile, overlap, multiple : int
        See :func:`windows_1d`.
    batch : int
        Most windows (counting every image's) in one call of ``function``.

    Returns
    -------
    torch.Tensor
        (N, C, H, W), float32, the cores of the windows put together.
    """
    import torch

    n, channels, height, width = x.shape
    rows = windows_1d(height, tile, overlap, multiple)
    cols = windows_1d(width, tile, overlap, multiple)
    if len(rows) == 1 and len(cols) == 1:
        parts = [function(x[i:i + batch], sigma[i:i + batch]).float() for i in range(0, n, batch)]
        return torch.cat(parts) if len(parts) > 1 else parts[0]
    out = torch.empty((n, channels, height, width), dtype=torch.float32, device=x.device)
    groups: dict[tuple[int, int], list[tuple]] = {}
    for row in rows:
        for col in cols:
            for image in range(n):
                shape = (row[1] - row[0], col[1] - col[0])
                groups.setdefault(shape, []).append((image, row, col))
    for items in groups.values():
        for start in range(0, len(items), batch):
            chunk = items[start:start + batch]
            crops = torch.stack([x[i, :, r[0]:r[1], c[0]:c[1]] for i, r, c in chunk])
            levels = torch.stack([sigma[i] for i, _, _ in chunk])
            result = function(crops, levels)
            for k, (i, r, c) in enumerate(chunk):
                out[i, :, r[2]:r[3], c[2]:c[3]] = result[
                    k, :, r[2] - r[0]:r[3] - r[0], c[2] - c[0]:c[3] - c[0]]
    return out
