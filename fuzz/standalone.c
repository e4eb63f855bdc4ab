/* standalone.c - runs a libFuzzer target without libFuzzer, as a bounded smoke test.
 *
 * usage: fuzz_x ITERATIONS [CORPUS_DIR]
 * Feeds every file in CORPUS_DIR, then ITERATIONS inputs that are random bytes or corpus
 * files with random bytes flipped, inserted or cut. Deterministic (fixed seed), so a failure
 * reproduces. The target must not crash or trip a sanitizer; that is the whole check.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_SEEDS 256
#define FUZZ_MAX_INPUT (1u << 20)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = malloc(FUZZ_MAX_INPUT);
    if (buf)
        *len = fread(buf, 1, FUZZ_MAX_INPUT, f);
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 10000;
    uint8_t *seeds[FUZZ_MAX_SEEDS];
    size_t seed_len[FUZZ_MAX_SEEDS];
    int n_seeds = 0;
    if (argc > 2) {
        DIR *d = opendir(argv[2]);
        if (!d) {
            fprintf(stderr, "cannot open corpus %s\n", argv[2]);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d)) && n_seeds < FUZZ_MAX_SEEDS) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[2], e->d_name);
            size_t len = 0;
            uint8_t *b = read_file(path, &len);
            if (!b)
                continue;
            LLVMFuzzerTestOneInput(b, len);
            seeds[n_seeds] = b;
            seed_len[n_seeds++] = len;
        }
        closedir(d);
    }
    uint8_t *buf = malloc(FUZZ_MAX_INPUT);
    if (!buf)
        return 1;
    for (long i = 0; i < iters; i++) {
        size_t len;
        if (n_seeds && (rnd() & 3)) {
            int s = (int)(rnd() % (uint64_t)n_seeds);
            len = seed_len[s];
            memcpy(buf, seeds[s], len);
            int edits = 1 + (int)(rnd() % 8);
            for (int k = 0; k < edits; k++) {
                uint64_t r = rnd();
                switch (r % 4) {
                case 0: /* flip a byte */
                    if (len)
                        buf[(r >> 8) % len] ^= (uint8_t)(1 + (r >> 40) % 255);
                    break;
                case 1: /* cut the tail */
                    if (len)
                        len = (size_t)((r >> 8) % len);
                    break;
                case 2: /* insert a random byte */
                    if (len < FUZZ_MAX_INPUT - 1) {
                        size_t at = len ? (size_t)((r >> 8) % len) : 0;
                        memmove(buf + at + 1, buf + at, len - at);
                        buf[at] = (uint8_t)(r >> 48);
                        len++;
                    }
                    break;
                default: /* set a byte to an extreme */
                    if (len)
                        buf[(r >> 8) % len] = (r >> 40) & 1 ? 0xff : 0x00;
                    break;
                }
            }
        } else {
            len = (size_t)(rnd() % 512);
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)rnd();
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    free(buf);
    for (int s = 0; s < n_seeds; s++)
        free(seeds[s]);
    printf("%ld inputs, %d seeds: no crash\n", iters, n_seeds);
    return 0;
}
