/* nd_access.c - who may read the coordinator's Status (the federation's members and its
 * operators, not every holder of a certificate from the CA), and the operator's way to give
 * an org that lost its identity key a new one (a new pin in the orgs list). */
#include <sodium.h>
#include <string.h>

#include "co_round.h"
#include "mu_log.h"
#include "nd_internal.h"

int nd_status_allowed(const co_config *cfg, const co_round *r, const char *peer, int is_operator,
                      int insecure)
{
    if (insecure || is_operator)
        return 1; /* plaintext has no identities (loopback tests only) */
    if (cfg->n_orgs) {
        for (size_t i = 0; i < cfg->n_orgs; i++)
            if (strcmp(cfg->orgs[i].name, peer) == 0)
                return 1;
        return 0;
    }
    return co_round_find_org(r, peer) != 0;
}

size_t nd_rotate_pinned_keys(const co_config *cfg, co_org *orgs, size_t n_orgs)
{
    size_t rotated = 0;
    for (size_t i = 0; i < n_orgs; i++)
        for (size_t k = 0; k < cfg->n_orgs; k++) {
            const co_allowed_org *a = &cfg->orgs[k];
            if (!a->has_pk || strcmp(a->name, orgs[i].name) != 0 ||
                sodium_memcmp(a->pk, orgs[i].pk, sizeof a->pk) == 0)
                continue;
            memcpy(orgs[i].pk, a->pk, sizeof a->pk);
            mu_warn("serve: org '%s' (id %u): its registered identity key is replaced by the key "
                    "pinned in the orgs list (key rotation); the old key is refused from now on",
                    orgs[i].name, orgs[i].id);
            rotated++;
        }
    return rotated;
}
