// node gguf_tok.mjs NPM_DIR MODEL.gguf CORPUS MUTUAL_IDS CLEAN EXPECT: llama.cpp's own tokenizer
// (node-llama-cpp's prebuilt, the vocabulary only) on an exported GGUF file. Prints what
// tok_ids prints for CORPUS, from llama.cpp: per line (split after each LF byte, the LF kept,
// each line's bytes read as UTF-8 with U+FFFD for invalid sequences, as tok_ref.mjs reads
// them) the ids of model.tokenize(line, true), then those of the whole file, then per line
// "decode " and the hex of the UTF-8 llama.cpp's detokenize (special tokens written out)
// gives for mutual's ids of that line, read from MUTUAL_IDS (tok_ids' output). specialTokens
// true: Hugging Face matches every added token in the text, so llama.cpp must parse them too;
// neither side adds BOS/EOS here. Writes to EXPECT what llama.cpp should print: MUTUAL_IDS
// with each decode passed through transformers' clean_up_tokenization when CLEAN is 1
// (llama.cpp's detokenize always cleans up for the gpt-2 and llama-bpe pre-tokenizers, as
// Hugging Face's decode does by default for those models; tr_tok_decode, like tok_ref.mjs,
// does not).
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { corpusLines } from "./corpus_lines.mjs";

const [npmDir, modelPath, corpus, mutualIds, clean, expectPath] = process.argv.slice(2);
const { getLlama, LlamaLogLevel } = await import(
  pathToFileURL(path.resolve(npmDir, "node_modules/node-llama-cpp/dist/index.js")).href
);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0, vocabOnly: true });

const bytes = readFileSync(corpus);
const lines = corpusLines(bytes);
const ids = (buf) => model.tokenize(buf.toString("utf8"), true).join(" ");
const out = lines.map(ids);
out.push(ids(bytes));
const theirs = readFileSync(mutualIds, "utf8").split("\n");
for (let i = 0; i < lines.length; i++) {
  const t = theirs[i].length ? theirs[i].split(" ").map(Number) : [];
  out.push("decode " + Buffer.from(model.detokenize(t, true), "utf8").toString("hex"));
}
process.stdout.write(out.join("\n") + "\n");

// transformers' PreTrainedTokenizerBase.clean_up_tokenization, on the bytes (ASCII patterns)
const cleanUp = (s) =>
  s.replaceAll(" .", ".").replaceAll(" ?", "?").replaceAll(" !", "!").replaceAll(" ,", ",")
    .replaceAll(" ' ", "'").replaceAll(" n't", "n't").replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s").replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
const expect = theirs.map((l) => {
  if (clean !== "1" || !l.startsWith("decode ")) return l;
  const s = Buffer.from(l.slice(7), "hex").toString("latin1");
  return "decode " + Buffer.from(cleanUp(s), "latin1").toString("hex");
});
writeFileSync(expectPath, expect.join("\n"));
await model.dispose();
await llama.dispose();
