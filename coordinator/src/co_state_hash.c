/* co_state_hash.c - the hash of the state a checkpoint holds (co_checkpoint.h), what the
 * audit log's round entries name so that a successor's starting state is bound to the log. */
#include <sodium.h>
#include <string.h>

#include "co_checkpoint.h"
#include "mu_bytes.h"

static const char STATE_DOMAIN[] = "mutual state v1";

#define FLOATS_PER_STEP 1024

static void h_u64(crypto_generichash_state *st, uint64_t v)
{
    uint8_t b[8];
    mu_put_le64(b, v);
    crypto_generichash_update(st, b, sizeof b);
}

static void h_f64(crypto_generichash_state *st, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    h_u64(st, bits);
}

static void h_str(crypto_generichash_state *st, const char *s, size_t cap)
{
    size_t n = s ? strnlen(s, cap) : 0;
    h_u64(st, n);
    crypto_generichash_update(st, (const unsigned char *)s, n);
}

/* n floats as float32 LE, in steps (one update per float would be slow). */
static void h_floats(crypto_generichash_state *st, const float *x, size_t n)
{
    uint8_t b[4 * FLOATS_PER_STEP];
    h_u64(st, n);
    for (size_t i = 0; i < n;) {
        size_t k = n - i < FLOATS_PER_STEP ? n - i : FLOATS_PER_STEP;
        for (size_t j = 0; j < k; j++) {
            uint32_t bits;
            memcpy(&bits, &x[i + j], sizeof bits);
            mu_put_le32(b + 4 * j, bits);
        }
        crypto_generichash_update(st, b, 4 * k);
        i += k;
    }
}

void co_checkpoint_state_hash(const co_checkpoint *ck, uint8_t out[CO_HASH_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, CO_HASH_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)STATE_DOMAIN, sizeof STATE_DOMAIN);
    h_u64(&st, ck->round);
    h_u64(&st, (uint64_t)(int64_t)ck->strategy);
    h_u64(&st, ck->opt_step);
    h_u64(&st, ck->n_tensors);
    for (size_t i = 0; i < ck->n_tensors; i++) {
        const co_tensor *t = &ck->tensors[i];
        h_str(&st, t->name, CO_TENSOR_NAME_MAX);
        h_u64(&st, (uint64_t)t->ndim);
        for (int k = 0; k < t->ndim; k++)
            h_u64(&st, t->shape[k]);
        h_floats(&st, t->data, (size_t)co_tensor_numel(t));
    }
    h_u64(&st, ck->opt_m ? 1 : 0);
    h_floats(&st, ck->opt_m, ck->opt_m ? ck->opt_d : 0);
    h_u64(&st, ck->opt_v ? 1 : 0);
    h_floats(&st, ck->opt_v, ck->opt_v ? ck->opt_d : 0);
    h_u64(&st, ck->n_metrics);
    for (size_t i = 0; i < ck->n_metrics; i++) {
        const co_metrics *m = &ck->metrics[i];
        h_u64(&st, m->round);
        h_u64(&st, (uint64_t)m->kind << 16 | (uint64_t)m->outcome << 8 | m->released);
        h_f64(&st, m->loss);
        h_f64(&st, m->tokens);
        h_u64(&st, m->orgs_selected);
        h_u64(&st, m->orgs_completed);
        h_u64(&st, m->orgs_dropped);
        h_u64(&st, m->bytes_in);
        h_u64(&st, m->bytes_out);
        h_f64(&st, m->t_start);
        h_f64(&st, m->t_end);
        h_f64(&st, m->epsilon);
        h_f64(&st, m->record_epsilon);
    }
    h_u64(&st, ck->n_orgs);
    for (size_t i = 0; i < ck->n_orgs; i++) {
        h_u64(&st, ck->orgs[i].id);
        h_str(&st, ck->orgs[i].name, CO_ORG_NAME_MAX);
        crypto_generichash_update(&st, ck->orgs[i].pk, CO_ORG_PK_BYTES);
    }
    crypto_generichash_final(&st, out, CO_HASH_BYTES);
}
