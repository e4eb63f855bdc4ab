/* The coordinator side of the host layer: a pushed message reaches the round machine only
 * with its org's signature for that round and stage; after each round the checkpoint
 * (folders created), a PEFT folder per completed training round and `latest` replaced
 * atomically (never left pointing at a missing folder, no temporary link left over), and the
 * metrics line with the driver's fields; a checkpoint that cannot be written is an error the
 * driver stops on, an export that cannot be written is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <unistd.h>

#include "client/cl_tiny.h"
#include "cl_participant.h"
#include "co_checkpoint.h"
#include "ho_coord.h"
#include "ho_org.h"
#include "mu_log.h"
#include "wi_stage.h"

typedef struct {
    cl_engine *e;
    co_round *r;
} fixture;

/* A coordinator whose global is the tiny model's trainable LoRA tensors (B, frozen A). */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    tr_lora_config lc = {.rank = 2, .alpha = 4, .targets = TR_T_C_ATTN, .freeze_a = 1};
    f->e = cl_engine_from_model(tiny_model(1), &lc, 7, NULL);
    if (!f->e)
        return -1;
    size_t nt = 0;
    co_tensor *t = ho_lora_tensors(cl_engine_model(f->e), &nt);
    if (!t || nt == 0)
        return -1;
    co_config cfg;
    co_config_default(&cfg);
    cfg.min_orgs = 2;
    cfg.wait_s = 0;
    mu_diag d = {{0}};
    f->r = co_round_new(&cfg, t, nt, &d);
    free(t);
    if (!f->r)
        print_message("co_round_new: %s\n", d.msg);
    co_config_deinit(&cfg);
    *state = f;
    return f->r && system("rm -rf ho_ck ho_exp ho_block && touch ho_block") == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    co_round_free(f->r);
    cl_engine_free(f->e);
    free(f);
    return 0;
}

static co_event round_event(uint64_t round, int kind, int outcome)
{
    co_event ev = {.kind = CO_EVENT_ROUND};
    ev.metrics.round = round;
    ev.metrics.kind = (uint8_t)kind;
    ev.metrics.outcome = (uint8_t)outcome;
    return ev;
}

static void latest_is(const char *want)
{
    char got[64] = {0};
    assert_true(readlink("ho_exp/latest", got, sizeof got - 1) > 0);
    assert_string_equal(got, want);
    struct stat st;
    assert_int_equal(stat("ho_exp/latest/adapter_model.safetensors", &st), 0);
    assert_int_not_equal(lstat("ho_exp/.latest.tmp", &st), 0);
}

static void test_pipeline(void **state)
{
    fixture *f = *state;
    uint8_t hash[CO_HASH_BYTES] = {1, 2, 3};
    ho_after a = {.checkpoint_dir = "ho_ck/nested",
                  .config_hash = hash,
                  .export_dir = "ho_exp",
                  .model = cl_engine_model(f->e),
                  .base_name = "tiny"};
    mu_diag d = {{0}};
    co_event ev = round_event(1, CO_ROUND_TRAIN, CO_ROUND_COMPLETED);
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    latest_is("round-000001");
    co_checkpoint ck;
    assert_int_equal(co_checkpoint_load("ho_ck/nested", hash, 0, &ck, &d), MU_OK);
    co_checkpoint_deinit(&ck);
    ev = round_event(2, CO_ROUND_TRAIN, CO_ROUND_COMPLETED);
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    latest_is("round-000002");
    /* an evaluation round and an aborted round export nothing; latest stays */
    ev = round_event(3, CO_ROUND_EVAL, CO_ROUND_COMPLETED);
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    ev = round_event(4, CO_ROUND_TRAIN, CO_ROUND_ABORTED);
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    latest_is("round-000002");
    struct stat st;
    assert_int_not_equal(stat("ho_exp/round-000003", &st), 0);
    assert_int_not_equal(stat("ho_exp/round-000004", &st), 0);
    assert_int_equal(stat("ho_exp/round-000001/adapter_config.json", &st), 0);
    /* a leftover temporary link from a crash is replaced */
    assert_int_equal(symlink("nowhere", "ho_exp/.latest.tmp"), 0);
    ev = round_event(5, CO_ROUND_TRAIN, CO_ROUND_COMPLETED);
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    latest_is("round-000005");
}

static void test_failures(void **state)
{
    fixture *f = *state;
    mu_diag d = {{0}};
    co_event ev = round_event(1, CO_ROUND_TRAIN, CO_ROUND_COMPLETED);
    /* ho_block is a file: no folder can be made below it */
    ho_after a = {.checkpoint_dir = "ho_block/ck"};
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_ERR_IO);
    assert_non_null(strstr(d.msg, "ho_block/ck"));
    /* an export that fails is logged; the round goes on with its checkpoint written */
    ho_after b = {.checkpoint_dir = "ho_ck/other",
                  .export_dir = "ho_block/exp",
                  .model = cl_engine_model(f->e),
                  .base_name = "tiny"};
    assert_int_equal(ho_after_round(&b, f->r, &ev, &d), MU_OK);
    struct stat st;
    assert_int_equal(stat("ho_ck/other/" CO_CHECKPOINT_FILE, &st), 0);
    /* a global of another size than the model's adapter is refused */
    float g[3] = {0};
    assert_int_equal(ho_peft_write(cl_engine_model(f->e), g, 3, "ho_exp/bad", "tiny", &d),
                     MU_ERR_INVALID);
}

/* An org's READY report, pushed with a tampered signature, another stage's or round's
 * signature, or for an unknown id, never reaches the round machine; signed right, it does
 * (once: the round machine then refuses a duplicate). */
static void test_deliver(void **state)
{
    fixture *f = *state;
    size_t dim;
    co_round_global(f->r, &dim);
    cl_participant_config pc = {.name = "org-a", .synthetic = 1, .deterministic = 1};
    uint8_t pk[32];
    crypto_sign_keypair(pk, pc.sign_sk);
    mu_diag d = {{0}};
    ho_org *o = ho_org_new(&pc, &d);
    assert_non_null(o);
    uint32_t id, other;
    assert_int_equal(co_round_register(f->r, "org-a", pk, &id, &d), MU_OK);
    ho_org_set_id(o, id);
    uint8_t pk2[32], sk2[64];
    crypto_sign_keypair(pk2, sk2);
    assert_int_equal(co_round_register(f->r, "org-b", pk2, &other, &d), MU_OK);
    co_task t;
    assert_int_equal(co_round_next_task(f->r, id, 0, &t), MU_OK); /* connected */
    assert_int_equal(co_round_next_task(f->r, other, 0, &t), MU_OK);
    assert_int_equal(co_round_tick(f->r, 0), MU_OK); /* round 1 starts */
    assert_int_equal(co_round_next_task(f->r, id, 0, &t), MU_OK);
    assert_int_equal(t.kind, CO_TASK_TRAIN);
    uint8_t buf[1024];
    size_t len;
    assert_int_equal(co_task_encode(&t, buf, sizeof buf, &len), MU_OK);
    ho_reply rep;
    ho_reply_init(&rep);
    co_task got;
    assert_int_equal(ho_org_take(o, buf, len, &got, &rep), HO_ACT);
    float *g = calloc(dim, sizeof *g);
    assert_int_equal(ho_org_act(o, NULL, &got, g, dim, &rep), HO_PUSH);
    co_task_deinit(&got);
    assert_int_equal(rep.stage, WI_STAGE_REPORT);
    const cl_msg *m = &rep.out.items[0];
    uint8_t bad[HO_SIG_BYTES];
    memcpy(bad, rep.sigs[0], sizeof bad);
    bad[10] ^= 1;
    assert_int_equal(
        ho_coord_deliver(f->r, id, 1, rep.stage, m->bytes, m->len, bad, sizeof bad, 0, &d),
        MU_ERR_CRYPTO);
    assert_non_null(strstr(d.msg, "bad signature"));
    assert_int_equal(ho_coord_deliver(f->r, id, 1, WI_STAGE_ADVERTISE, m->bytes, m->len,
                                      rep.sigs[0], HO_SIG_BYTES, 0, &d),
                     MU_ERR_CRYPTO);
    assert_int_equal(ho_coord_deliver(f->r, id, 2, rep.stage, m->bytes, m->len, rep.sigs[0],
                                      HO_SIG_BYTES, 0, &d),
                     MU_ERR_CRYPTO);
    assert_int_equal(ho_coord_deliver(f->r, id, 1, rep.stage, m->bytes, m->len, NULL, 0, 0, &d),
                     MU_ERR_CRYPTO);
    assert_int_equal(ho_coord_deliver(f->r, other + 1, 1, rep.stage, m->bytes, m->len, rep.sigs[0],
                                      HO_SIG_BYTES, 0, &d),
                     MU_ERR_NOTFOUND);
    assert_int_equal(ho_coord_deliver(f->r, id, 1, rep.stage, m->bytes, m->len, rep.sigs[0],
                                      HO_SIG_BYTES, 0, &d),
                     MU_OK);
    assert_int_equal(ho_coord_deliver(f->r, id, 1, rep.stage, m->bytes, m->len, rep.sigs[0],
                                      HO_SIG_BYTES, 0, &d),
                     MU_ERR_PROTOCOL);
    /* its LEAVE (as join sends on SIGTERM) is signed like every push: a tampered signature
     * or another round is refused before the round machine; the real one takes org-a out
     * of round 1's cohort at once, though it had reported */
    uint8_t lm[CO_REPORT_BYTES], ls[HO_SIG_BYTES];
    ho_org_leave_message(o, 1, lm, ls);
    co_report lr;
    assert_int_equal(co_report_decode(&lr, lm, sizeof lm), MU_OK);
    assert_int_equal(lr.type, CO_REPORT_LEAVE);
    ls[0] ^= 1;
    assert_int_equal(
        ho_coord_deliver(f->r, id, 1, WI_STAGE_REPORT, lm, sizeof lm, ls, HO_SIG_BYTES, 0, &d),
        MU_ERR_CRYPTO);
    ls[0] ^= 1;
    assert_int_equal(
        ho_coord_deliver(f->r, id, 2, WI_STAGE_REPORT, lm, sizeof lm, ls, HO_SIG_BYTES, 0, &d),
        MU_ERR_CRYPTO);
    co_status st;
    co_round_status(f->r, 0, &st);
    assert_int_equal(st.orgs_in_cohort, 2);
    assert_int_equal(
        ho_coord_deliver(f->r, id, 1, WI_STAGE_REPORT, lm, sizeof lm, ls, HO_SIG_BYTES, 0, &d),
        MU_OK);
    co_round_status(f->r, 0, &st);
    assert_int_equal(st.orgs_in_cohort, 1);
    assert_int_equal(st.orgs_pending, 1); /* org-b */
    free(g);
    ho_reply_deinit(&rep);
    ho_org_free(o);
}

/* The metrics line: the one schema plus the driver's fields, one line, flushed. */
static void test_metrics_line(void **state)
{
    fixture *f = *state;
    FILE *m = tmpfile();
    assert_non_null(m);
    co_event ev = round_event(7, CO_ROUND_TRAIN, CO_ROUND_ABORTED);
    snprintf(ev.reason, sizeof ev.reason, "too few \"orgs\"");
    const co_drop drops[] = {{2, WI_STAGE_TRAIN, "bank-b"}, {3, WI_STAGE_MASKED, "bank-c"}};
    ev.dropped = drops;
    ev.n_dropped = 2;
    ho_after a = {.metrics = m, .extra = ",\"wall_s\":1.5"};
    mu_diag d = {{0}};
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    rewind(m);
    char line[2048] = {0};
    assert_non_null(fgets(line, sizeof line, m));
    fclose(m);
    assert_true(strncmp(line, "{\"round\":7,", 11) == 0);
    assert_non_null(strstr(line, "\"outcome\":\"aborted\""));
    assert_non_null(strstr(line, "too few \\\"orgs\\\""));
    assert_non_null(strstr(line, ",\"dropped\":[{\"org\":\"bank-b\",\"stage\":\"train\"},"
                                 "{\"org\":\"bank-c\",\"stage\":\"masked\"}],"));
    assert_non_null(strstr(line, ",\"wall_s\":1.5}\n"));
    /* a round nobody dropped out of: an empty list, not null (the round machine knows) */
    m = tmpfile();
    assert_non_null(m);
    ev = round_event(8, CO_ROUND_TRAIN, CO_ROUND_COMPLETED);
    a.metrics = m;
    assert_int_equal(ho_after_round(&a, f->r, &ev, &d), MU_OK);
    rewind(m);
    assert_non_null(fgets(line, sizeof line, m));
    fclose(m);
    assert_non_null(strstr(line, ",\"dropped\":[],"));
}

int main(void)
{
    mu_log_set_level(MU_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_deliver),
        cmocka_unit_test(test_metrics_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
