/* cmd_charter.c - `mutual charter init|propose|sign|show|verify`: a federation's charter and
 * its changes, offline and file based (docs/governance.md). Proposals travel as files (e-mail,
 * a shared folder); a member's signing key is read from its own file and never written. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_charter.h"
#include "mu_file.h"

#define CMD "charter"

static void help(FILE *out)
{
    fprintf(out,
            "usage: mutual charter init --in CHARTER.yaml --out PROPOSAL\n"
            "       mutual charter propose --chain CHAIN --in CHARTER.yaml --out PROPOSAL\n"
            "       mutual charter sign --key KEY PROPOSAL\n"
            "       mutual charter show PROPOSAL [--chain CHAIN]\n"
            "       mutual charter verify --chain CHAIN [--add PROPOSAL]\n"
            "       mutual charter leave --chain CHAIN --key KEY --out NOTICE\n\n"
            "init     turns the founding charter (YAML, docs/governance.md) into an unsigned\n"
            "         proposal, version 1; every founding member must sign it.\n"
            "propose  makes the next version from an edited YAML charter: it points at the\n"
            "         chain's head and prints what it changes and which quorum of the head's\n"
            "         voting members must sign it.\n"
            "sign     adds the signature of the member whose signing key is in KEY (64 hex\n"
            "         digits, e.g. the org identity key `mutual certs identity` makes) to\n"
            "         PROPOSAL, rewriting it atomically; the key is only read.\n"
            "show     prints a proposal, its signatures, and with --chain what it changes\n"
            "         against its parent and whether it has its quorum.\n"
            "verify   checks the chain from genesis to head: every link, signature and quorum.\n"
            "         With --add, PROPOSAL must validly extend it (or, with no CHAIN file yet,\n"
            "         be a genesis signed by every member) and CHAIN is rewritten with it.\n"
            "leave    writes the signed leave notice of the member whose signing key is in KEY\n"
            "         (on the chain head's roster) for this federation; send it with\n"
            "         `mutual join --charter CHAIN --leave NOTICE`. Once the coordinator logs it,\n"
            "         the member is in no later cohort, and every org refuses one with it.\n\n"
            "Exit status 0 on success, 1 when a file is unreadable or a check fails (the first\n"
            "bad version and why), 2 on a usage or YAML error.\n");
}

static int fail(const mu_diag *d, int rc)
{
    fprintf(stderr, "mutual " CMD ": %s\n", d->msg[0] ? d->msg : mu_strerror(rc));
    return MU_EXIT_FAIL;
}

typedef struct {
    const char *in, *out, *chain, *key, *add, *file;
} opts;

static gv_signed *new_signed(void)
{
    gv_signed *s = calloc(1, sizeof *s);
    if (!s)
        fprintf(stderr, "mutual " CMD ": out of memory\n");
    return s;
}

static int write_new(const char *path, const gv_signed *s)
{
    mu_diag d = {{0}};
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "mutual " CMD ": %s exists; not overwritten\n", path);
        return MU_EXIT_FAIL;
    }
    int rc = gv_signed_save(path, s, &d);
    return rc ? fail(&d, rc) : MU_EXIT_OK;
}

static int do_init(const opts *o)
{
    if (!o->in || !o->out || o->chain || o->key || o->add || o->file)
        return cli_usage_error(CMD, "'init' takes --in CHARTER.yaml --out PROPOSAL");
    gv_signed *s = new_signed();
    mu_diag d = {{0}};
    if (!s)
        return MU_EXIT_FAIL;
    int rc = cli_charter_yaml(o->in, &s->charter, &d), ex = MU_EXIT_USAGE;
    if (rc)
        fprintf(stderr, "mutual " CMD ": %s\n", d.msg);
    else if ((ex = write_new(o->out, s)) == MU_EXIT_OK) {
        cli_charter_print(stdout, &s->charter);
        printf("wrote %s: every one of the %u founding members signs it (mutual charter sign)\n",
               o->out, s->charter.n_members);
    }
    free(s);
    return ex;
}

static int load_verified_chain(const char *path, gv_signed **chain, size_t *n)
{
    mu_diag d = {{0}}, why = {{0}};
    int rc = gv_chain_load(path, chain, n, &d);
    if (rc)
        return fail(&d, rc);
    rc = gv_chain_verify(*chain, *n, NULL, &why);
    if (rc) {
        free(*chain);
        *chain = NULL;
        mu_diag_set(&d, rc, "%s: %s", path, why.msg);
        return fail(&d, rc);
    }
    return MU_EXIT_OK;
}

static int do_propose(const opts *o)
{
    if (!o->in || !o->out || !o->chain || o->key || o->add || o->file)
        return cli_usage_error(CMD, "'propose' takes --chain CHAIN --in CHARTER.yaml --out "
                                    "PROPOSAL");
    gv_signed *chain = NULL, *s = new_signed();
    size_t n = 0;
    mu_diag d = {{0}};
    int ex = s ? load_verified_chain(o->chain, &chain, &n) : MU_EXIT_FAIL;
    if (ex == MU_EXIT_OK && cli_charter_yaml(o->in, &s->charter, &d) != MU_OK) {
        fprintf(stderr, "mutual " CMD ": %s\n", d.msg);
        ex = MU_EXIT_USAGE;
    }
    if (ex == MU_EXIT_OK) {
        const gv_charter *head = &chain[n - 1].charter;
        s->charter.version = head->version + 1;
        gv_charter_hash(head, s->charter.parent, NULL);
        if (strcmp(s->charter.federation, head->federation)) {
            fprintf(stderr, "mutual " CMD ": %s: federation '%s' is not the chain's '%s'\n", o->in,
                    s->charter.federation, head->federation);
            ex = MU_EXIT_USAGE;
        } else if (!gv_charter_diff(head, &s->charter)) {
            fprintf(stderr, "mutual " CMD ": %s changes nothing against version %llu\n", o->in,
                    (unsigned long long)head->version);
            ex = MU_EXIT_USAGE;
        } else if ((ex = write_new(o->out, s)) == MU_EXIT_OK) {
            cli_charter_print_diff(stdout, head, &s->charter);
            printf("wrote %s\n", o->out);
        }
    }
    free(chain);
    free(s);
    return ex;
}

static int do_sign(const opts *o)
{
    if (!o->key || !o->file || o->in || o->out || o->chain || o->add)
        return cli_usage_error(CMD, "'sign' takes --key KEY PROPOSAL");
    gv_signed *s = new_signed();
    if (!s)
        return MU_EXIT_FAIL;
    uint8_t sk[GV_SK_BYTES];
    mu_diag d = {{0}};
    int rc = gv_signed_load(o->file, s, &d);
    if (!rc)
        rc = gv_signing_key_load(o->key, sk, &d);
    if (!rc) {
        rc = gv_signed_sign(s, sk, &d);
        if (!rc)
            rc = gv_signed_save(o->file, s, &d);
        if (!rc) {
            printf("signed %s (version %llu) as ", o->file, (unsigned long long)s->charter.version);
            cli_hex_print(stdout, sk + 32, GV_PK_BYTES);
            printf("; %u signatures\n", s->n_sigs);
        }
        sodium_memzero(sk, sizeof sk);
    }
    free(s);
    return rc ? fail(&d, rc) : MU_EXIT_OK;
}

/* The signatures of s, named by `roster` where it knows the key. */
static void sigs_print(const gv_signed *s, const gv_charter *roster)
{
    printf("signatures   %u\n", s->n_sigs);
    for (uint32_t i = 0; i < s->n_sigs; i++) {
        const gv_member *m = gv_charter_member_by_key(roster, s->sigs[i].pk);
        printf("    %-20s ", m ? m->name : "(not on the roster)");
        cli_hex_print(stdout, s->sigs[i].pk, GV_PK_BYTES);
        printf("\n");
    }
}

static int do_show(const opts *o)
{
    if (!o->file || o->in || o->out || o->key || o->add)
        return cli_usage_error(CMD, "'show' takes PROPOSAL [--chain CHAIN]");
    gv_signed *s = new_signed(), *chain = NULL;
    size_t n = 0;
    mu_diag d = {{0}};
    int ex = s ? MU_EXIT_OK : MU_EXIT_FAIL, rc;
    if (ex == MU_EXIT_OK && (rc = gv_signed_load(o->file, s, &d)) != MU_OK)
        ex = fail(&d, rc);
    if (ex == MU_EXIT_OK && o->chain)
        ex = load_verified_chain(o->chain, &chain, &n);
    if (ex == MU_EXIT_OK) {
        const gv_charter *c = &s->charter;
        const gv_charter *parent =
            chain && c->version >= 2 && c->version - 2 < n ? &chain[c->version - 2].charter : NULL;
        cli_charter_print(stdout, c);
        sigs_print(s, parent ? parent : c);
        if (parent) {
            cli_charter_print_diff(stdout, parent, c);
            mu_diag why = {{0}};
            rc = gv_chain_check_link(parent, s, &why);
            printf("status: %s\n", rc ? why.msg : "valid (has its quorum)");
        } else if (c->version == 1) {
            printf("status: genesis, %u of %u founding members signed\n", gv_signed_count(s, c, 1),
                   c->n_members);
        }
    }
    free(chain);
    free(s);
    return ex;
}

static int do_verify(const opts *o)
{
    if (!o->chain || o->in || o->out || o->key || o->file)
        return cli_usage_error(CMD, "'verify' takes --chain CHAIN [--add PROPOSAL]");
    gv_signed *chain = NULL;
    size_t n = 0;
    mu_diag d = {{0}};
    int rc = MU_OK;
    if (!o->add || access(o->chain, F_OK) == 0)
        rc = gv_chain_load(o->chain, &chain, &n, &d);
    if (rc)
        return fail(&d, rc);
    if (o->add) {
        gv_signed *more = n < GV_CHAIN_MAX ? realloc(chain, (n + 1) * sizeof *chain) : NULL;
        if (!more) {
            free(chain);
            fprintf(stderr, "mutual " CMD ": %s: cannot add a version\n", o->chain);
            return MU_EXIT_FAIL;
        }
        chain = more;
        rc = gv_signed_load(o->add, &chain[n], &d);
        if (rc) {
            free(chain);
            return fail(&d, rc);
        }
        n++;
    }
    mu_diag why = {{0}};
    rc = gv_chain_verify(chain, n, NULL, &why);
    if (rc)
        mu_diag_set(&d, rc, "%s: %s", o->add ? o->add : o->chain, why.msg);
    else if (o->add)
        rc = gv_chain_save(o->chain, chain, n, &d);
    if (!rc) {
        uint8_t h[GV_HASH_BYTES];
        gv_charter_hash(&chain[n - 1].charter, h, NULL);
        printf("%s: charter chain of %s valid, versions 1..%zu, head ", o->chain,
               chain[0].charter.federation, n);
        cli_hex_print(stdout, h, GV_HASH_BYTES);
        printf("\n");
    }
    free(chain);
    return rc ? fail(&d, rc) : MU_EXIT_OK;
}

/* The member whose key is in o->key leaves: its notice names the federation (the genesis
 * hash, the audit log's id) and the member, signed with its key. */
static int do_leave(const opts *o)
{
    if (!o->chain || !o->key || !o->out || o->in || o->add || o->file)
        return cli_usage_error(CMD, "'leave' takes --chain CHAIN --key KEY --out NOTICE");
    gv_signed *chain = NULL;
    size_t n = 0, len = 0;
    uint8_t sk[GV_SK_BYTES], *b = NULL;
    gv_leave l;
    memset(&l, 0, sizeof l);
    mu_diag d = {{0}};
    int ex = load_verified_chain(o->chain, &chain, &n), rc = MU_OK;
    if (ex != MU_EXIT_OK)
        return ex;
    const gv_charter *head = &chain[n - 1].charter;
    if ((rc = gv_signing_key_load(o->key, sk, &d)) == MU_OK) {
        const gv_member *m = gv_charter_member_by_key(head, sk + 32);
        if (!m)
            rc = mu_diag_set(&d, MU_ERR_INVALID,
                             "%s: not the signing key of a member of charter version %llu", o->key,
                             (unsigned long long)head->version);
        else {
            snprintf(l.name, sizeof l.name, "%s", m->name);
            gv_charter_hash(&chain[0].charter, l.log_id, NULL);
            gv_leave_sign(l.sig, l.log_id, l.name, sk);
        }
        sodium_memzero(sk, sizeof sk);
    }
    if (rc == MU_OK && access(o->out, F_OK) == 0)
        rc = mu_diag_set(&d, MU_ERR_STATE, "%s exists; not overwritten", o->out);
    if (rc == MU_OK && (rc = gv_leave_encode(&l, &b, &len, &d)) == MU_OK)
        rc = mu_write_file_atomic(o->out, b, len, &d);
    if (rc == MU_OK)
        printf("wrote %s: the leave notice of '%s' from federation %s\n", o->out, l.name,
               head->federation);
    free(b);
    free(chain);
    return rc ? fail(&d, rc) : MU_EXIT_OK;
}

int cmd_charter(int argc, char **argv)
{
    static const struct option longopts[] = {{"in", required_argument, NULL, 'i'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"chain", required_argument, NULL, 'c'},
                                             {"key", required_argument, NULL, 'k'},
                                             {"add", required_argument, NULL, 'a'},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? MU_EXIT_USAGE : MU_EXIT_OK;
    }
    const char *sub = argv[1];
    opts o = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, MU_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        if (cli_common_opt(c))
            continue;
        switch (c) {
        case 'h':
            help(stdout);
            return MU_EXIT_OK;
        case 'i':
            o.in = optarg;
            break;
        case 'o':
            o.out = optarg;
            break;
        case 'c':
            o.chain = optarg;
            break;
        case 'k':
            o.key = optarg;
            break;
        case 'a':
            o.add = optarg;
            break;
        default:
            return cli_usage_error(CMD, "unknown option or missing argument");
        }
    }
    if (optind + 1 < argc - 1)
        return cli_usage_error(CMD, "one file at most, got '%s' too", argv[optind + 2]);
    o.file = optind < argc - 1 ? argv[optind + 1] : NULL;
    if (sodium_init() < 0) {
        fprintf(stderr, "mutual " CMD ": libsodium failed to initialise\n");
        return MU_EXIT_FAIL;
    }
    if (!strcmp(sub, "init"))
        return do_init(&o);
    if (!strcmp(sub, "propose"))
        return do_propose(&o);
    if (!strcmp(sub, "sign"))
        return do_sign(&o);
    if (!strcmp(sub, "show"))
        return do_show(&o);
    if (!strcmp(sub, "verify"))
        return do_verify(&o);
    if (!strcmp(sub, "leave"))
        return do_leave(&o);
    return cli_usage_error(
        CMD, "unknown subcommand '%s' (init, propose, sign, show, verify, leave)", sub);
}
