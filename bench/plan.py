"""Planning a sweep: check everything it names, then list its cells. Nothing runs here.

A :class:`Cell` is one unit of work: one denoiser, with its parameters, on one noisy image in
one mode on one device. :func:`make_plan` turns a :class:`bench.sweep.Sweep` into a
:class:`Plan` — every user error (unknown names, missing extras, levels out of range,
unreadable images, a missing GPU) surfaces there, before the first cell runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from bench.datasets import LoadedDataset, load_dataset
from bench.devices import resolve_device
from bench.errors import InvalidParameterError
from bench.registry import BUILTIN, Registry, build_registry
from bench.sweep import MODES, TIMINGS, DenoiserSpec, Sweep, method_name

#: The noise of cells whose noisy image is a real photograph (a ``pairs:`` dataset).
REAL = "real"
#: The level of real-noise cells: a number, since pandas' groupby drops NaN keys.
REAL_LEVEL = 0.0
#: The seed of real-noise cells: there is one noisy image per pair, whatever the seeds.
NO_SEED = -1


@dataclass(frozen=True)
class Cell:
    """One unit of work: one denoiser on one noisy image in one mode on one device.

    ``params`` are the parameters the sweep set for this cell (a property of the cell, not of
    the denoiser's name: they may differ between noise levels). ``tuned`` marks parameters
    taken from a ``tuned.toml`` for this cell's noise and level (label ``NAME(tuned)``).
    """

    dataset: str
    image: str
    noise: str
    level: float
    noise_params: tuple[tuple[str, float | bool], ...]
    seed: int
    mode: str
    denoiser: str
    params: tuple[tuple[str, object], ...]
    device: str
    tuned: bool = False

    def noise_key(self) -> tuple:
        """Cells sharing this key see the same noisy image."""
        return (self.dataset, self.image, self.noise, self.level, self.noise_params, self.seed)

    # The id and the label are computed once per cell (in the parent, which needs both before
    # dispatching it) and travel with the pickled cell, instead of once more per cell in the
    # worker's timed loop.
    @cached_property
    def id(self) -> str:
        """A stable identifier of the cell: the key for resuming."""
        fields = [self.dataset, self.image, self.noise, self.level, self.noise_params,
                  self.seed, self.mode, self.denoiser, self.params, self.device]
        if self.tuned:  # only then, so that the ids of other cells stay what they were
            fields.append("tuned")
        text = json.dumps(fields, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @cached_property
    def method(self) -> str:
        """The label of what ran: see :func:`bench.sweep.method_name`."""
        return method_name(self.denoiser, self.params, self.device, tuned=self.tuned)

    @property
    def real(self) -> bool:
        """Whether the noisy image is a real photograph rather than generated."""
        return self.noise == REAL

    def rng(self) -> np.random.Generator:
        """The random generator of this cell's noisy image: see :func:`noise_rng`."""
        return noise_rng(self.seed, self.image, self.noise, self.level)


def noise_rng(seed: int, image: str, noise: str, level: float) -> np.random.Generator:
    """The random generator for one noisy image, identical on every machine and process.

    The seed is combined with a stable hash (SHA-256, not Python's salted ``hash``) of the
    image name, noise name and level, so that different images get independent noise.
    """
    text = json.dumps([image, noise, float(level)])
    key = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(key,)))


@dataclass
class Plan:
    """A checked sweep: its loaded datasets, devices, denoisers, metrics and cells."""

    sweep: Sweep
    devices: list[str]
    datasets: dict[str, LoadedDataset]
    denoisers: list[DenoiserSpec]
    metrics: list[str]
    cells: list[Cell]
    #: Test images (``"SPEC/NAME"``) that the tuned parameters were chosen on, when the sweep
    #: allows that (``allow_tuned_on_test``); empty otherwise.
    tuned_overlap: list[str] = field(default_factory=list)

    def shape(self, cell: Cell) -> tuple[int, ...]:
        """The shape of ``cell``'s image (after the sweep's crop)."""
        return self.datasets[cell.dataset].images[cell.image].shape

    def groups(self, cells: list[Cell] | None = None) -> list[list[Cell]]:
        """``cells`` (default: all) grouped by noisy image, in plan order: one worker makes it once."""
        groups: dict[tuple, list[Cell]] = {}
        for cell in self.cells if cells is None else cells:
            groups.setdefault(cell.noise_key(), []).append(cell)
        return list(groups.values())


def select_denoisers(sweep: Sweep, registry: Registry) -> list[DenoiserSpec]:
    """The sweep's denoisers, or, when it names none, every available built-in that runs
    without files of the user's (:attr:`bench.registry.Entry.in_default_sweep`)."""
    if sweep.denoisers is not None:
        for spec in sweep.denoisers:
            registry.get("denoiser", spec.name)  # unknown names fail here
        return list(sweep.denoisers)
    return [
        DenoiserSpec(entry.name) for entry in registry.entries("denoiser")
        if entry.origin == BUILTIN and entry.available and entry.in_default_sweep
    ]


def check_settings(sweep: Sweep) -> None:
    """Refuse settings no cell could run with, naming the one at fault."""
    for mode in sweep.modes:
        if mode not in MODES:
            raise InvalidParameterError(f"unknown mode '{mode}'; use oracle or blind")
    if not sweep.seeds:
        raise InvalidParameterError("the sweep has no seed")
    for seed in sweep.seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidParameterError(f"seeds must be integers of at least 0, got {seed!r}")
    if sweep.repeats < 1:
        raise InvalidParameterError(f"repeats must be at least 1, got {sweep.repeats}")
    if sweep.timing not in TIMINGS:
        raise InvalidParameterError(f"unknown timing '{sweep.timing}'; use parallel or exclusive")
    if not sweep.timeout > 0:
        raise InvalidParameterError(f"timeout must be positive, got {sweep.timeout}")
    if not sweep.metrics:
        raise InvalidParameterError("the sweep has no metric")
    if len(set(sweep.metrics)) != len(sweep.metrics):
        raise InvalidParameterError(f"metrics are named twice: {', '.join(sweep.metrics)}")
    sweep.resolved_protocol()  # an unknown preset or a bad border fails here


def make_plan(sweep: Sweep, registry: Registry | None = None) -> Plan:
    """Check every name, level and file of ``sweep`` and list its cells.

    The cells are the product of the sweep's axes — images, (noise, level), seeds, modes and
    (denoiser, device) — in that order. The images of a ``pairs:`` dataset bring their own
    noise instead: one cell per image, mode and method, with noise :data:`REAL`, level
    :data:`REAL_LEVEL` and seed :data:`NO_SEED`; the sweep's synthetic noises apply to the
    other datasets.

    With a ``tuned`` table (``bench run --params``), a denoiser named without parameters gets
    its tuned parameters in the cells of each noise and level the table holds
    (:func:`tuned_parameters`), and test images that were tuning images are refused unless
    the sweep allows them (:func:`check_tuned_overlap`).
    """
    from bench.run.executors import check_executor

    registry = registry or build_registry(None)
    check_settings(sweep)
    check_executor(sweep.executor)
    denoisers = select_denoisers(sweep, registry)
    if not denoisers:
        raise InvalidParameterError("the sweep has no denoiser to run")
    classes = {spec.name: registry.load("denoiser", spec.name) for spec in denoisers}
    for spec in denoisers:  # parameters are checked by constructing once
        registry.create_denoiser(spec.name, **dict(spec.params))
    for name in sweep.metrics:
        registry.create_metric(name)
    wants_gpu = any("cuda" in cls.devices for cls in classes.values())
    devices = list(dict.fromkeys(resolve_device(d.strip(), wants_gpu)
                                 for d in sweep.device.split(",")))

    noises = []
    for spec in sweep.noises:
        if spec.name == REAL:
            raise InvalidParameterError(f"noise '{REAL}' is not generated: it comes with the noisy "
                                        "images of a pairs: dataset (--dataset pairs:PATH)")
        noise = registry.create_noise(spec.name)
        levels = spec.levels or noise.default_levels
        for level in levels:
            noise.check_level(level)
        params = tuple(sorted(noise.params(**dict(spec.params)).items()))
        noises.extend((spec.name, float(level), params) for level in levels)

    datasets = {
        spec: load_dataset(spec, crop=sweep.crop, limit=sweep.limit, registry=registry)
        for spec in sweep.datasets
    }
    border = sweep.resolved_protocol().border
    for spec, loaded in datasets.items():
        for name, image in loaded.images.items():
            if min(image.shape[:2]) <= 2 * border:
                raise InvalidParameterError(f"border {border} leaves nothing of image '{name}' "
                                            f"({image.shape[0]}x{image.shape[1]}) of {spec}")
    images = [(spec, image) for spec, loaded in datasets.items() if not loaded.paired
              for image in loaded.images]
    pairs = [(spec, image) for spec, loaded in datasets.items() if loaded.paired
             for image in loaded.images]
    # A denoiser runs on each requested device it supports; one that supports none (every
    # classical method, when only cuda is asked for) runs on the CPU.
    methods = [(spec, device) for spec in denoisers
               for device in [d for d in devices if d in classes[spec.name].devices] or ["cpu"]]
    tuned = tuned_parameters(sweep, denoisers, noises + ([(REAL, REAL_LEVEL, ())] if pairs else []),
                             registry)

    def params(spec: DenoiserSpec, noise: str, level: float) -> dict:
        found = tuned.get((spec, noise, level))
        return {"params": found, "tuned": True} if found else {"params": spec.params}

    cells = [
        Cell(dataset, image, noise, level, noise_params, int(seed), mode, spec.name,
             device=device, **params(spec, noise, level))
        for (dataset, image), (noise, level, noise_params), seed, mode, (spec, device)
        in itertools.product(images, noises, sweep.seeds, sweep.modes, methods)
    ] + [
        Cell(dataset, image, REAL, REAL_LEVEL, (), NO_SEED, mode, spec.name, device=device,
             **params(spec, REAL, REAL_LEVEL))
        for (dataset, image), mode, (spec, device) in itertools.product(pairs, sweep.modes, methods)
    ]
    overlap = check_tuned_overlap(sweep, datasets, registry) if tuned else []
    return Plan(sweep, devices, datasets, denoisers, list(sweep.metrics), cells, overlap)


def tuned_parameters(sweep: Sweep, denoisers: list[DenoiserSpec], noises: list[tuple],
                     registry: Registry) -> dict[tuple, tuple]:
    """(spec, noise, level) -> parameters (sorted pairs) from the sweep's ``tuned`` table.

    A denoiser named without parameters takes its tuned parameters at each noise and level
    the table holds; one named with parameters runs as named. Each tuned parameter set is
    checked by constructing the denoiser once.
    """
    from bench.tune.tuned import params_for

    if not sweep.tuned:
        return {}
    source = sweep.tuned.get("source", "the [tuned] table")
    found = {}
    for spec in denoisers:
        if spec.params:
            continue
        for noise, level, _ in noises:
            params = params_for(sweep.tuned, spec.name, noise, level)
            if params is None:
                continue
            try:
                registry.create_denoiser(spec.name, **params)
            except InvalidParameterError as error:
                raise InvalidParameterError(f"{source}: tuned parameters of '{spec.name}' at "
                                            f"{noise}@{level:g}: {error}") from None
            found[(spec, noise, level)] = tuple(sorted(params.items()))
    return found


def check_tuned_overlap(sweep: Sweep, datasets: dict[str, LoadedDataset],
                        registry: Registry) -> list[str]:
    """The test images that the sweep's tuned parameters were chosen on.

    Images are compared by the content hash of the whole decoded image
    (:func:`bench.tune.tuned.image_hash`), so a crop, another file name or another folder does
    not hide them.

    Raises
    ------
    InvalidParameterError
        When some test image was a tuning image and the sweep does not set
        ``allow_tuned_on_test``.
    """
    from bench.tune.tuned import dataset_hashes, overlap

    hashes = {}
    for spec in datasets:
        hashes.update(dataset_hashes(spec, limit=sweep.limit, registry=registry))
    shared = overlap(sweep.tuned, hashes)
    if shared and not sweep.allow_tuned_on_test:
        shown = ", ".join(shared[:3]) + (f" and {len(shared) - 3} more" if len(shared) > 3 else "")
        raise InvalidParameterError(
            f"{len(shared)} test image(s) are among the images the tuned parameters of "
            f"{sweep.tuned.get('source', 'the [tuned] table')} were chosen on ({shown}); test "
            "on other images, or give --allow-tuned-on-test to run anyway (the report says so)")
    return shared
