// The numpy float64 reference (tests/model/reference_forward.py) against llama.cpp (node-llama-cpp's
// prebuilt CPU build; `build: "never"`): both greedy-decode the same tiny test model from the same
// prompts and must pick the same tokens; where they part, the reference's logit gap (top-1 minus
// top-2) at that step says whether it was a near-tie. Along the common prefix the next-token
// distributions are compared too: llama.cpp's full probability list (evaluateWithMetadata with
// `probabilities: true`, softmax of the raw logits at temperature 0) gives ln p_k - ln p_top1, which
// must equal the reference's logit_k - logit_top1 for the reference's top-5 tokens.
//
// F16 must agree (that validates the reference). BF16 and Q8_0 files of the same model are shown
// for information: llama.cpp on each file against the reference on the F16 file (where they part,
// the F16 reference gap) and against the reference on that same file (the reference dequantizes
// BF16 and Q8_0 weights exactly, but keeps float64 activations).
//
// Usage: node reference_vs_llama_cpp.mjs HEARTH_BINARY WORK_DIR [STEPS]
//        (PYTHON=/usr/bin/python3 by default; it needs numpy)
import {execFileSync} from "node:child_process";
import {mkdirSync, rmSync} from "node:fs";
import {dirname, join} from "node:path";
import {fileURLToPath} from "node:url";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [hearth, work_dir, steps_arg] = process.argv.slice(2);
if (!hearth || !work_dir) {
    console.error("usage: node reference_vs_llama_cpp.mjs HEARTH_BINARY WORK_DIR [STEPS]");
    process.exit(2);
}
const kSteps = Number(steps_arg ?? 16);
const kPython = process.env.PYTHON ?? "/usr/bin/python3";
const kReference = join(dirname(fileURLToPath(import.meta.url)), "..", "model", "reference_forward.py");
// llama.cpp's F16 path rounds activations to f16 before each dot product and keeps the KV cache in
// f16: relative errors of ~5e-4 in the final hidden state, which output scale 50 (logits around 60)
// turns into logit-difference errors of 0.01 to 0.06 (seen). Tolerance: 0.15 absolute (2.5e-3 of 60).
const kLogitDiffTolerance = 0.15;
// A parting at a step whose reference gap is below this is a near-tie, not a disagreement.
const kNearTie = 0.15;
// Which files llama.cpp decodes (HEARTH_REF_MIXES=F16 for the check alone; BF16 and Q8_0 are shown for information).
const kMixes = (process.env.HEARTH_REF_MIXES ?? "F16,BF16,Q8_0").split(",");

let passed = 0, failed = 0;
function check(condition, what) {
    if (condition) { passed++; } else { failed++; console.log(`FAIL: ${what}`); }
}

mkdirSync(work_dir, {recursive: true});
const files = {F16: join(work_dir, "tiny-F16.gguf")};
execFileSync(hearth, ["make-test-model", "--preset", "tiny", "--seed", "3", "--output-scale", "50", "-o", files.F16],
             {stdio: ["ignore", "ignore", "inherit"]});
for (const mix of ["BF16", "Q8_0"].filter(m => kMixes.includes(m))) {
    files[mix] = join(work_dir, `tiny-${mix}.gguf`);
    execFileSync(hearth, ["quantize", files.F16, files[mix], mix], {stdio: ["ignore", "ignore", "inherit"]});
}

function reference(path, prompt) {
    const t0 = performance.now();
    const out = execFileSync(kPython, [kReference, path, "--tokens", prompt.join(","), "--greedy", String(kSteps), "--json"],
                             {encoding: "utf8", maxBuffer: 64 << 20});
    const result = JSON.parse(out);
    result.wall_s = (performance.now() - t0) / 1000;
    return result;
}

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});

async function llamaGreedy(model, prompt) {
    const context = await model.createContext({contextSize: 256});
    const steps = [];
    for await (const out of context.getSequence().evaluateWithMetadata(prompt, {probabilities: true}, {temperature: 0})) {
        steps.push({token: out.token, probabilities: out.probabilities});
        if (steps.length >= kSteps) break;
    }
    await context.dispose();
    return steps;
}

function firstParting(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
    return a.length === b.length ? -1 : n;
}

// ln p_k - ln p_top1 from llama.cpp against logit_k - logit_top1 from the reference, over the
// reference's top-5, at each step of the common prefix. Returns the largest difference.
function logitDiffError(ref, llamaSteps, upTo) {
    const per_step = [];
    for (let s = 0; s < upTo; s++) {
        let worst = 0;
        const top5 = ref.top5[s];
        const p = llamaSteps[s].probabilities;
        const lp0 = Math.log(p.get(top5[0][0]));
        for (const [token, logit] of top5.slice(1)) {
            const pk = p.get(token);
            if (!(pk > 0)) continue;  // underflowed to 0 in f32: nothing to compare
            worst = Math.max(worst, Math.abs((Math.log(pk) - lp0) - (logit - top5[0][1])));
        }
        per_step.push(worst);
    }
    return per_step;
}

const modelF16 = await llama.loadModel({modelPath: files.F16});
const prompts = [
    [modelF16.tokens.bos, ...modelF16.tokenize("Hello world")],
    [modelF16.tokens.bos, ...modelF16.tokenize("The quick brown fox jumps over the lazy dog, and then it runs back into the forest again.")],
    [modelF16.tokens.bos, ...modelF16.tokenize("def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nprint(fib(10))")],
    [modelF16.tokens.bos, 1, 2, 3, 500, 5000, 50000, 100000, 128255, 42, 7, 99999, 12345, 54321, 11111, 77777, 3000, 30000, 300, 30],
];
check(JSON.stringify(prompts[0]) === JSON.stringify([128000, 9906, 1917]), `prompt 0 tokens ${prompts[0]}`);
await modelF16.dispose();

const refF16 = prompts.map(p => reference(files.F16, p));
const fmt = x => x.toFixed(4);

for (const mix of kMixes) {
    console.log(`\n== llama.cpp on ${mix} (${kSteps} greedy steps per prompt)`);
    const model = await llama.loadModel({modelPath: files[mix]});
    const refSame = mix === "F16" ? refF16 : prompts.map(p => reference(files[mix], p));
    for (const [i, prompt] of prompts.entries()) {
        const steps = await llamaGreedy(model, prompt);
        const tokens = steps.map(s => s.token);
        const against = [["ref F16", refF16[i]]];
        if (mix !== "F16") against.push([`ref ${mix}`, refSame[i]]);
        for (const [label, ref] of against) {
            const part = firstParting(ref.greedy, tokens);
            const agree = part < 0 ? kSteps : part;
            const per_step = logitDiffError(ref, steps, agree);
            const err = Math.max(0, ...per_step);
            let line = `prompt ${i} (${prompt.length} tokens) vs ${label}: ${agree}/${kSteps} agree, ` +
                       `max |logit-diff error| ${err.toExponential(2)}`;
            if (part >= 0) {
                const p = steps[part].probabilities;
                const llamaGap = Math.log(p.get(tokens[part]) / p.get(ref.greedy[part]));
                line += `; parts at step ${part}: ref ${ref.greedy[part]} vs llama.cpp ${tokens[part]}, ` +
                        `ref gap ${fmt(ref.gaps[part])}, llama.cpp's own margin ${fmt(llamaGap)}`;
            }
            console.log(line);
            console.log(`  logit-diff error by step: ${per_step.map(e => e.toFixed(3)).join(" ")}`);
            if (mix === "F16") {
                check(part < 0 || ref.gaps[part] < kNearTie,
                      `F16 prompt ${i}: parts at step ${part} with reference gap ${ref.gaps[part]}`);
                check(err < kLogitDiffTolerance, `F16 prompt ${i}: logit-difference error ${err}`);
            }
        }
        console.log(`  llama.cpp: ${tokens.join(" ")}`);
        console.log(`  ref F16  : ${refF16[i].greedy.join(" ")}`);
        if (mix !== "F16") console.log(`  ref ${mix.padEnd(5)}: ${refSame[i].greedy.join(" ")}`);
        console.log(`  ref F16 gaps: ${refF16[i].gaps.map(fmt).join(" ")}`);
        if (mix !== "F16") console.log(`  ref ${mix} gaps: ${refSame[i].gaps.map(fmt).join(" ")}`);
    }
    await model.dispose();
}

const secs = refF16.map(r => `${r.prompt.length} tokens: load ${r.seconds.load.toFixed(2)} s, ` +
                            `prompt ${r.seconds.forward.toFixed(3)} s, ${kSteps} greedy ${r.seconds.greedy.toFixed(2)} s, ` +
                            `wall ${r.wall_s.toFixed(2)} s`);
console.log(`\nreference runtime (F16, float64):\n  ${secs.join("\n  ")}`);
rmSync(work_dir, {recursive: true, force: true});
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
