/*
 * proto_text.h -- the seed 003 text protocol (CS733 key-value protocol): incremental parser and
 * reply formatting. Pure: no sockets, no clock; the connection code feeds bytes as they arrive.
 *
 * COMMANDS (docs/PROTOCOL.md is the user's reference; lines end with \r\n, a bare \n is accepted):
 *     set <key> <exptime> <numbytes> [noreply]\r\n<value>\r\n
 *     cas <key> <exptime> <version> <numbytes> [noreply]\r\n<value>\r\n
 *     get <key>          getm <key>          delete <key> [noreply]
 *     mset <n> [noreply]\r\n  then n blocks  <key> <exptime> <numbytes>\r\n<value>\r\n   (atomic)
 *     mget <key> <key> ...
 *
 * PARSER. proto_text_parse() takes the next bytes of the stream, consumes what belongs to the
 * current command and stops at its end, so pipelined commands come out one per call, in order, for
 * any split of the stream (one byte at a time included). It returns:
 *   PROTO_TEXT_NEED_MORE  every byte was consumed and the command is not complete yet;
 *   PROTO_TEXT_COMMAND    *cmd is complete; *consumed bytes were used, call again with the rest;
 *   PROTO_TEXT_ERROR      *err holds the exact reply to send and whether the connection must be
 *                         closed afterwards (err->close: the stream cannot be resynchronized, or a
 *                         limit forbids buffering). Without close, parsing goes on with the rest.
 * An error is detected as soon as possible: a `set` whose line is malformed but whose <numbytes> is
 * readable gets ERR_CMD_ERR at once, and its value bytes are then skipped silently. A numbytes over
 * the value limit is answered and the connection closed, without buffering the value. A value whose
 * two bytes after <numbytes> are not \r\n gets ERR_CMD_ERR and close. Errors are replied even with
 * noreply (the client must learn that its stream was wrong).
 *
 * BOUNDS. A line is at most limits.max_line bytes (longer: ERR_CMD_ERR and close). One command never
 * buffers more than max_line + max_value + 2 bytes: for mset that bound covers all its blocks
 * (lines, values and their \r\n) together, as an mset is one log entry. n in mset and the keys of an
 * mget are at most limits.max_keys. The buffer grows on demand and shrinks back after a big command.
 *
 * OWNERSHIP. The parser owns its buffer; every slice of a returned cmd points into it and stays valid
 * until the next proto_text_parse/proto_text_reset/proto_text_free on that parser. err->reply and
 * err->reason are static strings. THREADS: one parser per connection, used by one thread.
 *
 * REPLIES. proto_text_reply_* write a complete reply into buf[0..cap) and return its length; when the
 * length is > cap nothing is written (call again with a bigger buffer), like snprintf's contract.
 */
#ifndef RAFTKV_PROTO_TEXT_H
#define RAFTKV_PROTO_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_cmd.h"
#include "kv_store.h"

#define PROTO_TEXT_MAX_LINE_DEFAULT 8192
#define PROTO_TEXT_MAX_EXPTIME 2147483647 /* seconds (68 years) */

typedef struct proto_text_limits {
    size_t max_line;   /* bytes in a command line incl. \r\n; 0 = PROTO_TEXT_MAX_LINE_DEFAULT */
    size_t max_value;  /* bytes in a value; 0 = KV_MAX_VALUE_DEFAULT (1 MiB); <= KV_MAX_VALUE_HARD */
    uint32_t max_keys; /* mget keys / mset blocks; 0 = KV_MAX_MULTI; <= KV_MAX_MULTI */
} proto_text_limits;

typedef enum proto_text_op {
    PROTO_TEXT_SET = 1,
    PROTO_TEXT_GET,
    PROTO_TEXT_GETM,
    PROTO_TEXT_CAS,
    PROTO_TEXT_DELETE,
    PROTO_TEXT_MSET,
    PROTO_TEXT_MGET,
} proto_text_op;
const char *proto_text_op_name(int op);

/* One key of an mget (key only) or one block of an mset. */
typedef struct proto_text_item {
    kv_slice key;
    kv_slice value;
    uint32_t exptime; /* seconds from now, 0 = never */
} proto_text_item;

typedef struct proto_text_cmd {
    proto_text_op op;
    bool noreply;
    kv_slice key;     /* set get getm cas delete */
    kv_slice value;   /* set cas (binary, may contain \r\n) */
    uint32_t exptime; /* set cas: seconds from now, 0 = never */
    uint64_t version; /* cas */
    uint32_t n_items; /* mset mget */
    const proto_text_item *items;
} proto_text_cmd;

typedef struct proto_text_error {
    const char *reply; /* the exact bytes to send ("ERR_CMD_ERR\r\n") */
    size_t reply_len;
    bool close;         /* close the connection once the reply is sent */
    const char *reason; /* for the log: which rule the input broke */
} proto_text_error;

typedef enum proto_text_status {
    PROTO_TEXT_NEED_MORE = 0,
    PROTO_TEXT_COMMAND = 1,
    PROTO_TEXT_ERROR = 2,
} proto_text_status;

typedef struct proto_text_parser proto_text_parser;

/* NULL limits = defaults. Returns NULL when out of memory or when a limit is above its hard bound. */
proto_text_parser *proto_text_new(const proto_text_limits *limits);
void proto_text_free(proto_text_parser *parser); /* NULL ok */
void proto_text_reset(proto_text_parser *parser); /* drop any partial command */

/* See the top of the file. *consumed is always set (<= len). Out of memory is reported as
 * PROTO_TEXT_ERROR with ERR_INTERNAL and close. */
proto_text_status proto_text_parse(proto_text_parser *parser, const uint8_t *data, size_t len,
                                   size_t *consumed, proto_text_cmd *cmd, proto_text_error *err);

/* Turn a parsed write (set cas delete mset) into the kv command to propose at leader time now_ms:
 * exptime becomes an absolute deadline here, once. pairs must hold n_items entries for mset (1 for
 * delete); the kv_cmd points into cmd and pairs. Returns KV_OK or KV_EINVAL (a read command, or
 * pairs_cap too small). */
int proto_text_to_kv(const proto_text_cmd *cmd, uint64_t now_ms, kv_pair *pairs, size_t pairs_cap,
                     kv_cmd *out);

/* Seconds left until deadline_ms as getm shows it: 0 = no expiry, else rounded up (>= 1). */
uint64_t proto_text_exptime_left(uint64_t deadline_ms, uint64_t now_ms);

/* Fixed replies. */
#define PROTO_TEXT_DELETED "DELETED\r\n"
#define PROTO_TEXT_ERR_VERSION "ERR_VERSION\r\n"
#define PROTO_TEXT_ERR_NOT_FOUND "ERR_NOT_FOUND\r\n"
#define PROTO_TEXT_ERR_CMD_ERR "ERR_CMD_ERR\r\n"
#define PROTO_TEXT_ERR_INTERNAL "ERR_INTERNAL\r\n"
#define PROTO_TEXT_END "END\r\n"

size_t proto_text_reply_ok(char *buf, size_t cap, uint64_t version);                /* OK <v> */
size_t proto_text_reply_redirect(char *buf, size_t cap, const char *host, uint16_t port);
/* "VALUE <numbytes>\r\n<value>\r\n" (get, and each hit of mget). */
size_t proto_text_reply_value(char *buf, size_t cap, const uint8_t *value, size_t len);
/* "VALUE <version> <exptime> <numbytes>\r\n<value>\r\n" (getm). */
size_t proto_text_reply_valuem(char *buf, size_t cap, uint64_t version, uint64_t exptime,
                               const uint8_t *value, size_t len);
/* Only the header line of the two above, for a caller that sends big values without copying them
 * (it then sends the value and "\r\n"). */
size_t proto_text_reply_value_header(char *buf, size_t cap, size_t len);
size_t proto_text_reply_valuem_header(char *buf, size_t cap, uint64_t version, uint64_t exptime,
                                      size_t len);
/* The reply to an applied write of cmd->op: OK <version>, ERR_VERSION, ERR_NOT_FOUND, DELETED, or
 * ERR_INTERNAL for a result that cannot come from this protocol's commands. */
size_t proto_text_reply_result(char *buf, size_t cap, proto_text_op op, const kv_result *result);

#endif
