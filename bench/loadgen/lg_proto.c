/*
 * lg_proto.c -- request encoders and reply decoders of raftkv-bench (contract in lg_proto.h).
 */
#include "lg_proto.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A reply line (status line, RESP line, HTTP header block) longer than this is garbage: the
 * servers we measure never send one, and waiting for more would hang the connection. */
#define LG_MAX_LINE 4096
#define LG_MAX_HTTP_HEADER 16384

/* ---- buffers ---------------------------------------------------------------------------------- */

int lg_buf_reserve(lg_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

int lg_buf_append(lg_buf *b, const void *data, size_t len)
{
    if (lg_buf_reserve(b, len) != 0) return -1;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void lg_buf_consume(lg_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void lg_buf_free(lg_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Appends printf output (short headers only). */
__attribute__((format(printf, 2, 3))) static int buf_printf(lg_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) return -1;
    return lg_buf_append(b, tmp, (size_t)n);
}

/* ---- names ------------------------------------------------------------------------------------ */

int lg_proto_from_name(const char *name, lg_proto_kind *out)
{
    if (strcmp(name, "text") == 0) *out = LG_PROTO_TEXT;
    else if (strcmp(name, "resp") == 0) *out = LG_PROTO_RESP;
    else if (strcmp(name, "etcd") == 0) *out = LG_PROTO_ETCD;
    else return -1;
    return 0;
}

const char *lg_proto_name(lg_proto_kind kind)
{
    switch (kind) {
    case LG_PROTO_TEXT: return "text";
    case LG_PROTO_RESP: return "resp";
    case LG_PROTO_ETCD: return "etcd";
    }
    return "?";
}

/* ---- base64 ----------------------------------------------------------------------------------- */

size_t lg_base64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t lg_base64_encode(const void *in, size_t n, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = '=';
    }
    return o;
}

/* ---- encoders --------------------------------------------------------------------------------- */

static int etcd_request(lg_buf *out, const char *authority, const char *path, const char *key,
                        size_t key_len, const char *value, size_t value_len, bool with_value)
{
    size_t body = strlen("{\"key\":\"\"}") + lg_base64_len(key_len);
    if (with_value) body += strlen(",\"value\":\"\"") + lg_base64_len(value_len);
    if (buf_printf(out,
                   "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   path, authority, body) != 0 ||
        lg_buf_reserve(out, body) != 0)
        return -1;
    char *w = out->data + out->len;
    char *start = w;
    memcpy(w, "{\"key\":\"", 8), w += 8;
    w += lg_base64_encode(key, key_len, w);
    *w++ = '"';
    if (with_value) {
        memcpy(w, ",\"value\":\"", 10), w += 10;
        w += lg_base64_encode(value, value_len, w);
        *w++ = '"';
    }
    *w++ = '}';
    out->len += (size_t)(w - start);
    return 0;
}

int lg_proto_encode_set(lg_buf *out, lg_proto_kind kind, const char *authority, const char *key,
                        size_t key_len, const char *value, size_t value_len)
{
    switch (kind) {
    case LG_PROTO_TEXT:
        if (buf_printf(out, "set %.*s 0 %zu\r\n", (int)key_len, key, value_len) != 0) return -1;
        if (lg_buf_append(out, value, value_len) != 0) return -1;
        return lg_buf_append(out, "\r\n", 2);
    case LG_PROTO_RESP:
        if (buf_printf(out, "*3\r\n$3\r\nSET\r\n$%zu\r\n", key_len) != 0) return -1;
        if (lg_buf_append(out, key, key_len) != 0) return -1;
        if (buf_printf(out, "\r\n$%zu\r\n", value_len) != 0) return -1;
        if (lg_buf_append(out, value, value_len) != 0) return -1;
        return lg_buf_append(out, "\r\n", 2);
    case LG_PROTO_ETCD:
        return etcd_request(out, authority, "/v3/kv/put", key, key_len, value, value_len, true);
    }
    return -1;
}

int lg_proto_encode_get(lg_buf *out, lg_proto_kind kind, const char *authority, const char *key,
                        size_t key_len)
{
    switch (kind) {
    case LG_PROTO_TEXT:
        if (buf_printf(out, "get %.*s\r\n", (int)key_len, key) != 0) return -1;
        return 0;
    case LG_PROTO_RESP:
        if (buf_printf(out, "*2\r\n$3\r\nGET\r\n$%zu\r\n", key_len) != 0) return -1;
        if (lg_buf_append(out, key, key_len) != 0) return -1;
        return lg_buf_append(out, "\r\n", 2);
    case LG_PROTO_ETCD:
        return etcd_request(out, authority, "/v3/kv/range", key, key_len, NULL, 0, false);
    }
    return -1;
}

/* ---- decoders --------------------------------------------------------------------------------- */

static void reply_set(lg_reply *r, lg_reply_status status, size_t consumed, const char *kind,
                      size_t kind_len)
{
    r->status = status;
    r->consumed = consumed;
    if (kind) {
        if (kind_len >= sizeof r->kind) kind_len = sizeof r->kind - 1;
        memcpy(r->kind, kind, kind_len);
        r->kind[kind_len] = '\0';
    }
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* Parses a decimal in s[0..len); -1 if it is not one (or too big). */
static long long parse_dec(const char *s, size_t len)
{
    if (len == 0 || len > 18) return -1;
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static void decode_text(const char *data, size_t len, lg_reply *r)
{
    const char *nl = memchr(data, '\n', len < LG_MAX_LINE ? len : LG_MAX_LINE);
    if (!nl) {
        if (len >= LG_MAX_LINE) reply_set(r, LG_REPLY_BAD, len, "text-line-too-long", 18);
        return;
    }
    size_t line_end = (size_t)(nl - data) + 1;
    size_t line_len = line_end - 1;
    if (line_len && data[line_len - 1] == '\r') line_len--;

    if (starts_with(data, line_len, "VALUE ")) {
        /* get: VALUE <n>; getm: VALUE <version> <exptime> <n>: the length is the last word. */
        size_t w = line_len;
        while (w > 6 && data[w - 1] != ' ') w--;
        long long n = parse_dec(data + w, line_len - w);
        if (n < 0) {
            reply_set(r, LG_REPLY_BAD, line_end, "text-bad-value-line", 19);
            return;
        }
        size_t total = line_end + (size_t)n + 2;
        if (len < total) return;
        if (data[total - 2] != '\r' || data[total - 1] != '\n') {
            reply_set(r, LG_REPLY_BAD, total, "text-value-no-crlf", 18);
            return;
        }
        r->value_len = (size_t)n;
        reply_set(r, LG_REPLY_OK, total, NULL, 0);
        return;
    }
    if ((line_len == 2 || starts_with(data, line_len, "OK ")) && starts_with(data, line_len, "OK")) {
        reply_set(r, LG_REPLY_OK, line_end, NULL, 0);
        return;
    }
    if (line_len == 7 && starts_with(data, line_len, "DELETED")) {
        reply_set(r, LG_REPLY_OK, line_end, NULL, 0);
        return;
    }
    if (line_len == 13 && starts_with(data, line_len, "ERR_NOT_FOUND")) {
        reply_set(r, LG_REPLY_NOT_FOUND, line_end, NULL, 0);
        return;
    }
    if (starts_with(data, line_len, "ERR_REDIRECT ")) {
        const char *host = data + 13;
        const char *sp = memchr(host, ' ', line_len - 13);
        long long port = sp ? parse_dec(sp + 1, (size_t)(data + line_len - sp - 1)) : -1;
        size_t host_len = sp ? (size_t)(sp - host) : 0;
        if (port < 1 || port > 65535 || host_len == 0 || host_len >= sizeof r->redirect_host) {
            reply_set(r, LG_REPLY_BAD, line_end, "text-bad-redirect", 17);
            return;
        }
        memcpy(r->redirect_host, host, host_len);
        r->redirect_host[host_len] = '\0';
        r->redirect_port = (uint16_t)port;
        reply_set(r, LG_REPLY_REDIRECT, line_end, "ERR_REDIRECT", 12);
        return;
    }
    if (starts_with(data, line_len, "ERR_")) {
        const char *sp = memchr(data, ' ', line_len);
        reply_set(r, LG_REPLY_ERROR, line_end, data, sp ? (size_t)(sp - data) : line_len);
        return;
    }
    reply_set(r, LG_REPLY_BAD, line_end, "text-unexpected-reply", 21);
}

static void decode_resp(const char *data, size_t len, lg_reply *r)
{
    const char *cr = NULL;
    size_t scan = len < LG_MAX_LINE ? len : LG_MAX_LINE;
    for (size_t i = 0; i + 1 < scan; i++) {
        if (data[i] == '\r' && data[i + 1] == '\n') {
            cr = data + i;
            break;
        }
    }
    if (!cr) {
        if (len >= LG_MAX_LINE) reply_set(r, LG_REPLY_BAD, len, "resp-line-too-long", 18);
        return;
    }
    size_t line_len = (size_t)(cr - data);
    size_t line_end = line_len + 2;
    switch (data[0]) {
    case '+':
    case ':':
        reply_set(r, LG_REPLY_OK, line_end, NULL, 0);
        return;
    case '-': {
        /* Keep the first three words: "-ERR not the leader" vs "-ERR Protocol error". */
        size_t n = 0, words = 0;
        while (n < line_len && !(data[n] == ' ' && ++words == 3)) n++;
        reply_set(r, LG_REPLY_ERROR, line_end, data, n);
        return;
    }
    case '$': {
        if (line_len == 3 && memcmp(data, "$-1", 3) == 0) {
            reply_set(r, LG_REPLY_NOT_FOUND, line_end, NULL, 0);
            return;
        }
        long long n = parse_dec(data + 1, line_len - 1);
        if (n < 0) {
            reply_set(r, LG_REPLY_BAD, line_end, "resp-bad-bulk-length", 20);
            return;
        }
        size_t total = line_end + (size_t)n + 2;
        if (len < total) return;
        if (data[total - 2] != '\r' || data[total - 1] != '\n') {
            reply_set(r, LG_REPLY_BAD, total, "resp-bulk-no-crlf", 17);
            return;
        }
        r->value_len = (size_t)n;
        reply_set(r, LG_REPLY_OK, total, NULL, 0);
        return;
    }
    default:
        reply_set(r, LG_REPLY_BAD, line_end, "resp-unexpected-reply", 21);
        return;
    }
}

/* Finds the header named name (case-insensitive) in the header block; returns its value. */
static const char *http_header(const char *headers, size_t len, const char *name, size_t *value_len)
{
    size_t name_len = strlen(name);
    const char *p = headers, *end = headers + len;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - p) > name_len && p[name_len] == ':' &&
            strncasecmp(p, name, name_len) == 0) {
            const char *v = p + name_len + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            *value_len = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* Walks a chunked body starting at data[pos]. Returns the offset just past it, 0 if more bytes
 * are needed, (size_t)-1 if it is malformed. */
static size_t chunked_end(const char *data, size_t len, size_t pos)
{
    for (;;) {
        const char *eol = memmem(data + pos, len - pos, "\r\n", 2);
        if (!eol) return len - pos > 32 ? (size_t)-1 : 0;
        char *stop = NULL;
        unsigned long long size = strtoull(data + pos, &stop, 16);
        if (stop == data + pos || size > (1ull << 30)) return (size_t)-1;
        pos = (size_t)(eol - data) + 2;
        if (size == 0) {
            /* Trailers (none in practice), then an empty line. */
            if (len - pos >= 2 && data[pos] == '\r' && data[pos + 1] == '\n') return pos + 2;
            const char *fin = memmem(data + pos, len - pos, "\r\n\r\n", 4);
            return fin ? (size_t)(fin - data) + 4 : 0;
        }
        if (len - pos < size + 2) return 0;
        if (data[pos + size] != '\r' || data[pos + size + 1] != '\n') return (size_t)-1;
        pos += (size_t)size + 2;
    }
}

static void decode_etcd(bool is_get, const char *data, size_t len, lg_reply *r)
{
    size_t scan = len < LG_MAX_HTTP_HEADER ? len : LG_MAX_HTTP_HEADER;
    const char *hend = memmem(data, scan, "\r\n\r\n", 4);
    if (!hend) {
        if (len >= LG_MAX_HTTP_HEADER) reply_set(r, LG_REPLY_BAD, len, "http-header-too-long", 20);
        return;
    }
    size_t body_start = (size_t)(hend - data) + 4;
    if (!starts_with(data, len, "HTTP/1.") || len < 12 || data[8] != ' ') {
        reply_set(r, LG_REPLY_BAD, body_start, "http-bad-status-line", 20);
        return;
    }
    long long code = parse_dec(data + 9, 3);
    if (code < 0) {
        reply_set(r, LG_REPLY_BAD, body_start, "http-bad-status-code", 20);
        return;
    }
    const char *headers = (const char *)memmem(data, body_start, "\r\n", 2) + 2;
    size_t headers_len = (size_t)(hend - headers);
    size_t v_len = 0, end = 0;
    const char *v = http_header(headers, headers_len, "Content-Length", &v_len);
    if (v) {
        long long cl = parse_dec(v, v_len);
        if (cl < 0) {
            reply_set(r, LG_REPLY_BAD, body_start, "http-bad-content-length", 23);
            return;
        }
        end = body_start + (size_t)cl;
        if (len < end) return;
    } else if ((v = http_header(headers, headers_len, "Transfer-Encoding", &v_len)) &&
               v_len >= 7 && strncasecmp(v, "chunked", 7) == 0) {
        end = chunked_end(data, len, body_start);
        if (end == 0) return;
        if (end == (size_t)-1) {
            reply_set(r, LG_REPLY_BAD, len, "http-bad-chunk", 14);
            return;
        }
    } else if (code == 204 || code == 304) {
        end = body_start;
    } else {
        /* A body delimited by closing the connection: not usable on a keep-alive stream. */
        reply_set(r, LG_REPLY_BAD, body_start, "http-no-length", 14);
        return;
    }
    if (code != 200) {
        char kind[16];
        int n = snprintf(kind, sizeof kind, "http-%lld", code);
        reply_set(r, LG_REPLY_ERROR, end, kind, (size_t)n);
        return;
    }
    if (is_get) {
        /* etcd leaves "kvs" out of a range reply that found nothing ("count" too). A chunk
         * header could only split the word in a body of several chunks, which range replies of
         * a few hundred bytes never are. */
        const char *kvs = memmem(data + body_start, end - body_start, "\"kvs\"", 5);
        reply_set(r, kvs ? LG_REPLY_OK : LG_REPLY_NOT_FOUND, end, NULL, 0);
        return;
    }
    reply_set(r, LG_REPLY_OK, end, NULL, 0);
}

void lg_proto_decode(lg_proto_kind kind, bool is_get, const char *data, size_t len, lg_reply *out)
{
    memset(out, 0, sizeof *out);
    out->status = LG_REPLY_NEED_MORE;
    if (len == 0) return;
    switch (kind) {
    case LG_PROTO_TEXT: decode_text(data, len, out); return;
    case LG_PROTO_RESP: decode_resp(data, len, out); return;
    case LG_PROTO_ETCD: decode_etcd(is_get, data, len, out); return;
    }
}
