"""Sweep files: the whole sweep in TOML, the same names as the command-line flags.

Example (``examples/sweeps/default.toml`` and ``paper.toml`` are complete ones)::

    datasets = ["folder:/data/Set12"]
    seeds = [0, 1, 2]
    modes = ["oracle"]
    executor = "process"
    timeout = 900

    [[noises]]
    name = "gaussian"
    levels = [15, 25, 50]

    [[denoisers]]
    name = "nlm"
    params = { h_factor = 0.6 }

``noises`` and ``denoisers`` entries may also be plain strings (``"gaussian:15,25"``,
``"bm3d"``). A ``[tuned]`` table (the content of a ``tuned.toml`` written by ``bench tune``)
gives denoisers per-level parameters, as ``bench run --params`` does. ``crop``, ``limit`` and ``jobs`` set to 0 mean "not set" (whole images, every
image, one job per CPU), since TOML has no null. Any other key is an error naming it.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from bench.errors import ConfigError
from bench.sweep import DenoiserSpec, NoiseSpec, Sweep

#: Top-level keys a sweep file may hold: the fields of :class:`bench.sweep.Sweep`.
SWEEP_KEYS = tuple(field.name for field in dataclasses.fields(Sweep))


def load_sweep_file(path: str | Path) -> Sweep:
    """Read a TOML sweep file.

    Raises
    ------
    ConfigError
        When the file is missing, is not valid TOML, or holds an unknown key or a value of the
        wrong type; the message names the file and the key.
    """
    return sweep_from_dict(read_toml(path, "sweep file"), str(path))


def read_toml(path: str | Path, what: str) -> dict:
    """Read a TOML file; a missing or unreadable one is a :class:`ConfigError` naming
    ``what`` (``"sweep file"``, ``"params file"``) and the path."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{what} '{path}' cannot be read: {error}") from None


def sweep_from_dict(data: dict, source: str) -> Sweep:
    """Build a :class:`Sweep` from a dictionary (a sweep file, or a manifest's ``sweep``)."""
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key '{unknown[0]}'; known keys: {', '.join(SWEEP_KEYS)}")
    values = dict(data)
    if "noises" in values:
        values["noises"] = [_noise(item, source) for item in _list(values["noises"], "noises", source)]
    if values.get("denoisers") is not None:
        values["denoisers"] = [_denoiser(item, source)
                               for item in _list(values["denoisers"], "denoisers", source)]
    if values.get("tuned") is not None:
        from bench.tune.tuned import check_tuned

        values["tuned"] = check_tuned(values["tuned"], source)
    for key in ("datasets", "seeds", "modes"):
        if key in values:
            values[key] = _list(values[key], key, source)
    for key in ("crop", "limit", "jobs"):  # TOML has no null: 0 means "not set"
        if values.get(key) == 0:
            values[key] = None
    defaults = Sweep()
    for key, value in values.items():
        expected = getattr(defaults, key)
        if isinstance(expected, bool) and not isinstance(value, bool):
            raise ConfigError(f"{source}: '{key}' must be true or false, not {value!r}")
        if isinstance(expected, str) and not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}' must be a string, not {value!r}")
    return Sweep(**values)


def _list(value, key: str, source: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(f"{source}: '{key}' must be a list, not {value!r}")
    return value


def _noise(item, source: str) -> NoiseSpec:
    if isinstance(item, str):
        return NoiseSpec.parse(item)
    if not isinstance(item, dict):
        raise ConfigError(f"{source}: each of 'noises' is a string or a table, not {item!r}")
    unknown = sorted(set(item) - {"name", "levels", "params"})
    if unknown or "name" not in item:
        raise ConfigError(f"{source}: noise entry {item!r}: "
                          + (f"unknown key '{unknown[0]}'" if unknown else "needs a 'name'"))
    return NoiseSpec(item["name"], tuple(float(v) for v in item.get("levels", ())),
                     tuple(sorted(item.get("params", {}).items())))


def _denoiser(item, source: str) -> DenoiserSpec:
    if isinstance(item, str):
        return DenoiserSpec(item)
    if not isinstance(item, dict):
        raise ConfigError(f"{source}: each of 'denoisers' is a string or a table, not {item!r}")
    unknown = sorted(set(item) - {"name", "params"})
    if unknown or "name" not in item:
        raise ConfigError(f"{source}: denoiser entry {item!r}: "
                          + (f"unknown key '{unknown[0]}'" if unknown else "needs a 'name'"))
    return DenoiserSpec(item["name"], tuple(sorted(item.get("params", {}).items())))
