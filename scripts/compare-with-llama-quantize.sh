#!/usr/bin/env bash
# Quantizes one F16 test model with `hearth quantize` and with llama.cpp's llama-quantize (a
# binary you built outside this repository) to every mix both write, then compares tensor
# types and bytes (scripts/gguf_compare.py) and whole files (cmp).
#   scripts/compare-with-llama-quantize.sh /path/to/llama-quantize [preset] [mixes...]
set -euo pipefail
llama_quantize=${1:?usage: $0 LLAMA_QUANTIZE [preset] [mixes...]}
preset=${2:-tiny}
shift $(( $# >= 2 ? 2 : 1 ))
mixes=("$@")
[ ${#mixes[@]} -gt 0 ] || mixes=(Q8_0 Q6_K Q5_K_M Q5_K_S Q4_K_M Q4_K_S Q3_K_L Q3_K_M Q3_K_S Q2_K IQ4_XS IQ4_NL
                                 Q5_1 Q5_0 Q4_1 Q4_0 BF16 F16)
cd "$(dirname "$0")/.."
hearth=build/release/hearth
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$hearth" make-test-model --preset "$preset" --seed 1 -o "$work/f16.gguf" 2>/dev/null
failures=0
for mix in "${mixes[@]}"; do
    "$hearth" quantize "$work/f16.gguf" "$work/hearth.gguf" "$mix" 2>/dev/null
    "$llama_quantize" "$work/f16.gguf" "$work/llama.gguf" "$mix" "$(nproc)" >"$work/llama.log" 2>&1
    if summary=$(python3 scripts/gguf_compare.py "$work/hearth.gguf" "$work/llama.gguf" | tail -1) &&
       cmp -s "$work/hearth.gguf" "$work/llama.gguf"; then
        echo "$preset $mix: $summary; whole files byte-identical"
    else
        echo "$preset $mix: DIFFERENT ($summary)"
        failures=$((failures + 1))
    fi
done
echo "$failures mixes differ"
exit $((failures > 0))
