"""Learned denoisers: PyTorch networks with weights shipped in the package.

``dncnn`` (blind DnCNN, trained over sigma 0-55, ignores the noise level it is given),
``ffdnet_small`` (FFDNet-style network taking the noise level as an input map) and
``autoencoder`` (convolutional denoising autoencoder, blind) were trained by ``bench train``
on Train400; each weights file has a model card beside it in ``denoisers/weights/`` saying
how. The networks are grayscale: a colour image is denoised channel by channel, the three
channels in one batch.

A :class:`TorchDenoiser` has the tensor path (:meth:`bench.interfaces.Denoiser.denoise_tensor`):
a tensor on the device the networks were set up on goes in, a float32 tensor of its shape comes
out there. The array path is the same code between a host-to-device and a device-to-host copy.
A subclass that overrides ``denoise`` must override ``denoise_tensor`` and ``supports_tensor``
too (``dncnn_paper`` does, to pick its model by sigma on both paths); otherwise it keeps only
the array path.

References
----------
Zhang et al., "Beyond a Gaussian Denoiser", IEEE TIP 2017 (DnCNN); Zhang et al., "FFDNet",
IEEE TIP 2018; Vincent et al., "Extracting and Composing Robust Features with Denoising
Autoencoders", ICML 2008. The architectures are in :mod:`denoisers.networks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import InvalidParameterError
from bench.interfaces import Denoiser
from denoisers.self_ensemble import SIZES as ENSEMBLE_SIZES
from denoisers.self_ensemble import self_ensemble_apply

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class TorchDenoiser(Denoiser):
    """Shared machinery of the PyTorch denoisers: device, precision, tiles, batches.

    Parameters
    ----------
    tile : int
        Largest tile side in pixels; bigger images are processed in overlapping tiles (the
        overlap is the network's receptive radius) so memory stays bounded.
    precision : {"fp32", "bf16", "fp16"}
        Arithmetic of the forward pass; bf16 and fp16 use ``torch.autocast``.
    batch : int
        Most planes or tiles per forward pass.
    self_ensemble : {1, 2, 4, 8}
        Average the outputs over this many flips/rotations of the input (1: off); costs one
        forward pass each. See :mod:`denoisers.self_ensemble`.
    """

    tile: int = 512
    precision: str = "fp32"
    batch: int = 8
    self_ensemble: int = 1

    family = "learned"
    devices = ("cpu", "cuda")
    warm_per_shape = True
    keeps_input = True

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise InvalidParameterError(
                f"denoiser '{self.name}': precision '{self.precision}' is not one of {PRECISIONS}")
        if self.tile < 64:
            raise InvalidParameterError(f"denoiser '{self.name}': tile must be at least 64, got {self.tile}")
        if self.batch < 1:
            raise InvalidParameterError(f"denoiser '{self.name}': batch must be at least 1, got {self.batch}")
        if self.self_ensemble not in ENSEMBLE_SIZES:
            raise InvalidParameterError(
                f"denoiser '{self.name}': self_ensemble must be one of {ENSEMBLE_SIZES}, "
                f"got {self.self_ensemble}")
        self._device = None
        self._networks = {}

    # --- to implement -------------------------------------------------------------------
    def _load(self) -> dict:
        """Return ``{channels: network}`` on the CPU, in eval mode."""
        raise NotImplementedError

    # --- device -------------------------------------------------------------------------
    def setup(self, device: str) -> None:
        """Load the weights (once) and move the networks to ``device``."""
        import torch

        super().setup(device)
        if device == "cuda":
            # cuDNN picks the fastest kernels per shape; the runner's untimed call per shape
            # (warm_per_shape) absorbs the search.
            torch.backends.cudnn.benchmark = True
        if not self._networks:
            self._networks = self._load()
        for network in self._networks.values():
            # Channels-last is faster with both cuDNN and oneDNN (about 7x for bf16 on AMX CPUs).
            network.eval().to(device, memory_format=torch.channels_last)
        self._device = device

    def synchronize(self) -> None:
        """Wait for queued CUDA work (nothing on the CPU)."""
        if self._device == "cuda":
            import torch

            torch.cuda.synchronize()

    # --- inference ----------------------------------------------------------------------
    def uses_sigma(self, channels: int) -> bool:
        """Whether the network for ``channels``-channel images takes the noise level as input."""
        network_channels = 1 if self.colour == "per_channel" else channels
        return bool(getattr(self._network(network_channels), "uses_sigma", False))

    def run_info(self) -> dict[str, str]:
        """The precision of the forward pass, and the GPU's name on CUDA."""
        info = {"precision": self.precision}
        if self._device == "cuda":
            import torch

            info["gpu"] = torch.cuda.get_device_name(torch.cuda.current_device())
        return info

    def _denoise(self, noisy: np.ndarray, sigma: float | None) -> np.ndarray:
        """One image, (H, W) or (H, W, C) for a native-colour network; None sigma: blind.
        The tensor path between two host copies."""
        return self._on_host(self._denoise_tensor, noisy, sigma)

    def _denoise_channels(self, noisy: np.ndarray, sigma: float | None) -> np.ndarray:
        """The planes of a colour image through a grayscale network, in one batch."""
        return self._on_host(self._denoise_tensor_channels, noisy, sigma)

    def _denoise_tensor(self, noisy, sigma: float | None):
        """One image tensor, (H, W) or (H, W, C) for a native-colour network; float32 out."""
        self._check_device(noisy)
        planes = noisy[None, None] if noisy.ndim == 2 else noisy.permute(2, 0, 1)[None]
        out = self._run(planes, sigma)
        return out[0, 0] if noisy.ndim == 2 else out[0].permute(1, 2, 0)

    def _denoise_tensor_channels(self, noisy, sigma: float | None):
        """The planes of an (H, W, C) tensor through a grayscale network, in one batch."""
        self._check_device(noisy)
        return self._run(noisy.permute(2, 0, 1)[:, None], sigma)[:, 0].permute(1, 2, 0)

    def _on_host(self, method, noisy: np.ndarray, sigma: float | None) -> np.ndarray:
        """``method`` (a tensor hook) on an array: to the device and back, float32."""
        import torch

        if self._device is None:
            self.setup("cpu")
        image = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32))
        return method(image.to(self._device), sigma).cpu().numpy()

    def _check_device(self, noisy) -> None:
        """Set up on ``noisy``'s device if not set up yet; refuse a tensor elsewhere."""
        if self._device is None:
            self.setup(noisy.device.type)
        elif noisy.device.type != self._device:
            raise InvalidParameterError(
                f"denoiser '{self.name}' is set up on '{self._device}', "
                f"got a tensor on '{noisy.device}'")

    def _network(self, channels: int):
        if not self._networks:
            self._networks = self._load()
        try:
            return self._networks[channels]
        except KeyError:
            raise InvalidParameterError(
                f"denoiser '{self.name}' has no network for {channels}-channel images") from None

    def _run(self, planes, sigma: float | None):
        """Denoise a tensor stack (N, C, H, W) of images sharing one noise level (None: blind),
        on the device the networks are on; float32 out."""
        import torch

        from denoisers.tiling import tiled_apply

        sigma = 0.0 if sigma is None else float(sigma)
        network = self._network(planes.shape[1])
        device = self._device
        x = planes.to(torch.float32)
        levels = torch.full((x.shape[0],), sigma, dtype=torch.float32, device=device)

        def forward(batch, batch_sigma):
            batch = batch.contiguous(memory_format=torch.channels_last)
            return network(batch, batch_sigma).float()

        def run(images):
            return tiled_apply(forward, images, levels, tile=self.tile,
                               overlap=network.receptive_radius, multiple=network.multiple,
                               batch=self.batch)

        with torch.inference_mode(), self._autocast(device):
            return self_ensemble_apply(run, x, self.self_ensemble)

    def _autocast(self, device: str):
        import contextlib

        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=device, dtype=dtype)


@dataclass
class ShippedModel(TorchDenoiser):
    """A grayscale network trained by ``bench train``, loaded from its safetensors file.

    Each shipped model is one line of :mod:`bench.catalog` naming this class and its
    ``model``; the architecture comes from the weights' model card.

    Parameters
    ----------
    model : str
        Name of the shipped weights (``denoisers/weights/<model>.safetensors``).
    weights : str or None
        A ``.safetensors`` file (its model card beside it) to use instead of the shipped one.
    """

    model: str = ""
    weights: str | None = None

    colour = "per_channel"

    def __post_init__(self):
        if not self.model and not self.weights:
            raise InvalidParameterError("a shipped model needs 'model' (a shipped weights name) "
                                        "or 'weights' (a .safetensors file)")
        # The registry names its instances; until then (and in direct use) the model names it.
        self.name = self.model or Path(self.weights).stem
        super().__post_init__()

    def weights_path(self) -> Path:
        """The weights file this denoiser loads."""
        from denoisers.model_io import shipped_weights

        return Path(self.weights) if self.weights else shipped_weights(self.model)

    def _load(self):
        from denoisers.model_io import load_weights

        network, card = load_weights(self.weights_path())
        self.card = card
        return {1: network}
