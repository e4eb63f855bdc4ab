/* cmd_release.c - `mutual release verify`: anyone holding a release bundle (a member's board,
 * an auditor) checks it offline against the federation's genesis charter or charter chain,
 * with no server: the chain from genesis, the audit log's signatures, links and rules, the
 * release quorum of the bundle's round, and the adapter and state hashes against the log
 * (ho_bundle_verify, docs/governance.md). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_charter.h"
#include "gv_store.h"
#include "ho_bundle.h"
#include "mu_file.h"
#include "wi_bytes.h"
#include "wi_json.h"

#define CMD "release"

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual release verify --bundle FILE --charter GENESIS_OR_CHAIN [--json]\n\n"
            "Verifies a release bundle (the file serve offers and every org keeps as\n"
            "IDENTITY_KEY.release-RRRRRR.bundle: checkpoint, audit log, charter chain) offline,\n"
            "against the federation's genesis charter (the v1.charter every founder signed) or\n"
            "a charter chain you trust (mutual charter verify --add). In order, the first\n"
            "failing check is named:\n"
            "  chain    your chain verifies from genesis; the bundle's chain verifies and\n"
            "           agrees with yours version by version (another federation's is\n"
            "           refused); a longer bundle chain that extends yours is used\n"
            "  log      every audit-log entry: index, link to the entry before, the signature\n"
            "           of the coordinator the charter in force names, and the rules\n"
            "  release  the log releases the bundle's round with the members' release quorum\n"
            "  adapter  the checkpoint's global adapter is the one the log names (SHA-256)\n"
            "  state    the checkpoint's whole state (optimizer state, round counter, metrics,\n"
            "           orgs) hashes to the state hash of that round's entry\n\n"
            "Prints the federation id, the round, the adapter hash and who released it;\n"
            "--json prints one JSON object instead (\"ok\": false and \"error\" on failure).\n"
            "Exit status 0 when the bundle verifies, 1 when it does not or a file cannot be\n"
            "read, 2 on a usage error.\n");
}

/* The trust anchor: a chain file, or a genesis proposal (a chain of one). */
static int load_anchor(const char *path, gv_signed **chain, size_t *n, mu_diag *d)
{
    mu_diag cd = {{0}};
    int rc = gv_chain_load(path, chain, n, &cd);
    if (rc != MU_ERR_FORMAT && rc != MU_ERR_UNSUPPORTED) {
        if (rc)
            mu_diag_set(d, rc, "%s", cd.msg);
        return rc;
    }
    gv_signed *g = malloc(sizeof *g);
    if (!g)
        return mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
    mu_diag sd = {{0}};
    rc = gv_signed_load(path, g, &sd);
    if (rc == MU_OK && g->charter.version != 1)
        rc = mu_diag_set(&sd, MU_ERR_INVALID, "%s: charter version %llu, not the genesis", path,
                         (unsigned long long)g->charter.version);
    if (rc) {
        free(g);
        return mu_diag_set(d, rc, "%s is neither a charter chain (%s) nor a genesis charter (%s)",
                           path, cd.msg, sd.msg);
    }
    *chain = g;
    *n = 1;
    return MU_OK;
}

/* When the bundle's chain verifies and extends ours (each of our versions is its version), it
 * replaces ours: every version past ours was signed by its parent's quorum. */
static void maybe_extend(const ho_bundle *b, gv_signed **chain, size_t *n)
{
    gv_signed *bc = NULL;
    size_t nb = 0;
    if (gv_chain_decode(&bc, &nb, b->chain, b->chain_len, NULL) != MU_OK || nb <= *n ||
        gv_chain_verify(bc, nb, NULL, NULL) != MU_OK) {
        free(bc);
        return;
    }
    for (size_t i = 0; i < *n; i++) {
        uint8_t h1[GV_HASH_BYTES], h2[GV_HASH_BYTES];
        if (gv_charter_hash(&bc[i].charter, h1, NULL) ||
            gv_charter_hash(&(*chain)[i].charter, h2, NULL) || memcmp(h1, h2, GV_HASH_BYTES)) {
            free(bc);
            return;
        }
    }
    free(*chain);
    *chain = bc;
    *n = nb;
}

typedef struct {
    uint8_t global[GV_HASH_BYTES], state[GV_HASH_BYTES];
    size_t n_entries;
    uint32_t n_signers;
    const char *signer[GV_MEMBERS_MAX];
} summary;

/* What a verified bundle's log says about its round: the hashes and who released it. */
static int summarise(const ho_bundle *b, const gv_signed *chain, size_t n, summary *s, mu_diag *d)
{
    gv_log *log = NULL;
    gv_entry *e = malloc(sizeof *e);
    int rc = e ? gv_log_decode(&log, b->log, b->log_len, d) : MU_ERR_NOMEM;
    for (size_t i = 0; rc == MU_OK && i < gv_log_len(log); i++) {
        if (gv_log_entry(log, i, e) != MU_OK || e->round != b->round)
            continue;
        if (e->kind == GV_ENTRY_ROUND) {
            memcpy(s->global, e->global_hash, GV_HASH_BYTES);
            memcpy(s->state, e->state_hash, GV_HASH_BYTES);
        } else if (e->kind == GV_ENTRY_RELEASE) {
            s->n_signers = 0;
            for (uint32_t k = 0; k < e->n_sigs; k++) {
                const gv_member *m = NULL;
                for (size_t v = n; v-- > 0 && !m;)
                    m = gv_charter_member_by_key(&chain[v].charter, e->sigs[k].pk);
                s->signer[s->n_signers++] = m ? m->name : "?";
            }
        }
    }
    if (rc == MU_OK)
        s->n_entries = gv_log_len(log);
    gv_log_free(log);
    free(e);
    return rc == MU_ERR_NOMEM ? mu_diag_set(d, rc, "out of memory") : rc;
}

static void print_text(const char *bundle, const char *anchor, const ho_bundle *b,
                       const gv_signed *chain, size_t n, const summary *s)
{
    printf("%s: release bundle of federation '%s' verifies against %s\n", bundle,
           chain[0].charter.federation, anchor);
    printf("  round %llu, charter versions 1..%zu, audit log %zu entries\n",
           (unsigned long long)b->round, n, s->n_entries);
    printf("  adapter sha256 ");
    cli_hex_print(stdout, s->global, GV_HASH_BYTES);
    printf("\n  state hash     ");
    cli_hex_print(stdout, s->state, GV_HASH_BYTES);
    printf("\n  released by");
    for (uint32_t i = 0; i < s->n_signers; i++)
        printf("%s %s", i ? "," : "", s->signer[i]);
    printf(" (%u member signatures)\n", s->n_signers);
}

static void hex_field(wi_str *j, const char *key, const uint8_t *b)
{
    char hex[2 * GV_HASH_BYTES + 1];
    wi_hex_encode(hex, sizeof hex, b, GV_HASH_BYTES);
    wi_str_printf(j, ",\"%s\":\"%s\"", key, hex);
}

static void print_json(const char *bundle, const ho_bundle *b, const gv_signed *chain, size_t n,
                       const summary *s, const char *error)
{
    wi_str j;
    wi_str_init(&j);
    wi_str_printf(&j, "{\"ok\":%s,\"bundle\":", error ? "false" : "true");
    wi_str_json_string(&j, bundle);
    if (error) {
        wi_str_printf(&j, ",\"error\":");
        wi_str_json_string(&j, error);
    } else {
        wi_str_printf(&j, ",\"federation\":");
        wi_str_json_string(&j, chain[0].charter.federation);
        wi_str_printf(&j, ",\"round\":%llu,\"charter_versions\":%zu,\"log_entries\":%zu",
                      (unsigned long long)b->round, n, s->n_entries);
        hex_field(&j, "adapter_sha256", s->global);
        hex_field(&j, "state_hash", s->state);
        wi_str_printf(&j, ",\"release_signers\":[");
        for (uint32_t i = 0; i < s->n_signers; i++) {
            wi_str_printf(&j, i ? "," : "");
            wi_str_json_string(&j, s->signer[i]);
        }
        wi_str_printf(&j, "]");
    }
    wi_str_printf(&j, "}");
    if (wi_str_ok(&j) == MU_OK)
        printf("%s\n", j.s);
    wi_str_deinit(&j);
}

static int do_verify(const char *bundle, const char *anchor, int json)
{
    char *bytes = NULL;
    size_t len = 0, n = 0;
    gv_signed *chain = NULL;
    mu_diag d = {{0}}, why = {{0}};
    ho_bundle b;
    summary s;
    memset(&s, 0, sizeof s);
    memset(&b, 0, sizeof b);
    const char *tmp = getenv("TMPDIR");
    int rc = mu_read_file(bundle, HO_BUNDLE_MAX, &bytes, &len, &d);
    if (rc == MU_OK)
        rc = load_anchor(anchor, &chain, &n, &d);
    if (rc == MU_OK && (rc = gv_chain_verify(chain, n, NULL, &why)) != MU_OK)
        mu_diag_set(&d, rc, "chain: %s: %s", anchor, why.msg);
    if (rc == MU_OK && (rc = ho_bundle_decode(&b, (const uint8_t *)bytes, len, &why)) != MU_OK)
        mu_diag_set(&d, rc, "%s", why.msg);
    if (rc == MU_OK) {
        maybe_extend(&b, &chain, &n);
        rc = ho_bundle_verify((const uint8_t *)bytes, len, chain, n, tmp && tmp[0] ? tmp : "/tmp",
                              NULL, &why);
        if (rc)
            mu_diag_set(&d, rc, "%s", why.msg);
    }
    if (rc == MU_OK)
        rc = summarise(&b, chain, n, &s, &d);
    if (rc) {
        fprintf(stderr, "mutual " CMD ": %s does not verify: %s\n", bundle,
                d.msg[0] ? d.msg : mu_strerror(rc));
        if (json)
            print_json(bundle, &b, chain, n, &s, d.msg[0] ? d.msg : mu_strerror(rc));
    } else if (json) {
        print_json(bundle, &b, chain, n, &s, NULL);
    } else {
        print_text(bundle, anchor, &b, chain, n, &s);
    }
    free(chain);
    free(bytes);
    return rc ? MU_EXIT_FAIL : MU_EXIT_OK;
}

int cmd_release(int argc, char **argv)
{
    static const struct option longopts[] = {{"bundle", required_argument, NULL, 'b'},
                                             {"charter", required_argument, NULL, 'c'},
                                             {"json", no_argument, NULL, 'j'},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? MU_EXIT_USAGE : MU_EXIT_OK;
    }
    const char *sub = argv[1], *bundle = NULL, *anchor = NULL;
    int json = 0, c;
    optind = 1;
    while ((c = cli_next_opt(argc - 1, argv + 1, MU_CLI_COMMON_SHORTOPTS, longopts, help)) != -1) {
        switch (c) {
        case CLI_OPT_HELP:
            return MU_EXIT_OK;
        case 'b':
            bundle = optarg;
            break;
        case 'c':
            anchor = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            return cli_usage_error(CMD, "unknown option or missing argument");
        }
    }
    if (optind < argc - 1)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind + 1]);
    if (strcmp(sub, "verify"))
        return cli_usage_error(CMD, "unknown subcommand '%s' (verify)", sub);
    if (!bundle || !anchor)
        return cli_usage_error(CMD, "'verify' takes --bundle FILE --charter GENESIS_OR_CHAIN");
    if (sodium_init() < 0) {
        fprintf(stderr, "mutual " CMD ": libsodium failed to initialise\n");
        return MU_EXIT_FAIL;
    }
    return do_verify(bundle, anchor, json);
}
