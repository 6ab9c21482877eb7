"""denoise-bench: compare classical and learned image denoisers.

The public API (imported lazily, so ``bench --help`` stays fast)::

    from bench import Sweep, NoiseSpec, DenoiserSpec, run_sweep, load_results
    results = run_sweep(Sweep(noises=[NoiseSpec("gaussian", (25,))]), "runs/mine")
"""

from importlib import import_module

_API = {
    "Sweep": "bench.sweep", "NoiseSpec": "bench.sweep", "DenoiserSpec": "bench.sweep",
    "run_sweep": "bench.run.runner", "load_results": "bench.store.results",
    "default_registry": "bench.registry",
}
__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
