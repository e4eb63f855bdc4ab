/* prg_bench - single-thread rate of each mask PRG path this CPU runs (secure_agg's internal
 * sa_prg_apply, keystream added into a 1M-value vector, 81 terms as an org at n = 100, k = 80)
 * and of libsodium's raw ChaCha20 (the PRG before issue 10's AES), as one JSON object:
 *
 *   prg_bench [--d D] [--terms T] */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sa_internal.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    size_t d = 1000000, nt = 81;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--d"))
            d = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--terms"))
            nt = strtoul(argv[i + 1], NULL, 10);
    }
    if (sa_init() || d == 0 || nt == 0)
        return 1;
    uint32_t *acc = calloc(d, sizeof *acc);
    sa_prg_term *t = calloc(nt, sizeof *t);
    uint8_t *buf = calloc(d, 4);
    if (!acc || !t || !buf)
        return 1;
    for (size_t j = 0; j < nt; j++) {
        randombytes_buf(t[j].key, sizeof t[j].key);
        t[j].sign = j % 2 ? 1 : -1;
    }
    sa_prg_path chosen = sa_prg_current();
    printf("{\"d\": %zu, \"terms\": %zu, \"chosen\": \"%s\"", d, nt, sa_prg_path_name(chosen));
    for (int p = SA_PRG_PORTABLE; p <= SA_PRG_VAES; p++) {
        if (sa_prg_force((sa_prg_path)p) != MU_OK)
            continue;
        /* the portable path is ~1000x slower: time it on a slice */
        size_t dd = p == SA_PRG_PORTABLE ? (d < 20000 ? d : 20000) : d;
        size_t tt = p == SA_PRG_PORTABLE ? 1 : nt;
        double best = 1e9;
        for (int r = 0; r < 3; r++) {
            double t0 = cpu_now();
            sa_prg_apply(acc, dd, t, tt, 1);
            double dt = cpu_now() - t0;
            best = dt < best ? dt : best;
        }
        printf(", \"%s_gbps_1core\": %.3f, \"%s_ms\": %.3f", sa_prg_path_name((sa_prg_path)p),
               (double)dd * 4 * tt / best / 1e9, sa_prg_path_name((sa_prg_path)p), best * 1e3);
    }
    sa_prg_force(chosen);
    static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES];
    uint8_t ckey[crypto_stream_chacha20_ietf_KEYBYTES]; /* 32 bytes, the PRG key is 16 */
    randombytes_buf(ckey, sizeof ckey);
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
        double t0 = cpu_now();
        for (size_t j = 0; j < nt; j++)
            crypto_stream_chacha20_ietf_xor_ic(buf, buf, d * 4, nonce, (uint32_t)j, ckey);
        double dt = cpu_now() - t0;
        best = dt < best ? dt : best;
    }
    printf(", \"chacha20_raw_gbps_1core\": %.3f, \"chacha20_raw_ms\": %.3f, \"check\": %u}\n",
           (double)d * 4 * nt / best / 1e9, best * 1e3, acc[d / 2] ^ buf[d]);
    sodium_memzero(t, nt * sizeof *t);
    sodium_memzero(ckey, sizeof ckey);
    free(acc);
    free(t);
    free(buf);
    return 0;
}
