"""Total-variation denoising (Rudin, Osher and Fatemi, Physica D 1992)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.interfaces import Denoiser
from bench.tune.space import tunable
from denoisers.on_device import RunsOnCuda
from denoisers.filters import check_rule

#: The hand rule the Train400 one replaced, kept for comparison (``rule="hand"``).
HAND_RULES = {"tv": {"weight_factor": lambda sigma8: 1.0, "eps": 2.0e-4, "max_num_iter": 200}}

#: The stopping rule shipped with the Train400 rule (converged: a smooth PSNR curve).
TRAIN400_EPS = 1.0e-5
TRAIN400_MAX_NUM_ITER = 2000


def tv_weight_factor(sigma8: float) -> float:
    """TV weight as a multiple of the noise sigma, for ``sigma8`` (8-bit units).

    Fitted on Train400, see docs/tuning.md (with ``eps=1e-5, max_num_iter=2000``):
    ``0.33 + 0.016 sigma8`` up to sigma 25, then ``0.73 + 0.0057 (sigma8 - 25)``.
    """
    if sigma8 <= 25:
        return 0.33 + 0.016 * sigma8
    return 0.73 + 0.0057 * (sigma8 - 25)


@dataclass
class TotalVariation(RunsOnCuda, Denoiser):
    """Total-variation denoising with Chambolle's projection algorithm (scikit-image).

    A. Chambolle, "An algorithm for total variation minimization and applications",
    J. Math. Imaging Vis. 2004.

    Parameters
    ----------
    weight_factor : float or None
        The TV weight is ``weight_factor * sigma`` (sigma in [0, 1] units); larger smooths more.
        Rule when None (:func:`tv_weight_factor`, fitted on Train400, see docs/tuning.md):
        ``0.33 + 0.016 sigma_8bit`` up to sigma 25, then ``0.73 + 0.0057 (sigma_8bit - 25)``
        (0.57 at sigma 15, 0.73 at 25, 0.87 at 50). ``bench tune`` searches 0.2 to 4.
    eps : float or None
        Stopping tolerance: iterations stop when the energy changes by less than ``eps``
        times its initial value. None: 1e-5 (the Train400 rule; scikit-image's default,
        2e-4, with ``rule="hand"``).
    max_num_iter : int or None
        Iteration limit. None: 2000 (the Train400 rule; scikit-image's default, 200, with
        ``rule="hand"``).
    rule : {"train400", "hand"}
        Which rule fills a parameter left at None: the Train400 fit, or the former hand
        rule (weight 1.0 sigma, the best of 0.6, 1, 1.5 and 2 on scikit-image's sample
        images, with scikit-image's default stopping rule), kept for comparison.

    With the default tolerance the iterations stop early, at a point that jumps with the
    weight, so the PSNR is a jagged function of ``weight_factor`` (differences of a few tenths
    of a dB between weights 2 % apart); ``eps=1e-5, max_num_iter=2000`` converges and gives a
    smooth curve (see docs/tuning.md).
    """

    weight_factor: float | None = tunable(None, low=0.2, high=4.0, log=True)
    eps: float | None = None
    max_num_iter: int | None = None
    rule: str = "train400"

    name = "tv"
    keeps_input = True

    def __post_init__(self):
        check_rule(self.rule)

    def resolved(self, sigma: float) -> dict:
        """The parameters used at ``sigma`` ([0, 1] units): given ones, else the rule's."""
        if self.rule == "train400":
            rule_weight, eps, max_num_iter = tv_weight_factor, TRAIN400_EPS, TRAIN400_MAX_NUM_ITER
        else:
            hand = HAND_RULES["tv"]
            rule_weight = hand["weight_factor"]
            eps, max_num_iter = hand["eps"], hand["max_num_iter"]
        weight_factor = (self.weight_factor if self.weight_factor is not None
                         else rule_weight(sigma * 255))
        eps = self.eps if self.eps is not None else eps
        max_num_iter = self.max_num_iter if self.max_num_iter is not None else max_num_iter
        return {"weight_factor": weight_factor, "eps": eps, "max_num_iter": max_num_iter}

    def _denoise(self, noisy, sigma):
        from skimage.restoration import denoise_tv_chambolle

        p = self.resolved(sigma)
        channel_axis = -1 if noisy.ndim == 3 else None
        return denoise_tv_chambolle(noisy, weight=p["weight_factor"] * sigma, eps=p["eps"],
                                    max_num_iter=p["max_num_iter"], channel_axis=channel_axis)
