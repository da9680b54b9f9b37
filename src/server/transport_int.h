/*
 * transport_int.h -- what the three files of the peer transport share (not a public header):
 *   transport.c            connections, queues and writes, reads and frame dispatch, dialing with
 *                          backoff, accepting, start/close
 *   transport_handshake.c  HELLO / WELCOME / AUTH / REFUSE, the HMAC over the nonces
 *   transport_snap.c       streaming a snapshot file in SNAP frames, SNAP_RESUME
 * Formats and rules are in transport.h. Everything runs on the loop thread.
 */
#ifndef RAFTKV_TRANSPORT_INT_H
#define RAFTKV_TRANSPORT_INT_H

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>

#include "snap.h"
#include "transport.h"

#define FRAME_HEADER 5
#define FRAME_MAX (256u * 1024 * 1024) /* larger frames are a protocol error: close */
#define MAGIC 0x31564b52u              /* "RKV1" little-endian */
#define PROTO_VERSION 1
#define NONCE_BYTES 32
#define MAC_BYTES crypto_auth_hmacsha256_BYTES
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define READ_CHUNK (64 * 1024)
#define HANDSHAKE_FRAME_MAX 4096
#define PEER_USER_TIMEOUT_MS 5000 /* as etcd's 5-s peer read/write timeouts */
#define MAX_HANDSHAKING 64 /* inbound connections still in their handshake */
#define REFUSAL_QUIET_MS 30000
#define TP_FORGOTTEN 64 /* forgotten ids whose handshakes are still accepted */

enum { F_HELLO = 1, F_WELCOME = 2, F_AUTH = 3, F_REFUSE = 4, F_MSG = 5, F_SNAP = 6,
       F_SNAP_RESUME = 7 };
enum { C_HELLO_WAIT, C_AUTH_WAIT, C_WELCOME_WAIT, C_READY };

typedef struct peer_out peer_out;

typedef struct conn {
    uv_tcp_t tcp; /* first: the handle's address is the conn's */
    transport *t;
    peer_out *out; /* NULL for an inbound connection */
    struct conn *next; /* inbound list */
    int state;
    bool closing, paused;
    raft_id peer_id; /* inbound: from its HELLO */
    uint8_t nonce_c[NONCE_BYTES], nonce_s[NONCE_BYTES];
    uint8_t *rbuf;
    size_t rlen, rcap;
    uint64_t opened_ms;
    char addr[64];
} conn;

struct peer_out {
    transport *t;
    node_peer addr;
    conn *c;  /* current outbound connection, NULL between attempts */
    uv_timer_t retry;
    uv_getaddrinfo_t *resolving; /* a name lookup in progress, or NULL */
    uint64_t backoff_ms;
    bool reported_down; /* "unreachable" logged once per outage */
    bool was_up;
    uv_buf_t *batch;    /* frames not yet handed to uv_write */
    size_t n_batch, cap_batch;
    uint64_t queued;    /* bytes in batch + bytes in flight */
    /* The snapshot being streamed (reader != NULL). */
    snap_reader *snap;
    uint8_t *snap_msg;
    size_t snap_msg_len;
    uint64_t snap_offset, snap_total;
    raft_index snap_index;
    raft_term snap_term;
    bool snap_started;
    /* Forgotten (transport_remove_peer): out of t->outs, freed by release_retired once its
     * timer, connections and name lookup are all closed (each still points at it). */
    bool retired;
    bool timer_closed;
    unsigned conns; /* outbound connections not closed yet */
};

struct transport {
    uv_loop_t *loop;
    transport_config cfg;
    node_peer peers[RAFT_MAX_NODES];
    char cluster_id[128];
    char secret[256];
    size_t secret_len;
    transport_cbs cbs;
    uv_tcp_t listener;
    uv_timer_t sweep;
    peer_out *outs[RAFT_MAX_NODES]; /* one per known peer (allocated: handles point at them) */
    uint32_t n_outs;
    conn *inbound;
    transport_stats stats;
    bool closing;
    bool warned_handshaking; /* the MAX_HANDSHAKING refusal is logged once per burst */
    struct {                 /* recent refusal lines, to log a repeated one once per period */
        char key[160];
        uint64_t at_ms;
        unsigned suppressed;
    } refusals[8];
    int open_handles;
    raft_id forgotten[TP_FORGOTTEN]; /* the last ids transport_remove_peer took: still accepted */
    uint32_t n_forgotten; /* how many were ever taken (the ring's next slot, modulo its size) */
};


/* ---- little-endian helpers ------------------------------------------------------------------ */

static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* transport.c */
uint8_t *tp_frame_new(uint8_t kind, size_t payload); /* header filled; NULL if out of memory */
void tp_send_frame(conn *c, uint8_t *frame);           /* handshake frame; takes frame */
bool tp_enqueue(peer_out *p, uint8_t *frame);          /* within the queue bound; takes frame */
void tp_flush_peer(peer_out *p);
peer_out *tp_find_out(transport *t, raft_id id);
void tp_conn_close(conn *c, const char *why); /* why != NULL: log a disconnect */

/* transport_handshake.c */
void tp_refuse(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Counts a refused handshake and logs "handshake refused: <text>", but the same key at most once
 * per REFUSAL_QUIET_MS (a misconfigured node redials every 2 s). */
void tp_log_refusal(transport *t, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tp_send_hello(conn *c);
void tp_on_hello(conn *c, const uint8_t *q, size_t len);
void tp_on_welcome(conn *c, const uint8_t *q, size_t len);
void tp_on_auth(conn *c, const uint8_t *q, size_t len);

/* transport_snap.c */
void tp_snap_start(peer_out *p, const raft_msg *msg, const uint8_t *enc, size_t enc_len);
void tp_snap_pump(peer_out *p);
void tp_snap_end(peer_out *p, bool failed);
void tp_on_snap_frame(conn *c, const uint8_t *q, size_t len);
void tp_on_snap_resume(conn *c, const uint8_t *q, size_t len);

#endif /* RAFTKV_TRANSPORT_INT_H */
