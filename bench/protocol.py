"""The protocol stage: how images are prepared before the denoiser and before the metrics.

Published numbers differ by up to a dB through details that are not the method's: whether
the noisy input is quantised to 8 bits, whether the output is rounded to 8 bits, whether a
border is shaved, which colour channel is scored. They live here, once, in front of every
metric, so that a metric only ever compares two prepared images. ``docs/protocols.md`` gives
the source of each preset.

The default protocol (the published grayscale tables'): the noisy input is handed to the
denoiser as float values, unclipped, and scored so (Gaussian sigma 25 then gives the papers'
20.17 dB); the denoised output is clipped to [0, 1]; nothing is shaved; metrics see RGB.

Every step takes numpy arrays or torch tensors: a tensor stays a tensor on its device (a GPU
cell's output is prepared and scored where the denoiser left it) and gets the same numbers,
the same operations in the same precision (8-bit rounding half to even in both).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from bench.devices import is_tensor
from bench.errors import InvalidParameterError, UnknownNameError


@dataclass(frozen=True)
class Protocol:
    """Options of the protocol stage.

    Attributes
    ----------
    quantise_input : bool
        Clip the noisy image to [0, 1] and round it to 8-bit levels before the denoiser sees
        it (and before it is scored), as KAIR evaluates its FFDNet "clip" models.
    round8 : bool
        Round the denoised output to 8-bit levels before scoring (implies clipping), as the
        DnCNN authors' MATLAB demo and KAIR do.
    border : int
        Pixels shaved from each side of every image before scoring.
    """

    quantise_input: bool = False
    round8: bool = False
    border: int = 0

    def __post_init__(self):
        for key in ("quantise_input", "round8"):
            if not isinstance(getattr(self, key), bool):
                raise InvalidParameterError(f"{key} must be true or false, "
                                            f"got {getattr(self, key)!r}")
        if isinstance(self.border, bool) or not isinstance(self.border, int) or self.border < 0:
            raise InvalidParameterError(f"border must be a whole number of pixels of at least 0, "
                                        f"got {self.border!r}")

    @property
    def label(self) -> str:
        """The preset's name when the options are a preset's, else ``key=value`` pairs."""
        for name, preset in PRESETS.items():
            if preset == self:
                return name
        return ",".join(f"{key}={value}" for key, value in asdict(self).items())

    def to_dict(self) -> dict:
        """The options as a plain dictionary (for the manifest)."""
        return asdict(self)

    def input(self, noisy):
        """The noisy image as the denoiser receives it (float32; a tensor stays on its
        device)."""
        if not self.quantise_input:
            return noisy
        if is_tensor(noisy):
            import torch

            return (torch.round(torch.clamp(noisy, 0.0, 1.0) * 255.0) / 255.0).to(torch.float32)
        return (np.round(np.clip(noisy, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)

    def reference(self, image):
        """The clean reference, prepared for scoring: float64, border shaved."""
        return self._shave(_float64(image))

    def noisy(self, image):
        """A noisy input (as the denoiser received it), prepared for scoring: float64,
        unclipped, border shaved."""
        return self._shave(_float64(image))

    def output(self, image):
        """A denoised image, prepared for scoring: float64, clipped, optionally rounded,
        border shaved."""
        if is_tensor(image):
            import torch

            out = torch.clamp(_float64(image), 0.0, 1.0)
            if self.round8:
                out = torch.round(out * 255.0) / 255.0
            return self._shave(out)
        # One new array, worked on in place: each fresh temporary of an image's size costs
        # more in page faults than the arithmetic (about 20x for a clip of 512x512).
        out = np.empty(np.shape(image), dtype=np.float64)
        np.clip(image, 0.0, 1.0, out=out, casting="unsafe")  # exact: float32 -> 64 is exact
        if self.round8:
            np.multiply(out, 255.0, out=out)
            np.round(out, out=out)
            np.divide(out, 255.0, out=out)
        return self._shave(out)

    def _shave(self, image):
        if not self.border:
            return image
        b = self.border
        if min(image.shape[:2]) <= 2 * b:
            raise InvalidParameterError(f"border {b} leaves nothing of a "
                                        f"{image.shape[0]}x{image.shape[1]} image")
        return image[b:-b, b:-b]

    def score(self, metrics: dict, clean, image, *, output: bool) -> dict[str, float]:
        """Every metric of ``metrics`` (name -> :class:`bench.metrics.Metric`).

        Parameters
        ----------
        metrics : dict
            Metric name to metric.
        clean : numpy.ndarray or torch.Tensor
            The clean image.
        image : numpy.ndarray or torch.Tensor
            A denoised output (``output=True``) or the noisy input (``output=False``). A
            tensor is prepared and scored on its device (each metric's ``score_tensor``); a
            ``clean`` array is then uploaded there.
        """
        if is_tensor(image) and not is_tensor(clean):
            import torch

            clean = torch.from_numpy(np.ascontiguousarray(clean)).to(image.device)
        estimate = self.output(image) if output else self.noisy(image)
        return self.score_prepared(metrics, self.reference(clean), estimate)

    def score_prepared(self, metrics: dict, reference, estimate) -> dict[str, float]:
        """Every metric of ``metrics`` on images already prepared by :meth:`reference` and
        :meth:`output` (or :meth:`noisy`): a worker prepares a clean image once for all the
        cells of its noisy image."""
        luma = None
        scores = {}
        for name, metric in metrics.items():
            if getattr(metric, "space", "rgb") == "y":
                if luma is None:
                    luma = (to_luma(reference), to_luma(estimate))
                scores[name] = metric(*luma)
            else:
                scores[name] = metric(reference, estimate)
        return scores


def to_luma(image):
    """ITU-R BT.601 studio-swing luma of an RGB image in [0, 1], on 8-bit-rounded values.

    ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B clipped to [0, 1]
    and rounded to 8-bit levels first, as KAIR and SwinIR compute it for their
    super-resolution and JPEG tables. A grayscale image is returned as it is, so luma metrics
    equal their RGB twins on grayscale images. A torch tensor is converted on its device.
    """
    if image.ndim == 2:
        return image
    if is_tensor(image):
        import torch

        rgb = torch.round(torch.clamp(image, 0.0, 1.0) * 255.0) / 255.0
        weights = torch.tensor(_LUMA_WEIGHTS, dtype=rgb.dtype, device=rgb.device)
        return 16.0 / 255.0 + rgb @ weights / 255.0
    rgb = np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0
    return 16.0 / 255.0 + rgb @ np.array(_LUMA_WEIGHTS) / 255.0


#: BT.601 weights of R, G and B in 8-bit luma units per unit of [0, 1] intensity.
_LUMA_WEIGHTS = (65.481, 128.553, 24.966)



def _float64(image):
    """``image`` in float64: an array (a copy unless it is float64 already), or a tensor on
    its device."""
    if is_tensor(image):
        import torch

        return image.detach().to(torch.float64)
    return np.asarray(image, dtype=np.float64)


#: Named protocols; ``docs/protocols.md`` gives the source of each.
PRESETS = {
    "default": Protocol(),
    "dncnn-paper": Protocol(round8=True),
    "kair-clip": Protocol(quantise_input=True, round8=True),
}


def preset(name: str) -> Protocol:
    """The protocol named ``name`` (see :data:`PRESETS`)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError("protocol", name, PRESETS) from None
