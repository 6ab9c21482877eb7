"""BM3D on Poisson and Poisson-Gaussian noise: given the RMS sigma, or through the GAT.

Compares, on 128 x 128 centre crops of four Set12 images (01-04), at Poisson peak 2, 10
and 30 and Poisson-Gaussian noise (gain 0.01, sigma 10/255, the suite's default), the
``bm3d`` package's BM3D (both stages)

- ``rms``: on the noisy image with ``sigma_psd`` = the RMS of noisy - clean (the suite's
  oracle mode for signal-dependent noise);
- ``gat+alg``: through the generalized Anscombe transform with the true gain and sigma,
  inverted algebraically (:func:`bench.vst.algebraic_inverse_generalized_anscombe`);
- ``gat``: the same with the exact unbiased inverse (:func:`bench.vst.stabilise`,
  :func:`bench.vst.unstabilise`);
- ``gat blind``: the same with gain and sigma estimated from the noisy image
  (:func:`bench.vst.estimate_poisson_gaussian`).

Noise comes from the suite's own noise models with one ``numpy.random.default_rng(seed)``.
PSNR: data range 1, output clipped to [0, 1], mean over the images. Prints one row per
setting and the gain of ``gat`` over ``rms``. About 3 minutes on the shared 2-core machine.

Usage::

    python scripts/vst_table.py [--data $BENCH_DATA_DIR/Set12] [--seed 0] [--crop 128]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

IMAGES = ("01.png", "02.png", "03.png", "04.png")
#: (label, noise name, level, extra parameters, gain, sigma) with gain and sigma in [0, 1] units.
SETTINGS = (
    ("poisson peak 2", "poisson", 2.0, {}, 1 / 2, 0.0),
    ("poisson peak 10", "poisson", 10.0, {}, 1 / 10, 0.0),
    ("poisson peak 30", "poisson", 30.0, {}, 1 / 30, 0.0),
    ("poisson-gaussian 10, gain 0.01", "poisson_gaussian", 10.0, {"gain": 0.01}, 0.01,
     10 / 255),
)
METHODS = ("rms", "gat+alg", "gat", "gat blind")


def psnr(clean: np.ndarray, estimate: np.ndarray) -> float:
    """PSNR in dB, data range 1, the estimate clipped to [0, 1]."""
    error = np.clip(estimate.astype(np.float64), 0, 1) - clean.astype(np.float64)
    return float(10 * np.log10(1.0 / np.mean(error * error)))


def denoise_all(clean, noisy, rms, gain, sigma) -> dict[str, float]:
    """PSNR of each method of :data:`METHODS` on one noisy image."""
    import bm3d

    from bench.vst import (
        algebraic_inverse_generalized_anscombe,
        estimate_poisson_gaussian,
        stabilise,
        unstabilise,
    )

    def bm3d_on(image, level):
        return bm3d.bm3d(image.astype(np.float64), sigma_psd=level)

    scores = {"rms": psnr(clean, bm3d_on(noisy, rms))}
    image, level, state = stabilise(noisy, gain, sigma)
    denoised = bm3d_on(image, level)
    transformed = state.offset + state.scale * denoised
    scores["gat+alg"] = psnr(clean, algebraic_inverse_generalized_anscombe(
        transformed, gain, sigma))
    scores["gat"] = psnr(clean, unstabilise(denoised, state))
    fit = estimate_poisson_gaussian(noisy)
    image, level, state = stabilise(noisy, fit.gain, fit.sigma)
    scores["gat blind"] = psnr(clean, unstabilise(bm3d_on(image, level), state))
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("BENCH_DATA_DIR", "../shared/datasets")) / "Set12"
    parser.add_argument("--data", type=Path, default=default, help="the Set12 folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop", type=int, default=128)
    args = parser.parse_args()

    from bench.datasets import open_dataset, read_image
    from bench.registry import default_registry

    if not args.data.is_dir():
        print(f"Set12 folder not found: {args.data} (set BENCH_DATA_DIR or --data)",
              file=sys.stderr)
        return 2
    dataset = open_dataset(f"folder:{args.data}")
    cleans = [read_image(dataset, name, crop=args.crop) for name in IMAGES]
    registry = default_registry()
    rng = np.random.default_rng(args.seed)

    print(f"BM3D, Set12 {', '.join(IMAGES)} centre {args.crop}x{args.crop}, seed {args.seed}; "
          f"mean PSNR (dB)")
    header = f"{'noise':32s} {'noisy':>6s} " + " ".join(f"{m:>9s}" for m in METHODS)
    print(header + f" {'gat-rms':>8s}")
    for label, noise_name, level, params, gain, sigma in SETTINGS:
        noise = registry.create_noise(noise_name)
        rows = []
        for clean in cleans:
            noisy = noise.apply(clean, level, rng, **params)
            scores = denoise_all(clean, noisy.image, noisy.sigma, gain, sigma)
            rows.append([psnr(clean, noisy.image)] + [scores[m] for m in METHODS])
        mean = np.mean(rows, axis=0)
        cells = " ".join(f"{value:9.2f}" for value in mean[1:])
        gat_gain = mean[1 + METHODS.index("gat")] - mean[1 + METHODS.index("rms")]
        print(f"{label:32s} {mean[0]:6.2f} {cells} {gat_gain:+8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
