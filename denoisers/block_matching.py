"""BM3D through the ``bm3d`` package (free for non-commercial use only: an optional extra).

K. Dabov, A. Foi, V. Katkovnik and K. Egiazarian, "Image denoising by sparse 3-D
transform-domain collaborative filtering", IEEE TIP 2007; colour images use CBM3D (Dabov et
al., ICIP 2007) through ``bm3d.bm3d_rgb``. The package is the authors' reference
implementation (Mäkinen, Azzari and Foi, ICIP 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.errors import InvalidParameterError
from bench.interfaces import Denoiser

#: The package's profiles by the names its functions accept.
PROFILES = {"np": "BM3DProfile", "refilter": "BM3DProfileRefilter", "vn": "BM3DProfileVN",
            "high": "BM3DProfileHigh", "vn_old": "BM3DProfileVNOld", "deb": "BM3DProfileDeb"}


@dataclass
class BM3D(Denoiser):
    """BM3D with both stages (hard thresholding, then Wiener filtering).

    Parameters
    ----------
    profile : str
        The package's parameter profile: ``"np"`` (normal), ``"refilter"``, ``"vn"``, ...
    threads : int
        Threads of the package's own pool. One, like every other method in a worker (the
        runner pins each worker's libraries to one thread): results are then bit-identical
        from call to call, which they are not with the package's default of every core.
    """

    profile: str = "np"
    threads: int = 1

    name = "bm3d"
    keeps_input = True

    def _denoise(self, noisy, sigma):
        import bm3d

        try:
            profile = getattr(bm3d, PROFILES[self.profile])()
        except KeyError:
            raise InvalidParameterError(f"denoiser 'bm3d': unknown profile '{self.profile}'; "
                                        f"use one of {', '.join(PROFILES)}") from None
        profile.num_threads = self.threads
        image = np.asarray(noisy, dtype=np.float64)
        if image.ndim == 3:
            out = bm3d.bm3d_rgb(image, sigma_psd=sigma, profile=profile)
        else:
            out = bm3d.bm3d(image, sigma_psd=sigma, profile=profile,
                            stage_arg=bm3d.BM3DStages.ALL_STAGES)
        return out.astype(np.float32)
