/* tr_gguf.h - GGUF export of a base model (optionally with its LoRA merged in) and of a LoRA
 * adapter, as llama.cpp loads them (GGUF version 3, alignment 32, little-endian).
 *
 * What is written (names and layout of llama.cpp's convert_hf_to_gguf.py and
 * convert_lora_to_gguf.py):
 *   - the model file: general.architecture "llama", "qwen2" (q/k/v biases, no o bias:
 *     model_type qwen2), "qwen3" (q/k norms) or "gpt2"; general.name, general.file_type (0 all
 *     F32, 1 mostly F16), general.alignment 32; ARCH.context_length, embedding_length,
 *     block_count, feed_forward_length, attention.head_count, attention.head_count_kv,
 *     attention.key_length, attention.value_length, rope.dimension_count, rope.freq_base,
 *     attention.layer_norm_rms_epsilon, vocab_size (gpt2: context_length,
 *     embedding_length, block_count, feed_forward_length, attention.head_count,
 *     attention.layer_norm_epsilon, vocab_size); the tokenizer (byte-level BPE:
 *     tokenizer.ggml.model "gpt2", .pre "gpt-2", "llama-bpe" or "qwen2", .tokens,
 *     .token_type, .merges; SentencePiece-style BPE: model "llama", .pre "default", .tokens,
 *     .scores (minus the rank of the first merge yielding the token), .token_type with
 *     unknown and byte types, .add_space_prefix, .unknown_token_id; both .bos_token_id,
 *     .eos_token_id, .add_bos_token, .add_eos_token); tensors token_embd,
 *     blk.N.attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up,
 *     ffn_down, output_norm and output (untied heads only), each ".weight"; Qwen2's
 *     attn_q/k/v ".bias", Qwen3's attn_q_norm and attn_k_norm; with Llama 3's rope_scaling
 *     llama3, rope_freqs.weight [hd/2]: the factor llama.cpp divides each frequency by
 *     (unscaled over scaled inv_freq, as tr_rope_inv_freq computes them). For "llama", attn_q and
 *     attn_k rows are permuted from Hugging Face's rotate_half RoPE pairing (dimension i
 *     with i + hd/2) to GGML's interleaved one (2i with 2i + 1), as convert_hf_to_gguf.py's
 *     LlamaModel.permute does; llama.cpp rotates qwen2 and qwen3 as Hugging Face does
 *     (NEOX), so their rows stay. gpt2: token_embd, position_embd, blk.N.attn_norm,
 *     attn_qkv, attn_output, ffn_norm, ffn_up, ffn_down (each .weight and .bias),
 *     output_norm (.weight, .bias); Hugging Face's Conv1D weights ([in, out]) transposed.
 *   - the adapter file: general.type "adapter", adapter.type "lora", adapter.lora.alpha (so
 *     that llama.cpp's alpha / r is the adapter's scaling, rsLoRA included), the same
 *     architecture; tensors blk.N.attn_q.weight.lora_a ([in, r] in GGML order: PEFT's A
 *     [r, in] as stored) and .lora_b ([r, out]: PEFT's B [out, r], rows permuted as their
 *     weight's are), for every adapted module.
 *
 * Only what this engine and those architectures compute alike is exported: GPT-2 and the
 * Llama family without attention_bias (biases on q, k, v and o), with no rope_scaling or
 * (llama only) llama3's, with a byte-level BPE tokenizer.json (GPT-2, Llama 3, Qwen2
 * pre-tokenizers) or a SentencePiece-style one llama.cpp's "llama" tokenizer can express (a
 * U+2581 Prepend/Replace normalizer or a non-splitting Metaspace, no pre-tokenizer split).
 * Anything else is MU_ERR_UNSUPPORTED naming what (attention_bias, linear/dynamic
 * rope_scaling, other normalizers or splitting pre-tokenizers).
 *
 * Files are written to PATH.tmp, fsynced and renamed over PATH (mu_file_commit): after a
 * failure or a crash PATH is its old content or the complete new one.
 * Thread-safety: the functions keep no state; one model per thread.
 */
#ifndef TR_GGUF_H
#define TR_GGUF_H

#include "mu_err.h"
#include "tr_model.h"

#define TR_GGUF_VERSION   3
#define TR_GGUF_ALIGNMENT 32

/* GGML tensor types written (ggml.h's GGML_TYPE_F32 / GGML_TYPE_F16). */
typedef enum { TR_GGUF_F32 = 0, TR_GGUF_F16 = 1 } tr_gguf_type;

typedef struct {
    tr_gguf_type type; /* F16: every 2-D weight as IEEE half (round to nearest even); norms
                        * stay F32, as convert_hf_to_gguf.py does */
    int merge;         /* 1: the attached LoRA is merged in: W + scaling * B A */
    const char *name;  /* general.name; NULL or "" -> "mutual-export" */
} tr_gguf_opts;

/* Checks that m can be exported (see above), without writing anything. MU_OK or
 * MU_ERR_UNSUPPORTED naming the reason. */
int tr_gguf_check(const tr_model *m, mu_diag *diag);

/* Writes m's base model as a GGUF file at `path`, with the tokenizer of tok_dir (a folder
 * holding tokenizer.json, and tokenizer_config.json for BOS/EOS; tokenizer ids beyond the
 * model's vocab_size are refused, missing ids up to it become "[PADn]" tokens of type
 * unused). With opts->merge, m must have LoRA attached (MU_ERR_STATE otherwise) and the
 * merged weights are written; m is not changed. MU_OK, MU_ERR_UNSUPPORTED, MU_ERR_FORMAT
 * or MU_ERR_NOTFOUND (tokenizer), MU_ERR_IO, MU_ERR_NOMEM, with diag naming the file. */
int tr_gguf_write_model(tr_model *m, const char *tok_dir, const tr_gguf_opts *opts,
                        const char *path, mu_diag *diag);

/* Writes m's attached LoRA adapter (F32) as a GGUF LoRA file at `path`. MU_ERR_STATE without
 * LoRA; else as tr_gguf_write_model. */
int tr_gguf_write_lora(tr_model *m, const char *name, const char *path, mu_diag *diag);

/* Row permutation of a q or k projection for GGML's RoPE: dst row h*hd + 2i + j is src row
 * h*hd + j*hd/2 + i (h < n_head, i < hd/2, j < 2); each row has `cols` floats. */
void tr_gguf_permute_rows(float *dst, const float *src, int n_head, int hd, int64_t cols);

/* IEEE binary16 of x, rounded to nearest even (overflow to infinity, NaN kept NaN). */
uint16_t tr_gguf_f16(float x);

#endif
