/* cmd_sim.c - `mutual sim`: a federation of virtual orgs in one process (sim/sim.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mu_log.h"
#include "sim.h"

#define CMD           "sim"
#define SIM_SEEDS_MAX 1000

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual sim --config FILE [options]\n\n"
            "Runs a federation of virtual orgs in one process through the same coordinator,\n"
            "secure-aggregation and training code as `mutual serve` and `mutual join`, on a\n"
            "virtual clock (deadlines fire as events), orgs training in parallel. The same\n"
            "config and seed give the same global adapter bits, in parallel or --sequential.\n"
            "See docs/sim.md and configs/sim.yaml for the config keys.\n\n"
            "Options:\n"
            "  --config FILE     sim config (YAML; required)\n"
            "  --out DIR         write the final global adapter: DIR/global.f32 (raw floats)\n"
            "                    and, with a model, a PEFT folder (adapter_config.json +\n"
            "                    adapter_model.safetensors)\n"
            "  --metrics FILE    one JSON line per round (loss, orgs, bytes, times)\n"
            "  --org-metrics FILE  one JSON line per org per round (loss, tokens, the stage\n"
            "                    reached, where and why it dropped out)\n"
            "  --plot FILE.png   draw --metrics (and --org-metrics) as `mutual plot` does\n"
            "  --seeds S1,S2,..  one run per seed (as --seed S); prints instead of the table a\n"
            "                    JSON summary: mean, std, min, max of the final training and\n"
            "                    evaluation loss, bytes and times, and each run's numbers\n"
            "  --sequential      run orgs one after another on one thread (same bits)\n"
            "  --checkpointing   per-layer activation checkpointing in the orgs' training\n"
            "                    (less memory, about one more forward a step; same bits)\n"
            "  --bf16            the orgs' frozen base in bf16, loaded so (half its memory),\n"
            "                    products in bf16 with fp32 sums (AVX-512 BF16 where the CPU\n"
            "                    has it, else a portable path; -v says which): each update\n"
            "                    differs from fp32's by bf16 rounding, the protocol and what\n"
            "                    is sent do not; same seed, same bits\n"
            "  --charter CHAIN   the members' charter governs the run: roster, config hash,\n"
            "                    the audit log in --audit-dir DIR signed with\n"
            "                    --coordinator-key KEY; the orgs sign the last round's\n"
            "                    release, and --out is written only once it is logged\n"
            "  --org-keys DIR    org I signs with DIR/org-I.key (mutual certs identity)\n"
            "  --threads N       worker threads for orgs (overrides `threads`; default: cores)\n"
            "  --rounds N        training rounds (overrides federation.rounds)\n"
            "  --seed S          simulation seed (overrides `seed`)\n"
            "  -v, --verbose     more log output\n"
            "  -q, --quiet       errors only (no progress bar)\n"
            "  -h, --help        show this help\n\n"
            "Prints a table of rounds on stdout at the end.\n"
            "Exit status: 0 success, 1 failure, 2 usage or config error.\n");
}

typedef struct {
    const char *config, *out, *metrics, *org_metrics, *plot, *seeds_arg;
    const char *charter, *coord_key, *audit_dir, *org_keys;
    long threads, rounds, seed;
    int sequential, checkpointing, bf16;
    uint64_t seeds[SIM_SEEDS_MAX];
    size_t n_seeds;
} sim_args;

/* "1,2,3": distinct whole numbers 0 .. 2^63-1. 0 or a usage error's exit status. */
static int parse_seeds(sim_args *a)
{
    char buf[64];
    const char *p = a->seeds_arg;
    while (1) {
        size_t l = strcspn(p, ",");
        if (l == 0 || l >= sizeof buf)
            return cli_usage_error(CMD, "--seeds: '%s' is not a list like 1,2,3", a->seeds_arg);
        memcpy(buf, p, l);
        buf[l] = 0;
        long v;
        if (cli_parse_long(CMD, "--seeds", buf, 0, 0x7fffffffffffffffL, &v))
            return MU_EXIT_USAGE;
        for (size_t i = 0; i < a->n_seeds; i++)
            if (a->seeds[i] == (uint64_t)v)
                return cli_usage_error(CMD, "--seeds: seed %ld is given twice", v);
        if (a->n_seeds == SIM_SEEDS_MAX)
            return cli_usage_error(CMD, "--seeds: at most %d seeds", SIM_SEEDS_MAX);
        a->seeds[a->n_seeds++] = (uint64_t)v;
        if (!p[l])
            return 0;
        p += l + 1;
    }
}

static int parse_args(int argc, char **argv, sim_args *a)
{
    enum {
        O_CONFIG = 1000,
        O_OUT,
        O_METRICS,
        O_ORG,
        O_PLOT,
        O_SEEDS,
        O_SEQ,
        O_CKPT,
        O_BF16,
        O_THREADS,
        O_ROUNDS,
        O_SEED,
        O_CHARTER,
        O_COORD_KEY,
        O_AUDIT,
        O_ORG_KEYS
    };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, O_CONFIG},
        {"out", required_argument, NULL, O_OUT},
        {"metrics", required_argument, NULL, O_METRICS},
        {"org-metrics", required_argument, NULL, O_ORG},
        {"plot", required_argument, NULL, O_PLOT},
        {"seeds", required_argument, NULL, O_SEEDS},
        {"sequential", no_argument, NULL, O_SEQ},
        {"checkpointing", no_argument, NULL, O_CKPT},
        {"bf16", no_argument, NULL, O_BF16},
        {"threads", required_argument, NULL, O_THREADS},
        {"rounds", required_argument, NULL, O_ROUNDS},
        {"seed", required_argument, NULL, O_SEED},
        {"charter", required_argument, NULL, O_CHARTER},
        {"coordinator-key", required_argument, NULL, O_COORD_KEY},
        {"audit-dir", required_argument, NULL, O_AUDIT},
        {"org-keys", required_argument, NULL, O_ORG_KEYS},
        MU_CLI_COMMON_LONGOPTS,
        {0, 0, 0, 0}};
    int c;
    while ((c = cli_next_opt(argc, argv, "+" MU_CLI_COMMON_SHORTOPTS, longopts, help)) != -1) {
        if (c == CLI_OPT_HELP)
            return -1;
        switch (c) {
        case O_CONFIG:
            a->config = optarg;
            break;
        case O_OUT:
            a->out = optarg;
            break;
        case O_METRICS:
            a->metrics = optarg;
            break;
        case O_ORG:
            a->org_metrics = optarg;
            break;
        case O_PLOT:
            a->plot = optarg;
            break;
        case O_SEEDS:
            a->seeds_arg = optarg;
            break;
        case O_SEQ:
            a->sequential = 1;
            break;
        case O_CKPT:
            a->checkpointing = 1;
            break;
        case O_BF16:
            a->bf16 = 1;
            break;
        case O_CHARTER:
            a->charter = optarg;
            break;
        case O_COORD_KEY:
            a->coord_key = optarg;
            break;
        case O_AUDIT:
            a->audit_dir = optarg;
            break;
        case O_ORG_KEYS:
            a->org_keys = optarg;
            break;
        case O_THREADS:
            if (cli_parse_long(CMD, "--threads", optarg, 1, 1024, &a->threads))
                return MU_EXIT_USAGE;
            break;
        case O_ROUNDS:
            if (cli_parse_long(CMD, "--rounds", optarg, 1, 1000000000L, &a->rounds))
                return MU_EXIT_USAGE;
            break;
        case O_SEED:
            if (cli_parse_long(CMD, "--seed", optarg, 0, 0x7fffffffffffffffL, &a->seed))
                return MU_EXIT_USAGE;
            break;
        default:
            return cli_usage_error(CMD, "unknown option or missing argument");
        }
    }
    if (optind < argc)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!a->config)
        return cli_usage_error(CMD, "--config is required");
    if (a->plot && !a->metrics)
        return cli_usage_error(CMD, "--plot draws the --metrics file: give --metrics FILE too");
    if (a->charter && (!a->coord_key || !a->audit_dir))
        return cli_usage_error(CMD, "--charter needs --coordinator-key and --audit-dir");
    if (!a->charter && (a->coord_key || a->audit_dir))
        return cli_usage_error(CMD, "--coordinator-key and --audit-dir go with --charter");
    if (a->charter && (a->seeds_arg || a->rounds >= 0 || a->seed >= 0))
        return cli_usage_error(CMD, "--charter names the config file as it is: no --rounds, "
                                    "--seed or --seeds with it");
    if (a->seeds_arg) {
        if (a->seed >= 0)
            return cli_usage_error(CMD, "give --seed or --seeds, not both");
        if (a->out || a->metrics || a->org_metrics || a->plot)
            return cli_usage_error(CMD, "--seeds prints one summary; --out, --metrics, "
                                        "--org-metrics and --plot are for a single run");
        return parse_seeds(a);
    }
    return 0;
}

/* Opens path for writing into *f (path NULL: *f = NULL). 0 or -1 (logged). */
static int open_out(const char *path, FILE **f)
{
    *f = NULL;
    if (path && !(*f = fopen(path, "w"))) {
        mu_error("%s: cannot open for writing", path);
        return -1;
    }
    return 0;
}

/* Closes f, turning a failed close into an error when rc was MU_OK. */
static int close_out(FILE *f, const char *path, int rc, mu_diag *d)
{
    if (f && fclose(f) != 0 && rc == MU_OK)
        rc = mu_diag_set(d, MU_ERR_IO, "%s: write error", path);
    return rc;
}

/* One run with the config's seed (or --seed): the table, --out, --metrics, --org-metrics,
 * --plot. */
static int run_one(const sim_config *cfg, const sim_args *a)
{
    FILE *mf, *of;
    if (open_out(a->metrics, &mf))
        return MU_EXIT_FAIL;
    if (open_out(a->org_metrics, &of)) {
        if (mf)
            fclose(mf);
        return MU_EXIT_FAIL;
    }
    sim_run_opts opts = {.config_path = a->config,
                         .out_dir = a->out,
                         .metrics = mf,
                         .org_metrics = of,
                         .sequential = a->sequential,
                         .checkpointing = a->checkpointing,
                         .bf16 = a->bf16,
                         .charter_path = a->charter,
                         .coordinator_key = a->coord_key,
                         .audit_dir = a->audit_dir,
                         .org_keys_dir = a->org_keys,
                         .progress = isatty(STDERR_FILENO) && mu_log_get_level() >= MU_LOG_INFO};
    sim_result res;
    mu_diag d = {{0}};
    int rc = sim_run(cfg, &opts, &res, &d);
    rc = close_out(mf, a->metrics, rc, &d);
    rc = close_out(of, a->org_metrics, rc, &d);
    if (rc != MU_OK) {
        mu_error("%s", d.msg);
        sim_result_deinit(&res); /* sim_run leaves it empty on error; a close error does not */
        return MU_EXIT_FAIL;
    }
    sim_print_table(stdout, &res);
    if (a->out)
        printf("final global adapter: %s\n", a->out);
    sim_result_deinit(&res);
    if (a->plot) {
        int st = cli_plot(a->metrics, a->org_metrics, a->plot, NULL);
        if (st != MU_EXIT_OK)
            return MU_EXIT_FAIL;
        printf("plot: %s\n", a->plot);
    }
    return MU_EXIT_OK;
}

/* One run per --seeds entry; the JSON summary on stdout. */
static int run_seeds(sim_config *cfg, const sim_args *a)
{
    sim_seed_run *runs = calloc(a->n_seeds, sizeof *runs);
    if (!runs) {
        mu_error("out of memory");
        return MU_EXIT_FAIL;
    }
    int st = MU_EXIT_OK;
    for (size_t i = 0; i < a->n_seeds && st == MU_EXIT_OK; i++) {
        cfg->seed = a->seeds[i];
        mu_info("sim: seed %llu (%zu of %zu)", (unsigned long long)cfg->seed, i + 1, a->n_seeds);
        sim_run_opts opts = {.config_path = a->config,
                             .sequential = a->sequential,
                             .checkpointing = a->checkpointing,
                             .bf16 = a->bf16};
        sim_result res;
        mu_diag d = {{0}};
        if (sim_run(cfg, &opts, &res, &d) != MU_OK) {
            mu_error("seed %llu: %s", (unsigned long long)cfg->seed, d.msg);
            st = MU_EXIT_FAIL;
            break;
        }
        sim_seed_run_of(&res, cfg->seed, &runs[i]);
        sim_result_deinit(&res);
    }
    if (st == MU_EXIT_OK && sim_seeds_write(stdout, runs, a->n_seeds) != MU_OK) {
        mu_error("writing the summary failed");
        st = MU_EXIT_FAIL;
    }
    free(runs);
    return st;
}

int cmd_sim(int argc, char **argv)
{
    sim_args *a = calloc(1, sizeof *a);
    if (!a) {
        mu_error("out of memory");
        return MU_EXIT_FAIL;
    }
    a->threads = a->rounds = a->seed = -1;
    int st = parse_args(argc, argv, a);
    if (st != 0) {
        free(a);
        return st < 0 ? MU_EXIT_OK : st;
    }
    sim_config cfg;
    mu_diag d = {{0}};
    int rc = sim_config_load(a->config, &cfg, &d);
    if (rc != MU_OK) {
        free(a);
        /* a missing, oversized or invalid config is a config error (2), like the other commands */
        if (rc == MU_ERR_NOTFOUND || rc == MU_ERR_FORMAT) {
            mu_error(CMD ": cannot read the config file: %s", d.msg);
            return MU_EXIT_USAGE;
        }
        mu_error("%s", d.msg);
        return rc == MU_ERR_INVALID ? MU_EXIT_USAGE : MU_EXIT_FAIL;
    }
    if (a->threads > 0)
        cfg.threads = (int)a->threads;
    if (a->rounds > 0)
        cfg.co.rounds = (uint64_t)a->rounds;
    if (a->seed >= 0)
        cfg.seed = (uint64_t)a->seed;
    st = a->n_seeds ? run_seeds(&cfg, a) : run_one(&cfg, a);
    sim_config_deinit(&cfg);
    free(a);
    return st;
}
