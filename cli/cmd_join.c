/* cmd_join.c - `mutual join`: take part in a federation as one org. */
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "mu_log.h"
#include "nd.h"
#include "nd_orgcfg.h"
#include "wi_stage.h"

#define CMD "join"

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual join --config FILE [--insecure] [options]\n\n"
            "Joins a federation as one org (configs/org.yaml): connects to the coordinator with\n"
            "the org's certificate, registers its Ed25519 identity key (created with mode 0600\n"
            "on first run), then pulls tasks: download the global adapter, train LoRA on the\n"
            "local data, take part in secure aggregation, report. Only masked updates, keys,\n"
            "encrypted shares and summed metrics leave the org. Reconnects with exponential\n"
            "backoff when the coordinator restarts; exits 0 when the federation is over.\n\n"
            "Options:\n"
            "  --config FILE       org YAML (required)\n"
            "  --insecure          plaintext gRPC without certificates (local experiments only)\n"
            "  --give-up S         stop after S seconds without reaching the coordinator\n"
            "                      (default: reconnect.give_up_s, 0 = never)\n"
            "  --dump-dir DIR      test mode: write DIR/delta-RRRRRR-NAME.f32 (weight, then the\n"
            "                      update before clipping) after each training round; this\n"
            "                      stays on this machine\n"
            "  --die-at R:S        test mode: SIGKILL itself in round R right before sending\n"
            "                      its message for secure-agg stage S (1-5; 100: the\n"
            "                      training report)\n"
            "  --term-at R:S       test mode: as --die-at, but SIGTERM: the org stops as on\n"
            "                      Ctrl-C and tells the coordinator that it leaves\n"
            "  --charter CHAIN     enforce the members' charter chain: aggregate only with its\n"
            "                      roster, refuse a coordinator running another training\n"
            "                      config, verify and countersign the audit log of every\n"
            "                      training task, stop on a fork (docs/governance.md)\n"
            "  --witness-head FILE where the countersigned log head is kept (default\n"
            "                      IDENTITY_KEY.head)\n"
            "  --release           with --charter: sign the release of each round whose\n"
            "                      global is the one the audit log names (the coordinator\n"
            "                      exports a round once the charter's release quorum signed)\n"
            "  --leave NOTICE      with --charter: join, send this member's signed leave\n"
            "                      notice (mutual charter leave) and exit: 0 once the\n"
            "                      coordinator accepted it, 1 if it refused it\n"
            "  -v, --verbose       more log output\n"
            "  -q, --quiet         errors only\n"
            "  -h, --help          show this help\n\n"
            "Exit status: 0 federation over or stopped by a signal, 1 failure, 2 usage or\n"
            "config error.\n");
}

enum {
    O_CONFIG = 1000,
    O_INSECURE,
    O_GIVE_UP,
    O_DUMP,
    O_DIE,
    O_TERM,
    O_CHARTER,
    O_HEAD,
    O_RELEASE,
    O_LEAVE
};

int cmd_join(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, O_CONFIG},
                                             {"insecure", no_argument, NULL, O_INSECURE},
                                             {"give-up", required_argument, NULL, O_GIVE_UP},
                                             {"dump-dir", required_argument, NULL, O_DUMP},
                                             {"die-at", required_argument, NULL, O_DIE},
                                             {"term-at", required_argument, NULL, O_TERM},
                                             {"charter", required_argument, NULL, O_CHARTER},
                                             {"witness-head", required_argument, NULL, O_HEAD},
                                             {"release", no_argument, NULL, O_RELEASE},
                                             {"leave", required_argument, NULL, O_LEAVE},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {0, 0, 0, 0}};
    nd_join_opts o = {0};
    int c;
    while ((c = cli_next_opt(argc, argv, "+" MU_CLI_COMMON_SHORTOPTS, longopts, help)) != -1) {
        if (c == CLI_OPT_HELP)
            return MU_EXIT_OK;
        switch (c) {
        case O_CONFIG:
            o.config_path = optarg;
            break;
        case O_INSECURE:
            o.insecure = 1;
            break;
        case O_DUMP:
            o.dump_dir = optarg;
            break;
        case O_CHARTER:
            o.charter_path = optarg;
            break;
        case O_HEAD:
            o.head_path = optarg;
            break;
        case O_RELEASE:
            o.release = 1;
            break;
        case O_LEAVE:
            o.leave_path = optarg;
            break;
        case O_DIE:
        case O_TERM: {
            unsigned long long r = 0;
            int st = 0;
            if (sscanf(optarg, "%llu:%d", &r, &st) != 2 || r == 0 ||
                !(wi_stage_is_secagg(st) || st == WI_STAGE_REPORT))
                return cli_usage_error(CMD, "--%s wants ROUND:STAGE (stage 1-5 or 100)",
                                       c == O_DIE ? "die-at" : "term-at");
            o.die_round = r;
            o.die_stage = st;
            o.die_signal = c == O_DIE ? SIGKILL : SIGTERM;
            break;
        }
        case O_GIVE_UP:
            if (cli_parse_double(CMD, "--give-up", optarg, 0, 1e9, &o.give_up_s))
                return MU_EXIT_USAGE;
            break;
        default:
            return cli_usage_error(CMD, "unknown option or missing argument");
        }
    }
    if (optind < argc)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!o.config_path)
        return cli_usage_error(CMD, "--config is required");
    if (o.leave_path && !o.charter_path)
        return cli_usage_error(CMD, "--leave needs --charter");
    mu_diag d = {{0}};
    int rc = cli_exit_check(CMD, nd_join_check(&o, &d), &d);
    return rc ? rc : cli_exit_run(CMD, nd_join_run(&o, &d), &d);
}
