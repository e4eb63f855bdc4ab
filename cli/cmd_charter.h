/* cmd_charter.h - what `mutual charter` and `mutual audit` share: the charter's YAML form,
 * and its readable printout and diff. */
#ifndef CMD_CHARTER_H
#define CMD_CHARTER_H

#include <stdio.h>

#include "gv_store.h"

/* Reads the human form of a charter (docs/governance.md) from the YAML file at path into *c
 * (version 1, no parent: the caller sets both for a proposal); members come out sorted by
 * name and training.config is hashed (BLAKE2b-256 of the file's bytes). MU_OK or
 * MU_ERR_INVALID / MU_ERR_NOTFOUND / MU_ERR_IO with FILE:LINE:COL in diag. */
int cli_charter_yaml(const char *path, gv_charter *c, mu_diag *diag);

/* Prints c readably. */
void cli_charter_print(FILE *out, const gv_charter *c);

/* Prints what turning parent into child changes, line by line, and which quorum that needs. */
void cli_charter_print_diff(FILE *out, const gv_charter *parent, const gv_charter *child);

/* Prints 2n hex digits of b (n <= 64). */
void cli_hex_print(FILE *out, const uint8_t *b, size_t n);

#endif
