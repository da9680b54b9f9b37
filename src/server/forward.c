/*
 * forward.c -- pooled, pipelined connections from a follower to the leader (contract in forward.h).
 *
 * STATE. pool->conns[0..config.conns) are the connections to the current target (NULL slots are
 * opened on demand). Each fwd_conn has a FIFO of calls whose replies are still due, in the order
 * their bytes were queued; the i-th reply line read (after `skip` preamble replies) belongs to the
 * i-th call. Output is double-buffered: `next` collects requests while `flight` is being written,
 * so at most one uv_write is in flight and its bytes never move.
 *
 * A conn that fails is detached from the pool at once (its calls fail, in order) and freed when both
 * its handle is closed and its address lookup, if any, has returned.
 */
#include "forward.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FWD_MAX_CONNS 8
#define FWD_TIMER_MS 250

struct fwd_call {
    fwd_call *next;
    fwd_reply_cb cb; /* NULL once cancelled */
    void *ctx;
    uint64_t deadline; /* uv_now() ms */
};

typedef struct fwd_buf {
    uint8_t *base;
    size_t len, cap;
} fwd_buf;

typedef struct fwd_conn {
    uv_tcp_t tcp; /* tcp.data = this */
    struct fwd_pool *pool;
    uv_getaddrinfo_t resolve_req;
    uv_connect_t connect_req;
    uv_write_t write_req;
    int refs; /* the tcp handle, and a lookup in progress */
    bool connected, writing, failed;
    uint32_t skip; /* preamble replies still to skip */
    fwd_call *head, *tail;
    uint32_t n_calls;
    fwd_buf next, flight;
    uint8_t in[FWD_MAX_REPLY];
    size_t in_len;
} fwd_conn;

struct fwd_pool {
    uv_loop_t *loop;
    fwd_proto proto;
    fwd_config config;
    fwd_log_fn log;
    void *log_ctx;
    bool has_target;
    node_peer target;
    fwd_conn *conns[FWD_MAX_CONNS];
    uint32_t inflight;
    uv_timer_t timer;
    bool timer_on;
    bool closing;
    int refs; /* the timer + every fwd_conn not yet freed */
};

const char *fwd_strerror(int rc)
{
    switch (rc) {
    case FWD_OK: return "ok";
    case FWD_ELEADER: return "the leader changed while the request was forwarded";
    case FWD_ECONN: return "connection to the leader failed";
    case FWD_ETIMEOUT: return "no reply from the leader in time";
    case FWD_EPROTO: return "unexpected reply from the leader";
    case FWD_ESTOPPING: return "shutting down";
    case FWD_EBUSY: return "too many forwarded requests in flight";
    case FWD_ENOMEM: return "out of memory";
    default: return "unknown forwarding error";
    }
}

static void pool_logf(fwd_pool *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pool_logf(fwd_pool *p, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "forward(%s): ", p->proto == FWD_PROTO_TEXT ? "text" : "resp");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (p->log) p->log(p->log_ctx, line);
    else fprintf(stderr, "%s\n", line);
}

static void pool_unref(fwd_pool *p)
{
    if (--p->refs == 0) {
        assert(p->closing);
        free(p);
    }
}

static uint16_t target_port(const fwd_pool *p, const node_peer *peer)
{
    return p->proto == FWD_PROTO_TEXT ? peer->client_port : peer->resp_port;
}

static bool buf_append(fwd_buf *b, const uint8_t *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len) cap *= 2;
        uint8_t *base = realloc(b->base, cap);
        if (base == NULL) return false;
        b->base = base;
        b->cap = cap;
    }
    memcpy(b->base + b->len, data, len);
    b->len += len;
    return true;
}

/* ---- conn lifetime --------------------------------------------------------------------------- */

static void conn_unref(fwd_conn *fc)
{
    if (--fc->refs > 0) return;
    fwd_pool *p = fc->pool;
    free(fc->next.base);
    free(fc->flight.base);
    free(fc);
    pool_unref(p);
}

static void tcp_closed(uv_handle_t *handle) { conn_unref(handle->data); }

/* Detach fc from the pool, fail its calls in order with status, close it. */
static void conn_fail(fwd_conn *fc, int status)
{
    if (fc->failed) return;
    fc->failed = true;
    fwd_pool *p = fc->pool;
    for (uint32_t i = 0; i < FWD_MAX_CONNS; i++)
        if (p->conns[i] == fc) p->conns[i] = NULL;
    while (fc->head) {
        fwd_call *call = fc->head;
        fc->head = call->next;
        fc->n_calls--;
        p->inflight--;
        if (call->cb) call->cb(call->ctx, status, NULL, 0);
        free(call);
    }
    fc->tail = NULL;
    if (fc->refs > 1) uv_cancel((uv_req_t *)&fc->resolve_req); /* lookup still running */
    uv_close((uv_handle_t *)&fc->tcp, tcp_closed);
}

static void drop_all(fwd_pool *p, int status)
{
    for (uint32_t i = 0; i < FWD_MAX_CONNS; i++)
        if (p->conns[i]) conn_fail(p->conns[i], status);
}

/* ---- writing --------------------------------------------------------------------------------- */

static void start_write(fwd_conn *fc);

static void write_cb(uv_write_t *req, int status)
{
    fwd_conn *fc = req->data;
    fc->writing = false;
    fc->flight.len = 0;
    if (fc->failed) return;
    if (status < 0) {
        pool_logf(fc->pool, "write to the leader at %s:%u failed: %s", fc->pool->target.host,
                  target_port(fc->pool, &fc->pool->target), uv_strerror(status));
        conn_fail(fc, FWD_ECONN);
        return;
    }
    start_write(fc);
}

static void start_write(fwd_conn *fc)
{
    if (!fc->connected || fc->writing || fc->failed || fc->next.len == 0) return;
    fwd_buf tmp = fc->flight;
    fc->flight = fc->next;
    fc->next = tmp;
    fc->next.len = 0;
    uv_buf_t buf = uv_buf_init((char *)fc->flight.base, (unsigned)fc->flight.len);
    fc->write_req.data = fc;
    int rc = uv_write(&fc->write_req, (uv_stream_t *)&fc->tcp, &buf, 1, write_cb);
    if (rc < 0) {
        conn_fail(fc, FWD_ECONN);
        return;
    }
    fc->writing = true;
}

/* ---- reading --------------------------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    fwd_conn *fc = handle->data;
    *buf = uv_buf_init((char *)fc->in + fc->in_len, (unsigned)(sizeof fc->in - fc->in_len));
}

/* A forwarded reply is one line; a RESP bulk or array header announces more lines: refuse it. */
static bool reply_is_one_line(const fwd_pool *p, const uint8_t *line, size_t len)
{
    if (p->proto == FWD_PROTO_TEXT) return len >= 2;
    if (len < 3) return false;
    if (line[0] == '+' || line[0] == '-' || line[0] == ':') return true;
    return line[0] == '$' && line[1] == '-'; /* $-1: nil */
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    fwd_conn *fc = stream->data;
    fwd_pool *p = fc->pool;
    if (fc->failed || nread == 0) return;
    if (nread < 0) {
        if (fc->n_calls > 0)
            pool_logf(p, "the leader at %s:%u closed the connection with %u requests in flight: %s",
                      p->target.host, target_port(p, &p->target), fc->n_calls, uv_strerror((int)nread));
        conn_fail(fc, FWD_ECONN);
        return;
    }
    fc->in_len += (size_t)nread;
    size_t start = 0;
    for (;;) {
        uint8_t *nl = memchr(fc->in + start, '\n', fc->in_len - start);
        if (nl == NULL) break;
        size_t line_len = (size_t)(nl - (fc->in + start)) + 1;
        const uint8_t *line = fc->in + start;
        start += line_len;
        if (fc->skip > 0) {
            fc->skip--;
            continue;
        }
        fwd_call *call = fc->head;
        if (call == NULL || !reply_is_one_line(p, line, line_len)) {
            pool_logf(p, "unexpected reply from the leader at %s:%u (%s): dropping the connection",
                      p->target.host, target_port(p, &p->target),
                      call == NULL ? "no request waiting" : "not a one-line reply");
            conn_fail(fc, FWD_EPROTO);
            return;
        }
        fc->head = call->next;
        if (fc->head == NULL) fc->tail = NULL;
        fc->n_calls--;
        p->inflight--;
        if (call->cb) call->cb(call->ctx, FWD_OK, line, line_len);
        free(call);
        if (fc->failed) return; /* the callback changed the target or closed the pool */
    }
    memmove(fc->in, fc->in + start, fc->in_len - start);
    fc->in_len -= start;
    if (fc->in_len == sizeof fc->in) {
        pool_logf(p, "reply line from the leader at %s:%u longer than %d bytes: dropping the connection",
                  p->target.host, target_port(p, &p->target), FWD_MAX_REPLY);
        conn_fail(fc, FWD_EPROTO);
    }
}

/* ---- connecting ------------------------------------------------------------------------------ */

static void connect_cb(uv_connect_t *req, int status)
{
    fwd_conn *fc = req->data;
    if (fc->failed) return;
    fwd_pool *p = fc->pool;
    if (status < 0) {
        pool_logf(p, "cannot connect to the leader (node %llu) at %s:%u: %s",
                  (unsigned long long)p->target.id, p->target.host, target_port(p, &p->target),
                  uv_strerror(status));
        conn_fail(fc, FWD_ECONN);
        return;
    }
    fc->connected = true;
    uv_tcp_nodelay(&fc->tcp, 1);
    if (uv_read_start((uv_stream_t *)&fc->tcp, alloc_cb, read_cb) < 0) {
        conn_fail(fc, FWD_ECONN);
        return;
    }
    start_write(fc);
}

static void connect_to(fwd_conn *fc, const struct sockaddr *addr)
{
    fc->connect_req.data = fc;
    int rc = uv_tcp_connect(&fc->connect_req, &fc->tcp, addr, connect_cb);
    if (rc < 0) {
        pool_logf(fc->pool, "cannot connect to the leader at %s:%u: %s", fc->pool->target.host,
                  target_port(fc->pool, &fc->pool->target), uv_strerror(rc));
        conn_fail(fc, FWD_ECONN);
    }
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    fwd_conn *fc = req->data;
    if (!fc->failed) {
        if (status < 0 || res == NULL) {
            pool_logf(fc->pool, "cannot resolve the leader's host %s: %s", fc->pool->target.host,
                      uv_strerror(status));
            conn_fail(fc, FWD_ECONN);
        } else {
            connect_to(fc, res->ai_addr);
        }
    }
    uv_freeaddrinfo(res);
    conn_unref(fc);
}

static fwd_conn *conn_open(fwd_pool *p)
{
    fwd_conn *fc = calloc(1, sizeof *fc);
    if (fc == NULL) return NULL;
    fc->pool = p;
    uv_tcp_init(p->loop, &fc->tcp);
    fc->tcp.data = fc;
    fc->refs = 1;
    p->refs++;
    bool ok;
    if (p->proto == FWD_PROTO_TEXT) {
        ok = buf_append(&fc->next, (const uint8_t *)FWD_TEXT_PREAMBLE, strlen(FWD_TEXT_PREAMBLE));
    } else {
        char cmd[64];
        int n = snprintf(cmd, sizeof cmd, "*1\r\n$%zu\r\n%s\r\n", strlen(FWD_RESP_COMMAND), FWD_RESP_COMMAND);
        ok = buf_append(&fc->next, (const uint8_t *)cmd, (size_t)n);
        fc->skip = 1; /* its +OK */
    }
    if (!ok) {
        fc->failed = true;
        uv_close((uv_handle_t *)&fc->tcp, tcp_closed);
        return NULL;
    }
    uint16_t port = target_port(p, &p->target);
    struct sockaddr_storage addr;
    const char *host = strcmp(p->target.host, "localhost") == 0 ? "127.0.0.1" : p->target.host;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) == 0) {
        connect_to(fc, (const struct sockaddr *)&addr);
    } else {
        char service[8];
        snprintf(service, sizeof service, "%u", port);
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        fc->resolve_req.data = fc;
        fc->refs++;
        int rc = uv_getaddrinfo(p->loop, &fc->resolve_req, resolved_cb, host, service, &hints);
        if (rc < 0) {
            fc->refs--;
            pool_logf(p, "cannot resolve the leader's host %s: %s", host, uv_strerror(rc));
            conn_fail(fc, FWD_ECONN);
        }
    }
    return fc;
}

/* ---- timeouts -------------------------------------------------------------------------------- */

static void timer_cb(uv_timer_t *timer)
{
    fwd_pool *p = timer->data;
    uint64_t now = uv_now(p->loop);
    for (uint32_t i = 0; i < FWD_MAX_CONNS; i++) {
        fwd_conn *fc = p->conns[i];
        if (fc && fc->head && fc->head->deadline <= now) {
            pool_logf(p, "no reply from the leader at %s:%u within %u ms: dropping the connection "
                      "(%u requests fail)", p->target.host, target_port(p, &p->target),
                      p->config.timeout_ms, fc->n_calls);
            conn_fail(fc, FWD_ETIMEOUT);
        }
    }
    if (p->inflight == 0) {
        uv_timer_stop(&p->timer);
        p->timer_on = false;
    }
}

/* ---- public ---------------------------------------------------------------------------------- */

fwd_pool *fwd_pool_new(uv_loop_t *loop, fwd_proto proto, const fwd_config *config, fwd_log_fn log,
                       void *log_ctx)
{
    fwd_pool *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    p->loop = loop;
    p->proto = proto;
    if (config) p->config = *config;
    if (p->config.conns == 0) p->config.conns = 2;
    if (p->config.conns > FWD_MAX_CONNS) p->config.conns = FWD_MAX_CONNS;
    if (p->config.max_inflight == 0) p->config.max_inflight = 8192;
    if (p->config.timeout_ms == 0) p->config.timeout_ms = 10000;
    p->log = log;
    p->log_ctx = log_ctx;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->refs = 1;
    return p;
}

static void timer_closed(uv_handle_t *handle) { pool_unref(handle->data); }

void fwd_pool_close(fwd_pool *p)
{
    if (p == NULL || p->closing) return;
    p->closing = true;
    drop_all(p, FWD_ESTOPPING);
    uv_close((uv_handle_t *)&p->timer, timer_closed);
}

uint32_t fwd_inflight(const fwd_pool *p) { return p->inflight; }

int fwd_send(fwd_pool *p, const node_peer *leader, uint32_t lane, const uint8_t *req, size_t len,
             fwd_reply_cb cb, void *ctx, fwd_call **out)
{
    assert(cb != NULL);
    if (p->closing) return FWD_ESTOPPING;
    if (p->has_target && (p->target.id != leader->id || strcmp(p->target.host, leader->host) != 0 ||
                          target_port(p, &p->target) != target_port(p, leader))) {
        if (p->inflight > 0)
            pool_logf(p, "leader changed from node %llu to node %llu: %u forwarded requests fail",
                      (unsigned long long)p->target.id, (unsigned long long)leader->id, p->inflight);
        drop_all(p, FWD_ELEADER);
    }
    p->target = *leader;
    p->has_target = true;
    if (p->inflight >= p->config.max_inflight) return FWD_EBUSY;

    uint32_t slot = lane % p->config.conns;
    fwd_conn *best = p->conns[slot];
    if (best == NULL) {
        best = conn_open(p);
        if (best == NULL) return FWD_ENOMEM;
        if (best->failed) return FWD_ECONN; /* could not even start connecting (logged) */
        p->conns[slot] = best;
    }
    fwd_call *call = calloc(1, sizeof *call);
    if (call == NULL) return FWD_ENOMEM;
    if (!buf_append(&best->next, req, len)) {
        free(call);
        return FWD_ENOMEM;
    }
    call->cb = cb;
    call->ctx = ctx;
    call->deadline = uv_now(p->loop) + p->config.timeout_ms;
    if (best->tail) best->tail->next = call;
    else best->head = call;
    best->tail = call;
    best->n_calls++;
    p->inflight++;
    if (!p->timer_on) {
        uv_timer_start(&p->timer, timer_cb, FWD_TIMER_MS, FWD_TIMER_MS);
        p->timer_on = true;
    }
    start_write(best);
    if (out) *out = call;
    return 0;
}

void fwd_cancel(fwd_call *call)
{
    if (call) call->cb = NULL;
}
