/*
 * proto_resp.h -- RESP2 (the Redis protocol) for raftkv: incremental request parser, reply encoders,
 * and the mapping of a parsed command to a kv write, a read, or a node-local command, with the error
 * texts Redis itself uses so that redis-cli, redis-benchmark and client libraries work unmodified.
 * Pure: no sockets, no clock (the caller passes now_ms).
 *
 * REQUESTS. Two forms, as Redis accepts them:
 *   multibulk   *<argc>\r\n then argc x $<len>\r\n<bytes>\r\n   (what every client library sends)
 *   inline      a line of words separated by blanks, "double" (with \n \r \t \\ \" \xHH escapes) or
 *               'single' quotes allowed (what a human types in telnet/nc)
 * *0 / *-1 and empty inline lines are skipped without a reply, as Redis does.
 *
 * PARSER. proto_resp_parse() has the contract of proto_text_parse(): it consumes bytes up to the end
 * of one command (any split, pipelining), returning PROTO_RESP_NEED_MORE, PROTO_RESP_COMMAND or
 * PROTO_RESP_ERROR. Every protocol error is Redis's "-ERR Protocol error: ..." reply and closes the
 * connection (err->close is always true), since the stream cannot be resynchronized.
 *
 * BOUNDS. argc <= limits.max_args; each bulk <= limits.max_bulk; an inline line <= limits.max_inline;
 * the bytes of all arguments of one command <= limits.max_request. Past a bound: error and close,
 * nothing buffered beyond it.
 *
 * OWNERSHIP. The argv slices of a returned command point into the parser's buffer, valid until the
 * next proto_resp_parse/proto_resp_free. A proto_resp_request points into the command it was mapped
 * from and into the caller's pairs array. Error texts are copied into the request/err structs.
 *
 * REPLIES. proto_resp_* encoders write into buf[0..cap) and return the encoded length; when it is
 * > cap nothing is written (snprintf's contract).
 */
#ifndef RAFTKV_PROTO_RESP_H
#define RAFTKV_PROTO_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_cmd.h"
#include "kv_store.h"

#define PROTO_RESP_MAX_ARGS_DEFAULT (2 * KV_MAX_MULTI + 1) /* MSET of KV_MAX_MULTI pairs */
#define PROTO_RESP_MAX_INLINE_DEFAULT (64 * 1024)

typedef struct proto_resp_limits {
    uint32_t max_args;  /* 0 = PROTO_RESP_MAX_ARGS_DEFAULT */
    size_t max_bulk;    /* bytes in one argument; 0 = KV_MAX_VALUE_DEFAULT (1 MiB) */
    size_t max_inline;  /* bytes in an inline line; 0 = PROTO_RESP_MAX_INLINE_DEFAULT */
    size_t max_request; /* bytes of all arguments of a command; 0 = max_bulk + 64 KiB */
} proto_resp_limits;

typedef struct proto_resp_cmd {
    uint32_t argc; /* >= 1 */
    const kv_slice *argv;
} proto_resp_cmd;

typedef struct proto_resp_error {
    char reply[128]; /* the exact reply, "-ERR Protocol error: ...\r\n" */
    size_t reply_len;
    bool close; /* always true for protocol errors */
} proto_resp_error;

typedef enum proto_resp_status {
    PROTO_RESP_NEED_MORE = 0,
    PROTO_RESP_COMMAND = 1,
    PROTO_RESP_ERROR = 2,
} proto_resp_status;

typedef struct proto_resp_parser proto_resp_parser;

/* NULL limits = defaults; NULL when out of memory or a limit is out of range. */
proto_resp_parser *proto_resp_new(const proto_resp_limits *limits);
void proto_resp_free(proto_resp_parser *parser); /* NULL ok */

/* See the top of the file; *consumed is always set. Out of memory is an error reply and close. */
proto_resp_status proto_resp_parse(proto_resp_parser *parser, const uint8_t *data, size_t len,
                                   size_t *consumed, proto_resp_cmd *cmd, proto_resp_error *err);

/* ---- command mapping ------------------------------------------------------------------------- */

typedef enum proto_resp_name {
    PROTO_RESP_CMD_PING = 1,
    PROTO_RESP_CMD_GET,
    PROTO_RESP_CMD_SET,
    PROTO_RESP_CMD_DEL,
    PROTO_RESP_CMD_EXISTS,
    PROTO_RESP_CMD_MGET,
    PROTO_RESP_CMD_MSET,
    PROTO_RESP_CMD_INCR,
    PROTO_RESP_CMD_EXPIRE,
    PROTO_RESP_CMD_TTL,
    PROTO_RESP_CMD_INFO,
    PROTO_RESP_CMD_DBSIZE,
    PROTO_RESP_CMD_COMMAND,
    PROTO_RESP_CMD_QUIT,
    PROTO_RESP_CMD_MEMBER, /* RAFTKV.MEMBER ADD/REMOVE: the front-end's, never mapped here */
    PROTO_RESP_CMD_MEMBER_LIST, /* RAFTKV.MEMBER LIST: idem, a read */
    PROTO_RESP_CMD_REGISTER, /* RAFTKV.REGISTER: the front-end's (fast-path session), a write */
    PROTO_RESP_CMD_FSET,     /* RAFTKV.FSET: the front-end's (fast-path write) */
    PROTO_RESP_CMD_UNREGISTER, /* RAFTKV.UNREGISTER: the front-end's (closes a session), a write */
} proto_resp_name;

typedef enum proto_resp_kind {
    PROTO_RESP_KIND_REPLY = 0, /* send request.reply as is (an error, or :0 when nothing to do) */
    PROTO_RESP_KIND_WRITE,     /* propose request.cmd; answer with proto_resp_reply_write() */
    PROTO_RESP_KIND_READ,      /* GET MGET EXISTS TTL on request.keys, after a read barrier */
    PROTO_RESP_KIND_LOCAL,     /* PING INFO DBSIZE COMMAND QUIT: answered by the daemon itself */
} proto_resp_kind;

typedef struct proto_resp_request {
    proto_resp_kind kind;
    proto_resp_name name;
    kv_cmd cmd;           /* WRITE: ready for node_write (now_ms and deadlines filled) */
    const kv_slice *keys; /* READ: the keys (argv + 1); LOCAL: the arguments after the name */
    uint32_t n_keys;
    char reply[320];      /* REPLY: the exact bytes, e.g. "-ERR ...\r\n" */
    size_t reply_len;
} proto_resp_request;

/*
 * Map a parsed command (names are case-insensitive) at time now_ms. max_value is the configured
 * value limit (checked here, at proposal time). pairs must hold KV_MAX_MULTI entries (MSET, DEL).
 * Always fills *out; errors are kind REPLY with Redis's texts:
 *   -ERR unknown command 'FOO', with args beginning with: 'a' 'b'
 *   -ERR wrong number of arguments for 'get' command
 *   -ERR syntax error                      (SET with an unknown or conflicting option)
 *   -ERR value is not an integer or out of range
 *   -ERR invalid expire time in 'set' command
 * and for raftkv's own limits: "-ERR invalid key ..." and "-ERR value too large ...".
 */
void proto_resp_map(const proto_resp_cmd *cmd, uint64_t now_ms, size_t max_value, kv_pair *pairs,
                    proto_resp_request *out);

/* The reply to an applied write: +OK / $-1 (SET NX/XX not done) / :n (DEL, INCR, EXPIRE) / +OK (MSET)
 * or the INCR errors "-ERR value is not an integer or out of range" and
 * "-ERR increment or decrement would overflow". */
size_t proto_resp_reply_write(char *buf, size_t cap, proto_resp_name name, const kv_result *result);

/* TTL's reply value from kv_ttl_ms(): -2, -1, or seconds rounded as Redis rounds them. */
int64_t proto_resp_ttl_seconds(int64_t ttl_ms);

/* ---- reply encoders -------------------------------------------------------------------------- */

size_t proto_resp_simple(char *buf, size_t cap, const char *text); /* +text\r\n */
size_t proto_resp_error_reply(char *buf, size_t cap, const char *text); /* -text\r\n */
size_t proto_resp_integer(char *buf, size_t cap, int64_t value);    /* :n\r\n */
size_t proto_resp_bulk(char *buf, size_t cap, const uint8_t *data, size_t len);
size_t proto_resp_bulk_header(char *buf, size_t cap, size_t len); /* $len\r\n; then data, \r\n */
size_t proto_resp_null_bulk(char *buf, size_t cap);                /* $-1\r\n */
size_t proto_resp_array_header(char *buf, size_t cap, size_t count); /* *count\r\n */

#endif
