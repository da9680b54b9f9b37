/*
 * proto_resp.c -- RESP2 request parser, command mapping and reply encoders (contract in
 * proto_resp.h).
 *
 * STATE. The arguments of the command being read are stored back to back in buf (offsets in args[],
 * as buf may move when it grows); the line being read (*<n>, $<len> or an inline request) is
 * appended after them and dropped once parsed. Inline requests are unquoted in place: the output
 * never outgrows the input, so no second buffer is needed.
 *
 *   FIRST_LINE  the first line of a request: '*' starts a multibulk, anything else is inline
 *   BULK_LINE   the $<len> line of argument argi
 *   BULK_DATA   len + 2 bytes of argument argi
 */
#include "proto_resp.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN 256
#define BUF_KEEP (64 * 1024)
#define ARGS_KEEP 64
#define BULK_LINE_MAX 64 /* "$1048576\r\n" is 10 bytes: a longer one is garbage */

typedef struct arg_pos {
    size_t off, len;
} arg_pos;

typedef enum parse_state { ST_FIRST_LINE, ST_BULK_LINE, ST_BULK_DATA } parse_state;

struct proto_resp_parser {
    proto_resp_limits limits;
    uint8_t *buf;
    size_t len, cap;
    parse_state state;
    bool completed;
    size_t line_start;
    uint32_t argc, argi;
    size_t bulk_left; /* data + \r\n still to read */
    arg_pos *args;
    kv_slice *argv;
    uint32_t args_cap;
};

enum { CONTINUE = -1 };

proto_resp_parser *proto_resp_new(const proto_resp_limits *limits)
{
    proto_resp_limits l = limits ? *limits : (proto_resp_limits){0};
    if (l.max_args == 0) l.max_args = PROTO_RESP_MAX_ARGS_DEFAULT;
    if (l.max_bulk == 0) l.max_bulk = KV_MAX_VALUE_DEFAULT;
    if (l.max_inline == 0) l.max_inline = PROTO_RESP_MAX_INLINE_DEFAULT;
    if (l.max_request == 0) l.max_request = l.max_bulk + 64 * 1024;
    if (l.max_bulk > KV_MAX_VALUE_HARD || l.max_request > 4 * (size_t)KV_MAX_VALUE_HARD ||
        l.max_args > 1024 * 1024 || l.max_inline < 16)
        return NULL;
    proto_resp_parser *parser = calloc(1, sizeof *parser);
    if (parser == NULL) return NULL;
    parser->limits = l;
    return parser;
}

void proto_resp_free(proto_resp_parser *parser)
{
    if (parser == NULL) return;
    free(parser->buf);
    free(parser->args);
    free(parser->argv);
    free(parser);
}

static void reset(proto_resp_parser *parser)
{
    parser->len = parser->line_start = 0;
    parser->state = ST_FIRST_LINE;
    parser->completed = false;
    parser->argc = parser->argi = 0;
    parser->bulk_left = 0;
    if (parser->cap > BUF_KEEP) {
        free(parser->buf);
        parser->buf = NULL;
        parser->cap = 0;
    }
    if (parser->args_cap > ARGS_KEEP) {
        free(parser->args);
        free(parser->argv);
        parser->args = NULL;
        parser->argv = NULL;
        parser->args_cap = 0;
    }
}

static bool buf_append(proto_resp_parser *parser, const uint8_t *data, size_t n)
{
    if (parser->len + n > parser->cap) {
        size_t cap = parser->cap ? parser->cap : BUF_MIN;
        while (cap < parser->len + n) cap *= 2;
        uint8_t *grown = realloc(parser->buf, cap);
        if (grown == NULL) return false;
        parser->buf = grown;
        parser->cap = cap;
    }
    memcpy(parser->buf + parser->len, data, n);
    parser->len += n;
    return true;
}

static bool args_reserve(proto_resp_parser *parser, uint32_t n)
{
    if (n <= parser->args_cap) return true;
    uint32_t cap = parser->args_cap ? parser->args_cap : 8;
    while (cap < n) cap *= 2;
    arg_pos *args = realloc(parser->args, cap * sizeof *args);
    if (args == NULL) return false;
    parser->args = args;
    kv_slice *argv = realloc(parser->argv, cap * sizeof *argv);
    if (argv == NULL) return false;
    parser->argv = argv;
    parser->args_cap = cap;
    return true;
}

static int protocol_error(proto_resp_parser *parser, proto_resp_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int protocol_error(proto_resp_parser *parser, proto_resp_error *err, const char *fmt, ...)
{
    char what[80];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    int n = snprintf(err->reply, sizeof err->reply, "-ERR Protocol error: %s\r\n", what);
    assert(n > 0 && (size_t)n < sizeof err->reply);
    err->reply_len = (size_t)n;
    err->close = true;
    reset(parser);
    return PROTO_RESP_ERROR;
}

/* Redis's string2ll rules: optional '-', digits, no '+', no leading zeros, no spaces. */
static bool parse_ll(const uint8_t *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 20) return false;
    size_t i = 0;
    bool negative = s[0] == '-';
    if (negative && len == 1) return false;
    if (negative) i = 1;
    if (s[i] == '0' && (len - i > 1 || negative)) return false;
    uint64_t magnitude = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (magnitude > (UINT64_MAX - digit) / 10) return false;
        magnitude = magnitude * 10 + digit;
    }
    if (negative) {
        if (magnitude > (uint64_t)INT64_MAX + 1) return false;
        *out = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
    } else {
        if (magnitude > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)magnitude;
    }
    return true;
}

static int finish(proto_resp_parser *parser, proto_resp_cmd *cmd)
{
    for (uint32_t i = 0; i < parser->argc; i++) {
        parser->argv[i].base = parser->buf + parser->args[i].off;
        parser->argv[i].len = parser->args[i].len;
    }
    cmd->argc = parser->argc;
    cmd->argv = parser->argv;
    parser->completed = true;
    return PROTO_RESP_COMMAND;
}

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool is_blank(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Split an inline request at buf[start..start+len) into arguments, unquoting in place. */
static int inline_request(proto_resp_parser *parser, size_t start, size_t len, proto_resp_cmd *cmd,
                          proto_resp_error *err)
{
    uint8_t *line = parser->buf + start;
    size_t in = 0, out = 0;
    uint32_t argc = 0;
    for (;;) {
        while (in < len && is_blank(line[in])) in++;
        if (in == len) break;
        size_t arg_start = out;
        bool in_double = false, in_single = false, done = false;
        while (!done) {
            if (in_double) {
                if (in == len) return protocol_error(parser, err, "unbalanced quotes in request");
                if (line[in] == '\\' && in + 3 < len && line[in + 1] == 'x' &&
                    hex_digit(line[in + 2]) >= 0 && hex_digit(line[in + 3]) >= 0) {
                    line[out++] = (uint8_t)(hex_digit(line[in + 2]) * 16 + hex_digit(line[in + 3]));
                    in += 4;
                } else if (line[in] == '\\' && in + 1 < len) {
                    uint8_t c = line[in + 1];
                    line[out++] = c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t'
                                : c == 'b' ? '\b' : c == 'a' ? '\a' : c;
                    in += 2;
                } else if (line[in] == '"') {
                    in++;
                    /* a closing quote must end the argument */
                    if (in < len && !is_blank(line[in]))
                        return protocol_error(parser, err, "unbalanced quotes in request");
                    done = true;
                } else {
                    line[out++] = line[in++];
                }
            } else if (in_single) {
                if (in == len) return protocol_error(parser, err, "unbalanced quotes in request");
                if (line[in] == '\\' && in + 1 < len && line[in + 1] == '\'') {
                    line[out++] = '\'';
                    in += 2;
                } else if (line[in] == '\'') {
                    in++;
                    if (in < len && !is_blank(line[in]))
                        return protocol_error(parser, err, "unbalanced quotes in request");
                    done = true;
                } else {
                    line[out++] = line[in++];
                }
            } else if (in == len || is_blank(line[in])) {
                done = true;
            } else if (line[in] == '"') {
                in_double = true;
                in++;
            } else if (line[in] == '\'') {
                in_single = true;
                in++;
            } else {
                line[out++] = line[in++];
            }
        }
        if (argc == parser->limits.max_args)
            return protocol_error(parser, err, "invalid multibulk length");
        if (!args_reserve(parser, argc + 1)) return protocol_error(parser, err, "out of memory");
        parser->args[argc].off = start + arg_start;
        parser->args[argc].len = out - arg_start;
        argc++;
    }
    if (argc == 0) { /* an empty line: Redis ignores it */
        reset(parser);
        return CONTINUE;
    }
    parser->argc = argc;
    return finish(parser, cmd);
}

/* A complete line is at buf[line_start..line_start+line_len) (without its \r\n). */
static int on_line(proto_resp_parser *parser, size_t line_len, proto_resp_cmd *cmd,
                   proto_resp_error *err)
{
    const uint8_t *line = parser->buf + parser->line_start;
    if (parser->state == ST_FIRST_LINE) {
        if (line_len == 0 || line[0] != '*')
            return inline_request(parser, parser->line_start, line_len, cmd, err);
        int64_t count = 0;
        if (!parse_ll(line + 1, line_len - 1, &count) || count > (int64_t)parser->limits.max_args)
            return protocol_error(parser, err, "invalid multibulk length");
        if (count <= 0) { /* *0 and *-1: nothing to do, as in Redis */
            reset(parser);
            return CONTINUE;
        }
        if (!args_reserve(parser, (uint32_t)count)) return protocol_error(parser, err, "out of memory");
        parser->argc = (uint32_t)count;
        parser->argi = 0;
        parser->len = parser->line_start = 0;
        parser->state = ST_BULK_LINE;
        return CONTINUE;
    }
    assert(parser->state == ST_BULK_LINE);
    if (line_len == 0 || line[0] != '$') {
        uint8_t got = line_len ? line[0] : '\r';
        if (got >= 0x20 && got < 0x7f) return protocol_error(parser, err, "expected '$', got '%c'", got);
        return protocol_error(parser, err, "expected '$', got byte 0x%02x", got);
    }
    int64_t bulk = 0;
    if (!parse_ll(line + 1, line_len - 1, &bulk) || bulk < 0 ||
        (uint64_t)bulk > parser->limits.max_bulk)
        return protocol_error(parser, err, "invalid bulk length");
    parser->len = parser->line_start; /* drop the $ line */
    if (parser->len + (size_t)bulk > parser->limits.max_request)
        return protocol_error(parser, err, "request larger than %zu bytes",
                              parser->limits.max_request);
    parser->args[parser->argi].off = parser->len;
    parser->args[parser->argi].len = (size_t)bulk;
    parser->bulk_left = (size_t)bulk + 2;
    parser->state = ST_BULK_DATA;
    return CONTINUE;
}

proto_resp_status proto_resp_parse(proto_resp_parser *parser, const uint8_t *data, size_t len,
                                   size_t *consumed, proto_resp_cmd *cmd, proto_resp_error *err)
{
    if (parser->completed) reset(parser);
    size_t used = 0;
    int status = CONTINUE;
    while (used < len && status == CONTINUE) {
        const uint8_t *in = data + used;
        size_t avail = len - used;
        if (parser->state == ST_BULK_DATA) {
            size_t n = avail < parser->bulk_left ? avail : parser->bulk_left;
            if (!buf_append(parser, in, n)) {
                status = protocol_error(parser, err, "out of memory");
                break;
            }
            used += n;
            parser->bulk_left -= n;
            if (parser->bulk_left > 0) continue;
            if (parser->buf[parser->len - 2] != '\r' || parser->buf[parser->len - 1] != '\n') {
                status = protocol_error(parser, err, "expected \\r\\n after bulk data");
                break;
            }
            parser->len -= 2;
            parser->line_start = parser->len;
            if (++parser->argi == parser->argc) {
                status = finish(parser, cmd);
            } else {
                parser->state = ST_BULK_LINE;
            }
            continue;
        }
        const uint8_t *newline = memchr(in, '\n', avail);
        size_t take = newline ? (size_t)(newline - in) + 1 : avail;
        size_t have = parser->len - parser->line_start;
        size_t max = parser->state == ST_FIRST_LINE ? parser->limits.max_inline : BULK_LINE_MAX;
        if (have + take > max) {
            used += take;
            status = protocol_error(parser, err, parser->state == ST_FIRST_LINE
                                                     ? "too big inline request"
                                                     : "too big bulk count string");
            break;
        }
        if (!buf_append(parser, in, take)) {
            used += take;
            status = protocol_error(parser, err, "out of memory");
            break;
        }
        used += take;
        if (newline == NULL) continue;
        size_t line_len = parser->len - parser->line_start - 1;
        if (line_len > 0 && parser->buf[parser->line_start + line_len - 1] == '\r') line_len--;
        status = on_line(parser, line_len, cmd, err);
    }
    *consumed = used;
    return status == CONTINUE ? PROTO_RESP_NEED_MORE : (proto_resp_status)status;
}

/* ---- reply encoders -------------------------------------------------------------------------- */

static size_t emit(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static size_t emit(char *buf, size_t cap, const char *fmt, ...)
{
    char line[400];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    assert(n >= 0 && (size_t)n < sizeof line);
    if ((size_t)n <= cap) memcpy(buf, line, (size_t)n);
    return (size_t)n;
}

size_t proto_resp_simple(char *buf, size_t cap, const char *text)
{
    return emit(buf, cap, "+%.300s\r\n", text);
}

size_t proto_resp_error_reply(char *buf, size_t cap, const char *text)
{
    return emit(buf, cap, "-%.300s\r\n", text);
}

size_t proto_resp_integer(char *buf, size_t cap, int64_t value)
{
    return emit(buf, cap, ":%" PRId64 "\r\n", value);
}

size_t proto_resp_bulk_header(char *buf, size_t cap, size_t len)
{
    return emit(buf, cap, "$%zu\r\n", len);
}

size_t proto_resp_bulk(char *buf, size_t cap, const uint8_t *data, size_t len)
{
    char header[32];
    size_t n = proto_resp_bulk_header(header, sizeof header, len);
    size_t total = n + len + 2;
    if (total > cap) return total;
    memcpy(buf, header, n);
    if (len) memcpy(buf + n, data, len);
    memcpy(buf + n + len, "\r\n", 2);
    return total;
}

size_t proto_resp_null_bulk(char *buf, size_t cap) { return emit(buf, cap, "$-1\r\n"); }

size_t proto_resp_array_header(char *buf, size_t cap, size_t count)
{
    return emit(buf, cap, "*%zu\r\n", count);
}

/* ---- command mapping ------------------------------------------------------------------------- */

typedef struct command_spec {
    const char *name;
    proto_resp_name id;
    int arity; /* Redis convention: N = exactly N args (name included), -N = at least N */
    proto_resp_kind kind;
} command_spec;

static const command_spec commands[] = {
    {"ping", PROTO_RESP_CMD_PING, -1, PROTO_RESP_KIND_LOCAL},
    {"get", PROTO_RESP_CMD_GET, 2, PROTO_RESP_KIND_READ},
    {"set", PROTO_RESP_CMD_SET, -3, PROTO_RESP_KIND_WRITE},
    {"del", PROTO_RESP_CMD_DEL, -2, PROTO_RESP_KIND_WRITE},
    {"exists", PROTO_RESP_CMD_EXISTS, -2, PROTO_RESP_KIND_READ},
    {"mget", PROTO_RESP_CMD_MGET, -2, PROTO_RESP_KIND_READ},
    {"mset", PROTO_RESP_CMD_MSET, -3, PROTO_RESP_KIND_WRITE},
    {"incr", PROTO_RESP_CMD_INCR, 2, PROTO_RESP_KIND_WRITE},
    {"expire", PROTO_RESP_CMD_EXPIRE, -3, PROTO_RESP_KIND_WRITE},
    {"ttl", PROTO_RESP_CMD_TTL, 2, PROTO_RESP_KIND_READ},
    {"info", PROTO_RESP_CMD_INFO, -1, PROTO_RESP_KIND_LOCAL},
    {"dbsize", PROTO_RESP_CMD_DBSIZE, 1, PROTO_RESP_KIND_LOCAL},
    {"command", PROTO_RESP_CMD_COMMAND, -1, PROTO_RESP_KIND_LOCAL},
    {"quit", PROTO_RESP_CMD_QUIT, -1, PROTO_RESP_KIND_LOCAL},
};

static bool equals_nocase(kv_slice s, const char *word)
{
    size_t len = strlen(word);
    if (s.len != len) return false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s.base[i];
        if (c >= 'A' && c <= 'Z') c = (uint8_t)(c - 'A' + 'a');
        if (c != (uint8_t)word[i]) return false;
    }
    return true;
}

static void reply_text(proto_resp_request *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reply_text(proto_resp_request *out, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(out->reply, sizeof out->reply, fmt, args);
    va_end(args);
    assert(n > 0 && (size_t)n < sizeof out->reply);
    out->reply_len = (size_t)n;
    out->kind = PROTO_RESP_KIND_REPLY;
}

/* Append at most max bytes of s, stopping at a NUL as "%.*s" would. */
static size_t append_prefix(char *to, size_t at, kv_slice s, size_t max)
{
    size_t n = 0;
    while (n < s.len && n < max && s.base[n] != 0) to[at++] = (char)s.base[n++];
    return at;
}

/* Redis 7: "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' " with CR/LF made spaces. */
static void unknown_command(const proto_resp_cmd *cmd, proto_resp_request *out)
{
    char args[200];
    size_t len = 0;
    for (uint32_t i = 1; i < cmd->argc && len < 128; i++) {
        args[len++] = '\'';
        len = append_prefix(args, len, cmd->argv[i], 128 - (len - 1));
        args[len++] = '\'';
        args[len++] = ' ';
    }
    char name[130];
    size_t name_len = append_prefix(name, 0, cmd->argv[0], 128);
    reply_text(out, "-ERR unknown command '%.*s', with args beginning with: %.*s\r\n", (int)name_len,
               name, (int)len, args);
    for (size_t i = 1; i + 2 < out->reply_len; i++) /* keep the final \r\n */
        if (out->reply[i] == '\r' || out->reply[i] == '\n') out->reply[i] = ' ';
}

static const char *const NOT_INTEGER = "-ERR value is not an integer or out of range\r\n";
static const char *const SYNTAX = "-ERR syntax error\r\n";

static bool check_key(kv_slice key, proto_resp_request *out)
{
    if (kv_key_valid(key.base, key.len)) return true;
    reply_text(out, "-ERR invalid key: 1 to %d bytes without spaces or control characters\r\n",
               KV_MAX_KEY);
    return false;
}

static bool check_value(kv_slice value, size_t max_value, proto_resp_request *out)
{
    if (value.len <= max_value) return true;
    reply_text(out, "-ERR value too large (%zu bytes, the limit is %zu)\r\n", value.len, max_value);
    return false;
}

static void map_set(const proto_resp_cmd *cmd, uint64_t now_ms, size_t max_value,
                    proto_resp_request *out)
{
    kv_cmd *kv = &out->cmd;
    kv->op = KV_OP_SET;
    kv->key = cmd->argv[1];
    kv->value = cmd->argv[2];
    const kv_slice *expire = NULL;
    bool in_ms = false;
    /* options first, numbers after: Redis reports a syntax error before a bad number */
    for (uint32_t i = 3; i < cmd->argc; i++) {
        kv_slice opt = cmd->argv[i];
        bool has_next = i + 1 < cmd->argc;
        if (equals_nocase(opt, "nx") && !(kv->flags & KV_SET_XX)) {
            kv->flags |= KV_SET_NX;
        } else if (equals_nocase(opt, "xx") && !(kv->flags & KV_SET_NX)) {
            kv->flags |= KV_SET_XX;
        } else if ((equals_nocase(opt, "ex") || equals_nocase(opt, "px")) && expire == NULL &&
                   has_next) {
            in_ms = equals_nocase(opt, "px");
            expire = &cmd->argv[++i];
        } else {
            reply_text(out, "%s", SYNTAX);
            return;
        }
    }
    if (expire != NULL) {
        int64_t amount = 0;
        if (!parse_ll(expire->base, expire->len, &amount)) {
            reply_text(out, "%s", NOT_INTEGER);
            return;
        }
        if (amount <= 0 || (!in_ms && amount > INT64_MAX / 1000)) {
            reply_text(out, "-ERR invalid expire time in 'set' command\r\n");
            return;
        }
        kv->deadline_ms = in_ms ? kv_deadline_from_ms(now_ms, amount)
                                : kv_deadline_from_seconds(now_ms, amount);
    }
    if (!check_key(kv->key, out) || !check_value(kv->value, max_value, out)) return;
    out->kind = PROTO_RESP_KIND_WRITE;
}

static void map_expire(const proto_resp_cmd *cmd, uint64_t now_ms, proto_resp_request *out)
{
    int64_t seconds = 0;
    if (!parse_ll(cmd->argv[2].base, cmd->argv[2].len, &seconds)) {
        reply_text(out, "%s", NOT_INTEGER);
        return;
    }
    if (cmd->argc > 3) { /* Redis 7's NX/XX/GT/LT are not supported */
        char opt[130];
        size_t n = append_prefix(opt, 0, cmd->argv[3], 128);
        reply_text(out, "-ERR Unsupported option %.*s\r\n", (int)n, opt);
        for (size_t i = 1; i + 2 < out->reply_len; i++)
            if (out->reply[i] == '\r' || out->reply[i] == '\n') out->reply[i] = ' ';
        return;
    }
    if (seconds > INT64_MAX / 1000) {
        reply_text(out, "-ERR invalid expire time in 'expire' command\r\n");
        return;
    }
    if (!kv_key_valid(cmd->argv[1].base, cmd->argv[1].len)) { /* such a key cannot exist */
        reply_text(out, ":0\r\n");
        return;
    }
    out->cmd.op = KV_OP_EXPIRE;
    out->cmd.key = cmd->argv[1];
    /* a non-positive time deletes the key, as in Redis: a deadline already passed */
    out->cmd.deadline_ms = seconds <= 0 ? kv_deadline_from_ms(now_ms, -1)
                                        : kv_deadline_from_seconds(now_ms, seconds);
    out->kind = PROTO_RESP_KIND_WRITE;
}

void proto_resp_map(const proto_resp_cmd *cmd, uint64_t now_ms, size_t max_value, kv_pair *pairs,
                    proto_resp_request *out)
{
    memset(out, 0, sizeof *out);
    out->cmd.now_ms = now_ms;
    const command_spec *spec = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (equals_nocase(cmd->argv[0], commands[i].name)) {
            spec = &commands[i];
            break;
        }
    }
    if (spec == NULL) {
        unknown_command(cmd, out);
        return;
    }
    out->name = spec->id;
    if ((spec->arity > 0 && cmd->argc != (uint32_t)spec->arity) ||
        (spec->arity < 0 && cmd->argc < (uint32_t)-spec->arity) ||
        (spec->id == PROTO_RESP_CMD_MSET && cmd->argc % 2 == 0) ||
        (spec->id == PROTO_RESP_CMD_PING && cmd->argc > 2)) {
        reply_text(out, "-ERR wrong number of arguments for '%s' command\r\n", spec->name);
        return;
    }
    out->keys = cmd->argv + 1;
    out->n_keys = cmd->argc - 1;
    switch (spec->id) {
    case PROTO_RESP_CMD_SET:
        map_set(cmd, now_ms, max_value, out);
        return;
    case PROTO_RESP_CMD_EXPIRE:
        map_expire(cmd, now_ms, out);
        return;
    case PROTO_RESP_CMD_INCR:
        if (!check_key(cmd->argv[1], out)) return;
        out->cmd.op = KV_OP_INCR;
        out->cmd.key = cmd->argv[1];
        out->cmd.delta = 1;
        out->kind = PROTO_RESP_KIND_WRITE;
        return;
    case PROTO_RESP_CMD_DEL: {
        uint32_t n = 0;
        for (uint32_t i = 1; i < cmd->argc; i++) {
            if (!kv_key_valid(cmd->argv[i].base, cmd->argv[i].len)) continue; /* cannot exist */
            if (n == KV_MAX_MULTI) {
                reply_text(out, "-ERR too many keys in one command (the limit is %d)\r\n",
                           KV_MAX_MULTI);
                return;
            }
            memset(&pairs[n], 0, sizeof pairs[n]);
            pairs[n++].key = cmd->argv[i];
        }
        if (n == 0) {
            reply_text(out, ":0\r\n");
            return;
        }
        out->cmd.op = KV_OP_DELETE;
        out->cmd.pairs = pairs;
        out->cmd.n_pairs = n;
        out->kind = PROTO_RESP_KIND_WRITE;
        return;
    }
    case PROTO_RESP_CMD_MSET: {
        uint32_t n = (cmd->argc - 1) / 2;
        if (n > KV_MAX_MULTI) {
            reply_text(out, "-ERR too many keys in one command (the limit is %d)\r\n", KV_MAX_MULTI);
            return;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (!check_key(cmd->argv[1 + 2 * i], out) ||
                !check_value(cmd->argv[2 + 2 * i], max_value, out))
                return;
            pairs[i].key = cmd->argv[1 + 2 * i];
            pairs[i].value = cmd->argv[2 + 2 * i];
            pairs[i].deadline_ms = 0;
        }
        out->cmd.op = KV_OP_MSET;
        out->cmd.pairs = pairs;
        out->cmd.n_pairs = n;
        out->kind = PROTO_RESP_KIND_WRITE;
        return;
    }
    default:
        out->kind = spec->kind; /* READ or LOCAL: keys/arguments are set */
        return;
    }
}

size_t proto_resp_reply_write(char *buf, size_t cap, proto_resp_name name, const kv_result *result)
{
    switch (name) {
    case PROTO_RESP_CMD_SET:
        if (result->status == KV_ST_OK) return proto_resp_simple(buf, cap, "OK");
        if (result->status == KV_ST_NOT_SET) return proto_resp_null_bulk(buf, cap);
        break;
    case PROTO_RESP_CMD_MSET:
        if (result->status == KV_ST_OK) return proto_resp_simple(buf, cap, "OK");
        break;
    case PROTO_RESP_CMD_DEL:
        if (result->status == KV_ST_DELETED || result->status == KV_ST_NOT_FOUND)
            return proto_resp_integer(buf, cap, result->count);
        break;
    case PROTO_RESP_CMD_INCR:
        if (result->status == KV_ST_OK) return proto_resp_integer(buf, cap, result->integer);
        if (result->status == KV_ST_NOT_INTEGER)
            return emit(buf, cap, "%s", NOT_INTEGER);
        if (result->status == KV_ST_OVERFLOW)
            return proto_resp_error_reply(buf, cap, "ERR increment or decrement would overflow");
        break;
    case PROTO_RESP_CMD_EXPIRE:
        if (result->status == KV_ST_OK) return proto_resp_integer(buf, cap, 1);
        if (result->status == KV_ST_NOT_FOUND) return proto_resp_integer(buf, cap, 0);
        break;
    default:
        break;
    }
    return proto_resp_error_reply(buf, cap, "ERR internal error: unexpected result");
}

int64_t proto_resp_ttl_seconds(int64_t ttl_ms)
{
    if (ttl_ms < 0) return ttl_ms;
    return ttl_ms / 1000 + (ttl_ms % 1000 >= 500);
}
