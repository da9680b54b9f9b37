/*
 * forward.h -- forwarding client writes from a follower to the leader's client port.
 *
 * A fwd_pool keeps a few TCP connections (config.conns) to ONE target: the leader's text port or
 * its RESP port, depending on the pool's protocol. fwd_send() writes one complete request on the
 * connection of the caller's lane (one client's requests must reach the leader in the order the
 * client sent them, so they share one connection); requests are pipelined (no waiting for the previous reply) and each
 * connection's replies are matched to its requests in order, which is what both protocols
 * guarantee. Each connection starts with a preamble that tells the leader's front-end that it
 * serves a forwarder, so the leader never forwards such requests again (no forwarding loops): a
 * node that lost leadership answers them with a redirect / error instead.
 *
 * REPLIES are single lines: only writes are forwarded (reads are served locally on every node), and
 * every write reply of both protocols is one line ("OK 12", "DELETED", "ERR_VERSION", "+OK", ":1",
 * "$-1", "-ERR ..."). A reply that is not one line of at most FWD_MAX_REPLY bytes is a protocol
 * error: the connection is dropped and its requests fail with FWD_EPROTO.
 *
 * FAILURES. Every request gets its callback exactly once (unless cancelled): FWD_OK with the reply
 * line (including its \r\n), or an error -- the request may or may not have been applied by the
 * leader, so the caller reports "outcome unknown" (ERR_INTERNAL):
 *   FWD_ELEADER  the target changed (a new leader) while the request was in flight;
 *   FWD_ECONN    connecting, writing or reading failed, or the leader closed the connection;
 *   FWD_ETIMEOUT no reply within config.timeout_ms;
 *   FWD_EPROTO   the reply could not be framed;
 *   FWD_ESTOPPING the pool was closed.
 * fwd_send itself returns FWD_EBUSY (config.max_inflight requests already in flight) or
 * FWD_ENOMEM, and then the callback never fires.
 *
 * OWNERSHIP. The request bytes are copied. The reply passed to the callback is valid only during the
 * callback. A fwd_call handle is valid until its callback fires or it is cancelled; fwd_cancel()
 * guarantees the callback never fires (the reply, when it comes, is still consumed in order).
 * THREADS: loop thread only.
 */
#ifndef RAFTKV_FORWARD_H
#define RAFTKV_FORWARD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node.h"

#define FWD_MAX_REPLY 1024
#define FWD_TEXT_PREAMBLE "RAFTKV-FORWARDED\r\n" /* first bytes on a forwarder's text connection */
#define FWD_RESP_COMMAND "RAFTKV.FORWARDED"      /* first command on a forwarder's RESP connection */

enum {
    FWD_OK = 0,
    FWD_ELEADER = -1,
    FWD_ECONN = -2,
    FWD_ETIMEOUT = -3,
    FWD_EPROTO = -4,
    FWD_ESTOPPING = -5,
    FWD_EBUSY = -6,
    FWD_ENOMEM = -7,
};
const char *fwd_strerror(int rc);

typedef enum fwd_proto {
    FWD_PROTO_TEXT = 0, /* to node_peer.client_port */
    FWD_PROTO_RESP = 1, /* to node_peer.resp_port */
} fwd_proto;

typedef struct fwd_config {
    uint32_t conns;        /* connections to the leader; 0 = 2 */
    uint32_t max_inflight; /* requests in flight in the pool; 0 = 8192 */
    uint32_t timeout_ms;   /* per request; 0 = 10000 */
} fwd_config;

typedef struct fwd_pool fwd_pool;
typedef struct fwd_call fwd_call;
typedef void (*fwd_reply_cb)(void *ctx, int status, const uint8_t *reply, size_t len);
typedef void (*fwd_log_fn)(void *ctx, const char *line);

/* NULL config = defaults; log NULL = stderr. NULL when out of memory. */
fwd_pool *fwd_pool_new(uv_loop_t *loop, fwd_proto proto, const fwd_config *config, fwd_log_fn log,
                       void *log_ctx);
/* Fail every request in flight with FWD_ESTOPPING (callbacks run inside this call), close the
 * connections; the pool frees itself once the loop closed them. */
void fwd_pool_close(fwd_pool *pool);

/* Send request bytes (one complete request of the pool's protocol) to leader, on connection
 * lane % config.conns: requests of one lane keep their order at the leader, so a client connection
 * passes the same lane every time. When leader differs from the current target (id, host or port),
 * the connections to the old one are dropped first and their requests fail with FWD_ELEADER.
 * On success returns 0 and sets *call (may be NULL). */
int fwd_send(fwd_pool *pool, const node_peer *leader, uint32_t lane, const uint8_t *req, size_t len,
             fwd_reply_cb cb, void *ctx, fwd_call **call);
void fwd_cancel(fwd_call *call);

uint32_t fwd_inflight(const fwd_pool *pool);

#endif /* RAFTKV_FORWARD_H */
