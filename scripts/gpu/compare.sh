#!/usr/bin/env bash
# Runs the speed comparison on one GPU, both sides with the same shape, tokens and LoRA config:
#   this trainer (`trainer bench`, packed by scripts/gpu/pack.sh) and transformers + PEFT (bench/hf_peft_bench.py).
# Usage on the GPU machine: scripts/gpu/compare.sh [LAYERS] [SEQ] [STEPS]   (defaults 8 4096 5)
# On a CPU (wherever transformers + PEFT are installed): DEVICE=cpu DTYPE=fp32 THREADS=2 scripts/gpu/compare.sh 4 256 3
# (the trainer side then runs the locally built trainer instead of the GPU pack).
# Results: $OUT (or ./artifacts/compare) /{dotnet.json, hf.json, summary.txt, *.log}.
set -uo pipefail
cd "$(dirname "$0")/../.."
layers="${1:-8}" seq="${2:-4096}" steps="${3:-5}"
device="${DEVICE:-cuda}" dtype="${DTYPE:-bf16}" threads="${THREADS:-0}"
out="${OUT:-artifacts/compare}"
mkdir -p "$out"
[[ "$device" == cuda* ]] && { nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true; }
common=(--shape 9b --layers "$layers" --seq "$seq" --steps "$steps")

echo "== trainer bench (TorchSharp)"
if [[ "$device" == cuda* ]]; then trainer=(scripts/gpu/run.sh); else trainer=(dotnet src/Cli/bin/Release/net10.0/trainer.dll); fi
"${trainer[@]}" bench "${common[@]}" --device "$device" --dtype "$dtype" --checkpointing --rank 16 --targets all-linear \
  --threads "$threads" --profile 2 --json > "$out/dotnet.json" 2> "$out/dotnet.log"
echo "rc=$?"; cat "$out/dotnet.json"

echo "== transformers + PEFT"
python3 bench/hf_peft_bench.py "${common[@]}" --rank 16 --alpha 32 --device "$device" --dtype "$dtype" --threads "$threads" \
  --out "$out/hf.json" > "$out/hf.log" 2>&1
echo "rc=$?"; cat "$out/hf.json" 2>/dev/null || tail -20 "$out/hf.log"

echo "== side by side"
python3 bench/compare_summary.py "$out/dotnet.json" "$out/hf.json" | tee "$out/summary.txt"
