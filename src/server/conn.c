/*
 * conn.c -- client connections: input hand-off, ordered replies, deferred output (contract in conn.h).
 *
 * OUTPUT STATE. The unsent bytes of a conn are, in order: out[out_start..out_end) then the blocks
 * ov_head..ov_tail, each block's data[start..used). `pending` is their total. New bytes go to `out`
 * only while the block list is empty (else they would overtake the blocks), otherwise to the tail
 * block. At most one uv_write is in flight; it covers the first `inflight` unsent bytes, and those
 * bytes never move while it is (appends only add after them, nothing is compacted), which is what
 * uv_write requires. When it completes, the first `inflight` bytes are consumed.
 *
 * LISTS. Every conn is on the group's list of conns; a conn with output to send or held input to
 * offer again is on the flush list (walked by the uv_prepare callback, just before the loop polls);
 * a closing conn that half-closed and drains the client's input is on the linger list.
 *
 * STATES. OPEN -> (conn_close_after_replies) DRAINING -> (replies sent, shutdown) LINGER -> CLOSED.
 * conn_close() goes to CLOSED from any state. After CLOSED the conn only waits for its handle's close
 * callback, which frees it; no protocol code sees it any more.
 */
#include "conn.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_MAX_IOV 64
#define CONN_LINGER_TICK_MS 250

typedef struct conn_block {
    struct conn_block *next;
    size_t start, used, cap;
    uint8_t data[];
} conn_block;

typedef enum conn_state {
    CONN_OPEN = 0,
    CONN_DRAINING, /* no more input; queued replies still go out */
    CONN_LINGER,   /* replies sent, write side shut down, discarding input until EOF */
    CONN_CLOSED,
} conn_state;

struct conn {
    uv_tcp_t tcp; /* tcp.data = this conn */
    conn_group *group;
    conn *prev, *next;             /* group's conns */
    conn *flush_prev, *flush_next; /* group's flush list */
    bool in_flush;
    conn *linger_prev, *linger_next;
    bool in_linger;
    uint64_t linger_deadline;
    size_t discarded;

    const conn_ops *ops;
    void *proto;
    char peer[64];
    conn_state state;

    /* input */
    bool reading;
    bool eof;       /* the client half-closed; finish what was received, then close */
    uint8_t *held;  /* input not taken yet (paused), held[held_off..held_len) */
    size_t held_off, held_len;

    /* output */
    uint8_t *out; /* CONN_OUT_BUF bytes, allocated on the first reply, kept until close */
    size_t out_start, out_end;
    conn_block *ov_head, *ov_tail;
    size_t pending;
    size_t inflight;
    bool writing;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;

    /* ordered requests */
    conn_req *q_head, *q_tail;
    uint32_t q_count;
    size_t q_held; /* sum of the queued requests' held bytes */
    bool draining_queue; /* guards against re-entrant drains */
};

struct conn_group {
    uv_loop_t *loop;
    conn_limits limits;
    conn_log_fn log;
    void *log_ctx;
    uv_prepare_t prepare;
    uv_idle_t idle; /* active while the flush list is not empty: the loop must not sleep */
    uv_timer_t linger_timer;
    bool linger_timer_on;
    int open_handles; /* prepare + idle + timer, until their close callbacks */
    bool closing;
    conn *conns;
    uint32_t count;
    conn *flush_head;
    conn *linger_head;
    conn_stats stats;
    uint8_t read_buf[CONN_READ_BUF];
};

/* ---- small helpers --------------------------------------------------------------------------- */

static void group_log(conn_group *g, const char *line)
{
    if (g->log) g->log(g->log_ctx, line);
    else fprintf(stderr, "%s\n", line);
}

void conn_logf(const conn *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[640];
    snprintf(line, sizeof line, "%s client %s: %s", c->ops->name, c->peer, msg);
    group_log(c->group, line);
}

static void idle_cb(uv_idle_t *idle);

static void flush_add(conn *c)
{
    if (c->in_flush || c->state == CONN_CLOSED) return;
    conn_group *g = c->group;
    /* Output queued after this iteration's flush (by another prepare callback, e.g. the node
     * answering reads) would otherwise wait for the poll to time out: an active idle handle
     * makes the poll return at once. */
    if (g->flush_head == NULL && !g->closing) uv_idle_start(&g->idle, idle_cb);
    c->in_flush = true;
    c->flush_prev = NULL;
    c->flush_next = g->flush_head;
    if (g->flush_head) g->flush_head->flush_prev = c;
    g->flush_head = c;
}

static void flush_remove(conn *c)
{
    if (!c->in_flush) return;
    conn_group *g = c->group;
    if (c->flush_prev) c->flush_prev->flush_next = c->flush_next;
    else g->flush_head = c->flush_next;
    if (c->flush_next) c->flush_next->flush_prev = c->flush_prev;
    c->in_flush = false;
    c->flush_prev = c->flush_next = NULL;
}

static void linger_remove(conn *c)
{
    if (!c->in_linger) return;
    conn_group *g = c->group;
    if (c->linger_prev) c->linger_prev->linger_next = c->linger_next;
    else g->linger_head = c->linger_next;
    if (c->linger_next) c->linger_next->linger_prev = c->linger_prev;
    c->in_linger = false;
}

static void linger_tick(uv_timer_t *timer);

static void linger_add(conn *c)
{
    conn_group *g = c->group;
    assert(!c->in_linger);
    c->in_linger = true;
    c->linger_prev = NULL;
    c->linger_next = g->linger_head;
    if (g->linger_head) g->linger_head->linger_prev = c;
    g->linger_head = c;
    c->linger_deadline = uv_now(g->loop) + CONN_LINGER_MS;
    if (!g->linger_timer_on) {
        uv_timer_start(&g->linger_timer, linger_tick, CONN_LINGER_TICK_MS, CONN_LINGER_TICK_MS);
        g->linger_timer_on = true;
    }
}

static void maybe_free_group(conn_group *g)
{
    if (g->closing && g->open_handles == 0 && g->count == 0) free(g);
}

/* ---- group ----------------------------------------------------------------------------------- */

static void prepare_cb(uv_prepare_t *prepare);

conn_group *conn_group_new(uv_loop_t *loop, const conn_limits *limits, conn_log_fn log, void *log_ctx)
{
    conn_group *g = calloc(1, sizeof *g);
    if (g == NULL) return NULL;
    g->loop = loop;
    if (limits) g->limits = *limits;
    if (g->limits.output_limit == 0) g->limits.output_limit = 64u << 20;
    if (g->limits.output_pause == 0) g->limits.output_pause = 256u << 10;
    if (g->limits.max_pipeline == 0) g->limits.max_pipeline = 1024;
    if (g->limits.held_pause == 0) g->limits.held_pause = 8u << 20;
    if (g->limits.max_conns == 0) g->limits.max_conns = 10000;
    g->log = log;
    g->log_ctx = log_ctx;
    uv_prepare_init(loop, &g->prepare);
    g->prepare.data = g;
    uv_prepare_start(&g->prepare, prepare_cb);
    uv_unref((uv_handle_t *)&g->prepare); /* flushing alone never keeps the loop running */
    uv_idle_init(loop, &g->idle);
    g->idle.data = g;
    uv_unref((uv_handle_t *)&g->idle);
    uv_timer_init(loop, &g->linger_timer);
    g->linger_timer.data = g;
    uv_unref((uv_handle_t *)&g->linger_timer);
    g->open_handles = 3;
    return g;
}

static void group_handle_closed(uv_handle_t *handle)
{
    conn_group *g = handle->data;
    g->open_handles--;
    maybe_free_group(g);
}

void conn_group_close(conn_group *g)
{
    if (g == NULL || g->closing) return;
    g->closing = true;
    for (conn *c = g->conns; c; c = c->next) conn_close(c, NULL);
    uv_close((uv_handle_t *)&g->prepare, group_handle_closed);
    uv_close((uv_handle_t *)&g->idle, group_handle_closed);
    uv_close((uv_handle_t *)&g->linger_timer, group_handle_closed);
}

uint32_t conn_group_count(const conn_group *g) { return g->count; }
void conn_group_stats(const conn_group *g, conn_stats *out) { *out = g->stats; }

/* ---- accessors ------------------------------------------------------------------------------- */

void *conn_proto(const conn *c) { return c->proto; }
conn_group *conn_group_of(const conn *c) { return c->group; }
const char *conn_peer_name(const conn *c) { return c->peer; }
bool conn_is_closing(const conn *c) { return c->state != CONN_OPEN; }
conn_req *conn_req_head(const conn *c) { return c->q_head; }
uint32_t conn_req_count(const conn *c) { return c->q_count; }

bool conn_accepting(const conn *c)
{
    const conn_limits *l = &c->group->limits;
    return c->state == CONN_OPEN && c->q_count < l->max_pipeline && c->pending < l->output_pause &&
           c->q_held < l->held_pause;
}

/* ---- output ---------------------------------------------------------------------------------- */

static void free_output(conn *c)
{
    free(c->out);
    c->out = NULL;
    while (c->ov_head) {
        conn_block *b = c->ov_head;
        c->ov_head = b->next;
        free(b);
    }
    c->ov_tail = NULL;
    c->pending = 0;
}

static bool append_block(conn *c, const uint8_t *data, size_t len)
{
    conn_block *tail = c->ov_tail;
    if (tail && tail->used < tail->cap) {
        size_t n = tail->cap - tail->used < len ? tail->cap - tail->used : len;
        memcpy(tail->data + tail->used, data, n);
        tail->used += n;
        data += n;
        len -= n;
    }
    if (len == 0) return true;
    size_t cap = len > CONN_OUT_BUF ? len : CONN_OUT_BUF;
    conn_block *b = malloc(sizeof *b + cap);
    if (b == NULL) return false;
    b->next = NULL;
    b->start = 0;
    b->used = len;
    b->cap = cap;
    memcpy(b->data, data, len);
    if (c->ov_tail) c->ov_tail->next = b;
    else c->ov_head = b;
    c->ov_tail = b;
    return true;
}

void conn_write(conn *c, const void *data, size_t len)
{
    if (c->state == CONN_CLOSED || len == 0) return;
    const uint8_t *bytes = data;
    size_t total = len;
    if (c->ov_head == NULL) {
        if (c->out == NULL && (c->out = malloc(CONN_OUT_BUF)) == NULL) {
            conn_close(c, "out of memory for the reply buffer");
            return;
        }
        size_t room = CONN_OUT_BUF - c->out_end;
        size_t n = room < len ? room : len;
        memcpy(c->out + c->out_end, bytes, n);
        c->out_end += n;
        bytes += n;
        len -= n;
    }
    if (len > 0 && !append_block(c, bytes, len)) {
        conn_close(c, "out of memory for reply blocks");
        return;
    }
    c->pending += total;
    if (c->pending > c->group->limits.output_limit) {
        c->group->stats.closed_output_limit++;
        char why[160];
        snprintf(why, sizeof why, "closed: %zu reply bytes unsent, over the output limit of %zu bytes",
                 c->pending, c->group->limits.output_limit);
        conn_close(c, why);
        return;
    }
    flush_add(c);
}

static void consume_output(conn *c, size_t n)
{
    assert(n <= c->pending);
    c->pending -= n;
    size_t k = c->out_end - c->out_start < n ? c->out_end - c->out_start : n;
    c->out_start += k;
    n -= k;
    if (c->out_start == c->out_end) c->out_start = c->out_end = 0;
    while (n > 0) {
        conn_block *b = c->ov_head;
        assert(b != NULL);
        size_t m = b->used - b->start < n ? b->used - b->start : n;
        b->start += m;
        n -= m;
        if (b->start == b->used) {
            c->ov_head = b->next;
            if (c->ov_head == NULL) c->ov_tail = NULL;
            free(b);
        }
    }
    /* The head block may be fully sent yet still be the tail with room: keep it, it is reused. */
}

static void check_drained(conn *c);
static void maybe_resume(conn *c);

static void write_cb(uv_write_t *req, int status)
{
    conn *c = req->data;
    c->writing = false;
    if (c->state == CONN_CLOSED) return;
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof why, "closed: write failed: %s", uv_strerror(status));
        conn_close(c, status == UV_EPIPE || status == UV_ECONNRESET ? NULL : why);
        return;
    }
    c->group->stats.bytes_out += c->inflight;
    consume_output(c, c->inflight);
    c->inflight = 0;
    if (c->pending > 0) flush_add(c);
    maybe_resume(c);
    check_drained(c);
}

static unsigned output_iov(conn *c, uv_buf_t iov[CONN_MAX_IOV], size_t *bytes)
{
    unsigned n = 0;
    *bytes = 0;
    if (c->out_end > c->out_start) {
        iov[n++] = uv_buf_init((char *)c->out + c->out_start, (unsigned)(c->out_end - c->out_start));
        *bytes += c->out_end - c->out_start;
    }
    for (conn_block *b = c->ov_head; b && n < CONN_MAX_IOV; b = b->next) {
        if (b->used == b->start) continue;
        iov[n++] = uv_buf_init((char *)b->data + b->start, (unsigned)(b->used - b->start));
        *bytes += b->used - b->start;
    }
    return n;
}

static void start_write(conn *c)
{
    if (c->writing || c->pending == 0 || c->state == CONN_CLOSED) return;
    uv_buf_t iov[CONN_MAX_IOV];
    size_t bytes;
    unsigned n = output_iov(c, iov, &bytes);
    assert(n > 0 && bytes > 0);
    /* Straight to the socket when it takes it: a queued uv_write costs an epoll_ctl when it
     * completes (libuv drops POLLOUT again), one per reply. Errors are left to uv_write. */
    int sent = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
    if (sent > 0) {
        c->group->stats.bytes_out += (size_t)sent;
        c->group->stats.writes++;
        consume_output(c, (size_t)sent);
        if (c->pending == 0) {
            maybe_resume(c);
            check_drained(c);
            return;
        }
        n = output_iov(c, iov, &bytes);
    }
    c->write_req.data = c;
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, iov, n, write_cb);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "closed: write failed: %s", uv_strerror(rc));
        conn_close(c, rc == UV_EPIPE || rc == UV_ECONNRESET ? NULL : why);
        return;
    }
    c->writing = true;
    c->inflight = bytes;
    c->group->stats.writes++;
}

/* ---- ordered requests ------------------------------------------------------------------------ */

void conn_req_push(conn *c, conn_req *req)
{
    assert(req->finish != NULL);
    req->next = NULL;
    req->ready = false;
    req->held = 0;
    if (c->q_tail) c->q_tail->next = req;
    else c->q_head = req;
    c->q_tail = req;
    c->q_count++;
}

static void drain_queue(conn *c)
{
    if (c->draining_queue) return; /* the outer loop will see it */
    c->draining_queue = true;
    bool popped = false;
    while (c->state != CONN_CLOSED && c->q_head && c->q_head->ready) {
        conn_req *req = c->q_head;
        c->q_head = req->next;
        if (c->q_head == NULL) c->q_tail = NULL;
        c->q_count--;
        c->q_held -= req->held;
        popped = true;
        req->finish(req, c);
    }
    c->draining_queue = false;
    if (popped) {
        maybe_resume(c);
        check_drained(c);
    }
}

void conn_req_hold(conn *c, conn_req *req, size_t bytes)
{
    req->held += bytes;
    c->q_held += bytes;
}

void conn_req_ready(conn *c, conn_req *req)
{
    req->ready = true;
    if (req == c->q_head) drain_queue(c);
}

typedef struct bytes_req {
    conn_req base;
    size_t len;
    uint8_t data[];
} bytes_req;

static void bytes_finish(conn_req *req, conn *c)
{
    bytes_req *br = (bytes_req *)req;
    if (c) conn_write(c, br->data, br->len);
    free(br);
}

void conn_reply(conn *c, const void *data, size_t len)
{
    if (c->state == CONN_CLOSED) return;
    if (c->q_head == NULL) {
        conn_write(c, data, len);
        return;
    }
    bytes_req *br = malloc(sizeof *br + len);
    if (br == NULL) {
        conn_close(c, "out of memory queueing a reply");
        return;
    }
    br->base.finish = bytes_finish;
    br->len = len;
    memcpy(br->data, data, len);
    conn_req_push(c, &br->base);
    br->base.ready = true;
}

/* ---- input ----------------------------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn *c = handle->data;
    /* Shared: read_cb consumes or copies every byte before the next alloc (libuv reads one stream
     * at a time, alloc then read), so one buffer serves the whole group. */
    *buf = uv_buf_init((char *)c->group->read_buf, CONN_READ_BUF);
}

static void stop_reading(conn *c)
{
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void start_reading(conn *c)
{
    if (c->reading || c->state == CONN_CLOSED) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0) c->reading = true;
    else conn_close(c, "closed: cannot read from the socket");
}

static bool hold_input(conn *c, const uint8_t *data, size_t len)
{
    assert(c->held == NULL);
    c->held = malloc(len);
    if (c->held == NULL) return false;
    memcpy(c->held, data, len);
    c->held_off = 0;
    c->held_len = len;
    return true;
}

static void free_held(conn *c)
{
    free(c->held);
    c->held = NULL;
    c->held_off = c->held_len = 0;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = stream->data;
    if (nread == 0 || c->state == CONN_CLOSED) return;
    if (nread < 0) {
        if (c->state == CONN_LINGER || nread != UV_EOF) {
            conn_close(c, NULL);
            return;
        }
        /* EOF: the client sent everything; answer what it asked, then close. */
        stop_reading(c);
        c->eof = true;
        if (c->held == NULL) conn_close_after_replies(c, NULL);
        return;
    }
    size_t n = (size_t)nread;
    c->group->stats.bytes_in += n;
    if (c->state == CONN_LINGER) {
        c->discarded += n;
        if (c->discarded > CONN_LINGER_MAX_DISCARD) conn_close(c, NULL);
        return;
    }
    if (c->state != CONN_OPEN) return;
    const uint8_t *data = (const uint8_t *)buf->base;
    size_t taken = c->ops->on_data(c, data, n);
    if (c->state != CONN_OPEN) return;
    assert(taken <= n);
    if (taken < n) {
        if (!hold_input(c, data + taken, n - taken)) {
            conn_close(c, "out of memory holding input");
            return;
        }
        stop_reading(c);
    } else if (!conn_accepting(c)) {
        stop_reading(c);
    }
}

/* Called when the pipeline or the output shrank: offer held input again, read again. */
static void maybe_resume(conn *c)
{
    if (c->state != CONN_OPEN || (c->reading && c->held == NULL)) return;
    if (conn_accepting(c)) flush_add(c); /* done from prepare_cb, outside any callback chain */
}

static void resume(conn *c)
{
    if (c->state != CONN_OPEN || !conn_accepting(c)) return;
    if (c->held) {
        size_t len = c->held_len - c->held_off;
        size_t taken = c->ops->on_data(c, c->held + c->held_off, len);
        if (c->state != CONN_OPEN) return;
        c->held_off += taken;
        if (c->held_off < c->held_len) return; /* still paused */
        free_held(c);
    }
    if (c->eof) {
        conn_close_after_replies(c, NULL);
        return;
    }
    if (conn_accepting(c)) start_reading(c);
}

/* ---- the flush point: just before the loop sleeps -------------------------------------------- */

static void flush_all(conn_group *g)
{
    while (g->flush_head) {
        conn *c = g->flush_head;
        flush_remove(c);
        if (c->state == CONN_OPEN && (!c->reading || c->held)) resume(c);
        /* resume may have added c again (more output); the write below covers it */
        if (c->in_flush) flush_remove(c);
        start_write(c);
    }
    uv_idle_stop(&g->idle);
}

void conn_group_flush(conn_group *g)
{
    if (g == NULL || g->closing) return;
    /* Output only: a paused conn's input is resumed by the group's own flush, so no request is
     * parsed (and no write proposed) inside the caller's callback. The conns stay listed for it. */
    for (conn *c = g->flush_head, *next; c != NULL; c = next) {
        next = c->flush_next;
        start_write(c);
    }
}

static void prepare_cb(uv_prepare_t *prepare)
{
    flush_all(prepare->data);
}

static void idle_cb(uv_idle_t *idle)
{
    flush_all(idle->data);
}

/* ---- close ----------------------------------------------------------------------------------- */

static void close_cb(uv_handle_t *handle)
{
    conn *c = handle->data;
    conn_group *g = c->group;
    free_output(c);
    free_held(c);
    if (c->ops->closed) c->ops->closed(c);
    if (c->prev) c->prev->next = c->next;
    else g->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    g->count--;
    free(c);
    maybe_free_group(g);
}

void conn_close(conn *c, const char *reason)
{
    if (c->state == CONN_CLOSED) return;
    if (reason) conn_logf(c, "%s", reason);
    c->state = CONN_CLOSED;
    flush_remove(c);
    linger_remove(c);
    /* Abandon queued requests in order; their finish cancels node/forward callbacks. */
    while (c->q_head) {
        conn_req *req = c->q_head;
        c->q_head = req->next;
        c->q_count--;
        c->q_held -= req->held;
        req->finish(req, NULL);
    }
    c->q_tail = NULL;
    c->reading = false;
    uv_close((uv_handle_t *)&c->tcp, close_cb); /* cancels a pending write: write_cb sees CLOSED */
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    if (c->state == CONN_CLOSED) return;
    /* After an error, or when the client already sent EOF, there is nothing left to wait for;
     * otherwise keep draining the client's input until EOF or the linger deadline. */
    if (status < 0 || c->eof) conn_close(c, NULL);
}

static void check_drained(conn *c)
{
    if (c->state != CONN_DRAINING || c->q_head || c->pending > 0 || c->writing) return;
    c->state = CONN_LINGER;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, shutdown_cb) < 0) {
        conn_close(c, NULL);
        return;
    }
    linger_add(c);
    if (!c->eof) start_reading(c);
}

void conn_close_after_replies(conn *c, const char *reason)
{
    if (c->state != CONN_OPEN) return;
    if (reason) conn_logf(c, "%s", reason);
    c->state = CONN_DRAINING;
    stop_reading(c);
    free_held(c);
    check_drained(c);
}

static void linger_tick(uv_timer_t *timer)
{
    conn_group *g = timer->data;
    uint64_t now = uv_now(g->loop);
    for (conn *c = g->linger_head, *next; c; c = next) {
        next = c->linger_next;
        if (now >= c->linger_deadline) conn_close(c, NULL);
    }
    if (g->linger_head == NULL) {
        uv_timer_stop(&g->linger_timer);
        g->linger_timer_on = false;
    }
}

/* ---- accept ---------------------------------------------------------------------------------- */

static void refuse_close_cb(uv_handle_t *handle) { free(handle); }

conn *conn_accept(conn_group *g, uv_stream_t *server, const conn_ops *ops, void *proto)
{
    if (g->closing) return NULL;
    if (g->count >= g->limits.max_conns) {
        if (g->stats.refused++ % 1000 == 0) { /* first of each thousand: a flood stays readable */
            char line[160];
            snprintf(line, sizeof line, "%s: refused a connection: %u connections open, the limit "
                     "(max_conns) is %u", ops->name, g->count, g->limits.max_conns);
            group_log(g, line);
        }
        uv_tcp_t *tmp = malloc(sizeof *tmp);
        if (tmp == NULL) return NULL;
        uv_tcp_init(g->loop, tmp);
        (void)uv_accept(server, (uv_stream_t *)tmp);
        uv_close((uv_handle_t *)tmp, refuse_close_cb);
        return NULL;
    }
    conn *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->group = g;
    c->ops = ops;
    c->proto = proto;
    uv_tcp_init(g->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, refuse_close_cb); /* c is freed there: tcp is first */
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage addr;
    int addr_len = sizeof addr;
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &addr_len) == 0) {
        char ip[48] = "?";
        int port = 0;
        if (addr.ss_family == AF_INET) {
            const struct sockaddr_in *in4 = (const struct sockaddr_in *)&addr;
            uv_ip4_name(in4, ip, sizeof ip);
            port = ntohs(in4->sin_port);
        } else if (addr.ss_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&addr;
            uv_ip6_name(in6, ip, sizeof ip);
            port = ntohs(in6->sin6_port);
        }
        snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
    }
    c->next = g->conns;
    if (g->conns) g->conns->prev = c;
    g->conns = c;
    g->count++;
    g->stats.accepted++;
    start_reading(c); /* on failure c is closing: still valid until ops->closed */
    return c;
}
