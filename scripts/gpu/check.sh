#!/usr/bin/env bash
# The correctness half of a GPU session in one device call (a few minutes), each step with its own time limit so one
# hang cannot eat the call:
#   env        nvidia-smi, PyTorch/transformers/PEFT versions
#   doctor     does TorchSharp's shim find every libtorch symbol it imports in this machine's torch/lib (static,
#              before loading), does libtorch load, does a CUDA matmul + backward give the known answer
#   verify-*   the golden checks (tests/fixtures/qwen35-tiny-a, made by Hugging Face) on CUDA: fp32 exact, fp32 with
#              TF32 (how training runs), bf16
#   train-tiny the tiny recipe on CUDA in bf16, 20 steps (loop, checkpoints, adapter export on the GPU)
# Usage on the GPU machine, after scripts/gpu/pack.sh here: scripts/gpu/check.sh
# Results: $OUT (or ./artifacts/check)/{summary.txt, *.log, *.json, tiny-cuda/}.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-artifacts/check}"
mkdir -p "$out"
limit="${STEP_TIMEOUT:-240}"

step() {
  local name=$1; shift
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "$name: rc=$rc ($((SECONDS - t0)) s)" | tee -a "$out/summary.txt"
  tail -n 30 "$out/$name.log"
  echo
}

{ nvidia-smi; python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "cuda", torch.version.cuda,
  "transformers", transformers.__version__, "peft", peft.__version__)'; } > "$out/env.txt" 2>&1
cat "$out/env.txt"
torch_lib="${TORCH_LIB:-$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}"

step doctor scripts/gpu/run.sh doctor --libtorch "$torch_lib" --json "$out/doctor.json"
step verify-fp32 scripts/gpu/run.sh verify --device cuda --json "$out/verify-fp32.json"
step verify-tf32 scripts/gpu/run.sh verify --device cuda --tf32 --json "$out/verify-tf32.json"
step verify-bf16 scripts/gpu/run.sh verify --device cuda --dtype bf16 --json "$out/verify-bf16.json"
step train-tiny scripts/gpu/run.sh --recipe tiny --set device=cuda --set precision=bf16 \
  --set schedule.max_steps=20 --set eval_every=10 --set save_every=10 --set output_dir="$out/tiny-cuda"
cat "$out/summary.txt"
