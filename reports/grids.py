"""Visual comparison grids: the same crop clean, noisy and from each denoiser, with its scores."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from bench.metrics import NOISY_PREFIX, MetricInfo

#: Crop index columns that name one noisy image.
GRID_KEY = ["dataset", "image", "noise", "level", "seed", "mode"]
#: Roles of the crops that are not a denoiser's output.
CLEAN, NOISY = "clean", "noisy"


@dataclass
class Tile:
    """One crop of a grid.

    Attributes
    ----------
    label : str
        ``"clean"``, ``"noisy"`` or the method label.
    scores : dict of str to float
        Metric name to the score of the crop's whole image against the clean image, primary
        metric first; empty for the clean image (the reference).
    path : str
        PNG file relative to the run directory.
    best : tuple of str
        The metrics by which this tile is the best denoiser of its grid, in its direction.
    """

    label: str
    scores: dict[str, float]
    path: str
    best: tuple[str, ...] = ()

    @property
    def reference(self) -> bool:
        """True for the clean image."""
        return self.label == CLEAN


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


def build_grids(crops: pd.DataFrame, order: list[str] | None = None, *,
                results: pd.DataFrame | None = None,
                metrics: list[MetricInfo] | None = None) -> list[Grid]:
    """Group a run's crop records into grids, each tile with its image's scores.

    Parameters
    ----------
    crops : pandas.DataFrame
        :attr:`reports.load.Run.crops`.
    order : list of str, optional
        Method labels in display order (e.g. the ranking); others follow, by name.
    results : pandas.DataFrame, optional
        The run's results, where the scores of every metric are read: a denoiser's tile gets
        its cell's ``m``, the noisy tile the cell's ``noisy_m``. Without them (or for a crop
        whose cell is missing) a tile has only the scores its crop record holds (its PSNR).
    metrics : list of MetricInfo, optional
        Primary first; :func:`reports.stats.run_metrics` of ``results`` by default.

    Returns
    -------
    list of Grid
        One grid per stored noisy image, in the order the run stored them.
    """
    from reports.stats import method_labels, run_metrics

    grids = []
    if crops.empty:
        return grids
    if results is not None:
        metrics = run_metrics(results, metrics)
        results = results.assign(method=method_labels(results))
        outputs = results.drop_duplicates(GRID_KEY + ["method"], keep="last").set_index(
            GRID_KEY + ["method"]).sort_index()
        inputs = results.dropna(subset=[NOISY_PREFIX + metrics[0].name]).drop_duplicates(
            GRID_KEY).set_index(GRID_KEY).sort_index()
    else:
        from bench.metrics import DEFAULT_METRICS, metric_info

        metrics = metrics if metrics is not None else [
            metric_info(name) for name in DEFAULT_METRICS if name in crops.columns]
        outputs = inputs = None
    position = {label: i for i, label in enumerate(order or [])}
    for key, part in crops.groupby(GRID_KEY, sort=False):
        grid = Grid(*key)
        by_role = part.drop_duplicates("role", keep="last").set_index("role")
        methods = [r for r in by_role.index if r not in (CLEAN, NOISY)]
        methods.sort(key=lambda r: (position.get(r, len(position)), r))
        roles = [r for r in (CLEAN, NOISY) if r in by_role.index] + methods
        tiles = [Tile(role, _scores(role, by_role.loc[role], key, outputs, inputs, metrics),
                      str(by_role.loc[role, "path"])) for role in roles]
        _mark_best(tiles, metrics)
        grid.tiles = tiles
        grids.append(grid)
    return grids


def _mark_best(tiles: list[Tile], metrics: list[MetricInfo]) -> None:
    """Add each metric's name to the ``best`` of the denoiser tile that scores best by it."""
    for info in metrics:
        scored = [t for t in tiles if t.label not in (CLEAN, NOISY)
                  and not math.isnan(t.scores.get(info.name, math.nan))]
        if scored:
            pick = max if info.higher_is_better else min
            best = pick(scored, key=lambda t: t.scores[info.name])  # first of ties
            best.best += (info.name,)


def _scores(role: str, record: pd.Series, key: tuple, outputs, inputs, metrics) -> dict:
    """The tile's scores from its results row; the crop record's PSNR when there is none."""
    if role == CLEAN:
        return {}
    if role == NOISY:
        row = inputs.loc[key] if inputs is not None and key in inputs.index else None
        prefix = NOISY_PREFIX
    else:
        found = outputs is not None and (*key, role) in outputs.index
        row = outputs.loc[(*key, role)] if found else None
        prefix = ""
    if row is not None:
        return {info.name: float(row[prefix + info.name]) for info in metrics}
    return {info.name: float(record[info.name]) for info in metrics
            if pd.notna(record.get(info.name))}
