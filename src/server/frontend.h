/*
 * frontend.h -- the client-facing servers of a raftkv node: the text protocol (seed 003 + mset/mget)
 * on node_self()->client_port and RESP2 on node_self()->resp_port, both on the node's libuv loop.
 *
 * WHAT IT DOES. Each connection's bytes go to the incremental parsers of proto_text.h/proto_resp.h;
 * writes become kv commands proposed with node_write() (deadlines from the leader's node_now_ms()),
 * reads wait for a node_read() barrier and then read node_kv() directly. Replies leave in request
 * order (pipelining) through Redis-style output buffers flushed once per loop iteration (conn.h).
 *
 * LEADER HANDLING. Text writes on a follower: "ERR_REDIRECT <host> <port>" (the leader's client
 * port), or, with config.text_forward, forwarded to the leader (forward.h) and its reply relayed.
 * RESP writes on a follower are always forwarded (Redis clients do not follow redirects). Reads are
 * served on every node. With no leader known, a request waits up to config.leader_wait_ms for one,
 * then gets ERR_INTERNAL (text) / "-ERR ... no leader" (RESP). A write whose outcome is unknown
 * (NODE_ELOST, NODE_ETIMEOUT, leader changed while forwarding) gets ERR_INTERNAL / "-ERR ...".
 * noreply (text) suppresses the reply of a well-formed command that succeeded; errors (including
 * ERR_REDIRECT) and malformed input are answered even with noreply.
 *
 * OWNERSHIP. frontend_open() allocates the front-end; frontend_close() stops accepting, closes every
 * connection (cancelling their node callbacks with node_cancel) and frees it once the loop has
 * closed its handles. The node must outlive the front-end (close the front-end first).
 * THREADS. Loop thread only.
 */
#ifndef RAFTKV_FRONTEND_H
#define RAFTKV_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node.h"

typedef struct frontend_config {
    const char *bind_host;   /* NULL: node_self()->host when it is an IP address, else 0.0.0.0 */
    bool text_forward;       /* text writes on a follower are forwarded instead of redirected */
    size_t max_value;        /* value limit in bytes; 0 = KV_MAX_VALUE_DEFAULT (1 MiB) */
    size_t max_line;         /* text command line limit; 0 = PROTO_TEXT_MAX_LINE_DEFAULT */
    uint32_t leader_wait_ms; /* how long a request waits for a leader to be known; 0 = 3000 */
    size_t output_limit;     /* unsent reply bytes that close a connection; 0 = 64 MiB */
    uint32_t max_pipeline;   /* requests in flight per connection before reading pauses; 0 = 1024 */
    uint32_t max_conns;      /* per protocol; 0 = 10000 */
    uint32_t forward_conns;  /* pooled connections to the leader per protocol; 0 = 2 */
    uint32_t forward_timeout_ms; /* a forwarded request without reply fails after; 0 = 10000 */
    /* One line per event worth an operator's attention (refused or closed connections, forwarding
     * failures). NULL: stderr with a "frontend: " prefix. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} frontend_config;

typedef struct frontend frontend;

/* Bind both ports (a port of 0 in node_self() binds an ephemeral port, for tests) and start
 * serving. Returns 0, or a negative libuv error after logging one line naming the port. */
int frontend_open(node *n, uv_loop_t *loop, const frontend_config *config, frontend **out);
void frontend_close(frontend *fe); /* NULL ok */
uint16_t frontend_text_port(const frontend *fe); /* the bound ports */
uint16_t frontend_resp_port(const frontend *fe);

typedef struct frontend_stats {
    uint32_t text_conns, resp_conns;
    uint64_t accepted, refused, closed_output_limit;
    uint64_t socket_writes, bytes_out; /* socket_writes < replies shows the batching */
    uint64_t requests, forwarded, redirected;
} frontend_stats;
void frontend_get_stats(const frontend *fe, frontend_stats *out);

/* The process-wide front-end of raftkvd: frontend_start opens it with the defaults,
 * frontend_start_config with config (NULL = defaults); frontend_stop closes it (call it before
 * node_stop, so no new request reaches a stopping node). Same return codes as frontend_open. */
int frontend_start(node *n, uv_loop_t *loop);
int frontend_start_config(node *n, uv_loop_t *loop, const frontend_config *config);
void frontend_stop(void);

#endif /* RAFTKV_FRONTEND_H */
