#!/usr/bin/python3
"""Float64 reference forward pass of a Llama 3.1 GGUF model, in plain numpy.

Reads the GGUF file directly (its own parser: header, metadata, tensor table, alignment; no
gguf-py, no llama.cpp) and computes the Llama block the way llama.cpp computes it for
general.architecture = llama, but with every weight widened to float64 and every activation kept
in float64 (llama.cpp rounds activations to f16/bf16/q8 before its dot products and keeps the KV
cache in f16; this reference does neither, so it is the exact value those approximate).

Usage:
  reference_forward.py MODEL.gguf --tokens 128000,9906,1917 [--out logits.npy] [--greedy N] [--json]

Prints (or writes with --out) the logits of every prompt position, shape [n_tokens, vocab].
With --greedy N, decodes N more tokens greedily (argmax; the lowest id wins a tie) and prints
their ids, with the gap between the top-1 and top-2 logits at each step.
With --json, prints one JSON object instead (for tests/compat/reference_vs_llama_cpp.mjs).

Tensor types: F32, F16, BF16, Q8_0 (dequantized to float64 as ggml's scalar code does).
"""
import argparse
import json
import struct
import sys
import time

import numpy as np

# ---------------------------------------------------------------------------------------------
# GGUF reading
# ---------------------------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"
# Metadata value types, as gguf.h numbers them.
GGUF_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
GGUF_STRING, GGUF_ARRAY = 8, 9
# Tensor types, as ggml numbers them: name, elements per block, bytes per block.
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
GGML_TYPES = {GGML_F32: ("F32", 1, 4), GGML_F16: ("F16", 1, 2), GGML_Q8_0: ("Q8_0", 32, 34), GGML_BF16: ("BF16", 1, 2)}


class GGUFReader:
    """The metadata and tensor table of a GGUF v2/v3 file; tensor data stays memory-mapped."""

    def __init__(self, path):
        self.data = np.memmap(path, dtype=np.uint8, mode="r")
        self.buf = memoryview(self.data)
        self.pos = 0
        if bytes(self.buf[0:4]) != GGUF_MAGIC:
            raise ValueError(f"{path}: not a GGUF file")
        self.pos = 4
        self.version = self._read("<I")
        if self.version not in (2, 3):
            raise ValueError(f"{path}: GGUF version {self.version} (2 or 3 expected)")
        n_tensors = self._read("<Q")
        n_kv = self._read("<Q")

        self.metadata = {}
        for _ in range(n_kv):
            key = self._read_string()
            value_type = self._read("<I")
            self.metadata[key] = self._read_value(value_type)

        self.tensors = {}  # name -> (type, shape as ggml ne [ne0, ne1, ...], offset in data section)
        for _ in range(n_tensors):
            name = self._read_string()
            n_dims = self._read("<I")
            ne = [self._read("<Q") for _ in range(n_dims)]
            tensor_type = self._read("<I")
            offset = self._read("<Q")
            self.tensors[name] = (tensor_type, ne, offset)

        alignment = self.metadata.get("general.alignment", 32)
        self.data_start = (self.pos + alignment - 1) // alignment * alignment

    def _read(self, fmt):
        size = struct.calcsize(fmt)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def _read_string(self):
        n = self._read("<Q")
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return s

    def _read_value(self, value_type):
        if value_type in GGUF_SCALAR:
            return self._read(GGUF_SCALAR[value_type])
        if value_type == GGUF_STRING:
            return self._read_string()
        if value_type == GGUF_ARRAY:
            item_type = self._read("<I")
            n = self._read("<Q")
            if item_type in GGUF_SCALAR:  # numeric arrays: one numpy read
                dtype = np.dtype(GGUF_SCALAR[item_type])
                values = np.frombuffer(self.buf, dtype=dtype, count=n, offset=self.pos)
                self.pos += n * dtype.itemsize
                return values
            return [self._read_value(item_type) for _ in range(n)]
        raise ValueError(f"unknown GGUF metadata type {value_type}")

    def raw_rows(self, name):
        """The tensor's bytes as a [rows, row_bytes] uint8 array (a view into the memmap)."""
        tensor_type, ne, offset = self.tensors[name]
        if tensor_type not in GGML_TYPES:
            raise ValueError(f"{name}: tensor type {tensor_type} not supported by this reference")
        _, block_elems, block_bytes = GGML_TYPES[tensor_type]
        row_bytes = ne[0] // block_elems * block_bytes
        rows = int(np.prod(ne[1:])) if len(ne) > 1 else 1
        start = self.data_start + offset
        return self.data[start:start + rows * row_bytes].reshape(rows, row_bytes)

    def rows(self, name, which=None):
        """The tensor as float64 [rows, ne0] (numpy's [ne1, ne0]); `which` picks some rows only."""
        tensor_type = self.tensors[name][0]
        raw = self.raw_rows(name)
        if which is not None:
            raw = raw[which]
        return dequantize(np.ascontiguousarray(raw), tensor_type)

    def vector(self, name):
        return self.rows(name).reshape(-1)


def dequantize(raw, tensor_type):
    """uint8 [rows, row_bytes] -> float64 [rows, ne0]."""
    rows = raw.shape[0]
    if tensor_type == GGML_F32:
        return raw.view("<f4").astype(np.float64)
    if tensor_type == GGML_F16:
        return raw.view("<f2").astype(np.float64)
    if tensor_type == GGML_BF16:
        # bf16 is the top half of an f32.
        return (raw.view("<u2").astype(np.uint32) << 16).view("<f4").astype(np.float64)
    if tensor_type == GGML_Q8_0:
        # Block of 32: an f16 scale d, then 32 int8 q; value = d * q.
        blocks = raw.reshape(rows, -1, 34)
        d = blocks[:, :, 0:2].copy().view("<f2").astype(np.float64)  # [rows, n_blocks, 1]
        q = blocks[:, :, 2:34].view(np.int8).astype(np.float64)       # [rows, n_blocks, 32]
        return (d * q).reshape(rows, -1)
    raise ValueError(f"tensor type {tensor_type} not supported")


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------

class Llama:
    def __init__(self, path):
        self.gguf = g = GGUFReader(path)
        md = g.metadata
        arch = md.get("general.architecture")
        if arch != "llama":
            raise ValueError(f"{path}: architecture {arch!r}, this reference knows only 'llama'")

        self.n_layer = md["llama.block_count"]
        self.n_embd = md["llama.embedding_length"]
        self.n_head = md["llama.attention.head_count"]
        self.n_head_kv = md.get("llama.attention.head_count_kv", self.n_head)
        self.head_dim = md.get("llama.attention.key_length", self.n_embd // self.n_head)
        self.n_rot = md.get("llama.rope.dimension_count", self.head_dim)
        self.eps = md["llama.attention.layer_norm_rms_epsilon"]
        self.rope_base = md.get("llama.rope.freq_base", 10000.0)
        # llama.cpp: kq_scale = 1/sqrt(head_dim) unless llama.attention.scale is set.
        self.kq_scale = md.get("llama.attention.scale", 0.0) or 1.0 / np.sqrt(self.head_dim)

        # RoPE scaling: llama.cpp's freq_scale = 1/factor for "linear"; llama3's scaling is the
        # rope_freqs.weight tensor instead. YaRN/LongRoPE are not in this reference.
        scaling = md.get("llama.rope.scaling.type", "none")
        self.freq_scale = 1.0
        if scaling == "linear":
            self.freq_scale = 1.0 / md.get("llama.rope.scaling.factor", 1.0)
        elif scaling not in ("none", ""):
            raise ValueError(f"RoPE scaling {scaling!r} not supported by this reference")
        self.rope_freqs = g.vector("rope_freqs.weight") if "rope_freqs.weight" in g.tensors else None

        # Weights, widened to float64. W is numpy [ne1, ne0]: y = W @ x, rows of length ne0.
        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            self.layers.append({
                "attn_norm": g.vector(p + "attn_norm.weight"),
                "wq": g.rows(p + "attn_q.weight"),
                "wk": g.rows(p + "attn_k.weight"),
                "wv": g.rows(p + "attn_v.weight"),
                "wo": g.rows(p + "attn_output.weight"),
                "ffn_norm": g.vector(p + "ffn_norm.weight"),
                "w_gate": g.rows(p + "ffn_gate.weight"),
                "w_up": g.rows(p + "ffn_up.weight"),
                "w_down": g.rows(p + "ffn_down.weight"),
            })
        self.output_norm = g.vector("output_norm.weight")
        output_name = "output.weight" if "output.weight" in g.tensors else "token_embd.weight"
        self.output = g.rows(output_name)          # [vocab, n_embd]
        self.n_vocab = self.output.shape[0]

    def embed(self, tokens):
        return self.gguf.rows("token_embd.weight", np.asarray(tokens))  # [n_tokens, n_embd]

    def rms_norm(self, x, weight):
        # ggml_rms_norm: x / sqrt(mean(x^2) + eps), then times the norm weight.
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def rope(self, x, positions):
        """llama.cpp's "normal" RoPE (LLAMA_ROPE_TYPE_NORM): adjacent pairs (2i, 2i+1) rotate by
        theta_i = freq_scale * pos * base^(-2i/n_rot) / rope_freqs[i]. x: [n_tokens, n_heads, head_dim]."""
        i = np.arange(self.n_rot // 2)
        inv_freq = self.rope_base ** (-2.0 * i / self.n_rot)
        if self.rope_freqs is not None:
            inv_freq = inv_freq / self.rope_freqs[: self.n_rot // 2]
        theta = self.freq_scale * np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
        cos = np.cos(theta)[:, None, :]  # [n_tokens, 1, n_rot/2]
        sin = np.sin(theta)[:, None, :]
        out = x.copy()
        x0 = x[:, :, 0:self.n_rot:2]
        x1 = x[:, :, 1:self.n_rot:2]
        out[:, :, 0:self.n_rot:2] = x0 * cos - x1 * sin
        out[:, :, 1:self.n_rot:2] = x0 * sin + x1 * cos
        return out  # dimensions past n_rot pass through unrotated

    def attention(self, q, k, v):
        """Causal grouped-query attention. q: [n, n_head, hd]; k, v: [n, n_head_kv, hd]."""
        n = q.shape[0]
        group = self.n_head // self.n_head_kv  # query heads h shares KV head h // group
        k = np.repeat(k, group, axis=1)          # [n, n_head, hd]
        v = np.repeat(v, group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) * self.kq_scale  # [n_head, n, n]
        causal = np.triu(np.ones((n, n), dtype=bool), k=1)         # key after query: masked
        scores = np.where(causal[None], -np.inf, scores)
        scores = scores - scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(axis=-1, keepdims=True)
        out = np.einsum("hqk,khd->qhd", weights, v)                 # [n, n_head, hd]
        return out.reshape(n, self.n_head * self.head_dim)

    def forward(self, tokens, last_only=False):
        """Logits for every position of `tokens` ([n_tokens, vocab]), or the last one only."""
        n = len(tokens)
        positions = np.arange(n)

        # 1. token embedding
        h = self.embed(tokens)

        for layer in self.layers:
            # 2. attention norm
            x = self.rms_norm(h, layer["attn_norm"])
            # 3. Q, K, V projections, split into heads
            q = (x @ layer["wq"].T).reshape(n, self.n_head, self.head_dim)
            k = (x @ layer["wk"].T).reshape(n, self.n_head_kv, self.head_dim)
            v = (x @ layer["wv"].T).reshape(n, self.n_head_kv, self.head_dim)
            # 4. RoPE on Q and K
            q = self.rope(q, positions)
            k = self.rope(k, positions)
            # 5. causal GQA attention, 6. output projection, 7. residual
            attn = self.attention(q, k, v)
            h = h + attn @ layer["wo"].T
            # 8. FFN norm, 9. SwiGLU FFN: down(silu(gate x) * up x), 10. residual
            x = self.rms_norm(h, layer["ffn_norm"])
            gate = x @ layer["w_gate"].T
            up = x @ layer["w_up"].T
            silu = gate / (1.0 + np.exp(-gate))
            h = h + (silu * up) @ layer["w_down"].T

        # 11. final norm, 12. output projection
        if last_only:
            h = h[-1:]
        x = self.rms_norm(h, self.output_norm)
        return x @ self.output.T

    def greedy(self, tokens, steps):
        """Greedy decode `steps` tokens (full recompute each step; no KV cache, to stay plain).
        Returns [(token, top-1 minus top-2 logit gap, top-5 [(id, logit)], logsumexp of the logits)]."""
        tokens = list(tokens)
        out = []
        for _ in range(steps):
            logits = self.forward(tokens, last_only=True)[0]
            order = np.argsort(-logits, kind="stable")  # ties: lowest id first, as argmax
            top = int(order[0])
            gap = float(logits[order[0]] - logits[order[1]])
            lse = float(logits.max() + np.log(np.sum(np.exp(logits - logits.max()))))
            out.append((top, gap, [(int(t), float(logits[t])) for t in order[:5]], lse))
            tokens.append(top)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--out", help="write the prompt's logits [n_tokens, vocab] (float64) here as .npy")
    ap.add_argument("--greedy", type=int, default=0, help="greedy-decode N more tokens")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    t0 = time.perf_counter()
    model = Llama(args.model)
    t_load = time.perf_counter() - t0
    if any(t < 0 or t >= model.n_vocab for t in tokens):
        sys.exit(f"token id out of range [0, {model.n_vocab})")

    t0 = time.perf_counter()
    logits = model.forward(tokens)
    t_forward = time.perf_counter() - t0
    if args.out:
        np.save(args.out, logits)

    t0 = time.perf_counter()
    steps = model.greedy(tokens, args.greedy) if args.greedy > 0 else []
    t_greedy = time.perf_counter() - t0

    if args.json:
        last = logits[-1]
        order = np.argsort(-last, kind="stable")[:20]
        json.dump({
            "prompt": tokens,
            "last_top": [[int(t), float(last[t])] for t in order],
            "greedy": [s[0] for s in steps],
            "gaps": [s[1] for s in steps],
            "top5": [s[2] for s in steps],
            "logsumexp": [s[3] for s in steps],
            "seconds": {"load": t_load, "forward": t_forward, "greedy": t_greedy},
        }, sys.stdout)
        print()
        return

    np.set_printoptions(precision=6, suppress=False, linewidth=120, edgeitems=4)
    print(f"model: {model.n_layer} layers, dim {model.n_embd}, heads {model.n_head}/{model.n_head_kv}, "
          f"vocab {model.n_vocab}, float64; load {t_load:.2f} s, forward {t_forward:.3f} s")
    print(f"logits shape {logits.shape}")
    for i, t in enumerate(tokens):
        top = int(np.argmax(logits[i]))
        print(f"pos {i} token {t}: argmax {top} ({logits[i][top]:.6f}) {logits[i]}")
    if steps:
        print(f"greedy ({t_greedy:.2f} s): {' '.join(str(s[0]) for s in steps)}")
        print(f"gaps (top1 - top2): {' '.join(f'{s[1]:.4g}' for s in steps)}")


if __name__ == "__main__":
    main()
