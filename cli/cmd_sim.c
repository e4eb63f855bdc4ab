/* cmd_sim.c - `mutual sim`: a federation of virtual orgs in one process (sim/sim.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mu_log.h"
#include "sim.h"

#define CMD "sim"

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
            "  --sequential      run orgs one after another on one thread (same bits)\n"
            "  --threads N       worker threads for orgs (overrides `threads`; default: cores)\n"
            "  --rounds N        training rounds (overrides federation.rounds)\n"
            "  --seed S          simulation seed (overrides `seed`)\n"
            "  -v, --verbose     more log output\n"
            "  -q, --quiet       errors only (no progress bar)\n"
            "  -h, --help        show this help\n\n"
            "Prints a table of rounds on stdout at the end.\n"
            "Exit status: 0 success, 1 failure, 2 usage or config error.\n");
}

enum { O_CONFIG = 1000, O_OUT, O_METRICS, O_ORG_METRICS, O_SEQ, O_THREADS, O_ROUNDS, O_SEED };

int cmd_sim(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, O_CONFIG},
        {"out", required_argument, NULL, O_OUT},
        {"metrics", required_argument, NULL, O_METRICS},
        {"org-metrics", required_argument, NULL, O_ORG_METRICS},
        {"sequential", no_argument, NULL, O_SEQ},
        {"threads", required_argument, NULL, O_THREADS},
        {"rounds", required_argument, NULL, O_ROUNDS},
        {"seed", required_argument, NULL, O_SEED},
        MU_CLI_COMMON_LONGOPTS,
        {0, 0, 0, 0}};
    const char *config = NULL, *out = NULL, *metrics = NULL, *org_metrics = NULL;
    long threads = -1, rounds = -1, seed = -1;
    int sequential = 0, c;
    while ((c = getopt_long(argc, argv, "+" MU_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        if (c == 'h') {
            help(stdout);
            return MU_EXIT_OK;
        }
        if (cli_common_opt(c))
            continue;
        switch (c) {
        case O_CONFIG:
            config = optarg;
            break;
        case O_OUT:
            out = optarg;
            break;
        case O_METRICS:
            metrics = optarg;
            break;
        case O_ORG_METRICS:
            org_metrics = optarg;
            break;
        case O_SEQ:
            sequential = 1;
            break;
        case O_THREADS:
            if (cli_parse_long(CMD, "--threads", optarg, 1, 1024, &threads))
                return MU_EXIT_USAGE;
            break;
        case O_ROUNDS:
            if (cli_parse_long(CMD, "--rounds", optarg, 1, 1000000000L, &rounds))
                return MU_EXIT_USAGE;
            break;
        case O_SEED:
            if (cli_parse_long(CMD, "--seed", optarg, 0, 0x7fffffffffffffffL, &seed))
                return MU_EXIT_USAGE;
            break;
        default:
            return cli_usage_error(CMD, "unknown option or missing argument");
        }
    }
    if (optind < argc)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!config)
        return cli_usage_error(CMD, "--config is required");

    sim_config cfg;
    mu_diag d = {{0}};
    int rc = sim_config_load(config, &cfg, &d);
    if (rc != MU_OK) {
        /* a missing, oversized or invalid config is a config error (2), like the other commands */
        if (rc == MU_ERR_NOTFOUND || rc == MU_ERR_FORMAT) {
            mu_error(CMD ": cannot read the config file: %s", d.msg);
            return MU_EXIT_USAGE;
        }
        mu_error("%s", d.msg);
        return rc == MU_ERR_INVALID ? MU_EXIT_USAGE : MU_EXIT_FAIL;
    }
    if (threads > 0)
        cfg.threads = (int)threads;
    if (rounds > 0)
        cfg.co.rounds = (uint64_t)rounds;
    if (seed >= 0)
        cfg.seed = (uint64_t)seed;
    FILE *mf = NULL, *of = NULL;
    if ((metrics && !(mf = fopen(metrics, "w"))) ||
        (org_metrics && !(of = fopen(org_metrics, "w")))) {
        mu_error("%s: cannot open for writing", mf || !metrics ? org_metrics : metrics);
        if (mf)
            fclose(mf);
        sim_config_deinit(&cfg);
        return MU_EXIT_FAIL;
    }
    sim_run_opts opts = {.config_path = config,
                         .out_dir = out,
                         .metrics = mf,
                         .org_metrics = of,
                         .sequential = sequential,
                         .progress = isatty(STDERR_FILENO) && mu_log_get_level() >= MU_LOG_INFO};
    sim_result res;
    rc = sim_run(&cfg, &opts, &res, &d);
    if (mf && fclose(mf) != 0 && rc == MU_OK)
        rc = mu_diag_set(&d, MU_ERR_IO, "%s: write error", metrics);
    if (of && fclose(of) != 0 && rc == MU_OK)
        rc = mu_diag_set(&d, MU_ERR_IO, "%s: write error", org_metrics);
    sim_config_deinit(&cfg);
    if (rc != MU_OK) {
        mu_error("%s", d.msg);
        return MU_EXIT_FAIL;
    }
    sim_print_table(stdout, &res);
    if (out)
        printf("final global adapter: %s\n", out);
    sim_result_deinit(&res);
    return MU_EXIT_OK;
}
