#!/usr/bin/env bash
# Packs what must travel to a GPU machine that has PyTorch but no .NET (see docs/gpu.md):
#   artifacts/gpu/dotnet-runtime.tar.xz  the .NET runtime of this machine (host + Microsoft.NETCore.App)
#   artifacts/gpu/trainer/               the trainer built for the "external" Torch backend: TorchSharp only, no
#                                        libtorch inside; libtorch comes from PyTorch's torch/lib at run time.
# The result must stay under the device tool's 64 MiB carry limit; this script prints the size.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=artifacts/gpu
rm -rf "$out" && mkdir -p "$out"

dotnet publish src/Cli -c Release -r linux-x64 --self-contained false -p:TorchBackend=external \
  -p:SatelliteResourceLanguages=en -p:DebugType=none -o "$out/trainer" -v quiet -nologo
# No libtorch may travel: a bundled CPU libtorch would win over PyTorch's CUDA one.
if ls "$out/trainer" | grep -q '^libtorch'; then echo "error: a libtorch library ended up in $out/trainer" >&2; exit 1; fi
# Nor llama.cpp (LLamaSharp.Backend.Cpu, ~30 MB for linux-x64 alone): it serves only `trainer gguf --check`, which on
# the GPU machine then says in one line that llama.cpp is missing (exit 2); the GGUF export itself works.
find "$out/trainer" -path '*/runtimes/*' \( -name '*llama*' -o -name '*ggml*' -o -name '*mtmd*' \) -type f -delete
find "$out/trainer" -depth -type d -empty -delete
if find "$out/trainer" -name '*llama*.so*' -o -name '*ggml*' -o -name '*mtmd*' | grep -q .; then
  echo "error: a llama.cpp native library ended up in $out/trainer" >&2; exit 1
fi
# Nor the OpenAI client (about 6 MB): only `safety-eval --endpoint/--judge-endpoint` loads it (.NET loads an assembly
# when a method that uses it first runs), so the GPU checks never miss it; there such a call fails with one line.
rm -f "$out/trainer/OpenAI.dll" "$out/trainer/Microsoft.Extensions.AI.OpenAI.dll"

dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
runtime_version="$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ {v=$2} END {print v}')"
tar -C "$dotnet_root" -cJf "$out/dotnet-runtime.tar.xz" dotnet host "shared/Microsoft.NETCore.App/$runtime_version"

du -sh "$out/trainer" "$out/dotnet-runtime.tar.xz"
total=$(du -sb "$out" | cut -f1)
echo "total $((total / 1024 / 1024)) MiB (limit 64 MiB with everything else carried)"
