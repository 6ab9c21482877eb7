"""BM3D through the ``bm3d`` package (free for non-commercial use only: an optional extra).

K. Dabov, A. Foi, V. Katkovnik and K. Egiazarian, "Image denoising by sparse 3-D
transform-domain collaborative filtering", IEEE TIP 2007; colour images use CBM3D (Dabov et
al., ICIP 2007) through ``bm3d.bm3d_rgb``. The package is the authors' reference
implementation (Mäkinen, Azzari and Foi, ICIP 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.interfaces import Denoiser


@dataclass
class BM3D(Denoiser):
    """BM3D with both stages (hard thresholding, then Wiener filtering).

    Parameters
    ----------
    profile : str
        The package's parameter profile: ``"np"`` (normal), ``"refilter"``, ``"vn"``, ...
    """

    profile: str = "np"

    name = "bm3d"

    def _denoise(self, noisy, sigma):
        import bm3d

        image = np.asarray(noisy, dtype=np.float64)
        if image.ndim == 3:
            out = bm3d.bm3d_rgb(image, sigma_psd=sigma, profile=self.profile)
        else:
            out = bm3d.bm3d(image, sigma_psd=sigma, profile=self.profile,
                            stage_arg=bm3d.BM3DStages.ALL_STAGES)
        return out.astype(np.float32)
