"""PSNR and MP/s of every learned denoiser per precision, on the CPU or a CUDA GPU.

Runs a short serial sweep with the suite's own runner (Gaussian sigma 25, oracle, seed 0) on
square crops of scikit-image's camera, moon and brick (gray) and astronaut (colour), once per
precision (fp32, bf16, fp16), plus optional fp32 reference denoisers such as ``bm3d`` for an
MP/s comparison on the same images. Prints one table row per denoiser and precision and the
PSNR change of the reduced precisions. Exits 1 if any cell failed.

Usage::

    python scripts/precision_table.py --device cuda --size 512 --repeats 5
    python scripts/precision_table.py --device cpu --size 256 --repeats 3 --reference bm3d
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

PRECISIONS = ("fp32", "bf16", "fp16")
IMAGES = ("camera", "moon", "brick", "astronaut")


def write_images(folder: Path, size: int) -> None:
    """Write the top-left ``size`` x ``size`` crop of each test image as a PNG."""
    import imageio.v3 as iio
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    for name in IMAGES:
        iio.imwrite(folder / f"{name}.png", getattr(skimage.data, name)()[:size, :size])


def measure(device: str, size: int, repeats: int, references: list[str], out: Path):
    """Run the sweep; return ``(rows, failed)`` with one row per denoiser and precision."""
    from bench.registry import default_registry
    from bench.run.runner import run_sweep
    from bench.sweep import DenoiserSpec, NoiseSpec, Sweep

    write_images(out / "images", size)
    registry = default_registry()
    learned = [e.name for e in registry.entries("denoiser")
               if e.available and registry.load("denoiser", e.name).family == "learned"]
    specs = [DenoiserSpec(name, (("precision", p),)) for name in learned for p in PRECISIONS]
    specs += [DenoiserSpec(name) for name in references]
    sweep = Sweep(datasets=[f"folder:{out / 'images'}"], noises=[NoiseSpec("gaussian", (25,))],
                  denoisers=specs, seeds=[0], modes=["oracle"], device=device, repeats=repeats,
                  crop=None, executor="serial")
    frame = run_sweep(sweep, out / "run", progress=False)
    failed = frame[frame["status"] != "ok"]
    frame = frame[frame["status"] == "ok"].copy()
    frame["precision"] = frame["params"].map(lambda text: json.loads(text).get("precision", "fp32"))
    frame["mp"] = frame["height"] * frame["width"] / 1e6
    rows = []
    for (name, precision), group in frame.groupby(["denoiser", "precision"], sort=False):
        gray = group[group["channels"] == 1]
        rows.append({"denoiser": name, "precision": precision,
                     "psnr_gray": gray["psnr"].mean(), "psnr_all": group["psnr"].mean(),
                     "mps_all": group["mp"].sum() / group["seconds"].sum(),
                     "mps_gray": gray["mpix_per_s"].median()})
    return rows, failed


def print_table(rows: list[dict], size: int) -> None:
    """Print the per-precision table and the PSNR change of bf16 and fp16 against fp32."""
    gray_header = f"MP/s {size} gray"
    print(f"{'denoiser':14} {'precision':9} {'PSNR gray':>9} {'PSNR all':>9} {'MP/s all':>9} "
          f"{gray_header:>14}")
    for r in rows:
        print(f"{r['denoiser']:14} {r['precision']:9} {r['psnr_gray']:9.2f} {r['psnr_all']:9.2f} "
              f"{r['mps_all']:9.2f} {r['mps_gray']:14.2f}")
    table = {(r["denoiser"], r["precision"]): r["psnr_all"] for r in rows}
    print("\nPSNR change of reduced precision (dB, all images):")
    for name in dict.fromkeys(r["denoiser"] for r in rows):
        if (name, "bf16") not in table:
            continue
        deltas = [f"{p} {table[(name, p)] - table[(name, 'fp32')]:+.3f}" for p in PRECISIONS[1:]
                  if (name, p) in table]
        print(f"  {name:14} " + ", ".join(deltas))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--size", type=int, default=256, help="side of the square test crops")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per cell (median)")
    parser.add_argument("--reference", action="append", default=[],
                        help="an fp32 denoiser to time on the same images, e.g. bm3d; repeatable")
    parser.add_argument("--out", type=Path, help="working folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("precision_table: --device cuda but torch sees no CUDA GPU", file=sys.stderr)
            return 2
        torch.backends.cudnn.benchmark = True
    with tempfile.TemporaryDirectory() as scratch:
        rows, failed = measure(args.device, args.size, args.repeats, args.reference,
                               args.out or Path(scratch))
    print_table(rows, args.size)
    if len(failed):
        print(f"\n{len(failed)} cells failed:")
        for _, row in failed.drop_duplicates(["denoiser", "params"]).iterrows():
            print(f"  {row['denoiser']} {row['params']}: {row['error']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
