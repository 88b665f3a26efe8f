// Reference token ids from Hugging Face tokenizers (the npm Rust binding) for a seeded corpus,
// for hearth's exactness tests (tests/tokenizer/hf_exactness_test.cpp).
//
//   node tokenizer_hf_reference.mjs TOKENIZER_JSON VARIANT OUT_JSON [COUNT] [SEED]
//
// VARIANT: plain          the tokenizer.json as it is
//          split-special  special added tokens made unmatchable, so their text is ordinary
//                         text (what HF's split_special_tokens does; non-special ones stay)
//          gpt2           GPT-2's ByteLevel regex pre-tokenizer instead of the file's, and no
//                         ignore_merges (the gpt-2 pre-tokenizer on this vocabulary)
// OUT_JSON: {"cases": [{"hex": bytes of the text, "ids": [...], "decoded_hex": ...}]}.
// Texts are built as bytes, ill-formed UTF-8 included; HF receives them as a JS string, where
// each ill-formed subpart has become U+FFFD (Buffer.toString), which is what hearth does too.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer } from "@anush008/tokenizers";

const [tokenizerPath, variant, outPath, countArg, seedArg] = process.argv.slice(2);
if (!tokenizerPath || !variant || !outPath) {
  console.error("usage: node tokenizer_hf_reference.mjs TOKENIZER_JSON plain|split-special|gpt2 OUT_JSON [COUNT] [SEED]");
  process.exit(2);
}
const count = Number(countArg ?? 5000);
const seed = Number(seedArg ?? 20240611);

// ---- a seeded corpus ------------------------------------------------------------------------
function mulberry32(a) {
  return () => {
    a |= 0; a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(seed);
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (items) => items[Math.floor(rand() * items.length)];
const cp = (lo, hi) => String.fromCodePoint(int(lo, hi));
const repeat = (n, f) => Array.from({ length: n }, f).join("");

const words = ["the", "of", "and", "hello", "world", "token", "Llama", "Qwen", "running", "don", "isn", "we",
  "they", "you", "I", "HTTP", "JSON", "naïve", "café", "Straße", "über", "résumé", "façade", "co-operate",
  "e-mail", "A", "a", "xylophone", "supercalifragilisticexpialidocious", "aaaa", "ZZZ", "mIxEd", "CamelCase"];
const caseStyles = [(w) => w, (w) => w.toUpperCase(), (w) => w.toLowerCase(),
  (w) => w.charAt(0).toUpperCase() + w.slice(1), (w) => [...w].map((c) => (rand() < 0.5 ? c.toUpperCase() : c)).join("")];
const contractions = ["s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "Re", "rE", "VE", "vE", "M", "LL", "Ll", "lL", "D", "x", "ſ", "st"];
const specialTexts = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
  "<|python_tag|>", "<|reserved_special_token_5|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>",
  "</think>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|eot", "<|", "|>", "<|eot_id|><|eot_id|>", "<<|eot_id|>>"];
const codeSnippets = ["for (int i = 0; i < n; ++i) {", "def foo(x):\n    return x**2\n", "if (a != b && c >= d) return;",
  "std::vector<int> v{1, 2, 3};", "console.log(`${x}`);", "#include <stdio.h>\n", "    }\n}\n", "x => x * 2",
  "a[i][j] += 0x1F;", "/* comment */", "// TODO: fix\n", "SELECT * FROM t WHERE id = 42;", "\t\treturn nullptr;\n",
  "<div class=\"a\">&nbsp;</div>", "$ ls -la | grep '^d'", "λx.x", "f'{a!r:>10}'", "'''docstring'''", "i++;--j;"];
const spaces = [" ", " ", " ", "\t", "\n", "\r", "\r\n", "\n\n", "\u00a0", "\u3000", "\u2028", "\u2029", "\u0085",
  "\u000b", "\u000c", "\u2003", "\u200b", "\u202f", "\u1680", "\u001c"];
const punctuation = [..."!@#$%^&*()[]{}<>?/\\|~`-_=+.,;:\"'", "…", "—", "–", "“", "”", "«", "»", "¿", "¡", "·", "•", "、", "。", "！"];
const emoji = ["😀", "😁", "🦙", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "1️⃣", "❤️", "✅", "🧑🏿‍💻", "👩‍❤️‍💋‍👨", "☃", "🫠"];

function scriptRun() {
  const n = int(1, 12);
  switch (int(0, 11)) {
    case 0: return repeat(n, () => cp(0x4e00, 0x9fff));                          // CJK ideographs
    case 1: return repeat(n, () => cp(0x3041, 0x3096)) + repeat(int(0, 4), () => cp(0x30a1, 0x30fa));
    case 2: return repeat(n, () => cp(0xac00, 0xd7a3));                          // Hangul syllables
    case 3: return repeat(n, () => cp(0x1100, 0x1112) + cp(0x1161, 0x1175) + (rand() < 0.5 ? cp(0x11a8, 0x11c2) : ""));
    case 4: return repeat(n, () => cp(0x0621, 0x064a) + (rand() < 0.3 ? cp(0x064b, 0x0652) : ""));  // Arabic
    case 5: return repeat(n, () => cp(0x0905, 0x0939) + (rand() < 0.5 ? cp(0x093e, 0x094d) : ""));  // Devanagari
    case 6: return repeat(n, () => cp(0x0e01, 0x0e3a));                          // Thai
    case 7: return repeat(n, () => cp(0x0410, 0x044f));                          // Cyrillic
    case 8: return repeat(n, () => cp(0x0391, 0x03c9));                          // Greek
    case 9: return repeat(n, () => cp(0x05d0, 0x05ea) + (rand() < 0.3 ? cp(0x05b0, 0x05bc) : ""));  // Hebrew
    case 10: return repeat(n, () => cp(0x61, 0x7a) + repeat(int(1, 3), () => cp(0x0300, 0x036f)));  // combining marks
    default: return repeat(n, () => cp(0x00c0, 0x017f));                         // precomposed Latin
  }
}

function numberText() {
  switch (int(0, 5)) {
    case 0: case 1: return repeat(int(1, 40), () => cp(0x30, 0x39));
    case 2: return pick(["3.14159", "1,000,000", "-42", "1e-9", "0x7FFF", "2024-06-11", "12:30:45", "+1 (555) 010-9999"]);
    case 3: return repeat(int(1, 8), () => cp(0x0660, 0x0669));                  // Arabic-Indic digits
    case 4: return repeat(int(1, 8), () => pick(["０", "１", "９", "²", "³", "¹", "½", "Ⅳ", "ⅻ", "७", "๓", "𝟘"]));
    default: return repeat(int(1, 8), () => cp(0x0966, 0x096f));
  }
}

function invalidBytes() {
  switch (int(0, 6)) {
    case 0: return Buffer.from([int(0x80, 0xbf)]);                                // stray continuation
    case 1: return Buffer.from([pick([0xc0, 0xc1, 0xf5, 0xf8, 0xfe, 0xff])]);    // never valid
    case 2: return Buffer.from("🦙").subarray(0, int(1, 3));                       // truncated emoji
    case 3: return Buffer.from([0xed, 0xa0, 0x80]);                               // a surrogate
    case 4: return Buffer.from([0xe0, 0x80, 0xaf]);                               // overlong
    case 5: return Buffer.from([0xf4, 0x90, 0x80, 0x80]);                         // above U+10FFFF
    default: return Buffer.from(repeat(1, () => "é")).subarray(0, 1);
  }
}

function randomCodePoints() {
  const one = () => {
    for (;;) {
      const c = rand() < 0.8 ? int(0x80, 0xffff) : int(0x10000, 0x3ffff);
      if (c < 0xd800 || c > 0xdfff) return String.fromCodePoint(c);
    }
  };
  return repeat(int(1, 6), one);
}

function fragment() {
  switch (int(0, 13)) {
    case 0: case 1: return pick(caseStyles)(pick(words));
    case 2: return pick(caseStyles)(pick(words)) + "'" + pick(contractions) + (rand() < 0.3 ? pick(words) : "");
    case 3: return scriptRun();
    case 4: return numberText();
    case 5: return repeat(int(1, 8), () => pick(spaces));
    case 6: return repeat(int(1, 6), () => pick(punctuation));
    case 7: return pick(emoji) + (rand() < 0.3 ? pick(emoji) : "");
    case 8: return pick(codeSnippets);
    case 9: return pick(specialTexts);
    case 10: return invalidBytes();
    case 11: return randomCodePoints();
    case 12: return pick(["\u200d", "\u200c", "\ufeff", "\u0301", "'", "''", " '", "\r\n\r\n", " \n ", "   \n\n  x"]);
    default: return pick(words) + pick(["_", "-", ".", "/", "::"]) + pick(words);
  }
}

function corpusText() {
  const parts = [];
  const n = int(1, 12);
  for (let i = 0; i < n; i++) {
    const f = fragment();
    parts.push(typeof f === "string" ? Buffer.from(f, "utf8") : f);
    const r = rand();
    if (r < 0.55) parts.push(Buffer.from(" "));
    else if (r < 0.65) parts.push(Buffer.from(pick(spaces)));
  }
  return Buffer.concat(parts);
}

// Long texts: the encoder must stay near-linear on 100 KB without a space.
function longTexts() {
  const kb100 = 100 * 1024;
  const longText = (f) => {
    const parts = [];
    for (let bytes = 0; bytes < kb100;) {
      const part = f();
      parts.push(part);
      bytes += Buffer.byteLength(part);
    }
    return Buffer.from(parts.join(""));
  };
  return [
    longText(() => cp(0x61, 0x7a)), Buffer.alloc(kb100, "a"), longText(() => cp(0x30, 0x39)),
    longText(() => pick(punctuation)), longText(() => cp(0x4e00, 0x9fff)), Buffer.alloc(kb100, " "),
    longText(() => pick(["\n", "\r\n", " \n"])), longText(() => pick(emoji)),
  ];
}

// ---- the reference ---------------------------------------------------------------------------
function tokenizerJson() {
  const json = JSON.parse(readFileSync(tokenizerPath, "utf8"));
  if (variant === "split-special") {
    // HF numbers added tokens by their order, so the special ones stay, renamed to text no
    // corpus string contains.
    for (const t of json.added_tokens) if (t.special) t.content = `\u{e000}hearth-unmatchable-${t.id}\u{e000}`;
  }
  else if (variant === "gpt2") {
    json.pre_tokenizer = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
    json.model.ignore_merges = false;
  } else if (variant !== "plain") throw new Error(`unknown variant ${variant}`);
  return json;
}

const dir = mkdtempSync(join(tmpdir(), "hearth-hf-"));
const jsonPath = join(dir, "tokenizer.json");
writeFileSync(jsonPath, JSON.stringify(tokenizerJson()));
const tokenizer = Tokenizer.fromFile(jsonPath);
rmSync(dir, { recursive: true, force: true });

const texts = [];
for (let i = 0; i < count; i++) texts.push(corpusText());
texts.push(...longTexts());

// Batches keep the binding's worker threads busy; each text is still encoded on its own.
const cases = [];
const batchSize = 256;
for (let start = 0; start < texts.length; start += batchSize) {
  const batch = texts.slice(start, start + batchSize);
  const encodings = await tokenizer.encodeBatch(batch.map((b) => b.toString("utf8")), { addSpecialTokens: false });
  const ids = encodings.map((e) => e.getIds());
  const decoded = await tokenizer.decodeBatch(ids, false);
  batch.forEach((bytes, i) =>
    cases.push({ hex: bytes.toString("hex"), ids: ids[i], decoded_hex: Buffer.from(decoded[i], "utf8").toString("hex") }));
}
writeFileSync(outPath, JSON.stringify({ variant, seed, cases }));
console.error(`tokenizer_hf_reference: ${cases.length} texts (${variant}) → ${outPath}`);
