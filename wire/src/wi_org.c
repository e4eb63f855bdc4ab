/* wi_org.c - the org-name rule. */
#include "wi_org.h"

#include <string.h>

int wi_org_name_valid(const char *name)
{
    if (!name)
        return 0;
    size_t n = strnlen(name, CO_ORG_NAME_MAX);
    if (n == 0 || n >= CO_ORG_NAME_MAX || name[0] == '.' || name[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}
