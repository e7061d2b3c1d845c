#!/usr/bin/env bash
# Measures `trainer gguf` on a random bf16 checkpoint with the published Qwen3.5-9B shapes and layout (sharded
# model-0000X-of-0000N.safetensors + model.safetensors.index.json, model.language_model.* names, vision/MTP tensors
# to leave out): wall time and peak RSS (/usr/bin/time -v) for each --type, one at a time, each GGUF deleted after.
#
#   scripts/bench/gguf-9b.sh [WORKDIR] [TYPES...]        e.g. scripts/bench/gguf-9b.sh /tmp/gguf-9b f16 q8_0
#
# Environment: LAYERS=N keeps the first N layers (every 9B tensor shape is there from N = 4: 3 linear-attention
# layers and 1 full-attention layer, the 248320 x 4096 embedding and head; the export holds one tensor at a time, so
# the peak RSS does not depend on N and the time grows with the bytes); ADAPTER_RANK=R (default 16) also writes a
# PEFT adapter on every projection and merges it (0: no adapter); KEEP=1 keeps the checkpoint afterwards.
# Disk: the full 9B is 18 GB of checkpoint plus 18 GB (f16) or 10 GB (q8_0) of GGUF; an existing checkpoint in
# WORKDIR is reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-/tmp/gguf-9b}
shift || true
if [ $# -gt 0 ]; then types=("$@"); else types=(f16 q8_0); fi
layers=${LAYERS:-0}
rank=${ADAPTER_RANK:-16}
ckpt="$work/Qwen3.5-9B-random"
[ "$layers" != 0 ] && ckpt="$ckpt-${layers}layers"

dotnet build src/Cli -c Release -v q -nologo >/dev/null
trainer="dotnet src/Cli/bin/Release/net10.0/trainer.dll"
mkdir -p "$work"
if [ ! -f "$ckpt/model.safetensors.index.json" ]; then
  args=("$ckpt" --size 9b --adapter-rank "$rank")
  [ "$layers" != 0 ] && args+=(--layers "$layers")
  /usr/bin/time -f "checkpoint written in %e s" python3 scripts/bench/write_random_qwen35_checkpoint.py "${args[@]}"
fi
adapter=()
[ "$rank" != 0 ] && [ -d "$ckpt-adapter" ] && adapter=(--adapter "$ckpt-adapter")
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(free -g | awk '/Mem:/{print $2}') GB RAM"
du -sh "$ckpt"
for type in "${types[@]}"; do
  out="$work/out.$type.gguf"
  log="$work/time.$type.txt"
  /usr/bin/time -v $trainer gguf --model "$ckpt" "${adapter[@]}" --out "$out" --type "$type" --overwrite 2>"$log" || { cat "$log"; exit 1; }
  echo "--type $type: $(ls -l "$out" | awk '{print $5}') bytes;" \
    "$(grep -E 'Elapsed \(wall' "$log" | sed 's/.*): //') wall;" \
    "user $(grep 'User time' "$log" | awk '{print $NF}') s, system $(grep 'System time' "$log" | awk '{print $NF}') s;" \
    "peak RSS $(grep 'Maximum resident' "$log" | awk '{print $NF}') kB; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
  rm -f "$out"
done
[ "${KEEP:-0}" = 1 ] || rm -rf "$ckpt" "$ckpt-adapter"
