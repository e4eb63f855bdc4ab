/* cmd_audit.c - `mutual audit verify|show|witness|check`: anyone holding a federation's audit
 * log and its charter chain checks every signature, hash link and rule (docs/governance.md)
 * or reads the log as a table or JSON lines; a member countersigns a head and later checks
 * that the log it is shown extends it. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cmd_charter.h"
#include "wi_bytes.h"
#include "wi_json.h"

#define CMD "audit"

static void help(FILE *out)
{
    fprintf(out, "usage: mutual audit verify --log FILE --charter CHAIN\n"
                 "       mutual audit show --log FILE [--json]\n"
                 "       mutual audit witness --log FILE --charter CHAIN --key KEY --out HEAD\n"
                 "       mutual audit check --log FILE --witness HEAD\n\n"
                 "verify  checks the whole log against the charter chain (mutual charter verify):\n"
                 "        each entry's index, the hash of the entry before it, the signature of\n"
                 "        the coordinator the charter in force names, and the rules (charters\n"
                 "        adopted in order, admissions on the roster, each round's config hash,\n"
                 "        cohort and minimum size, each release's member quorum, each leave\n"
                 "        signed by the member). Prints the head to countersign, or the first\n"
                 "        bad entry and why.\n"
                 "show    prints the log as a table, or with --json one JSON object per entry.\n"
                 "witness verifies the log as verify does, then countersigns its head with the\n"
                 "        member's signing key KEY into HEAD (keep it).\n"
                 "check   checks that the log now shown extends a head countersigned before:\n"
                 "        exit 1 on a fork (equivocation), a shortened log or a bad HEAD.\n\n"
                 "Exit status 0 when the log verifies (or is shown), 1 when it does not or a\n"
                 "file cannot be read, 2 on a usage error.\n");
}

static int fail(const mu_diag *d, int rc)
{
    fprintf(stderr, "mutual " CMD ": %s\n", d->msg[0] ? d->msg : mu_strerror(rc));
    return MU_EXIT_FAIL;
}

static int do_verify(const char *log_path, const char *chain_path)
{
    gv_log *log = NULL;
    gv_signed *chain = NULL;
    size_t n = 0, bad = 0;
    mu_diag d = {{0}}, why = {{0}};
    int rc = gv_chain_load(chain_path, &chain, &n, &d);
    if (!rc)
        rc = gv_log_load(log_path, &log, &d);
    if (!rc && (rc = gv_log_verify(log, chain, n, &bad, &why)) != MU_OK)
        mu_diag_set(&d, rc, "%s: %s", bad == SIZE_MAX ? chain_path : log_path, why.msg);
    if (!rc) {
        uint8_t head[GV_HASH_BYTES];
        gv_log_entry_hash(log, gv_log_len(log) - 1, head);
        printf("%s: %zu entries valid against %s; head entry %zu ", log_path, gv_log_len(log),
               chain_path, gv_log_len(log) - 1);
        cli_hex_print(stdout, head, GV_HASH_BYTES);
        printf("\n");
    }
    gv_log_free(log);
    free(chain);
    return rc ? fail(&d, rc) : MU_EXIT_OK;
}

static int do_witness(const char *log_path, const char *chain_path, const char *key,
                      const char *out)
{
    int ex = do_verify(log_path, chain_path);
    if (ex != MU_EXIT_OK)
        return ex;
    gv_log *log = NULL;
    gv_witness w;
    uint8_t sk[GV_SK_BYTES];
    mu_diag d = {{0}};
    int rc = gv_log_load(log_path, &log, &d);
    if (!rc && (rc = gv_signing_key_load(key, sk, &d)) == MU_OK) {
        rc = gv_witness_sign(&w, log, sk);
        sodium_memzero(sk, sizeof sk);
        if (rc)
            mu_diag_set(&d, rc, "%s: cannot countersign (%s)", log_path, mu_strerror(rc));
        else
            rc = gv_witness_save(out, &w, &d);
    }
    if (!rc)
        printf("countersigned entry %llu into %s\n", (unsigned long long)w.index, out);
    gv_log_free(log);
    return rc ? fail(&d, rc) : MU_EXIT_OK;
}

static int do_check(const char *log_path, const char *head)
{
    gv_log *log = NULL;
    gv_witness w;
    mu_diag d = {{0}}, why = {{0}};
    int rc = gv_witness_load(head, &w, &d);
    if (!rc)
        rc = gv_log_load(log_path, &log, &d);
    if (!rc && (rc = gv_witness_check(&w, log, &why)) != MU_OK)
        mu_diag_set(&d, rc, "%s against %s: %s", log_path, head, why.msg);
    if (!rc)
        printf("%s extends the head countersigned in %s (entry %llu)\n", log_path, head,
               (unsigned long long)w.index);
    gv_log_free(log);
    return rc ? fail(&d, rc) : MU_EXIT_OK;
}

static void hex_field(wi_str *s, const char *key, const uint8_t *b, size_t n)
{
    char hex[2 * 64 + 1];
    wi_hex_encode(hex, sizeof hex, b, n);
    wi_str_printf(s, ",\"%s\":\"%s\"", key, hex);
}

/* One entry as JSON (one line). */
static void entry_json(wi_str *s, const gv_entry *e, const uint8_t hash[GV_HASH_BYTES])
{
    wi_str_printf(s, "{\"index\":%llu,\"time\":%llu,\"kind\":\"%s\"", (unsigned long long)e->index,
                  (unsigned long long)e->time, gv_entry_kind_name(e->kind));
    hex_field(s, "hash", hash, GV_HASH_BYTES);
    hex_field(s, "prev", e->prev, GV_HASH_BYTES);
    switch (e->kind) {
    case GV_ENTRY_CHARTER:
        wi_str_printf(s, ",\"charter_version\":%llu", (unsigned long long)e->charter_version);
        hex_field(s, "charter_hash", e->charter_hash, GV_HASH_BYTES);
        break;
    case GV_ENTRY_ADMISSION:
    case GV_ENTRY_LEAVE:
        wi_str_printf(s, ",\"member\":");
        wi_str_json_string(s, e->member);
        if (e->kind == GV_ENTRY_ADMISSION)
            hex_field(s, "member_key", e->member_pk, GV_PK_BYTES);
        else /* the member's own signature over (log id, name): audit verify checks it */
            hex_field(s, "member_signature", e->member_sig, GV_SIG_BYTES);
        break;
    case GV_ENTRY_ROUND:
        wi_str_printf(s, ",\"round\":%llu,\"cohort\":[", (unsigned long long)e->round);
        for (uint32_t i = 0; i < e->n_cohort; i++) {
            wi_str_printf(s, i ? "," : "");
            wi_str_json_string(s, e->cohort[i]);
        }
        wi_str_printf(s, "],\"dropped\":[");
        for (uint32_t i = 0; i < e->n_dropped; i++) {
            wi_str_printf(s, "%s{\"org\":", i ? "," : "");
            wi_str_json_string(s, e->dropped[i].name);
            wi_str_printf(s, ",\"stage\":%u}", e->dropped[i].stage);
        }
        wi_str_printf(s, "]");
        hex_field(s, "config_hash", e->config_hash, GV_HASH_BYTES);
        hex_field(s, "aggregate_hash", e->aggregate_hash, GV_HASH_BYTES);
        hex_field(s, "global_hash", e->global_hash, GV_HASH_BYTES);
        if (e->format >= GV_ENTRY_FORMAT)
            hex_field(s, "state_hash", e->state_hash, GV_HASH_BYTES);
        wi_str_printf(s, ",\"metrics\":");
        wi_str_json_string(s, e->metrics);
        break;
    case GV_ENTRY_RELEASE:
        wi_str_printf(s, ",\"round\":%llu,\"signatures\":%u", (unsigned long long)e->round,
                      e->n_sigs);
        hex_field(s, "global_hash", e->global_hash, GV_HASH_BYTES);
        break;
    case GV_ENTRY_RESTART:
        wi_str_printf(s, ",\"round\":%llu,\"instance\":%llu", (unsigned long long)e->round,
                      (unsigned long long)e->instance);
        break;
    }
    wi_str_printf(s, "}");
}

/* One entry as a table row's last column. */
static void entry_text(FILE *out, const gv_entry *e)
{
    switch (e->kind) {
    case GV_ENTRY_CHARTER:
        fprintf(out, "charter version %llu ", (unsigned long long)e->charter_version);
        cli_hex_print(out, e->charter_hash, 8);
        fprintf(out, "...");
        break;
    case GV_ENTRY_ADMISSION:
    case GV_ENTRY_LEAVE:
        fprintf(out, "%s", e->member);
        break;
    case GV_ENTRY_ROUND:
        fprintf(out, "round %llu, cohort", (unsigned long long)e->round);
        for (uint32_t i = 0; i < e->n_cohort; i++)
            fprintf(out, " %s", e->cohort[i]);
        for (uint32_t i = 0; i < e->n_dropped; i++)
            fprintf(out, "%s%s@%u", i ? " " : ", dropped ", e->dropped[i].name,
                    e->dropped[i].stage);
        fprintf(out, ", global ");
        cli_hex_print(out, e->global_hash, 8);
        if (e->format >= GV_ENTRY_FORMAT) {
            fprintf(out, "..., state ");
            cli_hex_print(out, e->state_hash, 8);
        }
        fprintf(out, "... %s", e->metrics);
        break;
    case GV_ENTRY_RELEASE:
        fprintf(out, "round %llu, %u member signatures", (unsigned long long)e->round, e->n_sigs);
        break;
    case GV_ENTRY_RESTART:
        fprintf(out, "from round %llu, instance %llu", (unsigned long long)e->round,
                (unsigned long long)e->instance);
        break;
    }
    fprintf(out, "\n");
}

static int do_show(const char *log_path, int json)
{
    gv_log *log = NULL;
    mu_diag d = {{0}};
    int rc = gv_log_load(log_path, &log, &d);
    gv_entry *e = rc ? NULL : malloc(sizeof *e);
    if (!rc && !e)
        rc = mu_diag_set(&d, MU_ERR_NOMEM, "out of memory");
    if (!rc && !json)
        printf("%-6s %-20s %-10s %-16s %s\n", "index", "time (UTC)", "kind", "hash", "what");
    for (size_t i = 0; !rc && i < gv_log_len(log); i++) {
        uint8_t h[GV_HASH_BYTES];
        gv_log_entry(log, i, e);
        gv_log_entry_hash(log, i, h);
        if (json) {
            wi_str s;
            wi_str_init(&s);
            entry_json(&s, e, h);
            if (wi_str_ok(&s) == MU_OK)
                printf("%s\n", s.s);
            else
                rc = mu_diag_set(&d, MU_ERR_NOMEM, "out of memory");
            wi_str_deinit(&s);
            continue;
        }
        char when[32] = "-";
        time_t t = (time_t)e->time;
        struct tm tm;
        if (e->time && gmtime_r(&t, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%-6zu %-20s %-10s ", i, when, gv_entry_kind_name(e->kind));
        cli_hex_print(stdout, h, 8);
        printf(" ");
        entry_text(stdout, e);
    }
    free(e);
    gv_log_free(log);
    return rc ? fail(&d, rc) : MU_EXIT_OK;
}

int cmd_audit(int argc, char **argv)
{
    static const struct option longopts[] = {{"log", required_argument, NULL, 'l'},
                                             {"charter", required_argument, NULL, 'c'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"key", required_argument, NULL, 'k'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"witness", required_argument, NULL, 'w'},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? MU_EXIT_USAGE : MU_EXIT_OK;
    }
    const char *sub = argv[1], *log = NULL, *chain = NULL, *key = NULL, *out = NULL, *head = NULL;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, MU_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        if (cli_common_opt(c))
            continue;
        switch (c) {
        case 'h':
            help(stdout);
            return MU_EXIT_OK;
        case 'l':
            log = optarg;
            break;
        case 'c':
            chain = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'k':
            key = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'w':
            head = optarg;
            break;
        default:
            return cli_usage_error(CMD, "unknown option or missing argument");
        }
    }
    if (optind < argc - 1)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind + 1]);
    if (sodium_init() < 0) {
        fprintf(stderr, "mutual " CMD ": libsodium failed to initialise\n");
        return MU_EXIT_FAIL;
    }
    int extra = key || out || head;
    if (!strcmp(sub, "witness")) {
        if (!log || !chain || !key || !out || head || json)
            return cli_usage_error(CMD, "'witness' takes --log FILE --charter CHAIN --key KEY "
                                        "--out HEAD");
        return do_witness(log, chain, key, out);
    }
    if (!strcmp(sub, "check")) {
        if (!log || !head || chain || key || out || json)
            return cli_usage_error(CMD, "'check' takes --log FILE --witness HEAD");
        return do_check(log, head);
    }
    if (!strcmp(sub, "verify")) {
        if (!log || !chain || json || extra)
            return cli_usage_error(CMD, "'verify' takes --log FILE --charter CHAIN");
        return do_verify(log, chain);
    }
    if (!strcmp(sub, "show")) {
        if (!log || chain || extra)
            return cli_usage_error(CMD, "'show' takes --log FILE [--json]");
        return do_show(log, json);
    }
    return cli_usage_error(CMD, "unknown subcommand '%s' (verify, show, witness, check)", sub);
}
