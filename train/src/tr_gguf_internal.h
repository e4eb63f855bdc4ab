/* tr_gguf_internal.h - the GGUF writer's pieces shared by tr_gguf.c (file layout) and
 * tr_gguf_llama.c (what a Llama model and its tokenizer become). Not installed. */
#ifndef TR_GGUF_INTERNAL_H
#define TR_GGUF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tr_gguf.h"

/* GGUF metadata value types (gguf.h's enum gguf_type). */
enum {
    TR_GV_UINT32 = 4,
    TR_GV_INT32 = 5,
    TR_GV_FLOAT32 = 6,
    TR_GV_BOOL = 7,
    TR_GV_STRING = 8,
    TR_GV_ARRAY = 9,
};

/* GGML_MAX_NAME: a tensor name must be shorter. */
#define TR_GGUF_NAME_MAX 64

/* The key-value section being built; err sticks at the first failure (MU_ERR_NOMEM). */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    uint64_t n_kv;
    int err;
} tr_gbuf;

void tr_gb_free(tr_gbuf *b);
void tr_gb_u32(tr_gbuf *b, uint32_t v);
void tr_gb_f32(tr_gbuf *b, float v);
void tr_gb_str(tr_gbuf *b, const char *s, size_t n); /* uint64 length, then the bytes */
void tr_gb_kv_u32(tr_gbuf *b, const char *key, uint32_t v);
void tr_gb_kv_f32(tr_gbuf *b, const char *key, float v);
void tr_gb_kv_bool(tr_gbuf *b, const char *key, int v);
void tr_gb_kv_str(tr_gbuf *b, const char *key, const char *v);
/* Starts an array of n elements of `type`; the caller then appends exactly n elements
 * (tr_gb_str, tr_gb_u32, tr_gb_f32). */
void tr_gb_kv_array(tr_gbuf *b, const char *key, uint32_t type, uint64_t n);

/* One tensor of the file. Its data is src, a row-major (rows = ne[1], or 1 for 1-D) x
 * (cols = ne[0]) array in Hugging Face's [out, in] layout, or with transpose (2-D only) a
 * (cols x rows) one ([in, out], GPT-2's Conv1D) read transposed, then transformed on the way
 * out: plus scale * B A when A is set (B (rows, r), A (r, cols)), then rows permuted for
 * GGML's RoPE when perm_heads is set (tr_gguf_permute_rows with head size hd). */
typedef struct {
    char name[TR_GGUF_NAME_MAX];
    int ndim;      /* 1 or 2 */
    int64_t ne[2]; /* GGML order: ne[0] is the contiguous dimension */
    tr_gguf_type type;
    const float *src;
    int transpose;
    int perm_heads, hd;
    const float *A, *B;
    int r;
    float scale;
} tr_gten;

/* Appends the tokenizer.ggml.* keys of DIR/tokenizer.json (tokenizer_config.json for
 * BOS/EOS), vocab_size V long (tr_gguf_tok.c). MU_OK, MU_ERR_UNSUPPORTED, MU_ERR_FORMAT,
 * MU_ERR_NOTFOUND or MU_ERR_NOMEM. */
int tr_gguf_tokenizer_kv(tr_gbuf *b, const char *dir, int V, mu_diag *diag);

/* Writes magic, version, counts, kv, the tensor infos (offsets assigned in order, each a
 * multiple of TR_GGUF_ALIGNMENT) and the data to path (via PATH.tmp and mu_file_commit).
 * MU_OK, MU_ERR_INVALID (a bad tensor description), MU_ERR_NOMEM or MU_ERR_IO. */
int tr_gguf_write_file(const char *path, const tr_gbuf *kv, const tr_gten *t, size_t n,
                       mu_diag *diag);

#endif
