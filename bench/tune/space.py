"""Tunable parameters, declared next to the parameters themselves.

A denoiser is a dataclass whose fields are its parameters. A field that ``bench tune`` may
search carries its range in the field's metadata under :data:`METADATA_KEY`, either as a
:class:`Tunable` or as a plain dictionary with the same keys::

    from dataclasses import dataclass, field
    from bench.tune.space import tunable

    @dataclass
    class MyFilter(Denoiser):
        strength: float = tunable(1.0, low=0.2, high=3.0, log=True)
        window: int = field(default=5, metadata={"tune": {"choices": [3, 5, 7]}})

A plugin declares its own parameters the same way; nothing else is registered. A denoiser
that declares nothing (BM3D, the learned models) keeps its reference settings.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from bench.errors import InvalidParameterError

#: The key of a dataclass field's metadata that declares it tunable.
METADATA_KEY = "tune"


@dataclass(frozen=True)
class Tunable:
    """The search range of one parameter.

    Give either a numeric range (``low``, ``high``, with ``log`` and ``step``) or ``choices``.

    Parameters
    ----------
    low, high : float or int, optional
        Inclusive bounds, in the parameter's own unit.
    log : bool
        Search on a logarithmic scale (for scale factors spanning a decade).
    step : int or float, optional
        Spacing of the allowed values: ``step=2`` from ``low=3`` gives odd window sizes. An
        integer range (``low``, ``high`` and ``step`` integers) is searched over integers.
    choices : tuple, optional
        The allowed values of a categorical parameter (strings, numbers or booleans).
    """

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None

    def __post_init__(self):
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise InvalidParameterError("a tunable parameter takes choices or low/high, not both")
            if not self.choices:
                raise InvalidParameterError("a tunable parameter needs at least one choice")
            object.__setattr__(self, "choices", tuple(self.choices))
            return
        if self.low is None or self.high is None or not self.low < self.high:
            raise InvalidParameterError(f"a tunable range needs low < high, got {self.low!r}, "
                                        f"{self.high!r}")
        if self.log and self.low <= 0:
            raise InvalidParameterError(f"a logarithmic range needs low > 0, got {self.low!r}")

    @property
    def integer(self) -> bool:
        """Whether the range holds integers only."""
        return self.choices is None and all(
            isinstance(v, int) and not isinstance(v, bool)
            for v in (self.low, self.high, self.step if self.step is not None else 1))

    @property
    def discrete(self) -> bool:
        """Whether the parameter takes finitely many values (choices, or a stepped range)."""
        return self.choices is not None or self.integer or self.step is not None

    def values(self) -> list:
        """Every allowed value of a discrete parameter, in order.

        Raises
        ------
        InvalidParameterError
            For a continuous range.
        """
        if self.choices is not None:
            return list(self.choices)
        if not self.discrete:
            raise InvalidParameterError("a continuous range has no finite list of values")
        step = self.step if self.step is not None else 1
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        values = [self.low + i * step for i in range(count)]
        return [int(v) for v in values] if self.integer else [round(v, 12) for v in values]

    def contains(self, value) -> bool:
        """Whether ``value`` is one the search could propose."""
        if self.choices is not None:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not self.low <= value <= self.high:
            return False
        return not self.discrete or any(math.isclose(value, v) for v in self.values())

    def describe(self) -> str:
        """``[0.2, 1.5] log`` or ``{db1, db2}``: for reports."""
        if self.choices is not None:
            return "{" + ", ".join(str(c) for c in self.choices) + "}"
        text = f"[{self.low:g}, {self.high:g}]"
        if self.step is not None:
            text += f" step {self.step:g}"
        return text + (" log" if self.log else "")

    def to_dict(self) -> dict:
        """JSON-friendly form (for the tuning directory's record of what was searched)."""
        if self.choices is not None:
            return {"choices": list(self.choices)}
        data = {"low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            data["step"] = self.step
        return data


def tunable(default: Any = None, **spec) -> Any:
    """A dataclass field with ``default`` whose search range is ``Tunable(**spec)``.

    ``width: float | None = tunable(None, low=0.3, high=5.0, log=True)``.
    """
    return field(default=default, metadata={METADATA_KEY: Tunable(**spec)})


def _as_tunable(value, owner: str, name: str) -> Tunable:
    if isinstance(value, Tunable):
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"low", "high", "log", "step", "choices"})
        if unknown:
            raise InvalidParameterError(f"{owner}.{name}: unknown tuning key '{unknown[0]}'; "
                                        "use low, high, log, step or choices")
        return Tunable(**value)
    raise InvalidParameterError(f"{owner}.{name}: the '{METADATA_KEY}' metadata must be a "
                                f"Tunable or a dict, not {type(value).__name__}")


def search_space(cls) -> dict[str, Tunable]:
    """The tunable parameters a denoiser class declares: field name -> :class:`Tunable`.

    Parameters
    ----------
    cls : type
        A denoiser class (a dataclass); a class that is not one declares nothing.

    Returns
    -------
    dict
        In field order; empty when the class declares nothing.
    """
    if not dataclasses.is_dataclass(cls):
        return {}
    owner = getattr(cls, "name", cls.__name__)
    return {f.name: _as_tunable(f.metadata[METADATA_KEY], owner, f.name)
            for f in dataclasses.fields(cls) if METADATA_KEY in f.metadata}


def defaults_of(cls) -> dict[str, Any]:
    """The default value of every field of a denoiser dataclass (``MISSING`` ones left out)."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    return values


def grid_size(space: dict[str, Tunable]) -> int | None:
    """The number of points of an all-discrete space; None when a parameter is continuous."""
    if not all(spec.discrete for spec in space.values()):
        return None
    return math.prod(len(spec.values()) for spec in space.values())


def grid(space: dict[str, Tunable]) -> list[dict]:
    """Every point of an all-discrete space, in a stable order."""
    import itertools

    names = list(space)
    return [dict(zip(names, combo))
            for combo in itertools.product(*(space[n].values() for n in names))]
