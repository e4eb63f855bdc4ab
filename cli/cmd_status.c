/* cmd_status.c - `mutual status`: ask a coordinator where its federation is. */
#include <math.h>
#include <string.h>

#include "cli.h"
#include "mu_log.h"
#include "rpc_client.h"

#define CMD "status"

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual status --coordinator HOST:PORT [--json]\n"
            "                     (--ca FILE --cert FILE --key FILE | --insecure)\n\n"
            "Calls the coordinator's Status RPC and prints the round in flight, its stage, the\n"
            "orgs registered, connected and in the cohort, and the last round's metrics.\n"
            "The coordinator answers members (orgs on its allowlist, or registered orgs when it\n"
            "has none) and operators (mutual certs issue --operator); others get\n"
            "PERMISSION_DENIED. --json adds total_rounds (0 = until stopped) and the last\n"
            "round's mean loss (loss_sum / tokens; null without tokens). With noise configured\n"
            "(privacy.ddg_noise, train.dp_clip) both add the epsilon spent so far "
            "(docs/privacy.md).\n\n"
            "Options:\n"
            "  --coordinator ADDR  host:port of the coordinator (required)\n"
            "  --json              one JSON object instead of text\n"
            "  --ca FILE           the federation CA certificate\n"
            "  --cert FILE         the operator's certificate\n"
            "  --key FILE          the operator's key\n"
            "  --server-name NAME  name to check in the coordinator's certificate\n"
            "                      (default: the host of ADDR)\n"
            "  --insecure          plaintext (only against `mutual serve --insecure`)\n"
            "  --timeout S         give up after S seconds (default 10)\n"
            "  -v, --verbose       more log output\n"
            "  -q, --quiet         errors only\n"
            "  -h, --help          show this help\n\n"
            "Exit status: 0 answered, 1 the coordinator could not be asked, 2 usage.\n");
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* A number, or null for NaN (not tracked) and infinity (unbounded). */
static void json_num(double v)
{
    if (isfinite(v))
        printf("%.17g", v);
    else
        printf("null");
}

static void print(const Mutual__V1__StatusReply *r, int json)
{
    const Mutual__V1__RoundMetrics *m = r->last_round;
    double loss = m && m->tokens ? m->loss_sum / (double)m->tokens : NAN;
    if (json) {
        printf("{\"federation\":");
        json_str(r->federation_name);
        printf(",\"software_version\":");
        json_str(r->software_version);
        printf(",\"round\":%llu,\"stage\":", (unsigned long long)r->round);
        json_str(r->stage);
        printf(",\"total_rounds\":%llu", (unsigned long long)r->total_rounds);
        printf(",\"orgs_registered\":%u,\"orgs_connected\":%u,\"orgs_in_cohort\":%u",
               r->orgs_registered, r->orgs_connected, r->orgs_in_cohort);
        if (m && isfinite(loss))
            printf(",\"last_round\":{\"loss\":%.17g", loss);
        else if (m)
            printf(",\"last_round\":{\"loss\":null");
        if (m)
            printf(",\"round\":%llu,\"loss_sum\":%.17g,\"tokens\":%llu,"
                   "\"orgs_completed\":%u,\"orgs_dropped\":%u,\"duration_s\":%.6g}",
                   (unsigned long long)m->round, m->loss_sum, (unsigned long long)m->tokens,
                   m->orgs_completed, m->orgs_dropped, m->duration_s);
        if (!isnan(r->epsilon) || !isnan(r->record_epsilon)) {
            printf(",\"privacy\":{\"epsilon\":");
            json_num(r->epsilon);
            printf(",\"epsilon_no_colluders\":");
            json_num(r->epsilon_no_colluders);
            printf(",\"colluders\":%u,\"record_epsilon\":", r->colluders);
            json_num(r->record_epsilon);
            printf(",\"delta\":%.17g,\"epsilon_budget\":%.17g}", r->delta, r->epsilon_budget);
        }
        printf("}\n");
        return;
    }
    printf("federation   %s (coordinator mutual %s)\n", r->federation_name, r->software_version);
    if (r->total_rounds)
        printf("round        %llu of %llu, stage %s\n", (unsigned long long)r->round,
               (unsigned long long)r->total_rounds, r->stage);
    else
        printf("round        %llu (runs until stopped), stage %s\n", (unsigned long long)r->round,
               r->stage);
    printf("orgs         %u registered, %u connected, %u in the cohort\n", r->orgs_registered,
           r->orgs_connected, r->orgs_in_cohort);
    if (m)
        printf("last round   %llu: %u orgs completed, %u dropped, loss %.4f over %llu tokens, "
               "%.2f s\n",
               (unsigned long long)m->round, m->orgs_completed, m->orgs_dropped, loss,
               (unsigned long long)m->tokens, m->duration_s);
    else
        printf("last round   none yet\n");
    if (!isnan(r->epsilon) || !isnan(r->record_epsilon)) {
        printf("privacy      spent at delta %g:", r->delta);
        if (!isnan(r->epsilon))
            printf(" epsilon %.4g org level (%u colluding orgs; %.4g if none)", r->epsilon,
                   r->colluders, r->epsilon_no_colluders);
        if (!isnan(r->record_epsilon))
            printf("%s epsilon %.4g record level (no amplification)", isnan(r->epsilon) ? "" : ",",
                   r->record_epsilon);
        if (r->epsilon_budget > 0)
            printf("; budget %g", r->epsilon_budget);
        printf("\n");
    }
}

enum { O_COORD = 1000, O_JSON, O_CA, O_CERT, O_KEY, O_NAME, O_INSECURE, O_TIMEOUT };

int cmd_status(int argc, char **argv)
{
    static const struct option longopts[] = {{"coordinator", required_argument, NULL, O_COORD},
                                             {"json", no_argument, NULL, O_JSON},
                                             {"ca", required_argument, NULL, O_CA},
                                             {"cert", required_argument, NULL, O_CERT},
                                             {"key", required_argument, NULL, O_KEY},
                                             {"server-name", required_argument, NULL, O_NAME},
                                             {"insecure", no_argument, NULL, O_INSECURE},
                                             {"timeout", required_argument, NULL, O_TIMEOUT},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {0, 0, 0, 0}};
    rpc_client_config cc = {0};
    int json = 0, c;
    double timeout = 10;
    while ((c = cli_next_opt(argc, argv, "+" MU_CLI_COMMON_SHORTOPTS, longopts, help)) != -1) {
        if (c == CLI_OPT_HELP)
            return MU_EXIT_OK;
        switch (c) {
        case O_COORD:
            cc.target = optarg;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_CA:
            cc.ca_path = optarg;
            break;
        case O_CERT:
            cc.cert_path = optarg;
            break;
        case O_KEY:
            cc.key_path = optarg;
            break;
        case O_NAME:
            cc.server_name = optarg;
            break;
        case O_INSECURE:
            cc.insecure = 1;
            break;
        case O_TIMEOUT:
            if (cli_parse_double(CMD, "--timeout", optarg, 0.01, 3600, &timeout))
                return MU_EXIT_USAGE;
            break;
        default:
            return cli_usage_error(CMD, "unknown option or missing argument");
        }
    }
    if (optind < argc)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!cc.target)
        return cli_usage_error(CMD, "--coordinator is required");
    if (!cc.insecure && (!cc.ca_path || !cc.cert_path || !cc.key_path))
        return cli_usage_error(CMD, "--ca, --cert and --key are required (or --insecure)");
    if (cc.insecure)
        mu_warn("status: *** INSECURE: plaintext, the coordinator is not authenticated ***");
    mu_diag d = {{0}};
    rpc_client *cl = rpc_client_new(&cc, &d);
    if (!cl) {
        mu_error("mutual status: %s", d.msg);
        return MU_EXIT_FAIL;
    }
    Mutual__V1__StatusRequest req = MUTUAL__V1__STATUS_REQUEST__INIT;
    req.api_version = RPC_API_VERSION;
    ProtobufCMessage *reply = NULL;
    rpc_status st = {0};
    int rc = rpc_client_unary(cl, RPC_STATUS, &req.base, timeout, &reply, &st);
    if (rc != MU_OK) {
        mu_error("mutual status: %s: %s: %s", cc.target, rpc_status_name(st.code), st.message);
        rpc_client_free(cl);
        return MU_EXIT_FAIL;
    }
    print((const Mutual__V1__StatusReply *)reply, json);
    protobuf_c_message_free_unpacked(reply, NULL);
    rpc_client_free(cl);
    return MU_EXIT_OK;
}
