"""``bench tune``: denoiser parameters chosen on data, not by hand.

Light to import (denoisers import :mod:`bench.tune.space` for their declarations); Optuna,
matplotlib and the runner are imported by the modules that use them.

- :mod:`bench.tune.space` — :class:`Tunable`, :func:`tunable`, :func:`search_space`: how a
  denoiser declares what may be tuned, next to its parameters.
- :mod:`bench.tune.engine` — :class:`TuneConfig` and :func:`tune`.
- :mod:`bench.tune.tuned` — ``tuned.toml``: reading, writing, image hashes, overlap.
- :mod:`bench.tune.rules` — fitting a parameter as a function of the noise level.
"""

from bench.tune.space import Tunable, search_space, tunable

__all__ = ["Tunable", "search_space", "tunable", "tune", "TuneConfig"]


def __getattr__(name):
    if name in ("tune", "TuneConfig"):
        from bench.tune import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'bench.tune' has no attribute {name!r}")
