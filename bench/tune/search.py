"""Searching a parameter space: an exhaustive grid, or Optuna's TPE sampler.

Both record every evaluation in the tuning directory's ``evaluations.jsonl`` (one line per
candidate and study, written as soon as it is scored), which is also their cache: a
candidate already scored is never run again, so an interrupted tuning loses at most the
candidates in flight. The Optuna path also keeps its study in ``studies.journal``
(:class:`optuna.storages.JournalStorage` with a file backend), so that a resumed tuning
continues the same study.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import InvalidParameterError
from bench.tune.objectives import Evaluation
from bench.tune.space import Tunable, grid, grid_size

#: File of every scored candidate, in the tuning directory.
EVALUATIONS_FILE = "evaluations.jsonl"
#: Optuna's journal, in the tuning directory.
JOURNAL_FILE = "studies.journal"


def params_key(params: dict) -> str:
    """A canonical text of a parameter set (the cache key)."""
    return json.dumps(sorted(params.items()), default=str)


class EvaluationLog:
    """``evaluations.jsonl``: every candidate scored, per study; appended, never rewritten."""

    def __init__(self, path: Path):
        self.path = path
        self._rows: dict[str, dict[str, dict]] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a torn last line of an interrupted run
                    continue
                self._rows.setdefault(row["study"], {})[params_key(row["params"])] = row

    def get(self, study: str, params: dict) -> dict | None:
        """The recorded row of ``params`` in ``study``, or None."""
        return self._rows.get(study, {}).get(params_key(params))

    def add(self, study: str, params: dict, evaluation: Evaluation, *, role: str) -> dict:
        """Record one scored candidate (``role``: ``"default"`` or ``"trial"``) and return its row."""
        row = {"study": study, "role": role, "params": params,
               "value": evaluation.value if math.isfinite(evaluation.value) else None,
               "scores": [s if math.isfinite(s) else None for s in evaluation.scores],
               "error": evaluation.error}
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(row, default=str) + "\n")
        self._rows.setdefault(study, {})[params_key(params)] = row
        return row

    def rows(self, study: str) -> list[dict]:
        """Every row of ``study``, in the order first recorded."""
        return list(self._rows.get(study, {}).values())


@dataclass
class Study:
    """One search: a denoiser at one noise and level.

    Attributes
    ----------
    name : str
        ``"nlm|gaussian@25"``: the study's name in the journal and the log.
    space : dict of str to Tunable
        The parameters searched.
    fixed : dict
        Parameters held at the values the user gave (``nlm(patch_size=7)``).
    default : dict
        The parameters of the default candidate: ``fixed`` plus every searched parameter
        whose default is a value (not None, "derived by the rule").
    maximise : bool
        Direction of the objective.
    """

    name: str
    space: dict[str, Tunable]
    fixed: dict
    default: dict
    maximise: bool
    trials: list[dict] = field(default_factory=list)

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` beats ``b``."""
        return a > b if self.maximise else a < b


def scored(log: EvaluationLog, study: Study, candidates: list[dict],
           evaluate: Callable[[list[tuple]], list[Evaluation]], role: str = "trial") -> list[dict]:
    """The log rows of ``candidates``, scoring those not in the log yet (all at once)."""
    missing = [c for c in candidates if log.get(study.name, c) is None]
    unique = list({params_key(c): c for c in missing}.values())
    if unique:
        evaluations = evaluate([tuple(sorted(c.items())) for c in unique])
        for candidate, evaluation in zip(unique, evaluations):
            log.add(study.name, candidate, evaluation, role=role)
    return [log.get(study.name, c) for c in candidates]


def strategy_for(space: dict[str, Tunable], trials: int) -> str:
    """``"grid"`` when every parameter is discrete and the grid has at most ``trials`` points,
    else ``"tpe"``."""
    size = grid_size(space)
    return "grid" if size is not None and size <= trials else "tpe"


def run_grid(log: EvaluationLog, study: Study, evaluate, *, batch: int,
             on_trial: Callable[[int], None] = lambda n: None) -> list[dict]:
    """Score every point of the grid, ``batch`` points at a time; return their rows."""
    points = [dict(study.fixed, **point) for point in grid(study.space)]
    rows = []
    for start in range(0, len(points), batch):
        chunk = points[start:start + batch]
        rows += scored(log, study, chunk, evaluate)
        on_trial(len(chunk))
    return rows


def _distributions(space: dict[str, Tunable]) -> dict:
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    distributions = {}
    for name, spec in space.items():
        if spec.choices is not None:
            distributions[name] = CategoricalDistribution(list(spec.choices))
        elif spec.integer:
            distributions[name] = IntDistribution(int(spec.low), int(spec.high), log=spec.log,
                                                  step=int(spec.step or 1))
        else:
            distributions[name] = FloatDistribution(float(spec.low), float(spec.high),
                                                    log=spec.log, step=spec.step)
    return distributions


def journal_storage(path: Path):
    """Optuna's journal storage in the file ``path`` (created on first use)."""
    from optuna.storages import JournalStorage

    try:
        from optuna.storages.journal import JournalFileBackend
    except ImportError:  # Optuna 3.5 to 3.6 named it JournalFileStorage
        from optuna.storages import JournalFileStorage as JournalFileBackend
    return JournalStorage(JournalFileBackend(str(path)))


def import_optuna():
    """Optuna, or a clear error naming the extra to install."""
    try:
        import optuna
    except ImportError:
        raise InvalidParameterError(
            "this search space needs Optuna (a continuous parameter, or more grid points than "
            "--trials): pip install 'denoise-bench[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def study_seed(seed: int, name: str, done: int = 0) -> int:
    """The TPE sampler's seed for study ``name`` with ``done`` trials in its journal."""
    import zlib

    entropy = [int(seed), zlib.crc32(name.encode())] + ([int(done)] if done else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def run_tpe(log: EvaluationLog, study: Study, evaluate, *, trials: int, seed: int,
            storage, on_trial: Callable[[int], None] = lambda n: None) -> list[dict]:
    """Run Optuna's seeded TPE sampler until the study holds ``trials`` finished trials.

    The study lives in ``storage`` (a journal), so a second call after an interruption
    continues it: trials that were running are marked failed and their parameters queued
    again (the log usually answers them at once). The default parameters, when all of them
    are values inside the space, are the first trial. The sampler's seed is derived from
    ``seed``, the study's name (so that the studies of one tuning explore different points)
    and the number of trials already in the journal (so that a resumed study does not repeat
    its first suggestions); the same command always proposes the same trials.
    """
    optuna = import_optuna()
    from optuna.trial import TrialState

    direction = "maximize" if study.maximise else "minimize"
    handle = optuna.create_study(study_name=study.name, storage=storage, direction=direction,
                                 load_if_exists=True)
    existing = handle.get_trials(deepcopy=False)
    for trial in existing:
        if trial.state == TrialState.RUNNING:  # interrupted: fail it and ask for it again
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            handle.enqueue_trial(dict(trial.params))
    handle.sampler = optuna.samplers.TPESampler(seed=study_seed(seed, study.name, len(existing)))
    if not existing:
        start = {name: study.default[name] for name in study.space if name in study.default}
        if len(start) == len(study.space) and all(study.space[n].contains(v)
                                                  for n, v in start.items()):
            handle.enqueue_trial(start)

    def finished(trial) -> bool:
        return trial.state == TrialState.COMPLETE or (
            trial.state == TrialState.FAIL and "error" in trial.user_attrs)

    done = sum(finished(t) for t in handle.get_trials(deepcopy=False))
    on_trial(min(done, trials))
    distributions = _distributions(study.space)
    while done < trials:
        trial = handle.ask(distributions)
        candidate = dict(study.fixed, **trial.params)
        row = scored(log, study, [candidate], evaluate)[0]
        if row["value"] is None:
            trial.set_user_attr("error", row["error"] or "no score")
            handle.tell(trial, state=TrialState.FAIL)
        else:
            handle.tell(trial, row["value"])
        done += 1
        on_trial(1)
    names = {params_key(dict(study.fixed, **t.params))
             for t in handle.get_trials(deepcopy=False) if finished(t)}
    return [row for row in log.rows(study.name) if params_key(row["params"]) in names]
