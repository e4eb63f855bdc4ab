/* wi_stage.c - stage names. */
#include "wi_stage.h"

#include <string.h>

static const char *const names[] = {"train",  "advertise", "share", "masked", "consistency",
                                    "unmask", "eval",      "idle",  "done"};
#define N_NAMES (sizeof names / sizeof names[0])

const char *wi_stage_name(int stage)
{
    if (stage == WI_STAGE_REPORT)
        return "report";
    return stage >= 0 && (unsigned)stage < N_NAMES ? names[stage] : "?";
}

int wi_stage_from_name(const char *name)
{
    for (unsigned i = 0; name && i < N_NAMES; i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return name && strcmp(name, "report") == 0 ? WI_STAGE_REPORT : -1;
}

int wi_stage_is_secagg(int stage)
{
    return stage >= WI_STAGE_ADVERTISE && stage <= WI_STAGE_UNMASK;
}

int wi_task_stage(const co_task *t)
{
    switch (t->kind) {
    case CO_TASK_TRAIN:
        return WI_STAGE_TRAIN;
    case CO_TASK_EVAL:
        return WI_STAGE_EVAL;
    case CO_TASK_SECAGG:
        return t->stage;
    case CO_TASK_DONE:
        return WI_STAGE_DONE;
    case CO_TASK_WAIT:
        break;
    }
    return WI_STAGE_IDLE;
}
