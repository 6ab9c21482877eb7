"""The run's manifest, and the rule for resuming a run directory with a sweep.

The manifest says what a run directory's numbers mean: the sweep's configuration, the
metrics, the parameters each method ran with per noise and level, the datasets' content
hashes and the environment. A sweep may resume a run directory only if its numbers would
mean the same.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from bench.errors import ResumeError
from bench.store.environment import describe_environment
from bench.store.results import SCHEMA_VERSION

#: Settings that change what a cell's numbers mean; resuming with other values is refused.
RESUME_KEYS = ("crop", "repeats", "metrics")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def condition_key(noise: str, level: float) -> str:
    """``"gaussian@25"``: how the manifest names a noise and level."""
    return f"{noise}@{level:g}"


def build_manifest(plan, registry) -> dict:
    """The run's manifest: schema, configuration, parameters, environment, dataset hashes.

    Parameters
    ----------
    plan : bench.plan.Plan
    registry : bench.registry.Registry
    """
    method_params: dict[str, dict[str, dict]] = {}
    for cell in plan.cells:
        method_params.setdefault(cell.method, {})[condition_key(cell.noise, cell.level)] = \
            dict(cell.params)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "created": now(),
        "sweep": plan.sweep.to_dict(),
        "device": ",".join(plan.devices),
        "cells": len(plan.cells),
        "protocol": plan.sweep.resolved_protocol().to_dict(),
        "metrics": {name: vars_of(registry.load("metric", name).info()) for name in plan.metrics},
        "denoiser_origins": {spec.name: registry.get("denoiser", spec.name).origin
                             for spec in plan.denoisers},
        "method_params": method_params,
        "noise_params": {cell.noise: dict(cell.noise_params) for cell in plan.cells},
        "datasets": {
            spec: {"images": len(loaded.images), "sha256": loaded.content_hash}
            for spec, loaded in plan.datasets.items()
        },
        "environment": describe_environment(registry.plugins),
    }
    if any(cell.tuned for cell in plan.cells):
        manifest["tuned"] = tuned_provenance(plan)
    return manifest


def tuned_provenance(plan) -> dict:
    """What the manifest records of tuned parameters (``bench run --params``).

    Keys: ``source`` (the tuned.toml), ``metric`` and ``objective`` they were chosen for,
    ``created``, ``tuned_on`` (datasets, crop, limit, seeds and ``images``: content hash ->
    image, per tuning image), ``methods`` (each tuned label and the noise@level keys where it
    ran tuned), and ``overlap``: the test images that were also tuning images (only
    non-empty when the run was allowed with ``allow_tuned_on_test``; a report should flag
    such a run), with ``allowed_overlap``.
    """
    tuned = plan.sweep.tuned
    methods: dict[str, list[str]] = {}
    for cell in plan.cells:
        if cell.tuned:
            keys = methods.setdefault(cell.method, [])
            key = condition_key(cell.noise, cell.level)
            if key not in keys:
                keys.append(key)
    return {
        "source": tuned.get("source"),
        "metric": tuned.get("metric"),
        "objective": tuned.get("objective"),
        "created": tuned.get("created"),
        "tuned_on": dict(tuned.get("tuned_on", {})),
        "methods": methods,
        "overlap": list(plan.tuned_overlap),
        "allowed_overlap": bool(plan.sweep.allow_tuned_on_test),
    }


def vars_of(info) -> dict:
    """A dataclass instance as a plain dictionary."""
    import dataclasses

    return dataclasses.asdict(info)


def check_resumable(previous: dict, current: dict, run_dir: Path) -> None:
    """Refuse to resume ``run_dir`` with a sweep whose results would not be comparable.

    Adding images, noises, levels, seeds, modes or denoisers is fine. Changing the crop, the
    protocol (8-bit input or output, border), the repeats, the metrics, a dataset's content, a noise's parameters, or
    the parameters a method ran with at a noise and level already in the run is not.

    Raises
    ------
    ResumeError
        Naming the setting that differs.
    """
    if previous.get("schema_version") != current["schema_version"]:
        raise ResumeError(f"run directory '{run_dir}' has results schema "
                          f"{previous.get('schema_version')}, this suite writes "
                          f"{current['schema_version']}; use another --out")
    old, new = previous.get("sweep", {}), current["sweep"]
    for key in RESUME_KEYS:
        if old.get(key) != new.get(key):
            raise ResumeError(f"run directory '{run_dir}' was run with {key}={old.get(key)!r}, "
                              f"not {new.get(key)!r}; use another --out")
    if previous.get("protocol") != current["protocol"]:
        from bench.protocol import Protocol

        before = previous.get("protocol")
        before = Protocol(**before).label if before else "unknown (an older run)"
        raise ResumeError(f"run directory '{run_dir}' was run with protocol {before}, not "
                          f"{Protocol(**current['protocol']).label}; use another --out")
    for spec, info in current["datasets"].items():
        before = previous.get("datasets", {}).get(spec)
        if before and before["sha256"] != info["sha256"]:
            raise ResumeError(f"run directory '{run_dir}': the images of dataset '{spec}' changed "
                              "since it was run; use another --out")
    for name, params in current["noise_params"].items():
        before = previous.get("noise_params", {}).get(name)
        if before is not None and before != params:
            raise ResumeError(f"run directory '{run_dir}': noise '{name}' was run with "
                              f"parameters {before}, not {params}; use another --out")
    for method, conditions in current["method_params"].items():
        for condition, params in conditions.items():
            before = previous.get("method_params", {}).get(method, {}).get(condition)
            if before is not None and before != params:
                raise ResumeError(f"run directory '{run_dir}': {method} at {condition} was run "
                                  f"with parameters {before}, not {params}; use another --out")
