/*
 * main.c -- raftkvd: one node of a raftkv cluster.
 *
 * Parses the configuration (exit 2 with one line naming the file and field when it is bad), opens
 * the storage and starts the node (exit 1 if that fails: the log says why), starts the client
 * front-ends when they are built in, and runs the loop until SIGTERM/SIGINT, which stop the node
 * gracefully (in-flight disk work finishes, the storage is closed) and exit 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "node.h"

#if defined(RAFTKV_HAVE_FRONTEND) && __has_include("frontend.h")
#include "frontend.h"
#define WITH_FRONTEND 1
#else
#define WITH_FRONTEND 0
#endif

static uv_loop_t loop; /* static: what it references stays reachable for leak checkers */
static uv_signal_t sig_term, sig_int;
static node *the_node;
static bool stopped;

static void stopped_cb(void *ctx)
{
    (void)ctx;
    stopped = true;
    uv_stop(&loop);
}

#if WITH_FRONTEND
static void frontend_log(void *ctx, const char *line)
{
    (void)ctx;
    log_printf("frontend: %s", line);
}
#endif

static void signal_cb(uv_signal_t *sig, int signum)
{
    (void)sig;
    log_printf("%s received: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
#if WITH_FRONTEND
    frontend_stop(); /* stop accepting before the node refuses work */
#endif
    uv_signal_stop(&sig_term);
    uv_signal_stop(&sig_int);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    node_stop(the_node, stopped_cb, NULL);
}

int main(int argc, char **argv)
{
    static config cfg;
    char err[CONFIG_ERR_SIZE];
    int rc = config_from_args(&cfg, argc, argv, err, sizeof err);
    if (rc == CONFIG_HELP) {
        config_usage(stdout);
        return 0;
    }
    if (rc != CONFIG_OK) {
        fprintf(stderr, "raftkvd: %s\n", err);
        return 2;
    }
    log_init(cfg.id, 2);
    signal(SIGPIPE, SIG_IGN); /* a peer or client gone mid-write is an error code, not a death */
    uv_loop_init(&loop);
    if (node_start(&loop, &cfg, &the_node) != 0)
        return 1;
#if WITH_FRONTEND
    frontend_config fc = {.text_forward = cfg.forward_to_leader,
                          .max_value = (size_t)cfg.max_value_bytes,
                          .log = frontend_log};
    if (frontend_start_config(the_node, &loop, &fc) != 0) {
        log_printf("cannot start the client front-ends (see above)");
        return 1;
    }
    node_run_first(the_node);
#else
    log_printf("client front-ends not built in: serving peers only");
#endif
    uv_signal_init(&loop, &sig_term);
    uv_signal_init(&loop, &sig_int);
    uv_signal_start(&sig_term, signal_cb, SIGTERM);
    uv_signal_start(&sig_int, signal_cb, SIGINT);
    while (!stopped)
        uv_run(&loop, UV_RUN_DEFAULT);
    /* Let the close callbacks of the node's handles run. Front-end handles may stay open: the
     * process ends here anyway. */
    for (int i = 0; i < 4; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    node_free(the_node);
    log_printf("exiting");
    return 0;
}
