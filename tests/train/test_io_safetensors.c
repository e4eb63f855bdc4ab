/* Tests of the safetensors reader and writer: round trips, widening, and every bad file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tr_safetensors.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "st_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

/* An image: 8-byte length, `hdr`, then `dlen` bytes of `data`. */
static uint8_t *image(const char *hdr, const void *data, size_t dlen, size_t *len)
{
    size_t hl = strlen(hdr);
    uint8_t *b = malloc(8 + hl + dlen);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    if (dlen)
        memcpy(b + 8 + hl, data, dlen);
    *len = 8 + hl + dlen;
    return b;
}

static void expect_parse_error(const char *hdr, size_t dlen, int want_err, const char *want)
{
    uint8_t zeros[256] = {0};
    size_t len;
    uint8_t *b = image(hdr, zeros, dlen, &len);
    mu_diag d = {{0}};
    int err = 0;
    tr_st *st = tr_st_parse("m.safetensors", b, len, &err, &d);
    assert_null(st);
    assert_int_equal(err, want_err);
    if (!strstr(d.msg, want) || !strstr(d.msg, "m.safetensors"))
        fail_msg("error '%s' does not contain '%s'", d.msg, want);
    free(b);
}

static void test_round_trip(void **state)
{
    (void)state;
    float a[6] = {1, -2, 3.5f, 0, 1e-30f, -1e30f}, s = 42;
    tr_st_entry e[3] = {
        {.name = "zeta.weight", .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "alpha", .ndim = 0, .data = &s},
        {.name = "empty", .ndim = 2, .shape = {0, 5}, .data = NULL},
    };
    const char *meta[] = {"format", "pt", NULL};
    char path[128];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    mu_diag d = {{0}};
    assert_int_equal(tr_st_write(path, e, 3, meta, &d), 0);

    FILE *f = fopen(path, "rb");
    uint8_t head[16];
    assert_int_equal(fread(head, 1, 16, f), 16);
    fclose(f);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | head[i];
    assert_int_equal(hl % 8, 0);
    assert_int_equal(head[8], '{');

    int err = -99;
    tr_st *st = tr_st_open(path, &err, &d);
    assert_non_null(st);
    assert_int_equal(err, 0);
    assert_int_equal(tr_st_count(st), 3);
    assert_string_equal(tr_st_metadata(st, "format"), "pt");
    assert_null(tr_st_metadata(st, "nope"));
    /* data laid out in sorted-name order */
    assert_string_equal(tr_st_at(st, 0)->name, "alpha");
    assert_string_equal(tr_st_at(st, 2)->name, "zeta.weight");
    const tr_st_info *t = tr_st_find(st, "zeta.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, TR_ST_F32);
    assert_int_equal(t->numel, 6);
    float back[6];
    int64_t shape[2] = {2, 3};
    assert_int_equal(tr_st_load(st, "zeta.weight", 2, shape, back, &d), 0);
    assert_memory_equal(back, a, sizeof a);
    float sb = 0;
    assert_int_equal(tr_st_load(st, "alpha", 0, NULL, &sb, &d), 0);
    assert_true(sb == 42);
    assert_int_equal(tr_st_find(st, "empty")->numel, 0);

    int64_t wrong[2] = {3, 2};
    assert_int_equal(tr_st_load(st, "zeta.weight", 2, wrong, back, &d), MU_ERR_FORMAT);
    assert_non_null(strstr(d.msg, "'zeta.weight' has shape [2, 3], expected [3, 2]"));
    assert_int_equal(tr_st_load(st, "absent", 2, wrong, back, &d), MU_ERR_NOTFOUND);
    assert_non_null(strstr(d.msg, "rt.safetensors: tensor 'absent' is missing"));
    assert_int_equal(tr_st_read_f32(st, t, back, 5, &d), MU_ERR_INVALID);
    tr_st_free(st);
}

static void test_writer_refuses_bad_entries(void **state)
{
    (void)state;
    float a[2] = {1, 2};
    tr_st_entry dup[2] = {{.name = "x", .ndim = 1, .shape = {2}, .data = a},
                          {.name = "x", .ndim = 1, .shape = {2}, .data = a}};
    char path[128];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    mu_diag d = {{0}};
    assert_int_equal(tr_st_write(path, dup, 2, NULL, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "'x' given twice"));
    tr_st_entry meta = {.name = "__metadata__", .ndim = 1, .shape = {2}, .data = a};
    assert_int_equal(tr_st_write(path, &meta, 1, NULL, &d), MU_ERR_INVALID);
    tr_st_entry neg = {.name = "n", .ndim = 1, .shape = {-1}, .data = a};
    assert_int_equal(tr_st_write(path, &neg, 1, NULL, &d), MU_ERR_INVALID);
    assert_int_equal(access(path, F_OK), -1);
    /* I/O failure: the folder does not exist */
    assert_int_equal(tr_st_write("no/such/dir/x.safetensors", dup, 1, NULL, &d), MU_ERR_IO);
    assert_non_null(strstr(d.msg, "no/such/dir/x.safetensors.tmp"));
}

static void test_f16_bf16_widening(void **state)
{
    (void)state;
    /* F16: 1, -2, 65504, smallest subnormal, -0, inf; BF16: 1, -3.5 */
    uint16_t h[6] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00};
    uint16_t bf[2] = {0x3f80, 0xc060};
    uint8_t data[16];
    memcpy(data, h, 12);
    memcpy(data + 12, bf, 4);
    size_t len;
    uint8_t *b = image("{\"h\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                       "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]}}",
                       data, 16, &len);
    mu_diag d = {{0}};
    tr_st *st = tr_st_parse("w.safetensors", b, len, NULL, &d);
    assert_non_null(st);
    float f[6], g[2];
    int64_t s1[2] = {2, 3}, s2[1] = {2};
    assert_int_equal(tr_st_load(st, "h", 2, s1, f, &d), 0);
    assert_true(f[0] == 1.0f && f[1] == -2.0f && f[2] == 65504.0f);
    assert_true(f[3] == ldexpf(1, -24));
    assert_true(f[4] == 0 && signbit(f[4]));
    assert_true(isinf(f[5]) && f[5] > 0);
    assert_int_equal(tr_st_load(st, "b", 1, s2, g, &d), 0);
    assert_true(g[0] == 1.0f && g[1] == -3.5f);
    assert_true(isnan(tr_f16_to_f32(0x7e00)));
    assert_true(tr_f16_to_f32(0x0400) == ldexpf(1, -14)); /* smallest normal */
    /* Into bf16: BF16 bit for bit; F16 rounded to nearest even (65504 -> 65536, 2^-24 kept
     * exactly, -0 and inf kept). */
    uint16_t hb[6], bb[2];
    assert_int_equal(tr_st_load_bf16(st, "h", 2, s1, hb, &d), 0);
    const uint16_t want[6] = {0x3f80, 0xc000, 0x4780, 0x3380, 0x8000, 0x7f80};
    for (int i = 0; i < 6; i++)
        assert_int_equal(hb[i], want[i]);
    assert_int_equal(tr_st_load_bf16(st, "b", 1, s2, bb, &d), 0);
    assert_int_equal(bb[0], 0x3f80);
    assert_int_equal(bb[1], 0xc060);
    assert_int_equal(tr_st_load_bf16(st, "b", 2, s1, bb, &d), MU_ERR_FORMAT);
    tr_st_free(st);
    free(b);
}

static void test_unsupported_dtype(void **state)
{
    (void)state;
    uint8_t data[16] = {0};
    size_t len;
    uint8_t *b = image("{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", data,
                       16, &len);
    mu_diag d = {{0}};
    tr_st *st = tr_st_parse("m.safetensors", b, len, NULL, &d);
    assert_non_null(st); /* a valid file; the tensor just cannot become float */
    float out[2];
    int64_t shape[1] = {2};
    assert_int_equal(tr_st_load(st, "ids", 1, shape, out, &d), MU_ERR_UNSUPPORTED);
    assert_non_null(strstr(d.msg, "m.safetensors: tensor 'ids' has dtype I64"));
    tr_st_free(st);
    free(b);
    expect_parse_error("{\"q\":{\"dtype\":\"Q4_K\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
                       MU_ERR_UNSUPPORTED, "tensor 'q' has unknown dtype 'Q4_K'");
}

static void test_lying_headers(void **state)
{
    (void)state;
    /* a hole between two tensors */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                       12, MU_ERR_FORMAT, "tensor 'b': data_offsets start at 8, leaving a hole");
    /* overlap */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                       8, MU_ERR_FORMAT, "tensor 'b': data_offsets [4, 8] overlap");
    /* size does not match dtype x shape */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                       MU_ERR_FORMAT, "tensor 'a': data_offsets [0, 8] hold 8 bytes");
    /* offsets past the data: a truncated file */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10,
                       MU_ERR_FORMAT, "tensor 'a': data_offsets [0, 16] run past the end");
    /* bytes after the last tensor */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12,
                       MU_ERR_FORMAT, "data section has 12 bytes but the tensors cover 4");
    /* begin > end */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4,
                       MU_ERR_FORMAT, "tensor 'a': data_offsets [4, 0]");
    /* shape overflow */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
                       "\"data_offsets\":[0,4]}}",
                       4, MU_ERR_FORMAT, "tensor 'a': shape overflows");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                       MU_ERR_FORMAT, "shape entry 0 is not a non-negative integer");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, MU_ERR_FORMAT,
                       "tensor 'a': \"data_offsets\"");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                       4, MU_ERR_FORMAT, "header JSON");
    expect_parse_error("{\"__metadata__\":{\"k\":1}}", 0, MU_ERR_FORMAT,
                       "\"__metadata__\" value 'k' is not a string");
    expect_parse_error("[1, 2]", 0, MU_ERR_FORMAT, "header does not start with '{'");
    expect_parse_error("{\"a\": ", 0, MU_ERR_FORMAT, "header JSON");
}

static void test_truncated_files(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    int err = 0;
    char path[128];
    snprintf(path, sizeof path, "%s/none.safetensors", dir);
    assert_null(tr_st_open(path, &err, &d));
    assert_int_equal(err, MU_ERR_NOTFOUND);
    assert_non_null(strstr(d.msg, "none.safetensors: No such file"));

    float a[64];
    for (int i = 0; i < 64; i++)
        a[i] = (float)i;
    tr_st_entry e = {.name = "h.0.w", .ndim = 2, .shape = {8, 8}, .data = a};
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    assert_int_equal(tr_st_write(path, &e, 1, NULL, &d), 0);
    FILE *f = fopen(path, "rb");
    uint8_t buf[1024];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* cut inside the data, inside the header, inside the length */
    size_t cuts[3] = {len - 1, 20, 5};
    const char *want[3] = {"tensor 'h.0.w': data_offsets [0, 256] run past the end",
                           "truncated: header length", "truncated: 5 bytes"};
    for (int i = 0; i < 3; i++) {
        f = fopen(path, "wb");
        fwrite(buf, 1, cuts[i], f);
        fclose(f);
        assert_null(tr_st_open(path, &err, &d));
        assert_int_equal(err, MU_ERR_FORMAT);
        if (!strstr(d.msg, want[i]) || !strstr(d.msg, "t.safetensors"))
            fail_msg("cut %zu: '%s' lacks '%s'", cuts[i], d.msg, want[i]);
    }
    /* a huge declared header length */
    memset(buf, 0xff, 8);
    f = fopen(path, "wb");
    fwrite(buf, 1, 64, f);
    fclose(f);
    assert_null(tr_st_open(path, &err, &d));
    assert_non_null(strstr(d.msg, "exceeds the limit"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_writer_refuses_bad_entries),
        cmocka_unit_test(test_f16_bf16_widening), cmocka_unit_test(test_unsupported_dtype),
        cmocka_unit_test(test_lying_headers),     cmocka_unit_test(test_truncated_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
