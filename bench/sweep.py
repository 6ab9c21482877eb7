"""What a sweep is: datasets x noises x levels x modes x denoisers x seeds x devices.

A :class:`Sweep` is plain configuration (JSON-friendly, stored in the run's manifest);
:func:`bench.plan.make_plan` checks it and lists the cells the runner executes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from bench.errors import InvalidParameterError
from bench.metrics import DEFAULT_METRICS

MODES = ("oracle", "blind")
TIMINGS = ("parallel", "exclusive")
#: Seconds a cell may run before its worker is stopped (process and Dask executors).
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class NoiseSpec:
    """One noise model with the levels to sweep and its other parameters.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"gaussian"``.
    levels : tuple of float
        Values of the swept parameter; empty means the noise's default levels.
    params : tuple of (str, value) pairs
        Other parameters, e.g. ``(("clip", True),)``.
    """

    name: str
    levels: tuple[float, ...] = ()
    params: tuple[tuple[str, float | bool], ...] = ()

    @classmethod
    def parse(cls, text: str) -> NoiseSpec:
        """Parse ``name[:level,level,...][:key=value,...]``, e.g. ``gaussian:15,25,50``."""
        name, _, rest = text.strip().partition(":")
        levels_text, _, params_text = rest.partition(":")
        try:
            levels = tuple(float(v) for v in levels_text.split(",") if v.strip())
        except ValueError:
            raise InvalidParameterError(
                f"noise '{text}': levels must be numbers separated by commas"
            ) from None
        params = []
        for item in filter(None, (p.strip() for p in params_text.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise InvalidParameterError(f"noise '{text}': parameter '{item}' is not key=value")
            params.append((key.strip(), _parse_value(value.strip(), text)))
        return cls(name, levels, tuple(params))

    def __str__(self) -> str:
        text = self.name + (":" + ",".join(f"{v:g}" for v in self.levels) if self.levels else "")
        if self.params:
            text += (":" if self.levels else "::") + ",".join(f"{k}={v}" for k, v in self.params)
        return text


def _parse_value(value: str, context: str) -> float | bool:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return float(value)
    except ValueError:
        raise InvalidParameterError(f"noise '{context}': '{value}' is not a number") from None


@dataclass(frozen=True)
class DenoiserSpec:
    """A denoiser name with parameters overriding its defaults."""

    name: str
    params: tuple[tuple[str, object], ...] = ()

    @classmethod
    def parse(cls, text: str) -> DenoiserSpec:
        """Parse ``name`` or ``name(key=value, ...)``, the form results print as the method.

        Values are read as booleans (``true``/``false``), ``None``, integers, floats, or else
        strings (quotes optional): ``nlm(h_factor=0.7)``, ``bm3d(vst=gat)``.
        """
        text = text.strip()
        name, paren, rest = text.partition("(")
        name = name.strip()
        if not name or (paren and not rest.endswith(")")):
            raise InvalidParameterError(f"denoiser '{text}' is not NAME or NAME(KEY=VALUE, ...)")
        params = []
        for item in split_outside_parentheses(rest[:-1]) if paren else []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise InvalidParameterError(f"denoiser '{text}': parameter '{item.strip()}' is "
                                            "not KEY=VALUE")
            params.append((key.strip(), parse_scalar(value.strip())))
        return cls(name, tuple(sorted(params)))


def split_outside_parentheses(text: str) -> list[str]:
    """Split ``text`` on commas that are not inside parentheses; empty items are dropped."""
    items, depth, current = [], 0, []
    for char in text:
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        depth += (char == "(") - (char == ")")
        if depth < 0:
            raise InvalidParameterError(f"unbalanced parentheses in '{text}'")
        current.append(char)
    if depth:
        raise InvalidParameterError(f"unbalanced parentheses in '{text}'")
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def parse_scalar(value: str):
    """``"0.7"`` -> 0.7, ``"5"`` -> 5, ``"true"`` -> True, ``"None"`` -> None, else the text."""
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value.strip("'\"")


@dataclass
class Sweep:
    """The whole configuration of a run.

    Parameters
    ----------
    datasets : list of str
        Dataset specs, e.g. ``["skimage", "folder:/data/Set12"]``.
    noises : list of NoiseSpec
    denoisers : list of DenoiserSpec or None
        None means every available built-in denoiser.
    seeds : list of int
        Noise seeds; each gives an independent noisy copy of every image.
    modes : list of {"oracle", "blind"}
        Oracle hands the denoiser the noise sigma; blind lets it estimate sigma.
    device : str
        ``"cpu"``, ``"cuda"``, ``"auto"`` (CUDA when there is a GPU) or a comma-separated list
        such as ``"cpu,cuda"``: learned denoisers run on each; classical ones on the CPU.
    repeats : int
        Timed calls per cell (median kept), after one warm-up per denoiser.
    crop : int or None
        Central crop side in pixels.
    limit : int or None
        Images per dataset.
    protocol : str
        The protocol preset (:data:`bench.protocol.PRESETS`): how the noisy input is handed
        to denoisers and how images are prepared for the metrics.
    quantise_input, round8 : bool or None
        Override the preset: clip and round the noisy input to 8 bits before the denoiser;
        round the output to 8 bits before scoring.
    border : int or None
        Override the preset: pixels shaved from each side before scoring.
    metrics : list of str
        Registered metrics to score, the primary one (which ranks methods) first.
    visual_images : int
        For this many images of each dataset (the first ones), the run keeps central crops
        of the clean, noisy and every denoised image (first seed only) for the report.
    visual_size : int
        Side of those crops in pixels.
    save_outputs : bool
        Also write every denoised image as a PNG under ``outputs/``.
    executor : {"process", "serial", "dask"}
        Where cells run: local worker processes, this process, or a Dask cluster.
    jobs : int or None
        Worker processes (default: one per CPU this process may use).
    timeout : float
        Seconds one cell may take before its worker is stopped and the cell recorded as
        ``timeout`` (process and Dask executors).
    timing : {"parallel", "exclusive"}
        ``exclusive`` times every cell again, alone, after the parallel quality sweep.
    scheduler : str or None
        Address of an existing Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.
    tuned : dict or None
        The ``[tuned]`` table of a ``tuned.toml`` written by ``bench tune`` (``--params``):
        parameters per denoiser, noise and level, and the images they were tuned on. A
        denoiser named without parameters runs with its tuned parameters at every noise and
        level the table has, labelled ``NAME(tuned)``; elsewhere with its defaults.
    allow_tuned_on_test : bool
        Run even when the test images overlap the images the tuned parameters were chosen
        on (the manifest and report then say so); refused otherwise.
    """

    datasets: list[str] = field(default_factory=lambda: ["skimage"])
    noises: list[NoiseSpec] = field(default_factory=lambda: [NoiseSpec("gaussian")])
    denoisers: list[DenoiserSpec] | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    modes: list[str] = field(default_factory=lambda: ["oracle"])
    device: str = "cpu"
    repeats: int = 1
    crop: int | None = None
    limit: int | None = None
    protocol: str = "default"
    quantise_input: bool | None = None
    round8: bool | None = None
    border: int | None = None
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    visual_images: int = 2
    visual_size: int = 96
    save_outputs: bool = False
    executor: str = "process"
    jobs: int | None = None
    timeout: float = DEFAULT_TIMEOUT
    timing: str = "parallel"
    scheduler: str | None = None
    tuned: dict | None = None
    allow_tuned_on_test: bool = False

    def resolved_protocol(self):
        """The :class:`bench.protocol.Protocol` of the sweep: its preset, then the overrides."""
        from dataclasses import replace

        from bench.protocol import preset

        overrides = {key: getattr(self, key) for key in ("quantise_input", "round8", "border")
                     if getattr(self, key) is not None}
        return replace(preset(self.protocol), **overrides)

    def to_dict(self) -> dict:
        """JSON-friendly form, as stored in the manifest."""
        data = dataclasses.asdict(self)
        data["noises"] = [str(spec) for spec in self.noises]
        if self.denoisers is not None:
            data["denoisers"] = [
                {"name": spec.name, "params": dict(spec.params)} for spec in self.denoisers
            ]
        return data


def default_sweep(datasets: list[str] | None = None) -> Sweep:
    """The sweep ``bench run`` runs with no arguments: representative, about a minute on 2 cores.

    Parameters
    ----------
    datasets : list of str, optional
        Datasets to use instead of scikit-image's samples. The samples are cropped to 96x96
        to keep the default run short; datasets the user names are measured whole.
    """
    return Sweep(
        datasets=list(datasets) if datasets else ["skimage"],
        noises=[NoiseSpec("gaussian", (15, 25, 50)), NoiseSpec("poisson", (30,)),
                NoiseSpec("salt_pepper", (0.1,)), NoiseSpec("speckle", (0.2,))],
        crop=None if datasets else 96,
        limit=None,
    )


def quick_sweep(datasets: list[str] | None = None) -> Sweep:
    """A smoke sweep of a few seconds: small crops, one noise level (``datasets`` as in
    :func:`default_sweep`: named ones are measured whole)."""
    return Sweep(datasets=list(datasets) if datasets else ["skimage"],
                 noises=[NoiseSpec("gaussian", (25,))], crop=None if datasets else 48, limit=None)


def _short(value) -> str:
    """A parameter as a label shows it: a path by its last part (results record files by
    content hash, and a label must not depend on where a file lies)."""
    text = str(value)
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text


def method_name(denoiser: str, params: tuple[tuple[str, object], ...] = (),
                device: str = "cpu", *, tuned: bool = False) -> str:
    """Label of a denoiser with the parameters the sweep gave it, on a device.

    ``"nlm"``; ``"dncnn@cuda"`` off the CPU; ``"dncnn(precision=bf16)@cuda"`` when the sweep
    set parameters, so that one run can hold several parameter sets of one denoiser apart. A
    path is shown by its last part: ``dncnn_paper(weights=dncnn)``. Parameters from a
    ``tuned.toml`` give ``"nlm(tuned)"``, the same label at every level whatever they are
    there (the results' ``params`` column holds them).
    """
    label = denoiser
    if tuned:
        label += "(tuned)"
    elif params:
        label += "(" + ", ".join(f"{key}={_short(value)}" for key, value in params) + ")"
    return label if device == "cpu" else f"{label}@{device}"
