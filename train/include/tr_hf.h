/* tr_hf.h - Hugging Face model folders and PEFT adapter folders.
 *
 * A model folder holds config.json and model.safetensors (F32, F16 or BF16; widened to
 * F32). Supported model_type values: "gpt2"; "llama"; "mistral" without a sliding window;
 * "qwen2" (q/k/v biases) and "qwen3" (q/k norms) without a sliding window; "gemma2" and
 * "gemma3_text" (tr_config.gemma; docs/train-io.md lists what is read); rope_scaling none,
 * default, linear, dynamic or llama3. Anything else (the multimodal "gemma3" included), or an
 * activation other than GPT-2's gelu_new / Llama's silu / Gemma's gelu_pytorch_tanh, is
 * MU_ERR_UNSUPPORTED.
 *
 * An adapter folder holds adapter_config.json (peft_type LORA) and
 * adapter_model.safetensors with PEFT's tensor names (see tr_model.h).
 *
 * Every error sets one line in the diag naming the file (and the tensor or key).
 * Thread-safety: none of these share state; each call may run on its own thread as long as
 * it has its own model.
 */
#ifndef TR_HF_H
#define TR_HF_H

#include <stddef.h>

#include "mu_err.h"
#include "tr_model.h"

#define TR_HF_CONFIG    "config.json"
#define TR_HF_WEIGHTS   "model.safetensors"
#define TR_PEFT_CONFIG  "adapter_config.json"
#define TR_PEFT_WEIGHTS "adapter_model.safetensors"

/* Reads DIR/config.json into *cfg (zeroed first; see tr_config in tr_model.h for the
 * mapping). GPT-2 is always tied; Llama-family models follow tie_word_embeddings.
 * MU_ERR_NOTFOUND / MU_ERR_IO if unreadable, MU_ERR_FORMAT for bad JSON or a missing or
 * mistyped key, MU_ERR_UNSUPPORTED for a model this engine does not run. */
int tr_hf_config_load(const char *dir, tr_config *cfg, mu_diag *diag);

/* Loads the whole folder: config, then every base tensor of the model by its Hugging Face
 * name from DIR/model.safetensors, each shape checked against config.json. GPT-2
 * checkpoints without the "transformer." prefix are accepted. A file tensor the model does
 * not use is MU_ERR_FORMAT naming it (e.g. layers beyond n_layer / num_hidden_layers),
 * except GPT-2 attention-mask buffers, rotary inv_freq buffers and a stored tied lm_head,
 * which are ignored. A NaN or infinity in a base tensor (after widening to F32) is
 * MU_ERR_FORMAT naming the tensor and the flat index of the first one. Without
 * model.safetensors, a sharded checkpoint is read: model.safetensors.index.json's
 * "weight_map" names the shard files (plain names inside DIR). Returns a new model
 * (caller frees with tr_model_free) or NULL with *err (may be NULL) and the diag set:
 * "DIR/model.safetensors: tensor 'NAME' has shape [a, b], expected [c, d] (config.json)". */
tr_model *tr_hf_model_load(const char *dir, int *err, mu_diag *diag);
/* The same with bf16 != 0 into a bf16-base model (tr_model_set_bf16): its 2-D weights are
 * read into bf16 directly (BF16 files bit for bit, F32/F16 rounded to nearest even), never
 * held in fp32; the non-finite check runs on the bf16 values. bf16 0 is tr_hf_model_load. */
tr_model *tr_hf_model_load_bf16(const char *dir, int bf16, int *err, mu_diag *diag);

/* What an adapter_config.json says. */
typedef struct {
    tr_lora_config lora;  /* rank, alpha, use_rslora, targets, dropout; freeze_a = 0 */
    char base_model[512]; /* base_model_name_or_path ("" if absent) */
} tr_peft_info;

/* Reads DIR/adapter_config.json for a model of `family`. Refuses (MU_ERR_UNSUPPORTED)
 * peft_type other than LORA, bias other than "none", DoRA, rank/alpha patterns,
 * layers_to_transform, modules_to_save and regex target_modules. */
int tr_peft_config_load(const char *dir, tr_family family, tr_peft_info *info, mu_diag *diag);

/* Copies DIR/adapter_model.safetensors into m's attached LoRA tensors. Every LoRA tensor of
 * m must be in the file with its shape; a file tensor m does not have is an error too
 * (MU_ERR_FORMAT naming it), so a mismatched config cannot silently drop weights. A NaN or
 * infinity in a tensor is refused (MU_ERR_INVALID naming the tensor and the index). */
int tr_peft_load_weights(tr_model *m, const char *dir, mu_diag *diag);

/* tr_peft_config_load, tr_lora_attach with its config (freeze_a and seed from the caller)
 * and tr_peft_load_weights: m starts from the saved adapter. */
int tr_peft_attach(tr_model *m, const char *dir, int freeze_a, uint64_t seed, tr_peft_info *info,
                   mu_diag *diag);

/* Writes m's LoRA adapter as a PEFT folder DIR (created if missing): adapter_config.json
 * (peft_type LORA, task_type CAUSAL_LM, r, lora_alpha, target_modules, lora_dropout, bias
 * "none", base_model_name_or_path = base_model, fan_in_fan_out true for GPT-2, use_rslora)
 * and adapter_model.safetensors. Each file is replaced atomically. MU_ERR_STATE without
 * LoRA; MU_ERR_IO. */
int tr_peft_save(tr_model *m, const char *dir, const char *base_model, mu_diag *diag);

#endif
