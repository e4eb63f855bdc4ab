// node gen_llama.mjs NPM_DIR MODEL.gguf LORA.gguf|- N ID...: loads MODEL.gguf (with the GGUF
// LoRA adapter LORA.gguf unless "-") in node-llama-cpp's prebuilt llama.cpp on the CPU
// (fp32 KV cache, no flash attention), evaluates the prompt ID... and lets llama.cpp's own
// greedy sampler (temperature 0, no repeat penalty) generate N tokens; prints their ids on
// one line.
import { openContext } from "./llama_ctx.mjs";

const [npmDir, modelPath, loraPath, nArg, ...idArgs] = process.argv.slice(2);
const N = Number(nArg);
const ids = idArgs.map(Number);
const { ctx, close } = await openContext(npmDir, modelPath, loraPath, ids.length + N + 8);
const seq = ctx.getSequence();
const out = [];
for await (const t of seq.evaluate(ids, { temperature: 0 })) {
  out.push(t);
  if (out.length >= N) break;
}
console.log(out.join(" "));
await close();
