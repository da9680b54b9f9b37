/*
 * proto_text.c -- incremental parser and replies of the text protocol (contract in proto_text.h).
 *
 * STATE. A command is accumulated in buf from offset 0: its line, then (set/cas) its value, or
 * (mset) its block lines and values one after the other. Positions are kept as offsets because buf
 * may move when it grows; they become slices only when the command is complete. Bytes that must be
 * thrown away (the value of a rejected set, the blocks of a rejected mset) are counted, not stored.
 *
 *   LINE        reading a command line (line_start = 0)
 *   VALUE       reading numbytes + 2 bytes of a set/cas value
 *   MSET_LINE   reading the line of mset block number mset_done
 *   MSET_VALUE  reading that block's value (discarded when the mset already failed)
 *   SKIP        discarding skip_left bytes, then back to LINE
 */
#include "proto_text.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN 512
#define BUF_KEEP (64 * 1024) /* a bigger buffer is released after its command */
#define SLOTS_KEEP 64
#define LINE_TOKENS 8        /* a non-mget line never has more tokens than this */

typedef struct slot {
    size_t key_off, key_len;
    size_t value_off, value_len;
    uint32_t exptime;
} slot;

typedef enum parse_state { ST_LINE, ST_VALUE, ST_MSET_LINE, ST_MSET_VALUE, ST_SKIP } parse_state;

struct proto_text_parser {
    proto_text_limits limits;
    size_t max_buffer; /* max_line + max_value + 2 */
    uint8_t *buf;
    size_t len, cap;
    parse_state state;
    bool completed;    /* buf holds a returned command: drop it on the next call */
    size_t line_start; /* offset of the line being read */
    /* the command being assembled */
    proto_text_op op;
    bool noreply;
    size_t key_off, key_len;
    size_t value_off, value_len; /* value_len excludes the trailing \r\n */
    size_t value_left;           /* bytes (value + \r\n) still to read or discard */
    uint8_t term[2];             /* the two bytes after a discarded value */
    uint32_t exptime;
    uint64_t version;
    uint32_t mset_total, mset_done;
    bool mset_failed;
    const char *mset_reason;
    size_t skip_left;
    slot *slots;
    proto_text_item *items;
    uint32_t slots_cap;
};

typedef struct token {
    size_t off, len; /* relative to the line's first byte */
} token;

enum { CONTINUE = -1 };

const char *proto_text_op_name(int op)
{
    switch (op) {
    case PROTO_TEXT_SET: return "set";
    case PROTO_TEXT_GET: return "get";
    case PROTO_TEXT_GETM: return "getm";
    case PROTO_TEXT_CAS: return "cas";
    case PROTO_TEXT_DELETE: return "delete";
    case PROTO_TEXT_MSET: return "mset";
    case PROTO_TEXT_MGET: return "mget";
    default: return "unknown";
    }
}

proto_text_parser *proto_text_new(const proto_text_limits *limits)
{
    proto_text_limits l = limits ? *limits : (proto_text_limits){0};
    if (l.max_line == 0) l.max_line = PROTO_TEXT_MAX_LINE_DEFAULT;
    if (l.max_value == 0) l.max_value = KV_MAX_VALUE_DEFAULT;
    if (l.max_keys == 0) l.max_keys = KV_MAX_MULTI;
    if (l.max_value > KV_MAX_VALUE_HARD || l.max_keys > KV_MAX_MULTI || l.max_line < 16)
        return NULL;
    proto_text_parser *parser = calloc(1, sizeof *parser);
    if (parser == NULL) return NULL;
    parser->limits = l;
    parser->max_buffer = l.max_line + l.max_value + 2;
    return parser;
}

void proto_text_free(proto_text_parser *parser)
{
    if (parser == NULL) return;
    free(parser->buf);
    free(parser->slots);
    free(parser->items);
    free(parser);
}

void proto_text_reset(proto_text_parser *parser)
{
    parser->len = 0;
    parser->line_start = 0;
    parser->state = ST_LINE;
    parser->completed = false;
    parser->skip_left = 0;
    parser->mset_total = parser->mset_done = 0;
    parser->mset_failed = false;
    if (parser->cap > BUF_KEEP) { /* one big value must not pin memory on an idle connection */
        free(parser->buf);
        parser->buf = NULL;
        parser->cap = 0;
    }
    if (parser->slots_cap > SLOTS_KEEP) {
        free(parser->slots);
        free(parser->items);
        parser->slots = NULL;
        parser->items = NULL;
        parser->slots_cap = 0;
    }
}

static bool buf_append(proto_text_parser *parser, const uint8_t *data, size_t n)
{
    assert(parser->len + n <= parser->max_buffer);
    if (parser->len + n > parser->cap) {
        size_t cap = parser->cap ? parser->cap : BUF_MIN;
        while (cap < parser->len + n) cap *= 2;
        if (cap > parser->max_buffer) cap = parser->max_buffer;
        uint8_t *grown = realloc(parser->buf, cap);
        if (grown == NULL) return false;
        parser->buf = grown;
        parser->cap = cap;
    }
    memcpy(parser->buf + parser->len, data, n);
    parser->len += n;
    return true;
}

static bool slots_reserve(proto_text_parser *parser, uint32_t n)
{
    if (n <= parser->slots_cap) return true;
    uint32_t cap = parser->slots_cap ? parser->slots_cap : 16;
    while (cap < n) cap *= 2;
    slot *slots = realloc(parser->slots, cap * sizeof *slots);
    if (slots == NULL) return false;
    parser->slots = slots;
    proto_text_item *items = realloc(parser->items, cap * sizeof *items);
    if (items == NULL) return false;
    parser->items = items;
    parser->slots_cap = cap;
    return true;
}

/* ---- errors ---------------------------------------------------------------------------------- */

static int fail(proto_text_error *err, bool close, const char *reason)
{
    err->reply = PROTO_TEXT_ERR_CMD_ERR;
    err->reply_len = sizeof PROTO_TEXT_ERR_CMD_ERR - 1;
    err->close = close;
    err->reason = reason;
    return PROTO_TEXT_ERROR;
}

static int fail_internal(proto_text_error *err, const char *reason)
{
    err->reply = PROTO_TEXT_ERR_INTERNAL;
    err->reply_len = sizeof PROTO_TEXT_ERR_INTERNAL - 1;
    err->close = true;
    err->reason = reason;
    return PROTO_TEXT_ERROR;
}

/* An error that ends the current command; the parser is ready for the next one (or skips first). */
static int fail_reset(proto_text_parser *parser, proto_text_error *err, bool close, const char *reason)
{
    size_t skip = parser->skip_left;
    proto_text_reset(parser);
    if (skip && !close) {
        parser->skip_left = skip;
        parser->state = ST_SKIP;
    }
    return fail(err, close, reason);
}

/* ---- tokens and numbers ---------------------------------------------------------------------- */

static bool is_blank(uint8_t c) { return c == ' ' || c == '\t'; }

/* Split line[0..len) on runs of blanks into at most max tokens; returns the count, or max + 1 when
 * there are more. */
static size_t tokenize(const uint8_t *line, size_t len, token *tokens, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && is_blank(line[i])) i++;
        if (i == len) break;
        size_t start = i;
        while (i < len && !is_blank(line[i])) i++;
        if (n == max) return max + 1;
        tokens[n].off = start;
        tokens[n].len = i - start;
        n++;
    }
    return n;
}

static bool token_is(const uint8_t *line, token t, const char *word)
{
    size_t len = strlen(word);
    return t.len == len && memcmp(line + t.off, word, len) == 0;
}

/* Unsigned decimal, digits only, no sign, at most max. */
static bool parse_u64(const uint8_t *line, token t, uint64_t max, uint64_t *out)
{
    if (t.len == 0 || t.len > 20) return false;
    uint64_t value = 0;
    for (size_t i = 0; i < t.len; i++) {
        uint8_t c = line[t.off + i];
        if (c < '0' || c > '9') return false;
        uint64_t digit = (uint64_t)(c - '0');
        if (value > (UINT64_MAX - digit) / 10) return false;
        value = value * 10 + digit;
    }
    if (value > max) return false;
    *out = value;
    return true;
}

static bool token_key_ok(const uint8_t *line, token t)
{
    return kv_key_valid(line + t.off, t.len);
}

/* ---- command lines --------------------------------------------------------------------------- */

static int finish_command(proto_text_parser *parser, proto_text_cmd *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->op = parser->op;
    cmd->noreply = parser->noreply;
    cmd->key.base = parser->buf + parser->key_off;
    cmd->key.len = parser->key_len;
    if (parser->op == PROTO_TEXT_SET || parser->op == PROTO_TEXT_CAS) {
        cmd->value.base = parser->buf + parser->value_off;
        cmd->value.len = parser->value_len;
    }
    if (parser->op == PROTO_TEXT_MSET || parser->op == PROTO_TEXT_MGET) {
        uint32_t n = parser->op == PROTO_TEXT_MSET ? parser->mset_total : parser->mset_done;
        for (uint32_t i = 0; i < n; i++) {
            const slot *s = &parser->slots[i];
            proto_text_item *item = &parser->items[i];
            item->key.base = parser->buf + s->key_off;
            item->key.len = s->key_len;
            item->value.base = parser->buf + s->value_off;
            item->value.len = s->value_len;
            item->exptime = s->exptime;
        }
        cmd->n_items = n;
        cmd->items = parser->items;
        cmd->key.base = NULL;
        cmd->key.len = 0;
    }
    cmd->exptime = parser->exptime;
    cmd->version = parser->version;
    parser->completed = true;
    return PROTO_TEXT_COMMAND;
}

/* set/cas: the line is complete in buf[0..line_len). */
static int storage_line(proto_text_parser *parser, const uint8_t *line, const token *tok, size_t ntok,
                        proto_text_error *err)
{
    bool cas = parser->op == PROTO_TEXT_CAS;
    size_t num_at = cas ? 4 : 3; /* index of <numbytes> */
    uint64_t numbytes = 0;
    bool have_numbytes = ntok > num_at && parse_u64(line, tok[num_at], UINT64_MAX, &numbytes);
    if (have_numbytes && numbytes > parser->limits.max_value)
        return fail_reset(parser, err, true, "numbytes over the value limit");
    const char *reason = NULL;
    uint64_t exptime = 0, version = 0;
    if (ntok != num_at + 1 && ntok != num_at + 2) reason = "wrong number of arguments";
    else if (!have_numbytes) reason = "numbytes is not a number";
    else if (ntok == num_at + 2 && !token_is(line, tok[num_at + 1], "noreply"))
        reason = "expected noreply after numbytes";
    else if (!token_key_ok(line, tok[1])) reason = "invalid key (1..250 bytes, no spaces/control)";
    else if (!parse_u64(line, tok[2], PROTO_TEXT_MAX_EXPTIME, &exptime)) reason = "bad exptime";
    else if (cas && !parse_u64(line, tok[3], UINT64_MAX, &version)) reason = "bad version";
    if (reason != NULL) {
        /* Only a line of the right shape says where its value ends: skip the value and stay in
         * sync. Otherwise numbytes is a guess (a memcached-style "set k 0 0 15" reads 0), and the
         * value could read as "delete k": close. */
        bool shape_ok = have_numbytes && (ntok == num_at + 1 || (ntok == num_at + 2 &&
                                          token_is(line, tok[num_at + 1], "noreply")));
        if (!shape_ok) return fail_reset(parser, err, true, reason);
        parser->skip_left = (size_t)numbytes + 2;
        return fail_reset(parser, err, false, reason);
    }
    parser->noreply = ntok == num_at + 2;
    parser->key_off = tok[1].off;
    parser->key_len = tok[1].len;
    parser->exptime = (uint32_t)exptime;
    parser->version = version;
    parser->value_off = parser->len;
    parser->value_len = (size_t)numbytes;
    parser->value_left = (size_t)numbytes + 2;
    parser->state = ST_VALUE;
    return CONTINUE;
}

static int command_line(proto_text_parser *parser, size_t line_len, proto_text_cmd *cmd,
                        proto_text_error *err)
{
    const uint8_t *line = parser->buf; /* a command line starts at 0 */
    token tok[LINE_TOKENS];
    size_t ntok = tokenize(line, line_len, tok, LINE_TOKENS);
    if (ntok == 0) return fail_reset(parser, err, false, "empty line");
    parser->noreply = false;
    parser->exptime = 0;
    parser->version = 0;
    if (token_is(line, tok[0], "set") || token_is(line, tok[0], "cas")) {
        parser->op = token_is(line, tok[0], "set") ? PROTO_TEXT_SET : PROTO_TEXT_CAS;
        return storage_line(parser, line, tok, ntok, err);
    }
    if (token_is(line, tok[0], "get") || token_is(line, tok[0], "getm") ||
        token_is(line, tok[0], "delete")) {
        parser->op = token_is(line, tok[0], "get")    ? PROTO_TEXT_GET
                     : token_is(line, tok[0], "getm") ? PROTO_TEXT_GETM
                                                      : PROTO_TEXT_DELETE;
        bool may_noreply = parser->op == PROTO_TEXT_DELETE;
        if (ntok == 3 && may_noreply && token_is(line, tok[2], "noreply")) {
            parser->noreply = true;
        } else if (ntok != 2) {
            return fail_reset(parser, err, false, "wrong number of arguments");
        }
        if (!token_key_ok(line, tok[1]))
            return fail_reset(parser, err, false, "invalid key (1..250 bytes, no spaces/control)");
        parser->key_off = tok[1].off;
        parser->key_len = tok[1].len;
        return finish_command(parser, cmd);
    }
    if (token_is(line, tok[0], "mset")) {
        parser->op = PROTO_TEXT_MSET;
        uint64_t n = 0;
        /* Without a readable count the blocks that follow cannot be told from commands (a value
         * could read as "delete k"): close. With one, a bad header still reads the n blocks. */
        if (ntok < 2 || !parse_u64(line, tok[1], UINT32_MAX, &n))
            return fail_reset(parser, err, true, "mset without a readable count");
        if (n == 0) return fail_reset(parser, err, false, "mset of 0 blocks");
        const char *reason = NULL;
        if (ntok > 3) reason = "mset: too many words";
        else if (ntok == 3 && !token_is(line, tok[2], "noreply"))
            reason = "expected noreply after the mset count";
        else if (n > parser->limits.max_keys) reason = "mset with more than max_keys blocks";
        if (reason == NULL && !slots_reserve(parser, (uint32_t)n)) {
            proto_text_reset(parser);
            return fail_internal(err, "out of memory");
        }
        parser->noreply = ntok == 3;
        parser->mset_total = (uint32_t)n;
        parser->mset_done = 0;
        parser->mset_failed = reason != NULL;
        parser->mset_reason = reason;
        parser->line_start = parser->len;
        parser->state = ST_MSET_LINE;
        return CONTINUE;
    }
    if (token_is(line, tok[0], "mget")) {
        parser->op = PROTO_TEXT_MGET;
        /* count the keys first: the line may hold up to max_keys of them */
        uint32_t n = 0;
        for (size_t i = 0; i < line_len;) {
            while (i < line_len && is_blank(line[i])) i++;
            if (i == line_len) break;
            size_t start = i;
            while (i < line_len && !is_blank(line[i])) i++;
            if (n > 0) {
                if (n > parser->limits.max_keys)
                    return fail_reset(parser, err, false, "mget with more than max_keys keys");
                if (!kv_key_valid(line + start, i - start))
                    return fail_reset(parser, err, false,
                                      "invalid key (1..250 bytes, no spaces/control)");
                if (!slots_reserve(parser, n)) {
                    proto_text_reset(parser);
                    return fail_internal(err, "out of memory");
                }
                slot *s = &parser->slots[n - 1];
                memset(s, 0, sizeof *s);
                s->key_off = start;
                s->key_len = i - start;
            }
            n++;
        }
        if (n < 2) return fail_reset(parser, err, false, "mget needs at least one key");
        parser->mset_done = n - 1;
        return finish_command(parser, cmd);
    }
    return fail_reset(parser, err, false, "unknown command");
}

/* An mset block line is complete at buf[line_start..line_start + line_len). */
static int mset_line(proto_text_parser *parser, size_t line_len, proto_text_error *err)
{
    const uint8_t *line = parser->buf + parser->line_start;
    token tok[4];
    size_t ntok = tokenize(line, line_len, tok, 3);
    uint64_t numbytes = 0, exptime = 0;
    if (ntok < 3 || !parse_u64(line, tok[2], UINT64_MAX, &numbytes))
        return fail_reset(parser, err, true, "mset block line without a readable numbytes");
    if (numbytes > parser->limits.max_value)
        return fail_reset(parser, err, true, "numbytes over the value limit");
    const char *reason = NULL;
    if (ntok != 3) reason = "mset block: expected <key> <exptime> <numbytes>";
    else if (!token_key_ok(line, tok[0])) reason = "invalid key (1..250 bytes, no spaces/control)";
    else if (!parse_u64(line, tok[1], PROTO_TEXT_MAX_EXPTIME, &exptime)) reason = "bad exptime";
    if (reason != NULL && !parser->mset_failed) {
        parser->mset_failed = true;
        parser->mset_reason = reason;
    }
    parser->value_left = (size_t)numbytes + 2;
    parser->state = ST_MSET_VALUE;
    if (parser->mset_failed) { /* keep reading in sync, but store nothing more */
        parser->len = parser->line_start;
        return CONTINUE;
    }
    if (parser->len + parser->value_left > parser->max_buffer)
        return fail_reset(parser, err, true, "mset larger than max_line + max_value");
    slot *s = &parser->slots[parser->mset_done];
    s->key_off = parser->line_start + tok[0].off;
    s->key_len = tok[0].len;
    s->value_off = parser->len;
    s->value_len = (size_t)numbytes;
    s->exptime = (uint32_t)exptime;
    return CONTINUE;
}

/* ---- the byte loop --------------------------------------------------------------------------- */

proto_text_status proto_text_parse(proto_text_parser *parser, const uint8_t *data, size_t len,
                                   size_t *consumed, proto_text_cmd *cmd, proto_text_error *err)
{
    if (parser->completed) proto_text_reset(parser);
    size_t used = 0;
    int status = CONTINUE;
    while (used < len && status == CONTINUE) {
        const uint8_t *in = data + used;
        size_t avail = len - used;
        switch (parser->state) {
        case ST_SKIP: {
            size_t n = avail < parser->skip_left ? avail : parser->skip_left;
            used += n;
            parser->skip_left -= n;
            if (parser->skip_left == 0) parser->state = ST_LINE;
            break;
        }
        case ST_LINE:
        case ST_MSET_LINE: {
            const uint8_t *newline = memchr(in, '\n', avail);
            size_t take = newline ? (size_t)(newline - in) + 1 : avail;
            size_t have = parser->len - parser->line_start;
            if (have + take > parser->limits.max_line) {
                used += take;
                status = fail_reset(parser, err, true, "line longer than max_line");
                break;
            }
            if (parser->len + take > parser->max_buffer) { /* an mset block line after values */
                used += take;
                status = fail_reset(parser, err, true, "mset larger than max_line + max_value");
                break;
            }
            if (!buf_append(parser, in, take)) {
                proto_text_reset(parser);
                status = fail_internal(err, "out of memory");
                break;
            }
            used += take;
            if (newline == NULL) break;
            size_t line_len = parser->len - parser->line_start - 1;
            if (line_len > 0 && parser->buf[parser->line_start + line_len - 1] == '\r') line_len--;
            status = parser->state == ST_LINE ? command_line(parser, line_len, cmd, err)
                                              : mset_line(parser, line_len, err);
            break;
        }
        case ST_VALUE:
        case ST_MSET_VALUE: {
            size_t n = avail < parser->value_left ? avail : parser->value_left;
            bool discard = parser->state == ST_MSET_VALUE && parser->mset_failed;
            if (discard) {
                for (size_t i = 0; i < n; i++) { /* remember the would-be \r\n */
                    size_t left = parser->value_left - i;
                    if (left <= 2) parser->term[2 - left] = in[i];
                }
            } else if (!buf_append(parser, in, n)) {
                proto_text_reset(parser);
                status = fail_internal(err, "out of memory");
                break;
            }
            used += n;
            parser->value_left -= n;
            if (parser->value_left > 0) break;
            const uint8_t *term = discard ? parser->term : parser->buf + parser->len - 2;
            if (term[0] != '\r' || term[1] != '\n') {
                status = fail_reset(parser, err, true, "value not followed by \\r\\n");
                break;
            }
            if (!discard) parser->len -= 2; /* the \r\n is not part of the value */
            if (parser->state == ST_VALUE) {
                status = finish_command(parser, cmd);
                break;
            }
            parser->mset_done++;
            if (parser->mset_done < parser->mset_total) {
                parser->line_start = parser->len;
                parser->state = ST_MSET_LINE;
            } else if (parser->mset_failed) {
                status = fail_reset(parser, err, false, parser->mset_reason);
            } else {
                status = finish_command(parser, cmd);
            }
            break;
        }
        }
    }
    *consumed = used;
    return status == CONTINUE ? PROTO_TEXT_NEED_MORE : (proto_text_status)status;
}

/* ---- kv mapping ------------------------------------------------------------------------------ */

int proto_text_to_kv(const proto_text_cmd *cmd, uint64_t now_ms, kv_pair *pairs, size_t pairs_cap,
                     kv_cmd *out)
{
    memset(out, 0, sizeof *out);
    out->now_ms = now_ms;
    switch (cmd->op) {
    case PROTO_TEXT_SET:
    case PROTO_TEXT_CAS:
        out->op = cmd->op == PROTO_TEXT_SET ? KV_OP_SET : KV_OP_CAS;
        out->key = cmd->key;
        out->value = cmd->value;
        out->deadline_ms = kv_deadline_from_seconds(now_ms, cmd->exptime);
        out->expected_version = cmd->version;
        return KV_OK;
    case PROTO_TEXT_DELETE:
        if (pairs_cap < 1) return KV_EINVAL;
        memset(&pairs[0], 0, sizeof pairs[0]);
        pairs[0].key = cmd->key;
        out->op = KV_OP_DELETE;
        out->pairs = pairs;
        out->n_pairs = 1;
        return KV_OK;
    case PROTO_TEXT_MSET:
        if (pairs_cap < cmd->n_items) return KV_EINVAL;
        for (uint32_t i = 0; i < cmd->n_items; i++) {
            pairs[i].key = cmd->items[i].key;
            pairs[i].value = cmd->items[i].value;
            pairs[i].deadline_ms = kv_deadline_from_seconds(now_ms, cmd->items[i].exptime);
        }
        out->op = KV_OP_MSET;
        out->pairs = pairs;
        out->n_pairs = cmd->n_items;
        return KV_OK;
    default:
        return KV_EINVAL;
    }
}

uint64_t proto_text_exptime_left(uint64_t deadline_ms, uint64_t now_ms)
{
    if (deadline_ms == 0 || deadline_ms <= now_ms) return 0;
    uint64_t left = deadline_ms - now_ms;
    return left / 1000 + (left % 1000 != 0);
}

/* ---- replies --------------------------------------------------------------------------------- */

/* snprintf into buf only when the whole reply fits; returns the reply's length either way. */
static size_t format_line(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static size_t format_line(char *buf, size_t cap, const char *fmt, ...)
{
    char line[600];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    assert(n >= 0 && (size_t)n < sizeof line);
    if ((size_t)n <= cap) memcpy(buf, line, (size_t)n);
    return (size_t)n;
}

size_t proto_text_reply_ok(char *buf, size_t cap, uint64_t version)
{
    return format_line(buf, cap, "OK %" PRIu64 "\r\n", version);
}

size_t proto_text_reply_redirect(char *buf, size_t cap, const char *host, uint16_t port)
{
    return format_line(buf, cap, "ERR_REDIRECT %.255s %u\r\n", host, (unsigned)port);
}

size_t proto_text_reply_value_header(char *buf, size_t cap, size_t len)
{
    return format_line(buf, cap, "VALUE %zu\r\n", len);
}

size_t proto_text_reply_valuem_header(char *buf, size_t cap, uint64_t version, uint64_t exptime,
                                      size_t len)
{
    return format_line(buf, cap, "VALUE %" PRIu64 " %" PRIu64 " %zu\r\n", version, exptime, len);
}

static size_t with_value(char *buf, size_t cap, size_t header, const uint8_t *value, size_t len)
{
    size_t total = header + len + 2;
    if (total > cap) return total;
    if (len) memcpy(buf + header, value, len);
    memcpy(buf + header + len, "\r\n", 2);
    return total;
}

size_t proto_text_reply_value(char *buf, size_t cap, const uint8_t *value, size_t len)
{
    char header[64];
    size_t n = proto_text_reply_value_header(header, sizeof header, len);
    if (n + len + 2 <= cap) memcpy(buf, header, n);
    return with_value(buf, cap, n, value, len);
}

size_t proto_text_reply_valuem(char *buf, size_t cap, uint64_t version, uint64_t exptime,
                               const uint8_t *value, size_t len)
{
    char header[96];
    size_t n = proto_text_reply_valuem_header(header, sizeof header, version, exptime, len);
    if (n + len + 2 <= cap) memcpy(buf, header, n);
    return with_value(buf, cap, n, value, len);
}

static size_t fixed(char *buf, size_t cap, const char *text)
{
    size_t n = strlen(text);
    if (n <= cap) memcpy(buf, text, n);
    return n;
}

size_t proto_text_reply_result(char *buf, size_t cap, proto_text_op op, const kv_result *result)
{
    switch (result->status) {
    case KV_ST_OK:
        if (op == PROTO_TEXT_SET || op == PROTO_TEXT_CAS || op == PROTO_TEXT_MSET)
            return proto_text_reply_ok(buf, cap, result->version);
        break;
    case KV_ST_DELETED:
        if (op == PROTO_TEXT_DELETE) return fixed(buf, cap, PROTO_TEXT_DELETED);
        break;
    case KV_ST_NOT_FOUND: return fixed(buf, cap, PROTO_TEXT_ERR_NOT_FOUND);
    case KV_ST_VERSION: return fixed(buf, cap, PROTO_TEXT_ERR_VERSION);
    default: break;
    }
    return fixed(buf, cap, PROTO_TEXT_ERR_INTERNAL);
}
