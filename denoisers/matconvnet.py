"""MatConvNet ``simplenn`` networks saved by MATLAB (v7.3): read with h5py, run in torch.

The DnCNN authors released their trained models as MatConvNet ``simplenn`` networks in
MATLAB v7.3 files, which are HDF5 files: ``net/layers`` is a cell array of references to
structs, each with a ``type`` (``'conv'``, ``'relu'``, ...) and, for a convolution,
``weights`` = ``{filters, biases}``, ``pad`` and ``stride``. Reading them needs only h5py
(nothing is unpickled, no MATLAB code runs). Two things to know about the layout:

- MATLAB stores arrays column-major, so h5py returns every array with its axes reversed: a
  MATLAB filter bank ``[kh, kw, in, out]`` reads as ``(out, in, kw, kh)``;
- MATLAB drops trailing singleton dimensions: the last convolution of a grayscale DnCNN
  (one output channel) is stored as ``[kh, kw, in]``.

:func:`read_simplenn` returns the layers with filters in torch's ``(out, in, kh, kw)``
layout; :func:`conv_chain` checks that they form a chain of 3x3 convolutions with ReLUs
between (batch normalisation merged into the convolutions, as in the released test models),
and :class:`ResidualConvChain` is that chain as a torch network that predicts the noise and
returns the input minus the prediction. Any problem is a :class:`bench.errors.WeightsError`
naming the file.

References
----------
A. Vedaldi, K. Lenc, "MatConvNet: Convolutional Neural Networks for MATLAB", ACM MM 2015.
K. Zhang, W. Zuo, Y. Chen, D. Meng, L. Zhang, "Beyond a Gaussian Denoiser: Residual
Learning of Deep CNN for Image Denoising", IEEE TIP 26(7), 2017 (DnCNN).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.errors import MissingExtraError, WeightsError

#: Install hint for h5py, the reader of MATLAB v7.3 files.
H5PY_HINT = "pip install 'denoise-bench[matlab]'"


@dataclass(frozen=True)
class ConvLayer:
    """A MatConvNet convolution, in torch's layout.

    Attributes
    ----------
    weight : numpy.ndarray
        Filters, float32, ``(out, in, kh, kw)``.
    bias : numpy.ndarray
        Biases, float32, ``(out,)`` (zeros where the file has none).
    pad : tuple of int
        Zero padding (top, bottom, left, right), pixels.
    stride : tuple of int
        Stride (vertical, horizontal), pixels.
    dilate : tuple of int
        Dilation (vertical, horizontal).
    """

    weight: np.ndarray
    bias: np.ndarray
    pad: tuple[int, int, int, int]
    stride: tuple[int, int]
    dilate: tuple[int, int]


@dataclass(frozen=True)
class ReLULayer:
    """A MatConvNet ReLU; ``leak`` is the slope for negative inputs (0: plain ReLU)."""

    leak: float = 0.0


def read_simplenn(path: str | Path) -> list[ConvLayer | ReLULayer]:
    """Read the layers of a MatConvNet ``simplenn`` network from a MATLAB v7.3 file.

    Parameters
    ----------
    path : str or Path
        The ``.mat`` file (MATLAB v7.3, i.e. HDF5), holding a struct ``net`` with a cell
        array ``layers``.

    Returns
    -------
    list of ConvLayer or ReLULayer
        The layers in order.

    Raises
    ------
    WeightsError
        When the file is missing, not a v7.3 MAT-file, truncated, or not a ``simplenn``
        network of ``conv`` and ``relu`` layers; the message names the file.
    MissingExtraError
        When h5py is not installed.
    """
    try:
        import h5py
    except ImportError:
        raise MissingExtraError(f"reading MATLAB files needs h5py: {H5PY_HINT}") from None

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' is missing")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise WeightsError(f"weights file '{path}' {_not_hdf5_reason(path)} ({error})") from None
    try:
        with handle:
            return _layers(handle, path)
    except WeightsError:
        raise
    except Exception as error:  # KeyError, OSError, ValueError, TypeError: damaged structure
        raise WeightsError(f"weights file '{path}' is damaged or not a MatConvNet simplenn "
                           f"network ({type(error).__name__}: {error})") from None


def conv_chain(layers: list[ConvLayer | ReLULayer], source: str | Path) -> list[ConvLayer]:
    """Check that ``layers`` are 3x3 convolutions with plain ReLUs between; return the convolutions.

    Every convolution must keep the image size (3x3 filters, padding 1 on every side, stride
    1, no dilation) and each must take the previous one's output channels.

    Raises
    ------
    WeightsError
        Naming ``source`` and the first layer (counted from 1) that does not fit.
    """
    if not layers:
        raise WeightsError(f"weights file '{source}' holds a network without layers")
    convs = []
    for index, layer in enumerate(layers):
        expect_conv = index % 2 == 0
        where = f"weights file '{source}', layer {index + 1} of {len(layers)}"
        if isinstance(layer, ReLULayer):
            if expect_conv:
                raise WeightsError(f"{where}: a ReLU where a convolution was expected "
                                   "(expected convolutions with ReLUs between)")
            if layer.leak != 0:
                raise WeightsError(f"{where}: a leaky ReLU (leak {layer.leak:g}); "
                                   "only plain ReLUs are supported")
            continue
        if not expect_conv:
            raise WeightsError(f"{where}: two convolutions without a ReLU between")
        kernel = layer.weight.shape[2:]
        if kernel != (3, 3) or layer.pad != (1, 1, 1, 1) or layer.stride != (1, 1) \
                or layer.dilate != (1, 1):
            raise WeightsError(
                f"{where}: a {kernel[0]}x{kernel[1]} convolution with pad {layer.pad}, stride "
                f"{layer.stride}, dilation {layer.dilate}; expected 3x3, pad 1, stride 1, "
                "dilation 1")
        if convs and layer.weight.shape[1] != convs[-1].weight.shape[0]:
            raise WeightsError(f"{where}: takes {layer.weight.shape[1]} channels but the layer "
                               f"before gives {convs[-1].weight.shape[0]}")
        convs.append(layer)
    if isinstance(layers[-1], ReLULayer):
        raise WeightsError(f"weights file '{source}': the network ends with a ReLU, "
                           "expected a convolution")
    return convs


class ResidualConvChain(nn.Module):
    """3x3 convolutions (with biases) and ReLUs between, predicting the noise: DnCNN at test time.

    The output is the input minus the predicted noise. This is DnCNN [1]_ with its batch
    normalisation folded into the convolutions, as the authors released it.

    Parameters
    ----------
    depth : int
        Number of convolutions (17 for DnCNN-S, 20 for DnCNN-B).
    width : int
        Channels of the hidden layers (64).
    channels : int
        Image channels (1 for the grayscale models).

    References
    ----------
    .. [1] K. Zhang et al., "Beyond a Gaussian Denoiser", IEEE TIP 2017.
    """

    #: The network ignores the noise level (``forward`` takes it for the common interface).
    uses_sigma = False

    def __init__(self, depth: int = 17, width: int = 64, channels: int = 1):
        super().__init__()
        if depth < 2:
            raise ValueError(f"the chain needs at least 2 convolutions, got {depth}")
        layers: list[nn.Module] = []
        for index in range(depth):
            cin = channels if index == 0 else width
            cout = channels if index == depth - 1 else width
            layers.append(nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=True))
            if index < depth - 1:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)
        #: Each 3x3 convolution sees one more pixel around (input pixels).
        self.receptive_radius = depth
        #: No downsampling: tiles may start anywhere.
        self.multiple = 1

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """Denoise a batch ``(N, C, H, W)`` in [0, 1] units: ``x`` minus the predicted noise."""
        return x - self.body(x)


def chain_network(convs: list[ConvLayer], source: str | Path) -> ResidualConvChain:
    """Build a :class:`ResidualConvChain` from checked convolutions and load them strictly.

    Raises
    ------
    WeightsError
        When the hidden layers differ in width or the first layer's input channels differ
        from the last layer's output channels.
    """
    from denoisers.model_io import load_state

    channels, width = convs[0].weight.shape[1], convs[0].weight.shape[0]
    if convs[-1].weight.shape[0] != channels:
        raise WeightsError(f"weights file '{source}': the network takes {channels} channel(s) "
                           f"but gives {convs[-1].weight.shape[0]}")
    network = ResidualConvChain(depth=len(convs), width=width, channels=channels)
    tensors = {}
    for index, conv in enumerate(convs):
        tensors[f"body.{2 * index}.weight"] = torch.from_numpy(conv.weight)
        tensors[f"body.{2 * index}.bias"] = torch.from_numpy(conv.bias)
    load_state(network, tensors, source)  # strict: shapes name the first layer that differs
    return network.eval()


def load_simplenn_dncnn(path: str | Path) -> ResidualConvChain:
    """Read a released DnCNN ``.mat`` file into a :class:`ResidualConvChain`, on the CPU.

    Raises
    ------
    WeightsError
        For a missing, damaged or unsupported file (see :func:`read_simplenn` and
        :func:`conv_chain`).
    """
    return chain_network(conv_chain(read_simplenn(path), path), path)


# --- reading the HDF5 layout ----------------------------------------------------------------
def _layers(handle, path: Path) -> list[ConvLayer | ReLULayer]:
    net = handle.get("net")
    if net is None or not hasattr(net, "keys"):
        names = ", ".join(sorted(k for k in handle if k != "#refs#")) or "nothing"
        raise WeightsError(f"weights file '{path}' holds no variable 'net' (it holds {names})")
    if "layers" not in net:
        what = "a DagNN network (net.vars, net.params)" if "params" in net else "no 'net.layers'"
        raise WeightsError(f"weights file '{path}': 'net' is {what}; expected a MatConvNet "
                           "simplenn network")
    cell = net["layers"]
    if _matlab_class(cell) != "cell":
        raise WeightsError(f"weights file '{path}': 'net.layers' is a {_matlab_class(cell)}, "
                           "expected a cell array of layer structs")
    layers = []
    for index, ref in enumerate(np.asarray(cell[()]).ravel()):
        struct = handle[ref]
        if not hasattr(struct, "keys"):
            raise WeightsError(f"weights file '{path}', layer {index + 1}: not a struct")
        kind = _text(struct["type"]) if "type" in struct else "(no type)"
        where = f"weights file '{path}', layer {index + 1}"
        if kind == "conv":
            layers.append(_conv(handle, struct, where))
        elif kind == "relu":
            leak = float(_array(struct["leak"]).ravel()[0]) if "leak" in struct \
                and not _is_empty(struct["leak"]) else 0.0
            layers.append(ReLULayer(leak))
        else:
            raise WeightsError(
                f"{where}: a '{kind}' layer; only 'conv' and 'relu' layers are supported (batch "
                "normalisation merged into the convolutions, as in the DnCNN authors' released "
                "models)")
    return layers


def _conv(handle, struct, where: str) -> ConvLayer:
    refs = np.asarray(struct["weights"][()]).ravel()
    if len(refs) != 2:
        raise WeightsError(f"{where}: a convolution with {len(refs)} weight arrays, "
                           "expected 2 (filters, biases)")
    filters = _array(handle[refs[0]])
    if filters.ndim < 2 or filters.ndim > 4:
        raise WeightsError(f"{where}: filters of MATLAB shape {filters.shape[::-1]}, "
                           "expected [kh, kw, in, out]")
    # Put back the trailing singletons MATLAB dropped, then reverse to MATLAB's axes
    # [kh, kw, in, out] and move to torch's (out, in, kh, kw).
    filters = filters.reshape((1,) * (4 - filters.ndim) + filters.shape)
    weight = np.ascontiguousarray(filters.transpose(0, 1, 3, 2), dtype=np.float32)
    out_channels = weight.shape[0]
    bias_data = handle[refs[1]]
    if _is_empty(bias_data):
        bias = np.zeros(out_channels, dtype=np.float32)
    else:
        bias = np.ascontiguousarray(_array(bias_data).ravel(), dtype=np.float32)
    if bias.shape != (out_channels,):
        raise WeightsError(f"{where}: {bias.size} biases for {out_channels} filters")
    pad = _ints(struct, "pad", 4, 0, where)
    stride = _ints(struct, "stride", 2, 1, where)
    dilate = _ints(struct, "dilate", 2, 1, where)
    return ConvLayer(weight, bias, pad, stride, dilate)


def _ints(struct, field: str, size: int, default: int, where: str) -> tuple[int, ...]:
    """A MatConvNet size option: one value for every side, or one per side."""
    if field not in struct or _is_empty(struct[field]):
        return (default,) * size
    values = _array(struct[field]).ravel()
    if values.size == 1:
        values = np.repeat(values, size)
    if values.size != size or not np.all(values == np.round(values)):
        raise WeightsError(f"{where}: '{field}' is {values.tolist()}, "
                           f"expected 1 or {size} integers")
    return tuple(int(v) for v in values)


def _array(dataset) -> np.ndarray:
    return np.asarray(dataset[()])


def _matlab_class(obj) -> str:
    value = obj.attrs.get("MATLAB_class", b"")
    return value.decode() if isinstance(value, bytes) else str(value)


def _is_empty(dataset) -> bool:
    # MATLAB stores an empty array as its dimensions, flagged by this attribute.
    return bool(dataset.attrs.get("MATLAB_empty", 0))


def _text(dataset) -> str:
    """A MATLAB char array (stored as UTF-16 code units)."""
    if _is_empty(dataset):
        return ""
    return "".join(chr(int(c)) for c in _array(dataset).ravel())


def _not_hdf5_reason(path: Path) -> str:
    try:
        with open(path, "rb") as stream:
            header = stream.read(128)
    except OSError:
        header = b""
    if header.startswith(b"MATLAB 5.0 MAT-file"):
        return ("is a MATLAB v5/v7 MAT-file; only v7.3 (HDF5) files are read: re-save it in "
                "MATLAB with save(..., '-v7.3')")
    if header.startswith(b"MATLAB 7.3 MAT-file"):
        return "is a MATLAB v7.3 file that HDF5 cannot open (truncated or damaged?)"
    return "is not a MATLAB v7.3 (HDF5) MAT-file"
