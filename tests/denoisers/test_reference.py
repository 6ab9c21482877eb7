"""The suite's numbers against independent reference measurements on Set12.

The reference figures are in ``$BENCH_DATA_DIR/README.md``: BM3D (``bm3d`` 4.0.3, all
stages, ``sigma_psd = sigma / 255``) gives 29.99 dB at Gaussian sigma 25, noisy image not
clipped, output clipped, mean over images then seeds.
"""

from concurrent.futures import ProcessPoolExecutor

import pytest

from conftest import reference_folder

BM3D_SET12_SIGMA25 = 29.99


def _bm3d_run(args):
    folder, seed, out = args
    from bench.run.runner import run_sweep
    from bench.sweep import DenoiserSpec, NoiseSpec, Sweep

    sweep = Sweep(datasets=[f"folder:{folder}"], noises=[NoiseSpec("gaussian", (25,))],
                  denoisers=[DenoiserSpec("bm3d")], seeds=[seed])
    return run_sweep(sweep, out, progress=False)


@pytest.mark.slow
def test_bm3d_on_set12_sigma25_matches_reference(tmp_path):
    folder = reference_folder("Set12")
    jobs = [(folder, seed, tmp_path / f"seed{seed}") for seed in (0, 1, 2)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        frames = list(pool.map(_bm3d_run, jobs))
    per_seed = [frame["psnr"].mean() for frame in frames]
    assert all(len(frame) == 12 and (frame["status"] == "ok").all() for frame in frames)
    mean = sum(per_seed) / len(per_seed)
    print(f"BM3D Set12 sigma 25: per seed {per_seed}, mean {mean:.3f} dB")
    assert abs(mean - BM3D_SET12_SIGMA25) <= 0.05
