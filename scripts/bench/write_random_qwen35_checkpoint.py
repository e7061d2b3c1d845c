#!/usr/bin/env python3
"""Writes a random bf16 Qwen3.5 checkpoint in the published Hugging Face layout, for measuring `trainer gguf` at scale.

    python3 scripts/bench/write_random_qwen35_checkpoint.py OUT_DIR [--size 9b] [--shard-gb 5] [--adapter-rank R] [--layers N]

Layout as Qwen/Qwen3.5-9B publishes it: config.json with the multimodal wrapper (text_config), sharded
model-0000X-of-0000N.safetensors (at most --shard-gb GB each) with model.safetensors.index.json, the text model under
model.language_model.*, lm_head.weight (untied), plus a few model.visual.* and mtp.* tensors that the exporter must
leave out. Shapes are the published config's (the same numbers as src/Training/Bench/PublishedShapes.cs).

Values: a pool of 2**20 draws of N(0, 0.02) rounded to bf16, written over and over (rotated per tensor), so the file
is written at disk speed; the values do not matter for time or memory. Standard library only (no numpy, no torch).

With --adapter-rank R it also writes OUT_DIR-adapter: a PEFT LoRA adapter of rank R on every decoder projection
(q/k/v/o, in_proj_qkv/z/a/b, out_proj, gate/up/down) of every layer, fp32, B nonzero, so a merge is measured too.
"""
import argparse
import json
import os
import random
import struct
import sys

SIZES = {
    "9b": dict(vocab_size=248320, hidden_size=4096, intermediate_size=12288, num_hidden_layers=32,
               num_attention_heads=16, num_key_value_heads=4, head_dim=256,
               linear_num_key_heads=16, linear_num_value_heads=32, linear_key_head_dim=128, linear_value_head_dim=128),
    "27b": dict(vocab_size=248320, hidden_size=5120, intermediate_size=17408, num_hidden_layers=64,
                num_attention_heads=24, num_key_value_heads=4, head_dim=256,
                linear_num_key_heads=16, linear_num_value_heads=48, linear_key_head_dim=128, linear_value_head_dim=128),
}


def config_json(c):
    layers = c["num_hidden_layers"]
    text = dict(c)
    text.update({
        "model_type": "qwen3_5_text", "dtype": "bfloat16", "attention_bias": False, "attention_dropout": 0.0,
        "attn_output_gate": True, "full_attention_interval": 4, "hidden_act": "silu", "initializer_range": 0.02,
        "layer_types": ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(layers)],
        "linear_conv_kernel_dim": 4, "mamba_ssm_dtype": "float32", "max_position_embeddings": 262144,
        "mtp_num_hidden_layers": 1, "mtp_use_dedicated_embeddings": False, "rms_norm_eps": 1e-06,
        "tie_word_embeddings": False, "use_cache": True, "eos_token_id": 248044,
        "rope_parameters": {"mrope_interleaved": True, "mrope_section": [11, 11, 10], "rope_type": "default",
                            "rope_theta": 10000000, "partial_rotary_factor": 0.25},
    })
    return {"architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5", "text_config": text,
            "tie_word_embeddings": False, "image_token_id": 248056, "video_token_id": 248057,
            "vision_start_token_id": 248053, "vision_end_token_id": 248054,
            "vision_config": {"model_type": "qwen3_5", "depth": 27, "hidden_size": 1152, "out_hidden_size": c["hidden_size"]}}


def text_tensors(c):
    """(name, shape) of the text model, in the order of src/Models/ParameterManifest.cs."""
    h, inter = c["hidden_size"], c["intermediate_size"]
    nk, nv, dk, dv = c["linear_num_key_heads"], c["linear_num_value_heads"], c["linear_key_head_dim"], c["linear_value_head_dim"]
    conv = 2 * nk * dk + nv * dv
    p = "model.language_model."
    out = [(p + "embed_tokens.weight", [c["vocab_size"], h])]
    for i in range(c["num_hidden_layers"]):
        l = f"{p}layers.{i}."
        if (i + 1) % 4 == 0:
            hd, q, kv = c["head_dim"], c["num_attention_heads"], c["num_key_value_heads"]
            out += [(l + "self_attn.q_proj.weight", [2 * q * hd, h]), (l + "self_attn.k_proj.weight", [kv * hd, h]),
                    (l + "self_attn.v_proj.weight", [kv * hd, h]), (l + "self_attn.o_proj.weight", [h, q * hd]),
                    (l + "self_attn.q_norm.weight", [hd]), (l + "self_attn.k_norm.weight", [hd])]
        else:
            out += [(l + "linear_attn.in_proj_qkv.weight", [conv, h]), (l + "linear_attn.in_proj_z.weight", [nv * dv, h]),
                    (l + "linear_attn.in_proj_b.weight", [nv, h]), (l + "linear_attn.in_proj_a.weight", [nv, h]),
                    (l + "linear_attn.conv1d.weight", [conv, 1, 4]), (l + "linear_attn.dt_bias", [nv]),
                    (l + "linear_attn.A_log", [nv]), (l + "linear_attn.norm.weight", [dv]),
                    (l + "linear_attn.out_proj.weight", [h, nv * dv])]
        out += [(l + "mlp.gate_proj.weight", [inter, h]), (l + "mlp.up_proj.weight", [inter, h]),
                (l + "mlp.down_proj.weight", [h, inter]), (l + "input_layernorm.weight", [h]),
                (l + "post_attention_layernorm.weight", [h])]
    out += [(p + "norm.weight", [h]), ("lm_head.weight", [c["vocab_size"], h])]
    return out


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def bf16_pool(rng, n):
    """n bf16 values of N(0, 0.02) (fp32 rounded to nearest even, as torch does), as bytes."""
    out = bytearray(2 * n)
    for i in range(n):
        bits = struct.unpack("<I", struct.pack("<f", rng.gauss(0.0, 0.02)))[0]
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        struct.pack_into("<H", out, 2 * i, bits)
    return bytes(out)


def write_safetensors(path, tensors, pool, dtype, elem):
    """tensors: [(name, shape, rotation)]; values cycle through pool (bytes of `elem`-byte elements)."""
    header, offset = {}, 0
    for name, shape, _ in tensors:
        size = numel(shape) * elem
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    big = pool * max(1, (64 << 20) // len(pool))  # ~64 MiB of values per write
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for _, shape, rot in tensors:
            left = numel(shape) * elem
            start = (rot * 4099 * elem) % len(pool)
            chunk = big[start:] + big[:start]
            while left > 0:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n
    os.replace(tmp, path)
    return offset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", default="9b", choices=sorted(SIZES))
    ap.add_argument("--shard-gb", type=float, default=5.0)
    ap.add_argument("--adapter-rank", type=int, default=0)
    ap.add_argument("--layers", type=int, default=0, help="keep only the first N layers (a quick check of the script)")
    a = ap.parse_args()
    c = dict(SIZES[a.size])
    if a.layers > 0:
        c["num_hidden_layers"] = a.layers
    rng = random.Random(1234)
    pool = bf16_pool(rng, 1 << 20)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config_json(c), f, indent=2)

    h = c["hidden_size"]
    tensors = text_tensors(c) + [("mtp.fc.weight", [h, 2 * h]), ("mtp.norm.weight", [h]),
                                 ("model.visual.merger.linear_fc2.weight", [h, 4608]),
                                 ("model.visual.patch_embed.proj.weight", [1152, 3, 2, 16, 16])]
    limit = int(a.shard_gb * 1e9)
    shards, cur, size = [], [], 0
    for i, (name, shape) in enumerate(tensors):
        b = numel(shape) * 2
        if cur and size + b > limit:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shape, i))
        size += b
    shards.append(cur)
    weight_map, total = {}, 0
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        total += write_safetensors(os.path.join(a.out, fname), shard, pool, "BF16", 2)
        for name, _, _ in shard:
            weight_map[name] = fname
        print(f"wrote {fname}: {len(shard)} tensors", file=sys.stderr, flush=True)
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    print(f"{a.out}: {len(tensors)} tensors, {total / 1e9:.2f} GB bf16 in {len(shards)} shards", file=sys.stderr)

    if a.adapter_rank > 0:
        write_adapter(a.out.rstrip("/") + "-adapter", c, a.adapter_rank, rng)


def write_adapter(out, c, r, rng):
    """PEFT LoRA on every decoder projection, fp32: A ~ N(0, 0.02), B ~ N(0, 0.02) (nonzero, so the merge changes W)."""
    os.makedirs(out, exist_ok=True)
    fpool = bytearray(4 * (1 << 18))
    for i in range(1 << 18):
        struct.pack_into("<f", fpool, 4 * i, rng.gauss(0.0, 0.02))
    fpool = bytes(fpool)
    tensors = []
    for name, shape in text_tensors(c):
        if len(shape) != 2 or ".layers." not in name:
            continue
        key = "base_model.model." + name[: -len(".weight")]
        tensors.append((key + ".lora_A.weight", [r, shape[1]], len(tensors)))
        tensors.append((key + ".lora_B.weight", [shape[0], r], len(tensors)))
    tensors.sort(key=lambda t: t[0])
    write_safetensors(os.path.join(out, "adapter_model.safetensors"), tensors, fpool, "F32", 4)
    targets = ["down_proj", "gate_proj", "in_proj_a", "in_proj_b", "in_proj_qkv", "in_proj_z", "k_proj", "o_proj",
               "out_proj", "q_proj", "up_proj", "v_proj"]
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": 2 * r, "lora_dropout": 0.0,
              "target_modules": targets, "bias": "none", "use_rslora": False, "use_dora": False,
              "fan_in_fan_out": False, "init_lora_weights": True, "rank_pattern": {}, "alpha_pattern": {},
              "layers_to_transform": None, "layers_pattern": None, "modules_to_save": None,
              "base_model_name_or_path": "Qwen3.5-random"}
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    print(f"{out}: LoRA rank {r} on {len(tensors) // 2} projections", file=sys.stderr)


if __name__ == "__main__":
    main()
