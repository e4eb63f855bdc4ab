/* sa_outbox.c - the list of encoded messages a call produces. */
#include <stdlib.h>
#include <string.h>

#include "mu_grow.h"
#include "sa_internal.h"

void sa_outbox_init(sa_outbox *ob)
{
    memset(ob, 0, sizeof *ob);
}

void sa_outbox_clear(sa_outbox *ob)
{
    for (size_t i = 0; i < ob->count; i++)
        free(ob->items[i].bytes);
    ob->count = 0;
}

void sa_outbox_deinit(sa_outbox *ob)
{
    sa_outbox_clear(ob);
    free(ob->items);
    memset(ob, 0, sizeof *ob);
}

/* Takes ownership of bytes, also on failure (it is freed). */
int sa_outbox_push(sa_outbox *ob, uint32_t to, uint8_t *bytes, size_t len)
{
    if (MU_GROW(&ob->items, &ob->cap, ob->count + 1, 8) != MU_OK) {
        free(bytes);
        return MU_ERR_NOMEM;
    }
    ob->items[ob->count].to = to;
    ob->items[ob->count].bytes = bytes;
    ob->items[ob->count].len = len;
    ob->count++;
    return MU_OK;
}

int sa_outbox_push_msg(sa_outbox *ob, uint32_t to, const sa_msg *m)
{
    uint8_t *bytes;
    size_t len;
    int rc = sa_msg_encode_alloc(m, &bytes, &len);
    if (rc)
        return rc;
    return sa_outbox_push(ob, to, bytes, len);
}
