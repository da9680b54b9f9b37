/*
 * lg_proto.h -- what raftkv-bench sends and how it reads the replies, for three protocols:
 *
 *   LG_PROTO_TEXT  raftkv's text protocol (docs/PROTOCOL.md):  set <k> 0 <n>\r\n<v>\r\n  /  get <k>\r\n
 *   LG_PROTO_RESP  RESP2 (raftkv's RESP port, redis-server):   SET k v  /  GET k
 *   LG_PROTO_ETCD  etcd's v3 JSON/HTTP gateway, HTTP/1.1 keep-alive:
 *                  POST /v3/kv/put {"key":b64,"value":b64}  /  POST /v3/kv/range {"key":b64}
 *                  (a range without "serializable" is linearizable: etcd's default, like ours)
 *
 * ENCODERS append one complete request to an lg_buf and return 0, or -1 when memory ran out.
 * DECODER. lg_proto_decode() looks at the start of the received bytes and reports ONE reply:
 *   LG_REPLY_NEED_MORE  the reply is not complete yet (nothing consumed);
 *   LG_REPLY_OK         success (a write acknowledged, a read that found its key);
 *   LG_REPLY_NOT_FOUND  a read of a missing key (a success for throughput, counted apart);
 *   LG_REPLY_REDIRECT   text protocol ERR_REDIRECT: redirect_host/redirect_port name the leader;
 *   LG_REPLY_ERROR      the server answered an error: kind names it ("ERR_INTERNAL", "-ERR",
 *                       "http-503", ...);
 *   LG_REPLY_BAD        bytes that are no valid reply: the stream cannot be trusted any more.
 * For every status but NEED_MORE, consumed is the reply's length. The decoder keeps no state: the
 * caller keeps the bytes until a whole reply is there (replies here are small).
 *
 * OWNERSHIP. lg_buf owns its data (lg_buf_free). lg_reply is a plain value. Not thread-safe.
 */
#ifndef RAFTKV_LG_PROTO_H
#define RAFTKV_LG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lg_proto_kind { LG_PROTO_TEXT, LG_PROTO_RESP, LG_PROTO_ETCD } lg_proto_kind;

typedef enum lg_reply_status {
    LG_REPLY_NEED_MORE = 0,
    LG_REPLY_OK,
    LG_REPLY_NOT_FOUND,
    LG_REPLY_REDIRECT,
    LG_REPLY_ERROR,
    LG_REPLY_BAD,
} lg_reply_status;

typedef struct lg_reply {
    lg_reply_status status;
    size_t consumed;
    size_t value_len;        /* length of the value a read returned */
    char kind[32];           /* ERROR/BAD: short name of the error */
    char redirect_host[64];  /* REDIRECT */
    uint16_t redirect_port;
} lg_reply;

typedef struct lg_buf {
    char *data;
    size_t len;
    size_t cap;
} lg_buf;

int lg_buf_reserve(lg_buf *b, size_t extra);
int lg_buf_append(lg_buf *b, const void *data, size_t len);
/* Drops the first n bytes (n <= len). */
void lg_buf_consume(lg_buf *b, size_t n);
void lg_buf_free(lg_buf *b);

/* Parses "text", "resp", "etcd". Returns 0, or -1 for an unknown name. */
int lg_proto_from_name(const char *name, lg_proto_kind *out);
const char *lg_proto_name(lg_proto_kind kind);

/* authority is the HTTP Host header ("127.0.0.1:2379"); only etcd uses it. */
int lg_proto_encode_set(lg_buf *out, lg_proto_kind kind, const char *authority, const char *key,
                        size_t key_len, const char *value, size_t value_len);
int lg_proto_encode_get(lg_buf *out, lg_proto_kind kind, const char *authority, const char *key,
                        size_t key_len);

/* is_get tells which request this reply answers (etcd: a range reply without "kvs" = not found). */
void lg_proto_decode(lg_proto_kind kind, bool is_get, const char *data, size_t len, lg_reply *out);

/* Standard base64 with padding; out must hold lg_base64_len(n) bytes. Returns the length written. */
size_t lg_base64_len(size_t n);
size_t lg_base64_encode(const void *in, size_t n, char *out);

#endif /* RAFTKV_LG_PROTO_H */
