/* sa_seeds.c - the seed corpus of fuzz_sa_decode: one genuine message of each type, taken
 * from a deterministic 5-org round run by the real client and server.
 *
 * usage: sa_seeds write|check DIR
 *   write  (re)writes DIR/msg_<type> for each of the nine message types
 *   check  exits 1, naming the file, if a seed is missing or differs from what today's code
 *          sends (a ctest runs this: seeds left behind by a format change stop at the
 *          version byte and fuzz nothing behind it)
 * Other files in DIR (hand-made seeds such as keys_flip) are left alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa_test_util.h"

#define NTYPES 9
static uint8_t *seen[NTYPES + 1];
static size_t seen_len[NTYPES + 1];

static void keep(const uint8_t *b, size_t len)
{
    sa_msg_type type;
    uint32_t org;
    if (sa_msg_peek(b, len, &type, &org) != MU_OK || type < 1 || type > NTYPES || seen[type])
        return;
    sa_msg m;
    if (sa_msg_decode(&m, b, len, NULL) != MU_OK)
        return;
    sa_msg_deinit(&m);
    seen[type] = malloc(len);
    if (!seen[type])
        return;
    memcpy(seen[type], b, len);
    seen_len[type] = len;
}

static int tamper(sa_world *w, uint32_t to, sa_msg_type type, uint8_t **bytes, size_t *len)
{
    (void)w, (void)to, (void)type;
    keep(*bytes, *len);
    return 1;
}

static void spy(sa_world *w, uint32_t from, const uint8_t *bytes, size_t len)
{
    (void)w, (void)from;
    keep(bytes, len);
}

static int file_is(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uint8_t *buf = malloc(len + 1);
    size_t n = buf ? fread(buf, 1, len + 1, f) : 0;
    fclose(f);
    int same = buf && n == len && memcmp(buf, b, len) == 0;
    free(buf);
    return same;
}

int main(int argc, char **argv)
{
    int w_mode = argc == 3 && strcmp(argv[1], "write") == 0;
    if (argc != 3 || (!w_mode && strcmp(argv[1], "check") != 0)) {
        fprintf(stderr, "usage: sa_seeds write|check DIR\n");
        return 2;
    }
    if (sa_init() != 0)
        return 1;
    sa_world w;
    mu_diag d = {{0}};
    /* n 5, d 6, 16 bits, k 4, t 4; one org drops after its shares, so the round has an
     * unmask request for both a survivor's b and a dropped org's s_sk. */
    if (sa_world_init(&w, 5, 6, 16, 4, 4, 77, &d) != MU_OK) {
        fprintf(stderr, "sa_seeds: %s\n", d.msg);
        return 1;
    }
    w.tamper = tamper;
    w.spy = spy;
    w.drop_at[4] = SA_STAGE_MASKED;
    int rc = sa_world_run(&w, &d);
    sa_world_free(&w);
    if (rc != MU_OK) {
        fprintf(stderr, "sa_seeds: the round failed: %s\n", d.msg);
        return 1;
    }
    int bad = 0;
    for (int t = 1; t <= NTYPES; t++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/msg_%d", argv[2], t);
        if (!seen[t]) {
            fprintf(stderr, "sa_seeds: the round sent no message of type %d\n", t);
            bad = 1;
        } else if (w_mode) {
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(seen[t], 1, seen_len[t], f) != seen_len[t] || fclose(f) != 0) {
                fprintf(stderr, "sa_seeds: cannot write %s\n", path);
                bad = 1;
            }
        } else if (!file_is(path, seen[t], seen_len[t])) {
            fprintf(stderr,
                    "sa_seeds: %s is missing or differs from what today's code sends (stale "
                    "after a format change?): run `sa_seeds write "
                    "fuzz/secure_agg/fuzz_sa_decode_corpus` from the source root\n",
                    path);
            bad = 1;
        }
        free(seen[t]);
    }
    return bad;
}
