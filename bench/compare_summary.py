#!/usr/bin/env python3
"""Puts `trainer bench --json` and bench/hf_peft_bench.py results side by side (used by scripts/gpu/compare.sh).

Usage: compare_summary.py DOTNET_JSON HF_JSON. Prints one table and the ratios this trainer / transformers+PEFT;
peak memory is compared as device-wide used memory on both sides (NVML "used" / cudaMemGetInfo total - free).
Standard library only, so it runs wherever the benchmark does.
"""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"{path}: no result ({e})")
        return None


def main(dotnet_path, hf_path):
    ours, theirs = load(dotnet_path), load(hf_path)
    if ours is None or theirs is None:
        return 1
    for key in ("shape", "layers", "seq", "lora_r", "lora_alpha", "checkpointing"):
        if ours.get(key) != theirs.get(key):
            print(f"warning: {key} differs: trainer {ours.get(key)!r}, transformers+PEFT {theirs.get(key)!r}")
    rows = [
        ("tokens/s", ours["tokens_per_s"], theirs["tokens_per_s"], "{:,.0f}"),
        ("step time (s)", ours["step_time_s"], theirs["step_time_s"], "{:.3f}"),
        ("peak device memory (GiB)", ours.get("peak_memory_gib"), theirs.get("peak_memory_device_used_gib"), "{:.2f}"),
        ("MFU", ours.get("mfu"), theirs.get("mfu"), "{:.1%}"),
        ("FLOPs/token (G)", ours["flops_per_token"] / 1e9, theirs["flops_per_token"] / 1e9, "{:.2f}"),
        ("trainable params", ours["trainable_params"], theirs["trainable_params"], "{:,}"),
    ]
    print(f"{'':26} {'this trainer':>14} {'transformers+PEFT':>18} {'ratio':>7}")
    for name, a, b, fmt in rows:
        show = lambda v: "n/a" if v is None else fmt.format(v)
        ratio = f"{a / b:.2f}x" if a is not None and b else ""
        print(f"{name:26} {show(a):>14} {show(b):>18} {ratio:>7}")
    print(f"transformers {theirs.get('transformers')}, peft {theirs.get('peft')}, torch {theirs.get('torch')}, "
          f"GPU {theirs.get('gpu')}")
    print(f"transformers' Gated DeltaNet kernels: {theirs.get('gdn_kernels')}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
