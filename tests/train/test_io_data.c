/* Tests of HDF5 token datasets: round trips, the documented data order, every bad file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <hdf5.h>
#include <pthread.h>
#include <string.h>

#include "tio_util.h"
#include "tr_data.h"
#include "tr_safetensors.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    tio_mkdtemp(dir, sizeof dir, "data");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the test's own HDF5 calls below */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tio_rmdir(dir);
    return 0;
}

static void test_round_trip(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    char path[128];
    int32_t tok[100];
    for (int i = 0; i < 100; i++)
        tok[i] = (i * 37) % 256;
    snprintf(path, sizeof path, "%s/u16.h5", dir);
    assert_int_equal(tr_data_write(path, tok, 100, 256, &d), 0);
    tr_data *ds = tr_data_open(path, NULL, &d);
    assert_non_null(ds);
    assert_int_equal(tr_data_len(ds), 100);
    assert_int_equal(tr_data_vocab(ds), 256);
    assert_memory_equal(tr_data_tokens(ds), tok, sizeof tok);
    tr_data_free(ds);

    tok[5] = 69999; /* above uint16: stored as uint32 */
    snprintf(path, sizeof path, "%s/i32.h5", dir);
    assert_int_equal(tr_data_write(path, tok, 100, 70000, &d), 0);
    ds = tr_data_open(path, NULL, &d);
    assert_non_null(ds);
    assert_int_equal(tr_data_tokens(ds)[5], 69999);
    tr_data_free(ds);
    assert_int_equal(access(path, F_OK), 0);
    strcat(path, ".tmp");
    assert_int_equal(access(path, F_OK), -1);

    assert_int_equal(tr_data_write(path, tok, 100, 256, &d), MU_ERR_INVALID);
    tio_assert_msg(d.msg, "token 5 = 69999 is not below 256");
    assert_int_equal(tr_data_write("no/such/dir/t.h5", tok, 5, 256, &d), MU_ERR_IO);
    tio_assert_msg(d.msg, "no/such/dir/t.h5.tmp");
}

static void test_data_order(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    char path[128];
    int32_t tok[100];
    for (int i = 0; i < 100; i++)
        tok[i] = i;
    snprintf(path, sizeof path, "%s/order.h5", dir);
    assert_int_equal(tr_data_write(path, tok, 100, 100, &d), 0);
    tr_data *ds = tr_data_open(path, NULL, &d);
    const int B = 3, T = 10;
    int32_t in[30], tg[30];
    for (uint64_t s = 0; s < 7; s++) {
        assert_int_equal(tr_data_batch(ds, s, B, T, in, tg, &d), 0);
        for (int i = 0; i < B; i++) {
            int64_t p = (int64_t)(((s * B + (uint64_t)i) * T) % 90);
            assert_int_equal(tr_data_window(100, B, T, s, i), p);
            for (int t = 0; t < T; t++) {
                assert_int_equal(in[i * T + t], p + t); /* tokens are their own index */
                assert_int_equal(tg[i * T + t], p + t + 1);
            }
        }
    }
    /* step 3 row 0: (9*10) mod 90 = 0, wraps to the start */
    assert_int_equal(tr_data_window(100, B, T, 3, 0), 0);
    /* huge steps do not overflow: (s*B + i) mod M computed exactly */
    uint64_t s = UINT64_MAX;
    uint64_t m = 90, row = ((s % m) * (uint64_t)B % m + 2) % m;
    assert_int_equal(tr_data_window(100, B, T, s, 2), (int64_t)(row * T % m));
    /* N <= T */
    assert_int_equal(tr_data_batch(ds, 0, 1, 100, in, tg, &d), MU_ERR_INVALID);
    tio_assert_msg(d.msg, "order.h5: 100 tokens, too few for sequence length 100");
    assert_int_equal(tr_data_batch(ds, 0, 0, 10, in, tg, &d), MU_ERR_INVALID);
    tr_data_free(ds);
}

/* The reference batch written by make_reference.py follows the same order. */
static void test_matches_python_order(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    tr_data *ds = tr_data_open(TIO_REF "/gpt2_data.h5", NULL, &d);
    assert_non_null(ds);
    assert_int_equal(tr_data_len(ds), 200);
    assert_int_equal(tr_data_vocab(ds), 64);
    tr_st *ref = tr_st_open(TIO_REF "/gpt2_ref.safetensors", NULL, &d);
    assert_non_null(ref);
    float want_in[32], want_tg[32];
    int64_t shape[2] = {2, 16};
    assert_int_equal(tr_st_load(ref, "inputs", 2, shape, want_in, &d), 0);
    assert_int_equal(tr_st_load(ref, "targets", 2, shape, want_tg, &d), 0);
    int32_t in[32], tg[32];
    assert_int_equal(tr_data_batch(ds, 0, 2, 16, in, tg, &d), 0);
    for (int k = 0; k < 32; k++) {
        assert_int_equal(in[k], (int32_t)want_in[k]);
        assert_int_equal(tg[k], (int32_t)want_tg[k]);
    }
    tr_st_free(ref);
    tr_data_free(ds);
}

/* A file with dataset `name` of `type` and `rank`, and vocab_size `vocab` (0 = none). */
static void make_h5(const char *path, const char *name, hid_t type, int rank, const void *data,
                    hsize_t n, long long vocab)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {n, 1};
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    if (vocab) {
        hid_t asp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(ds, "vocab_size", H5T_NATIVE_LLONG, asp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_LLONG, &vocab);
        H5Aclose(a);
        H5Sclose(asp);
    }
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
}

static void expect_open_error(const char *path, int want_err, const char *want)
{
    mu_diag d = {{0}};
    int err = 0;
    assert_null(tr_data_open(path, &err, &d));
    assert_int_equal(err, want_err);
    tio_assert_msg(d.msg, want);
}

static void test_bad_files(void **state)
{
    (void)state;
    char path[128];
    int32_t tok[8] = {1, 2, 3, 4, 5, 6, 7, 300};
    snprintf(path, sizeof path, "%s/none.h5", dir);
    expect_open_error(path, MU_ERR_NOTFOUND, "none.h5: No such file");

    snprintf(path, sizeof path, "%s/text.h5", dir);
    tio_write(path, "hello", 5);
    expect_open_error(path, MU_ERR_FORMAT, "text.h5: not an HDF5 file");

    snprintf(path, sizeof path, "%s/notokens.h5", dir);
    make_h5(path, "ids", H5T_NATIVE_INT32, 1, tok, 8, 512);
    expect_open_error(path, MU_ERR_NOTFOUND, "notokens.h5: no dataset /tokens");

    snprintf(path, sizeof path, "%s/big.h5", dir);
    make_h5(path, "tokens", H5T_NATIVE_INT32, 1, tok, 8, 256);
    expect_open_error(path, MU_ERR_FORMAT, "big.h5: /tokens[7] = 300 is not below vocab_size 256");

    snprintf(path, sizeof path, "%s/rank2.h5", dir);
    make_h5(path, "tokens", H5T_NATIVE_INT32, 2, tok, 8, 512);
    expect_open_error(path, MU_ERR_FORMAT, "rank2.h5: /tokens must be 1-D, it has 2 dimensions");

    float ftok[8] = {0};
    snprintf(path, sizeof path, "%s/float.h5", dir);
    make_h5(path, "tokens", H5T_NATIVE_FLOAT, 1, ftok, 8, 512);
    expect_open_error(path, MU_ERR_FORMAT, "float.h5: /tokens must hold int32, uint32 or uint16");

    int64_t ltok[8] = {0};
    snprintf(path, sizeof path, "%s/int64.h5", dir);
    make_h5(path, "tokens", H5T_NATIVE_INT64, 1, ltok, 8, 512);
    expect_open_error(path, MU_ERR_FORMAT, "int64.h5: /tokens must hold int32, uint32 or uint16");

    snprintf(path, sizeof path, "%s/novocab.h5", dir);
    make_h5(path, "tokens", H5T_NATIVE_INT32, 1, tok, 8, 0);
    expect_open_error(path, MU_ERR_FORMAT, "novocab.h5: /tokens has no 'vocab_size' attribute");

    int32_t neg[2] = {-1, 0};
    snprintf(path, sizeof path, "%s/neg.h5", dir);
    make_h5(path, "tokens", H5T_NATIVE_INT32, 1, neg, 2, 8);
    expect_open_error(path, MU_ERR_FORMAT, "/tokens[0] = -1 is not below vocab_size 8");

    /* uint16 is accepted as is */
    uint16_t utok[3] = {0, 65535, 7};
    snprintf(path, sizeof path, "%s/u16ok.h5", dir);
    make_h5(path, "tokens", H5T_NATIVE_UINT16, 1, utok, 3, 65536);
    mu_diag d = {{0}};
    tr_data *ds = tr_data_open(path, NULL, &d);
    assert_non_null(ds);
    assert_int_equal(tr_data_tokens(ds)[1], 65535);
    tr_data_free(ds);
}

/* The stored type of path's /tokens: its size in bytes, negative when signed. */
static int stored_type(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), ds = H5Dopen2(f, "tokens", H5P_DEFAULT);
    hid_t t = H5Dget_type(ds);
    int r = (int)H5Tget_size(t) * (H5Tget_sign(t) == H5T_SGN_2 ? -1 : 1);
    H5Tclose(t);
    H5Dclose(ds);
    H5Fclose(f);
    return r;
}

/* uint32 ids for big vocabularies, the loss mask, the tokenizer's hash; older files. */
static void test_uint32_mask_tokenizer(void **state)
{
    (void)state;
    mu_diag d = {{0}};
    char path[128], tokdir[128], tokjson[160];
    int32_t tok[10] = {151000, 1, 2, 151935, 4, 5, 6, 7, 8, 9};
    uint8_t mask[10] = {1, 1, 0, 1, 1, 1, 0, 1, 1, 1};
    snprintf(tokdir, sizeof tokdir, "%s/model", dir);
    assert_int_equal(mkdir(tokdir, 0700), 0);
    snprintf(tokjson, sizeof tokjson, "%s/tokenizer.json", tokdir);
    tio_write(tokjson, "{\"model\": 1}", 12);
    char sha[TR_DATA_SHA_HEX];
    assert_int_equal(tr_data_tokenizer_hash(tokdir, sha, &d), MU_OK);
    assert_int_equal(strlen(sha), 64);
    snprintf(path, sizeof path, "%s/u32.h5", dir);
    tr_data_out o = {
        .tokens = tok, .mask = mask, .n = 10, .vocab_size = 151936, .tokenizer_sha256 = sha};
    assert_int_equal(tr_data_write_out(path, &o, &d), MU_OK);
    assert_int_equal(stored_type(path), 4); /* uint32 */
    tr_data *ds = tr_data_open(path, NULL, &d);
    assert_non_null(ds);
    assert_memory_equal(tr_data_tokens(ds), tok, sizeof tok);
    assert_memory_equal(tr_data_mask(ds), mask, sizeof mask);
    assert_string_equal(tr_data_tokenizer_sha256(ds), sha);
    /* A masked-out target is TR_DATA_IGNORE; inputs keep every token. Window 0, T 4. */
    int32_t in[4], tg[4];
    assert_int_equal(tr_data_batch(ds, 0, 1, 4, in, tg, &d), MU_OK);
    assert_memory_equal(in, tok, sizeof in);
    assert_int_equal(tg[0], 1);
    assert_int_equal(tg[1], TR_DATA_IGNORE); /* token 2 */
    assert_int_equal(tg[2], 151935);
    int64_t rec = 1; /* record 1 of T 4: tokens 5..9, target of token 6 left out */
    assert_int_equal(tr_data_gather(ds, &rec, 1, 4, in, tg, &d), MU_OK);
    assert_int_equal(tg[0], TR_DATA_IGNORE);
    assert_int_equal(tg[1], 7);
    /* The model must have the same tokenizer.json and a vocab at least as large. */
    assert_int_equal(tr_data_check_model(ds, tokdir, 151936, &d), MU_OK);
    assert_int_equal(tr_data_check_model(ds, tokdir, 151000, &d), MU_ERR_INVALID);
    tio_assert_msg(d.msg, "vocab_size 151936 exceeds the model's 151000");
    tio_write(tokjson, "{\"model\": 2}", 12);
    assert_int_equal(tr_data_check_model(ds, tokdir, 151936, &d), MU_ERR_INVALID);
    tio_assert_msg(d.msg, "another tokenizer");
    tio_assert_msg(d.msg, "--tokenizer");
    unlink(tokjson);
    assert_int_equal(tr_data_check_model(ds, tokdir, 151936, &d), MU_ERR_INVALID);
    tio_assert_msg(d.msg, "has no tokenizer.json");
    tr_data_free(ds);

    /* Files of before: uint16 (written today without a tokenizer) and int32, no mask. */
    snprintf(path, sizeof path, "%s/old16.h5", dir);
    int32_t small[4] = {3, 2, 1, 0};
    assert_int_equal(tr_data_write(path, small, 4, 256, &d), MU_OK);
    assert_int_equal(stored_type(path), 2);
    ds = tr_data_open(path, NULL, &d);
    assert_non_null(ds);
    assert_null(tr_data_mask(ds));
    assert_null(tr_data_tokenizer_sha256(ds));
    assert_int_equal(tr_data_check_model(ds, tokdir, 256, &d), MU_OK); /* no tokenizer named */
    assert_int_equal(tr_data_batch(ds, 0, 1, 2, in, tg, &d), MU_OK);
    assert_int_equal(tg[0], 2);
    assert_int_equal(tg[1], 1);
    tr_data_free(ds);
    snprintf(path, sizeof path, "%s/old32.h5", dir);
    make_h5(path, "tokens", H5T_NATIVE_INT32, 1, tok, 10, 151936);
    ds = tr_data_open(path, NULL, &d);
    assert_non_null(ds);
    assert_int_equal(tr_data_tokens(ds)[0], 151000);
    tr_data_free(ds);

    /* A uint32 id beyond int32, and bad masks, are refused. */
    uint32_t huge[2] = {0, 3000000000u};
    snprintf(path, sizeof path, "%s/huge.h5", dir);
    make_h5(path, "tokens", H5T_NATIVE_UINT32, 1, huge, 2, INT32_MAX);
    expect_open_error(path, MU_ERR_FORMAT, "/tokens[1]");
    mask[3] = 2;
    o.mask = mask;
    snprintf(path, sizeof path, "%s/badmask.h5", dir);
    assert_int_equal(tr_data_write_out(path, &o, &d), MU_ERR_INVALID);
    tio_assert_msg(d.msg, "mask 3 = 2");
    snprintf(path, sizeof path, "%s/shortmask.h5", dir);
    make_h5(path, "tokens", H5T_NATIVE_INT32, 1, tok, 10, 151936);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t three = 3;
    hid_t sp = H5Screate_simple(1, &three, NULL);
    hid_t m = H5Dcreate2(f, "mask", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Dwrite(m, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, mask) >= 0);
    H5Dclose(m);
    H5Sclose(sp);
    H5Fclose(f);
    expect_open_error(path, MU_ERR_FORMAT, "/mask must be 1-D uint8 with one entry per token (10)");
}

/* Several threads opening and writing datasets at once (serial HDF5 under train/'s lock). */
static void *open_many(void *arg)
{
    const char *out = arg;
    int32_t tok[64];
    for (int i = 0; i < 64; i++)
        tok[i] = i;
    for (int k = 0; k < 10; k++) {
        mu_diag d = {{0}};
        tr_data *ds = tr_data_open(TIO_REF "/gpt2_data.h5", NULL, &d);
        if (!ds || tr_data_len(ds) != 200 || tr_data_write(out, tok, 64, 64, &d))
            return (void *)1;
        tr_data_free(ds);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    char out[4][128];
    for (int i = 0; i < 4; i++) {
        snprintf(out[i], sizeof out[i], "%s/thread%d.h5", dir, i);
        assert_int_equal(pthread_create(&th[i], NULL, open_many, out[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_data_order),
        cmocka_unit_test(test_matches_python_order),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_uint32_mask_tokenizer),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
