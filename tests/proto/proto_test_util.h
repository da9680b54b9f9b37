/*
 * proto_test_util.h -- turns what a parser returns into one line of text per event, so that a test
 * can compare the events of a whole stream with those of the same stream split anywhere.
 */
#ifndef RAFTKV_PROTO_TEST_UTIL_H
#define RAFTKV_PROTO_TEST_UTIL_H

#include <stdio.h>
#include <string.h>

#include "proto_resp.h"
#include "proto_text.h"

#define EVENTS_MAX 64
#define EVENT_TEXT 4096

typedef struct events {
    int n;
    char text[EVENTS_MAX][EVENT_TEXT];
    bool closed; /* the parser asked to close: the rest of the stream was not fed */
} events;

/* Printable form of a byte string: \xNN for anything that is not plain ASCII. */
static inline size_t put_bytes(char *out, size_t at, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len && at + 8 < EVENT_TEXT; i++) {
        if (data[i] >= 0x21 && data[i] < 0x7f && data[i] != '\\')
            out[at++] = (char)data[i];
        else
            at += (size_t)snprintf(out + at, EVENT_TEXT - at, "\\x%02x", data[i]);
    }
    out[at] = 0;
    return at;
}

static inline void describe_text_cmd(const proto_text_cmd *cmd, char *out)
{
    size_t at = (size_t)snprintf(out, EVENT_TEXT, "%s nr=%d e=%u v=%llu ", proto_text_op_name(cmd->op),
                                 cmd->noreply, cmd->exptime, (unsigned long long)cmd->version);
    at = put_bytes(out, at, cmd->key.base, cmd->key.len);
    at += (size_t)snprintf(out + at, EVENT_TEXT - at, " val=");
    at = put_bytes(out, at, cmd->value.base, cmd->value.len);
    for (uint32_t i = 0; i < cmd->n_items; i++) {
        at += (size_t)snprintf(out + at, EVENT_TEXT - at, " [%u ", cmd->items[i].exptime);
        at = put_bytes(out, at, cmd->items[i].key.base, cmd->items[i].key.len);
        at += (size_t)snprintf(out + at, EVENT_TEXT - at, "=");
        at = put_bytes(out, at, cmd->items[i].value.base, cmd->items[i].value.len);
        at += (size_t)snprintf(out + at, EVENT_TEXT - at, "]");
    }
}

/* Feed stream to a text parser in chunks of `chunk` bytes (0 = all at once), or split once at
 * `split` when chunk is SIZE_MAX. */
static inline void run_text(proto_text_parser *parser, const uint8_t *stream, size_t len,
                            size_t chunk, size_t split, events *ev)
{
    memset(ev, 0, sizeof *ev);
    size_t off = 0;
    while (off < len && !ev->closed) {
        size_t piece = chunk == 0 ? len - off : chunk == SIZE_MAX ? (off < split ? split - off : len - off) : chunk;
        if (piece > len - off) piece = len - off;
        const uint8_t *data = stream + off;
        size_t left = piece;
        while (left > 0 && !ev->closed) {
            size_t used = 0;
            proto_text_cmd cmd;
            proto_text_error err;
            proto_text_status st = proto_text_parse(parser, data, left, &used, &cmd, &err);
            if (used > left) {
                fprintf(stderr, "consumed more than given\n");
                abort();
            }
            data += used;
            left -= used;
            if (st == PROTO_TEXT_NEED_MORE) {
                if (left != 0) abort(); /* NEED_MORE consumes everything */
                break;
            }
            if (ev->n == EVENTS_MAX) abort();
            if (st == PROTO_TEXT_COMMAND) {
                describe_text_cmd(&cmd, ev->text[ev->n++]);
            } else {
                snprintf(ev->text[ev->n++], EVENT_TEXT, "ERROR %.*s close=%d", (int)err.reply_len - 2,
                         err.reply, err.close);
                if (err.close) ev->closed = true;
            }
        }
        off += piece;
    }
}

static inline void describe_resp_cmd(const proto_resp_cmd *cmd, char *out)
{
    size_t at = (size_t)snprintf(out, EVENT_TEXT, "argc=%u", cmd->argc);
    for (uint32_t i = 0; i < cmd->argc; i++) {
        at += (size_t)snprintf(out + at, EVENT_TEXT - at, " ");
        at = put_bytes(out, at, cmd->argv[i].base, cmd->argv[i].len);
    }
}

static inline void run_resp(proto_resp_parser *parser, const uint8_t *stream, size_t len,
                            size_t chunk, size_t split, events *ev)
{
    memset(ev, 0, sizeof *ev);
    size_t off = 0;
    while (off < len && !ev->closed) {
        size_t piece = chunk == 0 ? len - off : chunk == SIZE_MAX ? (off < split ? split - off : len - off) : chunk;
        if (piece > len - off) piece = len - off;
        const uint8_t *data = stream + off;
        size_t left = piece;
        while (left > 0 && !ev->closed) {
            size_t used = 0;
            proto_resp_cmd cmd;
            proto_resp_error err;
            proto_resp_status st = proto_resp_parse(parser, data, left, &used, &cmd, &err);
            if (used > left) abort();
            data += used;
            left -= used;
            if (st == PROTO_RESP_NEED_MORE) {
                if (left != 0) abort();
                break;
            }
            if (ev->n == EVENTS_MAX) abort();
            if (st == PROTO_RESP_COMMAND) {
                describe_resp_cmd(&cmd, ev->text[ev->n++]);
            } else {
                snprintf(ev->text[ev->n++], EVENT_TEXT, "ERROR %.*s", (int)err.reply_len - 2, err.reply);
                ev->closed = true;
            }
        }
        off += piece;
    }
}

#endif
