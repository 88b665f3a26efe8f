// llama.cpp loads what hearth writes: a tiny test model is written by `hearth make-test-model`,
// quantized by `hearth quantize` to each mix, and every file is loaded and greedy-decoded by
// llama.cpp (node-llama-cpp's prebuilt CPU build; `build: "never"`, so nothing is compiled).
// Usage: node llama_cpp_loads_test.mjs HEARTH_BINARY WORK_DIR
import {execFileSync} from "node:child_process";
import {mkdirSync, rmSync} from "node:fs";
import {join} from "node:path";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [hearth, work_dir] = process.argv.slice(2);
// One mix per tensor type hearth writes (Q4_K_M brings Q6_K, Q3_K_L brings Q5_K, Q2_K brings Q3_K).
const kMixes = process.env.HEARTH_COMPAT_ALL_MIXES
    ? ["F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q3_K_M", "Q3_K_L", "Q2_K",
       "IQ4_XS", "IQ4_NL", "Q5_1", "Q5_0", "Q4_1", "Q4_0"]
    : ["F16", "BF16", "Q8_0", "Q4_K_M", "Q3_K_L", "Q2_K", "IQ4_XS", "Q5_1", "Q4_0"];
const kSteps = 8;
const kVocab = 128256;

let passed = 0, failed = 0;
function check(condition, what) {
    if (condition) { passed++; } else { failed++; console.log(`FAIL: ${what}`); }
}

mkdirSync(work_dir, {recursive: true});
const source = join(work_dir, "tiny-source-f16.gguf");
// Output scale 50 gives logits with large gaps, so quantized files should keep the F16 tokens.
execFileSync(hearth, ["make-test-model", "--preset", "tiny", "--seed", "3", "--output-scale", "50", "-o", source],
             {stdio: "inherit"});

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const tokens_by_mix = {};
for (const mix of kMixes) {
    const path = join(work_dir, `tiny-${mix}.gguf`);
    execFileSync(hearth, ["quantize", source, path, mix], {stdio: ["ignore", "ignore", "inherit"]});
    const model = await llama.loadModel({modelPath: path});
    const context = await model.createContext({contextSize: 128});
    const prompt = [model.tokens.bos, ...model.tokenize("Hello world")];
    check(JSON.stringify(prompt) === JSON.stringify([128000, 9906, 1917]), `${mix}: prompt tokens ${prompt}`);
    const generated = [];
    for await (const token of context.getSequence().evaluate(prompt, {temperature: 0})) {
        generated.push(token);
        if (generated.length >= kSteps) break;
    }
    check(generated.length === kSteps && generated.every(t => t >= 0 && t < kVocab), `${mix}: generated ${generated}`);
    tokens_by_mix[mix] = generated;
    console.log(`${mix.padEnd(7)} loads in llama.cpp; greedy: ${generated.join(" ")}`);
    await context.dispose();
    await model.dispose();
}
// Greedy agreement between mixes is the CPU engine's test (near-ties on random weights can
// part them); here the first token of the 8-bit file must still be the 16-bit one's.
check(tokens_by_mix.Q8_0[0] === tokens_by_mix.F16[0], "Q8_0's first greedy token equals F16's");
rmSync(work_dir, {recursive: true, force: true});
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
