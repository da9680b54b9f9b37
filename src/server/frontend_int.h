/*
 * frontend_int.h -- what frontend.c (listeners, the request engine) shares with the two protocol
 * files, frontend_text.c and frontend_resp.c. Not a public header.
 *
 * A REQUEST (fe_req) is one client command that is not answered at once. It sits in its
 * connection's ordered queue (conn.h) and moves through these states:
 *
 *   NEW --propose--> WRITING --node callback--------------\
 *    |  --forward--> FORWARDING --fwd callback-------------+--> DONE (ready; emitted when it
 *    |  --read-----> BARRIER --node callback (data read)---/          reaches the head)
 *    |
 *    |  --------> BLOCKED  (its turn has not come, see ORDER; started by the walk)
 *    \--no leader--> WAITING (on the front-end's wait list until a leader is known -> the proto's
 *                    retry dispatches it again, or leader_wait_ms passes -> FE_ERR_NO_LEADER)
 *
 * ORDER. A connection's commands take effect in the order they were sent, as in Redis: writes are
 * pipelined among themselves (the log keeps their order), reads among themselves, but a read does
 * not start its barrier before every earlier write of the connection has an outcome (so a client
 * reads its own writes, even forwarded ones), and a write is not proposed before every earlier read
 * has its data (so a later write never shows in an earlier read). A read's data is taken when its
 * barrier completes (copied into the request unless it is at the head of the queue, where it is
 * written straight to the output).
 *
 * SESSIONS (fe_session) are the per-connection protocol state: parser, counters for the rule above,
 * and whether the peer is another node's forwarder (its requests are never forwarded again).
 */
#ifndef RAFTKV_FRONTEND_INT_H
#define RAFTKV_FRONTEND_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "forward.h"
#include "frontend.h"
#include "node.h"

typedef enum fe_err {
    FE_ERR_NONE = 0,
    FE_ERR_NO_LEADER, /* no leader known within leader_wait_ms */
    FE_ERR_UNKNOWN,   /* outcome unknown: leadership lost, timeout, forwarding failed */
    FE_ERR_BUSY,      /* the node or the forwarder refused: too much in flight */
    FE_ERR_TOO_BIG,   /* command over the node's size limit */
    FE_ERR_STOPPING,
    FE_ERR_NOT_LEADER, /* a forwarded request reached a node that is not the leader */
    FE_ERR_INTERNAL,   /* anything else (out of memory...) */
} fe_err;

typedef enum fe_state {
    FE_NEW = 0,
    FE_BLOCKED,
    FE_BARRIER,
    FE_WRITING,
    FE_FORWARDING,
    FE_WAITING,
    FE_DONE,
} fe_state;

typedef enum fe_reply {
    FE_REPLY_NONE = 0, /* noreply */
    FE_REPLY_BYTES,    /* bytes/bytes_len as they are */
    FE_REPLY_RESULT,   /* a write's kv_result */
    FE_REPLY_READ,     /* look the keys up now */
    FE_REPLY_ERROR,    /* err */
} fe_reply;

typedef struct fe_req fe_req;
typedef struct fe_session fe_session;

/* Where a reply goes: the connection's output (c != NULL), or a buffer kept in the request. */
typedef struct fe_out {
    conn *c;
    uint8_t *base;
    size_t len, cap;
    bool failed; /* out of memory */
} fe_out;
void fe_out_put(fe_out *out, const void *data, size_t len);

typedef struct fe_proto {
    conn_ops ops;                        /* ops.closed is fe_conn_closed */
    void *(*new_parser)(const frontend *fe); /* with the front-end's limits; NULL: out of memory */
    void (*free_parser)(void *parser);
    /* Write the reply of a DONE request (reply != FE_REPLY_NONE); for FE_REPLY_READ this reads the
     * store now. */
    void (*emit)(fe_req *req, fe_out *out);
    /* Dispatch a WAITING or BLOCKED write again from its copied command (req->cmd). */
    void (*retry)(fe_req *req);
} fe_proto;

struct fe_session {
    frontend *fe;
    conn *c;
    const fe_proto *proto;
    void *parser;
    bool forwarded;            /* the client is another node forwarding to us */
    uint32_t lane;             /* forwarding connection used for this client (keeps its order) */
    uint8_t preamble_matched;  /* text: bytes of FWD_TEXT_PREAMBLE seen so far */
    bool preamble_done;
    uint32_t unfinished_writes; /* queued writes without an outcome (blocked ones included) */
    uint32_t unfinished_reads;  /* queued reads without their data (blocked ones included) */
    uint32_t blocked;           /* requests in state BLOCKED */
    bool walking, walk_again;   /* guards the walk that starts blocked requests */
};

struct fe_req {
    conn_req base; /* first: the conn queue links it */
    fe_session *s;
    fe_req *wait_prev, *wait_next;
    uint64_t wait_deadline;
    uint64_t wait_gen;
    fe_state state;
    fe_reply reply;
    fe_err err;
    bool is_write;
    bool unfinished; /* not DONE yet: counted in s->unfinished_writes or s->unfinished_reads */
    bool noreply;
    int op; /* proto_text_op or proto_resp_name */
    kv_result result;
    fwd_call *fcall;
    uint8_t *bytes; /* FE_REPLY_BYTES, owned */
    size_t bytes_len;
    void *cmd; /* the protocol's own copy of the command (reads, waits), owned, free() */
};

struct frontend {
    uv_loop_t *loop;
    node *node;
    frontend_config config;
    uv_tcp_t text_listener, resp_listener;
    uint16_t text_port, resp_port;
    conn_group *text_conns, *resp_conns;
    fwd_pool *fwd_text, *fwd_resp;
    uv_timer_t wait_timer;
    bool wait_timer_on;
    fe_req *wait_head, *wait_tail;
    uint64_t wait_gen;
    uint32_t next_lane;
    kv_pair *pairs; /* KV_MAX_MULTI pairs: scratch for building kv commands */
    int open_handles;
    bool closing;
    frontend_stats stats;
};

void fe_logf(frontend *fe, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocate a request of s (extra bytes zeroed after it are unused) and queue it on s->c. */
fe_req *fe_req_new(fe_session *s, int op, bool is_write, bool noreply);
/* Transitions (see the top). Each may make the request DONE at once. fe_req_propose returns 0, or
 * NODE_ENOTLEADER/NODE_ENOLEADER with req untouched (leadership moved since the protocol checked:
 * it redirects, forwards or waits). */
int fe_req_propose(fe_req *req, const kv_cmd *cmd);
/* Like fe_req_propose for a membership change (node_change_member); also returns NODE_EMEMBER,
 * NODE_ECONFBUSY, NODE_EUNSAFE and NODE_ELAGGING with req untouched, for the protocol to answer. */
int fe_req_change_member(fe_req *req, raft_id id, node_member_op op, const node_peer *addr);
void fe_req_read(fe_req *req);
/* For a write about to be dispatched: true (and req BLOCKED) when an earlier read of the
 * connection has no data yet; the protocol keeps a copy of the command in req->cmd, and retry
 * dispatches it when its turn comes. */
bool fe_req_write_must_wait(fe_req *req);
void fe_req_forward(fe_req *req, fwd_pool *pool, const node_peer *leader, const uint8_t *bytes,
                    size_t len);
void fe_req_wait_leader(fe_req *req);
void fe_req_fail(fe_req *req, fe_err err);
/* Keeps copy (size bytes, the request's command: NULL when the copy failed) in req->cmd, counted
 * against the connection's limit (conn_req_hold); false, with req failed, when copy is NULL. */
bool fe_req_keep(fe_req *req, void *copy, size_t size);
void fe_req_done_bytes(fe_req *req, const void *bytes, size_t len);
void fe_req_done_none(fe_req *req);

/* conn_ops.closed of both protocols: frees the session and its parser. */
void fe_conn_closed(conn *c);

extern const fe_proto fe_text_proto;
extern const fe_proto fe_resp_proto;

#endif /* RAFTKV_FRONTEND_INT_H */
