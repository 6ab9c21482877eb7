"""One registry for denoisers, noises, metrics and datasets, built-ins and plugins alike.

A registered name maps to where the object lives (``"module:attribute"``), a one-line
summary and the modules it needs, so listing everything imports nothing heavy: the object
itself is imported on first use. Third-party packages register through the entry-point group
:data:`PLUGIN_GROUP`; each entry point names a function ``register(registry)`` that calls
:meth:`Registry.add` for what the package provides.
"""

from __future__ import annotations

import importlib
import importlib.util
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from typing import Literal

from bench.errors import InvalidParameterError, MissingExtraError, UnknownNameError

Kind = Literal["denoiser", "noise", "metric", "dataset"]
KINDS: tuple[Kind, ...] = ("denoiser", "noise", "metric", "dataset")
PLUGIN_GROUP = "denoise_bench.plugins"
BUILTIN = "built-in"


@dataclass(frozen=True)
class Entry:
    """Where one registered object lives and what it needs.

    Attributes
    ----------
    kind : {"denoiser", "noise", "metric", "dataset"}
    name : str
        The name users type.
    target : str
        ``"package.module:attribute"``, imported on first use.
    summary : str
        One line for ``bench list``.
    requires : tuple of str
        Top-level modules the object imports; all must be importable for it to be available.
    install_hint : str or None
        What to install when a required module is missing, e.g. ``pip install 'denoise-bench[bm3d]'``.
    origin : str
        ``"built-in"`` or ``"plugin <distribution> <version>"``.
    options : tuple of (str, value) pairs
        Constructor arguments fixed by the entry, so that one class can serve several names
        (each shipped model is the same class with another ``model``).
    in_default_sweep : bool
        Whether a sweep that names no denoiser runs it (False for those that need files the
        user must provide, such as the paper's DnCNN weights).
    """

    kind: Kind
    name: str
    target: str
    summary: str
    requires: tuple[str, ...] = ()
    install_hint: str | None = None
    origin: str = BUILTIN
    distribution: str | None = field(default=None, compare=False)
    options: tuple[tuple[str, object], ...] = ()
    in_default_sweep: bool = True

    def missing(self) -> list[str]:
        """Required modules that cannot be imported here (checked without importing them)."""
        return [module for module in self.requires if importlib.util.find_spec(module) is None]

    @property
    def available(self) -> bool:
        """True when every required module is installed."""
        return not self.missing()

    def unavailable_reason(self) -> str | None:
        """Why the object cannot be used, or None when it can."""
        missing = self.missing()
        if not missing:
            return None
        hint = f": {self.install_hint}" if self.install_hint else ""
        return f"needs {', '.join(missing)}, not installed{hint}"

    def load(self):
        """Import and return the registered object."""
        reason = self.unavailable_reason()
        if reason:
            raise MissingExtraError(f"{self.kind} '{self.name}' {reason}")
        module_name, _, attribute = self.target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attribute)


class Registry:
    """Names of denoisers, noises, metrics and datasets, and where each lives."""

    def __init__(self) -> None:
        self._entries: dict[Kind, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self._origin = BUILTIN
        self._distribution: str | None = None
        #: Plugin distributions that registered something: name -> version.
        self.plugins: dict[str, str] = {}
        #: One line per plugin that failed to register.
        self.plugin_errors: list[str] = []

    def add(
        self,
        kind: Kind,
        name: str,
        target: str,
        summary: str,
        *,
        requires: tuple[str, ...] = (),
        install_hint: str | None = None,
        options: dict | None = None,
        in_default_sweep: bool = True,
    ) -> None:
        """Register ``name``; the first registration of a name wins.

        Parameters
        ----------
        kind : {"denoiser", "noise", "metric", "dataset"}
        name : str
            Name users type; lower case, no spaces or colons.
        target : str
            ``"module:attribute"`` of the class (denoisers, noises, metrics, datasets).
        summary : str
            One line describing it.
        requires : tuple of str, optional
            Modules it imports beyond the suite's own dependencies.
        install_hint : str, optional
            What to install when one of ``requires`` is missing.
        options : dict, optional
            Constructor arguments that this name fixes (parameters given at creation win).
        in_default_sweep : bool, optional
            False to leave a denoiser out of sweeps that name none (it needs user files).
        """
        if kind not in KINDS:
            raise InvalidParameterError(f"unknown registry kind {kind!r}; use one of {KINDS}")
        if not name or any(c in name for c in " :,") or ":" not in target:
            raise InvalidParameterError(f"cannot register {kind} {name!r} at {target!r}")
        table = self._entries[kind]
        if name in table:
            if self._origin != BUILTIN:
                self.plugin_errors.append(
                    f"{self._origin}: {kind} '{name}' is already registered by "
                    f"{table[name].origin}; ignored"
                )
            return
        table[name] = Entry(
            kind, name, target, summary, tuple(requires), install_hint,
            self._origin, self._distribution, tuple(sorted((options or {}).items())),
            in_default_sweep,
        )

    def get(self, kind: Kind, name: str) -> Entry:
        """Return the entry for ``name`` or raise :class:`UnknownNameError`."""
        try:
            return self._entries[kind][name]
        except KeyError:
            raise UnknownNameError(kind, name, self._entries[kind]) from None

    def names(self, kind: Kind, *, available_only: bool = False) -> list[str]:
        """Registered names of one kind, in registration order."""
        return [
            name for name, entry in self._entries[kind].items()
            if not available_only or entry.available
        ]

    def entries(self, kind: Kind) -> list[Entry]:
        """Registered entries of one kind, in registration order."""
        return list(self._entries[kind].values())

    def load(self, kind: Kind, name: str):
        """Import and return the object registered as ``name``."""
        return self.get(kind, name).load()

    def create_denoiser(self, name: str, **params):
        """Instantiate denoiser ``name`` with ``params``; bad parameters are a clear error.

        ``vst="gat"`` is understood for every denoiser: it wraps it in a variance-stabilising
        transform (:class:`bench.stabilised.Stabilised`).
        """
        entry = self.get("denoiser", name)
        vst = params.pop("vst", None)
        denoiser = _instantiate(entry.load(), "denoiser", name, {**dict(entry.options), **params})
        if vst is None or vst == "none":
            return denoiser
        from bench.stabilised import Stabilised

        return Stabilised(denoiser, vst)

    def create_noise(self, name: str):
        """Instantiate noise ``name``."""
        return _instantiate(self.load("noise", name), "noise", name, {})

    def create_metric(self, name: str):
        """Instantiate metric ``name``."""
        return _instantiate(self.load("metric", name), "metric", name, {})

    @contextmanager
    def registering_as(self, distribution: str, version: str):
        """Attribute what is added inside the ``with`` block to plugin ``distribution``."""
        self._origin, self._distribution = f"plugin {distribution} {version}", distribution
        try:
            yield self
        finally:
            self._origin, self._distribution = BUILTIN, None

    def load_plugins(self) -> None:
        """Run every ``register`` function found in the :data:`PLUGIN_GROUP` entry points."""
        for entry_point in metadata.entry_points(group=PLUGIN_GROUP):
            dist = entry_point.dist
            dist_name = dist.metadata["Name"] if dist is not None else entry_point.value
            version = dist.version if dist is not None else "?"
            with self.registering_as(dist_name, version):
                try:
                    entry_point.load()(self)
                    self.plugins[dist_name] = version
                except Exception as error:  # a broken plugin must not take the suite down
                    self.plugin_errors.append(
                        f"plugin {dist_name} ({entry_point.value}) failed to register: "
                        f"{type(error).__name__}: {error}"
                    )


def _instantiate(cls, kind: str, name: str, params: dict):
    _check_types(cls, kind, name, params)
    try:
        instance = cls(**params)
    except TypeError as error:
        raise InvalidParameterError(f"{kind} '{name}': {error}") from None
    # Plugins may forget to set the registry name on their class.
    if getattr(instance, "name", None) != name:
        try:
            instance.name = name
        except AttributeError:
            pass
    return instance


def _check_types(cls, kind: str, name: str, params: dict) -> None:
    """Refuse a parameter whose value does not fit its dataclass field's simple type (a number,
    a whole number, true/false, text, one of a Literal's values, or None where allowed), so
    that ``nlm(h_factor=abc)`` is an error when the sweep is planned rather than a failure of
    every cell. Fields of other types are left to the class."""
    import dataclasses
    import typing

    if not dataclasses.is_dataclass(cls):
        return
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be resolved: nothing to check against
        return
    for key, value in params.items():
        accepted = _accepted(hints.get(key))
        if accepted is not None and not any(fits(value) for fits, _ in accepted):
            wanted = " or ".join(dict.fromkeys(what for _, what in accepted))
            raise InvalidParameterError(f"{kind} '{name}': {key} must be {wanted}, "
                                        f"got {value!r}")


def _accepted(hint) -> list[tuple] | None:
    """(test, description) pairs for the values a simple type hint accepts; None otherwise."""
    import numbers
    import types
    import typing

    simple = {
        float: (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
        int: (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
              "a whole number"),
        bool: (lambda v: isinstance(v, bool), "true or false"),
        str: (lambda v: isinstance(v, str), "text"),
        type(None): (lambda v: v is None, "None"),
    }
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        values = typing.get_args(hint)
        return [(lambda v: v in values, "one of " + ", ".join(map(repr, values)))]
    if origin in (typing.Union, types.UnionType):
        parts = [_accepted(arg) for arg in typing.get_args(hint)]
        return None if any(part is None for part in parts) else [p for part in parts for p in part]
    return [simple[hint]] if hint in simple else None


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of built-ins plus installed plugins, built once per process."""
    from bench.catalog import register_builtins

    registry = Registry()
    register_builtins(registry)
    registry.load_plugins()
    return registry


def build_registry(factory: str | None = None) -> Registry:
    """The registry named by ``factory`` (``"module:function"``), or the default one.

    Parameters
    ----------
    factory : str or None
        A function returning a :class:`Registry`, named so that worker processes can build
        the same registry; None for :func:`default_registry`.
    """
    if factory is None:
        return default_registry()
    module, _, function = factory.partition(":")
    return getattr(importlib.import_module(module), function)()
