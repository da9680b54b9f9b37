/*
 * txt.c -- text protocol requests and replies (see txt.h).
 *
 * Reply lines are split into at most a few space-separated tokens; numbers are parsed strictly
 * (digits only, no overflow) because a reply we misread would be shown to the user as data.
 */
#include "txt.h"

#include <assert.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TXT_MAX_TOKENS 6

bool txt_is_read(txt_op op) { return op == TXT_GET || op == TXT_GETM || op == TXT_MGET; }

const char *txt_op_name(txt_op op)
{
    switch (op) {
    case TXT_GET: return "get";
    case TXT_GETM: return "getm";
    case TXT_SET: return "set";
    case TXT_CAS: return "cas";
    case TXT_DELETE: return "delete";
    case TXT_MGET: return "mget";
    case TXT_MSET: return "mset";
    }
    return "?";
}

bool txt_key_valid(const char *key)
{
    size_t len = strlen(key);
    if (len == 0 || len > TXT_MAX_KEY) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch <= ' ' || ch == 0x7f) return false;
    }
    return true;
}

/* ---- encoding ---- */

typedef struct outbuf {
    uint8_t *data;
    size_t len, cap;
    bool oom;
} outbuf;

static void out_bytes(outbuf *b, const void *data, size_t len)
{
    if (b->oom) return;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) {
            b->oom = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void out_str(outbuf *b, const char *s) { out_bytes(b, s, strlen(s)); }

static void out_fmt(outbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(outbuf *b, const char *fmt, ...)
{
    char line[128];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    assert(n > 0 && (size_t)n < sizeof line);
    out_bytes(b, line, (size_t)n);
}

static int check_key(const char *key, char *err, size_t errcap)
{
    if (txt_key_valid(key)) return TXT_OK;
    snprintf(err, errcap, "invalid key '%.60s%s': keys are 1..%d bytes without spaces or control "
             "characters", key, strlen(key) > 60 ? "..." : "", TXT_MAX_KEY);
    return TXT_EPROTO;
}

static int check_value(size_t len, char *err, size_t errcap)
{
    if (len <= TXT_MAX_VALUE) return TXT_OK;
    snprintf(err, errcap, "value of %zu bytes is over the %u-byte hard limit", len, TXT_MAX_VALUE);
    return TXT_EPROTO;
}

int txt_encode(const txt_req *req, uint8_t **out, size_t *len, char *err, size_t errcap)
{
    *out = NULL;
    *len = 0;
    outbuf b = {0};
    int rc = TXT_OK;
    switch (req->op) {
    case TXT_GET:
    case TXT_GETM:
    case TXT_DELETE:
        if ((rc = check_key(req->key, err, errcap))) return rc;
        out_fmt(&b, "%s ", txt_op_name(req->op));
        out_str(&b, req->key);
        out_str(&b, "\r\n");
        break;
    case TXT_SET:
    case TXT_CAS:
        if ((rc = check_key(req->key, err, errcap)) || (rc = check_value(req->value_len, err, errcap)))
            return rc;
        out_fmt(&b, "%s ", txt_op_name(req->op));
        out_str(&b, req->key);
        if (req->op == TXT_SET)
            out_fmt(&b, " %" PRIu32 " %zu\r\n", req->exptime, req->value_len);
        else
            out_fmt(&b, " %" PRIu32 " %" PRIu64 " %zu\r\n", req->exptime, req->version,
                    req->value_len);
        out_bytes(&b, req->value, req->value_len);
        out_str(&b, "\r\n");
        break;
    case TXT_MGET:
        if (req->n == 0 || req->n > TXT_MAX_MULTI) {
            snprintf(err, errcap, "mget takes 1..%d keys, not %zu", TXT_MAX_MULTI, req->n);
            return TXT_EPROTO;
        }
        out_str(&b, "mget");
        for (size_t i = 0; i < req->n; i++) {
            if ((rc = check_key(req->keys[i], err, errcap))) break;
            out_str(&b, " ");
            out_str(&b, req->keys[i]);
        }
        out_str(&b, "\r\n");
        break;
    case TXT_MSET: {
        if (req->n == 0 || req->n > TXT_MAX_MULTI) {
            snprintf(err, errcap, "mset takes 1..%d pairs, not %zu", TXT_MAX_MULTI, req->n);
            return TXT_EPROTO;
        }
        size_t total = 0;
        out_fmt(&b, "mset %zu\r\n", req->n);
        for (size_t i = 0; i < req->n && !rc; i++) {
            const txt_pair *pair = &req->pairs[i];
            total += pair->value_len;
            if ((rc = check_key(pair->key, err, errcap)) || (rc = check_value(total, err, errcap)))
                break;
            out_str(&b, pair->key);
            out_fmt(&b, " %" PRIu32 " %zu\r\n", req->exptime, pair->value_len);
            out_bytes(&b, pair->value, pair->value_len);
            out_str(&b, "\r\n");
        }
        break;
    }
    default:
        snprintf(err, errcap, "unknown request op %d", (int)req->op);
        rc = TXT_EPROTO;
    }
    if (rc == TXT_OK && b.oom) {
        snprintf(err, errcap, "out of memory encoding %s", txt_op_name(req->op));
        rc = TXT_ENOMEM;
    }
    if (rc != TXT_OK) {
        free(b.data);
        return rc;
    }
    *out = b.data;
    *len = b.len;
    return TXT_OK;
}

/* ---- replies ---- */

typedef struct tokens {
    const char *start[TXT_MAX_TOKENS];
    size_t len[TXT_MAX_TOKENS];
    size_t count; /* TXT_MAX_TOKENS + 1 means "too many" */
} tokens;

static void split(const char *line, size_t len, tokens *t)
{
    t->count = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && line[i] == ' ') i++;
        if (i == len) break;
        size_t begin = i;
        while (i < len && line[i] != ' ') i++;
        if (t->count == TXT_MAX_TOKENS) {
            t->count++;
            return;
        }
        t->start[t->count] = line + begin;
        t->len[t->count] = i - begin;
        t->count++;
    }
}

static bool tok_is(const tokens *t, size_t i, const char *word)
{
    return i < t->count && t->len[i] == strlen(word) && memcmp(t->start[i], word, t->len[i]) == 0;
}

static bool tok_u64(const tokens *t, size_t i, uint64_t *value)
{
    if (i >= t->count || t->len[i] == 0 || t->len[i] > 20) return false;
    uint64_t v = 0;
    for (size_t k = 0; k < t->len[i]; k++) {
        char ch = t->start[i][k];
        if (ch < '0' || ch > '9') return false;
        uint64_t digit = (uint64_t)(ch - '0');
        if (v > (UINT64_MAX - digit) / 10) return false;
        v = v * 10 + digit;
    }
    *value = v;
    return true;
}

static int unexpected(const char *line, size_t len, const txt_req *req, char *err, size_t errcap)
{
    snprintf(err, errcap, "unexpected reply to %s: '%.*s%s'", txt_op_name(req->op),
             (int)(len > 80 ? 80 : len), line, len > 80 ? "..." : "");
    return TXT_EPROTO;
}

static int conn_failed(conn *c, char *err, size_t errcap)
{
    snprintf(err, errcap, "%s", conn_errmsg(c));
    return TXT_ECONN;
}

/* Reads numbytes of value plus its "\r\n" into v. */
static int read_value(conn *c, uint64_t numbytes, txt_value *v, const txt_req *req, char *err,
                      size_t errcap)
{
    if (numbytes > TXT_MAX_VALUE) {
        snprintf(err, errcap, "reply to %s announces %" PRIu64 " bytes, over the %u-byte limit",
                 txt_op_name(req->op), numbytes, TXT_MAX_VALUE);
        return TXT_EPROTO;
    }
    v->data = malloc((size_t)numbytes + 2);
    if (!v->data) {
        snprintf(err, errcap, "out of memory for a %" PRIu64 "-byte value", numbytes);
        return TXT_ENOMEM;
    }
    if (conn_read_exact(c, v->data, (size_t)numbytes + 2) != CONN_OK) return conn_failed(c, err, errcap);
    if (v->data[numbytes] != '\r' || v->data[numbytes + 1] != '\n') {
        snprintf(err, errcap, "reply to %s: value of %" PRIu64 " bytes not followed by \\r\\n",
                 txt_op_name(req->op), numbytes);
        return TXT_EPROTO;
    }
    v->data[numbytes] = '\0';
    v->len = (size_t)numbytes;
    v->found = true;
    return TXT_OK;
}

/* Replies any command may get; true when the line was one of them. */
static bool common_reply(const tokens *t, txt_reply *out)
{
    if (t->count == 1 && tok_is(t, 0, "ERR_CMD_ERR")) out->kind = TXT_R_CMD_ERR;
    else if (t->count == 1 && tok_is(t, 0, "ERR_INTERNAL")) out->kind = TXT_R_INTERNAL;
    else if (t->count == 1 && tok_is(t, 0, "ERR_NOT_FOUND")) out->kind = TXT_R_NOT_FOUND;
    else if (t->count == 3 && tok_is(t, 0, "ERR_REDIRECT")) {
        uint64_t port;
        if (!tok_u64(t, 2, &port) || port == 0 || port > 65535 || t->len[1] >= sizeof out->host)
            return false;
        memcpy(out->host, t->start[1], t->len[1]);
        out->host[t->len[1]] = '\0';
        out->port = (uint16_t)port;
        out->kind = TXT_R_REDIRECT;
    } else
        return false;
    return true;
}

static int read_mget(conn *c, const txt_req *req, txt_reply *out, char *err, size_t errcap)
{
    out->values = calloc(req->n, sizeof *out->values);
    if (!out->values) {
        snprintf(err, errcap, "out of memory for %zu mget results", req->n);
        return TXT_ENOMEM;
    }
    out->kind = TXT_R_MULTI;
    for (;;) {
        const char *line;
        size_t len;
        if (conn_read_line(c, &line, &len) != CONN_OK) return conn_failed(c, err, errcap);
        tokens t;
        split(line, len, &t);
        if (t.count == 1 && tok_is(&t, 0, "END")) {
            if (out->n_values != req->n) {
                snprintf(err, errcap, "reply to mget: %zu items for %zu keys", out->n_values, req->n);
                return TXT_EPROTO;
            }
            return TXT_OK;
        }
        if (out->n_values == 0 && !tok_is(&t, 0, "VALUE") && !tok_is(&t, 0, "ERR_NOT_FOUND") &&
            common_reply(&t, out))
            return TXT_OK; /* the whole command failed (redirect, internal, cmd error) */
        if (out->n_values == req->n) return unexpected(line, len, req, err, errcap);
        txt_value *v = &out->values[out->n_values];
        uint64_t numbytes;
        if (t.count == 1 && tok_is(&t, 0, "ERR_NOT_FOUND")) {
            v->found = false;
            out->n_values++;
        } else if (t.count == 2 && tok_is(&t, 0, "VALUE") && tok_u64(&t, 1, &numbytes)) {
            out->n_values++; /* counted first so txt_reply_free releases a half-read value */
            int rc = read_value(c, numbytes, v, req, err, errcap);
            if (rc) return rc;
        } else {
            return unexpected(line, len, req, err, errcap);
        }
    }
}

int txt_read_reply(conn *c, const txt_req *req, txt_reply *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (req->op == TXT_MGET) return read_mget(c, req, out, err, errcap);
    const char *line;
    size_t len;
    if (conn_read_line(c, &line, &len) != CONN_OK) return conn_failed(c, err, errcap);
    tokens t;
    split(line, len, &t);
    if (common_reply(&t, out)) return TXT_OK;
    uint64_t a, b, numbytes;
    switch (req->op) {
    case TXT_GET:
        if (t.count == 2 && tok_is(&t, 0, "VALUE") && tok_u64(&t, 1, &numbytes)) {
            out->kind = TXT_R_VALUE;
            return read_value(c, numbytes, &out->value, req, err, errcap);
        }
        break;
    case TXT_GETM:
        if (t.count == 4 && tok_is(&t, 0, "VALUE") && tok_u64(&t, 1, &a) && tok_u64(&t, 2, &b) &&
            tok_u64(&t, 3, &numbytes)) {
            out->kind = TXT_R_VALUE;
            out->value.version = a;
            out->value.exptime = b;
            return read_value(c, numbytes, &out->value, req, err, errcap);
        }
        break;
    case TXT_SET:
    case TXT_CAS:
    case TXT_MSET:
        if (t.count == 2 && tok_is(&t, 0, "OK") && tok_u64(&t, 1, &a)) {
            out->kind = TXT_R_OK;
            out->version = a;
            return TXT_OK;
        }
        if (req->op == TXT_CAS && t.count == 1 && tok_is(&t, 0, "ERR_VERSION")) {
            out->kind = TXT_R_VERSION;
            return TXT_OK;
        }
        break;
    case TXT_DELETE:
        if (t.count == 1 && tok_is(&t, 0, "DELETED")) {
            out->kind = TXT_R_DELETED;
            return TXT_OK;
        }
        break;
    case TXT_MGET: break;
    }
    return unexpected(line, len, req, err, errcap);
}

void txt_reply_free(txt_reply *reply)
{
    free(reply->value.data);
    reply->value.data = NULL;
    for (size_t i = 0; i < reply->n_values; i++) free(reply->values[i].data);
    free(reply->values);
    reply->values = NULL;
    reply->n_values = 0;
}
