"""Geometric self-ensemble: average a network's outputs over flips and rotations of its input.

A denoiser trained with flip/rotation augmentation should be equivariant to the eight
symmetries of the square, but a finite network only approximately is; denoising each
transformed copy, transforming the result back and averaging removes part of its error
(Timofte et al., "Seven ways to improve example-based single image super resolution",
CVPR 2016; used as "x8" in EDSR, RIDNet and DRUNet tables). It costs one forward pass per
transform.
"""

from __future__ import annotations

#: The eight symmetries as (quarter turns, horizontal flip), ordered so that the first 2 are
#: {identity, h-flip}, the first 4 the flips (shape-preserving) and all 8 the dihedral group.
TRANSFORMS = ((0, False), (0, True), (2, False), (2, True),
              (1, False), (1, True), (3, False), (3, True))
#: Allowed ensemble sizes.
SIZES = (1, 2, 4, 8)


def _forward(x, turns: int, flip: bool):
    import torch

    x = torch.rot90(x, turns, dims=(-2, -1)) if turns else x
    return x.flip(-1) if flip else x


def _inverse(x, turns: int, flip: bool):
    import torch

    x = x.flip(-1) if flip else x
    return torch.rot90(x, -turns, dims=(-2, -1)) if turns else x


def self_ensemble_apply(run, x, size: int):
    """Average ``run`` over the first ``size`` transforms of :data:`TRANSFORMS`.

    Parameters
    ----------
    run : callable
        Maps a tensor (N, C, H, W) to a float32 tensor of the same shape (or, for a quarter
        turn, (N, C, W, H)).
    x : torch.Tensor
        Images (N, C, H, W).
    size : int
        One of :data:`SIZES`; 1 is a single plain call.

    Returns
    -------
    torch.Tensor
        The mean of the back-transformed outputs, (N, C, H, W).
    """
    if size not in SIZES:
        raise ValueError(f"self-ensemble size must be one of {SIZES}, got {size}")
    total = None
    for turns, flip in TRANSFORMS[:size]:
        out = _inverse(run(_forward(x, turns, flip)), turns, flip)
        total = out if total is None else total.add_(out)
    return total / size if size > 1 else total
