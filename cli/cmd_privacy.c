/* cmd_privacy.c - `mutual privacy`: ε at δ for a plan (noise, sampling rate, steps), or the
 * noise a target ε needs, from the RDP accountant (privacy/include/dp.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "co_round.h"
#include "dp.h"

#define CMD "privacy"

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual privacy --noise Z --steps N --delta D [--rate Q] [--mechanism M]\n"
            "                      [--conversion tight|classic] [--json]\n"
            "       mutual privacy --epsilon E --steps N --delta D [--rate Q] [...]\n"
            "       mutual privacy --config COORDINATOR.yaml [--dim D] [--json]\n\n"
            "Prints the (epsilon, delta) guarantee of N steps of a Gaussian mechanism with noise\n"
            "multiplier Z (noise standard deviation / L2 sensitivity), each applied to a Poisson\n"
            "sample of rate Q of the protected units (default 1: every unit every step), from\n"
            "Renyi DP minimised over orders 1.1..10.9 and 12..63 (as TensorFlow Privacy and\n"
            "Opacus). With --epsilon E instead of --noise, prints the smallest noise multiplier\n"
            "that gives epsilon <= E.\n\n"
            "  --mechanism M      gaussian (default; subsampled bound of Mironov-Talwar-Zhang\n"
            "                     2019 when Q < 1) or discrete-gaussian (Canonne-Kamath-Steinke\n"
            "                     2020; Q must be 1: no amplification by sampling is claimed)\n"
            "                     or skellam (Agarwal-Kairouz-Liu 2021, noise std Z x L2; Q 1)\n"
            "  --l2 S, --l1 S     skellam only: L2 sensitivity (default 1) and L1 sensitivity\n"
            "                     (default L2 squared, a bound for any integer vector)\n"
            "  --conversion C     tight (default; Balle et al. 2020, Opacus's get_privacy_spent)\n"
            "                     or classic (Mironov 2017: eps = rdp + log(1/delta)/(order-1))\n"
            "  --json             one JSON object instead of a sentence\n\n"
            "Amplification by sampling holds only if the sample is secret and random from the\n"
            "protected unit's point of view (see docs/privacy.md).\n\n"
            "With --config, the federation's plan before it starts: the org-level epsilon\n"
            "(privacy.ddg_noise; --dim, the adapter's trainable values, is then required) and\n"
            "the record-level epsilon (train.dp_clip, without amplification) after\n"
            "federation.rounds released rounds at privacy.delta, and how many rounds\n"
            "privacy.epsilon_budget allows, as the coordinator counts them.\n\n"
            "Exit status: 0 printed, 1 no noise up to 1e4 reaches the target, 2 usage error.\n");
}

typedef struct {
    dp_plan plan;
    double target; /* 0: compute ε for plan.noise */
    int json;
    const char *config; /* --config: the federation's plan instead */
    long dim;
} privacy_args;

static int parse(int argc, char **argv, privacy_args *a)
{
    enum {
        O_NOISE = 1000,
        O_RATE,
        O_STEPS,
        O_DELTA,
        O_MECH,
        O_CONV,
        O_EPS,
        O_JSON,
        O_L1,
        O_L2,
        O_CONFIG,
        O_DIM
    };
    static const struct option longopts[] = {{"noise", required_argument, NULL, O_NOISE},
                                             {"rate", required_argument, NULL, O_RATE},
                                             {"steps", required_argument, NULL, O_STEPS},
                                             {"delta", required_argument, NULL, O_DELTA},
                                             {"mechanism", required_argument, NULL, O_MECH},
                                             {"conversion", required_argument, NULL, O_CONV},
                                             {"epsilon", required_argument, NULL, O_EPS},
                                             {"json", no_argument, NULL, O_JSON},
                                             {"l1", required_argument, NULL, O_L1},
                                             {"l2", required_argument, NULL, O_L2},
                                             {"config", required_argument, NULL, O_CONFIG},
                                             {"dim", required_argument, NULL, O_DIM},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {0, 0, 0, 0}};
    long steps = 0;
    int c;
    a->plan.rate = 1.0;
    while ((c = cli_next_opt(argc, argv, MU_CLI_COMMON_SHORTOPTS, longopts, help)) != -1) {
        int bad = 0;
        if (c == CLI_OPT_HELP)
            return 1;
        if (c == O_NOISE)
            bad = cli_parse_double(CMD, "--noise", optarg, 1e-3, 1e6, &a->plan.noise);
        else if (c == O_RATE)
            bad = cli_parse_double(CMD, "--rate", optarg, 0, 1, &a->plan.rate);
        else if (c == O_STEPS)
            bad = cli_parse_long(CMD, "--steps", optarg, 1, 1000000000L, &steps);
        else if (c == O_DELTA)
            bad = cli_parse_double(CMD, "--delta", optarg, 1e-300, 0.5, &a->plan.delta);
        else if (c == O_L1)
            bad = cli_parse_double(CMD, "--l1", optarg, 1e-9, 1e18, &a->plan.l1);
        else if (c == O_L2)
            bad = cli_parse_double(CMD, "--l2", optarg, 1e-9, 1e9, &a->plan.l2);
        else if (c == O_EPS)
            bad = cli_parse_double(CMD, "--epsilon", optarg, 1e-6, 1e6, &a->target);
        else if (c == O_MECH) {
            if (dp_mech_parse(optarg, &a->plan.mech))
                return -cli_usage_error(CMD,
                                        "--mechanism is gaussian, discrete-gaussian or "
                                        "skellam, not '%s'",
                                        optarg);
        } else if (c == O_CONV) {
            if (strcmp(optarg, "tight") && strcmp(optarg, "classic"))
                return -cli_usage_error(CMD, "--conversion is tight or classic, not '%s'", optarg);
            a->plan.conv = strcmp(optarg, "tight") ? DP_CONV_CLASSIC : DP_CONV_TIGHT;
        } else if (c == O_JSON)
            a->json = 1;
        else if (c == O_CONFIG)
            a->config = optarg;
        else if (c == O_DIM)
            bad = cli_parse_long(CMD, "--dim", optarg, 1, (long)CO_TASK_MAX_DIM, &a->dim);
        else
            return -cli_usage_error(CMD, "unknown option or missing argument");
        if (bad)
            return -MU_EXIT_USAGE;
    }
    if (optind != argc)
        return -cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (a->config)
        return a->plan.noise > 0 || a->target > 0 || steps
                   ? -cli_usage_error(CMD, "--config takes no --noise, --epsilon or --steps")
                   : 0;
    if (a->dim)
        return -cli_usage_error(CMD, "--dim is for --config");
    if ((a->plan.noise > 0) == (a->target > 0))
        return -cli_usage_error(CMD, "give exactly one of --noise and --epsilon");
    if (!steps || !(a->plan.delta > 0))
        return -cli_usage_error(CMD, "--steps and --delta are required");
    if (a->plan.mech != DP_MECH_GAUSSIAN && a->plan.rate > 0 && a->plan.rate < 1)
        return -cli_usage_error(CMD,
                                "--mechanism %s takes no --rate below 1 (no amplification "
                                "by sampling is claimed for it)",
                                dp_mech_name(a->plan.mech));
    if (a->plan.mech != DP_MECH_SKELLAM && (a->plan.l1 > 0 || a->plan.l2 > 0))
        return -cli_usage_error(CMD, "--l1 and --l2 are for --mechanism skellam (the Gaussians "
                                     "take the noise multiplier alone)");
    a->plan.steps = (uint64_t)steps;
    return 0;
}

static void print(const privacy_args *a, double noise, double eps, double order)
{
    const dp_plan *p = &a->plan;
    const char *conv = p->conv == DP_CONV_TIGHT ? "tight" : "classic";
    double l2 = p->l2 > 0 ? p->l2 : 1.0, l1 = p->l1 > 0 ? p->l1 : l2 * l2; /* as dp.h */
    if (a->json) {
        printf("{\"mechanism\":\"%s\",\"noise\":%.15g,\"rate\":%.15g,\"steps\":%llu,"
               "\"delta\":%.15g,\"conversion\":\"%s\",",
               dp_mech_name(p->mech), noise, p->rate, (unsigned long long)p->steps, p->delta, conv);
        if (p->mech == DP_MECH_SKELLAM)
            printf("\"l1\":%.15g,\"l2\":%.15g,", l1, l2);
        printf("\"epsilon\":%.15g,\"order\":%.15g}\n", eps, order);
        return;
    }
    printf("epsilon %.4g at delta %.3g: %s noise multiplier %.6g, rate %.6g, %llu steps", eps,
           p->delta, dp_mech_name(p->mech), noise, p->rate, (unsigned long long)p->steps);
    if (p->mech == DP_MECH_SKELLAM)
        printf(", sensitivity L1 %g L2 %g", l1, l2);
    printf(" (Renyi order %g, %s conversion)\n", order, conv);
}

/* The largest number of released rounds the budget allows (up to 10^7). */
static uint64_t rounds_allowed(const co_privacy *p)
{
    char why[256];
    uint64_t lo = 0, hi = 10000000;
    if (!co_privacy_over(p, hi, why, sizeof why))
        return hi;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (co_privacy_over(p, mid, why, sizeof why))
            hi = mid;
        else
            lo = mid;
    }
    return lo;
}

static void num(double v)
{
    if (isfinite(v))
        printf("%.9g", v);
    else
        printf("null");
}

/* `mutual privacy --config`: the federation's plan. */
static int plan_config(const privacy_args *a)
{
    co_config cfg;
    mu_diag d = {{0}};
    if (co_config_load(a->config, &cfg, &d) != MU_OK) {
        fprintf(stderr, "mutual " CMD ": %s\n", d.msg);
        return MU_EXIT_USAGE;
    }
    int rc = MU_EXIT_USAGE;
    co_privacy p;
    if (cfg.ddg_noise > 0 && !a->dim) {
        cli_usage_error(CMD, "privacy.ddg_noise is set: give --dim (the adapter's trainable "
                             "values, which `mutual serve` logs at start)");
        goto out;
    }
    if (!(cfg.ddg_noise > 0) && !(cfg.dp_clip > 0)) {
        fprintf(stderr,
                "mutual " CMD ": %s adds no noise (privacy.ddg_noise and train.dp_clip "
                "are 0): no epsilon to report\n",
                a->config);
        goto out;
    }
    if (co_round_privacy_plan(&cfg, (uint32_t)(a->dim ? a->dim : 1), &p, &d) != MU_OK) {
        fprintf(stderr, "mutual " CMD ": %s\n", d.msg);
        goto out;
    }
    double org, rec;
    co_privacy_epsilon(&p, cfg.rounds, &org, &rec);
    uint64_t allowed = p.budget > 0 ? rounds_allowed(&p) : 0;
    if (a->json) {
        printf("{\"rounds\":%llu,\"delta\":%.15g,\"epsilon\":", (unsigned long long)cfg.rounds,
               p.delta);
        num(org);
        printf(",\"epsilon_no_colluders\":");
        num(co_privacy_epsilon_all_honest(&p, cfg.rounds));
        printf(",\"colluders\":%u,\"record_epsilon\":", p.colluders);
        num(rec);
        printf(",\"epsilon_budget\":%.15g,\"rounds_allowed\":", p.budget);
        if (p.budget > 0)
            printf("%llu}\n", (unsigned long long)allowed);
        else
            printf("null}\n");
    } else {
        printf("after %llu released rounds at delta %g:", (unsigned long long)cfg.rounds, p.delta);
        uint32_t k = cfg.min_survivors ? cfg.min_survivors : cfg.min_orgs;
        if (p.org_on)
            printf(" org-level epsilon %.4g (distributed discrete Gaussian, noise %g over %u "
                   "survivors, %u of them possibly colluding with the coordinator: the noise of "
                   "%u; %.4g if none colludes; no amplification)",
                   org, cfg.ddg_noise, k, p.colluders, k > p.colluders ? k - p.colluders : 0,
                   co_privacy_epsilon_all_honest(&p, cfg.rounds));
        if (p.record_on)
            printf("%s record-level epsilon %.4g (DP-SGD, %u steps per round, noise %g, no "
                   "amplification)",
                   p.org_on ? ";" : "", rec, cfg.steps, cfg.dp_noise);
        printf("\n");
        if (p.budget > 0)
            printf("privacy.epsilon_budget %g allows %llu released rounds\n", p.budget,
                   (unsigned long long)allowed);
    }
    rc = MU_EXIT_OK;
out:
    co_config_deinit(&cfg);
    return rc;
}

int cmd_privacy(int argc, char **argv)
{
    privacy_args a = {.plan = {.mech = DP_MECH_GAUSSIAN, .rate = 1.0, .conv = DP_CONV_TIGHT}};
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc > 0 ? MU_EXIT_OK : -rc;
    if (a.config)
        return plan_config(&a);
    double noise = a.plan.noise, eps, order;
    if (a.target > 0) {
        rc = dp_plan_noise_for(&a.plan, a.target, &noise);
        if (rc == MU_ERR_UNSUPPORTED) {
            fprintf(stderr,
                    "mutual " CMD ": no noise multiplier up to 1e4 gives epsilon <= %g "
                    "in %llu steps at delta %g\n",
                    a.target, (unsigned long long)a.plan.steps, a.plan.delta);
            return MU_EXIT_FAIL;
        }
        a.plan.noise = noise;
    }
    if (!rc)
        rc = dp_plan_epsilon(&a.plan, &eps, &order);
    if (rc) {
        fprintf(stderr, "mutual " CMD ": %s\n", mu_strerror(rc));
        return rc == MU_ERR_INVALID ? MU_EXIT_USAGE : MU_EXIT_FAIL;
    }
    print(&a, noise, eps, order);
    return MU_EXIT_OK;
}
