"""Per method of a run directory: cells, status, mean PSNR and median MP/s on one image size.

Usage: ``python scripts/throughput_table.py RUN_DIR [--size 512]`` (used by
``scripts/gpu_check.sh`` to print the suite's own figures on cuda).
"""

from __future__ import annotations

import argparse

from bench import load_results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--size", type=int, default=512,
                        help="keep the cells of SIZE x SIZE images (default 512)")
    args = parser.parse_args(argv)
    results = load_results(args.run_dir)
    cells = results[(results["height"] == args.size) & (results["width"] == args.size)]
    if cells.empty:
        raise SystemExit(f"no cell of a {args.size}x{args.size} image in {args.run_dir}")
    table = cells.groupby("method").agg(
        cells=("psnr", "size"), status=("status", lambda s: ",".join(sorted(set(s)))),
        psnr=("psnr", "mean"), mpix_per_s=("mpix_per_s", "median"))
    print(table.sort_values("mpix_per_s", ascending=False).round(2).to_string())


if __name__ == "__main__":
    main()
