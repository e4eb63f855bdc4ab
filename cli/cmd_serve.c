/* cmd_serve.c - `mutual serve`: run a federation's coordinator over gRPC. */
#include <string.h>

#include "cli.h"
#include "co_config.h"
#include "ho_gov.h"
#include "mu_log.h"
#include "nd.h"

#define CMD "serve"

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual serve --config FILE [--insecure] [options]\n\n"
            "Runs the coordinator of a federation: orgs join over gRPC with mutual TLS (their\n"
            "certificate's CN is their name), rounds of LoRA fine-tuning are aggregated with\n"
            "secure aggregation, and after every round the coordinator writes a crash-safe\n"
            "checkpoint (federation.checkpoint_dir) and the global adapter as a PEFT folder\n"
            "(federation.export_dir/round-NNNNNN). On start it resumes from the checkpoint.\n"
            "One JSON line per finished round goes to stdout. SIGINT/SIGTERM stop it cleanly.\n"
            "See configs/coordinator.yaml (the model: section names the base model and LoRA).\n\n"
            "Options:\n"
            "  --config FILE       coordinator YAML (required)\n"
            "  --insecure          plaintext gRPC without certificates (local experiments only)\n"
            "  --port-file FILE    write the bound TCP port here once listening\n"
            "  --linger S          after the last round, keep telling orgs to leave for up to\n"
            "                      S seconds (default 10)\n"
            "  --poll S            hold a PullTask at most S seconds (default 10)\n"
            "  --accept-config-change\n"
            "                      resume even though the config file changed since the\n"
            "                      checkpoint was written (default: refuse)\n"
            "  --dump-dir DIR      test mode: write DIR/global-RRRRRR.f32 after each round\n"
            "  --crash-at R:S      test mode: SIGKILL itself once round R has stage S (1-5) open\n"
            "  --charter CHAIN     the members' charter chain governs the federation: the\n"
            "                      roster, the training config, the audit log (audit.log in\n"
            "                      the checkpoint folder); see docs/governance.md. Without it\n"
            "                      nothing is member-governed\n"
            "  --coordinator-key KEY\n"
            "                      with --charter: the coordinator's Ed25519 signing key (64\n"
            "                      hex digits), the key the charter names; signs the log\n"
            "  --resume-bundle FILE\n"
            "                      with --charter: start from a members' release bundle (the\n"
            "                      federation's state after a released round) instead of a\n"
            "                      checkpoint; refuses to start when it does not verify\n"
            "  --test-cheat WHAT   test mode, Debug builds only: skip the coordinator's own\n"
            "                      charter check WHAT (config, admit, leave: keep members\n"
            "                      who left; or a comma list)\n"
            "  -v, --verbose       more log output\n"
            "  -q, --quiet         errors only\n"
            "  -h, --help          show this help\n\n"
            "Exit status: 0 clean stop, 1 failure, 2 usage or config error.\n");
}

enum {
    O_CONFIG = 1000,
    O_INSECURE,
    O_PORT_FILE,
    O_LINGER,
    O_POLL,
    O_DUMP,
    O_CRASH,
    O_ACCEPT,
    O_CHARTER,
    O_COORD_KEY,
    O_CHEAT,
    O_BUNDLE
};

int cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, O_CONFIG},
        {"insecure", no_argument, NULL, O_INSECURE},
        {"port-file", required_argument, NULL, O_PORT_FILE},
        {"linger", required_argument, NULL, O_LINGER},
        {"poll", required_argument, NULL, O_POLL},
        {"dump-dir", required_argument, NULL, O_DUMP},
        {"crash-at", required_argument, NULL, O_CRASH},
        {"accept-config-change", no_argument, NULL, O_ACCEPT},
        {"charter", required_argument, NULL, O_CHARTER},
        {"coordinator-key", required_argument, NULL, O_COORD_KEY},
        {"test-cheat", required_argument, NULL, O_CHEAT},
        {"resume-bundle", required_argument, NULL, O_BUNDLE},
        MU_CLI_COMMON_LONGOPTS,
        {0, 0, 0, 0}};
    nd_serve_opts o = {0};
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
        case O_ACCEPT:
            o.accept_config_change = 1;
            break;
        case O_PORT_FILE:
            o.port_file = optarg;
            break;
        case O_DUMP:
            o.dump_dir = optarg;
            break;
        case O_CHARTER:
            o.charter_path = optarg;
            break;
        case O_BUNDLE:
            o.resume_bundle = optarg;
            break;
        case O_COORD_KEY:
            o.coordinator_key = optarg;
            break;
        case O_CHEAT:
            o.cheat = (strstr(optarg, "config") ? HO_GOV_SKIP_CONFIG : 0) |
                      (strstr(optarg, "admit") ? HO_GOV_SKIP_ADMIT : 0) |
                      (strstr(optarg, "leave") ? HO_GOV_SKIP_LEAVE : 0);
            if (!o.cheat)
                return cli_usage_error(CMD, "--test-cheat wants config, admit, leave or a comma "
                                            "list of them");
            break;
        case O_CRASH: {
            unsigned long long r = 0;
            int st = 0;
            if (sscanf(optarg, "%llu:%d", &r, &st) != 2 || r == 0 || st < 1 || st > 5)
                return cli_usage_error(CMD, "--crash-at wants ROUND:STAGE (stage 1-5)");
            o.crash_round = r;
            o.crash_stage = st;
            break;
        }
        case O_LINGER:
            if (cli_parse_double(CMD, "--linger", optarg, 0.001, 86400, &o.linger_s))
                return MU_EXIT_USAGE;
            break;
        case O_POLL:
            if (cli_parse_double(CMD, "--poll", optarg, 0.1, 3600, &o.poll_s))
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
    if (!o.charter_path != !o.coordinator_key)
        return cli_usage_error(CMD, "--charter and --coordinator-key go together");
    if (o.resume_bundle && !o.charter_path)
        return cli_usage_error(CMD, "--resume-bundle needs --charter");
    if (o.cheat && !o.charter_path)
        return cli_usage_error(CMD, "--test-cheat needs --charter");
    mu_diag d = {{0}};
    int rc = cli_exit_check(CMD, nd_serve_check(&o, &d), &d);
    return rc ? rc : cli_exit_run(CMD, nd_serve_run(&o, &d), &d);
}
