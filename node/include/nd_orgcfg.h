/* nd_orgcfg.h - an org's config for `mutual join` (see configs/org.yaml for every key). */
#ifndef ND_ORGCFG_H
#define ND_ORGCFG_H

#include <stdint.h>

#include "cl_participant.h"
#include "nd.h"

#define ND_MAX_MEMBERS 1024 /* cohort.members entries */

typedef struct {
    char name[64];
    char identity_key[ND_PATH_MAX];
    char address[256];
    char server_name[256];
    char ca[ND_PATH_MAX], cert[ND_PATH_MAX], key[ND_PATH_MAX];
    int insecure;
    char base[ND_PATH_MAX];
    char train[ND_PATH_MAX], eval[ND_PATH_MAX];
    int threads;       /* 0: all cores */
    int checkpointing; /* training.checkpointing: per-layer activation checkpointing (this
                        * org's memory; same update bits, cl_engine_opts) */
    int bf16;          /* training.bf16: the frozen base in bf16 (this org's memory and speed;
                        * the update differs by bf16 rounding, cl_engine_opts) */
    double backoff_initial_s, backoff_max_s, give_up_s;
    /* testing.deterministic_seed (64 hex digits): the participant's stochastic rounding,
     * data windows and LoRA dropout come from this seed, so a loopback run can repeat a
     * `mutual sim` run bit for bit (its secure-aggregation keys stay random: see
     * cl_participant.h). Tests only. */
    int deterministic;
    uint8_t seed[32];
    /* cohort: whom this org aggregates with, never taken from the coordinator (issue 10,
     * attack 1). min_size (>= CL_MIN_COHORT; 0 when absent = CL_MIN_COHORT) and the pinned
     * members' names and Ed25519 keys. testing.min_cohort (tests only) lowers the minimum
     * below CL_MIN_COHORT and sets small_cohort. */
    uint32_t min_cohort;
    int small_cohort;
    /* privacy: the noise this org adds itself, never taken from the coordinator (issue 13;
     * cl_participant.h "The org's noise pin"). min_ddg_noise (0 = none) and require_ddg. */
    double min_ddg_noise;
    int require_ddg;
    size_t n_members;
    cl_member members[ND_MAX_MEMBERS];
} nd_orgcfg;

/* Loads and checks the YAML at path (FILE:LINE:COL errors). MU_OK or MU_ERR_INVALID. */
int nd_orgcfg_load(const char *path, nd_orgcfg *c, mu_diag *diag);

/* Reads the org's Ed25519 identity (a 64-hex-digit seed) from path, creating it with mode
 * 0600 when the file does not exist (and its folder, mode 0700, when that is missing too;
 * not the folders above it). MU_OK, MU_ERR_IO or MU_ERR_FORMAT. */
int nd_identity_load(const char *path, uint8_t pk[32], uint8_t sk[64], mu_diag *diag);

#endif
