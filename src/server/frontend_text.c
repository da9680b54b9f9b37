/*
 * frontend_text.c -- the text protocol server (seed 003 + mset/mget; parser in proto_text.h).
 *
 * Writes (set cas delete mset): on the leader, proposed at once (the exptime -> deadline conversion
 * happens here, with the leader's node_now_ms); on a follower, ERR_REDIRECT <host> <port> of the
 * leader's client port, or forwarded re-encoded without noreply (so every forwarded request has
 * exactly one reply to match) when config.text_forward is set. Reads (get getm mget) pass a read
 * barrier on whichever node they reach.
 *
 * Replies: get "VALUE <n>\r\n<v>\r\n" or ERR_NOT_FOUND; getm "VALUE <version> <exptime> <n>\r\n<v>\r\n";
 * mget one "VALUE <n>\r\n<v>\r\n" per key found and one "ERR_NOT_FOUND\r\n" per key missing, in key
 * order, then "END\r\n"; writes as proto_text_reply_result says.
 *
 * A connection whose first bytes are FWD_TEXT_PREAMBLE comes from another node's forwarder: the
 * preamble is consumed here (the parser never sees it) and its writes are never forwarded again.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend_int.h"
#include "growbuf.h"
#include "proto_text.h"

/* A command copied out of the parser's buffer (which the next parse call reuses). */
typedef struct text_copy {
    proto_text_cmd cmd;
    proto_text_item items[]; /* cmd.n_items, then the key/value bytes */
} text_copy;

static text_copy *copy_cmd(const proto_text_cmd *cmd, size_t *size)
{
    size_t bytes = cmd->key.len + cmd->value.len;
    for (uint32_t i = 0; i < cmd->n_items; i++) bytes += cmd->items[i].key.len + cmd->items[i].value.len;
    size_t items_size = (size_t)cmd->n_items * sizeof(proto_text_item);
    *size = sizeof(text_copy) + items_size + bytes + 1;
    text_copy *copy = malloc(*size);
    if (copy == NULL) return NULL;
    copy->cmd = *cmd;
    uint8_t *at = (uint8_t *)copy->items + items_size;
#define TEXT_COPY_SLICE(dst, src)                                                                  \
    do {                                                                                           \
        if ((src).len) memcpy(at, (src).base, (src).len);                                          \
        (dst).base = at;                                                                           \
        (dst).len = (src).len;                                                                     \
        at += (src).len;                                                                           \
    } while (0)
    TEXT_COPY_SLICE(copy->cmd.key, cmd->key);
    TEXT_COPY_SLICE(copy->cmd.value, cmd->value);
    for (uint32_t i = 0; i < cmd->n_items; i++) {
        copy->items[i] = cmd->items[i];
        TEXT_COPY_SLICE(copy->items[i].key, cmd->items[i].key);
        TEXT_COPY_SLICE(copy->items[i].value, cmd->items[i].value);
    }
#undef TEXT_COPY_SLICE
    copy->cmd.items = copy->items;
    return copy;
}

/* ---- forwarding encoding --------------------------------------------------------------------- */


/* The command as the leader must see it: canonical, never noreply (one reply per request). */
static void encode_for_leader(const proto_text_cmd *cmd, growbuf *b)
{
    switch (cmd->op) {
    case PROTO_TEXT_SET:
        growbuf_put(b, "set ", 4);
        growbuf_put(b, cmd->key.base, cmd->key.len);
        growbuf_printf(b, " %u %zu\r\n", cmd->exptime, cmd->value.len);
        growbuf_put(b, cmd->value.base, cmd->value.len);
        growbuf_put(b, "\r\n", 2);
        break;
    case PROTO_TEXT_CAS:
        growbuf_put(b, "cas ", 4);
        growbuf_put(b, cmd->key.base, cmd->key.len);
        growbuf_printf(b, " %u %llu %zu\r\n", cmd->exptime, (unsigned long long)cmd->version, cmd->value.len);
        growbuf_put(b, cmd->value.base, cmd->value.len);
        growbuf_put(b, "\r\n", 2);
        break;
    case PROTO_TEXT_DELETE:
        growbuf_put(b, "delete ", 7);
        growbuf_put(b, cmd->key.base, cmd->key.len);
        growbuf_put(b, "\r\n", 2);
        break;
    case PROTO_TEXT_MSET:
        growbuf_printf(b, "mset %u\r\n", cmd->n_items);
        for (uint32_t i = 0; i < cmd->n_items; i++) {
            const proto_text_item *item = &cmd->items[i];
            growbuf_put(b, item->key.base, item->key.len);
            growbuf_printf(b, " %u %zu\r\n", item->exptime, item->value.len);
            growbuf_put(b, item->value.base, item->value.len);
            growbuf_put(b, "\r\n", 2);
        }
        break;
    default: b->failed = true; break;
    }
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static bool keep_copy(fe_req *req, const proto_text_cmd *cmd)
{
    if (req->cmd != NULL) return true;
    size_t size = 0;
    void *copy = copy_cmd(cmd, &size); /* sets size: not in fe_req_keep's argument list */
    return fe_req_keep(req, copy, size);
}

/* ERR_REDIRECT to `to`'s text port. */
static void redirect(fe_req *req, const node_peer *to)
{
    char reply[320];
    size_t len = proto_text_reply_redirect(reply, sizeof reply, to->host, to->client_port);
    assert(len <= sizeof reply);
    req->s->fe->stats.redirected++;
    fe_req_done_bytes(req, reply, len);
}

static void text_write(fe_req *req, const proto_text_cmd *cmd)
{
    fe_session *s = req->s;
    frontend *fe = s->fe;
    node *n = fe->node;
    if (node_is_leader(n)) {
        kv_cmd kc;
        if (proto_text_to_kv(cmd, node_now_ms(n), fe->pairs, KV_MAX_MULTI, &kc) != KV_OK) {
            fe_req_fail(req, FE_ERR_INTERNAL);
            return;
        }
        if (fe_req_propose(req, &kc) == 0) return;
    }
    node_peer leader;
    if (node_leader(n, &leader) && leader.id != node_self(n)->id) {
        if (fe->config.text_forward && !s->forwarded) {
            growbuf b = {0};
            encode_for_leader(cmd, &b);
            if (b.failed) fe_req_fail(req, FE_ERR_INTERNAL);
            else fe_req_forward(req, fe->fwd_text, &leader, b.base, b.len);
            free(b.base);
            return;
        }
        redirect(req, &leader);
        return;
    }
    node_peer voter;
    if (node_is_outside(n) && node_some_voter(n, &voter)) {
        /* A spare or a removed node hears from no leader: a voter will know it (or redirect). */
        redirect(req, &voter);
        return;
    }
    /* No leader known (or we are it but could not propose yet): wait for one. */
    if (keep_copy(req, cmd)) fe_req_wait_leader(req);
}

static void dispatch(fe_session *s, const proto_text_cmd *cmd)
{
    bool is_write = cmd->op == PROTO_TEXT_SET || cmd->op == PROTO_TEXT_CAS ||
                    cmd->op == PROTO_TEXT_DELETE || cmd->op == PROTO_TEXT_MSET;
    fe_req *req = fe_req_new(s, (int)cmd->op, is_write, cmd->noreply && is_write);
    if (req == NULL) {
        conn_close(s->c, "closed: out of memory for a request");
        return;
    }
    if (is_write) {
        if (!fe_req_write_must_wait(req)) text_write(req, cmd);
        else keep_copy(req, cmd); /* its turn comes after the reads before it: retry */
    } else if (keep_copy(req, cmd)) {
        fe_req_read(req);
    }
}

static void text_retry(fe_req *req)
{
    text_copy *copy = req->cmd;
    assert(copy != NULL && req->is_write);
    text_write(req, &copy->cmd);
}

/* ---- input ----------------------------------------------------------------------------------- */

static size_t feed(fe_session *s, const uint8_t *data, size_t len)
{
    conn *c = s->c;
    size_t off = 0;
    while (off < len && conn_accepting(c)) {
        size_t used = 0;
        proto_text_cmd cmd;
        proto_text_error err;
        proto_text_status st = proto_text_parse(s->parser, data + off, len - off, &used, &cmd, &err);
        off += used;
        if (st == PROTO_TEXT_NEED_MORE) break;
        if (st == PROTO_TEXT_ERROR) {
            conn_reply(c, err.reply, err.reply_len);
            if (err.close) {
                char why[200];
                snprintf(why, sizeof why, "closed after %.*s: %s", (int)(err.reply_len - 2), err.reply,
                         err.reason ? err.reason : "malformed input");
                conn_close_after_replies(c, why);
                return len; /* the rest of the stream cannot be understood */
            }
            continue;
        }
        dispatch(s, &cmd);
    }
    return off;
}

static size_t text_on_data(conn *c, const uint8_t *data, size_t len)
{
    fe_session *s = conn_proto(c);
    if (s->preamble_done) return feed(s, data, len);
    /* Match the forwarder's preamble, which may arrive split like anything else. */
    static const char preamble[] = FWD_TEXT_PREAMBLE;
    const size_t plen = sizeof preamble - 1;
    size_t i = 0;
    while (i < len && s->preamble_matched < plen && data[i] == (uint8_t)preamble[s->preamble_matched]) {
        i++;
        s->preamble_matched++;
    }
    if (s->preamble_matched == plen) {
        s->preamble_done = true;
        s->forwarded = true;
        return i + feed(s, data + i, len - i);
    }
    if (i == len) return len; /* a prefix of the preamble so far */
    /* Not a forwarder: what matched was the client's own first bytes. */
    s->preamble_done = true;
    size_t matched = s->preamble_matched;
    size_t taken = feed(s, (const uint8_t *)preamble, matched);
    assert(taken == matched || conn_is_closing(c)); /* no full line in a preamble prefix */
    (void)taken;
    if (conn_is_closing(c)) return len;
    return i + feed(s, data + i, len - i);
}

/* ---- output ---------------------------------------------------------------------------------- */

static void emit_value(fe_out *out, bool with_meta, const kv_view *v, uint64_t now)
{
    char header[128];
    size_t n = with_meta ? proto_text_reply_valuem_header(header, sizeof header, v->version,
                                                          proto_text_exptime_left(v->deadline_ms, now),
                                                          v->value_len)
                         : proto_text_reply_value_header(header, sizeof header, v->value_len);
    assert(n <= sizeof header);
    fe_out_put(out, header, n);
    fe_out_put(out, v->value, v->value_len);
    fe_out_put(out, "\r\n", 2);
}

static void emit_read(fe_req *req, fe_out *out)
{
    const text_copy *copy = req->cmd;
    node *n = req->s->fe->node;
    kv_store *kv = node_kv(n);
    uint64_t now = node_now_ms(n);
    kv_view v;
    switch (copy->cmd.op) {
    case PROTO_TEXT_GET:
    case PROTO_TEXT_GETM:
        if (kv_get(kv, copy->cmd.key.base, copy->cmd.key.len, now, &v))
            emit_value(out, copy->cmd.op == PROTO_TEXT_GETM, &v, now);
        else fe_out_put(out, PROTO_TEXT_ERR_NOT_FOUND, strlen(PROTO_TEXT_ERR_NOT_FOUND));
        break;
    case PROTO_TEXT_MGET:
        for (uint32_t i = 0; i < copy->cmd.n_items; i++) {
            const kv_slice *key = &copy->items[i].key;
            if (kv_get(kv, key->base, key->len, now, &v)) emit_value(out, false, &v, now);
            else fe_out_put(out, PROTO_TEXT_ERR_NOT_FOUND, strlen(PROTO_TEXT_ERR_NOT_FOUND));
        }
        fe_out_put(out, PROTO_TEXT_END, strlen(PROTO_TEXT_END));
        break;
    default: assert(!"not a read"); break;
    }
}

/* noreply drops successes only: an error (ERR_REDIRECT, ERR_VERSION, ERR_INTERNAL, ...) is still
 * sent, so a write that a follower refused or that failed is never lost in silence. */
static void put_reply(const fe_req *req, fe_out *out, const void *line, size_t len)
{
    bool error = len >= 4 && memcmp(line, "ERR_", 4) == 0;
    if (error || !req->noreply) fe_out_put(out, line, len);
}

static void text_emit(fe_req *req, fe_out *out)
{
    char buf[128];
    size_t n;
    switch (req->reply) {
    case FE_REPLY_BYTES: put_reply(req, out, req->bytes, req->bytes_len); break;
    case FE_REPLY_RESULT:
        n = proto_text_reply_result(buf, sizeof buf, (proto_text_op)req->op, &req->result);
        assert(n <= sizeof buf);
        put_reply(req, out, buf, n);
        break;
    case FE_REPLY_READ: emit_read(req, out); break;
    case FE_REPLY_ERROR:
        if (req->err == FE_ERR_TOO_BIG) fe_out_put(out, PROTO_TEXT_ERR_CMD_ERR, strlen(PROTO_TEXT_ERR_CMD_ERR));
        else fe_out_put(out, PROTO_TEXT_ERR_INTERNAL, strlen(PROTO_TEXT_ERR_INTERNAL));
        break;
    case FE_REPLY_NONE: break;
    }
}

static void *text_new_parser(const frontend *fe)
{
    proto_text_limits limits = {.max_line = fe->config.max_line, .max_value = fe->config.max_value};
    return proto_text_new(&limits);
}

static void text_free_parser(void *parser) { proto_text_free(parser); }

const fe_proto fe_text_proto = {
    .ops = {.name = "text", .on_data = text_on_data, .closed = fe_conn_closed},
    .new_parser = text_new_parser,
    .free_parser = text_free_parser,
    .emit = text_emit,
    .retry = text_retry,
};
