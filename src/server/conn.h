/*
 * conn.h -- client connections of the front-ends: the socket, input hand-off, Redis-style output
 * buffering and replies kept in request order.
 *
 * A conn_group holds every connection of one front-end listener set on one loop. A protocol module
 * (frontend_text.c, frontend_resp.c) accepts connections into it with its conn_ops and sees:
 *
 * INPUT. on_data(c, bytes) is called with what arrived; it returns how many bytes it took. It takes
 * fewer only when conn_accepting() turned false (too many requests in flight, too many bytes kept for
 * them, or too much output unsent): the conn then keeps the rest, stops reading the socket (backpressure reaches the client
 * through TCP), and offers the rest again once the pipeline drained. Reads go through one buffer
 * shared by the group, so an idle connection holds no input memory.
 *
 * ORDER. Every request that is not answered at once gets a conn_req, pushed in arrival order
 * (conn_req_push). When its outcome is known the protocol marks it ready (conn_req_ready); ready
 * requests at the head of the queue are finished (req->finish(req, c)) one after the other, and that
 * is where the reply bytes are written. So replies leave strictly in request order whatever order
 * the node completes them in. conn_reply() answers at once when nothing is queued, else queues a
 * ready copy of the bytes.
 *
 * OUTPUT (as Redis's networking.c does it). Replies are copied into a CONN_OUT_BUF buffer allocated
 * once per connection (on its first reply); what does not fit goes to a list of blocks. Nothing is
 * written to the socket when a reply is produced: the group's uv_prepare handle writes every
 * connection with pending output just before the loop sleeps, so all the replies of one loop
 * iteration share one write. Unsent bytes above limits.output_limit close the connection (one log
 * line); above limits.output_pause the conn stops taking input until the client reads.
 *
 * CLOSE. conn_close() closes now: every queued request is finished with c == NULL (the protocol must
 * cancel its node or forward callbacks there and free the request), then the handle closes and the
 * conn is freed by the loop. conn_close_after_replies() stops taking input, lets the queued replies
 * go out, half-closes and drains what the client still sends (so the last reply is not destroyed by
 * a TCP reset) for at most CONN_LINGER_MS, then closes.
 *
 * OWNERSHIP. The group owns its conns; a conn pointer is valid until its ops->closed callback. Requests
 * are allocated by the protocol and freed by their finish function. THREADS: loop thread only.
 */
#ifndef RAFTKV_CONN_H
#define RAFTKV_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define CONN_OUT_BUF (16 * 1024)     /* per-connection reply buffer, allocated once */
#define CONN_READ_BUF (64 * 1024)    /* the group's shared read buffer */
#define CONN_LINGER_MS 2000          /* max time a closing conn drains the client's input */
#define CONN_LINGER_MAX_DISCARD (1u << 20) /* bytes drained while lingering before closing at once */

typedef struct conn conn;
typedef struct conn_group conn_group;
typedef struct conn_req conn_req;

/* Embed as the first member of a protocol's request struct. finish is called when the request
 * leaves the queue: write its reply (c != NULL) or abandon it (c == NULL: the conn is closing, cancel
 * any node/forward callback that still points at it). finish must free req in both cases. */
typedef void (*conn_finish_fn)(conn_req *req, conn *c);
struct conn_req {
    conn_req *next;
    conn_finish_fn finish;
    size_t held; /* bytes the protocol keeps for it (conn_req_hold) */
    bool ready;
};

typedef struct conn_ops {
    const char *name; /* "text" / "resp", for log lines */
    /* Bytes arrived: take them (see INPUT); returns how many were taken. */
    size_t (*on_data)(conn *c, const uint8_t *data, size_t len);
    /* The conn is gone (after every finish): free the protocol state. */
    void (*closed)(conn *c);
} conn_ops;

typedef struct conn_limits {
    size_t output_limit;   /* unsent bytes that close the connection; 0 = 64 MiB */
    size_t output_pause;   /* unsent bytes that pause input; 0 = 256 KiB */
    uint32_t max_pipeline; /* queued requests that pause input; 0 = 1024 */
    size_t held_pause;     /* bytes kept by queued requests (conn_req_hold) that pause input; 0 = 8 MiB */
    uint32_t max_conns;    /* connections in the group; more are refused; 0 = 10000 */
} conn_limits;

typedef void (*conn_log_fn)(void *ctx, const char *line);

/* NULL limits = defaults; log NULL = stderr. Returns NULL when out of memory. */
conn_group *conn_group_new(uv_loop_t *loop, const conn_limits *limits, conn_log_fn log, void *log_ctx);
/* Close every connection now (as conn_close) and the group's handles; the group frees itself once
 * the loop has closed them all. The caller must not use the group afterwards. */
void conn_group_close(conn_group *group);
uint32_t conn_group_count(const conn_group *group);
/* Write every connection's pending output now instead of in the group's prepare callback (the
 * node calls this through node_set_reply_flush so replies leave before its peer messages). Only
 * writes: input waiting to resume is left to the group's own flush, so no request is parsed and no
 * node call made from inside the caller. */
void conn_group_flush(conn_group *group);

/* Accept one pending connection of server into the group with ops and proto (conn_proto()).
 * Returns the conn (ops->closed will be called for it, exactly once), or NULL when refused (limit:
 * logged) or on error; proto is not touched then. */
conn *conn_accept(conn_group *group, uv_stream_t *server, const conn_ops *ops, void *proto);

void *conn_proto(const conn *c);
conn_group *conn_group_of(const conn *c);
const char *conn_peer_name(const conn *c); /* "ip:port" of the client */
/* True while the conn takes more requests (not closing, pipeline and output below their limits). */
bool conn_accepting(const conn *c);
bool conn_is_closing(const conn *c);

/* Append reply bytes to the output in order. The caller keeps data. */
void conn_write(conn *c, const void *data, size_t len);
/* Answer now if nothing is queued, else queue a ready copy. */
void conn_reply(conn *c, const void *data, size_t len);

/* Queue req (its finish set by the caller; ready is cleared). */
void conn_req_push(conn *c, conn_req *req);
void conn_req_ready(conn *c, conn_req *req);
/* Count bytes the protocol keeps for queued req (a copy of its command, a reply taken early) until
 * req leaves the queue: input pauses while they reach limits.held_pause, so a client cannot make
 * the server hold more than that (plus one command) by pipelining writes that must wait. */
void conn_req_hold(conn *c, conn_req *req, size_t bytes);
conn_req *conn_req_head(const conn *c);
uint32_t conn_req_count(const conn *c);

void conn_close(conn *c, const char *reason);      /* reason NULL: no log line */
void conn_close_after_replies(conn *c, const char *reason);

/* Log a line through the group's log function, prefixed with the conn's protocol and peer. */
void conn_logf(const conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct conn_stats {
    uint64_t accepted, refused, closed_output_limit;
    uint64_t bytes_in, bytes_out, writes; /* writes = socket write calls */
} conn_stats;
void conn_group_stats(const conn_group *group, conn_stats *out);

#endif /* RAFTKV_CONN_H */
