/* nd_task.c - Task.kind/round/stage as the mirror of Task.payload. */
#include "nd_task.h"

static Mutual__V1__TaskKind task_kind(co_task_kind k)
{
    switch (k) {
    case CO_TASK_TRAIN:
        return MUTUAL__V1__TASK_KIND__TASK_KIND_TRAIN_ROUND;
    case CO_TASK_EVAL:
        return MUTUAL__V1__TASK_KIND__TASK_KIND_EVAL_ROUND;
    case CO_TASK_SECAGG:
        return MUTUAL__V1__TASK_KIND__TASK_KIND_SECAGG_STAGE;
    case CO_TASK_DONE:
        return MUTUAL__V1__TASK_KIND__TASK_KIND_SHUTDOWN;
    case CO_TASK_WAIT:
        break;
    }
    return MUTUAL__V1__TASK_KIND__TASK_KIND_WAIT;
}

void nd_task_mirror_set(Mutual__V1__Task *m, const co_task *t)
{
    int in_round = t->kind == CO_TASK_TRAIN || t->kind == CO_TASK_EVAL || t->kind == CO_TASK_SECAGG;
    m->kind = task_kind(t->kind);
    m->round = in_round ? t->cfg.round : 0;
    m->stage = t->kind == CO_TASK_SECAGG ? t->stage : 0;
}

int nd_task_mirror_check(const Mutual__V1__Task *m, const co_task *t, mu_diag *diag)
{
    Mutual__V1__Task want = MUTUAL__V1__TASK__INIT;
    nd_task_mirror_set(&want, t);
    if (m->kind != want.kind)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "Task.kind %d, its payload says %d", (int)m->kind,
                           (int)want.kind);
    if (m->round != want.round)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "Task.round %llu, its payload says %llu",
                           (unsigned long long)m->round, (unsigned long long)want.round);
    if (m->stage != want.stage)
        return mu_diag_set(diag, MU_ERR_PROTOCOL, "Task.stage %u, its payload says %u", m->stage,
                           want.stage);
    return MU_OK;
}
