#!/usr/bin/env bash
# The quantization table of docs/quantization.md: the 1b test model in F16 and each mix, its size,
# bits per weight, and how far its next-token distributions drift from F16's (KL divergence,
# same top token, PPL ratio) over the same text, as llama-perplexity measures them.
#   scripts/quant-table.sh [WORK_DIR] [MIXES]      (defaults: models/quant-table, the six mixes)
# Random weights make the perplexity itself meaningless; the ordering of the divergences is what
# the table shows. Needs ~6 GB in WORK_DIR; files are made once and kept for reruns.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
hearth=${HEARTH:-$root/build/release/hearth}
work=${1:-$root/models/quant-table}
mixes=${2:-Q8_0 Q6_K Q5_K_M Q4_K_M Q3_K_M Q2_K}
ctx=${CTX:-512}
chunks=${CHUNKS:-6}
mkdir -p "$work"
f16="$work/1b-F16.gguf"
[ -f "$f16" ] || "$hearth" make-test-model --preset 1b -o "$f16" >&2
# A fixed text: common English words in a seeded order (python3 from Debian).
text="$work/text.txt"
[ -f "$text" ] || /usr/bin/python3 -c "
import random
random.seed(11)
words = '''the of and to in a is that for it as was with be by on not he this are or his from at which but have
an they you were her she there been one all we their has would when if so no will can more other into my what time
up some out them could only then about do like people year way day thing man world life hand part child eye woman
place work week case point government company number group problem fact'''.split()
print(' '.join(random.choice(words) for _ in range(${ctx} * ${chunks} + 400)))" > "$text"
base="$work/1b-F16.kld"
[ -f "$base" ] || "$hearth" perplexity -m "$f16" -f "$text" -c "$ctx" --chunks "$chunks" --kl-divergence-base "$base" >/dev/null

bpw() { "$hearth" show "$1" | awk '/bits per weight/ { print $4; exit }'; }  # tensor bits / parameters
echo "| type | size | bits per weight | mean KLD | 99 % KLD | same top token | PPL(Q)/PPL(F16) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
size=$(stat -L -c %s "$f16")
awk -v s="$size" -v b="$(bpw "$f16")" 'BEGIN { printf "| F16 | %.2f GB | %s | 0 | 0 | 100 %% | 1 |\n", s / 1e9, b }'
for mix in $mixes; do
    model="$work/1b-$mix.gguf"
    [ -f "$model" ] || "$hearth" quantize "$f16" "$model" "$mix" >/dev/null 2>&1
    out=$("$hearth" perplexity -m "$model" --kl-divergence-base "$base" --kl-divergence 2>/dev/null)
    size=$(stat -L -c %s "$model")
    kld=$(awk '/^Mean    KLD:/ { print $3 " ± " $5 }' <<<"$out")
    k99=$(awk '/^99.0%   KLD:/ { print $3 }' <<<"$out")
    top=$(awk '/^Same top p:/ { print $4 " ± " $6 }' <<<"$out")
    ratio=$(awk '/^Mean PPL\(Q\)\/PPL\(base\)/ { print $4 " ± " $6 }' <<<"$out")
    awk -v m="$mix" -v s="$size" -v b="$(bpw "$model")" -v k="$kld" -v k99="$k99" -v t="$top" -v r="$ratio" \
        'BEGIN { printf "| %s | %.2f GB | %s | %s | %s | %s %% | %s |\n", m, s / 1e9, b, k, k99, t, r }'
done
