#!/usr/bin/env bash
# Runs the packed trainer on a GPU machine: unpacks the .NET runtime once, points TorchSharp at PyTorch's libtorch
# through LD_LIBRARY_PATH, and passes every argument to `trainer`. Usage: scripts/gpu/run.sh bench --device cuda ...
# TORCH_LIB overrides where libtorch is taken from (default: the torch/lib of the python3 on PATH).
set -euo pipefail
cd "$(dirname "$0")/../.."
art=artifacts/gpu
runtime_dir="${DOTNET_RUNTIME_DIR:-/tmp/dotnet-runtime}"
if [ ! -x "$runtime_dir/dotnet" ]; then
  mkdir -p "$runtime_dir" && tar -C "$runtime_dir" -xJf "$art/dotnet-runtime.tar.xz"
fi
export DOTNET_ROOT="$runtime_dir" PATH="$runtime_dir:$PATH"
torch_lib="${TORCH_LIB:-$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}"
# glibc reads LD_LIBRARY_PATH at process start, so it must be set here, not from inside the program. The same holds
# for the CUDA caching allocator's settings.
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}"
# Keep TorchSharp from "helpfully" copying a NuGet libtorch if one happens to exist on that machine.
export NUGET_PACKAGES="${NUGET_PACKAGES:-/nonexistent-nuget}"
exec dotnet "$art/trainer/trainer.dll" "$@"
