/* wi_org.h - what an org name may be, one rule for every place that takes one (registration
 * with the coordinator, certificates, config allowlists). */
#ifndef WI_ORG_H
#define WI_ORG_H

#include "co_types.h"

/* 1 if name is 1 .. CO_ORG_NAME_MAX − 1 (63) bytes of [A-Za-z0-9._-], not starting with '.' or
 * '-': it becomes a certificate CN, a file name and a JSON string, so no quotes, slashes,
 * spaces or control characters. 0 otherwise, and for NULL. */
int wi_org_name_valid(const char *name);

#endif
