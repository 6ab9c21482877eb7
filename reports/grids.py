"""Visual comparison grids: the same crop clean, noisy and from each denoiser, with its PSNR."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Crop index columns that name one noisy image.
GRID_KEY = ["dataset", "image", "noise", "level", "seed", "mode"]


@dataclass
class Tile:
    """One crop of a grid.

    Attributes
    ----------
    label : str
        ``"clean"``, ``"noisy"`` or the method label.
    psnr : float
        PSNR in dB of the crop's whole image against the clean image (inf for the clean one).
    path : str
        PNG file relative to the run directory.
    best : bool
        The highest PSNR among the denoisers of this grid.
    """

    label: str
    psnr: float
    path: str
    best: bool = False


@dataclass
class Grid:
    """The tiles of one noisy image: clean, noisy, then the denoisers in ``order``."""

    dataset: str
    image: str
    noise: str
    level: float
    seed: int
    mode: str
    tiles: list[Tile] = field(default_factory=list)

    @property
    def title(self) -> str:
        """``image — noise level, seed, mode``."""
        return f"{self.image} — {self.noise} {self.level:g}, seed {self.seed}, {self.mode}"

    @property
    def anchor(self) -> str:
        """An HTML id made of safe characters only."""
        return "grid-" + "-".join(
            "".join(c if c.isalnum() else "_" for c in str(part))
            for part in (self.dataset, self.image, self.noise, f"{self.level:g}", self.seed,
                         self.mode))


def build_grids(crops: pd.DataFrame, order: list[str] | None = None) -> list[Grid]:
    """Group a run's crop records into grids.

    Parameters
    ----------
    crops : pandas.DataFrame
        :attr:`reports.load.Run.crops`.
    order : list of str, optional
        Method labels in display order (e.g. the ranking); others follow, by name.

    Returns
    -------
    list of Grid
        One grid per stored noisy image, in the order the run stored them.
    """
    grids = []
    if crops.empty:
        return grids
    position = {label: i for i, label in enumerate(order or [])}
    for key, part in crops.groupby(GRID_KEY, sort=False):
        grid = Grid(*key)
        by_role = part.drop_duplicates("role", keep="last").set_index("role")
        methods = [r for r in by_role.index if r not in ("clean", "noisy")]
        methods.sort(key=lambda r: (position.get(r, len(position)), r))
        scores = by_role.loc[methods, "psnr"].astype(float) if methods else pd.Series(dtype=float)
        best = scores.idxmax() if len(scores) and np.isfinite(scores).any() else None
        for role in [r for r in ("clean", "noisy") if r in by_role.index] + methods:
            entry = by_role.loc[role]
            grid.tiles.append(Tile(role, float(entry["psnr"]), str(entry["path"]), role == best))
        grids.append(grid)
    return grids
