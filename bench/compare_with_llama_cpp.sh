#!/usr/bin/env bash
# Side by side in one run: `hearth bench` and llama.cpp's `llama-bench` (built from source outside
# the repository with GGML_NATIVE=ON; see docs/performance.md) on the same test-model files,
# same threads, pp512 and tg128, alternating engine by engine and test by test (ROUNDS times,
# default 3) so both see the same machine, then a table of the ratios of each round.
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

# The mean t/s of one test from `hearth bench`'s table or llama-bench's markdown: the row whose
# test column is $1, the t/s column before its "±".
mean_of() {
    awk -F'|' -v test="$1" '{ for (i = 2; i < NF; ++i) { f = $i; gsub(/ /, "", f)
        if (f == test) { split($(i + 1), v, "±"); gsub(/ /, "", v[1]); print v[1]; exit } } }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# Rounds of pp512 then tg128, each engine in turn: this VM's read bandwidth moves by 2x within
# the hour, so each ratio is taken from two runs seconds apart, never from the two halves of a run.
rounds=${ROUNDS:-3}
echo "threads $threads, repetitions $repetitions, rounds $rounds, $(date -u +%FT%TZ), $(nproc) cores"
"$hearth" bench --bandwidth -t "$threads"
summary=""
for preset in $presets; do
    for mix in $mixes; do
        file=$(model_file "$preset" "$mix")
        echo
        echo "## $preset $mix ($(du -h "$file" | cut -f1))"
        for round in $(seq "$rounds"); do
            h_pp=$("$hearth" bench -m "$file" -p 512 -n 0 -r "$repetitions" -t "$threads")
            l_pp=$("$llama_bench" -m "$file" -p 512 -n 0 -r "$repetitions" -t "$threads" -o md 2>/dev/null)
            h_tg=$("$hearth" bench -m "$file" -p 0 -n 128 -r "$repetitions" -t "$threads")
            l_tg=$("$llama_bench" -m "$file" -p 0 -n 128 -r "$repetitions" -t "$threads" -o md 2>/dev/null)
            echo "### round $round"
            printf '%s\n%s\n' "$h_pp" "$h_tg" | grep -E '^\| (pp|tg)[0-9]+ ' | sed 's/^/hearth    /'
            printf '%s\n%s\n' "$l_pp" "$l_tg" | grep -E ' (pp|tg)[0-9]+ ' | sed 's/^/llama.cpp /'
            hp=$(mean_of pp512 <<<"$h_pp") lp=$(mean_of pp512 <<<"$l_pp")
            ht=$(mean_of tg128 <<<"$h_tg") lt=$(mean_of tg128 <<<"$l_tg")
            summary+="| $preset $mix | $round | $hp / $lp | $(ratio "$hp" "$lp") | $ht / $lt | $(ratio "$ht" "$lt") |"$'\n'
        done
    done
done
"$hearth" bench --bandwidth -t "$threads"
echo
echo "| model | round | pp512 hearth / llama.cpp | ratio | tg128 hearth / llama.cpp | ratio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
printf '%s' "$summary"
