/* nd.h - the network driver: `mutual serve` (the coordinator's rpc binding around co_round)
 * and `mutual join` (an org's loop over gRPC around the participant core).
 *
 * mu_coordinator, mu_client, mu_train and mu_secure_agg never link gRPC; this library is
 * where they meet mu_rpc. What an org does with each task, the push signatures and the
 * after-round pipeline are the host layer's (mu_host, shared with `mutual sim`); this library
 * adds the transport and the wall clock. Everything here is a process-level driver: nd_serve_run
 * and nd_join_run block until the federation is over, a signal stops them, or a fatal error.
 *
 * The model the federation fine-tunes is described once, in the coordinator's config
 * (`model:` section, nd_model_spec), and handed to every org in JoinReply.federation_config
 * (JSON, nd_fedcfg), so the orgs attach exactly the LoRA shape the coordinator aggregates and
 * refuse a base model whose config.json differs from the coordinator's.
 */
#ifndef ND_H
#define ND_H

#include <stddef.h>
#include <stdint.h>

#include "mu_err.h"
#include "tr_model.h"
#include "tr_spec.h"

#define ND_PATH_MAX 1024

/* ---- the model of the federation -------------------------------------------------------- */

/* `model:` of the coordinator's YAML: the base model and the LoRA shape, read by
 * tr_model_spec_parse (train/include/tr_spec.h lists the keys and defaults), the same function
 * `mutual sim` reads its `model:` with. The coordinator reads only base/config.json. */
typedef tr_model_spec nd_model_spec;

/* Reads the `model:` section of the YAML file at `path` (other sections are ignored); base
 * is resolved against the file's folder. MU_ERR_INVALID with FILE:LINE:COL in diag;
 * MU_ERR_NOTFOUND when the section is absent. */
int nd_model_spec_load(const char *path, nd_model_spec *spec, mu_diag *diag);

/* What JoinReply.federation_config carries (JSON): the LoRA shape, its seed, the flat
 * dimension, the SHA-256 of the base model's config.json, and a random id of the coordinator
 * process (`instance`), so an org that reconnects can tell a restarted coordinator (which
 * resumed from its checkpoint and starts the round in flight over) from a network blip. */
typedef struct {
    char model_type[32];
    uint8_t config_sha256[32];
    tr_lora_config lora;
    uint64_t seed;
    uint64_t dim;
    uint8_t instance[8];
    /* A coordinator governed by a charter says which training config it runs (BLAKE2b-256
     * of its config file, "training_hash"), for orgs to compare with their charter's. */
    int has_training_hash;
    uint8_t training_hash[32];
} nd_fedcfg;

/* Encodes to a malloc'd JSON string (*out, *len). MU_OK or MU_ERR_NOMEM. */
int nd_fedcfg_encode(const nd_fedcfg *f, char **out, size_t *len);
/* Decodes untrusted bytes; MU_ERR_FORMAT with the reason. */
int nd_fedcfg_decode(const uint8_t *buf, size_t len, nd_fedcfg *f, mu_diag *diag);

/* SHA-256 of DIR/config.json. MU_OK, MU_ERR_NOTFOUND / MU_ERR_IO. */
int nd_model_config_hash(const char *dir, uint8_t out[32], mu_diag *diag);

/* Pushed messages are signed with wi_push_sign (wire/include/wi_push.h); a READY/EVAL report
 * travels under PushStageRequest.stage WI_STAGE_REPORT (wi_stage.h). */

/* ---- mutual serve ----------------------------------------------------------------------- */

typedef struct {
    const char *config_path;  /* coordinator YAML (co_config + model:) */
    int insecure;             /* --insecure: plaintext even if the config says TLS */
    const char *port_file;    /* write the bound port here once listening (may be NULL) */
    double linger_s;          /* after the last round, keep telling orgs to leave; 0: 10 s */
    double poll_s;            /* longest a PullTask is held; 0: 10 s */
    int accept_config_change; /* resume from a checkpoint written under another config */
    /* --resume-bundle FILE (with --charter): verify a release bundle (ho_bundle_verify) against
     * the chain and start from its checkpoint and audit log (the checkpoint folder must not
     * hold a checkpoint yet); refuses to start, saying why, when it does not verify. */
    const char *resume_bundle;
    /* Test mode: after each round write DUMP/global-RRRRRR.f32 (the flat global, float32 LE)
     * so tests can compare what was applied with the orgs' own dumps. NULL: off. */
    const char *dump_dir;
    /* Test mode: SIGKILL this process as soon as round crash_round has secure-agg stage
     * crash_stage (1..5) open. 0: off. */
    uint64_t crash_round;
    int crash_stage;
    /* --charter CHAIN --coordinator-key KEY: the members' charter governs this federation
     * (host/include/ho_gov.h): roster, training config, the audit log in checkpoint_dir.
     * NULL: nothing is member-governed (no checks, no log). */
    const char *charter_path;
    const char *coordinator_key;
    /* Test mode (builds with MUTUAL_TEST_HOOKS only; refused otherwise): HO_GOV_SKIP_*, a
     * coordinator that skips its own charter checks, so tests can show the orgs refuse it. */
    unsigned cheat;
} nd_serve_opts;

/* What serve refuses before it starts, read from o->config_path: a config error, insecure
 * mode off loopback, a TLS identity that cannot work (key not matching the certificate,
 * certificate not signed by the CA file, expired or not yet valid, not a server
 * certificate, no subjectAltName). MU_OK, or a negative code with one line in diag: the CLI
 * exits 2 (a usage or config error). nd_serve_run makes the TLS check again. */
int nd_serve_check(const nd_serve_opts *o, mu_diag *diag);

/* Runs the coordinator until the federation is done (then lingers), SIGINT or SIGTERM.
 * Resumes from federation.checkpoint_dir when a checkpoint exists. Prints one JSON line per
 * finished round on stdout. MU_OK on a clean stop; a negative code with diag otherwise. */
int nd_serve_run(const nd_serve_opts *o, mu_diag *diag);

/* ---- mutual join ------------------------------------------------------------------------ */

typedef struct {
    const char *config_path; /* org YAML (configs/org.yaml) */
    int insecure;            /* --insecure: plaintext */
    /* Test mode: write DUMP/delta-RRRRRR-NAME.f32 (w then the clipped delta, float32 LE) of
     * each training round so tests can check the aggregate. NULL: off. */
    const char *dump_dir;
    double give_up_s; /* stop reconnecting after this long without a coordinator; 0: never */
    /* Test mode: SIGKILL this process in round die_round right before pushing its message
     * for secure-agg stage die_stage (1..5; WI_STAGE_REPORT = 100: the training report). 0: off. */
    uint64_t die_round;
    int die_stage;
    int die_signal; /* the signal it raises then: 0 = SIGKILL; SIGTERM stops it cleanly */
    /* --charter CHAIN: the org enforces the members' charter (ho_witness, ho_gov.h): the
     * roster is its cohort pin, the coordinator must run the charter's training config, and
     * every training task's audit log is verified, checked against the head this org
     * countersigned before (kept in head_path; NULL: IDENTITY_KEY.head) and countersigned. */
    const char *charter_path;
    const char *head_path;
    /* --release (with --charter): sign the release of each round whose global the org
     * downloaded and found to be the one the audit log names, and send it to the
     * coordinator (which exports a round once the charter's release quorum signed). */
    int release;
    /* --leave NOTICE (with --charter): join, send the member's leave notice (gv_leave, in a
     * governance push) and return: MU_OK once the coordinator accepted it. */
    const char *leave_path;
} nd_join_opts;

/* A PushStage with this stage carries only governance fields (witness, release). */
#define ND_STAGE_GOVERNANCE 200

/* What join refuses before it starts, as nd_serve_check: a config error, insecure mode off
 * loopback, or a TLS identity that cannot work (as nd_serve_check, and the certificate's CN
 * must be org.name). MU_OK or a negative code with diag (the CLI exits 2). */
int nd_join_check(const nd_join_opts *o, mu_diag *diag);

/* Joins and works until the coordinator says the federation is over (MU_OK), SIGINT or
 * SIGTERM (MU_OK), or a fatal error (refused identity, mismatched model, give_up_s). */
int nd_join_run(const nd_join_opts *o, mu_diag *diag);

#endif
