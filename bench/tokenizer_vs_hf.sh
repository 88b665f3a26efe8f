#!/bin/sh
# Encoding speed of hearth's tokenizer next to Hugging Face tokenizers (the npm Rust binding in
# tests/compat) on the same 10 MB mixed text, in one run.
#   bench/tokenizer_vs_hf.sh [BUILD_DIR]   (default build/release)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
text=$(mktemp /tmp/hearth-tokenizer-bench.XXXXXX)
trap 'rm -f "$text"' EXIT

"$build/bench/tokenize_bench" --write-text "$text" --benchmark_filter='Encode' \
    --benchmark_counters_tabular=true

cd "$root/tests/compat"
# HF's batch encoding would use every core; one core, as hearth's numbers are.
TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 node --input-type=module - "$text" "${HEARTH_SHARED_FIXTURES:-$root/../shared/fixtures}/llama3.1-tokenizer/tokenizer.json" <<'JS'
import { readFileSync, statSync } from "node:fs";
import { Tokenizer } from "@anush008/tokenizers";
const [textPath, tokenizerPath] = process.argv.slice(2);
const text = readFileSync(textPath, "utf8");
const megabytes = statSync(textPath).size / (1024 * 1024);
const tokenizer = Tokenizer.fromFile(tokenizerPath);
let best = Infinity;
let tokens = 0;
for (let run = 0; run < 3; run++) {
  const start = process.hrtime.bigint();
  const encoding = await tokenizer.encode(text, null, { addSpecialTokens: true });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  tokens = encoding.getIds().length;
  best = Math.min(best, seconds);
}
console.log(`HF tokenizers (npm @anush008/tokenizers), same text as one string: ${(megabytes / best).toFixed(1)} MiB/s ` +
            `(best of 3, ${(best * 1000).toFixed(0)} ms wall, ${tokens} tokens)`);
// HF is much slower on one 10 MB string than on many short ones, so also time it line by line
// (one batch, one thread): the friendlier number for HF.
const lines = text.split(/(?<=\n)/);
let bestLines = Infinity;
for (let run = 0; run < 3; run++) {
  const start = process.hrtime.bigint();
  await tokenizer.encodeBatch(lines, { addSpecialTokens: false });
  bestLines = Math.min(bestLines, Number(process.hrtime.bigint() - start) / 1e9);
}
console.log(`HF tokenizers, same text as ${lines.length} lines in one batch on one thread: ` +
            `${(megabytes / bestLines).toFixed(1)} MiB/s (best of 3, ${(bestLines * 1000).toFixed(0)} ms wall)`);
JS
