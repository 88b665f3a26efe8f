#!/usr/bin/env bash
# Sets up hearth and runs its main job on the built-in default model: a tiny Llama 3.1
# (real architecture and tokenizer, random weights) written, quantized to Q4_K_M and shown,
# its tokenizer and chat template at work, then `hearth run` answering a prompt (random weights
# answer gibberish, at full speed) and `hearth bench` measuring it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
hearth=build/release/hearth
mkdir -p models
"$hearth" make-test-model --preset tiny --seed 42 -o models/tiny-f16.gguf
"$hearth" quantize models/tiny-f16.gguf models/tiny-q4_k_m.gguf Q4_K_M
"$hearth" show models/tiny-q4_k_m.gguf
"$hearth" tokenize -m models/tiny-q4_k_m.gguf --json --text "Hello from hearth! 🔥"
printf '[{"role":"system","content":"You are terse."},{"role":"user","content":"Hi?"}]' >models/messages.json
"$hearth" chat-template -m models/tiny-q4_k_m.gguf --messages models/messages.json
"$hearth" run -m models/tiny-q4_k_m.gguf --verbose --seed 42 -n 32 "Why is the sky blue?"
"$hearth" bench -m models/tiny-q4_k_m.gguf -p 512 -n 128 -r 3
