#!/usr/bin/env python3
"""Reference side of the speed comparison: Hugging Face transformers + PEFT LoRA training steps.

Same shape, tokens and LoRA config as `trainer bench` (the .NET side), so the two can be compared in one run on one
GPU, or on a CPU with --device cpu --dtype fp32 --threads N (see scripts/gpu/compare.sh):
  - Qwen3.5 text model with a published shape (9b or 27b) and random bf16 weights, optionally fewer layers;
  - packed rows of --seq tokens (one row per micro-batch; random ids);
  - LoRA r=16, alpha=32 on every linear projection of the text decoder (never lm_head);
  - activation checkpointing on (gradient_checkpointing_enable), AdamW over the LoRA parameters.

Prints one JSON object: step time, tokens/s, peak GPU memory and MFU against --peak-tflops with the FLOP count used
(LoRA model FLOPs per token = 4N + 4Vd + 3 * attention forward, peft-sft-and-performance.md section D1).
"""
import argparse
import contextlib
import json
import threading
import time

SHAPES = {
    # hidden, layers, intermediate, heads, kv heads, head_dim, linear k heads, linear v heads, tie
    "9b": dict(hidden_size=4096, num_hidden_layers=32, intermediate_size=12288, num_attention_heads=16,
               num_key_value_heads=4, head_dim=256, linear_num_key_heads=16, linear_num_value_heads=32,
               tie_word_embeddings=False),
    "27b": dict(hidden_size=5120, num_hidden_layers=64, intermediate_size=17408, num_attention_heads=24,
                num_key_value_heads=4, head_dim=256, linear_num_key_heads=16, linear_num_value_heads=48,
                tie_word_embeddings=False),
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
           "in_proj_qkv", "in_proj_z", "in_proj_a", "in_proj_b", "out_proj"]


def lora_flops_per_token(cfg, layers, seq):
    """4N + 4Vd + 3*attn_fwd: frozen matmuls forward (2N) + activation-gradient backward (2N), lm_head likewise,
    attention scores forward and ~2x backward. N counts the decoder's linear weights only."""
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    hq, hkv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    hk, hv, dk, dv = cfg["linear_num_key_heads"], cfg["linear_num_value_heads"], 128, 128
    key_dim, value_dim = hk * dk, hv * dv
    mlp = 3 * h * inter
    full = h * (2 * hq * d) + 2 * h * (hkv * d) + hq * d * h
    linear = h * (2 * key_dim + value_dim) + h * value_dim + 2 * h * hv + value_dim * h
    n_full = layers // 4
    n_lin = layers - n_full
    n = layers * mlp + n_full * full + n_lin * linear
    vocab = 248320
    attn_fwd = n_full * 4 * (seq / 2) * hq * d
    return 4 * n + 4 * vocab * h + 3 * attn_fwd, n


class DeviceMemorySampler:
    """Peak device-wide used memory (total - free from cudaMemGetInfo, what NVML reports as "used"), sampled every
    20 ms on a background thread. `trainer bench` can only measure this way (TorchSharp exposes no caching-allocator
    statistics), so this is the like-for-like number; it includes the CUDA context and the allocator's cached blocks."""

    def __init__(self, torch, interval_s=0.02):
        self.torch, self.interval_s, self.peak = torch, interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            free, total = self.torch.cuda.mem_get_info()
            self.peak = max(self.peak, total - free)
            time.sleep(self.interval_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def gdn_kernel_info(model):
    """Which Gated DeltaNet implementation transformers picked (fla / hub kernels / its torch fallback): the largest
    single factor in the Python side's speed, so the result must say which one ran."""
    import importlib.util
    info = {name + "_installed": importlib.util.find_spec(name) is not None for name in ("fla", "causal_conv1d", "kernels")}
    for module in model.modules():
        for attr in ("chunk_gated_delta_rule", "causal_conv1d_fn"):
            fn = getattr(module, attr, None)
            if fn is not None and attr + "_impl" not in info:
                info[attr + "_impl"] = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="9b", choices=sorted(SHAPES))
    ap.add_argument("--layers", type=int, default=8, help="decoder layers (multiple of 4 keeps the 3:1 pattern)")
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=int, default=32)
    ap.add_argument("--no-checkpointing", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--out", default=None, help="also write the JSON result here")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (trainer bench's --device)")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"], help="frozen base weights (LoRA stays fp32)")
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (torch.set_num_threads); 0 = torch's default")
    args = ap.parse_args()

    import torch
    import transformers
    import peft
    from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig

    shape = dict(SHAPES[args.shape])
    shape["num_hidden_layers"] = args.layers
    cfg = Qwen3_5TextConfig(vocab_size=248320, linear_key_head_dim=128, linear_value_head_dim=128,
                            linear_conv_kernel_dim=4, full_attention_interval=4, rms_norm_eps=1e-6,
                            max_position_embeddings=262144, **shape)
    torch.manual_seed(0)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32

    def sync():
        if cuda:
            torch.cuda.synchronize()

    with torch.device(device):
        model = Qwen3_5ForCausalLM(cfg).to(dtype)
    if not args.no_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lcfg = peft.LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, target_modules=TARGETS,
                           task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, lcfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)

    gen = torch.Generator(device="cpu").manual_seed(1)
    ids = torch.randint(0, 248000, (1, args.seq), generator=gen).to(device)
    times = []
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    # On a CPU there is no device memory to sample: the sampler is a no-op there and the memory fields are null.
    with (DeviceMemorySampler(torch) if cuda else contextlib.nullcontext()) as sampler:
        for step in range(args.warmup + args.steps):
            sync()
            t0 = time.perf_counter()
            out = model(input_ids=ids, labels=ids)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            if step >= args.warmup:
                times.append(time.perf_counter() - t0)
    step_s = sum(times) / len(times)
    flops_tok, n = lora_flops_per_token(shape | {"num_hidden_layers": args.layers}, args.layers, args.seq)
    tok_s = args.seq / step_s
    result = {
        "side": "transformers+peft", "transformers": transformers.__version__, "peft": peft.__version__,
        "torch": torch.__version__, "device": str(device), "dtype": args.dtype,
        "threads": torch.get_num_threads(), "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "shape": args.shape, "layers": args.layers, "seq": args.seq, "steps": args.steps,
        "checkpointing": not args.no_checkpointing, "lora_r": args.rank, "lora_alpha": args.alpha,
        "trainable_params": sum(p.numel() for p in params), "matmul_params_N": n,
        "flops_per_token": flops_tok, "step_time_s": step_s, "tokens_per_s": tok_s,
        # Compare peak_memory_device_used_gib with trainer bench's "peak_memory" (NVML device used, same measure);
        # the allocator's own peaks are given for reference.
        "peak_memory_device_used_gib": sampler.peak / 2**30 if cuda else None,
        "peak_memory_allocated_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "peak_memory_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if cuda else None,
        "mfu": flops_tok * tok_s / (args.peak_tflops * 1e12), "peak_tflops": args.peak_tflops,
        "gdn_kernels": gdn_kernel_info(model),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
