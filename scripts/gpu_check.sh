#!/usr/bin/env bash
# One-command GPU check of the learned denoisers (issue 3). On a machine with CUDA:
#   1. the CUDA-marked tests (CPU/GPU agreement, reduced precision, tiling on the GPU);
#   2. a short sweep on cuda of every learned model in fp32, bf16 and fp16 on 512x512 images
#      (scikit-image's camera, moon and brick, gray, and astronaut, colour; Gaussian sigma 25,
#      oracle, one seed, median of 5 timed calls per image), printed as a table of PSNR and MP/s.
# Budget: well under 5 minutes on an H100. Usage: scripts/gpu_check.sh [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${TMPDIR:-/tmp}/denoise-bench-gpu-check}"
mkdir -p "$out"

python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch')"
python -c "import torch; print('GPU:', torch.cuda.get_device_name(), '| torch', torch.__version__, '| CUDA', torch.version.cuda)"

echo "== CUDA-marked tests"
timeout 180 python -m pytest -m cuda -q -p no:cacheprovider tests/

echo "== sweep on cuda, 512x512, per precision"
timeout 150 python - "$out" <<'PY'
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import skimage.data
import torch

from bench.registry import default_registry
from bench.runner import run_sweep
from bench.sweep import DenoiserSpec, NoiseSpec, Sweep

out = Path(sys.argv[1])
images = out / "images512"
images.mkdir(parents=True, exist_ok=True)
for name in ("camera", "moon", "brick", "astronaut"):
    iio.imwrite(images / f"{name}.png", getattr(skimage.data, name)()[:512, :512])

torch.backends.cudnn.benchmark = True
registry = default_registry()
learned = [e.name for e in registry.entries("denoiser")
           if e.available and registry.load("denoiser", e.name).family == "learned"]
precisions = ("fp32", "bf16", "fp16")
specs = [DenoiserSpec(name, (("precision", p),)) for name in learned for p in precisions]
sweep = Sweep(datasets=[f"folder:{images}"], noises=[NoiseSpec("gaussian", (25,))],
              denoisers=specs, seeds=[0], modes=["oracle"], device="cuda", repeats=5,
              crop=None, executor="serial")
frame = run_sweep(sweep, out / "run", progress=False)
bad = frame[frame["status"] != "ok"]
frame = frame[frame["status"] == "ok"].copy()
frame["precision"] = frame["params"].map(lambda text: __import__("json").loads(text)["precision"])
frame["mp"] = frame["height"] * frame["width"] / 1e6
rows = []
for (name, precision), group in frame.groupby(["denoiser", "precision"], sort=False):
    gray = group[group["channels"] == 1]
    rows.append((name, precision, gray["psnr"].mean(), group["psnr"].mean(),
                 group["mp"].sum() / group["seconds"].sum(), gray["mpix_per_s"].median()))
print(f"{'denoiser':14} {'precision':9} {'PSNR gray':>9} {'PSNR all':>9} {'MP/s all':>9} {'MP/s 512 gray':>13}")
for name, precision, p_gray, p_all, mps, mps_gray in rows:
    print(f"{name:14} {precision:9} {p_gray:9.2f} {p_all:9.2f} {mps:9.1f} {mps_gray:13.1f}")
print("\nPSNR change of reduced precision (dB, all images):")
table = {(r[0], r[1]): r[3] for r in rows}
for name in learned:
    if (name, "fp32") in table:
        deltas = [f"{p} {table[(name, p)] - table[(name, 'fp32')]:+.3f}" for p in precisions[1:]
                  if (name, p) in table]
        print(f"  {name:14} " + ", ".join(deltas))
if len(bad):
    print(f"\n{len(bad)} cells failed:")
    for _, row in bad.drop_duplicates(["denoiser", "params"]).iterrows():
        print(f"  {row['denoiser']} {row['params']}: {row['error']}")
    sys.exit(1)
PY
