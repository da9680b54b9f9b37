/*
 * fe_testsrv.c -- the front-ends of a 3-node FAKE cluster (fake_node.h) on ephemeral loopback
 * ports, driven by test_frontend.py.
 *
 *   node 1: the leader (at start); node 2: follower that redirects text writes; node 3: follower
 *   that forwards text writes. RESP writes are forwarded by every follower.
 *
 * Prints "PORTS <t1> <r1> <t2> <r2> <t3> <r3>" (text and RESP port of each node), then reads control
 * lines on stdin, answering each with one "ok ..." line (or "error ..."):
 *   leader <id>              every node believes <id> leads (0: no leader known)
 *   view <node> <id>         only <node> changes its belief
 *   outcome ok|lost|timeout [apply]
 *   lifo on|off              complete node callbacks in reverse order
 *   hold on|off              hold node callbacks / release them
 *   busy <ms>                after each round of node callbacks: reply flush, then block <ms>
 *   clock <ms>               advance the nodes' clock
 *   ports <node> <text> <resp>  change the ports the others know for <node> (0 0: restore)
 *   stats <node>             ok conns=<n> writes=<socket writes> requests=<n> ...
 *   quit                     close everything; exits 0 only if every handle was closed
 * Options: --output-limit N --max-conns N --leader-wait-ms N --max-pipeline N --max-value N
 *          --forward-timeout-ms N
 * Front-end log lines go to stderr, prefixed with the node id.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fake_node.h"
#include "frontend.h"

#define N_NODES 3

static uv_loop_t loop;
static fake_cluster *cluster;
static frontend *fes[N_NODES];
static uv_pipe_t input;
static char line[4096];
static size_t line_len;
static bool quitting;

static void log_cb(void *ctx, const char *text)
{
    fprintf(stderr, "fe%d: %s\n", (int)(intptr_t)ctx, text);
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void quit(void)
{
    if (quitting) return;
    quitting = true;
    for (int i = 0; i < N_NODES; i++) frontend_close(fes[i]);
    uv_close((uv_handle_t *)&input, NULL);
}

static void command(char *cmd)
{
    char word[32] = "", arg1[32] = "", arg2[32] = "", arg3[32] = "";
    int n = sscanf(cmd, "%31s %31s %31s %31s", word, arg1, arg2, arg3);
    if (n < 1) {
        reply("error empty command");
        return;
    }
    if (strcmp(word, "leader") == 0 && n >= 2) {
        fake_cluster_set_leader(cluster, strtoull(arg1, NULL, 10));
    } else if (strcmp(word, "view") == 0 && n >= 3) {
        fake_node_set_leader(cluster, strtoull(arg1, NULL, 10), strtoull(arg2, NULL, 10));
    } else if (strcmp(word, "outcome") == 0 && n >= 2) {
        fake_outcome o = strcmp(arg1, "lost") == 0      ? FAKE_WRITE_LOST
                         : strcmp(arg1, "timeout") == 0 ? FAKE_WRITE_TIMEOUT
                                                        : FAKE_WRITE_OK;
        fake_cluster_set_write_outcome(cluster, o, n >= 3 && strcmp(arg2, "apply") == 0);
    } else if (strcmp(word, "lifo") == 0 && n >= 2) {
        fake_cluster_set_lifo(cluster, strcmp(arg1, "on") == 0);
    } else if (strcmp(word, "hold") == 0 && n >= 2) {
        fake_cluster_hold(cluster, strcmp(arg1, "on") == 0);
    } else if (strcmp(word, "busy") == 0 && n >= 2) {
        fake_cluster_set_busy(cluster, (uint32_t)strtoul(arg1, NULL, 10));
    } else if (strcmp(word, "clock") == 0 && n >= 2) {
        fake_cluster_advance_clock(cluster, strtoull(arg1, NULL, 10));
    } else if (strcmp(word, "ports") == 0 && n >= 4) {
        int id = atoi(arg1);
        if (id < 1 || id > N_NODES) {
            reply("error no node %s", arg1);
            return;
        }
        node_peer *peer = fake_node_peer(cluster, (raft_id)id);
        unsigned text = (unsigned)atoi(arg2), resp = (unsigned)atoi(arg3);
        peer->client_port = (uint16_t)(text ? text : frontend_text_port(fes[id - 1]));
        peer->resp_port = (uint16_t)(resp ? resp : frontend_resp_port(fes[id - 1]));
    } else if (strcmp(word, "stats") == 0 && n >= 2) {
        int id = atoi(arg1);
        if (id < 1 || id > N_NODES) {
            reply("error no node %s", arg1);
            return;
        }
        frontend_stats st;
        frontend_get_stats(fes[id - 1], &st);
        reply("ok text_conns=%u resp_conns=%u socket_writes=%llu requests=%llu forwarded=%llu "
              "redirected=%llu refused=%llu output_limit_closes=%llu queued=%u",
              st.text_conns, st.resp_conns, (unsigned long long)st.socket_writes,
              (unsigned long long)st.requests, (unsigned long long)st.forwarded,
              (unsigned long long)st.redirected, (unsigned long long)st.refused,
              (unsigned long long)st.closed_output_limit, fake_cluster_queued(cluster));
        return;
    } else if (strcmp(word, "quit") == 0) {
        reply("ok");
        quit();
        return;
    } else {
        reply("error unknown command '%s'", word);
        return;
    }
    reply("ok");
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle;
    (void)suggested;
    static char chunk[4096];
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)stream;
    if (nread < 0) {
        quit();
        return;
    }
    for (ssize_t i = 0; i < nread && !quitting; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            line[line_len] = '\0';
            line_len = 0;
            command(line);
        } else if (line_len + 1 < sizeof line) {
            line[line_len++] = ch;
        }
    }
}

int main(int argc, char **argv)
{
    frontend_config config = {0};
    for (int i = 1; i + 1 < argc; i += 2) {
        unsigned long long v = strtoull(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--output-limit") == 0) config.output_limit = v;
        else if (strcmp(argv[i], "--max-conns") == 0) config.max_conns = (uint32_t)v;
        else if (strcmp(argv[i], "--leader-wait-ms") == 0) config.leader_wait_ms = (uint32_t)v;
        else if (strcmp(argv[i], "--max-pipeline") == 0) config.max_pipeline = (uint32_t)v;
        else if (strcmp(argv[i], "--max-value") == 0) config.max_value = v;
        else if (strcmp(argv[i], "--forward-timeout-ms") == 0) config.forward_timeout_ms = (uint32_t)v;
        else {
            fprintf(stderr, "fe_testsrv: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    uv_loop_init(&loop);
    cluster = fake_cluster_new(&loop, N_NODES);
    assert(cluster != NULL);
    for (int i = 0; i < N_NODES; i++) {
        frontend_config c = config;
        c.text_forward = i == 2;
        c.log = log_cb;
        c.log_ctx = (void *)(intptr_t)(i + 1);
        node *n = fake_cluster_node(cluster, (raft_id)(i + 1));
        if (frontend_open(n, &loop, &c, &fes[i]) != 0) return 1;
        node_peer *peer = fake_node_peer(cluster, (raft_id)(i + 1));
        peer->client_port = frontend_text_port(fes[i]);
        peer->resp_port = frontend_resp_port(fes[i]);
    }
    printf("PORTS");
    for (int i = 0; i < N_NODES; i++) printf(" %u %u", frontend_text_port(fes[i]), frontend_resp_port(fes[i]));
    printf("\n");
    fflush(stdout);
    uv_pipe_init(&loop, &input, 0);
    uv_pipe_open(&input, 0);
    uv_read_start((uv_stream_t *)&input, alloc_cb, read_cb);

    uv_run(&loop, UV_RUN_DEFAULT);
    fake_cluster_free(cluster);
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    if (rc != 0) {
        fprintf(stderr, "fe_testsrv: handles still open at exit: %s\n", uv_strerror(rc));
        uv_print_all_handles(&loop, stderr);
        return 1;
    }
    return 0;
}
