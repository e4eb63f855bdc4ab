/* sim_report.c - a run's numbers and their summary over seeds (sim.h: sim_seeds_write). */
#include <math.h>
#include <string.h>

#include "co_types.h"
#include "sim.h"
#include "wi_json.h"

void sim_seed_run_of(const sim_result *res, uint64_t seed, sim_seed_run *run)
{
    memset(run, 0, sizeof *run);
    run->seed = seed;
    run->final_train_loss = run->final_eval_loss = NAN;
    const co_metrics *h = res->history;
    for (size_t i = 0; i < res->n_history; i++) {
        run->bytes_in += h[i].bytes_in;
        run->bytes_out += h[i].bytes_out;
        if (h[i].outcome != CO_ROUND_COMPLETED)
            continue;
        if (h[i].kind == CO_ROUND_EVAL)
            run->final_eval_loss = h[i].loss;
        else
            run->final_train_loss = h[i].loss;
    }
    run->wall_s = res->wall_s;
    run->virtual_s = res->virtual_s;
    run->completed = res->completed;
    run->aborted = res->aborted;
}

enum { M_TRAIN, M_EVAL, M_IN, M_OUT, M_BYTES, M_WALL, M_VIRTUAL, M_COUNT };
static const char *const metric_names[M_COUNT] = {
    "final_train_loss", "final_eval_loss", "bytes_in", "bytes_out", "bytes", "wall_s", "virtual_s"};

static double metric(const sim_seed_run *r, int m)
{
    switch (m) {
    case M_TRAIN:
        return r->final_train_loss;
    case M_EVAL:
        return r->final_eval_loss;
    case M_IN:
        return (double)r->bytes_in;
    case M_OUT:
        return (double)r->bytes_out;
    case M_BYTES:
        return (double)r->bytes_in + (double)r->bytes_out;
    case M_WALL:
        return r->wall_s;
    default:
        return r->virtual_s;
    }
}

/* {"n":N,"mean":x,"std":x,"min":x,"max":x} over the finite values of metric m. */
static void summarise(wi_str *b, const sim_seed_run *runs, size_t n, int m)
{
    size_t k = 0;
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v = metric(&runs[i], m);
        if (!isfinite(v))
            continue;
        k++;
        sum += v;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
    }
    double mean = k ? sum / (double)k : NAN, ss = 0;
    for (size_t i = 0; i < n; i++) {
        double v = metric(&runs[i], m);
        if (isfinite(v))
            ss += (v - mean) * (v - mean);
    }
    wi_str_printf(b, "{\"n\":%zu,\"mean\":", k);
    wi_str_json_number(b, mean);
    wi_str_printf(b, ",\"std\":");
    wi_str_json_number(b, k >= 2 ? sqrt(ss / (double)(k - 1)) : NAN);
    wi_str_printf(b, ",\"min\":");
    wi_str_json_number(b, k ? lo : NAN);
    wi_str_printf(b, ",\"max\":");
    wi_str_json_number(b, k ? hi : NAN);
    wi_str_printf(b, "}");
}

static void run_json(wi_str *b, const sim_seed_run *r)
{
    wi_str_printf(b, "{\"seed\":%llu", (unsigned long long)r->seed);
    for (int m = 0; m < M_COUNT; m++) {
        wi_str_printf(b, ",\"%s\":", metric_names[m]);
        if (m == M_IN || m == M_OUT)
            wi_str_printf(b, "%llu", (unsigned long long)(m == M_IN ? r->bytes_in : r->bytes_out));
        else
            wi_str_json_number(b, metric(r, m));
    }
    wi_str_printf(b, ",\"completed\":%llu,\"aborted\":%llu}", (unsigned long long)r->completed,
                  (unsigned long long)r->aborted);
}

int sim_seeds_write(FILE *f, const sim_seed_run *runs, size_t n)
{
    wi_str b;
    wi_str_init(&b);
    wi_str_printf(&b, "{\"seeds\":[");
    for (size_t i = 0; i < n; i++)
        wi_str_printf(&b, "%s%llu", i ? "," : "", (unsigned long long)runs[i].seed);
    wi_str_printf(&b, "],\"summary\":{");
    for (int m = 0; m < M_COUNT; m++) {
        wi_str_printf(&b, "%s\"%s\":", m ? "," : "", metric_names[m]);
        summarise(&b, runs, n, m);
    }
    wi_str_printf(&b, "},\"runs\":[");
    for (size_t i = 0; i < n; i++) {
        wi_str_printf(&b, "%s", i ? "," : "");
        run_json(&b, &runs[i]);
    }
    wi_str_printf(&b, "]}\n");
    int rc = wi_str_ok(&b);
    if (rc == MU_OK && (fwrite(b.s, 1, b.len, f) != b.len || fflush(f) != 0))
        rc = MU_ERR_IO;
    wi_str_deinit(&b);
    return rc;
}
