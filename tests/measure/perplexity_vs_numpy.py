#!/usr/bin/python3
"""`hearth perplexity` against the float64 numpy reference (tests/model/reference_forward.py) on
the tiny F16 test model with confident logits (--output-scale 50): the same chunks (BOS in
front of each, positions from 0), the second half of each scored, PPL = exp(mean NLL) and its
error as llama-perplexity prints it.
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

out = subprocess.run([hearth, "perplexity", "-m", model, "-f", text_path, "-c", str(CTX), "--chunks", str(CHUNKS),
                      "-t", "2"], check=True, capture_output=True, text=True).stdout
running = [float(v) for v in re.findall(r"\[\d+\]([0-9.]+)", out)]
final = re.search(r"PPL = ([0-9.]+) \+/- ([0-9.]+)", out)
hearth_ppl, hearth_err = float(final.group(1)), float(final.group(2))

ids = json.loads(subprocess.run([hearth, "tokenize", "-m", model, "--file", text_path, "--ids"], check=True,
                                capture_output=True, text=True).stdout)
bos = ids[0]
nlls, expected_running, largest = [], [], 0.0
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
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
