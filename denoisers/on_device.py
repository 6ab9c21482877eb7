"""Classical denoisers on a GPU: the torch versions of :mod:`denoisers.torch_classical`.

A classical denoiser class that lists this mixin first runs on the CPU as before and, set up
on ``"cuda"`` (``bench run --device cuda``), runs its torch version on the GPU with the same
parameters (:meth:`resolved`), so classical and learned methods can be timed on one device.
The torch versions equal the CPU ones to float32 rounding, borders included (see
:mod:`denoisers.torch_classical`).
"""

from __future__ import annotations

import numpy as np


class RunsOnCuda:
    """Mixin for a :class:`bench.interfaces.Denoiser` with a torch twin of the same name.

    The class must implement ``resolved(sigma)``, the parameters it uses at ``sigma``.
    """

    devices = ("cpu", "cuda")

    def setup(self, device: str) -> None:
        super().setup(device)
        self._device = device

    def synchronize(self) -> None:
        if getattr(self, "_device", "cpu") == "cuda":
            import torch

            torch.cuda.synchronize()

    def run_info(self) -> dict[str, str]:
        if getattr(self, "_device", "cpu") != "cuda":
            return {}
        import torch

        return {"gpu": torch.cuda.get_device_name(torch.cuda.current_device())}

    def denoise(self, noisy, sigma=None, *, noise=None):
        device = getattr(self, "_device", "cpu")
        if device == "cpu":
            return super().denoise(noisy, sigma, noise=noise)
        return self.denoise_tensor_on(device, noisy, sigma)

    def denoise_tensor_on(self, device: str, noisy: np.ndarray, sigma: float | None) -> np.ndarray:
        """Denoise ``noisy`` with the torch version on ``device``; back as a float32 array."""
        import torch

        from bench.interfaces import estimate_sigma
        from denoisers.torch_classical import TORCH_DENOISERS

        if sigma is None:
            sigma = estimate_sigma(noisy)
        image = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32)).to(device)
        out = TORCH_DENOISERS[self.name](image, float(sigma), **self.resolved(float(sigma)))
        return out.cpu().numpy()
