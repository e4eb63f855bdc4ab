/* co_ddg.c - the distributed discrete Gaussian parameters of a round config (co_wire.h). */
#include <sodium.h>
#include <string.h>

#include "co_wire.h"
#include "mu_bytes.h"

void co_round_config_ddg(const co_round_config *c, dp_ddg *p)
{
    static const char label[] = "mutual ddg rotation v1";
    uint8_t in[sizeof label - 1 + 16];
    memcpy(in, label, sizeof label - 1);
    mu_put_le64(in + sizeof label - 1, c->seed);
    mu_put_le64(in + sizeof label - 1 + 8, c->round);
    memset(p, 0, sizeof *p);
    p->dim = c->dim;
    p->l2 = c->weight_max * c->clip;
    p->scale = c->scale;
    p->noise = c->ddg_noise;
    p->min_survivors = c->ddg_min;
    crypto_generichash(p->rot_seed, sizeof p->rot_seed, in, sizeof in, NULL, 0);
}
