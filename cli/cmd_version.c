/* cmd_version.c - `mutual version`: our version and the libraries linked in. */
#include <grpc/grpc.h>
#include <hdf5.h>
#include <protobuf-c/protobuf-c.h>
#include <sodium.h>
#include <yaml.h>

#include <string.h>

#include "cli.h"

char *openblas_get_config(void);

int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: mutual version\n\nPrints mutual's version and the versions of the "
               "libraries it was built with.\n");
        return MU_EXIT_OK;
    }
    if (argc > 1)
        return cli_usage_error("version", "takes no arguments");
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    printf("mutual %s\n", MUTUAL_VERSION);
    printf("grpc-core %s\n", grpc_version_string());
    printf("protobuf-c %s\n", protobuf_c_version());
    printf("libsodium %s\n", sodium_version_string());
    printf("hdf5 %u.%u.%u\n", maj, min, rel);
    printf("openblas %s\n", openblas_get_config());
    printf("libyaml %s\n", yaml_get_version_string());
    return MU_EXIT_OK;
}
