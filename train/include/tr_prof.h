/* tr_prof.h - where a training step's time goes, for benchmarks (train_step_bench
 * --breakdown). Off by default: then every timed point costs one test of a global flag.
 *
 * Timers are read on the thread that calls the model (OpenMP's master) around whole phases:
 * a phase's time includes its parallel region and the wait at its end. Inside the fused
 * linears (base product and every LoRA module on it in one row-split region) the LoRA
 * products are timed on thread 0 and moved from TR_PROF_GEMM to TR_PROF_LORA: thread 0's
 * share stands for the team's, which runs equal row blocks at the same time.
 *
 * Process-wide, not thread-safe: enable, run steps, read, all from one thread, with one
 * model training at a time. */
#ifndef TR_PROF_H
#define TR_PROF_H

typedef enum {
    TR_PROF_GEMM,  /* frozen base linears (q/k/v, o, gate/up, down), bias and residual */
    TR_PROF_LORA,  /* the LoRA products and their gradients */
    TR_PROF_ATTN,  /* causal attention forward and backward (QK^T, softmax, PV) */
    TR_PROF_HEAD,  /* LM-head products: logits and d input, chunked or not */
    TR_PROF_CE,    /* softmax, loss and dlogits over the vocabulary */
    TR_PROF_NORM,  /* norms, RoPE, q/k norms, GELU/SwiGLU, embedding, gradient clears */
    TR_PROF_OPTIM, /* the optimizer update and zeroing the LoRA gradients */
    TR_PROF_COUNT
} tr_prof_phase;

/* Turns the timers on (1) or off (0); turning them on clears the totals. */
void tr_prof_enable(int on);
/* Seconds spent in each phase since tr_prof_enable(1). */
void tr_prof_read(double seconds[TR_PROF_COUNT]);
/* A short lower-case name ("gemm", "lora", ...) for JSON keys. */
const char *tr_prof_name(tr_prof_phase p);

/* For the engine's own code: tr_prof_start() is 0 when off, else now in seconds;
 * tr_prof_stop adds now - t0 to p (nothing when t0 is 0). tr_prof_move moves now - t0 from
 * `from` to `to` (the LoRA share of a fused linear); tr_prof_start0/_move0 do the same only
 * on OpenMP thread 0. */
double tr_prof_start(void);
void tr_prof_stop(tr_prof_phase p, double t0);
double tr_prof_start0(void);
void tr_prof_move0(tr_prof_phase from, tr_prof_phase to, double t0);

#endif
