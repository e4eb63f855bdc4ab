/* wi_metrics.c - the round metrics JSON line. */
#include "wi_metrics.h"

#include <inttypes.h>

#include "wi_stage.h"

int wi_metrics_open(wi_str *b, const co_metrics *m, const char *reason, const co_drop *dropped,
                    size_t n_dropped)
{
    wi_str_printf(b,
                  "{\"round\":%" PRIu64 ",\"kind\":\"%s\",\"outcome\":\"%s\",\"loss\":", m->round,
                  m->kind == CO_ROUND_EVAL ? "eval" : "train",
                  m->outcome == CO_ROUND_COMPLETED ? "completed" : "aborted");
    wi_str_json_number(b, m->loss);
    wi_str_printf(b,
                  ",\"tokens\":%.0f,\"orgs_selected\":%u,\"orgs_completed\":%u,\"orgs_dropped\":%u,"
                  "\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ",\"t_start\":",
                  m->tokens, m->orgs_selected, m->orgs_completed, m->orgs_dropped, m->bytes_in,
                  m->bytes_out);
    wi_str_json_number(b, m->t_start);
    wi_str_printf(b, ",\"t_end\":");
    wi_str_json_number(b, m->t_end);
    wi_str_printf(b, ",\"duration_s\":");
    wi_str_json_number(b, m->t_end - m->t_start);
    wi_str_printf(b, ",\"reason\":");
    wi_str_json_string(b, reason && m->outcome == CO_ROUND_ABORTED ? reason : "");
    wi_str_printf(b, ",\"dropped\":");
    if (!dropped) {
        wi_str_printf(b, "null");
    } else {
        wi_str_printf(b, "[");
        for (size_t i = 0; i < n_dropped; i++) {
            if (i)
                wi_str_printf(b, ",");
            wi_str_printf(b, "{\"org\":");
            wi_str_json_string(b, dropped[i].name);
            wi_str_printf(b, ",\"stage\":\"%s\"}", wi_stage_name(dropped[i].stage));
        }
        wi_str_printf(b, "]");
    }
    /* privacy: only what is tracked, so lines without DP stay as they were (null: unbounded) */
    if (m->dp_tracked & 1) {
        wi_str_printf(b, ",\"epsilon\":");
        wi_str_json_number(b, m->epsilon);
    }
    if (m->dp_tracked & 2) {
        wi_str_printf(b, ",\"record_epsilon\":");
        wi_str_json_number(b, m->record_epsilon);
    }
    return wi_str_ok(b);
}

int wi_metrics_close(wi_str *b)
{
    wi_str_printf(b, "}\n");
    return wi_str_ok(b);
}
