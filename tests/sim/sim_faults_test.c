/* Injected coordinator restarts and replayed tasks, run through the host layer (ho_org,
 * ho_after_round) in `mutual sim`: the federation completes; a restart in any stage of a round
 * before the masked upload gives the same adapter bits as the run without it (the round in
 * flight starts over from the checkpoint, deterministically), one after it makes the orgs
 * refuse the rerun; a replayed task is never acted on again and changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/cl_tiny.h"
#include "co_round.h"
#include "mu_log.h"
#include "sim.h"

static const char *yaml = "seed: 3\n"
                          "checkpoint: true\n"
                          "model:\n"
                          "  base: faults_tiny\n"
                          "  rank: 2\n"
                          "  alpha: 4\n"
                          "data:\n"
                          "  files: [faults_a.h5, faults_b.h5, faults_c.h5]\n"
                          "  eval_fraction: 0.2\n"
                          "%s"
                          "coordinator:\n"
                          "  federation:\n"
                          "    rounds: 3\n"
                          "    eval_every: 2\n"
                          "    checkpoint_dir: faults_ck\n"
                          "  cohort:\n"
                          "    min_orgs: 3\n"
                          "    wait_s: 0\n"
                          "  train:\n"
                          "    steps: 2\n"
                          "    batch: 2\n"
                          "    seq: 8\n"
                          "    lr: 0.02\n"
                          "  secure_agg:\n"
                          "    clip: 10\n"
                          "    weight_max: 100\n";

/* Runs the federation with `faults` (YAML lines), from an empty checkpoint folder unless
 * keep_ck, exporting each round's adapter to `export_dir` unless it is NULL. */
static void run_in(const char *faults, const char *export_dir, int keep_ck, sim_result *r)
{
    char text[2048];
    snprintf(text, sizeof text, yaml, faults);
    sim_config c;
    mu_diag d = {{0}};
    if (sim_config_parse("faults.yaml", text, strlen(text), &c, &d) != MU_OK)
        fail_msg("config: %s", d.msg);
    if (export_dir)
        snprintf(c.co.export_dir, sizeof c.co.export_dir, "%s", export_dir);
    assert_int_equal(system(keep_ck ? "rm -rf faults_export" : "rm -rf faults_ck faults_export"),
                     0);
    sim_run_opts o = {0};
    if (sim_run(&c, &o, r, &d) != MU_OK)
        fail_msg("sim_run with '%s': %s", faults, d.msg);
    sim_config_deinit(&c);
}

static void run(const char *faults, sim_result *r)
{
    run_in(faults, NULL, 0, r);
}

static sim_result base;

static void same_adapter(const sim_result *r, const char *what)
{
    assert_int_equal(r->dim, base.dim);
    if (memcmp(r->global, base.global, r->dim * sizeof(float)) != 0)
        fail_msg("%s: the adapter differs from the run without faults", what);
    assert_int_equal(r->completed, r->rounds);
    assert_int_equal(r->n_history, base.n_history);
}

/* A restart while round 2 (the secure aggregation) or round 1 (no checkpoint yet) is in
 * flight, as a round opens, and during the evaluation round: same bits, one restart, and
 * where the orgs had acted in the round in flight they act on it again. Once the orgs have
 * uploaded their masked inputs (a restart at consistency or unmask), they refuse a second
 * secure aggregation for that round (issue 10, attack 3): the rerun of round 2 aborts with
 * no input in it, and the federation goes on. */
static void refused_rerun(const sim_result *r, const char *what)
{
    if (r->aborted != 1)
        fail_msg("%s: %llu rounds aborted, want the rerun of round 2", what,
                 (unsigned long long)r->aborted);
    assert_int_equal(r->completed + r->aborted, r->rounds);
    const co_metrics *h = r->history;
    assert_true(r->n_history >= 2 && h[1].round == 2 && h[1].outcome == CO_ROUND_ABORTED);
    assert_int_equal(h[1].orgs_completed, 0);
}

static void test_restart(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        int again;   /* the orgs had acted in the round in flight: they act on it again */
        int refused; /* the orgs had uploaded their masked inputs: they refuse the rerun */
    } at[] = {
        {"restart: {round: 2, stage: masked}\n", 1, 0},
        {"restart: {round: 2, stage: unmask}\n", 1, 1},
        {"restart: {round: 1, stage: share}\n", 1, 0}, /* before any checkpoint */
        {"restart: {round: 2, stage: train}\n", 0, 0}, /* as the round opens */
        {"restart: {round: 3, stage: eval}\n", 0, 0},
    };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        sim_result r;
        run(at[i].yaml, &r);
        if (at[i].refused)
            refused_rerun(&r, at[i].yaml);
        else
            same_adapter(&r, at[i].yaml);
        assert_int_equal(r.restarts, 1);
        if (r.tasks_acted < base.tasks_acted + (uint64_t)at[i].again)
            fail_msg("%s: %llu tasks acted on, %llu without the restart", at[i].yaml,
                     (unsigned long long)r.tasks_acted, (unsigned long long)base.tasks_acted);
        sim_result_deinit(&r);
    }
}

/* A restart before this run's first checkpoint starts afresh even when an earlier run (of
 * another learning rate) left its checkpoint in the folder. */
static void test_restart_ignores_old_checkpoint(void **state)
{
    (void)state;
    char text[2048];
    snprintf(text, sizeof text, yaml, "");
    sim_config c;
    mu_diag d = {{0}};
    if (sim_config_parse("faults.yaml", text, strlen(text), &c, &d) != MU_OK)
        fail_msg("config: %s", d.msg);
    c.co.lr = 0.05;
    c.co.rounds = 1;
    assert_int_equal(system("rm -rf faults_ck"), 0);
    sim_run_opts o = {0};
    sim_result r;
    if (sim_run(&c, &o, &r, &d) != MU_OK) /* leaves faults_ck/checkpoint.h5 after its round 1 */
        fail_msg("sim_run: %s", d.msg);
    sim_result_deinit(&r);
    sim_config_deinit(&c);
    run_in("restart: {round: 1, stage: masked}\n", NULL, 1, &r);
    same_adapter(&r, "restart over an old checkpoint");
    sim_result_deinit(&r);
}

/* Old tasks delivered again after the org moved on (a TRAIN during the secure aggregation,
 * a stage after later ones, a round after the next round started): none is acted on, the
 * orgs act exactly as often as without them, and the adapter is the same. */
static void test_replay(void **state)
{
    (void)state;
    sim_result r;
    run("replay:\n"
        "  script:\n"
        "    - {org: 1, round: 1, stage: train}\n"
        "    - {org: 2, round: 2, stage: share}\n"
        "    - {org: 3, round: 1, stage: unmask}\n"
        "    - {org: 2, round: 3, stage: eval}\n",
        &r);
    same_adapter(&r, "replay");
    assert_int_equal(r.replays, 4);
    assert_int_equal(r.tasks_acted, base.tasks_acted);
    assert_true(r.tasks_repeated >= base.tasks_repeated + 4);
    sim_result_deinit(&r);
}

/* Both at once, with every org replaying its masked stage in every round (a replay held when
 * the coordinator restarts is lost with it, as a real transport would lose it). */
static void test_restart_and_replay(void **state)
{
    (void)state;
    sim_result r;
    run("restart: {round: 2, stage: consistency}\n"
        "replay: {masked: 1}\n",
        &r);
    refused_rerun(&r, "restart and replay");
    assert_int_equal(r.restarts, 1);
    assert_true(r.replays >= 6);
    sim_result_deinit(&r);
}

/* The after-round pipeline of the host layer in sim: a PEFT folder per completed training
 * round and `latest` pointing at the newest, with no temporary link left behind; with a
 * restart the newest is the same bytes. */
static void test_export_latest(void **state)
{
    (void)state;
    sim_result r;
    run_in("restart: {round: 2, stage: share}\n", "faults_export", 0, &r);
    same_adapter(&r, "export");
    char target[64] = {0};
    assert_true(readlink("faults_export/latest", target, sizeof target - 1) > 0);
    assert_string_equal(target, "round-000004"); /* rounds 1, 2, 4 train; 3 evaluates */
    struct stat st;
    assert_int_equal(stat("faults_export/round-000001/adapter_model.safetensors", &st), 0);
    assert_int_equal(stat("faults_export/latest/adapter_config.json", &st), 0);
    assert_int_not_equal(stat("faults_export/round-000003", &st), 0);
    assert_int_not_equal(lstat("faults_export/.latest.tmp", &st), 0);
    sim_result_deinit(&r);
}

static void test_restart_needs_checkpoint(void **state)
{
    (void)state;
    const char *text = "seed: 1\n"
                       "model: {synthetic_dim: 10}\n"
                       "data: {orgs: 3}\n"
                       "restart: {round: 1, stage: masked}\n"
                       "coordinator: {federation: {rounds: 1}, cohort: {min_orgs: 3}}\n";
    sim_config c;
    mu_diag d = {{0}};
    assert_int_equal(sim_config_parse("r.yaml", text, strlen(text), &c, &d), MU_ERR_INVALID);
    assert_non_null(strstr(d.msg, "r.yaml:4:"));
    assert_non_null(strstr(d.msg, "checkpoint"));
}

static int setup(void **state)
{
    (void)state;
    if (tiny_write_folder("faults_tiny", 3) != 0)
        return -1;
    const char *files[] = {"faults_a.h5", "faults_b.h5", "faults_c.h5"};
    for (int i = 0; i < 3; i++)
        if (tiny_write_data(files[i], 200 + 40 * i, i, 7) != 0)
            return -1;
    run("", &base);
    /* 3 training rounds and the evaluation round after round 2 */
    return base.n_history == 4 && base.completed == 4 && base.restarts == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sim_result_deinit(&base);
    return 0;
}

int main(void)
{
    mu_log_set_level(MU_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart),       cmocka_unit_test(test_restart_ignores_old_checkpoint),
        cmocka_unit_test(test_replay),        cmocka_unit_test(test_restart_and_replay),
        cmocka_unit_test(test_export_latest), cmocka_unit_test(test_restart_needs_checkpoint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
