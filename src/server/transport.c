/*
 * transport.c -- peer connections over libuv TCP (the design and frame formats are in
 * transport.h). Layout: frame helpers, writes and queues, snapshot streams, the handshake, reads,
 * outbound dialing with backoff, inbound accepting, start/close.
 */
#include "transport.h"

#include <netdb.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "raft_codec.h"
#include "snap.h"
#include "vfs.h"

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
#define MAX_HANDSHAKING 64 /* inbound connections still in their handshake */

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
    peer_out outs[RAFT_MAX_NODES];
    uint32_t n_outs;
    conn *inbound;
    transport_stats stats;
    bool closing;
    bool warned_handshaking; /* the MAX_HANDSHAKING refusal is logged once per burst */
    int open_handles;
};

/* ---- little-endian helpers ------------------------------------------------------------------ */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint8_t *frame_new(uint8_t kind, size_t payload)
{
    uint8_t *f = malloc(FRAME_HEADER + payload);
    if (f != NULL) {
        put32(f, (uint32_t)payload);
        f[4] = kind;
    }
    return f;
}

/* ---- handles -------------------------------------------------------------------------------- */

static void maybe_free(transport *t)
{
    if (t->closing && t->open_handles == 0) {
        for (uint32_t i = 0; i < t->n_outs; i++)
            free(t->outs[i].batch);
        free(t);
    }
}

static void handle_closed_cb(uv_handle_t *h)
{
    transport *t = h->data;
    t->open_handles--;
    maybe_free(t);
}

static void conn_closed_cb(uv_handle_t *h)
{
    conn *c = (conn *)h;
    transport *t = c->t;
    free(c->rbuf);
    free(c);
    t->open_handles--;
    maybe_free(t);
}

/* ---- writes and queues ---------------------------------------------------------------------- */

typedef struct wreq {
    uv_write_t req;
    peer_out *p; /* NULL: a handshake frame, not counted in a queue */
    uint64_t bytes;
    size_t n;
    uv_buf_t bufs[];
} wreq;

static void snap_pump(peer_out *p);

static void write_cb(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    (void)status; /* a failed write shows up as a read error / close on the same connection */
    for (size_t i = 0; i < w->n; i++)
        free(w->bufs[i].base);
    peer_out *p = w->p;
    if (p != NULL) {
        p->queued -= w->bytes;
        if (p->snap != NULL && !p->t->closing)
            snap_pump(p);
    }
    free(w);
}

static int conn_write(conn *c, peer_out *p, uv_buf_t *bufs, size_t n, uint64_t bytes)
{
    wreq *w = malloc(sizeof *w + n * sizeof(uv_buf_t));
    if (w == NULL)
        goto fail;
    w->p = p;
    w->bytes = bytes;
    w->n = n;
    memcpy(w->bufs, bufs, n * sizeof(uv_buf_t));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, (unsigned)n, write_cb) == 0)
        return 0;
    free(w);
fail:
    for (size_t i = 0; i < n; i++)
        free(bufs[i].base);
    if (p != NULL)
        p->queued -= bytes;
    return -1;
}

/* A single frame straight to a connection (handshake). Takes ownership of frame. */
static void send_frame(conn *c, uint8_t *frame)
{
    size_t len = FRAME_HEADER + get32(frame);
    uv_buf_t buf = uv_buf_init((char *)frame, (unsigned)len);
    conn_write(c, NULL, &buf, 1, 0);
}

static void flush_peer(peer_out *p)
{
    if (p->n_batch == 0)
        return;
    uint64_t bytes = 0;
    for (size_t i = 0; i < p->n_batch; i++)
        bytes += p->batch[i].len;
    if (p->c != NULL && p->c->state == C_READY && !p->c->closing) {
        p->t->stats.bytes_sent += bytes;
        conn_write(p->c, p, p->batch, p->n_batch, bytes);
    } else {
        for (size_t i = 0; i < p->n_batch; i++)
            free(p->batch[i].base);
        p->queued -= bytes;
    }
    p->n_batch = 0;
}

/* Adds a frame to p's batch if the queue bound allows; takes ownership of frame. */
static bool enqueue(peer_out *p, uint8_t *frame)
{
    size_t len = FRAME_HEADER + get32(frame);
    bool ready = p->c != NULL && p->c->state == C_READY && !p->c->closing;
    if (!ready || (p->queued > 0 && p->queued + len > p->t->cfg.queue_bytes)) {
        free(frame);
        return false;
    }
    if (p->n_batch == p->cap_batch) {
        size_t cap = p->cap_batch ? 2 * p->cap_batch : 64;
        uv_buf_t *b = realloc(p->batch, cap * sizeof *b);
        if (b == NULL) {
            free(frame);
            return false;
        }
        p->batch = b;
        p->cap_batch = cap;
    }
    p->batch[p->n_batch++] = uv_buf_init((char *)frame, (unsigned)len);
    p->queued += len;
    if (p->n_batch >= 1024) /* keep one writev within IOV_MAX */
        flush_peer(p);
    return true;
}

static peer_out *find_out(transport *t, raft_id id)
{
    for (uint32_t i = 0; i < t->n_outs; i++)
        if (t->outs[i].addr.id == id)
            return &t->outs[i];
    return NULL;
}

/* ---- snapshot streams ----------------------------------------------------------------------- */

static void snap_end(peer_out *p, bool failed)
{
    if (p->snap == NULL)
        return;
    snap_reader_close(p->snap);
    p->snap = NULL;
    free(p->snap_msg);
    p->snap_msg = NULL;
    if (failed) {
        log_printf("snapshot to peer %llu: stopped at %llu of %llu bytes",
                   (unsigned long long)p->addr.id, (unsigned long long)p->snap_offset,
                   (unsigned long long)p->snap_total);
        if (!p->t->closing && p->t->cbs.on_snap_failed != NULL)
            p->t->cbs.on_snap_failed(p->t->cbs.ctx, p->addr.id);
    } else {
        p->t->stats.snapshots_sent++;
        log_printf("snapshot to peer %llu: sent %llu bytes", (unsigned long long)p->addr.id,
                   (unsigned long long)p->snap_total);
    }
}

static void snap_pump(peer_out *p)
{
    transport *t = p->t;
    bool sent = false;
    /* At most two chunks queued: heartbeats and appends share the connection and must not wait
     * behind megabytes of snapshot, and the loop thread reads one chunk at a time. */
    uint64_t limit = 2 * t->cfg.chunk_bytes < t->cfg.queue_bytes ? 2 * t->cfg.chunk_bytes
                                                                  : t->cfg.queue_bytes;
    while (p->snap != NULL && (p->queued == 0 || p->queued < limit)) {
        if (p->c == NULL || p->c->state != C_READY) {
            snap_end(p, true);
            return;
        }
        uint64_t left = p->snap_total - p->snap_offset;
        size_t n = left < t->cfg.chunk_bytes ? (size_t)left : (size_t)t->cfg.chunk_bytes;
        size_t payload = 20 + p->snap_msg_len + n;
        uint8_t *f = frame_new(F_SNAP, payload);
        if (f == NULL) {
            snap_end(p, true);
            return;
        }
        uint8_t *q = f + FRAME_HEADER;
        put64(q, p->snap_offset);
        put64(q + 8, p->snap_total);
        put32(q + 16, (uint32_t)p->snap_msg_len);
        memcpy(q + 20, p->snap_msg, p->snap_msg_len);
        size_t got = 0;
        /* The read is a pread of at most chunk_bytes, usually from the page cache. */
        if (n > 0 && (snap_reader_read(p->snap, p->snap_offset, q + 20 + p->snap_msg_len, n,
                                       &got) != SNAP_OK || got != n)) {
            free(f);
            snap_end(p, true);
            return;
        }
        if (!enqueue(p, f)) {
            snap_end(p, true);
            return;
        }
        sent = true;
        p->snap_offset += n;
        p->snap_started = true;
        if (p->snap_offset == p->snap_total)
            snap_end(p, false);
    }
    if (sent)
        flush_peer(p);
}

static void snap_start(peer_out *p, const raft_msg *msg, const uint8_t *enc, size_t enc_len)
{
    transport *t = p->t;
    snap_end(p, true); /* a newer snapshot replaces one in flight */
    char err[SNAP_ERRMSG_SIZE] = "";
    snap_reader *r;
    if (snap_reader_open(t->cfg.snapshot_dir, vfs_posix(), msg->snapshot.index, &r, err) !=
        SNAP_OK) {
        log_printf("snapshot to peer %llu: cannot open snapshot %llu: %s",
                   (unsigned long long)p->addr.id, (unsigned long long)msg->snapshot.index, err);
        if (t->cbs.on_snap_failed != NULL)
            t->cbs.on_snap_failed(t->cbs.ctx, p->addr.id);
        return;
    }
    p->snap_msg = malloc(enc_len);
    if (p->snap_msg == NULL) {
        snap_reader_close(r);
        if (t->cbs.on_snap_failed != NULL)
            t->cbs.on_snap_failed(t->cbs.ctx, p->addr.id);
        return;
    }
    memcpy(p->snap_msg, enc, enc_len);
    p->snap_msg_len = enc_len;
    p->snap = r;
    p->snap_offset = 0;
    p->snap_total = snap_reader_size(r);
    p->snap_index = msg->snapshot.index;
    p->snap_term = msg->snapshot.term;
    p->snap_started = false;
    log_printf("snapshot to peer %llu: sending index %llu term %llu, %llu bytes",
               (unsigned long long)p->addr.id, (unsigned long long)msg->snapshot.index,
               (unsigned long long)msg->snapshot.term, (unsigned long long)p->snap_total);
    snap_pump(p);
}

void transport_send(transport *t, const raft_msg *msg)
{
    peer_out *p = find_out(t, msg->to);
    if (p == NULL || t->closing) {
        t->stats.msgs_dropped++;
        return;
    }
    size_t size = raft_codec_msg_size(msg);
    if (size == SIZE_MAX || size > FRAME_MAX - 64) {
        t->stats.msgs_dropped++;
        return;
    }
    uint8_t *f = frame_new(F_MSG, size);
    if (f == NULL || raft_codec_msg_encode(msg, f + FRAME_HEADER, size, NULL) != RAFT_OK) {
        free(f);
        t->stats.msgs_dropped++;
        return;
    }
    if (msg->type == RAFT_MSG_SNAPSHOT) {
        bool ready = p->c != NULL && p->c->state == C_READY;
        if (ready)
            snap_start(p, msg, f + FRAME_HEADER, size);
        else if (t->cbs.on_snap_failed != NULL)
            t->cbs.on_snap_failed(t->cbs.ctx, p->addr.id);
        free(f);
        return;
    }
    if (enqueue(p, f))
        t->stats.msgs_sent++;
    else
        t->stats.msgs_dropped++;
}

void transport_flush(transport *t)
{
    for (uint32_t i = 0; i < t->n_outs; i++)
        flush_peer(&t->outs[i]);
}

/* ---- connection teardown -------------------------------------------------------------------- */

static void schedule_retry(peer_out *p);

static void conn_close(conn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    transport *t = c->t;
    if (c->out != NULL) {
        peer_out *p = c->out;
        if (c->state == C_READY && why != NULL)
            log_printf("peer %llu: disconnected (outbound %s): %s", (unsigned long long)p->addr.id,
                       c->addr, why);
        p->c = NULL;
        flush_peer(p); /* drops the batch: nothing is ready to carry it */
        snap_end(p, true);
        if (!t->closing)
            schedule_retry(p);
    } else {
        if (c->state == C_READY && why != NULL)
            log_printf("peer %llu: disconnected (inbound from %s): %s",
                       (unsigned long long)c->peer_id, c->addr, why);
        for (conn **pp = &t->inbound; *pp != NULL; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                break;
            }
    }
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

static void refuse(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(conn *c, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    c->t->stats.handshakes_refused++;
    log_printf("handshake refused: inbound from %s: %s", c->addr, reason);
    size_t n = strlen(reason);
    uint8_t *f = frame_new(F_REFUSE, n);
    if (f != NULL) {
        memcpy(f + FRAME_HEADER, reason, n);
        send_frame(c, f);
    }
    conn_close(c, NULL);
}

/* ---- handshake ------------------------------------------------------------------------------ */

static bool has_secret(const transport *t)
{
    return t->secret_len > 0;
}

static void compute_mac(const transport *t, const char *label, raft_id from, raft_id to,
                        const uint8_t *nonce_c, const uint8_t *nonce_s, uint8_t *mac)
{
    if (!has_secret(t)) {
        memset(mac, 0, MAC_BYTES);
        return;
    }
    crypto_auth_hmacsha256_state st;
    uint8_t ids[16];
    put64(ids, from);
    put64(ids + 8, to);
    crypto_auth_hmacsha256_init(&st, (const uint8_t *)t->secret, t->secret_len);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, 8);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)t->cluster_id, strlen(t->cluster_id));
    crypto_auth_hmacsha256_update(&st, ids, sizeof ids);
    crypto_auth_hmacsha256_update(&st, nonce_c, NONCE_BYTES);
    crypto_auth_hmacsha256_update(&st, nonce_s, NONCE_BYTES);
    crypto_auth_hmacsha256_final(&st, mac);
}

static void send_hello(conn *c)
{
    transport *t = c->t;
    size_t cid = strlen(t->cluster_id);
    size_t payload = 4 + 2 + 1 + 8 + 8 + NONCE_BYTES + 2 + cid;
    uint8_t *f = frame_new(F_HELLO, payload);
    if (f == NULL) {
        conn_close(c, "out of memory");
        return;
    }
    uint8_t *q = f + FRAME_HEADER;
    randombytes_buf(c->nonce_c, NONCE_BYTES);
    put32(q, MAGIC);
    put16(q + 4, PROTO_VERSION);
    q[6] = has_secret(t) ? 1 : 0;
    put64(q + 7, t->cfg.self);
    put64(q + 15, c->out->addr.id);
    memcpy(q + 23, c->nonce_c, NONCE_BYTES);
    put16(q + 23 + NONCE_BYTES, (uint16_t)cid);
    memcpy(q + 25 + NONCE_BYTES, t->cluster_id, cid);
    send_frame(c, f);
    c->state = C_WELCOME_WAIT;
}

static bool known_peer(const transport *t, raft_id id)
{
    for (uint32_t i = 0; i < t->cfg.n_peers; i++)
        if (t->peers[i].id == id)
            return true;
    return false;
}

static void on_hello(conn *c, const uint8_t *q, size_t len)
{
    transport *t = c->t;
    if (len < 25 + NONCE_BYTES || get32(q) != MAGIC) {
        refuse(c, "not a raftkv peer (bad hello)");
        return;
    }
    if (get16(q + 4) != PROTO_VERSION) {
        refuse(c, "protocol version %u, this node speaks %u", get16(q + 4), PROTO_VERSION);
        return;
    }
    bool secret = q[6] & 1;
    raft_id from = get64(q + 7), to = get64(q + 15);
    size_t cid = get16(q + 23 + NONCE_BYTES);
    if (25 + NONCE_BYTES + cid != len) {
        refuse(c, "malformed hello");
        return;
    }
    const char *their_cid = (const char *)q + 25 + NONCE_BYTES;
    if (cid != strlen(t->cluster_id) || memcmp(their_cid, t->cluster_id, cid) != 0) {
        refuse(c, "node %llu is in cluster \"%.*s\", this is cluster \"%s\"",
               (unsigned long long)from, (int)(cid > 64 ? 64 : cid), their_cid, t->cluster_id);
        return;
    }
    if (to != t->cfg.self) {
        refuse(c, "node %llu dialed node %llu, this is node %llu", (unsigned long long)from,
               (unsigned long long)to, (unsigned long long)t->cfg.self);
        return;
    }
    if (from == t->cfg.self || !known_peer(t, from)) {
        refuse(c, "node id %llu is not a peer in this cluster's peers file",
               (unsigned long long)from);
        return;
    }
    if (secret != has_secret(t)) {
        refuse(c, "node %llu %s a cluster_secret, this node %s", (unsigned long long)from,
               secret ? "has" : "has no", has_secret(t) ? "has one" : "has none");
        return;
    }
    c->peer_id = from;
    memcpy(c->nonce_c, q + 23, NONCE_BYTES);
    randombytes_buf(c->nonce_s, NONCE_BYTES);
    uint8_t *f = frame_new(F_WELCOME, 8 + NONCE_BYTES + MAC_BYTES);
    if (f == NULL) {
        conn_close(c, "out of memory");
        return;
    }
    put64(f + FRAME_HEADER, t->cfg.self);
    memcpy(f + FRAME_HEADER + 8, c->nonce_s, NONCE_BYTES);
    compute_mac(t, "raftkv-s", from, t->cfg.self, c->nonce_c, c->nonce_s,
                f + FRAME_HEADER + 8 + NONCE_BYTES);
    send_frame(c, f);
    c->state = C_AUTH_WAIT;
}

static void on_welcome(conn *c, const uint8_t *q, size_t len)
{
    transport *t = c->t;
    peer_out *p = c->out;
    if (len != 8 + NONCE_BYTES + MAC_BYTES || get64(q) != p->addr.id) {
        t->stats.handshakes_refused++;
        log_printf("handshake refused: peer %llu at %s answered as node %llu",
                   (unsigned long long)p->addr.id, c->addr,
                   (unsigned long long)(len >= 8 ? get64(q) : 0));
        conn_close(c, NULL);
        return;
    }
    memcpy(c->nonce_s, q + 8, NONCE_BYTES);
    uint8_t mac[MAC_BYTES];
    compute_mac(t, "raftkv-s", t->cfg.self, p->addr.id, c->nonce_c, c->nonce_s, mac);
    if (has_secret(t) && crypto_verify_32(mac, q + 8 + NONCE_BYTES) != 0) {
        t->stats.handshakes_refused++;
        log_printf("handshake refused: peer %llu at %s does not hold our cluster_secret",
                   (unsigned long long)p->addr.id, c->addr);
        conn_close(c, NULL);
        return;
    }
    uint8_t *f = frame_new(F_AUTH, MAC_BYTES);
    if (f == NULL) {
        conn_close(c, "out of memory");
        return;
    }
    compute_mac(t, "raftkv-c", t->cfg.self, p->addr.id, c->nonce_c, c->nonce_s, f + FRAME_HEADER);
    send_frame(c, f);
    c->state = C_READY;
    p->backoff_ms = 0;
    p->reported_down = false;
    p->was_up = true;
    log_printf("peer %llu: connected (outbound %s)", (unsigned long long)p->addr.id, c->addr);
}

static void on_auth(conn *c, const uint8_t *q, size_t len)
{
    transport *t = c->t;
    uint8_t mac[MAC_BYTES];
    compute_mac(t, "raftkv-c", c->peer_id, t->cfg.self, c->nonce_c, c->nonce_s, mac);
    if (len != MAC_BYTES || (has_secret(t) && crypto_verify_32(mac, q) != 0)) {
        refuse(c, "node %llu does not hold our cluster_secret", (unsigned long long)c->peer_id);
        return;
    }
    c->state = C_READY;
    log_printf("peer %llu: connected (inbound from %s)", (unsigned long long)c->peer_id, c->addr);
}

/* ---- reads ---------------------------------------------------------------------------------- */

static void on_msg_frame(conn *c, const uint8_t *q, size_t len)
{
    transport *t = c->t;
    raft_msg m;
    char err[160];
    if (raft_codec_msg_decode(q, len, &m, err, sizeof err) != RAFT_OK) {
        log_printf("peer %llu: undecodable message (%s): closing", (unsigned long long)c->peer_id,
                   err);
        conn_close(c, NULL);
        return;
    }
    if (m.from != c->peer_id || m.to != t->cfg.self) {
        log_printf("peer %llu: message from %llu to %llu on its connection: dropped",
                   (unsigned long long)c->peer_id, (unsigned long long)m.from,
                   (unsigned long long)m.to);
    } else {
        t->stats.msgs_received++;
        t->cbs.on_msg(t->cbs.ctx, &m);
    }
    raft_codec_msg_release(&m);
}

static void on_snap_frame(conn *c, const uint8_t *q, size_t len)
{
    transport *t = c->t;
    raft_msg m;
    char err[160];
    size_t mlen = len >= 20 ? get32(q + 16) : 0;
    if (len < 20 || mlen > len - 20 ||
        raft_codec_msg_decode(q + 20, mlen, &m, err, sizeof err) != RAFT_OK ||
        m.type != RAFT_MSG_SNAPSHOT || m.from != c->peer_id || m.to != t->cfg.self) {
        log_printf("peer %llu: malformed snapshot chunk: closing", (unsigned long long)c->peer_id);
        conn_close(c, NULL);
        return;
    }
    uint64_t offset = get64(q), total = get64(q + 8);
    size_t n = len - 20 - mlen;
    if (offset > total || n > total - offset) {
        log_printf("peer %llu: snapshot chunk at %llu+%zu beyond its total %llu: closing",
                   (unsigned long long)c->peer_id, (unsigned long long)offset, n,
                   (unsigned long long)total);
        raft_codec_msg_release(&m);
        conn_close(c, NULL);
        return;
    }
    t->cbs.on_snap_chunk(t->cbs.ctx, &m, offset, total, q + 20 + mlen, n);
    raft_codec_msg_release(&m);
}

/* The receiver of our snapshot already has its first offset bytes. */
static void on_snap_resume(conn *c, const uint8_t *q, size_t len)
{
    peer_out *p = find_out(c->t, c->peer_id);
    if (len != 24 || p == NULL)
        return;
    raft_index index = get64(q);
    raft_term term = get64(q + 8);
    uint64_t offset = get64(q + 16);
    if (p->snap == NULL || p->snap_index != index || p->snap_term != term ||
        offset > p->snap_total || offset <= p->snap_offset)
        return; /* finished, replaced, or we are already past it */
    log_printf("snapshot to peer %llu: resuming at offset %llu of %llu",
               (unsigned long long)p->addr.id, (unsigned long long)offset,
               (unsigned long long)p->snap_total);
    p->snap_offset = offset; /* at the total, the pump sends one empty chunk to finish on */
    snap_pump(p);
}

void transport_snap_resume(transport *t, raft_id peer, raft_index index, raft_term term,
                           uint64_t offset)
{
    peer_out *p = find_out(t, peer);
    if (p == NULL)
        return;
    uint8_t *f = frame_new(F_SNAP_RESUME, 24);
    if (f == NULL)
        return;
    put64(f + FRAME_HEADER, index);
    put64(f + FRAME_HEADER + 8, term);
    put64(f + FRAME_HEADER + 16, offset);
    if (enqueue(p, f))
        flush_peer(p);
}

static void on_frame(conn *c, uint8_t kind, const uint8_t *q, size_t len)
{
    bool inbound = c->out == NULL;
    if (inbound && c->state == C_HELLO_WAIT && kind == F_HELLO)
        on_hello(c, q, len);
    else if (inbound && c->state == C_AUTH_WAIT && kind == F_AUTH)
        on_auth(c, q, len);
    else if (inbound && c->state == C_READY && kind == F_MSG)
        on_msg_frame(c, q, len);
    else if (inbound && c->state == C_READY && kind == F_SNAP)
        on_snap_frame(c, q, len);
    else if (inbound && c->state == C_READY && kind == F_SNAP_RESUME)
        on_snap_resume(c, q, len);
    else if (!inbound && c->state == C_WELCOME_WAIT && kind == F_WELCOME)
        on_welcome(c, q, len);
    else if (!inbound && kind == F_REFUSE) {
        c->t->stats.handshakes_refused++;
        log_printf("handshake refused by peer %llu at %s: %.*s",
                   (unsigned long long)c->out->addr.id, c->addr, (int)(len > 200 ? 200 : len),
                   (const char *)q);
        conn_close(c, NULL);
    } else if (inbound && c->state != C_READY) {
        refuse(c, "unexpected frame kind %u during the handshake", kind);
    } else {
        log_printf("peer %llu: unexpected frame kind %u: closing",
                   (unsigned long long)(inbound ? c->peer_id : c->out->addr.id), kind);
        conn_close(c, NULL);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = (conn *)h;
    (void)suggested;
    size_t need = c->rlen + READ_CHUNK;
    if (c->rlen >= FRAME_HEADER) {
        size_t frame = FRAME_HEADER + (size_t)get32(c->rbuf);
        if (frame > need)
            need = frame;
    }
    if (need > c->rcap) {
        uint8_t *b = realloc(c->rbuf, need);
        if (b == NULL) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        c->rbuf = b;
        c->rcap = need;
    }
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = (conn *)s;
    (void)buf;
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? "closed by the peer" : uv_strerror((int)nread));
        return;
    }
    c->rlen += (size_t)nread;
    size_t at = 0;
    while (!c->closing && c->rlen - at >= FRAME_HEADER) {
        uint32_t len = get32(c->rbuf + at);
        /* Before the handshake completes, a stranger must not make us allocate much. */
        uint32_t max = c->state == C_READY ? FRAME_MAX : HANDSHAKE_FRAME_MAX;
        if (len > max) {
            log_printf("connection %s: frame of %u bytes exceeds the %u limit: closing", c->addr,
                       len, max);
            conn_close(c, NULL);
            return;
        }
        if (c->rlen - at < FRAME_HEADER + (size_t)len)
            break;
        on_frame(c, c->rbuf[at + 4], c->rbuf + at + FRAME_HEADER, len);
        at += FRAME_HEADER + len;
    }
    if (c->closing)
        return;
    memmove(c->rbuf, c->rbuf + at, c->rlen - at);
    c->rlen -= at;
    if (c->rlen == 0 && c->rcap > 4 * READ_CHUNK) { /* give a big frame's buffer back */
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
}

/* ---- outbound ------------------------------------------------------------------------------- */

static conn *conn_new(transport *t)
{
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->t = t;
    uv_tcp_init(t->loop, &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    /* A peer behind a partition sends no FIN: keepalive ends such a connection, so the redial
     * starts and the bounded queue stops filling with frames that cannot go anywhere. */
    uv_tcp_keepalive(&c->tcp, 1, 10);
    c->tcp.data = c;
    c->opened_ms = uv_now(t->loop);
    t->open_handles++;
    return c;
}

static void connect_cb(uv_connect_t *req, int status)
{
    conn *c = req->data;
    free(req);
    if (c->closing)
        return;
    peer_out *p = c->out;
    if (status != 0) {
        if (!p->reported_down) {
            log_printf("peer %llu: unreachable at %s: %s (retrying with backoff)",
                       (unsigned long long)p->addr.id, c->addr, uv_strerror(status));
            p->reported_down = true;
        }
        conn_close(c, NULL);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    send_hello(c);
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0)
        return rc;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static void dial(peer_out *p)
{
    transport *t = p->t;
    struct sockaddr_storage sa;
    /* getaddrinfo blocks, but peers are addresses or /etc/hosts names in practice. */
    int rc = resolve(p->addr.host, p->addr.peer_port, &sa);
    if (rc != 0) {
        if (!p->reported_down)
            log_printf("peer %llu: cannot resolve %s: %s (retrying)",
                       (unsigned long long)p->addr.id, p->addr.host, gai_strerror(rc));
        p->reported_down = true;
        schedule_retry(p);
        return;
    }
    conn *c = conn_new(t);
    uv_connect_t *req = malloc(sizeof *req);
    if (c == NULL || req == NULL) {
        free(req);
        if (c != NULL)
            uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
        schedule_retry(p);
        return;
    }
    c->out = p;
    snprintf(c->addr, sizeof c->addr, "%.40s:%u", p->addr.host, p->addr.peer_port);
    p->c = c;
    c->state = C_WELCOME_WAIT;
    req->data = c;
    rc = uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&sa, connect_cb);
    if (rc != 0) {
        free(req);
        conn_close(c, NULL);
    }
}

static void retry_cb(uv_timer_t *timer)
{
    dial(timer->data);
}

static void schedule_retry(peer_out *p)
{
    p->backoff_ms = p->backoff_ms == 0 ? BACKOFF_MIN_MS : p->backoff_ms * 2;
    if (p->backoff_ms > BACKOFF_MAX_MS)
        p->backoff_ms = BACKOFF_MAX_MS;
    /* +-25% jitter, so nodes that lost each other at once do not redial in lockstep. */
    uint64_t jitter = randombytes_uniform((uint32_t)(p->backoff_ms / 2 + 1));
    uv_timer_start(&p->retry, retry_cb, p->backoff_ms - p->backoff_ms / 4 + jitter, 0);
}

/* ---- inbound -------------------------------------------------------------------------------- */

static void accept_cb(uv_stream_t *server, int status)
{
    transport *t = server->data;
    if (status != 0 || t->closing)
        return;
    unsigned handshaking = 0;
    for (conn *i = t->inbound; i != NULL; i = i->next)
        handshaking += i->state != C_READY;
    conn *c = conn_new(t);
    if (c == NULL)
        return;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
        return;
    }
    struct sockaddr_storage sa;
    int len = sizeof sa;
    char ip[48] = "?";
    uint16_t port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        } else {
            uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        }
    }
    snprintf(c->addr, sizeof c->addr, "%s:%u", ip, port);
    if (handshaking >= MAX_HANDSHAKING) {
        if (!t->warned_handshaking)
            log_printf("handshake refused: inbound from %s: already %u connections in their "
                       "handshake (limit %d)", c->addr, handshaking, MAX_HANDSHAKING);
        t->warned_handshaking = true;
        t->stats.handshakes_refused++;
        uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
        return;
    }
    t->warned_handshaking = false;
    c->state = C_HELLO_WAIT;
    c->next = t->inbound;
    t->inbound = c;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* Closes connections stuck in the handshake (a port scanner, a half-open dial). */
static void sweep_cb(uv_timer_t *timer)
{
    transport *t = timer->data;
    uint64_t now = uv_now(t->loop);
    for (conn *c = t->inbound, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state != C_READY && now - c->opened_ms > t->cfg.handshake_timeout_ms)
            refuse(c, "no handshake within %u ms", t->cfg.handshake_timeout_ms);
    }
    for (uint32_t i = 0; i < t->n_outs; i++) {
        conn *c = t->outs[i].c;
        if (c != NULL && c->state != C_READY && now - c->opened_ms > t->cfg.handshake_timeout_ms)
            conn_close(c, NULL);
    }
}

void transport_pause(transport *t, raft_id peer, bool pause)
{
    for (conn *c = t->inbound; c != NULL; c = c->next) {
        if (c->peer_id != peer || c->paused == pause || c->closing)
            continue;
        c->paused = pause;
        if (pause)
            uv_read_stop((uv_stream_t *)&c->tcp);
        else
            uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    }
}

bool transport_connected(const transport *t, raft_id peer)
{
    for (uint32_t i = 0; i < t->n_outs; i++)
        if (t->outs[i].addr.id == peer)
            return t->outs[i].c != NULL && t->outs[i].c->state == C_READY;
    return false;
}

transport_stats transport_get_stats(const transport *t)
{
    return t->stats;
}

/* ---- start / close -------------------------------------------------------------------------- */

int transport_start(uv_loop_t *loop, const transport_config *cfg, const transport_cbs *cbs,
                    transport **out)
{
    if (sodium_init() < 0) {
        log_printf("transport: libsodium failed to initialize");
        return UV_EIO;
    }
    transport *t = calloc(1, sizeof *t);
    if (t == NULL)
        return UV_ENOMEM;
    t->loop = loop;
    t->cfg = *cfg;
    if (t->cfg.handshake_timeout_ms == 0)
        t->cfg.handshake_timeout_ms = 5000;
    memcpy(t->peers, cfg->peers, cfg->n_peers * sizeof cfg->peers[0]);
    t->cfg.peers = t->peers;
    snprintf(t->cluster_id, sizeof t->cluster_id, "%s", cfg->cluster_id);
    snprintf(t->secret, sizeof t->secret, "%s", cfg->secret != NULL ? cfg->secret : "");
    t->secret_len = strlen(t->secret);
    t->cfg.cluster_id = t->cluster_id;
    t->cfg.secret = t->secret;
    t->cbs = *cbs;

    const node_peer *self = NULL;
    for (uint32_t i = 0; i < cfg->n_peers; i++)
        if (cfg->peers[i].id == cfg->self)
            self = &t->peers[i];
    struct sockaddr_storage sa;
    int rc = self == NULL ? UV_EINVAL : resolve(self->host, self->peer_port, &sa);
    if (rc != 0) {
        log_printf("transport: cannot resolve this node's host %s", self ? self->host : "?");
        free(t);
        return UV_EINVAL;
    }
    uv_tcp_init(loop, &t->listener);
    t->listener.data = t;
    t->open_handles++;
    rc = uv_tcp_bind(&t->listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->listener, 128, accept_cb);
    if (rc != 0) {
        log_printf("transport: cannot listen on %s:%u for peers: %s", self->host, self->peer_port,
                   uv_strerror(rc));
        t->closing = true;
        uv_close((uv_handle_t *)&t->listener, handle_closed_cb);
        return rc;
    }
    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    t->open_handles++;
    uv_timer_start(&t->sweep, sweep_cb, 1000, 1000);
    for (uint32_t i = 0; i < cfg->n_peers; i++) {
        if (t->peers[i].id == cfg->self)
            continue;
        peer_out *p = &t->outs[t->n_outs++];
        p->t = t;
        p->addr = t->peers[i];
        uv_timer_init(loop, &p->retry);
        p->retry.data = p;
        t->open_handles++;
        dial(p);
    }
    *out = t;
    return 0;
}

static void timer_closed_cb(uv_handle_t *h)
{
    peer_out *p = h->data;
    transport *t = p->t;
    t->open_handles--;
    maybe_free(t);
}

void transport_close(transport *t)
{
    if (t->closing)
        return;
    t->closing = true;
    t->open_handles++; /* hold t while closing everything below */
    uv_close((uv_handle_t *)&t->listener, handle_closed_cb);
    uv_close((uv_handle_t *)&t->sweep, handle_closed_cb);
    for (uint32_t i = 0; i < t->n_outs; i++) {
        peer_out *p = &t->outs[i];
        if (p->c != NULL)
            conn_close(p->c, NULL);
        snap_end(p, true);
        uv_close((uv_handle_t *)&p->retry, timer_closed_cb);
    }
    while (t->inbound != NULL)
        conn_close(t->inbound, NULL);
    t->open_handles--;
    maybe_free(t);
}
