"""The work of a small ``bench run`` sweep done by a plain serial loop, for a speed reference.

For every image x Gaussian level x seed: add the noise, denoise with a Gaussian blur (the
suite's ``gaussian_blur`` rule: width = sigma in 8-bit units / 25 pixels, at least 0.5), time
the denoise call, and score PSNR and SSIM of the noisy and of the denoised image with
scikit-image (Wang et al.'s protocol: Gaussian window sigma 1.5, K1 0.01, K2 0.03, population
covariance; data range 1; noisy image unclipped, output clipped to [0, 1]; float64). No
harness: no planning, no worker processes, no record file, no report. The noisy images are
drawn with their own generator, so they are not the suite's, but over a few hundred cells the
mean scores agree with ``bench run``'s to about 0.01 dB.

``scripts/perf_report.py`` compares its wall time with ``bench run`` on the same work.

Usage::

    python scripts/plain_loop.py ../shared/datasets/Train400 --levels 15,25,50 --seeds 0,1,2
    python scripts/plain_loop.py ../shared/datasets/Train400 --images 50 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

#: The image files the loop reads (``bench``'s ``folder:`` dataset reads the same suffixes).
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def read_images(folder: Path, limit: int | None = None) -> dict[str, np.ndarray]:
    """The first ``limit`` images of ``folder`` (sorted by name), float32 in [0, 1]."""
    import imageio.v3 as iio

    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not paths:
        raise SystemExit(f"no image in {folder}")
    images = {}
    for path in paths[:limit]:
        image = np.asarray(iio.imread(path))
        if image.ndim == 3 and image.shape[-1] == 4:
            image = image[..., :3]
        scale = 65535.0 if image.dtype == np.uint16 else 255.0
        images[path.name] = (image / scale).astype(np.float32)
    return images


def run(images: dict[str, np.ndarray], levels: list[float], seeds: list[int]) -> list[dict]:
    """Every cell of images x levels x seeds; one row of scores and timing per cell.

    Parameters
    ----------
    images : dict of str to numpy.ndarray
        Clean float32 images in [0, 1], (H, W) or (H, W, 3).
    levels : list of float
        Gaussian noise sigmas in 8-bit units.
    seeds : list of int
        Noise seeds.
    """
    from scipy import ndimage
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    def scores(clean: np.ndarray, image: np.ndarray) -> tuple[float, float]:
        axis = -1 if clean.ndim == 3 else None
        psnr = peak_signal_noise_ratio(clean, image, data_range=1.0)
        ssim = structural_similarity(clean, image, data_range=1.0, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False, channel_axis=axis)
        return psnr, ssim

    rows = []
    for index, (name, clean) in enumerate(images.items()):
        reference = clean.astype(np.float64)
        for level in levels:
            for seed in seeds:
                rng = np.random.default_rng([seed, index, round(level * 1000)])
                noise = rng.standard_normal(clean.shape) * (level / 255)
                noisy = (clean + noise).astype(np.float32)
                width = max(0.5, level / 25)
                widths = (width, width, 0) if noisy.ndim == 3 else width
                start = time.perf_counter()
                denoised = ndimage.gaussian_filter(noisy, sigma=widths, mode="reflect")
                seconds = time.perf_counter() - start
                noisy_psnr, noisy_ssim = scores(reference, noisy.astype(np.float64))
                psnr, ssim = scores(reference, np.clip(denoised.astype(np.float64), 0.0, 1.0))
                rows.append({"image": name, "level": level, "seed": seed, "psnr": psnr,
                             "ssim": ssim, "noisy_psnr": noisy_psnr, "noisy_ssim": noisy_ssim,
                             "seconds": seconds,
                             "mpix_per_s": clean.shape[0] * clean.shape[1] / 1e6 / seconds})
    return rows


def summarise(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean PSNR and SSIM and median MP/s per level (keys are levels as text, e.g. ``"25"``)."""
    summary = {}
    for level in sorted({row["level"] for row in rows}):
        chosen = [row for row in rows if row["level"] == level]
        summary[f"{level:g}"] = {
            "psnr": statistics.fmean(row["psnr"] for row in chosen),
            "ssim": statistics.fmean(row["ssim"] for row in chosen),
            "noisy_psnr": statistics.fmean(row["noisy_psnr"] for row in chosen),
            "mpix_per_s": statistics.median(row["mpix_per_s"] for row in chosen),
        }
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of images (PNG, JPEG, TIFF, BMP)")
    parser.add_argument("--images", type=int, default=None, metavar="N",
                        help="only the first N images (sorted by name)")
    parser.add_argument("--levels", default="15,25,50",
                        help="Gaussian sigmas in 8-bit units, comma-separated (default 15,25,50)")
    parser.add_argument("--seeds", default="0,1,2", help="noise seeds (default 0,1,2)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (cells, seconds, per-level means) instead")
    args = parser.parse_args(argv)
    levels = [float(value) for value in args.levels.split(",")]
    seeds = [int(value) for value in args.seeds.split(",")]

    start = time.perf_counter()
    images = read_images(args.folder, args.images)
    rows = run(images, levels, seeds)
    seconds = time.perf_counter() - start
    summary = summarise(rows)
    if args.json:
        json.dump({"cells": len(rows), "seconds": seconds, "levels": summary}, sys.stdout)
        print()
        return
    print(f"{len(rows)} cells ({len(images)} images x {len(levels)} levels x {len(seeds)} seeds) "
          f"in {seconds:.1f} s")
    print(f"{'sigma':>6} {'noisy PSNR':>11} {'PSNR':>7} {'SSIM':>7} {'MP/s':>8}")
    for level, values in summary.items():
        print(f"{level:>6} {values['noisy_psnr']:11.2f} {values['psnr']:7.2f} "
              f"{values['ssim']:7.4f} {values['mpix_per_s']:8.1f}")


if __name__ == "__main__":
    main()
