// hearth's greedy decoding equals llama.cpp's (node-llama-cpp's prebuilt CPU build; `build: "never"`).
// A test model (`hearth make-test-model`, output scale kOutputScale[preset]) is quantized to Q8_0 and Q4_K_M; on each of the three files and each prompt, `hearth run
// --raw --ids --temp 0` and llama.cpp decode 64 greedy steps from the same prompt tokens (both
// tokenizers must agree on them first) and must pick the same tokens and stop at the same place.
//
// Where they part, the step shows why: both picks, llama.cpp's own margin between them (ln p ratio
// from its full probability list = its logit difference) and the exact margin: the float64 reference
// (tests/model/reference_forward.py) on the same prefix and the same weights (the file itself for F16
// and Q8_0; for Q4_K_M, which the reference cannot read, the file dequantized to F32 by `hearth
// quantize --allow-requantize`). A parting passes only at a near-tie: an exact margin below
// kNearTie[file] times the spread (standard deviation) of the logits at that step. Partings do come:
// over a 128k vocabulary the top-1/top-2 gap of random weights falls below 1% of the logits' spread
// every few dozen steps, and the output scale cannot help (it scales the rounding errors too).
//
// Usage: node greedy_vs_llama_cpp.mjs HEARTH_BINARY WORK_DIR
//   HEARTH_GREEDY_PRESETS=tiny,1b   presets to test (CI: tiny; the 1b F16 file is ~2.5 GB)
//   PYTHON=/usr/bin/python3         interpreter for the reference (needs numpy)
import {execFileSync, spawnSync} from "node:child_process";
import {mkdirSync, openSync, readSync, closeSync, rmSync} from "node:fs";
import {dirname, join} from "node:path";
import {fileURLToPath} from "node:url";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [hearth, work_dir] = process.argv.slice(2);
if (!hearth || !work_dir) {
    console.error("usage: node greedy_vs_llama_cpp.mjs HEARTH_BINARY WORK_DIR");
    process.exit(2);
}
const kSteps = 64;
const kContext = 512;
const kVocab = 128256;  // the Llama 3.1 tokenizer of every test model
const kPresets = (process.env.HEARTH_GREEDY_PRESETS ?? "tiny").split(",").filter(p => p);
const kMixes = ["F16", "Q8_0", "Q4_K_M"];
// tiny: output.weight std 0.02 x 50 = 1, logits ~60 with std ~16. 1b ties the output to token_embd
// (as Llama 3.2 1B does), so the scale grows the embeddings too: at 50 they drown the 16 blocks and
// both engines repeat the prompt's last token with a top-1/top-2 gap over 100 (an empty test); at 5
// the picks vary and top-1/top-2 gaps are ~0.3-1.5 at the first steps.
const kOutputScale = {tiny: 50, "1b": 5};
const kPython = process.env.PYTHON ?? "/usr/bin/python3";
const kReference = join(dirname(fileURLToPath(import.meta.url)), "..", "model", "reference_forward.py");
// Largest exact margin between the two picks at which hearth and llama.cpp may part, as a fraction
// of the logits' standard deviation at that step (rounding errors scale with the logits: ~16 on the
// tiny preset at output scale 50). Each engine's logit differences err by its own
// rounding, so they can part only where the exact margin is below the sum of both errors.
//  F16: llama.cpp rounds activations to f16 before each product and keeps an f16 KV cache:
//    logit-difference errors up to 0.084 against the reference at std 16 (tests/model/REFERENCE.md,
//    64 steps x 4 prompts); hearth's f32 activations err less: 0.15 / 16 ~ 0.01.
//  Q8_0: both engines round each activation row to 8 bits per block of 32 before the integer dot
//    product, and a rounding flips wherever upstream f32 differences cross a half step, so their
//    errors are only partly shared: llama.cpp's errors against the reference reach 0.9 (std 16,
//    64 steps): 1.0 / 16 ~ 0.06.
//  Q4_K_M: activations go to Q8_K, 8 bits per block of 256 with one scale, coarser than Q8_0's 32:
//    0.09 (1.5 at std 16).
const kNearTie = {F16: 0.01, Q8_0: 0.06, Q4_K_M: 0.09};
// llama.cpp's worker threads spin while they wait: on a loaded 2-core CI machine two of them took 37 s
// for 32 tiny-model tokens, one took 0.2 s. Threads do not change its results (a row is one thread's).
const kLlamaThreads = Number(process.env.HEARTH_GREEDY_LLAMA_THREADS ?? 1);
const kPrompts = [
    ["short", "The capital of France is"],
    ["paragraph",
     "The river starts high in the mountains, where snow melts each spring and feeds a hundred small streams. " +
     "They join in a narrow valley, run past old mills and stone bridges, and reach the plain as one wide, " +
     "slow river. Farmers have watered their fields from it for a thousand years; towns grew where it could " +
     "be crossed, and every town kept a boat to carry grain and timber down to the sea. Today the mills are " +
     "museums, but the river still floods every few years, and people still"],
    ["special", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"],
    ["code", "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nprint(fib(10))"],
];

let passed = 0, failed = 0;
function check(condition, what) {
    if (condition) { passed++; } else { failed++; console.log(`FAIL: ${what}`); }
}
const run = (args) => execFileSync(hearth, args, {encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 16 << 20});
const fmt = x => (x === undefined || Number.isNaN(x) ? "-" : Number.isFinite(x) ? x.toFixed(3) : String(x));

// hearth's prompt tokens, as `hearth run --raw` makes them (BOS as the metadata says, special tokens parsed).
function hearthTokenize(file, text) {
    return JSON.parse(run(["tokenize", "-m", file, "--parse-special", "--ids", "--text", text]));
}

// Generated ids (the end token, if any, is not printed) and how many prompt tokens hearth evaluated
// (from --verbose), which must be the prompt that `hearth tokenize` gave.
function hearthGreedy(file, text) {
    const r = spawnSync(hearth, ["run", "-m", file, "--raw", "--ids", "--temp", "0", "--repeat-penalty", "1",
                                 "-n", String(kSteps), "-c", String(kContext), "--verbose", text],
                        {encoding: "utf8", maxBuffer: 16 << 20});
    if (r.status !== 0) throw new Error(`hearth run on ${file} failed (${r.status}): ${r.stderr}`);
    const count = r.stderr.match(/prompt eval count:\s*(\d+)/);
    return {ids: r.stdout.trim().split(/\s+/).filter(s => s).map(Number), promptTokens: count ? Number(count[1]) : -1};
}

// The two largest of llama.cpp's probabilities, as a logit gap (ln p1 - ln p2).
function topGap(probabilities) {
    let p1 = 0, p2 = 0;
    for (const p of probabilities.values()) {
        if (p > p1) { p2 = p1; p1 = p; } else if (p > p2) { p2 = p; }
    }
    return Math.log(p1 / p2);
}

// llama.cpp greedy-decodes up to kSteps tokens; an end-of-generation token ends the list (it is kept,
// flagged, so that a stop is compared like any other pick). Keeps the full probability list of the
// first step whose pick differs from `other` (hearth's ids), for the margin there.
async function llamaGreedy(model, prompt, other) {
    const context = await model.createContext({contextSize: kContext, threads: kLlamaThreads});
    const tokens = [];
    const gaps = [];
    let stopped = false, partingProbabilities = null;
    for await (const out of context.getSequence().evaluateWithMetadata(prompt, {probabilities: true},
                                                                         {temperature: 0, yieldEogToken: true})) {
        const step = tokens.length;
        gaps.push(topGap(out.probabilities));
        if (!partingProbabilities && out.token !== other[step]) partingProbabilities = out.probabilities;
        if (model.isEogToken(out.token)) { stopped = out.token; break; }
        tokens.push(out.token);
        if (tokens.length >= kSteps) break;
    }
    await context.dispose();
    return {tokens, gaps, stopped, partingProbabilities};
}

// The reference's logits for the token after `tokens`, on `file` (F32/F16/BF16/Q8_0 only): the last
// row of the float64 [n_tokens, vocab] .npy it writes.
function referenceLogits(file, tokens, npy) {
    execFileSync(kPython, [kReference, file, "--tokens", tokens.join(","), "--out", npy],
                 {stdio: ["ignore", "ignore", "inherit"]});
    const fd = openSync(npy, "r");
    const head = Buffer.alloc(16);
    readSync(fd, head, 0, 16, 0);
    const major = head[6];
    const headerLength = major === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
    const dataStart = (major === 1 ? 10 : 12) + headerLength;
    const header = Buffer.alloc(headerLength);
    readSync(fd, header, 0, headerLength, major === 1 ? 10 : 12);
    const shape = header.toString("latin1").match(/'shape':\s*\((\d+),\s*(\d+)\)/);
    if (!header.toString("latin1").includes("'<f8'") || !shape) throw new Error(`${npy}: not a float64 matrix`);
    const [rows, vocab] = [Number(shape[1]), Number(shape[2])];
    const row = Buffer.alloc(vocab * 8);
    readSync(fd, row, 0, row.length, dataStart + (rows - 1) * vocab * 8);
    closeSync(fd);
    return new Float64Array(row.buffer, row.byteOffset, vocab);
}

// Top token, top-1 minus top-2 gap and standard deviation of a logit vector.
function summarize(logits) {
    let i1 = 0, i2 = -1, sum = 0, sum2 = 0;
    for (let i = 0; i < logits.length; i++) {
        sum += logits[i];
        sum2 += logits[i] * logits[i];
        if (i === 0) continue;
        if (logits[i] > logits[i1]) { i2 = i1; i1 = i; } else if (i2 < 0 || logits[i] > logits[i2]) { i2 = i; }
    }
    const mean = sum / logits.length;
    return {top: i1, gap: logits[i1] - logits[i2], std: Math.sqrt(sum2 / logits.length - mean * mean)};
}

// Margin of `a` over `b` in a logit vector (b may be "eog": the best end-of-generation token, which
// is what hearth picked when it stopped without printing the token).
function margin(logitOf, a, b, eogTokens) {
    const best = (t) => t === "eog" ? Math.max(...eogTokens.map(logitOf)) : logitOf(t);
    return best(a) - best(b);
}

// A file the reference reads holding the weights of `mix` exactly: Q4_K_M dequantized to F32 (once).
function referenceFile(files, mix) {
    if (mix !== "Q4_K_M") return files[mix];
    if (!files.Q4_K_M_F32) {
        files.Q4_K_M_F32 = files.Q4_K_M.replace(/\.gguf$/, "-dequantized-F32.gguf");
        run(["quantize", "--allow-requantize", files.Q4_K_M, files.Q4_K_M_F32, "F32"]);
    }
    return files.Q4_K_M_F32;
}

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const rows = [];

for (const preset of kPresets) {
    const dir = join(work_dir, preset);
    mkdirSync(dir, {recursive: true});
    const files = {F16: join(dir, `${preset}-F16.gguf`)};
    run(["make-test-model", "--preset", preset, "--seed", "3", "--output-scale", String(kOutputScale[preset] ?? 50),
         "-o", files.F16]);
    for (const mix of kMixes.slice(1)) {
        files[mix] = join(dir, `${preset}-${mix}.gguf`);
        run(["quantize", files.F16, files[mix], mix]);
    }

    for (const mix of kMixes) {
        const model = await llama.loadModel({modelPath: files[mix]});
        const eogTokens = [];
        for (let t = 0; t < kVocab; t++) if (model.isEogToken(t)) eogTokens.push(t);
        console.log(`${preset} ${mix}: llama.cpp's end-of-generation tokens ${eogTokens.join(" ")}`);
        for (const [name, text] of kPrompts) {
            const label = `${preset} ${mix} "${name}"`;
            const prompt = [model.tokens.bos, ...model.tokenize(text, true)];
            const hearthPrompt = hearthTokenize(files[mix], text);
            check(JSON.stringify(prompt) === JSON.stringify(hearthPrompt),
                  `${label}: prompt tokens differ: llama.cpp ${prompt} vs hearth ${hearthPrompt}`);

            const t0 = performance.now();
            const ours = hearthGreedy(files[mix], text);
            const hearthSeconds = (performance.now() - t0) / 1000;
            check(ours.promptTokens === prompt.length,
                  `${label}: hearth run evaluated ${ours.promptTokens} prompt tokens, expected ${prompt.length}`);
            const theirs = await llamaGreedy(model, prompt, ours.ids);

            // Each side's picks, a stop being the pick "eog" (hearth does not print its end token).
            const hearthPicks = [...ours.ids, ...(ours.ids.length < kSteps ? ["eog"] : [])];
            const llamaPicks = [...theirs.tokens, ...(theirs.stopped !== false ? ["eog"] : [])];
            let part = -1;
            for (let i = 0; i < Math.max(hearthPicks.length, llamaPicks.length); i++) {
                if (hearthPicks[i] !== llamaPicks[i]) { part = i; break; }
            }
            const row = {preset, mix, name, promptTokens: prompt.length, hearthSeconds,
                         agreed: part < 0 ? ours.ids.length : part,
                         end: ours.ids.length < kSteps ? `both stop at ${ours.ids.length}` : `${kSteps}/${kSteps}`,
                         closest: part === 0 ? undefined : Math.min(...theirs.gaps.slice(0, part < 0 ? kSteps : part)),
                         verdict: "same"};
            if (part < 0) {
                check(true, label);
                rows.push(row);
                continue;
            }
            const h = hearthPicks[part];
            const l = llamaPicks[part] === "eog" ? theirs.stopped : llamaPicks[part];
            row.part = part;
            row.hearth = h;
            row.llama = llamaPicks[part] === "eog" ? `eog ${l}` : l;
            console.log(`${label}: parts at step ${part}\n  hearth:    ${hearthPicks.join(" ")}\n` +
                        `  llama.cpp: ${llamaPicks.join(" ")}${theirs.stopped !== false ? ` (${theirs.stopped})` : ""}`);
            if (h === l) {
                // Same token, but one side stopped on it: the two disagree on what ends generation.
                row.verdict = "END TOKENS DIFFER";
                check(false, `${label}: step ${part}: hearth ${h}, llama.cpp ${row.llama}: end-of-generation sets differ`);
                rows.push(row);
                continue;
            }
            const p = theirs.partingProbabilities;
            row.llamaMargin = margin(t => Math.log(p.get(t) ?? 0), l, h, eogTokens);
            // The reference on the same weights and the same prefix.
            const logits = referenceLogits(referenceFile(files, mix), [...prompt, ...ours.ids.slice(0, part)],
                                           join(dir, "logits.npy"));
            const {top, gap, std} = summarize(logits);
            row.refTop = top === l ? "llama.cpp" : top === h || (h === "eog" && eogTokens.includes(top)) ? "hearth" : top;
            row.refGap = gap;
            row.refMargin = margin(t => logits[t], l, h, eogTokens);
            row.limit = kNearTie[mix] * std;
            row.verdict = Math.abs(row.refMargin) < row.limit ? "near-tie" : "DISAGREE";
            check(Math.abs(row.refMargin) < row.limit,
                  `${label}: parts at step ${part} (hearth ${h}, llama.cpp ${row.llama}) where the exact margin is ` +
                  `${fmt(row.refMargin)} (limit ${fmt(row.limit)}); repro: hearth run -m ${files[mix]} --raw --ids --temp 0 ` +
                  `--repeat-penalty 1 -n ${kSteps} -c ${kContext} ${JSON.stringify(text)} (prompt ids ${prompt.join(",")}; ` +
                  `the first ${part} generated ids agree)`);
            rows.push(row);
        }
        await model.dispose();
    }
    if (failed === 0) rmSync(dir, {recursive: true, force: true});  // kept for the repro commands
}

// The results table: one row per preset x file x prompt.
const header = ["preset", "file", "prompt", "tokens", "agree", "end/part", "hearth", "llama.cpp", "llama margin",
                "exact margin", "limit", "exact top", "exact gap", "closest call", "hearth s", "verdict"];
const table = rows.map(r => [r.preset, r.mix, r.name, String(r.promptTokens), String(r.agreed),
                             r.part === undefined ? r.end : `parts at ${r.part}`, String(r.hearth ?? "-"),
                             String(r.llama ?? "-"), fmt(r.llamaMargin), fmt(r.refMargin), fmt(r.limit),
                             String(r.refTop ?? "-"), fmt(r.refGap), fmt(r.closest), r.hearthSeconds.toFixed(2),
                             r.verdict]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map(row => row[i].length)));
const line = cells => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
console.log(`\nGreedy ${kSteps} steps, hearth vs llama.cpp. Margins: logit(llama.cpp's pick) - logit(hearth's pick), ` +
            `by llama.cpp and exact (float64 reference, same weights); limit: ${JSON.stringify(kNearTie)} x the ` +
            `logits' std; exact top: whose pick the reference makes; closest call: llama.cpp's smallest top-1 - ` +
            `top-2 gap over the agreed steps`);
console.log(line(header));
for (const row of table) console.log(line(row));
if (failed === 0) rmSync(work_dir, {recursive: true, force: true});
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
