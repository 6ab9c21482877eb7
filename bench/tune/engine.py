"""``bench tune``: per denoiser, noise and level, the parameters that score best on data.

:func:`tune` checks everything first (names, levels, parameters, images), then runs one
study per (denoiser, noise, level) — an exhaustive grid when the space is small, else
Optuna's seeded TPE sampler — and writes into the tuning directory:

- ``tuned.toml``: the tuned parameters, a sweep-file fragment for ``bench run --params``,
  with the content hashes of the tuning images;
- ``report.md`` and ``plots/``: trials, default against tuned score, the objective against
  each parameter, fitted rules over the levels;
- ``summary.json``: the same numbers for scripts;
- ``tune.json``, ``evaluations.jsonl``, ``studies.journal``: what the directory was tuned
  with, every scored candidate and Optuna's studies, so that re-running the same command
  resumes an interrupted tuning.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.errors import InvalidParameterError, ResumeError
from bench.files import write_atomic
from bench.sweep import DEFAULT_TIMEOUT, DenoiserSpec, NoiseSpec, method_name
from bench.tune.objectives import Condition, real_condition
from bench.tune.search import (EVALUATIONS_FILE, JOURNAL_FILE, EvaluationLog, Study,
                               journal_storage, run_grid, run_tpe, scored, strategy_for)
from bench.tune.space import defaults_of, grid_size, search_space

OBJECTIVES = ("clean", "self-supervised")
#: The metric reported for the self-supervised objective (lower is better).
SELF_SUPERVISED_METRIC = "j_invariant_mse"
#: Settings that change what a tuning directory's numbers mean; resuming with others is refused.
MEANING_KEYS = ("datasets", "crop", "limit", "seeds", "metric", "objective", "stride",
                "content")
#: What the report says of the self-supervised objective.
SELF_SUPERVISED_NOTE = (
    "The self-supervised objective is the J-invariant loss of Batson and Royer (Noise2Self, "
    "ICML 2019): it equals the error against the clean image plus a constant only when the "
    "noise of each pixel is independent of the other pixels' noise. Correlated noise "
    "(demosaicked, compressed or resampled photographs) breaks that assumption and biases "
    "it towards too little smoothing. It also scores the J-invariant version of the denoiser "
    "(each pixel predicted with its own value masked), not the denoiser itself: for a filter "
    "whose output at a pixel hinges on that pixel's value (bilateral) the two differ and the "
    "choice can be poor; where clean images exist, check the PSNR columns.")


@dataclass
class TuneConfig:
    """What to tune, on what, and how.

    Parameters
    ----------
    denoisers : list of DenoiserSpec
        Denoisers to tune; parameters given (``nlm(patch_size=7)``) are held fixed.
    noises : list of NoiseSpec
        Noises and levels; each level is tuned separately. ``real`` (no generated noise)
        tunes on real noisy images: a pairs dataset's (clean objective), or any dataset's
        images taken as noisy (self-supervised objective).
    datasets : list of str
        Dataset specs of the tuning images.
    trials : int
        Candidates per study for the TPE sampler; a grid of at most this many points is
        searched exhaustively instead.
    metric : str
        Registered metric whose mean over the images is optimised (clean objective); its
        ``higher_is_better`` gives the direction.
    objective : {"clean", "self-supervised"}
        Score against clean images, or by the J-invariant loss on the noisy images alone.
    crop, limit : int or None
        Central crop side in pixels; images per dataset.
    seeds : list of int
        Noise seeds (one noisy copy of every image per seed).
    seed : int
        Seed of the TPE sampler.
    executor : {"process", "serial"}
        Where the clean objective's cells run.
    jobs : int or None
        Worker processes (default: one per CPU).
    timeout : float
        Seconds one cell may take.
    stride : int
        Mask spacing of the J-invariant loss (``stride ** 2`` denoiser calls per image).
    """

    denoisers: list[DenoiserSpec]
    noises: list[NoiseSpec] = field(default_factory=lambda: [NoiseSpec("gaussian", (15, 25, 50))])
    datasets: list[str] = field(default_factory=lambda: ["skimage"])
    trials: int = 30
    metric: str = "psnr"
    objective: str = "clean"
    crop: int | None = None
    limit: int | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    seed: int = 0
    executor: str = "process"
    jobs: int | None = None
    timeout: float = DEFAULT_TIMEOUT
    stride: int = 4

    def to_dict(self) -> dict:
        """JSON-friendly form, as stored in ``tune.json``."""
        data = asdict(self)
        data["denoisers"] = [{"name": s.name, "params": dict(s.params)} for s in self.denoisers]
        data["noises"] = [str(s) for s in self.noises]
        return data


@dataclass
class StudyResult:
    """The outcome of one study (one denoiser at one noise and level)."""

    denoiser: str
    condition: str
    strategy: str
    space: dict
    trials: int
    failed: int
    default_params: dict
    default_value: float | None
    best_params: dict
    best_value: float | None
    history: list[dict]
    clean_default: float | None = None
    clean_best: float | None = None

    @property
    def gain(self) -> float | None:
        """Tuned minus default score (in the objective's unit)."""
        if self.best_value is None or self.default_value is None:
            return None
        return self.best_value - self.default_value


@dataclass
class TuneResult:
    """What :func:`tune` wrote and found."""

    out_dir: Path
    tuned_file: Path
    report: Path
    studies: list[StudyResult]
    metric: str
    maximise: bool


def _check(config: TuneConfig, registry):
    """Every user error before anything runs: returns (spaces, conditions, maximise)."""
    from bench.metrics import metric_info
    from bench.run.executors import check_executor

    if config.objective not in OBJECTIVES:
        raise InvalidParameterError(f"unknown objective '{config.objective}'; use clean or "
                                    "self-supervised")
    if config.trials < 1:
        raise InvalidParameterError(f"--trials must be at least 1, got {config.trials}")
    check_executor(config.executor)
    if config.executor == "dask":
        raise InvalidParameterError("bench tune runs on the serial or process executor, not dask")
    if not config.denoisers:
        raise InvalidParameterError("bench tune needs --denoisers")
    names = [spec.name for spec in config.denoisers]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidParameterError(f"denoiser '{twice[0]}' is named twice; tuned.toml holds one "
                                    "parameter set per denoiser, noise and level: tune the "
                                    "variants into separate directories")
    if not config.datasets:
        raise InvalidParameterError("bench tune needs --dataset")
    if config.stride < 2:
        raise InvalidParameterError(f"the J-invariant stride must be at least 2, got {config.stride}")
    spaces = {}
    for spec in config.denoisers:
        cls = registry.load("denoiser", spec.name)
        registry.create_denoiser(spec.name, **dict(spec.params))  # bad fixed parameters fail here
        space = {name: t for name, t in search_space(cls).items() if name not in dict(spec.params)}
        if not space:
            raise InvalidParameterError(
                f"denoiser '{spec.name}' declares no tunable parameter"
                + (" left once its given parameters are fixed" if search_space(cls) else
                   " (its reference settings are kept; a denoiser declares them with "
                   "bench.tune.space.tunable)"))
        spaces[spec.name] = space
    maximise = True
    if config.objective == "clean":
        info = metric_info(config.metric, registry)
        registry.create_metric(config.metric)
        maximise = info.higher_is_better
    else:
        maximise = False
    conditions = []
    for spec in config.noises:
        if spec.name == "real":
            conditions.append(real_condition())
            continue
        noise = registry.create_noise(spec.name)
        levels = spec.levels or noise.default_levels
        for level in levels:
            noise.check_level(level)
        params = tuple(sorted(noise.params(**dict(spec.params)).items()))
        conditions.extend(Condition(spec.name, float(level), params) for level in levels)
    if not conditions:
        raise InvalidParameterError("bench tune needs at least one noise level")
    return spaces, list(dict.fromkeys(conditions)), maximise


def _load_images(config: TuneConfig, registry):
    """The tuning images ``(spec, name, paired)``, the datasets' content hash, and the
    per-image hashes of the whole images."""
    from bench.datasets import load_dataset
    from bench.tune.tuned import dataset_hashes

    images, content, hashes = [], {}, {}
    for spec in config.datasets:
        loaded = load_dataset(spec, crop=config.crop, limit=config.limit, registry=registry)
        images += [(spec, name, loaded.paired) for name in loaded.images]
        content[spec] = loaded.content_hash
        hashes.update(dataset_hashes(spec, limit=config.limit, registry=registry))
    return images, content, hashes


def _check_images(conditions, images, objective: str) -> None:
    paired = [image for image in images if image[2]]
    for condition in conditions:
        if condition.real and objective == "clean" and not paired:
            raise InvalidParameterError("noise 'real' with the clean objective needs a pairs: "
                                        "dataset; use --objective self-supervised for noisy "
                                        "images without clean references")
        if not condition.real and len(paired) == len(images):
            raise InvalidParameterError(f"noise '{condition.noise}' needs clean images; the "
                                        "datasets hold real noisy pairs only (use --noises real)")


def _open_directory(out_dir: Path, config: TuneConfig, content: dict) -> dict:
    """Check that ``out_dir`` holds nothing or a tuning with the same meaning; record it."""
    meaning = dict(config.to_dict(), content=content)
    record = out_dir / "tune.json"
    if record.exists():
        previous = json.loads(record.read_text(encoding="utf-8"))
        for key in MEANING_KEYS:
            if previous.get(key) != meaning.get(key):
                raise ResumeError(f"tuning directory '{out_dir}' was tuned with {key}="
                                  f"{previous.get(key)!r}, not {meaning.get(key)!r}; use "
                                  "another --out")
    write_atomic(record, json.dumps(meaning, indent=2, default=str) + "\n")
    return meaning


def _study(spec: DenoiserSpec, condition: Condition, space: dict, cls, maximise: bool) -> Study:
    fixed = dict(spec.params)
    defaults = defaults_of(cls)
    default = dict(fixed, **{name: defaults[name] for name in space
                             if defaults.get(name) is not None})
    label = method_name(spec.name, spec.params)
    return Study(f"{label}|{condition.key}", space, fixed, default, maximise)


def _best(study: Study, rows: list[dict]) -> dict | None:
    best = None
    for row in rows:
        if row["value"] is not None and (best is None or study.better(row["value"], best["value"])):
            best = row
    return best


def tune(config: TuneConfig, out_dir: str | Path, *, registry_factory: str | None = None,
         progress: bool = True, log=None) -> TuneResult:
    """Tune every denoiser of ``config`` at every noise level; write the tuning directory.

    Parameters
    ----------
    config : TuneConfig
    out_dir : str or Path
        The tuning directory; one that holds an interrupted tuning of the same meaning is
        resumed (finished candidates are not run again).
    registry_factory : str, optional
        ``"module:function"`` building the registry, here and in worker processes.
    progress : bool
        Show a progress bar on the terminal.
    log : callable, optional
        ``log(text)`` for one line per finished study.

    Returns
    -------
    TuneResult

    Raises
    ------
    bench.errors.BenchError
        For every user error, before anything runs; :class:`ResumeError` for a directory
        tuned with another meaning.
    """
    from bench.registry import build_registry
    from bench.run.executors import default_jobs
    from bench.store.lock import RunDirLock, make_run_dir
    from bench.tune.objectives import CleanObjective, SelfSupervisedObjective
    from bench.tune.report import write_outputs

    log = log or (lambda text: None)
    registry = build_registry(registry_factory)
    spaces, conditions, maximise = _check(config, registry)
    images, content, hashes = _load_images(config, registry)
    _check_images(conditions, images, config.objective)
    jobs = 1 if config.executor == "serial" else (config.jobs or default_jobs())
    out = make_run_dir(out_dir)
    with RunDirLock(out):
        _open_directory(out, config, content)
        evaluations = EvaluationLog(out / EVALUATIONS_FILE)

        def clean_objective():
            return CleanObjective(images, config.seeds, config.metric, crop=config.crop,
                                  executor=config.executor, jobs=jobs, timeout=config.timeout,
                                  registry=registry, registry_factory=registry_factory)

        if config.objective == "clean":
            objective = clean_objective()
        else:
            objective = SelfSupervisedObjective(images, config.seeds, crop=config.crop,
                                                registry=registry, stride=config.stride)
        studies = []
        storage = None
        plans = [(spec, condition) for spec in config.denoisers for condition in conditions]
        strategies = {spec.name: strategy_for(spaces[spec.name], config.trials)
                      for spec in config.denoisers}
        total = sum(_grid_points(spaces[spec.name]) if strategies[spec.name] == "grid"
                    else config.trials for spec, _ in plans)
        try:
            with _Progress(progress, total) as advance:
                for spec, condition in plans:
                    cls = registry.load("denoiser", spec.name)
                    study = _study(spec, condition, spaces[spec.name], cls, maximise)

                    def evaluate(candidates, spec=spec, condition=condition):
                        return objective.evaluate(spec.name, condition, candidates)

                    default_row = scored(evaluations, study, [study.default], evaluate,
                                         role="default")[0]
                    if strategies[spec.name] == "grid":
                        rows = run_grid(evaluations, study, evaluate, batch=max(4, 4 * jobs),
                                        on_trial=advance)
                    else:
                        if storage is None:
                            storage = journal_storage(out / JOURNAL_FILE)
                        rows = run_tpe(evaluations, study, evaluate, trials=config.trials,
                                       seed=config.seed, storage=storage, on_trial=advance)
                    best = _best(study, rows)
                    result = StudyResult(
                        spec.name, condition.key, strategies[spec.name],
                        {n: t.to_dict() for n, t in study.space.items()}, len(rows),
                        sum(r["value"] is None for r in rows), study.default,
                        default_row["value"], best["params"] if best else {},
                        best["value"] if best else None, rows)
                    studies.append(result)
                    log(_summary_line(result, config))
            if config.objective == "self-supervised" and any(not c.real for c in conditions):
                objective.close()
                objective = clean_objective()
                _score_clean(objective, studies, conditions)
        finally:
            objective.close()
        return write_outputs(out, config, studies, hashes, maximise)


def _grid_points(space) -> int:
    return grid_size(space) or 0


def _score_clean(objective, studies: list[StudyResult], conditions) -> None:
    """For the self-supervised objective on synthetic noise: the clean metric of the default
    and of the chosen parameters, to show what the noisy-only choice costs."""
    by_key = {c.key: c for c in conditions}
    for study in studies:
        condition = by_key[study.condition]
        if condition.real:
            continue
        candidates = [tuple(sorted(study.default_params.items()))]
        if study.best_params:
            candidates.append(tuple(sorted(study.best_params.items())))
        values = [e.value if e.ok else None
                  for e in objective.evaluate(study.denoiser, condition, candidates)]
        study.clean_default = values[0]
        study.clean_best = values[1] if len(values) > 1 else None


def _summary_line(result: StudyResult, config: TuneConfig) -> str:
    unit = config.metric if config.objective == "clean" else SELF_SUPERVISED_METRIC

    def show(value):
        return "failed" if value is None else f"{value:.4g}"

    params = ", ".join(f"{k}={_short(v)}" for k, v in result.best_params.items())
    return (f"{result.denoiser} at {result.condition}: {unit} {show(result.default_value)} "
            f"(default) -> {show(result.best_value)} with {params} ({result.trials} "
            f"{result.strategy} trials)")


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)


class _Progress:
    """A rich progress bar over the tuning's trials; silent when disabled."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self._progress = enabled, total, None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(TextColumn("[bold]tuning"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(),
                                  console=Console(stderr=True))
        self._progress.__enter__()
        task = self._progress.add_task("tune", total=self.total)
        return lambda n: self._progress.update(task, advance=n)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False
