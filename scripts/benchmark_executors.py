"""Speed-up of the ``process`` executor over ``serial`` on a sweep of single-threaded methods.

Both runs execute the same sweep in this one invocation, so the ratio is comparable even on a
shared, noisy machine. Usage::

    python scripts/benchmark_executors.py [--jobs N] [--crop 384]

Prints the wall time of each executor and the ratio serial / process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.run.executors import default_jobs
from bench.run.runner import run_sweep
from bench.sweep import DenoiserSpec, NoiseSpec, Sweep

METHODS = ("median", "gaussian_blur", "tv", "nlm", "wavelet", "bilateral", "nlm_opencv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--crop", type=int, default=384)
    args = parser.parse_args()
    base = dict(datasets=["skimage"], crop=args.crop, seeds=[0, 1],
                noises=[NoiseSpec("gaussian", (15, 25, 50))],
                denoisers=[DenoiserSpec(name) for name in METHODS])
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for executor, jobs in (("serial", 1), ("process", args.jobs)):
            start = time.perf_counter()
            results = run_sweep(Sweep(executor=executor, jobs=jobs, **base),
                                Path(tmp) / executor, progress=False)
            times[executor] = time.perf_counter() - start
            assert (results["status"] == "ok").all(), results["error"].unique()
            print(f"{executor:>8} ({jobs} worker{'s' if jobs > 1 else ''}): {len(results)} cells "
                  f"in {times[executor]:.1f} s")
    print(f"speed-up process/serial with {args.jobs} workers: {times['serial'] / times['process']:.2f}x")


if __name__ == "__main__":
    main()
