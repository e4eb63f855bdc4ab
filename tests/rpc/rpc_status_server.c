/* rpc_status_server.c - the toy coordinator as a process, for clients in other languages.
 *
 * usage: rpc_status_server --insecure | --dir DIR
 * With --dir, serves mutual TLS with DIR/ca.crt and DIR/coordinator.{crt,key}. Prints
 * "port N" on stdout once listening on 127.0.0.1, then serves until SIGINT or SIGTERM and
 * exits 0 after a clean shutdown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mu_log.h"
#include "rpc_toy.h"

int main(int argc, char **argv)
{
    char ca[512], crt[512], key[512];
    rpc_server_config cfg = {0};
    cfg.address = "127.0.0.1:0";
    if (argc == 2 && !strcmp(argv[1], "--insecure")) {
        cfg.insecure = 1;
    } else if (argc == 3 && !strcmp(argv[1], "--dir")) {
        snprintf(ca, sizeof ca, "%s/ca.crt", argv[2]);
        snprintf(crt, sizeof crt, "%s/coordinator.crt", argv[2]);
        snprintf(key, sizeof key, "%s/coordinator.key", argv[2]);
        cfg.ca_path = ca;
        cfg.cert_path = crt;
        cfg.key_path = key;
    } else {
        fprintf(stderr, "usage: rpc_status_server --insecure | --dir DIR\n");
        return 2;
    }
    toy t;
    toy_start(&t, &cfg, (5u << 19) + 1000); /* 2.5 MiB + 1000: three chunks */
    if (rpc_server_stop_on_signals(t.srv) != MU_OK)
        return 1;
    printf("port %d\n", rpc_server_port(t.srv));
    fflush(stdout);
    pthread_join(t.thread, NULL); /* returns once a signal stopped the loop */
    rpc_server_free(t.srv);
    free(t.blob);
    fprintf(stderr, "rpc_status_server: clean shutdown\n");
    return 0;
}
