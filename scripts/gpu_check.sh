#!/usr/bin/env bash
# One-command GPU check of the learned denoisers (issue 3). On a machine with CUDA:
#   1. the CUDA-marked tests (CPU/GPU agreement, reduced precision, tiling on the GPU);
#   2. a short sweep on cuda of every learned model in fp32, bf16 and fp16 on 512x512 images
#      (scikit-image's camera, moon and brick, gray, and astronaut, colour; Gaussian sigma 25,
#      oracle, one seed, median of 5 timed calls per image), printed as a table of PSNR and MP/s;
#   3. `bench run` on cuda (tensor path: protocol and metrics on the device) of dncnn in bf16
#      and fp32, ffdnet_small in bf16 and the torch classical methods on scikit-image's 512x512
#      images: the suite's own MP/s (scripts/throughput_table.py).
# Budget: about 5 minutes on an H100. Usage: scripts/gpu_check.sh [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${TMPDIR:-/tmp}/denoise-bench-gpu-check}"
mkdir -p "$out"

python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch')"
python -c "import torch; print('GPU:', torch.cuda.get_device_name(), '| torch', torch.__version__, '| CUDA', torch.version.cuda)"

echo "== CUDA-marked tests"
timeout 180 python -m pytest -m cuda -q -p no:cacheprovider tests/

echo "== sweep on cuda, 512x512, per precision"
timeout 150 python scripts/precision_table.py --device cuda --size 512 --repeats 5 --out "$out"

echo "== the suite on cuda, metrics on the device (issue 12's stretch: dncnn bf16 on 512x512 >= 300 MP/s)"
# skimage's 512x512 images; the torch classical methods beside the learned ones on one GPU.
timeout 200 python -m bench run --dataset skimage --noises gaussian:25 --seeds 0 --repeats 5 \
    --denoisers "dncnn(precision=bf16),dncnn,ffdnet_small(precision=bf16),gaussian_blur,median,bilateral,tv,nlm" \
    --device cuda --executor serial --quiet --out "$out/suite-cuda" > "$out/suite-cuda.log"
python scripts/throughput_table.py "$out/suite-cuda" --size 512
