/* gv_store.c - governance files: whole-file reads, atomic whole-file writes. */
#include "gv_store.h"

#include <sodium.h>
#include <stdlib.h>

#include "mu_file.h"
#include "wi_bytes.h"

/* Prefixes the decoder's message with the file's name. */
static int named(const char *path, int rc, const mu_diag *why, mu_diag *d)
{
    return rc ? mu_diag_set(d, rc, "%s: %s", path, why->msg) : MU_OK;
}

static int save(const char *path, uint8_t *b, size_t n, int rc, mu_diag *d, const mu_diag *why)
{
    if (rc)
        return mu_diag_set(d, rc, "%s: %s", path, why->msg);
    rc = mu_write_file_atomic(path, b, n, d);
    free(b);
    return rc;
}

int gv_signed_load(const char *path, gv_signed *s, mu_diag *diag)
{
    char *b;
    size_t n;
    mu_diag why = {{0}};
    int rc = mu_read_file(path, GV_FILE_MAX, &b, &n, diag);
    if (rc)
        return rc;
    rc = gv_signed_decode(s, (const uint8_t *)b, n, &why);
    free(b);
    return named(path, rc, &why, diag);
}

int gv_signed_save(const char *path, const gv_signed *s, mu_diag *diag)
{
    uint8_t *b = NULL;
    size_t n = 0;
    mu_diag why = {{0}};
    int rc = gv_signed_encode(s, &b, &n, &why);
    return save(path, b, n, rc, diag, &why);
}

int gv_chain_load(const char *path, gv_signed **chain, size_t *n, mu_diag *diag)
{
    char *b;
    size_t len;
    mu_diag why = {{0}};
    int rc = mu_read_file(path, GV_FILE_MAX, &b, &len, diag);
    if (rc)
        return rc;
    rc = gv_chain_decode(chain, n, (const uint8_t *)b, len, &why);
    free(b);
    return named(path, rc, &why, diag);
}

int gv_chain_save(const char *path, const gv_signed *chain, size_t n, mu_diag *diag)
{
    uint8_t *b = NULL;
    size_t len = 0;
    mu_diag why = {{0}};
    int rc = gv_chain_encode(chain, n, &b, &len, &why);
    return save(path, b, len, rc, diag, &why);
}

int gv_log_load(const char *path, gv_log **log, mu_diag *diag)
{
    char *b;
    size_t n;
    mu_diag why = {{0}};
    int rc = mu_read_file(path, GV_FILE_MAX, &b, &n, diag);
    if (rc)
        return rc;
    rc = gv_log_decode(log, (const uint8_t *)b, n, &why);
    free(b);
    return named(path, rc, &why, diag);
}

int gv_log_save(const char *path, const gv_log *log, mu_diag *diag)
{
    uint8_t *b = NULL;
    size_t n = 0;
    mu_diag why = {{0}};
    int rc = gv_log_encode(log, &b, &n, &why);
    return save(path, b, n, rc, diag, &why);
}

int gv_signing_key_load(const char *path, uint8_t sk[GV_SK_BYTES], mu_diag *d)
{
    char *text;
    size_t n;
    int rc = mu_read_file(path, 4096, &text, &n, d);
    if (rc)
        return rc;
    size_t len = n;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    uint8_t seed[32], pk[GV_PK_BYTES];
    rc = wi_hex_decode(seed, sizeof seed, text);
    sodium_memzero(text, n);
    free(text);
    if (rc)
        return mu_diag_set(d, MU_ERR_FORMAT,
                           "%s: not a signing key (64 hex digits expected, "
                           "as `mutual certs identity` writes)",
                           path);
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(seed, sizeof seed);
    return MU_OK;
}

int gv_witness_load(const char *path, gv_witness *w, mu_diag *diag)
{
    char *b;
    size_t n;
    mu_diag why = {{0}};
    int rc = mu_read_file(path, 4096, &b, &n, diag);
    if (rc)
        return rc;
    rc = gv_witness_decode(w, (const uint8_t *)b, n, &why);
    free(b);
    return named(path, rc, &why, diag);
}

int gv_witness_save(const char *path, const gv_witness *w, mu_diag *diag)
{
    uint8_t b[GV_WITNESS_BYTES];
    gv_witness_encode(w, b);
    return mu_write_file_atomic(path, b, sizeof b, diag);
}
