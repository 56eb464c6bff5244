#!/usr/bin/env bash
# `make gpu-check`: everything that needs the GPU machine, in one call (the device tool lends one H200/H100,
# 16 CPU cores, torch 2.11+cu130, no network; 15 minutes of device time per session). Writes logs, JSON and
# PNGs under $OUT (default ./gpu-check-out) and prints a one-screen summary. Steps:
#   1. build: MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0, full CUDAExtension, registration check (CUDA required);
#   2. the test suite with the CUDA tests running: fails if any test is skipped for want of a GPU;
#   3. GPU benchmarks: fp32 and bf16 at 2^26..2^30 against fill_, the many-small section, the torch stream on
#      one rank's shard (benchmarks/shard_blocks.py);
#   4. the 16-core CPU figures: philox uniform_ against torch.nn.init at 2^24, 1 and 16 threads.
# The device tool allows 10 minutes a call and 15 minutes of device time a session, start included, so the steps
# come in two parts, one call each: GPU_CHECK_PART=1 (steps 1-2, budgets 200 + 30 + 240 s) and GPU_CHECK_PART=2
# (steps 3-4, 150 + 60 + 90 s; it rebuilds first only if pyinit's CUDA kernels do not load, as on a fresh machine).
# Run part 1 first (`make gpu-check GPU_CHECK_PART=1`), then part 2 while the machine is warm; `all` (the
# default) runs both, for a machine without the limit. Each step has a time budget; a step that fails is reported
# and the next still runs, the exit status is that of the first failure. GPU_CHECK_ALLOW_NO_GPU=1 rehearses it on a machine without a GPU
# (steps 2-3 then only show that they run; nothing there is a GPU result).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(pwd)/gpu-check-out}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
export MAX_JOBS=${MAX_JOBS:-16} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} PYTHONUNBUFFERED=1
status=0
summary=()
start_all=$(date +%s)

run_step() {  # run_step NAME BUDGET_S COMMAND...: logs to $OUT/NAME.log, records the outcome
  local name=$1 budget=$2
  shift 2
  local t0=$(date +%s)
  echo "== gpu-check: $name (budget ${budget}s, $(date +%T))"
  timeout "$budget" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  if [[ $rc -eq 0 ]]; then
    summary+=("$name: OK (${dt}s)")
  else
    summary+=("$name: FAILED rc=$rc (${dt}s; see $name.log)")
    tail -25 "$OUT/$name.log"
    [[ $status -eq 0 ]] && status=$rc
  fi
  return $rc
}

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv 2>&1 || true
  "$PYTHON" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, \
'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count(), 'cpus', __import__('os').cpu_count())"
  nvcc --version | tail -2
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  if [[ "${GPU_CHECK_ALLOW_NO_GPU:-0}" != 1 ]]; then
    echo "gpu-check: no GPU visible (torch.cuda.is_available() is False)" >&2
    exit 1
  fi
  echo "gpu-check: REHEARSAL without a GPU: no result below is a GPU result"
  summary+=("REHEARSAL: no GPU")
fi

PART=${GPU_CHECK_PART:-all}
build() {
  run_step build 200 "$PYTHON" -m pip install -v --no-build-isolation --no-deps -e . &&
    run_step registration 30 "$PYTHON" .ci/check_registration.py --require-cuda
}

if [[ "$PART" == all || "$PART" == 1 ]]; then
  build
  # The CUDA cases only (the `cuda` marker: 1961 tests); the CPU kernels of an unverified torch (the GPU
  # machine's 2.11) fall back to torch there, so the CPU suite says nothing new. A CPU fallback is a warning,
  # not an error; the CUDA kernels have no version gate and are compared with that torch's own CUDA kernels.
  run_step tests 240 "$PYTHON" -m pytest tests -q -m cuda -p no:cacheprovider -rs \
    -W "default::pyinit._support.PyinitFallbackWarning" --junitxml="$OUT/tests.xml"
  gpu_skips=$(grep -c "needs a CUDA GPU" "$OUT/tests.log" || true)
  summary+=("tests: $(grep -E '[0-9]+ (passed|failed)' "$OUT/tests.log" | tail -1)")
  if [[ "$gpu_skips" != 0 ]]; then
    summary+=("tests: $gpu_skips skip lines 'needs a CUDA GPU' (the CUDA tests did not all run)")
    [[ "${GPU_CHECK_ALLOW_NO_GPU:-0}" == 1 ]] || { [[ $status -eq 0 ]] && status=1; }
  fi
fi

if [[ "$PART" == all || "$PART" == 2 ]]; then
  if [[ "$PART" == 2 ]] && ! "$PYTHON" -c "import pyinit, torch, sys; \
sys.exit(0 if torch._C._dispatch_has_kernel_for_dispatch_key('pyinit::uniform_', 'CUDA') else 1)" 2>/dev/null; then
    build  # a fresh machine: part 1's build is gone
  fi
  run_step bench-gpu 150 "$PYTHON" -m benchmarks --devices cuda --sizes 26,28 --dtypes float32,bfloat16 \
    --sections sweep,small --no-compile --no-progress --out "$OUT" --tag gpu
  # The torch stream on one rank's shard (Note [The torch stream on a block]): blocks against the whole tensor.
  run_step bench-shard 60 "$PYTHON" -m benchmarks.shard_blocks --device cuda
  run_step bench-cpu16 90 "$PYTHON" -m benchmarks --devices cpu --sizes 24 --dtypes float32 \
    --initializers uniform_,normal_,masked_uniform_ --sections sweep,threads --thread-size 24 --no-compile \
    --no-progress --out "$OUT" --tag cpu16
fi

echo
echo "==== gpu-check summary ($(( $(date +%s) - start_all ))s; files in $OUT)"
printf '%s\n' "${summary[@]}"
for table in "$OUT/gpu.txt" "$OUT/bench-shard.log" "$OUT/cpu16.txt"; do
  [[ -f "$table" ]] && { echo "--- $(basename "$table")"; grep -E "fill_|% of fill|pyinit|torch.nn.init" "$table" | head -30; }
done
exit $status
