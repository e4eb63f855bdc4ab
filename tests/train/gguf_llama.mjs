// node gguf_llama.mjs NPM_DIR MODEL.gguf LORA.gguf|- LOGITS.bin VOCAB ID...: loads MODEL.gguf
// (with the GGUF LoRA adapter LORA.gguf unless "-") in node-llama-cpp's prebuilt llama.cpp on
// the CPU, evaluates ID... and reads at every position the next-token probabilities over the
// whole vocabulary (greedy sampler: the softmax of the raw logits). Prints "maxdiff X", the
// largest |log p_llama - log_softmax(mutual)| over every position and token, with mutual's
// logits read from LOGITS.bin (T x VOCAB float32, little-endian), then "scale S", the
// largest |log_softmax(mutual)|.
import { readFileSync } from "node:fs";

import { openContext } from "./llama_ctx.mjs";

const [npmDir, modelPath, loraPath, logitsPath, vocabArg, ...idArgs] = process.argv.slice(2);
const V = Number(vocabArg);
const ids = idArgs.map(Number);
const { ctx, close } = await openContext(npmDir, modelPath, loraPath, 64);
const seq = ctx.getSequence();
const res = await seq.controlledEvaluate(
  ids.map((t) => [t, { generateNext: { probabilities: true } }]),
);

const buf = readFileSync(logitsPath);
const ref = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
if (ref.length !== ids.length * V) throw new Error(`${logitsPath}: ${ref.length} floats`);
let maxdiff = 0, scale = 0;
for (let t = 0; t < ids.length; t++) {
  const probs = res[t]?.next?.probabilities;
  if (!probs || probs.size !== V) throw new Error(`position ${t}: ${probs?.size} probabilities`);
  const row = ref.subarray(t * V, (t + 1) * V);
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  for (const x of row) scale = Math.max(scale, Math.abs(x - lse));
  for (const [tok, p] of probs) {
    const d = Math.abs(Math.log(p) - (row[tok] - lse));
    if (!(d <= maxdiff)) maxdiff = d; // NaN sticks
  }
}
console.log(`maxdiff ${maxdiff}`);
console.log(`scale ${scale}`);
await close();
