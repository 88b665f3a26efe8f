#!/usr/bin/python3
"""`hearth perplexity` against the float64 numpy reference (tests/model/reference_forward.py) on
the tiny F16 test model with confident logits (--output-scale 50): the same chunks (BOS in
front of each, positions from 0), the second half of each scored, PPL = exp(mean NLL) and its
error as llama-perplexity prints it; and the base file `--kl-divergence-base` writes, read with
an independent decoder of llama-perplexity's format: its header and tokens, and every stored log
probability against the reference's log-softmax.
Tolerance: hearth's logits are within 1e-3 of the reference's largest |logit| R
(forward_vs_numpy_test), and an NLL (log-sum-exp minus the target's logit) moves by at most twice
the largest logit error, so each running mean NLL must agree within 2e-3 R. With these confident
logits a wrong target token or a shifted position moves the mean NLL by about R.
Usage: perplexity_vs_numpy.py HEARTH WORK_DIR
"""
import json
import math
import os
import random
import re
import subprocess
import sys

import numpy as np

hearth, work = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
reference = os.path.join(here, "..", "model", "reference_forward.py")
os.makedirs(work, exist_ok=True)
model, text_path = os.path.join(work, "tiny-confident.gguf"), os.path.join(work, "text.txt")
CTX, CHUNKS = 32, 3

subprocess.run([hearth, "make-test-model", "--preset", "tiny", "--seed", "5", "--output-scale", "50", "-o", model],
               check=True, stderr=subprocess.DEVNULL)
rng = random.Random(3)
words = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
         "they you were her she there been one all we their has would when if so no will can more").split()
with open(text_path, "w") as f:
    f.write(" ".join(rng.choice(words) for _ in range(200)))

base = os.path.join(work, "base.kld")
out = subprocess.run([hearth, "perplexity", "-m", model, "-f", text_path, "-c", str(CTX), "--chunks", str(CHUNKS),
                      "-t", "2", "--kl-divergence-base", base], check=True, capture_output=True, text=True).stdout
running = [float(v) for v in re.findall(r"\[\d+\]([0-9.]+)", out)]
final = re.search(r"PPL = ([0-9.]+) \+/- ([0-9.]+)", out)
hearth_ppl, hearth_err = float(final.group(1)), float(final.group(2))

ids = json.loads(subprocess.run([hearth, "tokenize", "-m", model, "--file", text_path, "--ids"], check=True,
                                capture_output=True, text=True).stdout)
bos = ids[0]
nlls, expected_running, largest, reference_log_probs = [], [], 0.0, []
for c in range(CHUNKS):
    chunk = ids[c * CTX:(c + 1) * CTX]
    chunk[0] = bos
    npy = os.path.join(work, f"chunk{c}.npy")
    subprocess.run([sys.executable, reference, model, "--tokens", ",".join(map(str, chunk)), "--out", npy],
                   check=True, stdout=subprocess.DEVNULL)
    logits = np.load(npy)
    largest = max(largest, float(np.abs(logits).max()))
    for j in range(CTX // 2, CTX - 1):
        row = logits[j] - logits[j].max()
        nlls.append(math.log(np.exp(row).sum()) - row[chunk[j + 1]])
        reference_log_probs.append(row - math.log(np.exp(row).sum()))
    expected_running.append(math.exp(sum(nlls) / len(nlls)))
n = len(nlls)
mean = sum(nlls) / n
ppl = math.exp(mean)
err = math.sqrt((sum(x * x for x in nlls) / n - mean * mean) / (n - 1)) * ppl

failures = []
if len(running) != CHUNKS:
    failures.append(f"{len(running)} running values, expected {CHUNKS}")
allowed = 2e-3 * largest
for i, (got, want) in enumerate(zip(running, expected_running)):
    if abs(math.log(got) - math.log(want)) > allowed:
        failures.append(f"chunk {i + 1}: hearth {got:.6g}, reference {want:.6g}")
if abs(math.log(hearth_ppl) - math.log(ppl)) > allowed:
    failures.append(f"final PPL: hearth {hearth_ppl:.6g}, reference {ppl:.6g}")
# The error is PPL times the spread of the NLLs, each within 2e-3 R of the reference's.
if abs(hearth_err - err) > (math.exp(allowed) - 1) * err + allowed * ppl:
    failures.append(f"PPL error: hearth {hearth_err:.6g}, reference {err:.6g}")
print(f"reference PPL {ppl:.6g} +/- {err:.6g} over {n} tokens (mean NLL {mean:.5f}); hearth {hearth_ppl:.6g} +/- "
      f"{hearth_err:.6g} (mean NLL {math.log(hearth_ppl):.5f}); allowed |delta NLL| {allowed:.4f} (R = {largest:.2f})")
# The base file: "_logits_", u32 n_ctx, i32 vocab, i32 chunks, i32 tokens, then per scored
# position f32 scale, f32 min_log_prob and a u16 per token (padded to an even count).
with open(base, "rb") as f:
    data = f.read()
vocab = len(reference_log_probs[0])
n_ctx, n_vocab, n_chunk = np.frombuffer(data, dtype="<u4", count=3, offset=8)
tokens = np.frombuffer(data, dtype="<i4", count=n_ctx * n_chunk, offset=20)
if (data[:8], n_ctx, n_vocab, n_chunk) != (b"_logits_", CTX, vocab, CHUNKS):
    failures.append(f"base header {data[:8]!r} {n_ctx} {n_vocab} {n_chunk}")
if list(tokens) != ids[:CTX * CHUNKS]:
    failures.append("base tokens differ from the text's tokens")
record = 2 * ((vocab + 1) // 2) + 4
offset = 20 + 4 * CTX * CHUNKS
if len(data) != offset + 2 * record * len(reference_log_probs):
    failures.append(f"base file of {len(data)} bytes")
worst = 0.0
for i, exact in enumerate(reference_log_probs):
    at = offset + 2 * record * i
    scale, floor = np.frombuffer(data, dtype="<f4", count=2, offset=at)
    stored = np.frombuffer(data, dtype="<u2", count=vocab, offset=at + 8).astype(np.float64) * scale + floor
    margin = float(scale) / 2 + allowed  # the u16 step, and hearth's logits against the reference's
    above = exact > floor + margin
    worst = max(worst, float(np.abs(stored[above] - exact[above]).max()))
    if np.any(np.abs(stored[above] - exact[above]) > margin) or np.any(np.abs(stored[exact < floor - margin] - floor) > 1e-4):
        failures.append(f"position {i}: stored log probabilities off by {np.abs(stored[above] - exact[above]).max():.4g}")
        break
print(f"base file: {len(reference_log_probs)} positions, worst stored log probability off by {worst:.4g}")

# The model against its own base: no divergence beyond the u16 rounding, and always the same top.
kld = subprocess.run([hearth, "perplexity", "-m", model, "--kl-divergence-base", base, "--kl-divergence", "-t", "2"],
                     check=True, capture_output=True, text=True).stdout
mean_kld = float(re.search(r"Mean    KLD:\s+(-?[0-9.]+)", kld).group(1))
same_top = float(re.search(r"Same top p:\s+([0-9.]+)", kld).group(1))
if abs(mean_kld) > 1e-3 or same_top != 100.0:
    failures.append(f"against its own base: mean KLD {mean_kld}, same top {same_top} %")
print(f"against its own base: mean KLD {mean_kld}, same top {same_top} %")
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
