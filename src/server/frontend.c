/*
 * frontend.c -- listeners, sessions and the request engine shared by both protocols (frontend.h;
 * the request life cycle is drawn in frontend_int.h).
 *
 * CALLBACK CONTEXTS. node_write/node_read/fwd_send callbacks carry the fe_req. A request leaves its
 * connection only through fe_req_finish: emitted at the head of the queue, or abandoned when the
 * connection closes -- then node_cancel/fwd_cancel/the wait list make sure no callback ever sees
 * it again, and it is freed at once.
 */
#include "frontend_int.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FE_WAIT_TICK_MS 20

/* ---- logging --------------------------------------------------------------------------------- */

static void log_line(void *ctx, const char *line)
{
    frontend *fe = ctx;
    if (fe->config.log) fe->config.log(fe->config.log_ctx, line);
    else fprintf(stderr, "frontend: %s\n", line);
}

void fe_logf(frontend *fe, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_line(fe, line);
}

/* ---- requests -------------------------------------------------------------------------------- */

static void req_finish(conn_req *base, conn *c);
static void start_blocked(fe_session *s);

fe_req *fe_req_new(fe_session *s, int op, bool is_write, bool noreply)
{
    fe_req *req = calloc(1, sizeof *req);
    if (req == NULL) return NULL;
    req->base.finish = req_finish;
    req->s = s;
    req->op = op;
    req->is_write = is_write;
    req->noreply = noreply;
    req->unfinished = true;
    if (is_write) s->unfinished_writes++;
    else s->unfinished_reads++;
    conn_req_push(s->c, &req->base);
    s->fe->stats.requests++;
    return req;
}

static void wait_remove(frontend *fe, fe_req *req)
{
    if (req->state != FE_WAITING) return;
    if (req->wait_prev) req->wait_prev->wait_next = req->wait_next;
    else fe->wait_head = req->wait_next;
    if (req->wait_next) req->wait_next->wait_prev = req->wait_prev;
    else fe->wait_tail = req->wait_prev;
    req->wait_prev = req->wait_next = NULL;
    req->state = FE_NEW;
}

/* The outcome is known: the request waits only for its turn in the queue. */
static void make_done(fe_req *req)
{
    fe_session *s = req->s;
    assert(req->state != FE_DONE && req->state != FE_WAITING);
    if (req->state == FE_BLOCKED) s->blocked--; /* failed before its turn (out of memory) */
    req->state = FE_DONE;
    assert(req->unfinished);
    req->unfinished = false;
    if (req->is_write) s->unfinished_writes--;
    else s->unfinished_reads--;
    conn_req_ready(s->c, &req->base);
    /* ready may have emitted and freed req: only s is used below */
    if (s->blocked > 0 && !conn_is_closing(s->c)) start_blocked(s);
}

static void fe_req_hold(fe_req *req, size_t bytes)
{
    conn_req_hold(req->s->c, &req->base, bytes);
}

bool fe_req_keep(fe_req *req, void *copy, size_t size)
{
    if (copy == NULL) {
        fe_req_fail(req, FE_ERR_INTERNAL);
        return false;
    }
    req->cmd = copy;
    fe_req_hold(req, size);
    return true;
}

void fe_req_fail(fe_req *req, fe_err err)
{
    req->reply = FE_REPLY_ERROR;
    req->err = err;
    make_done(req);
}

void fe_req_done_bytes(fe_req *req, const void *bytes, size_t len)
{
    req->bytes = malloc(len ? len : 1);
    if (req->bytes == NULL) {
        fe_req_fail(req, FE_ERR_INTERNAL);
        return;
    }
    memcpy(req->bytes, bytes, len);
    req->bytes_len = len;
    req->reply = FE_REPLY_BYTES;
    make_done(req);
}

void fe_req_done_none(fe_req *req)
{
    req->reply = FE_REPLY_NONE;
    make_done(req);
}

static fe_err err_of_node(int rc)
{
    switch (rc) {
    case NODE_ENOLEADER: return FE_ERR_NO_LEADER;
    case NODE_ETIMEOUT:
    case NODE_ELOST: return FE_ERR_UNKNOWN;
    case NODE_ETOOBIG: return FE_ERR_TOO_BIG;
    case NODE_EBUSY: return FE_ERR_BUSY;
    case NODE_ESTOPPING: return FE_ERR_STOPPING;
    case NODE_ENOTLEADER: return FE_ERR_NOT_LEADER;
    default: return FE_ERR_INTERNAL;
    }
}

static void write_cb(void *ctx, int status, const kv_result *result)
{
    fe_req *req = ctx;
    assert(req->state == FE_WRITING);
    if (status == NODE_OK) {
        req->result = *result;
        req->reply = FE_REPLY_RESULT;
        make_done(req);
    } else {
        fe_req_fail(req, err_of_node(status));
    }
}

int fe_req_propose(fe_req *req, const kv_cmd *cmd)
{
    frontend *fe = req->s->fe;
    int rc = node_write(fe->node, cmd, write_cb, req);
    if (rc == 0) {
        req->state = FE_WRITING;
        return 0;
    }
    if (rc == NODE_ENOLEADER || rc == NODE_ENOTLEADER) return rc; /* the protocol decides again */
    fe_req_fail(req, err_of_node(rc));
    return 0;
}

int fe_req_change_member(fe_req *req, raft_id id, node_member_op op, const node_peer *addr)
{
    int rc = node_change_member(req->s->fe->node, id, op, addr, write_cb, req);
    if (rc == 0) {
        req->state = FE_WRITING;
        return 0;
    }
    if (rc == NODE_ENOLEADER || rc == NODE_ENOTLEADER || rc == NODE_EMEMBER ||
        rc == NODE_ECONFBUSY || rc == NODE_EUNSAFE || rc == NODE_ELAGGING)
        return rc;
    fe_req_fail(req, err_of_node(rc));
    return 0;
}

static void start_barrier(fe_req *req);

void fe_out_put(fe_out *out, const void *data, size_t len)
{
    if (out->c) {
        conn_write(out->c, data, len);
        return;
    }
    if (out->failed || len == 0) return;
    if (out->len + len > out->cap) {
        size_t cap = out->cap ? out->cap : 256;
        while (cap < out->len + len) cap *= 2;
        uint8_t *base = realloc(out->base, cap);
        if (base == NULL) {
            out->failed = true;
            return;
        }
        out->base = base;
        out->cap = cap;
    }
    memcpy(out->base + out->len, data, len);
    out->len += len;
}

static void read_cb(void *ctx, int status)
{
    fe_req *req = ctx;
    assert(req->state == FE_BARRIER);
    if (status == NODE_OK) {
        req->reply = FE_REPLY_READ;
        if (&req->base == conn_req_head(req->s->c)) {
            make_done(req); /* emitted right now: the store is read as it is at this instant */
            return;
        }
        /* Not its turn to be sent yet: take the data now, before any later write applies. */
        fe_out out = {0};
        req->s->proto->emit(req, &out);
        if (out.failed) {
            free(out.base);
            fe_req_fail(req, FE_ERR_INTERNAL);
            return;
        }
        req->bytes = out.base;
        req->bytes_len = out.len;
        req->reply = FE_REPLY_BYTES;
        fe_req_hold(req, out.len);
        make_done(req);
    } else if (status == NODE_ENOLEADER || status == NODE_ENOTLEADER) {
        req->state = FE_NEW;
        fe_req_wait_leader(req);
    } else {
        fe_req_fail(req, err_of_node(status));
    }
}

static void start_barrier(fe_req *req)
{
    frontend *fe = req->s->fe;
    int rc = node_read(fe->node, read_cb, req);
    if (rc == 0) {
        req->state = FE_BARRIER;
    } else if (rc == NODE_ENOLEADER || rc == NODE_ENOTLEADER) {
        req->state = FE_NEW;
        fe_req_wait_leader(req);
    } else {
        fe_req_fail(req, err_of_node(rc));
    }
}

void fe_req_read(fe_req *req)
{
    fe_session *s = req->s;
    if (s->unfinished_writes > 0) { /* an earlier write has no outcome yet */
        req->state = FE_BLOCKED;
        s->blocked++;
        return;
    }
    start_barrier(req);
}

bool fe_req_write_must_wait(fe_req *req)
{
    fe_session *s = req->s;
    if (s->unfinished_reads == 0) return false;
    req->state = FE_BLOCKED;
    s->blocked++;
    return true;
}

/* Start the blocked requests whose turn has come: a read once no earlier write is unfinished, a
 * write once no earlier read is. Starting one can complete it at once and emit replies (freeing
 * requests) or start a nested walk, so each pass only collects, and the queue is walked again. */
static void start_blocked(fe_session *s)
{
    if (s->walking) {
        s->walk_again = true;
        return;
    }
    s->walking = true;
    do {
        s->walk_again = false;
        fe_req *batch[32];
        size_t n = 0;
        uint32_t writes_before = 0, reads_before = 0;
        for (conn_req *r = conn_req_head(s->c); r && n < 32; r = r->next) {
            if (r->finish != req_finish) continue; /* a queued error reply */
            fe_req *req = (fe_req *)r;
            if (req->state == FE_BLOCKED &&
                (req->is_write ? reads_before == 0 : writes_before == 0))
                batch[n++] = req;
            if (req->unfinished) {
                if (req->is_write) writes_before++;
                else reads_before++;
            }
            if (writes_before > 0 && reads_before > 0) break; /* nothing later can start */
        }
        for (size_t i = 0; i < n; i++) {
            batch[i]->state = FE_NEW;
            s->blocked--;
        }
        for (size_t i = 0; i < n && !conn_is_closing(s->c); i++) {
            if (batch[i]->is_write) s->proto->retry(batch[i]);
            else start_barrier(batch[i]);
        }
        if (n == 32) s->walk_again = true;
    } while (s->walk_again && s->blocked > 0 && !conn_is_closing(s->c));
    s->walking = false;
}

static void fwd_cb(void *ctx, int status, const uint8_t *reply, size_t len)
{
    fe_req *req = ctx;
    assert(req->state == FE_FORWARDING);
    req->fcall = NULL;
    if (status != FWD_OK) {
        fe_req_fail(req, status == FWD_EBUSY ? FE_ERR_BUSY : FE_ERR_UNKNOWN);
        return;
    }
    /* The target no longer leads: it did not apply the write, but the leader changed under us. */
    if (len >= 12 && memcmp(reply, "ERR_REDIRECT", 12) == 0) {
        fe_req_fail(req, FE_ERR_UNKNOWN);
        return;
    }
    fe_req_done_bytes(req, reply, len);
}

void fe_req_forward(fe_req *req, fwd_pool *pool, const node_peer *leader, const uint8_t *bytes,
                    size_t len)
{
    frontend *fe = req->s->fe;
    if (pool == NULL) {
        fe_req_fail(req, FE_ERR_INTERNAL);
        return;
    }
    req->state = FE_FORWARDING;
    int rc = fwd_send(pool, leader, req->s->lane, bytes, len, fwd_cb, req, &req->fcall);
    if (rc != 0) {
        req->state = FE_NEW;
        req->fcall = NULL;
        fe_req_fail(req, rc == FWD_EBUSY ? FE_ERR_BUSY : FE_ERR_INTERNAL);
        return;
    }
    fe->stats.forwarded++;
}

static void wait_tick(uv_timer_t *timer);

void fe_req_wait_leader(fe_req *req)
{
    frontend *fe = req->s->fe;
    assert(req->state != FE_WAITING && req->state != FE_DONE);
    if (fe->closing) {
        fe_req_fail(req, FE_ERR_STOPPING);
        return;
    }
    if (node_is_outside(fe->node)) {
        /* It hears from no leader: waiting would only delay the client's move to another node. */
        fe_req_fail(req, FE_ERR_NO_LEADER);
        return;
    }
    if (req->wait_deadline == 0) req->wait_deadline = uv_now(fe->loop) + fe->config.leader_wait_ms;
    req->state = FE_WAITING;
    req->wait_gen = fe->wait_gen;
    req->wait_next = NULL;
    req->wait_prev = fe->wait_tail;
    if (fe->wait_tail) fe->wait_tail->wait_next = req;
    else fe->wait_head = req;
    fe->wait_tail = req;
    if (!fe->wait_timer_on) {
        uv_timer_start(&fe->wait_timer, wait_tick, FE_WAIT_TICK_MS, FE_WAIT_TICK_MS);
        fe->wait_timer_on = true;
    }
}

static void wait_tick(uv_timer_t *timer)
{
    frontend *fe = timer->data;
    uint64_t now = uv_now(fe->loop);
    bool leader_known = node_leader(fe->node, NULL);
    uint64_t gen = ++fe->wait_gen;
    /* Requests re-queued here or by their retry carry the new generation: next tick. The deadline
     * holds even when a leader is known, since a retry may find it unable to serve yet. */
    while (fe->wait_head && fe->wait_head->wait_gen < gen) {
        fe_req *req = fe->wait_head;
        wait_remove(fe, req);
        if (req->wait_deadline <= now) fe_req_fail(req, FE_ERR_NO_LEADER);
        else if (!leader_known) fe_req_wait_leader(req);
        else if (req->is_write) req->s->proto->retry(req);
        else start_barrier(req); /* its turn had come already: no need to check the order again */
    }
    if (fe->wait_head == NULL) {
        uv_timer_stop(&fe->wait_timer);
        fe->wait_timer_on = false;
    }
}

static void req_free(fe_req *req)
{
    free(req->bytes);
    free(req->cmd);
    free(req);
}

static void req_finish(conn_req *base, conn *c)
{
    fe_req *req = (fe_req *)base;
    fe_session *s = req->s;
    if (c != NULL) {
        assert(req->state == FE_DONE);
        fe_out out = {.c = c};
        if (req->reply != FE_REPLY_NONE) s->proto->emit(req, &out);
        req_free(req);
        return;
    }
    /* The connection is closing: make sure no callback ever sees this request again. */
    switch (req->state) {
    case FE_WRITING:
    case FE_BARRIER: node_cancel(s->fe->node, req); break;
    case FE_FORWARDING: fwd_cancel(req->fcall); break;
    case FE_WAITING: wait_remove(s->fe, req); break;
    default: break;
    }
    if (req->unfinished) {
        if (req->is_write) s->unfinished_writes--;
        else s->unfinished_reads--;
    }
    if (req->state == FE_BLOCKED) s->blocked--;
    req_free(req);
}

void fe_conn_closed(conn *c)
{
    fe_session *s = conn_proto(c);
    s->proto->free_parser(s->parser);
    free(s);
}

/* ---- listeners ------------------------------------------------------------------------------- */

static void free_handle(uv_handle_t *handle) { free(handle); }

static void on_connection(uv_stream_t *server, int status, const fe_proto *proto, conn_group *group)
{
    frontend *fe = server->data;
    if (status < 0) {
        fe_logf(fe, "%s: accept failed: %s", proto->ops.name, uv_strerror(status));
        return;
    }
    fe_session *s = calloc(1, sizeof *s);
    void *parser = s ? proto->new_parser(fe) : NULL;
    if (parser == NULL) {
        free(s);
        fe_logf(fe, "%s: out of memory for a new connection: refused", proto->ops.name);
        uv_tcp_t *tmp = malloc(sizeof *tmp);
        if (tmp == NULL) return;
        uv_tcp_init(fe->loop, tmp);
        (void)uv_accept(server, (uv_stream_t *)tmp);
        uv_close((uv_handle_t *)tmp, free_handle);
        return;
    }
    s->fe = fe;
    s->proto = proto;
    s->parser = parser;
    s->lane = fe->next_lane++;
    s->c = conn_accept(group, server, &proto->ops, s);
    if (s->c == NULL) { /* refused (logged): the session was never handed over */
        proto->free_parser(parser);
        free(s);
    }
}

static void on_text_connection(uv_stream_t *server, int status)
{
    frontend *fe = server->data;
    on_connection(server, status, &fe_text_proto, fe->text_conns);
}

static void on_resp_connection(uv_stream_t *server, int status)
{
    frontend *fe = server->data;
    on_connection(server, status, &fe_resp_proto, fe->resp_conns);
}

static int listen_on(frontend *fe, uv_tcp_t *listener, const char *host, uint16_t port,
                     uv_connection_cb cb, uint16_t *bound, const char *what)
{
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc < 0) rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    if (rc < 0) {
        fe_logf(fe, "%s port: bind host '%s' is not an IP address", what, host);
        return rc;
    }
    rc = uv_tcp_bind(listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)listener, 1024, cb);
    if (rc < 0) {
        fe_logf(fe, "%s port: cannot listen on %s:%u: %s", what, host, port, uv_strerror(rc));
        return rc;
    }
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_tcp_getsockname(listener, (struct sockaddr *)&got, &len);
    *bound = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&got)->sin_port);
    return 0;
}

static void handle_closed(uv_handle_t *handle)
{
    frontend *fe = handle->data;
    if (--fe->open_handles == 0) {
        free(fe->pairs);
        free(fe);
    }
}

static bool is_ip_literal(const char *host)
{
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    return uv_ip4_addr(host, 0, &a4) == 0 || uv_ip6_addr(host, 0, &a6) == 0;
}

/* node_set_reply_flush: the replies of this iteration leave before the node's peer messages. */
static void flush_replies(void *ctx)
{
    frontend *fe = ctx;
    conn_group_flush(fe->text_conns);
    conn_group_flush(fe->resp_conns);
}

int frontend_open(node *n, uv_loop_t *loop, const frontend_config *config, frontend **out)
{
    *out = NULL;
    frontend *fe = calloc(1, sizeof *fe);
    if (fe == NULL) return UV_ENOMEM;
    fe->loop = loop;
    fe->node = n;
    if (config) fe->config = *config;
    if (fe->config.leader_wait_ms == 0) fe->config.leader_wait_ms = 3000;
    if (fe->config.max_value == 0) fe->config.max_value = KV_MAX_VALUE_DEFAULT;
    if (fe->config.max_value > KV_MAX_VALUE_HARD) fe->config.max_value = KV_MAX_VALUE_HARD;
    fe->pairs = calloc(KV_MAX_MULTI, sizeof *fe->pairs);
    conn_limits limits = {
        .output_limit = fe->config.output_limit,
        .max_pipeline = fe->config.max_pipeline,
        .max_conns = fe->config.max_conns,
    };
    fe->text_conns = conn_group_new(loop, &limits, log_line, fe);
    fe->resp_conns = conn_group_new(loop, &limits, log_line, fe);
    fwd_config fc = {.conns = fe->config.forward_conns, .timeout_ms = fe->config.forward_timeout_ms};
    fe->fwd_text = fwd_pool_new(loop, FWD_PROTO_TEXT, &fc, log_line, fe);
    fe->fwd_resp = fwd_pool_new(loop, FWD_PROTO_RESP, &fc, log_line, fe);
    uv_tcp_init(loop, &fe->text_listener);
    uv_tcp_init(loop, &fe->resp_listener);
    uv_timer_init(loop, &fe->wait_timer);
    fe->text_listener.data = fe->resp_listener.data = fe->wait_timer.data = fe;
    fe->open_handles = 3;
    if (fe->pairs == NULL || fe->text_conns == NULL || fe->resp_conns == NULL || fe->fwd_text == NULL ||
        fe->fwd_resp == NULL) {
        fe_logf(fe, "out of memory starting the front-end");
        frontend_close(fe);
        return UV_ENOMEM;
    }
    const node_peer *self = node_self(n);
    const char *host = fe->config.bind_host ? fe->config.bind_host
                       : is_ip_literal(self->host) ? self->host
                                                   : "0.0.0.0";
    int rc = listen_on(fe, &fe->text_listener, host, self->client_port, on_text_connection,
                       &fe->text_port, "text protocol (client_port)");
    if (rc == 0)
        rc = listen_on(fe, &fe->resp_listener, host, self->resp_port, on_resp_connection,
                       &fe->resp_port, "RESP (resp_port)");
    if (rc < 0) {
        frontend_close(fe);
        return rc;
    }
    node_set_reply_flush(n, flush_replies, fe);
    *out = fe;
    return 0;
}

void frontend_close(frontend *fe)
{
    if (fe == NULL || fe->closing) return;
    fe->closing = true;
    node_set_reply_flush(fe->node, NULL, NULL);
    /* Connections first: their requests cancel node and forward callbacks and leave the wait list. */
    conn_group_close(fe->text_conns);
    conn_group_close(fe->resp_conns);
    while (fe->wait_head) { /* only requests of closed conns could be here: none */
        fe_req *req = fe->wait_head;
        wait_remove(fe, req);
        fe_req_fail(req, FE_ERR_STOPPING);
    }
    fwd_pool_close(fe->fwd_text);
    fwd_pool_close(fe->fwd_resp);
    uv_close((uv_handle_t *)&fe->text_listener, handle_closed);
    uv_close((uv_handle_t *)&fe->resp_listener, handle_closed);
    uv_close((uv_handle_t *)&fe->wait_timer, handle_closed);
}

uint16_t frontend_text_port(const frontend *fe) { return fe->text_port; }
uint16_t frontend_resp_port(const frontend *fe) { return fe->resp_port; }

void frontend_get_stats(const frontend *fe, frontend_stats *out)
{
    *out = fe->stats;
    conn_stats a, b;
    conn_group_stats(fe->text_conns, &a);
    conn_group_stats(fe->resp_conns, &b);
    out->text_conns = conn_group_count(fe->text_conns);
    out->resp_conns = conn_group_count(fe->resp_conns);
    out->accepted = a.accepted + b.accepted;
    out->refused = a.refused + b.refused;
    out->closed_output_limit = a.closed_output_limit + b.closed_output_limit;
    out->socket_writes = a.writes + b.writes;
    out->bytes_out = a.bytes_out + b.bytes_out;
}

/* ---- process-wide instance for raftkvd ------------------------------------------------------- */

static frontend *the_frontend;

int frontend_start_config(node *n, uv_loop_t *loop, const frontend_config *config)
{
    if (the_frontend != NULL) return UV_EALREADY;
    return frontend_open(n, loop, config, &the_frontend);
}

int frontend_start(node *n, uv_loop_t *loop) { return frontend_start_config(n, loop, NULL); }

void frontend_stop(void)
{
    frontend_close(the_frontend);
    the_frontend = NULL;
}
