/*
 * transport_handshake.c -- the peer handshake (transport.h, FRAMES): the dialer sends HELLO, the
 * acceptor checks magic, version, cluster id, both node ids and whether a secret is in use, and
 * answers WELCOME (or REFUSE, logged on both sides); the dialer checks the acceptor's id and MAC
 * and sends AUTH; the acceptor checks that MAC. Fresh random nonces on both sides make every
 * transcript unique, so a recorded handshake cannot be replayed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "transport_int.h"

void tp_log_refusal(transport *t, const char *key, const char *fmt, ...)
{
    t->stats.handshakes_refused++;
    uint64_t now = uv_now(t->loop);
    size_t slot = 0;
    for (size_t i = 0; i < sizeof t->refusals / sizeof t->refusals[0]; i++) {
        if (strncmp(t->refusals[i].key, key, sizeof t->refusals[i].key - 1) == 0) {
            slot = i;
            break;
        }
        if (t->refusals[i].at_ms < t->refusals[slot].at_ms)
            slot = i; /* the oldest slot, if the key is new */
    }
    bool known = strncmp(t->refusals[slot].key, key, sizeof t->refusals[slot].key - 1) == 0;
    if (known && t->refusals[slot].at_ms != 0 && now - t->refusals[slot].at_ms < REFUSAL_QUIET_MS) {
        t->refusals[slot].suppressed++;
        return;
    }
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    unsigned suppressed = known ? t->refusals[slot].suppressed : 0;
    if (suppressed > 0)
        log_printf("handshake refused: %s (and %u more like it in the last %d s)", text,
                   suppressed, REFUSAL_QUIET_MS / 1000);
    else
        log_printf("handshake refused: %s", text);
    snprintf(t->refusals[slot].key, sizeof t->refusals[slot].key, "%s", key);
    t->refusals[slot].at_ms = now;
    t->refusals[slot].suppressed = 0;
}

void tp_refuse(conn *c, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    tp_log_refusal(c->t, reason, "inbound from %s: %s", c->addr, reason);
    size_t n = strlen(reason);
    uint8_t *f = tp_frame_new(F_REFUSE, n);
    if (f != NULL) {
        memcpy(f + FRAME_HEADER, reason, n);
        tp_send_frame(c, f);
    }
    tp_conn_close(c, NULL);
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

void tp_send_hello(conn *c)
{
    transport *t = c->t;
    size_t cid = strlen(t->cluster_id);
    size_t payload = 4 + 2 + 1 + 8 + 8 + NONCE_BYTES + 2 + cid;
    uint8_t *f = tp_frame_new(F_HELLO, payload);
    if (f == NULL) {
        tp_conn_close(c, "out of memory");
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
    tp_send_frame(c, f);
    c->state = C_WELCOME_WAIT;
}

static bool known_peer(const transport *t, raft_id id)
{
    for (uint32_t i = 0; i < t->cfg.n_peers; i++)
        if (t->peers[i].id == id)
            return true;
    return false;
}

static bool was_forgotten(const transport *t, raft_id id)
{
    uint32_t n = t->n_forgotten < TP_FORGOTTEN ? t->n_forgotten : TP_FORGOTTEN;
    for (uint32_t i = 0; i < n; i++)
        if (t->forgotten[i] == id)
            return true;
    return false;
}

void tp_on_hello(conn *c, const uint8_t *q, size_t len)
{
    transport *t = c->t;
    if (len < 25 + NONCE_BYTES || get32(q) != MAGIC) {
        tp_refuse(c, "not a raftkv peer (bad hello)");
        return;
    }
    if (get16(q + 4) != PROTO_VERSION) {
        tp_refuse(c, "protocol version %u, this node speaks %u", get16(q + 4), PROTO_VERSION);
        return;
    }
    bool secret = q[6] & 1;
    raft_id from = get64(q + 7), to = get64(q + 15);
    size_t cid = get16(q + 23 + NONCE_BYTES);
    if (25 + NONCE_BYTES + cid != len) {
        tp_refuse(c, "malformed hello");
        return;
    }
    const char *their_cid = (const char *)q + 25 + NONCE_BYTES;
    if (cid != strlen(t->cluster_id) || memcmp(their_cid, t->cluster_id, cid) != 0) {
        tp_refuse(c, "node %llu is in cluster \"%.*s\", this is cluster \"%s\"",
               (unsigned long long)from, (int)(cid > 64 ? 64 : cid), their_cid, t->cluster_id);
        return;
    }
    if (to != t->cfg.self) {
        tp_refuse(c, "node %llu dialed node %llu, this is node %llu", (unsigned long long)from,
               (unsigned long long)to, (unsigned long long)t->cfg.self);
        return;
    }
    /* A forgotten node is accepted, not dialed: this node may lag behind its addition back. */
    if (from == t->cfg.self || (!known_peer(t, from) && !was_forgotten(t, from))) {
        tp_refuse(c, "node id %llu is not a peer here: not in this node's peers file nor "
                     "learned from a membership change, or removed since (a joining node's "
                     "peers file must list every member)",
               (unsigned long long)from);
        return;
    }
    if (secret != has_secret(t)) {
        tp_refuse(c, secret ? "node %llu uses a cluster_secret, this node has none"
                            : "node %llu has no cluster_secret, this node requires one",
                  (unsigned long long)from);
        return;
    }
    c->peer_id = from;
    memcpy(c->nonce_c, q + 23, NONCE_BYTES);
    randombytes_buf(c->nonce_s, NONCE_BYTES);
    uint8_t *f = tp_frame_new(F_WELCOME, 8 + NONCE_BYTES + MAC_BYTES);
    if (f == NULL) {
        tp_conn_close(c, "out of memory");
        return;
    }
    put64(f + FRAME_HEADER, t->cfg.self);
    memcpy(f + FRAME_HEADER + 8, c->nonce_s, NONCE_BYTES);
    compute_mac(t, "raftkv-s", from, t->cfg.self, c->nonce_c, c->nonce_s,
                f + FRAME_HEADER + 8 + NONCE_BYTES);
    tp_send_frame(c, f);
    c->state = C_AUTH_WAIT;
}

void tp_on_welcome(conn *c, const uint8_t *q, size_t len)
{
    transport *t = c->t;
    peer_out *p = c->out;
    if (len != 8 + NONCE_BYTES + MAC_BYTES || get64(q) != p->addr.id) {
        char key[64];
        snprintf(key, sizeof key, "answered as %llu", (unsigned long long)p->addr.id);
        tp_log_refusal(t, key, "peer %llu at %s answered as node %llu",
                       (unsigned long long)p->addr.id, c->addr,
                       (unsigned long long)(len >= 8 ? get64(q) : 0));
        tp_conn_close(c, NULL);
        return;
    }
    memcpy(c->nonce_s, q + 8, NONCE_BYTES);
    uint8_t mac[MAC_BYTES];
    compute_mac(t, "raftkv-s", t->cfg.self, p->addr.id, c->nonce_c, c->nonce_s, mac);
    if (has_secret(t) && crypto_verify_32(mac, q + 8 + NONCE_BYTES) != 0) {
        char key[64];
        snprintf(key, sizeof key, "secret of %llu", (unsigned long long)p->addr.id);
        tp_log_refusal(t, key, "peer %llu at %s does not hold our cluster_secret",
                       (unsigned long long)p->addr.id, c->addr);
        tp_conn_close(c, NULL);
        return;
    }
    uint8_t *f = tp_frame_new(F_AUTH, MAC_BYTES);
    if (f == NULL) {
        tp_conn_close(c, "out of memory");
        return;
    }
    compute_mac(t, "raftkv-c", t->cfg.self, p->addr.id, c->nonce_c, c->nonce_s, f + FRAME_HEADER);
    tp_send_frame(c, f);
    c->state = C_READY;
    p->backoff_ms = 0;
    p->reported_down = false;
    p->was_up = true;
    log_printf("peer %llu: connected (outbound %s)", (unsigned long long)p->addr.id, c->addr);
}

void tp_on_auth(conn *c, const uint8_t *q, size_t len)
{
    transport *t = c->t;
    uint8_t mac[MAC_BYTES];
    compute_mac(t, "raftkv-c", c->peer_id, t->cfg.self, c->nonce_c, c->nonce_s, mac);
    if (len != MAC_BYTES || (has_secret(t) && crypto_verify_32(mac, q) != 0)) {
        tp_refuse(c, "node %llu does not hold our cluster_secret", (unsigned long long)c->peer_id);
        return;
    }
    c->state = C_READY;
    log_printf("peer %llu: connected (inbound from %s)", (unsigned long long)c->peer_id, c->addr);
}
