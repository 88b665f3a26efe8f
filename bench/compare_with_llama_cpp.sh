#!/usr/bin/env bash
# Side by side in one run: `hearth bench` and llama.cpp's `llama-bench` (built from source outside
# the repository with GGML_NATIVE=ON; see docs/performance.md) on the same test-model files,
# same threads, pp512 and tg128, alternating engine by engine so both see the same machine.
#   bench/compare_with_llama_cpp.sh LLAMA_BENCH [PRESETS] [MIXES] [REPETITIONS] [WORK_DIR]
#   e.g. bench/compare_with_llama_cpp.sh ~/llama.cpp/build/bin/llama-bench "1b 8b" "Q4_K_M Q8_0 F16" 3
# Needs ~31 GB free in WORK_DIR for the 8b files (made once, kept for reruns).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
llama_bench=${1:?usage: $0 LLAMA_BENCH [PRESETS] [MIXES] [REPETITIONS] [WORK_DIR]}
presets=${2:-1b}
mixes=${3:-Q4_K_M Q8_0 F16}
repetitions=${4:-3}
work=${5:-$root/models/bench}
threads=${THREADS:-2}
hearth=${HEARTH:-$root/build/release/hearth}
mkdir -p "$work"

model_file() {  # preset mix -> path, made on first use
    local preset=$1 mix=$2 f16="$work/$1-F16.gguf" out="$work/$1-$2.gguf"
    [ -f "$f16" ] || "$hearth" make-test-model --preset "$preset" -o "$f16" >&2
    if [ "$mix" != F16 ] && [ ! -f "$out" ]; then "$hearth" quantize "$f16" "$out" "$mix" >&2; fi
    echo "$out"
}

echo "threads $threads, repetitions $repetitions, $(date -u +%FT%TZ), $(nproc) cores"
"$hearth" bench --bandwidth -t "$threads"
for preset in $presets; do
    for mix in $mixes; do
        file=$(model_file "$preset" "$mix")
        echo
        echo "## $preset $mix ($(du -h "$file" | cut -f1))"
        echo "### hearth"
        "$hearth" bench -m "$file" -p 512 -n 128 -r "$repetitions" -t "$threads" | grep -E '^\| (pp|tg)|GB read'
        echo "### llama.cpp"
        "$llama_bench" -m "$file" -p 512 -n 128 -r "$repetitions" -t "$threads" -o md 2>/dev/null | grep -E ' (pp|tg)[0-9]+ '
    done
done
"$hearth" bench --bandwidth -t "$threads"
