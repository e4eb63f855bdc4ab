/* cmd_init.c - `mutual init coordinator|org DIR`: a working folder for one side of a
 * federation (config, keys, certificates or a certificate request), so that a federation on
 * several machines is a handful of commands (docs/quickstart.md). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cl_participant.h"
#include "cli.h"
#include "co_config.h"
#include "mu_addr.h"
#include "mu_log.h"
#include "nd_orgcfg.h"
#include "rpc_certs.h"
#include "tr_hf.h"

#define MAX_HOSTS   30
#define PATH_CAP    4096
#define DEFAULT_SEQ 128 /* the coordinator table's train.seq default */

static void help(FILE *out)
{
    fprintf(
        out,
        "usage: mutual init coordinator DIR [--name FEDERATION] [--server HOST]...\n"
        "                   [--listen ADDR] [--model DIR] [--rounds N] [--min-orgs N]\n"
        "                   [--force]\n"
        "       mutual init org DIR --coordinator HOST:PORT [--name ORG] [--model DIR]\n"
        "                   [--force]\n\n"
        "Writes a working folder for one side of a federation (docs/quickstart.md).\n\n"
        "coordinator  DIR/coordinator.yaml (for mutual serve), the federation CA\n"
        "       DIR/certs/ca.key and ca.crt, the coordinator's server certificate\n"
        "       DIR/certs/coordinator.crt for localhost, 127.0.0.1 and each --server HOST\n"
        "       (the names orgs dial), and an operator certificate DIR/certs/operator.crt\n"
        "       (for mutual status). Any org whose request you sign (mutual certs sign\n"
        "       --dir DIR/certs --csr FILE) may join; its identity key is pinned when it\n"
        "       first registers.\n"
        "org    DIR/org.yaml (for mutual join), the org's Ed25519 identity key\n"
        "       DIR/keys/ORG.ed25519 (its public key is printed), its TLS key\n"
        "       DIR/certs/ORG.key and a certificate request DIR/certs/ORG.csr: send only\n"
        "       the .csr to the operator, and put the ORG.crt and ca.crt you get back in\n"
        "       DIR/certs/. DIR/member.yaml is the org's line of the members' roster\n"
        "       (name and identity key): the members exchange these lines among themselves\n"
        "       (not through the coordinator) and each keeps the whole roster as\n"
        "       DIR/members.yaml, the cohorts it will aggregate in. Import the org's data\n"
        "       to DIR/data/train.h5 (mutual data import).\n\n"
        "Options:\n"
        "  --name NAME          the federation's name, or the org's (its certificate CN);\n"
        "                       default: the last component of DIR\n"
        "  --server HOST        coordinator: a DNS name or IP address orgs dial (repeatable)\n"
        "  --listen ADDR        coordinator: server.listen (default 0.0.0.0:7443)\n"
        "  --coordinator ADDR   org: the coordinator's HOST:PORT (required)\n"
        "  --model DIR          the base model folder (config.json + model.safetensors);\n"
        "                       written as an absolute path (default: DIR/model, to fill)\n"
        "  --rounds N           coordinator: federation.rounds (default 10; 0 = until stopped)\n"
        "  --min-orgs N         coordinator: cohort.min_orgs (default %u: orgs take part\n"
        "                       only in cohorts of at least %u)\n"
        "  --force              write into a DIR that is not empty (files init writes must\n"
        "                       still not exist: nothing is ever overwritten)\n\n"
        "Keys are written with mode 0600 and never printed. Exit status 0 on success,\n"
        "1 on failure, 2 on a usage error (also: DIR is not empty without --force).\n",
        CL_MIN_COHORT, CL_MIN_COHORT);
}

typedef struct {
    const char *dir, *name, *listen, *coordinator, *model;
    const char *hosts[MAX_HOSTS];
    size_t n_hosts;
    long rounds, min_orgs;
    int force;
    char model_abs[PATH_CAP]; /* the model folder, absolute; "" = DIR/model */
    int seq;                  /* train.seq for the coordinator */
} init_opts;

/* A string init writes into YAML between double quotes: nothing that needs escaping. */
static int yaml_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' || *s == 0x7f)
            return 0;
    return 1;
}

/* 1 if DIR does not exist or is an empty folder, 0 if it holds something, -1 on error. */
static int dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 1 : -1;
    int empty = 1;
    struct dirent *e;
    while (empty && (e = readdir(d)))
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

/* mkdir DIR/SUB (SUB may be ""), mode `mode`, unless it exists. */
static int make_dir(const char *dir, const char *sub, mode_t mode)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s%s%s", dir, *sub ? "/" : "", sub);
    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        fprintf(stderr, "mutual init: %s: cannot create the folder: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes DIR/NAME, which must not exist yet (mode 0644), from a printf format. */
static int write_new(const char *dir, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int write_new(const char *dir, const char *name, const char *fmt, ...)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "mutual init: %s: %s\n", path,
                errno == EEXIST ? "exists already; not overwritten" : strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    int ok = vfprintf(f, fmt, ap) >= 0;
    va_end(ap);
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        fprintf(stderr, "mutual init: %s: cannot write\n", path);
        unlink(path);
        return -1;
    }
    return 0;
}

/* With --force: refuses (exit 1) before anything is written when one of the files init
 * would write exists already, so a refused init leaves DIR as it was. `names` ends with NULL;
 * "%s" in a name is the org's name. */
static int none_exist(const init_opts *o, const char *const *names)
{
    for (; *names; names++) {
        char rel[512], path[PATH_CAP];
        snprintf(rel, sizeof rel, *names, o->name);
        snprintf(path, sizeof path, "%s/%s", o->dir, rel);
        if (access(path, F_OK) == 0) {
            fprintf(stderr, "mutual init: %s: exists already; not overwritten (nothing written)\n",
                    path);
            return -1;
        }
    }
    return 0;
}

static int diag_fail(int rc, const mu_diag *d)
{
    fprintf(stderr, "mutual init: %s\n", d->msg[0] ? d->msg : mu_strerror(rc));
    return MU_EXIT_FAIL;
}

/* --model: made absolute (so the config works wherever DIR moves relative to it), and its
 * config.json read so the coordinator's train.seq fits the model's context. */
static int model_resolve(init_opts *o)
{
    o->seq = DEFAULT_SEQ;
    if (!o->model)
        return MU_EXIT_OK;
    if (!realpath(o->model, o->model_abs)) {
        fprintf(stderr, "mutual init: --model %s: %s\n", o->model, strerror(errno));
        return MU_EXIT_USAGE;
    }
    if (strlen(o->model_abs) >= CO_PATH_MAX)
        return cli_usage_error("init", "--model path '%s' is longer than %d bytes", o->model_abs,
                               CO_PATH_MAX - 1);
    if (!yaml_safe(o->model_abs))
        return cli_usage_error("init",
                               "--model '%s': a path with quotes, backslashes or "
                               "control characters cannot go into the config",
                               o->model_abs);
    tr_config mc;
    mu_diag d = {{0}};
    int rc = tr_hf_config_load(o->model_abs, &mc, &d);
    if (rc != MU_OK) {
        fprintf(stderr, "mutual init: --model: %s\n", d.msg[0] ? d.msg : mu_strerror(rc));
        return MU_EXIT_USAGE;
    }
    if (mc.max_pos > 0 && mc.max_pos < o->seq)
        o->seq = mc.max_pos;
    return MU_EXIT_OK;
}

/* The federation's identities in DIR/certs: CA, coordinator (server), operator. */
static int coordinator_certs(const init_opts *o, const char *certs)
{
    const char *hosts[MAX_HOSTS + 2] = {"localhost", "127.0.0.1"};
    size_t n = 2;
    for (size_t i = 0; i < o->n_hosts; i++)
        if (strcmp(o->hosts[i], "localhost") && strcmp(o->hosts[i], "127.0.0.1"))
            hosts[n++] = o->hosts[i];
    mu_diag d = {{0}};
    char ca_name[300];
    snprintf(ca_name, sizeof ca_name, "%s federation CA", o->name);
    int rc = rpc_certs_init(certs, ca_name, 0, &d);
    if (rc == MU_OK)
        rc = rpc_certs_issue(certs, "coordinator", hosts, n, 0, &d);
    if (rc == MU_OK)
        rc = rpc_certs_issue_operator(certs, "operator", 0, &d);
    if (rc != MU_OK)
        return rc == MU_ERR_INVALID ? (cli_usage_error("init", "%s", d.msg), MU_EXIT_USAGE)
                                    : diag_fail(rc, &d);
    return MU_EXIT_OK;
}

static int coordinator_config(const init_opts *o)
{
    char model[PATH_CAP + 2];
    snprintf(model, sizeof model, "\"%s\"", o->model_abs[0] ? o->model_abs : "model");
    return write_new(
        o->dir, "coordinator.yaml",
        "# coordinator.yaml - written by `mutual init coordinator`: the config of `mutual serve`.\n"
        "# Relative paths are relative to this file's folder. `mutual config check --kind\n"
        "# coordinator coordinator.yaml` checks it; `mutual config keys` lists every key and\n"
        "# docs/coordinator.md explains them.\n\n"
        "federation:\n"
        "  name: \"%s\"\n"
        "  rounds: %ld                      # training rounds; 0 = until stopped\n"
        "  checkpoint_dir: checkpoints    # checkpoint.h5 after every round; serve resumes from "
        "it\n"
        "  export_dir: adapters           # the global adapter as a PEFT folder after every "
        "round\n\n"
        "cohort:\n"
        "  min_orgs: %ld                    # a round starts once this many orgs are connected\n"
        "  max_orgs: 100\n"
        "  wait_s: 10                     # ... and waits this long for more\n\n"
        "train:                           # sent to every org with each round\n"
        "  steps: 20                      # local optimizer steps per round\n"
        "  lr: 1.0e-4\n"
        "  batch: 8\n"
        "  seq: %d                        # tokens per sequence (at most the model's context)\n"
        "  weight: examples\n\n"
        "strategy:\n"
        "  name: fedavg\n\n"
        "server:\n"
        "  listen: \"%s\"\n"
        "  tls_ca: certs/ca.crt           # the federation CA (certs/ca.key: keep it safe)\n"
        "  tls_cert: certs/coordinator.crt\n"
        "  tls_key: certs/coordinator.key\n\n"
        "# Who may join: any org whose certificate request this CA signed (mutual certs sign\n"
        "# --dir certs --csr ORG.csr); each org's identity key is pinned when it first registers.\n"
        "# To admit only listed orgs, with their keys pinned from the start (the org's init\n"
        "# printed it; mutual certs identity shows it again):\n"
        "# orgs:\n"
        "#   - name: cu-north\n"
        "#     public_key: <64 hex digits>\n\n"
        "model:\n"
        "  base: %s   # Hugging Face folder; every org needs the same config.json\n"
        "  rank: 8\n"
        "  alpha: 16\n"
        "  freeze_a: true                 # only B is federated: exact aggregation, half the "
        "traffic\n",
        o->name, o->rounds, o->min_orgs, o->seq, o->listen, model);
}

static int init_coordinator(init_opts *o)
{
    if (o->coordinator)
        return cli_usage_error("init", "--coordinator belongs to 'init org'");
    if (!o->listen)
        o->listen = "0.0.0.0:7443";
    const char *why = NULL;
    if (mu_addr_parse(o->listen, NULL, 0, NULL, &why) != MU_OK || !yaml_safe(o->listen))
        return cli_usage_error("init", "--listen address '%s' %s", o->listen,
                               why ? why : "is not HOST:PORT");
    if (!yaml_safe(o->name) || !o->name[0] || strlen(o->name) >= CO_ORG_NAME_MAX)
        return cli_usage_error("init",
                               "federation name '%s' must be 1-%d characters without quotes, "
                               "backslashes or control characters (give one with --name)",
                               o->name, CO_ORG_NAME_MAX - 1);
    int rc = model_resolve(o);
    if (rc != MU_EXIT_OK)
        return rc;
    static const char *const files[] = {"coordinator.yaml",      "certs/ca.key",
                                        "certs/ca.crt",          "certs/coordinator.key",
                                        "certs/coordinator.crt", "certs/operator.key",
                                        "certs/operator.crt",    NULL};
    if (none_exist(o, files))
        return MU_EXIT_FAIL;
    char certs[PATH_CAP];
    snprintf(certs, sizeof certs, "%s/certs", o->dir);
    if (make_dir(o->dir, "", 0755) || (rc = coordinator_certs(o, certs)) != MU_EXIT_OK)
        return rc ? rc : MU_EXIT_FAIL;
    if (coordinator_config(o))
        return MU_EXIT_FAIL;
    printf("wrote %s/coordinator.yaml and the federation's certificates in %s\n"
           "  (ca.key: the CA's key, keep it safe; operator.crt/.key: for mutual status)\n"
           "next:\n",
           o->dir, certs);
    if (!o->model_abs[0])
        printf("  put the base model folder (config.json) at %s/model\n", o->dir);
    printf("  for each org's request: mutual certs sign --dir %s --csr ORG.csr\n"
           "    and send back %s/ORG.crt and %s/ca.crt\n"
           "  then: mutual serve --config %s/coordinator.yaml\n",
           certs, certs, certs, o->dir);
    return MU_EXIT_OK;
}

static int org_config(const init_opts *o)
{
    char model[PATH_CAP + 2];
    snprintf(model, sizeof model, "\"%s\"", o->model_abs[0] ? o->model_abs : "model");
    const char *n = o->name;
    return write_new(
        o->dir, "org.yaml",
        "# org.yaml - written by `mutual init org`: the config of `mutual join` for org %s.\n"
        "# Relative paths are relative to this file's folder. `mutual config check --kind org\n"
        "# org.yaml` checks it. The LoRA shape and the training settings come from the\n"
        "# coordinator.\n\n"
        "org:\n"
        "  name: %s                       # the CN of tls.cert\n"
        "  identity_key: keys/%s.ed25519  # signs every message; pinned by the coordinator the\n"
        "                                 # first time this org registers: keep it\n\n"
        "coordinator:\n"
        "  address: \"%s\"\n\n"
        "tls:\n"
        "  ca: certs/ca.crt               # from the operator, with this org's certificate\n"
        "  cert: certs/%s.crt             # the operator signs certs/%s.csr into it\n"
        "  key: certs/%s.key              # made here; it never leaves this machine\n\n"
        "model:\n"
        "  base: %s   # Hugging Face folder, the same config.json as the coordinator's\n\n"
        "data:                            # never leaves this machine\n"
        "  train: data/train.h5           # mutual data import --text FILES --out data/train.h5\n"
        "  # eval: data/heldout.h5        # held-out data for evaluation rounds (default: "
        "train)\n\n"
        "threads: 0                       # training threads; 0 = all cores\n\n"
        "cohort:                          # whom this org aggregates with; never taken from the\n"
        "                                 # coordinator (it could fill a cohort with its own "
        "keys)\n"
        "  min_size: %u                    # the smallest cohort this org takes part in\n"
        "  members: members.yaml          # the roster: every member's {name, pk}, the same file\n"
        "                                 # at every org (member.yaml is this org's line)\n",
        n, n, n, o->coordinator, n, n, n, model, CL_MIN_COHORT);
}

/* The org's identity key (DIR/keys, mode 0700) and its public half as hex. */
static int org_identity(const init_opts *o, char hex[65])
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/keys/%s.ed25519", o->dir, o->name);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "mutual init: %s: exists already; not overwritten\n", path);
        return MU_EXIT_FAIL;
    }
    if (make_dir(o->dir, "keys", 0700))
        return MU_EXIT_FAIL;
    if (sodium_init() < 0) {
        fprintf(stderr, "mutual init: libsodium failed to initialise\n");
        return MU_EXIT_FAIL;
    }
    uint8_t pk[32], sk[64];
    mu_diag d = {{0}};
    mu_log_level level = mu_log_get_level(); /* its "join: created" line is join's */
    mu_log_set_level(level < MU_LOG_WARN ? level : MU_LOG_WARN);
    int rc = nd_identity_load(path, pk, sk, &d);
    mu_log_set_level(level);
    sodium_memzero(sk, sizeof sk);
    if (rc != MU_OK)
        return diag_fail(rc, &d);
    sodium_bin2hex(hex, 65, pk, sizeof pk);
    if (write_new(o->dir, "member.yaml", "- {name: %s, pk: %s}\n", o->name, hex))
        return MU_EXIT_FAIL;
    return MU_EXIT_OK;
}

static int init_org(init_opts *o)
{
    if (o->n_hosts || o->listen || o->rounds >= 0 || o->min_orgs >= 0)
        return cli_usage_error("init", "--server, --listen, --rounds and --min-orgs belong to "
                                       "'init coordinator'");
    if (!o->coordinator)
        return cli_usage_error("init", "'init org' needs --coordinator HOST:PORT");
    const char *why = NULL;
    if (mu_addr_parse(o->coordinator, NULL, 0, NULL, &why) != MU_OK || !yaml_safe(o->coordinator))
        return cli_usage_error("init", "--coordinator address '%s' %s", o->coordinator,
                               why ? why : "is not HOST:PORT");
    if (!rpc_certs_name_ok(o->name) || !strcmp(o->name, "ca"))
        return cli_usage_error("init",
                               "org name '%s' must be 1-63 of [A-Za-z0-9._-], not "
                               "starting with . or - (give one with --name)",
                               o->name);
    int rc = model_resolve(o);
    if (rc != MU_EXIT_OK)
        return rc;
    static const char *const files[] = {"org.yaml",     "member.yaml",  "keys/%s.ed25519",
                                        "certs/%s.key", "certs/%s.csr", NULL};
    if (none_exist(o, files))
        return MU_EXIT_FAIL;
    char certs[PATH_CAP], hex[65];
    snprintf(certs, sizeof certs, "%s/certs", o->dir);
    if (make_dir(o->dir, "", 0755) || make_dir(o->dir, "data", 0700))
        return MU_EXIT_FAIL;
    if ((rc = org_identity(o, hex)) != MU_EXIT_OK)
        return rc;
    mu_diag d = {{0}};
    if ((rc = rpc_certs_request(certs, o->name, &d)) != MU_OK)
        return diag_fail(rc, &d);
    if (org_config(o))
        return MU_EXIT_FAIL;
    printf("wrote %s/org.yaml, the identity key %s/keys/%s.ed25519\n"
           "  (public key %s)\n"
           "  and the TLS key and certificate request %s/%s.key, %s/%s.csr\n"
           "next:\n"
           "  send %s/%s.csr to the federation's operator; put the %s.crt and ca.crt you get\n"
           "    back in %s/\n"
           "  send %s/member.yaml to the other members; put the roster (every member's line,\n"
           "    this one too) in %s/members.yaml\n",
           o->dir, o->dir, o->name, hex, certs, o->name, certs, o->name, certs, o->name, o->name,
           certs, o->dir, o->dir);
    if (!o->model_abs[0])
        printf("  put the base model folder at %s/model\n", o->dir);
    printf("  mutual data import --text FILES --out %s/data/train.h5\n"
           "  then: mutual join --config %s/org.yaml\n",
           o->dir, o->dir);
    return MU_EXIT_OK;
}

/* The name by default: DIR's last component. */
static const char *base_name(const char *dir, char *buf, size_t cap)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    const char *start = dir + len;
    while (start > dir && start[-1] != '/')
        start--;
    snprintf(buf, cap, "%.*s", (int)(dir + len - start), start);
    return buf;
}

static int parse(int argc, char **argv, init_opts *o)
{
    enum {
        OPT_NAME = 256,
        OPT_SERVER,
        OPT_LISTEN,
        OPT_COORD,
        OPT_MODEL,
        OPT_ROUNDS,
        OPT_MIN,
        OPT_FORCE
    };
    static const struct option longopts[] = {{"name", required_argument, NULL, OPT_NAME},
                                             {"server", required_argument, NULL, OPT_SERVER},
                                             {"listen", required_argument, NULL, OPT_LISTEN},
                                             {"coordinator", required_argument, NULL, OPT_COORD},
                                             {"model", required_argument, NULL, OPT_MODEL},
                                             {"rounds", required_argument, NULL, OPT_ROUNDS},
                                             {"min-orgs", required_argument, NULL, OPT_MIN},
                                             {"force", no_argument, NULL, OPT_FORCE},
                                             MU_CLI_COMMON_LONGOPTS,
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, MU_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            help(stdout);
            return -1;
        case OPT_NAME:
            o->name = optarg;
            break;
        case OPT_SERVER:
            if (o->n_hosts == MAX_HOSTS)
                return cli_usage_error("init", "at most %d --server hosts", MAX_HOSTS);
            o->hosts[o->n_hosts++] = optarg;
            break;
        case OPT_LISTEN:
            o->listen = optarg;
            break;
        case OPT_COORD:
            o->coordinator = optarg;
            break;
        case OPT_MODEL:
            o->model = optarg;
            break;
        case OPT_ROUNDS:
            if (cli_parse_long("init", "--rounds", optarg, 0, 1000000, &o->rounds))
                return MU_EXIT_USAGE;
            break;
        case OPT_MIN:
            if (cli_parse_long("init", "--min-orgs", optarg, 2, 100, &o->min_orgs))
                return MU_EXIT_USAGE;
            break;
        case OPT_FORCE:
            o->force = 1;
            break;
        default:
            if (!cli_common_opt(c))
                return cli_usage_error("init", "unknown option");
        }
    }
    return MU_EXIT_OK;
}

int cmd_init(int argc, char **argv)
{
    init_opts o = {.rounds = -1, .min_orgs = -1};
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? MU_EXIT_OK : rc;
    if (argc - optind != 2)
        return cli_usage_error("init", "expected 'coordinator DIR' or 'org DIR'");
    const char *kind = argv[optind];
    o.dir = argv[optind + 1];
    if (strcmp(kind, "coordinator") && strcmp(kind, "org"))
        return cli_usage_error("init", "unknown kind '%s' (coordinator or org)", kind);
    if (!o.dir[0] || strlen(o.dir) > PATH_CAP - 128)
        return cli_usage_error("init", "DIR must be a folder name of at most %d bytes",
                               PATH_CAP - 128);
    int empty = dir_empty(o.dir);
    if (empty < 0) {
        fprintf(stderr, "mutual init: %s: %s\n", o.dir, strerror(errno));
        return MU_EXIT_FAIL;
    }
    if (!empty && !o.force)
        return cli_usage_error("init",
                               "%s is not empty (--force writes into it, never over a "
                               "file)",
                               o.dir);
    char name[256];
    if (!o.name)
        o.name = base_name(o.dir, name, sizeof name);
    if (kind[0] == 'o')
        return init_org(&o);
    if (o.rounds < 0)
        o.rounds = 10;
    if (o.min_orgs < 0)
        o.min_orgs = CL_MIN_COHORT;
    return init_coordinator(&o);
}
