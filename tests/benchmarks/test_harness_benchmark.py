"""What the harness costs: one cell against its bare denoise call, and sweep throughput.

One cell (:meth:`bench.run.worker.CellRunner.run`) of ``gaussian_blur`` on a fixed 256x256
gray and colour image is timed beside the bare denoise call and the bare call plus the
metrics, in one group per image, so the JSON reads as a table of the harness's overhead. The
noisy image is made once per noisy image by the worker, so repeated runs of one cell time
what a cell costs in a sweep. Sweep throughput is the cells per second of
:func:`bench.run_sweep` on a small sweep of cheap methods with 1 and 2 worker processes.

Run timed with ``python -m pytest tests/benchmarks --benchmark-enable``; under the project's
default ``--benchmark-disable`` each case runs once, small, as a test.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench import DenoiserSpec, NoiseSpec, Sweep, run_sweep
from bench.plan import Cell
from bench.run.worker import CellRunner, WorkerConfig

#: Side of the timed images, and of the images the disabled (test) run uses.
SIZE, TEST_SIZE = 256, 64
#: The fixed images of scikit-image's samples.
IMAGES = {"gray": "camera", "colour": "astronaut"}
#: What a run of the harness benchmark times.
PARTS = ("denoise", "denoise+metrics", "cell")


@pytest.fixture
def size(benchmark) -> int:
    """The image side: :data:`SIZE` when timed, :data:`TEST_SIZE` when benchmarks are disabled."""
    return SIZE if benchmark.enabled else TEST_SIZE


def gaussian_blur_cell(image: str) -> Cell:
    """The cell of ``gaussian_blur`` on an image of scikit-image's samples, Gaussian sigma 25."""
    return Cell(dataset="skimage", image=image, noise="gaussian", level=25.0,
                noise_params=(("clip", False),), seed=0, mode="oracle",
                denoiser="gaussian_blur", params=(), device="cpu")


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("kind", list(IMAGES))
def test_cell_against_bare_call(benchmark, kind, part, size):
    runner = CellRunner(WorkerConfig(crop=size))
    cell = gaussian_blur_cell(IMAGES[kind])
    first = runner.run(cell)  # sets the denoiser up and makes the noisy image, untimed
    assert first.record.status == "ok", first.record.error
    scored = runner.noisy(cell)
    clean, noisy = scored.clean, scored.noisy
    denoiser = runner.denoiser(cell, noisy.image)
    reference = clean.astype(np.float64)  # once per image, as any loop would

    def denoise():
        return denoiser.denoise(noisy.image, noisy.sigma, noise=noisy.model)

    def denoise_and_score():
        output = np.clip(denoise().astype(np.float64), 0.0, 1.0)
        return {name: metric(reference, output) for name, metric in runner.metrics.items()}

    benchmark.group = f"cell gaussian_blur {kind} {size}x{size}"
    benchmark.extra_info.update(size=size, channels=1 if clean.ndim == 2 else clean.shape[2],
                                part=part)
    work = {"denoise": denoise, "denoise+metrics": denoise_and_score,
            "cell": lambda: runner.run(cell)}[part]
    result = benchmark(work)
    if benchmark.enabled and benchmark.stats:
        benchmark.extra_info["mpix_per_s"] = round(size * size / 1e6 / benchmark.stats["median"], 3)

    if part == "cell":
        assert result.record.status == "ok", result.record.error
        assert result.record.scores == first.record.scores
    elif part == "denoise+metrics":
        assert result == pytest.approx(first.record.scores, abs=1e-9)


@pytest.mark.parametrize("jobs", [1, 2])
def test_sweep_throughput(benchmark, jobs, tmp_path):
    if benchmark.enabled:  # 8 images x 3 levels x 2 seeds x 2 methods = 96 cells, 3 runs
        crop, levels, seeds, rounds = 96, (15, 25, 50), [0, 1], 3
        methods = ("gaussian_blur", "median")
    else:  # 8 cells, once
        crop, levels, seeds, rounds = 48, (25,), [0], 1
        methods = ("gaussian_blur",)
    sweep = Sweep(datasets=["skimage"], crop=crop, noises=[NoiseSpec("gaussian", levels)],
                  denoisers=[DenoiserSpec(name) for name in methods], seeds=seeds,
                  executor="process", jobs=jobs)
    runs = itertools.count()

    def fresh_run_dir():  # a directory holding results would be resumed: nothing would run
        return (sweep, tmp_path / f"run{next(runs)}"), {"progress": False}

    benchmark.group = "sweep throughput"
    results = benchmark.pedantic(run_sweep, setup=fresh_run_dir, rounds=rounds)
    cells = len(results)
    benchmark.extra_info.update(cells=cells, workers=jobs, size=crop)
    if benchmark.enabled and benchmark.stats:
        benchmark.extra_info["cells_per_s"] = round(cells / benchmark.stats["median"], 2)

    assert cells == 8 * len(levels) * len(seeds) * len(methods)
    assert (results["status"] == "ok").all(), results["error"].unique()
    assert set(results["workers"]) == {jobs}
