"""A box-filter denoiser: the smallest useful example of the Denoiser interface."""

from dataclasses import dataclass

from scipy import ndimage

from bench.interfaces import Denoiser


@dataclass
class BoxFilter(Denoiser):
    """Mean over a square window.

    Parameters
    ----------
    size : int or None
        Window side in pixels; when None, 3 up to sigma 25 (8-bit units), else 5.
    """

    size: int | None = None

    name = "example_box"
    colour = "per_channel"

    def _denoise(self, noisy, sigma):
        size = self.size if self.size is not None else (3 if sigma * 255 <= 25 else 5)
        return ndimage.uniform_filter(noisy, size=size, mode="reflect")
