"""Classical denoisers on a GPU: the torch versions of :mod:`denoisers.torch_classical`.

A classical denoiser class that lists this mixin first runs on the CPU as before and, set up
on ``"cuda"`` (``bench run --device cuda``), runs its torch version on the GPU with the same
parameters (:meth:`resolved`), so classical and learned methods can be timed on one device.
The torch versions equal the CPU ones to float32 rounding, borders included (see
:mod:`denoisers.torch_classical`).

The mixin gives the class the tensor path (:meth:`bench.interfaces.Denoiser.denoise_tensor`):
the torch version on the tensor's device, whatever device the class was set up on. On
``"cuda"`` the array path is that same call between a host-to-device and a device-to-host copy;
on ``"cpu"`` the array path keeps the CPU implementation.
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
        return self.denoise_tensor_on(device, noisy, sigma, noise=noise)

    def denoise_tensor_on(self, device: str, noisy: np.ndarray, sigma: float | None, *,
                          noise=None) -> np.ndarray:
        """Denoise the array ``noisy`` with the torch version on ``device``; back as a float32
        array. Blind mode estimates sigma from the array, before the upload."""
        import torch

        from bench.interfaces import estimate_sigma

        if sigma is None:
            sigma = estimate_sigma(noisy)
        image = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32)).to(device)
        return self.denoise_tensor(image, sigma, noise=noise).cpu().numpy()

    def _denoise_tensor(self, noisy, sigma: float):
        """The torch version of the method on ``noisy``'s device, at the parameters the CPU
        version would use at ``sigma`` ([0, 1] units)."""
        from denoisers.torch_classical import TORCH_DENOISERS

        sigma = float(sigma)
        return TORCH_DENOISERS[self._twin_name()](noisy, sigma, **self.resolved(sigma))

    def _twin_name(self) -> str:
        """The built-in name of the method: the instance's name may be another (a built-in
        class registered under a new name, or a subclass that renames itself)."""
        from denoisers.torch_classical import TORCH_DENOISERS

        for cls in type(self).__mro__:
            if vars(cls).get("name") in TORCH_DENOISERS:
                return vars(cls)["name"]
        raise NotImplementedError(f"denoiser '{self.name}' has no torch version")

    def _denoise_tensor_channels(self, noisy, sigma: float):
        """The torch versions treat the channels as the CPU versions do: one call."""
        return self._denoise_tensor(noisy, sigma)
