/* cmd_charter_show.c - a charter printed for people, and what a proposal changes. */
#include <sodium.h>
#include <string.h>

#include "cmd_charter.h"
#include "wi_bytes.h"

void cli_hex_print(FILE *out, const uint8_t *b, size_t n)
{
    char hex[2 * 64 + 1];
    if (wi_hex_encode(hex, sizeof hex, b, n) == MU_OK) /* n <= 64, as the header says */
        fputs(hex, out);
}

static void quorum_print(FILE *out, const gv_charter *c, int k)
{
    const gv_quorum *q = &c->quorum[k];
    if (q->k == 0)
        fprintf(out, "majority (%u of %u)", gv_quorum_need(c, (gv_kind)k), gv_charter_voters(c));
    else
        fprintf(out, "%u-of-%u", q->k, q->n);
}

static const char *role_name(uint8_t role)
{
    return role == GV_ROLE_MEMBER ? "member" : "observer";
}

static void member_print(FILE *out, const gv_member *m)
{
    fprintf(out, "%-20s %-8s key ", m->name, role_name(m->role));
    cli_hex_print(out, m->sign_pk, GV_PK_BYTES);
    fprintf(out, " tls ");
    cli_hex_print(out, m->tls_fpr, 8);
    fprintf(out, "...\n");
}

void cli_charter_print(FILE *out, const gv_charter *c)
{
    uint8_t h[GV_HASH_BYTES];
    fprintf(out, "charter of federation %s, version %llu\n", c->federation,
            (unsigned long long)c->version);
    if (gv_charter_hash(c, h, NULL) == MU_OK) {
        fprintf(out, "  hash         ");
        cli_hex_print(out, h, GV_HASH_BYTES);
        fprintf(out, "\n");
    }
    if (c->version > 1) {
        fprintf(out, "  parent       ");
        cli_hex_print(out, c->parent, GV_HASH_BYTES);
        fprintf(out, "\n");
    }
    fprintf(out, "  coordinator  %s key ", c->coord_addr);
    cli_hex_print(out, c->coord_pk, GV_PK_BYTES);
    if (!sodium_is_zero(c->coord_fpr, GV_FPR_BYTES)) {
        fprintf(out, " tls ");
        cli_hex_print(out, c->coord_fpr, 8);
        fprintf(out, "...");
    }
    fprintf(out, "\n  rules       ");
    for (int k = 0; k < GV_KIND_COUNT; k++) {
        fprintf(out, " %s ", gv_kind_name(k));
        quorum_print(out, c, k);
        fprintf(out, k + 1 < GV_KIND_COUNT ? "," : "\n");
    }
    fprintf(out, "  privacy      min_cohort %u, secagg_threshold ", c->privacy.min_cohort);
    if (c->privacy.secagg_threshold)
        fprintf(out, "%u per mille", c->privacy.secagg_threshold);
    else
        fprintf(out, "the config's");
    if (c->privacy.dp_epsilon_milli)
        fprintf(out, ", dp_epsilon %.3f\n", c->privacy.dp_epsilon_milli / 1000.0);
    else
        fprintf(out, ", no DP budget\n");
    fprintf(out, "  training     config hash ");
    cli_hex_print(out, c->training_hash, GV_HASH_BYTES);
    fprintf(out, "\n  members      %u (%u voting)\n", c->n_members, gv_charter_voters(c));
    for (uint32_t i = 0; i < c->n_members; i++) {
        fprintf(out, "    ");
        member_print(out, &c->members[i]);
    }
}

static void roster_diff(FILE *out, const gv_charter *p, const gv_charter *c)
{
    for (uint32_t i = 0; i < c->n_members; i++) {
        const gv_member *m = &c->members[i], *old = gv_charter_member(p, m->name);
        if (!old) {
            fprintf(out, "  + admit   ");
            member_print(out, m);
        } else if (memcmp(old, m, sizeof *m)) {
            fprintf(out, "  ~ change  %s:%s%s%s\n", m->name,
                    memcmp(old->sign_pk, m->sign_pk, GV_PK_BYTES) ? " new signing key" : "",
                    memcmp(old->tls_fpr, m->tls_fpr, GV_FPR_BYTES) ? " new TLS certificate" : "",
                    old->role != m->role
                        ? (m->role == GV_ROLE_MEMBER ? " now votes" : " now only observes")
                        : "");
        }
    }
    for (uint32_t i = 0; i < p->n_members; i++)
        if (!gv_charter_member(c, p->members[i].name))
            fprintf(out, "  - remove  %s\n", p->members[i].name);
}

static void other_diff(FILE *out, const gv_charter *p, const gv_charter *c)
{
    if (strcmp(p->coord_addr, c->coord_addr))
        fprintf(out, "  ~ coordinator address %s -> %s\n", p->coord_addr, c->coord_addr);
    if (memcmp(p->coord_pk, c->coord_pk, GV_PK_BYTES)) {
        fprintf(out, "  ~ coordinator key -> ");
        cli_hex_print(out, c->coord_pk, GV_PK_BYTES);
        fprintf(out, "\n");
    }
    if (memcmp(p->coord_fpr, c->coord_fpr, GV_FPR_BYTES)) {
        fprintf(out, "  ~ coordinator TLS certificate -> ");
        if (sodium_is_zero(c->coord_fpr, GV_FPR_BYTES))
            fprintf(out, "not pinned\n");
        else {
            cli_hex_print(out, c->coord_fpr, 8);
            fprintf(out, "...\n");
        }
    }
    for (int k = 0; k < GV_KIND_COUNT; k++)
        if (memcmp(&p->quorum[k], &c->quorum[k], sizeof p->quorum[k])) {
            fprintf(out, "  ~ rules.%s ", gv_kind_name(k));
            quorum_print(out, p, k);
            fprintf(out, " -> ");
            quorum_print(out, c, k);
            /* Only K is a rule; N follows the roster (gv_charter_diff). */
            fprintf(out, p->quorum[k].k == c->quorum[k].k ? " (N follows the roster)\n"
                                                          : " (a rule change)\n");
        }
    if (p->privacy.min_cohort != c->privacy.min_cohort)
        fprintf(out, "  ~ privacy.min_cohort %u -> %u\n", p->privacy.min_cohort,
                c->privacy.min_cohort);
    if (p->privacy.secagg_threshold != c->privacy.secagg_threshold)
        fprintf(out, "  ~ privacy.secagg_threshold %u -> %u per mille\n",
                p->privacy.secagg_threshold, c->privacy.secagg_threshold);
    if (p->privacy.dp_epsilon_milli != c->privacy.dp_epsilon_milli)
        fprintf(out, "  ~ privacy.dp_epsilon %.3f -> %.3f\n", p->privacy.dp_epsilon_milli / 1000.0,
                c->privacy.dp_epsilon_milli / 1000.0);
    if (memcmp(p->training_hash, c->training_hash, GV_HASH_BYTES)) {
        fprintf(out, "  ~ training config ");
        cli_hex_print(out, p->training_hash, 8);
        fprintf(out, "... -> ");
        cli_hex_print(out, c->training_hash, 8);
        fprintf(out, "...\n");
    }
}

void cli_charter_print_diff(FILE *out, const gv_charter *p, const gv_charter *c)
{
    unsigned mask = gv_charter_diff(p, c);
    fprintf(out, "version %llu changes, against version %llu:\n", (unsigned long long)c->version,
            (unsigned long long)p->version);
    if (!mask) {
        fprintf(out, "  nothing\n");
        return;
    }
    roster_diff(out, p, c);
    other_diff(out, p, c);
    fprintf(out, "kinds:");
    for (int k = 0; k < GV_KIND_COUNT; k++)
        if (mask & (1u << k))
            fprintf(out, " %s", gv_kind_name(k));
    fprintf(out, "; needs %u signatures of version %llu's %u voting members\n",
            gv_charter_need(p, mask), (unsigned long long)p->version, gv_charter_voters(p));
}
