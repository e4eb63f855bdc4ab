/* co_config_yaml.h - loading the coordinator's config (co_config.h) from YAML.
 *
 * The loader reads exactly the keys of the table (co_config_keys): an unknown key, a wrong
 * type or an out-of-range value is "FILE:LINE:COL: ..." naming the key. Relative paths are
 * resolved against the folder of the document's file (mu_yaml_as_path). Besides the table's
 * sections the top level may hold `model:` (read by the serve driver with tr_model_spec).
 */
#ifndef CO_CONFIG_YAML_H
#define CO_CONFIG_YAML_H

#include "co_config.h"
#include "mu_yaml.h"

/* Also refuse, as `mutual serve` would at start: a server.tls_* file that is missing or
 * unreadable, or unset while server.insecure is false; a checkpoint or export folder that
 * exists but is not a folder. For `mutual config check`. */
#define CO_CONFIG_CHECK_PATHS 1u

/* Loads `root` (a mapping: the whole file, or a block such as sim's `coordinator:`) of `doc`
 * over the defaults, then co_config_check (its message prefixed with the file name). On error
 * *cfg holds nothing to free; on success free with co_config_deinit. */
int co_config_from_yaml(const mu_yaml_doc *doc, const mu_yaml_node *root, unsigned flags,
                        co_config *cfg, mu_diag *diag);

#endif
