// llama_ctx.mjs: what gguf_llama.mjs and gen_llama.mjs share. openContext loads MODEL.gguf
// (with the GGUF LoRA adapter LORA.gguf unless "-") in node-llama-cpp's prebuilt llama.cpp
// from NPM_DIR on the CPU, one thread, fp32 end to end as mutual computes (F32 KV cache, no
// flash attention), with a context of `size` tokens. close() frees it all.
import path from "node:path";
import { pathToFileURL } from "node:url";

export async function openContext(npmDir, modelPath, loraPath, size) {
  const { getLlama, LlamaLogLevel } = await import(
    pathToFileURL(path.resolve(npmDir, "node_modules/node-llama-cpp/dist/index.js")).href
  );
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: size,
    batchSize: 64,
    threads: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
    lora: loraPath === "-" ? undefined : { adapters: [{ filePath: loraPath }] },
  });
  const close = async () => {
    await ctx.dispose();
    await model.dispose();
    await llama.dispose();
  };
  return { ctx, close };
}
