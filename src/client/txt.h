/*
 * txt.h -- the client side of the text protocol (docs/PROTOCOL.md): request encoding and reply
 * reading, one command at a time.
 *
 *     get K | getm K | delete K | mget K1 K2 ...
 *     set K <exptime> <numbytes>\r\n<value>\r\n
 *     cas K <exptime> <version> <numbytes>\r\n<value>\r\n
 *     mset <n>\r\n then n blocks "K <exptime> <numbytes>\r\n<value>\r\n"   (atomic)
 *
 * Replies: OK <version> | VALUE <numbytes> (get) | VALUE <version> <exptime> <numbytes> (getm) |
 * DELETED | ERR_NOT_FOUND | ERR_VERSION | ERR_CMD_ERR | ERR_INTERNAL | ERR_REDIRECT <host> <port>;
 * mget answers one item per key, in order (a VALUE block, or ERR_NOT_FOUND for a missing key),
 * then END.
 *
 * ERRORS. txt_read_reply returns TXT_OK with the reply in *out, TXT_ECONN when the connection
 * failed (message in err: the caller decides whether to try another node), or TXT_EPROTO when the
 * server said something this client does not understand (err quotes it).
 * OWNERSHIP. txt_encode returns a malloc'd buffer the caller frees. A txt_reply owns its values:
 * release it with txt_reply_free (safe on a zeroed reply, and twice). THREADS: reentrant.
 */
#ifndef RAFTKV_TXT_H
#define RAFTKV_TXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

#define TXT_MAX_KEY 250                      /* the server's key limit (kv_cmd.h KV_MAX_KEY) */
#define TXT_MAX_VALUE (64u * 1024u * 1024u) /* the hard value limit of the encoding */
#define TXT_MAX_MULTI 1024                   /* keys in mget / pairs in mset */

typedef enum txt_op {
    TXT_GET = 1,
    TXT_GETM,
    TXT_SET,
    TXT_CAS,
    TXT_DELETE,
    TXT_MGET,
    TXT_MSET,
} txt_op;

typedef struct txt_pair {
    const char *key;
    const uint8_t *value;
    size_t value_len;
} txt_pair;

typedef struct txt_req {
    txt_op op;
    const char *key; /* get getm set cas delete */
    const uint8_t *value;
    size_t value_len;
    uint32_t exptime; /* set cas mset: seconds from now, 0 = never */
    uint64_t version; /* cas */
    size_t n;         /* mget: keys; mset: pairs */
    const char *const *keys;
    const txt_pair *pairs;
} txt_req;

enum { TXT_OK = 0, TXT_ECONN = -1, TXT_EPROTO = -2, TXT_ENOMEM = -3 };

typedef enum txt_kind {
    TXT_R_OK = 1, /* version */
    TXT_R_VALUE,  /* value (get, getm) */
    TXT_R_DELETED,
    TXT_R_NOT_FOUND,
    TXT_R_VERSION,
    TXT_R_CMD_ERR,
    TXT_R_INTERNAL,
    TXT_R_REDIRECT, /* host, port */
    TXT_R_MULTI,    /* values[n_values] (mget) */
} txt_kind;

typedef struct txt_value {
    bool found;
    uint8_t *data; /* NUL-terminated for convenience; len excludes it */
    size_t len;
    uint64_t version; /* getm only */
    uint64_t exptime; /* getm only: seconds left, 0 = none */
} txt_value;

typedef struct txt_reply {
    txt_kind kind;
    uint64_t version;
    txt_value value;
    txt_value *values;
    size_t n_values;
    char host[256];
    uint16_t port;
} txt_reply;

/* True for commands that change nothing (safe to retry). */
bool txt_is_read(txt_op op);
const char *txt_op_name(txt_op op);

/* A key the server will accept: 1..250 bytes, no space or control byte. */
bool txt_key_valid(const char *key);

/* Encodes req; TXT_ENOMEM or TXT_EPROTO (an invalid request: err says which key/field). */
int txt_encode(const txt_req *req, uint8_t **out, size_t *len, char *err, size_t errcap);
int txt_read_reply(conn *c, const txt_req *req, txt_reply *out, char *err, size_t errcap);
void txt_reply_free(txt_reply *reply);

#endif /* RAFTKV_TXT_H */
