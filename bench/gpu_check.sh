#!/bin/bash
# One device call on a CUDA machine (run by hand; see bench/RESULTS.md): JIT-build gsplat, run the GPU tests,
# then the gaussian benchmark at 1280x720 for 7000 iterations with gsplat and TensoRF on CUDA.
# Expects the gsplat and PyAV wheels in .whl/ (pip download on a machine with the registry) and $OUT.
set -u
OUT=${OUT:-/tmp/vidscene-gpu}
mkdir -p "$OUT"
export TORCH_EXTENSIONS_DIR=/tmp/torch_ext MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0 PYTHONUNBUFFERED=1
exec > >(tee "$OUT/gpu_check.log") 2>&1
date -u; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
t0=$(date +%s)
timeout 240 python3 -c "from gsplat.cuda._backend import _C; print('gsplat extension', _C is not None)" 2>&1 | tail -3
echo "gsplat build s: $(( $(date +%s) - t0 ))"
[ -n "${RUN_GPU_TESTS:-}" ] && timeout 60 python3 -m pytest tests/pipeline/test_render_gpu.py -m gpu --noconftest -p no:cacheprovider -q 2>&1 | tail -3
timeout ${GAUSSIAN_TIMEOUT:-260} python3 bench/gaussian.py --device cuda --poses truth --width 1280 --height 720 \
  --seconds 10 --fps 12 --preset quality --iterations 7000 --max-long-side 1280 --json "$OUT/gaussian_cuda.json" 2>&1 | tail -25
timeout ${TENSORF_TIMEOUT:-110} python3 bench/tensorf.py --device cuda --poses truth --preset standard \
  --json "$OUT/tensorf_cuda.json" 2>&1 | tail -20
date -u
