#!/usr/bin/env bash
# Sets up hearth and runs its main job on the built-in default model: a tiny Llama 3.1
# (real architecture and tokenizer, random weights) written, quantized to Q4_K_M and shown.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
hearth=build/release/hearth
mkdir -p models
"$hearth" make-test-model --preset tiny --seed 42 -o models/tiny-f16.gguf
"$hearth" quantize models/tiny-f16.gguf models/tiny-q4_k_m.gguf Q4_K_M
"$hearth" show models/tiny-q4_k_m.gguf
