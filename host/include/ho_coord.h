/* ho_coord.h - what the coordinator's drivers do around the round machine, written once:
 * authenticate pushed messages, and the after-round pipeline (checkpoint, PEFT export, the
 * metrics line).
 *
 * `mutual serve` (node/) and `mutual sim` (sim/) both call ho_coord_deliver for every message
 * an org pushes and ho_after_round for every ROUND event (co_round_poll_event). Nothing here
 * reads a clock or touches a socket; the after-round pipeline writes files.
 *
 * Thread-safety: none; call from the thread that owns the co_round.
 */
#ifndef HO_COORD_H
#define HO_COORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "co_round.h"
#include "mu_err.h"
#include "tr_model.h"

/* Verifies that `sig` (sig_len bytes) is org `id`'s push signature (wi_push_verify) over
 * (id, round, stage, msg) with its registered key, then hands msg to co_round_on_message.
 * Returns MU_OK, MU_ERR_NOTFOUND (id not registered), MU_ERR_CRYPTO (a missing or bad
 * signature: the round machine never saw the bytes), or co_round_on_message's code; diag
 * says why. */
int ho_coord_deliver(co_round *r, uint32_t id, uint64_t round, uint32_t stage, const uint8_t *msg,
                     size_t len, const uint8_t *sig, size_t sig_len, double now, mu_diag *diag);

/* What happens after each round. Empty strings or NULL switch a step off. */
typedef struct {
    const char *checkpoint_dir; /* checkpoint.h5 after every round (created if missing) */
    const uint8_t *config_hash; /* (CO_HASH_BYTES) stored in the checkpoint */
    const char *export_dir;     /* PEFT folder per completed training round */
    tr_model *model;            /* LoRA attached, the global's shape: the export writes it */
    const char *base_name;      /* base_model_name_or_path in adapter_config.json */
    FILE *metrics;              /* the round's JSON line (wi_metrics.h) goes here */
    const char *extra;          /* the driver's own fields: ",\"key\":value..." or NULL */
} ho_after;

/* co_round_poll_event, and the event's line (co_event_describe) logged at INFO, or WARN for
 * an aborted round or a notice: how both drivers drain the round machine's events, so serve's
 * and sim's logs say the same. Returns what co_round_poll_event returns (1: *ev holds one). */
int ho_poll_event(co_round *r, co_event *ev);

/* After a ROUND event: the checkpoint (co_round_checkpoint_view + co_checkpoint_write), then,
 * for a completed training round, the PEFT export EXPORT/round-RRRRRR (6 digits) and the
 * symlink EXPORT/latest -> round-RRRRRR, replaced atomically (a temporary link renamed over
 * it), so a reader following `latest` sees the previous adapter folder or the new one, whole.
 * Then the round's metrics line (wi_metrics_open, a->extra, wi_metrics_close; "dropped"
 * lists ev->dropped: each org's name and stage), flushed. A failed checkpoint is returned
 * (MU_ERR_IO/INVALID with diag) before the line: without it a crash would lose rounds
 * silently, so the driver stops. A failed export or metrics line is logged and MU_OK
 * returned: the federation goes on. */
int ho_after_round(const ho_after *a, const co_round *r, const co_event *ev, mu_diag *diag);

/* The export step of ho_after_round alone, for round `round` with the global as it is now:
 * EXPORT/round-RRRRRR and the `latest` link (a governed coordinator exports a round once
 * its release is logged). MU_OK or MU_ERR_IO/INVALID with diag. */
int ho_after_export(const ho_after *a, const co_round *r, uint64_t round, mu_diag *diag);

/* Writes the global (dim floats) as a PEFT folder DIR (created with its parents) through
 * `model`, whose LoRA vector it overwrites. MU_OK, MU_ERR_INVALID (dim differs from the
 * model's LoRA), MU_ERR_IO with diag. */
int ho_peft_write(tr_model *model, const float *global, size_t dim, const char *dir,
                  const char *base_name, mu_diag *diag);

/* The federated tensors of a model with LoRA attached, in its order: every trainable LoRA
 * tensor (B only with frozen A), as co_tensor views of the model's memory (names and data
 * borrowed from m) for co_round_new. A calloc'd array of *n (free() it); NULL when out of
 * memory. */
co_tensor *ho_lora_tensors(tr_model *m, size_t *n);

/* mkdir -p. MU_OK or MU_ERR_IO with diag naming the path. */
int ho_mkdirs(const char *path, mu_diag *diag);

#endif
