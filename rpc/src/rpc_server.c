/* rpc_server.c - the server's loop: bind, request calls, dispatch completions, tick, run
 * posted work, shut down in the order gRPC needs. One call's life is in rpc_server_call.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>

#include "mu_log.h"
#include "mu_progress.h"
#include "rpc_server_int.h"

int rpc_srv_request(rpc_server *srv, int method)
{
    rpc_call *c = calloc(1, sizeof *c);
    if (!c)
        return MU_ERR_NOMEM;
    c->srv = srv;
    c->method = method;
    c->t_new = (rpc_tag){TAG_NEW, c};
    c->t_close = (rpc_tag){TAG_CLOSE, c};
    c->t_send = (rpc_tag){TAG_SEND, c};
    c->t_recv = (rpc_tag){TAG_RECV, c};
    c->t_status = (rpc_tag){TAG_STATUS, c};
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
    grpc_call_error e;
    if (method < 0) {
        e = grpc_server_request_call(srv->server, &c->call, &c->details, &c->md, srv->cq, srv->cq,
                                     &c->t_new);
    } else {
        int wants_payload = rpc_method_get(method)->kind != RPC_CLIENT_STREAMING;
        e = grpc_server_request_registered_call(
            srv->server, srv->reg[method], &c->call, &c->deadline, &c->md,
            wants_payload ? &c->payload : NULL, srv->cq, srv->cq, &c->t_new);
    }
    if (e != GRPC_CALL_OK) {
        mu_error("rpc: cannot request a call (gRPC error %d)", (int)e);
        grpc_metadata_array_destroy(&c->md);
        grpc_call_details_destroy(&c->details);
        free(c);
        return MU_ERR_STATE;
    }
    c->pending = 1;
    c->next = srv->calls;
    if (srv->calls)
        srv->calls->prev = c;
    srv->calls = c;
    return MU_OK;
}

static int bind_port(rpc_server *srv, const rpc_server_config *cfg, mu_diag *d)
{
    grpc_server_credentials *creds;
    if (cfg->insecure) {
        mu_warn("rpc: *** INSECURE: serving %s in PLAINTEXT, without TLS or client identities. "
                "Anyone who can reach this port can join and read the traffic. Use only for "
                "local experiments. ***",
                cfg->address);
        creds = grpc_insecure_server_credentials_create();
    } else {
        creds = rpc_tls_server_creds(cfg->ca_path, cfg->cert_path, cfg->key_path, d);
        if (!creds)
            return MU_ERR_IO;
    }
    srv->port = grpc_server_add_http2_port(srv->server, cfg->address, creds);
    grpc_server_credentials_release(creds);
    if (srv->port <= 0)
        return mu_diag_set(d, MU_ERR_IO, "cannot listen on %s (in use, or not a host:port)",
                           cfg->address);
    return MU_OK;
}

rpc_server *rpc_server_new(const rpc_server_config *cfg, const rpc_handlers *h, mu_diag *d)
{
    if (!cfg || !cfg->address || !h) {
        mu_diag_set(d, MU_ERR_INVALID, "rpc_server_new: config, address and handlers needed");
        return NULL;
    }
    rpc_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        mu_diag_set(d, MU_ERR_NOMEM, "out of memory");
        return NULL;
    }
    rpc_log_install();
    grpc_init();
    srv->h = *h;
    srv->insecure = cfg->insecure;
    srv->max_upload = cfg->max_upload_bytes ? cfg->max_upload_bytes : (256u << 20);
    srv->tick_s = (cfg->tick_ms ? cfg->tick_ms : 50) / 1000.0;
    srv->drain_s = (cfg->drain_timeout_ms ? cfg->drain_timeout_ms : 1000) / 1000.0;
    srv->posts_tail = &srv->posts;
    atomic_init(&srv->stop, 0);
    pthread_mutex_init(&srv->mu, NULL);

    size_t maxmsg = cfg->max_message_bytes ? cfg->max_message_bytes : RPC_DEFAULT_MAX_MESSAGE;
    if (maxmsg > INT32_MAX)
        maxmsg = INT32_MAX;
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = (int)maxmsg}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = (int)maxmsg}},
        /* Orgs ping held long polls every RPC_KEEPALIVE_MS: allow it (gRPC's default of 5
         * minutes would answer GOAWAY "too many pings"). */
        {GRPC_ARG_INTEGER,
         GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         {.integer = RPC_KEEPALIVE_MS / 2}},
        /* gRPC sets SO_REUSEPORT by default: a second coordinator on the same port would
         * silently share the orgs' connections with the first. Fail to bind instead. */
        {GRPC_ARG_INTEGER, GRPC_ARG_ALLOW_REUSEPORT, {.integer = 0}},
    };
    grpc_channel_args cargs = {sizeof args / sizeof args[0], args};
    srv->server = grpc_server_create(&cargs, NULL);
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
    for (int m = 0; m < RPC_METHOD_COUNT; m++) {
        const rpc_method_info *mi = rpc_method_get(m);
        /* Host NULL: a host string makes clients that dial another name miss the method. */
        srv->reg[m] = grpc_server_register_method(srv->server, mi->path, NULL,
                                                  mi->kind == RPC_CLIENT_STREAMING
                                                      ? GRPC_SRM_PAYLOAD_NONE
                                                      : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
                                                  0);
    }
    if (bind_port(srv, cfg, d) != MU_OK) {
        /* Never started: destroy without the shutdown dance. */
        grpc_server_destroy(srv->server);
        grpc_completion_queue_shutdown(srv->cq);
        while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(srv->cq);
        pthread_mutex_destroy(&srv->mu);
        free(srv);
        grpc_shutdown();
        return NULL;
    }
    grpc_server_start(srv->server);
    int rc = rpc_srv_request(srv, -1);
    for (int m = 0; m < RPC_METHOD_COUNT && rc == MU_OK; m++)
        rc = rpc_srv_request(srv, m);
    if (rc != MU_OK) {
        mu_diag_set(d, rc, "cannot wait for calls: %s", mu_strerror(rc));
        rpc_server_free(srv);
        return NULL;
    }
    rpc_log_server_port(srv->port);
    mu_info("rpc: serving mutual.v1 on %s (port %d, %s)", cfg->address, srv->port,
            cfg->insecure ? "plaintext" : "mutual TLS");
    return srv;
}

int rpc_server_port(const rpc_server *srv)
{
    return srv->port;
}

void rpc_server_stop(rpc_server *srv)
{
    atomic_store(&srv->stop, 1);
}

static rpc_server *signal_server;

static void on_signal(int sig)
{
    (void)sig;
    if (signal_server)
        rpc_server_stop(signal_server);
}

int rpc_server_stop_on_signals(rpc_server *srv)
{
    signal_server = srv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
        return MU_ERR_IO;
    return MU_OK;
}

int rpc_server_post(rpc_server *srv, void (*fn)(rpc_server *srv, void *arg), void *arg)
{
    rpc_post *p = malloc(sizeof *p);
    if (!p)
        return MU_ERR_NOMEM;
    *p = (rpc_post){fn, arg, NULL};
    pthread_mutex_lock(&srv->mu);
    int closed = srv->posts_closed;
    if (!closed) {
        *srv->posts_tail = p;
        srv->posts_tail = &p->next;
    }
    pthread_mutex_unlock(&srv->mu);
    if (closed) {
        free(p);
        return MU_ERR_STATE;
    }
    return MU_OK;
}

/* Runs what other threads posted; with `close`, refuses later posts first. */
static void run_posts(rpc_server *srv, int close)
{
    pthread_mutex_lock(&srv->mu);
    rpc_post *p = srv->posts;
    srv->posts = NULL;
    srv->posts_tail = &srv->posts;
    if (close)
        srv->posts_closed = 1;
    pthread_mutex_unlock(&srv->mu);
    while (p) {
        rpc_post *next = p->next;
        p->fn(srv, p->arg);
        free(p);
        p = next;
    }
}

/* Handles one completion-queue event; returns 1 for the server-shutdown tag. */
static int dispatch(rpc_server *srv, grpc_event ev)
{
    if (ev.type != GRPC_OP_COMPLETE)
        return 0;
    rpc_tag *t = ev.tag;
    if (t->kind == TAG_SHUTDOWN)
        return 1;
    if (t->kind == TAG_NEW && ev.success && !srv->shut)
        rpc_srv_request(srv, t->call->method); /* always keep one request outstanding */
    rpc_srv_call_event(t->call, t->kind, ev.success);
    return 0;
}

static void server_shutdown(rpc_server *srv)
{
    if (srv->down)
        return;
    run_posts(srv, 1);
    rpc_tag t_shutdown = {TAG_SHUTDOWN, NULL};
    srv->shut = 1;
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &t_shutdown);
    grpc_server_cancel_all_calls(srv->server);
    gpr_timespec until = rpc_deadline_in(srv->drain_s + 5.0);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(srv->cq, until, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            mu_error("rpc: gRPC did not finish shutting down in time");
            break;
        }
        if (dispatch(srv, ev))
            break;
    }
    grpc_server_destroy(srv->server);
    grpc_completion_queue_shutdown(srv->cq);
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        dispatch(srv, ev);
    }
    while (srv->calls) /* nothing should be left; free whatever gRPC forgot */
        rpc_srv_call_destroy(srv->calls);
    grpc_completion_queue_destroy(srv->cq);
    srv->down = 1;
}

int rpc_server_run(rpc_server *srv)
{
    if (srv->ran)
        return MU_ERR_STATE;
    srv->ran = 1;
    double next_tick = mu_now() + srv->tick_s;
    while (!atomic_load(&srv->stop)) {
        double now = mu_now();
        double wait = next_tick - now;
        if (wait > 0.010)
            wait = 0.010; /* posted work waits at most this long */
        if (wait < 0.0005)
            wait = 0.0005;
        grpc_event ev = grpc_completion_queue_next(srv->cq, rpc_deadline_in(wait), NULL);
        dispatch(srv, ev);
        /* Drain whatever else is ready without waiting. */
        while (ev.type == GRPC_OP_COMPLETE) {
            ev = grpc_completion_queue_next(srv->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
            dispatch(srv, ev);
        }
        run_posts(srv, 0);
        now = mu_now();
        if (now >= next_tick) {
            rpc_log_flush(0);
            if (srv->h.tick)
                srv->h.tick(srv->h.user, srv, now);
            next_tick = now + srv->tick_s;
        }
    }
    rpc_log_flush(1);
    mu_info("rpc: stopping: cancelling the calls in flight");
    server_shutdown(srv);
    mu_info("rpc: stopped");
    return MU_OK;
}

void rpc_server_free(rpc_server *srv)
{
    if (!srv)
        return;
    server_shutdown(srv);
    while (srv->posts) { /* posted after the loop stopped: never run */
        rpc_post *p = srv->posts;
        srv->posts = p->next;
        free(p);
    }
    pthread_mutex_destroy(&srv->mu);
    for (size_t i = 0; i < RPC_PEER_MEMO; i++)
        free(srv->peers[i].pem);
    free(srv);
    grpc_shutdown();
}
