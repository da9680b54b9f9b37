/*
 * kv_cmd.h -- the binary encoding of key-value commands carried in Raft log entries.
 *
 * A write is proposed by the leader as one opaque RAFT_ENTRY_NORMAL entry whose bytes are a
 * kv_cmd encoded here; every replica decodes the same bytes and applies them (kv_store.h). The
 * encoding is pure (no I/O, no clock) and binary-safe: every string carries its length.
 *
 * FORMAT (all integers little-endian; "str16" = u16 length + bytes, "str32" = u32 length + bytes):
 *
 *     u8  version            KV_CMD_VERSION (1); any other value is rejected
 *     u8  op                 kv_op
 *     u8  flags              KV_SET_NX / KV_SET_XX (SET only), 0 otherwise
 *     u64 now_ms             leader's clock when it proposed: the apply-time "now" (see below)
 *     then, by op:
 *       SET     u64 deadline_ms, str16 key, str32 value
 *       CAS     u64 expected_version, u64 deadline_ms, str16 key, str32 value
 *       DELETE  u32 n, n x str16 key                    (one entry: all deleted atomically)
 *       MSET    u32 n, n x (u64 deadline_ms, str16 key, str32 value)   (atomic: one entry)
 *       INCR    i64 delta, str16 key                    (INCR = delta 1)
 *       EXPIRE  u64 deadline_ms, str16 key              (deadline 0 removes the expiry)
 *       TICK    nothing                                 (advances the apply clock only)
 *       REGISTER nothing   a fast-path client session; its id is this entry's index (kv_store.h)
 *       UNREGISTER u64 session   closes that session (its owner is done with it)
 *
 * TIME. deadline_ms is ABSOLUTE (ms since the Unix epoch), 0 = never expires. The leader computes
 * it once, from its own clock, when it proposes (kv_deadline_from_seconds), so every replica stores
 * the same deadline and a failover never resets it. now_ms is the leader's clock at proposal time;
 * replicas use it (never their own clock) for every expiry decision taken while applying.
 *
 * LIMITS checked by decode (structural, identical on every replica): key 1..KV_MAX_KEY bytes with no
 * space or control byte, value <= KV_MAX_VALUE_HARD, n in 1..KV_MAX_MULTI, no trailing bytes. The
 * configurable value limit (default 1 MiB) is a PROPOSAL-time check done by the protocol layer:
 * replicas with different configs must still apply the same log identically.
 *
 * OWNERSHIP. A decoded kv_cmd points into the buffer given to kv_cmd_decode: it is valid as long as
 * that buffer is, and decode allocates nothing. Encode writes into a caller buffer.
 * THREADS. Every function is reentrant.
 */
#ifndef RAFTKV_KV_CMD_H
#define RAFTKV_KV_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_CMD_VERSION 1
#define KV_MAX_KEY 250                           /* bytes in a key (seed 003 limit) */
#define KV_MAX_VALUE_DEFAULT (1024u * 1024u)     /* default configurable value limit */
#define KV_MAX_VALUE_HARD (64u * 1024u * 1024u)  /* hard structural limit of the encoding */
#define KV_MAX_MULTI 1024                        /* keys in one DELETE / pairs in one MSET */

enum {
    KV_OK = 0,
    KV_EINVAL = -1,   /* malformed command bytes or an argument outside the limits */
    KV_ENOSPC = -2,   /* encode: the caller's buffer is too small (kv_cmd_encoded_size says how much) */
    KV_ENOMEM = -3,   /* allocation failed; the store is unchanged */
    KV_ECORRUPT = -4, /* snapshot bytes are damaged (checksum, magic, lengths) */
    KV_EBUSY = -5,    /* a snapshot iterator is already open on this store */
};
const char *kv_strerror(int rc);

typedef enum kv_op {
    KV_OP_SET = 1,
    KV_OP_CAS = 2,
    KV_OP_DELETE = 3,
    KV_OP_MSET = 4,
    KV_OP_INCR = 5,
    KV_OP_EXPIRE = 6,
    KV_OP_TICK = 7,
    KV_OP_REGISTER = 8,
    KV_OP_UNREGISTER = 9,
} kv_op;
const char *kv_op_name(int op);

#define KV_SET_NX 0x01 /* SET only if the key does not exist */
#define KV_SET_XX 0x02 /* SET only if the key exists */

/* A byte string that carries its length; never NUL-terminated by contract. */
typedef struct kv_slice {
    const uint8_t *base;
    size_t len;
} kv_slice;

/* One key of an MSET (deadline and value used) or of a DELETE (key only). */
typedef struct kv_pair {
    kv_slice key;
    kv_slice value;
    uint64_t deadline_ms;
} kv_pair;

/*
 * A command. For encode the caller fills it (pairs points to n_pairs pairs for MSET/DELETE); after
 * decode, pairs is NULL and multi-key bodies are walked with kv_cmd_next_pair (no allocation).
 */
typedef struct kv_cmd {
    uint8_t op;    /* kv_op */
    uint8_t flags; /* KV_SET_* */
    uint64_t now_ms;
    uint64_t deadline_ms;      /* SET, CAS, EXPIRE */
    uint64_t expected_version; /* CAS */
    int64_t delta;             /* INCR */
    uint64_t session;          /* UNREGISTER */
    kv_slice key;              /* SET, CAS, INCR, EXPIRE */
    kv_slice value;            /* SET, CAS */
    uint32_t n_pairs;          /* DELETE, MSET */
    const kv_pair *pairs;      /* encode only: n_pairs entries */
    kv_slice body;             /* decode only: the encoded pairs, for kv_cmd_next_pair */
} kv_cmd;

/* True when key is 1..KV_MAX_KEY bytes without space (0x20), control bytes (< 0x20) or DEL (0x7f). */
bool kv_key_valid(const uint8_t *key, size_t len);

/* Bytes kv_cmd_encode needs for cmd, or 0 when cmd is invalid (same checks as decode). */
size_t kv_cmd_encoded_size(const kv_cmd *cmd);

/* Encode cmd into buf[0..cap). Returns the length written (> 0), or KV_EINVAL (cmd breaks a limit)
 * or KV_ENOSPC (cap too small; nothing useful written). */
long kv_cmd_encode(const kv_cmd *cmd, uint8_t *buf, size_t cap);

/* Decode len bytes into *out (which then points into data). Returns KV_OK or KV_EINVAL; on
 * KV_EINVAL *out is unspecified. Checks every length against the buffer and every limit above. */
int kv_cmd_decode(const uint8_t *data, size_t len, kv_cmd *out);

/* Iterate the pairs of a DELETE or MSET: start with *cursor = 0; returns true and fills *pair (key
 * only for DELETE) until the n_pairs pairs are done. Works on a cmd that kv_cmd_decode accepted, and
 * on a caller-filled one (pairs != NULL). */
bool kv_cmd_next_pair(const kv_cmd *cmd, size_t *cursor, kv_pair *pair);

/* Absolute deadline for "expire in seconds from now_ms": 0 when seconds == 0 (never), and a deadline
 * already in the past (<= now_ms, never 0) when seconds < 0, saturating instead of overflowing. */
uint64_t kv_deadline_from_seconds(uint64_t now_ms, int64_t seconds);
uint64_t kv_deadline_from_ms(uint64_t now_ms, int64_t ms);

#endif
