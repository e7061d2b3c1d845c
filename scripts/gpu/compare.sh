#!/usr/bin/env bash
# Runs the speed comparison on one GPU, both sides with the same shape, tokens and LoRA config:
#   this trainer (`trainer bench`, packed by scripts/gpu/pack.sh) and transformers + PEFT (bench/hf_peft_bench.py).
# Usage on the GPU machine: scripts/gpu/compare.sh [LAYERS] [SEQ] [STEPS]   (defaults 8 4096 5)
# Results: $OUT (or ./artifacts/compare) /{dotnet.json, hf.json, summary.txt, *.log}.
set -uo pipefail
cd "$(dirname "$0")/../.."
layers="${1:-8}" seq="${2:-4096}" steps="${3:-5}"
out="${OUT:-artifacts/compare}"
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
common=(--shape 9b --layers "$layers" --seq "$seq" --steps "$steps")

echo "== trainer bench (TorchSharp)"
scripts/gpu/run.sh bench "${common[@]}" --device cuda --dtype bf16 --checkpointing --rank 16 --targets all-linear \
  --profile 2 --json > "$out/dotnet.json" 2> "$out/dotnet.log"
echo "rc=$?"; cat "$out/dotnet.json"

echo "== transformers + PEFT"
python3 bench/hf_peft_bench.py "${common[@]}" --rank 16 --alpha 32 --out "$out/hf.json" > "$out/hf.log" 2>&1
echo "rc=$?"; cat "$out/hf.json" 2>/dev/null || tail -20 "$out/hf.log"

echo "== side by side"
python3 bench/compare_summary.py "$out/dotnet.json" "$out/hf.json" | tee "$out/summary.txt"
