"""Network architectures of the learned denoisers: layers only, no files, no devices.

Every network maps a batch ``(N, C, H, W)`` of noisy images in [0, 1] units (values may leave
[0, 1]) to a batch of denoised images of the same shape, for any ``H`` and ``W`` of at least
2 pixels. :attr:`receptive_radius` says how far (in input pixels) an output pixel can see, and
:attr:`multiple` the grid that tile origins must respect for tiled inference to agree
with a whole-image pass.

References
----------
.. [1] K. Zhang, W. Zuo, Y. Chen, D. Meng, L. Zhang, "Beyond a Gaussian Denoiser: Residual
   Learning of Deep CNN for Image Denoising", IEEE TIP 26(7), 2017 (DnCNN).
.. [2] K. Zhang, W. Zuo, L. Zhang, "FFDNet: Toward a Fast and Flexible Solution for CNN-Based
   Image Denoising", IEEE TIP 27(9), 2018; M. Tassano, J. Delon, T. Veit, "An Analysis and
   Implementation of the FFDNet Image Denoising Method", IPOL 9, 2019.
.. [3] P. Vincent, H. Larochelle, Y. Bengio, P.-A. Manzagol, "Extracting and Composing Robust
   Features with Denoising Autoencoders", ICML 2008; X.-J. Mao, C. Shen, Y.-B. Yang, "Image
   Restoration Using Very Deep Convolutional Encoder-Decoder Networks", NeurIPS 2016.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int, *, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=bias)


def _plain_body(cin: int, cout: int, depth: int, width: int) -> list[nn.Module]:
    """Conv+ReLU, then ``depth - 2`` times Conv+BN+ReLU, then Conv: the DnCNN body."""
    layers: list[nn.Module] = [_conv(cin, width, bias=False), nn.ReLU(inplace=True)]
    for _ in range(depth - 2):
        layers += [_conv(width, width, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
    layers.append(_conv(width, cout, bias=False))
    return layers


def initialise(module: nn.Module, last_scale: float = 0.1) -> None:
    """He (Kaiming) normal initialisation for convolutions, unit BN scales, zero biases.

    The last convolution is multiplied by ``last_scale``: 0 makes an untrained residual
    network exactly the identity map, which trains faster than a random residual.
    """
    convs = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    for conv in convs:
        nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
    with torch.no_grad():
        convs[-1].weight.mul_(last_scale)
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            nn.init.ones_(bn.weight)
            nn.init.zeros_(bn.bias)


class DnCNN(nn.Module):
    """DnCNN [1]_: a plain convolutional network that predicts the noise, subtracted from the input.

    Parameters
    ----------
    depth : int
        Number of 3x3 convolution layers (17 for the paper's DnCNN-S, 20 for DnCNN-B).
    width : int
        Feature channels of the hidden layers (64 in the paper).
    channels : int
        Image channels (1 for grayscale).
    """

    uses_sigma = False

    def __init__(self, depth: int = 17, width: int = 64, channels: int = 1):
        super().__init__()
        if depth < 3:
            raise ValueError(f"DnCNN needs at least 3 layers, got {depth}")
        self.body = nn.Sequential(*_plain_body(channels, channels, depth, width))
        self.receptive_radius = depth
        self.multiple = 1
        initialise(self, last_scale=0.0)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        return x - self.body(x)


class _IntermediateDnCNN(nn.Module):
    # The attribute keeps the IPOL code's spelling ("itermediate") so that the published
    # FFDNet weights load into this class with their own keys.
    def __init__(self, cin: int, cout: int, depth: int, width: int):
        super().__init__()
        self.itermediate_dncnn = nn.Sequential(*_plain_body(cin, cout, depth, width))

    def forward(self, x):
        return self.itermediate_dncnn(x)


class FFDNet(nn.Module):
    """FFDNet [2]_: a DnCNN body at half resolution with the noise level as an input map.

    The image is split into its four 2x2 polyphase components (``pixel_unshuffle``), the noise
    standard deviation is appended as ``channels`` constant maps, the body predicts the noise
    of the four components and ``pixel_shuffle`` puts it back at full resolution. Odd sides
    are padded by one reflected row or column and cropped back. With ``channels=1, depth=15,
    width=64`` (gray) or ``channels=3, depth=12, width=96`` (colour) its state dict has the
    keys of the IPOL implementation's published weights.

    Parameters
    ----------
    depth : int
        Number of 3x3 convolution layers at half resolution.
    width : int
        Feature channels of the hidden layers.
    channels : int
        Image channels (1 gray, 3 colour).
    """

    uses_sigma = True

    def __init__(self, depth: int = 15, width: int = 64, channels: int = 1):
        super().__init__()
        if depth < 3:
            raise ValueError(f"FFDNet needs at least 3 layers, got {depth}")
        self.channels = channels
        self.intermediate_dncnn = _IntermediateDnCNN(5 * channels, 4 * channels, depth, width)
        self.receptive_radius = 2 * depth + 2
        self.multiple = 2
        initialise(self, last_scale=0.0)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` (N, C, H, W) given ``sigma``, one noise level per image, in [0, 1] units."""
        height, width = x.shape[-2:]
        pad_h, pad_w = height % 2, width % 2
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        down = F.pixel_unshuffle(x, 2)
        level = sigma.to(x.dtype).reshape(-1, 1, 1, 1)
        noise_map = level.expand(x.shape[0], self.channels, down.shape[-2], down.shape[-1])
        noise = F.pixel_shuffle(self.intermediate_dncnn(torch.cat((noise_map, down), dim=1)), 2)
        return (x - noise)[..., :height, :width]


class ConvAutoencoder(nn.Module):
    """Convolutional denoising autoencoder [3]_: strided encoder, transposed-conv decoder.

    The encoder halves the resolution ``levels`` times with stride-2 convolutions, doubling
    the channels each time, down to a bottleneck; the decoder mirrors it with stride-2
    transposed convolutions back to the image. There are no skip connections: everything
    passes through the bottleneck. Any size works: the input is reflect-padded to a multiple
    of ``2**levels`` and the output cropped back.

    Parameters
    ----------
    width : int
        Channels at full resolution (doubled at each level).
    levels : int
        Number of downsampling steps (bottleneck at ``1 / 2**levels`` resolution).
    channels : int
        Image channels.
    """

    uses_sigma = False

    def __init__(self, width: int = 32, levels: int = 2, channels: int = 1):
        super().__init__()
        enc: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        c = width
        for _ in range(levels):
            enc += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True),
                    nn.Conv2d(2 * c, 2 * c, 3, padding=1, bias=False),
                    nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True)]
            c *= 2
        dec: list[nn.Module] = []
        for _ in range(levels):
            dec += [nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True),
                    nn.Conv2d(c // 2, c // 2, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True)]
            c //= 2
        dec.append(nn.Conv2d(c, channels, 3, padding=1))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.multiple = 2 ** levels
        # Each level adds (3 + 3 + 3) pixels of its own resolution, plus the two outer 3x3s.
        self.receptive_radius = 2 + sum(4 * 2 ** k for k in range(1, levels + 1))
        initialise(self)
        with torch.no_grad():  # start near mid-grey rather than at zero
            self.decoder[-1].bias.fill_(0.5)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % self.multiple, (-width) % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        return self.decoder(self.encoder(x))[..., :height, :width]


#: Architecture name (as written in model cards) to class.
ARCHITECTURES = {"DnCNN": DnCNN, "FFDNet": FFDNet, "ConvAutoencoder": ConvAutoencoder}
