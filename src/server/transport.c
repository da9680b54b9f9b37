/*
 * transport.c -- peer connections over libuv TCP (the design and frame formats are in
 * transport.h; the handshake and snapshot streams have their own files, see transport_int.h).
 * Layout: handles, writes and queues, sending, teardown, reads, outbound dialing with backoff,
 * inbound accepting, start/close.
 */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "raft_codec.h"
#include "transport_int.h"

uint8_t *tp_frame_new(uint8_t kind, size_t payload)
{
    uint8_t *f = malloc(FRAME_HEADER + payload);
    if (f != NULL) {
        put32(f, (uint32_t)payload);
        f[4] = kind;
    }
    return f;
}

/* ---- handles -------------------------------------------------------------------------------- */

static void free_out(peer_out *p)
{
    free(p->batch);
    free(p);
}

static void maybe_free(transport *t)
{
    if (t->closing && t->open_handles == 0) {
        for (uint32_t i = 0; i < t->n_outs; i++)
            free_out(t->outs[i]);
        free(t);
    }
}

/* Frees a forgotten peer once nothing points at it any more. */
static void release_retired(peer_out *p)
{
    if (p->retired && p->timer_closed && p->conns == 0 && p->resolving == NULL)
        free_out(p);
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
    if (c->out != NULL) {
        c->out->conns--;
        release_retired(c->out);
    }
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
            tp_snap_pump(p);
    }
    free(w);
}

static int conn_write(conn *c, peer_out *p, uv_buf_t *bufs, size_t n, uint64_t bytes)
{
    /* Straight to the socket when it takes it all: a queued uv_write costs an epoll_ctl when it
     * completes. Not while a snapshot streams: its pump runs on write completions. */
    size_t sent = 0;
    if (p == NULL || p->snap == NULL) {
        int rc = uv_try_write((uv_stream_t *)&c->tcp, bufs, (unsigned)n);
        sent = rc > 0 ? (size_t)rc : 0; /* errors: uv_write below reports them the usual way */
    }
    size_t skip = sent; /* whole buffers already sent, then an offset into the next */
    size_t first = 0;
    while (first < n && skip >= bufs[first].len)
        skip -= bufs[first++].len;
    if (first == n) {
        for (size_t i = 0; i < n; i++)
            free(bufs[i].base);
        if (p != NULL)
            p->queued -= bytes;
        return 0;
    }
    /* w->bufs: the n buffers to free when done, then the views of what is left to send. */
    wreq *w = malloc(sizeof *w + 2 * n * sizeof(uv_buf_t));
    if (w == NULL)
        goto fail;
    w->p = p;
    w->bytes = bytes;
    w->n = n;
    memcpy(w->bufs, bufs, n * sizeof(uv_buf_t));
    uv_buf_t *rest = w->bufs + n;
    size_t k = 0;
    for (size_t i = first; i < n; i++, skip = 0)
        rest[k++] = uv_buf_init(bufs[i].base + skip, (unsigned)(bufs[i].len - skip));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, rest, (unsigned)k, write_cb) == 0)
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
void tp_send_frame(conn *c, uint8_t *frame)
{
    size_t len = FRAME_HEADER + get32(frame);
    uv_buf_t buf = uv_buf_init((char *)frame, (unsigned)len);
    conn_write(c, NULL, &buf, 1, 0);
}

void tp_flush_peer(peer_out *p)
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
bool tp_enqueue(peer_out *p, uint8_t *frame)
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
        tp_flush_peer(p);
    return true;
}

peer_out *tp_find_out(transport *t, raft_id id)
{
    for (uint32_t i = 0; i < t->n_outs; i++)
        if (t->outs[i]->addr.id == id)
            return t->outs[i];
    return NULL;
}

void transport_send(transport *t, const raft_msg *msg)
{
    peer_out *p = tp_find_out(t, msg->to);
    if (p == NULL || t->closing) {
        t->stats.msgs_dropped++;
        return;
    }
    size_t size = raft_codec_msg_size(msg);
    if (size == SIZE_MAX || size > FRAME_MAX - 64) {
        t->stats.msgs_dropped++;
        return;
    }
    uint8_t *f = tp_frame_new(F_MSG, size);
    if (f == NULL || raft_codec_msg_encode(msg, f + FRAME_HEADER, size, NULL) != RAFT_OK) {
        free(f);
        t->stats.msgs_dropped++;
        return;
    }
    if (msg->type == RAFT_MSG_SNAPSHOT) {
        bool ready = p->c != NULL && p->c->state == C_READY;
        if (ready)
            tp_snap_start(p, msg, f + FRAME_HEADER, size);
        else if (t->cbs.on_snap_failed != NULL)
            t->cbs.on_snap_failed(t->cbs.ctx, p->addr.id);
        free(f);
        return;
    }
    if (tp_enqueue(p, f))
        t->stats.msgs_sent++;
    else
        t->stats.msgs_dropped++;
}

void transport_flush(transport *t)
{
    for (uint32_t i = 0; i < t->n_outs; i++)
        tp_flush_peer(t->outs[i]);
}

/* ---- connection teardown -------------------------------------------------------------------- */

static void schedule_retry(peer_out *p);

void tp_conn_close(conn *c, const char *why)
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
        tp_flush_peer(p); /* drops the batch: nothing is ready to carry it */
        tp_snap_end(p, true);
        if (!t->closing && !p->retired)
            schedule_retry(p);
    } else {
        if (c->state == C_READY && why != NULL)
            log_printf("peer %llu: disconnected (inbound from %s): %s",
                       (unsigned long long)c->peer_id, c->addr, why);
        if (c->state == C_AUTH_WAIT && why != NULL) {
            /* The dialer checked our WELCOME and hung up: it refused us. */
            char key[64];
            snprintf(key, sizeof key, "hung up %llu", (unsigned long long)c->peer_id);
            tp_log_refusal(t, key, "inbound from %s: node %llu hung up during the handshake "
                           "(its cluster_secret differs from ours?)",
                           c->addr, (unsigned long long)c->peer_id);
        }
        for (conn **pp = &t->inbound; *pp != NULL; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                break;
            }
    }
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
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
        tp_conn_close(c, NULL);
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

static void on_frame(conn *c, uint8_t kind, const uint8_t *q, size_t len)
{
    bool inbound = c->out == NULL;
    if (inbound && c->state == C_HELLO_WAIT && kind == F_HELLO)
        tp_on_hello(c, q, len);
    else if (inbound && c->state == C_AUTH_WAIT && kind == F_AUTH)
        tp_on_auth(c, q, len);
    else if (inbound && c->state == C_READY && kind == F_MSG)
        on_msg_frame(c, q, len);
    else if (inbound && c->state == C_READY && kind == F_SNAP)
        tp_on_snap_frame(c, q, len);
    else if (inbound && c->state == C_READY && kind == F_SNAP_RESUME)
        tp_on_snap_resume(c, q, len);
    else if (!inbound && c->state == C_WELCOME_WAIT && kind == F_WELCOME)
        tp_on_welcome(c, q, len);
    else if (!inbound && kind == F_REFUSE) {
        char key[64];
        snprintf(key, sizeof key, "by %llu", (unsigned long long)c->out->addr.id);
        tp_log_refusal(c->t, key, "by peer %llu at %s: %.*s", (unsigned long long)c->out->addr.id,
                       c->addr, (int)(len > 200 ? 200 : len), (const char *)q);
        tp_conn_close(c, NULL);
    } else if (inbound && c->state != C_READY) {
        tp_refuse(c, "unexpected frame kind %u during the handshake", kind);
    } else {
        log_printf("peer %llu: unexpected frame kind %u: closing",
                   (unsigned long long)(inbound ? c->peer_id : c->out->addr.id), kind);
        tp_conn_close(c, NULL);
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
        tp_conn_close(c, nread == UV_EOF ? "closed by the peer" : uv_strerror((int)nread));
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
            tp_conn_close(c, NULL);
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
    /* A peer behind a partition sends no FIN. Keepalive ends such a connection only while it is
     * idle; one carrying heartbeats is ended by TCP_USER_TIMEOUT (set_user_timeout). */
    uv_tcp_keepalive(&c->tcp, 1, 10);
    c->tcp.data = c;
    c->opened_ms = uv_now(t->loop);
    t->open_handles++;
    return c;
}

/* Sent data unacknowledged for PEER_USER_TIMEOUT_MS ends the connection, so the redial starts
 * (and finds the peer once the partition heals) instead of waiting for TCP's retransmission
 * timer, which backs off to two minutes. A stopped peer process still acknowledges (its kernel
 * does): only a lost network ends it. */
static void set_user_timeout(conn *c)
{
    uv_os_fd_t fd;
    unsigned int ms = PEER_USER_TIMEOUT_MS;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms); /* best effort */
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
        tp_conn_close(c, NULL);
        return;
    }
    set_user_timeout(c);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    tp_send_hello(c);
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

static void connect_to(peer_out *p, const struct sockaddr *sa)
{
    transport *t = p->t;
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
    p->conns++;
    snprintf(c->addr, sizeof c->addr, "%.40s:%u", p->addr.host, p->addr.peer_port);
    p->c = c;
    c->state = C_WELCOME_WAIT;
    req->data = c;
    if (uv_tcp_connect(req, &c->tcp, sa, connect_cb) != 0) {
        free(req);
        tp_conn_close(c, NULL);
    }
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    peer_out *p = req->data;
    transport *t = p->t;
    p->resolving = NULL;
    free(req);
    t->open_handles--;
    if (t->closing || p->retired) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        release_retired(p);
        maybe_free(t);
        return;
    }
    if (status != 0 || res == NULL) {
        if (!p->reported_down)
            log_printf("peer %llu: cannot resolve %s: %s (retrying)",
                       (unsigned long long)p->addr.id, p->addr.host, uv_strerror(status));
        p->reported_down = true;
        if (res != NULL)
            uv_freeaddrinfo(res);
        schedule_retry(p);
        return;
    }
    struct sockaddr_storage sa;
    memcpy(&sa, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
    connect_to(p, (const struct sockaddr *)&sa);
}

/* Dials p: an address is used as is; a name is resolved off the loop (uv_getaddrinfo), so a slow
 * DNS server never stalls ticks and heartbeats. */
static void dial(peer_out *p)
{
    transport *t = p->t;
    struct sockaddr_storage sa;
    if (uv_ip4_addr(p->addr.host, p->addr.peer_port, (struct sockaddr_in *)&sa) == 0 ||
        uv_ip6_addr(p->addr.host, p->addr.peer_port, (struct sockaddr_in6 *)&sa) == 0) {
        connect_to(p, (const struct sockaddr *)&sa);
        return;
    }
    uv_getaddrinfo_t *req = malloc(sizeof *req);
    if (req == NULL) {
        schedule_retry(p);
        return;
    }
    char service[8];
    snprintf(service, sizeof service, "%u", p->addr.peer_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    req->data = p;
    p->resolving = req;
    t->open_handles++; /* the transport outlives the pending lookup */
    int rc = uv_getaddrinfo(t->loop, req, resolved_cb, p->addr.host, service, &hints);
    if (rc != 0) {
        p->resolving = NULL;
        t->open_handles--;
        free(req);
        if (!p->reported_down)
            log_printf("peer %llu: cannot resolve %s: %s (retrying)",
                       (unsigned long long)p->addr.id, p->addr.host, uv_strerror(rc));
        p->reported_down = true;
        schedule_retry(p);
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
    set_user_timeout(c);
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
            tp_refuse(c, "no handshake within %u ms", t->cfg.handshake_timeout_ms);
    }
    for (uint32_t i = 0; i < t->n_outs; i++) {
        conn *c = t->outs[i]->c;
        if (c != NULL && c->state != C_READY && now - c->opened_ms > t->cfg.handshake_timeout_ms)
            tp_conn_close(c, NULL);
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
        if (t->outs[i]->addr.id == peer)
            return t->outs[i]->c != NULL && t->outs[i]->c->state == C_READY;
    return false;
}

transport_stats transport_get_stats(const transport *t)
{
    return t->stats;
}

/* ---- start / close -------------------------------------------------------------------------- */

static int start_peer(transport *t, const node_peer *addr);

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
    *out = t;
    for (uint32_t i = 0; i < cfg->n_peers; i++)
        if (t->peers[i].id != cfg->self && start_peer(t, &t->peers[i]) != 0) {
            log_printf("transport: out of memory starting peer %llu",
                       (unsigned long long)t->peers[i].id);
            transport_close(t); /* frees t once its handles are closed */
            *out = NULL;
            return UV_ENOMEM;
        }
    return 0;
}

static int start_peer(transport *t, const node_peer *addr)
{
    peer_out *p = t->n_outs < RAFT_MAX_NODES ? calloc(1, sizeof *p) : NULL;
    if (p == NULL)
        return UV_ENOMEM;
    t->outs[t->n_outs++] = p;
    p->t = t;
    p->addr = *addr;
    uv_timer_init(t->loop, &p->retry);
    p->retry.data = p;
    t->open_handles++;
    dial(p);
    return 0;
}

int transport_add_peer(transport *t, const node_peer *peer)
{
    if (t->closing || peer->id == t->cfg.self || tp_find_out(t, peer->id) != NULL)
        return 0;
    if (t->cfg.n_peers >= RAFT_MAX_NODES)
        return UV_ENOSPC;
    int rc = start_peer(t, peer);
    if (rc != 0) {
        log_printf("peer %llu: cannot be added: out of memory", (unsigned long long)peer->id);
        return rc;
    }
    t->peers[t->cfg.n_peers++] = *peer;
    log_printf("peer %llu: added at %s:%u", (unsigned long long)peer->id, peer->host,
               peer->peer_port);
    return 0;
}

static void timer_closed_cb(uv_handle_t *h);

void transport_remove_peer(transport *t, raft_id id)
{
    if (t->closing)
        return;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < t->cfg.n_peers; i++)
        if (t->peers[i].id != id)
            t->peers[kept++] = t->peers[i];
    bool known = kept != t->cfg.n_peers;
    t->cfg.n_peers = kept;
    /* Its inbound connections stay, and it may dial again (tp_on_hello): this node may be the
     * one that lags -- the node may have been added back, and may lead -- and what it sends is
     * how this node would learn that. */
    kept = 0;
    for (uint32_t i = 0; i < t->n_outs; i++) {
        peer_out *p = t->outs[i];
        if (p->addr.id != id) {
            t->outs[kept++] = p;
            continue;
        }
        p->retired = true; /* before the close: no redial */
        if (p->c != NULL) /* ends a snapshot being streamed to it, too */
            tp_conn_close(p->c, "forgotten");
        if (p->resolving != NULL)
            uv_cancel((uv_req_t *)p->resolving); /* its callback still runs, and releases p */
        uv_close((uv_handle_t *)&p->retry, timer_closed_cb); /* frees p, last (release_retired) */
    }
    t->n_outs = kept;
    if (known) {
        t->forgotten[t->n_forgotten++ % TP_FORGOTTEN] = id;
        log_printf("peer %llu: forgotten (no connection, no dial)", (unsigned long long)id);
    }
}

static void timer_closed_cb(uv_handle_t *h)
{
    peer_out *p = h->data;
    transport *t = p->t;
    p->timer_closed = true;
    release_retired(p);
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
        peer_out *p = t->outs[i];
        if (p->c != NULL)
            tp_conn_close(p->c, NULL);
        if (p->resolving != NULL)
            uv_cancel((uv_req_t *)p->resolving); /* its callback still runs, and releases t */
        tp_snap_end(p, true);
        uv_close((uv_handle_t *)&p->retry, timer_closed_cb);
    }
    while (t->inbound != NULL)
        tp_conn_close(t->inbound, NULL);
    t->open_handles--;
    maybe_free(t);
}
