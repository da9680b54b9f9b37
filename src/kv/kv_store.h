/*
 * kv_store.h -- the replicated key-value state machine of raftkv.
 *
 * A pure, in-memory map key -> {value, version, deadline}: no I/O, no clock, no threads. The node
 * driver applies committed log entries with kv_apply() in log order; readers pass their own now_ms.
 *
 * DETERMINISM (the one property that matters: every replica applying the same entries holds the
 * same logical state and returns the same results):
 *   - the version of a write is the log index of its entry (unique and increasing);
 *   - expiry decisions taken while applying use the APPLY CLOCK = max over applied entries of the
 *     leader's proposal time (kv_cmd.now_ms), never the replica's clock. The max makes it monotonic
 *     even when a new leader's clock is behind the old one's, so a key, once expired for the log,
 *     stays expired on every replica;
 *   - a key is physically reclaimed (lazily on access, or by kv_expire_sweep) only when its deadline
 *     is <= the apply clock, i.e. once it is expired for every future entry as well. Readers hide a
 *     key as soon as deadline <= their now_ms, but never free it on their own clock.
 *   A caller that wants idle expired keys reclaimed proposes a KV_OP_TICK entry now and then.
 *
 * HASH TABLE. Chained, power-of-two buckets, resized incrementally: a resize allocates the new bucket
 * array and every later operation moves a couple of buckets (as Redis's dict does), so no operation
 * ever rehashes a big table at once. The hash is seeded (kv_config.hash_seed).
 *
 * SNAPSHOTS WITHOUT STOPPING. Items are immutable once inserted (an update inserts a new item and
 * retires the old one) and all items sit on a list in creation order. kv_snapshot_begin() records
 * the list position at which it starts; kv_snapshot_next() serializes list items created before
 * the snapshot, in chunks, while kv_apply() keeps running between chunks. When a write retires an
 * item the iterator has not reached yet, the store hands that pre-image to the snapshot instead of
 * freeing it (copy-on-write of the pre-image, at no copy cost). Snapshot format, in kv_store.c.
 *
 * OWNERSHIP. kv_store_new() allocates and kv_store_free() frees the store and every item. Keys,
 * values and command bytes given to the store are copied. A kv_view returned by a read points into
 * the store and stays valid until the next kv_apply, kv_expire_sweep, kv_restore_finish or
 * kv_store_free on that store (reads do not invalidate other views).
 * THREADS. A store is not thread-safe: use it from one thread (reads included: they may reclaim).
 * ERRORS. kv_* functions return KV_OK or a negative KV_E* code (kv_cmd.h, kv_strerror()).
 */
#ifndef RAFTKV_KV_STORE_H
#define RAFTKV_KV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_cmd.h"

typedef struct kv_store kv_store;

typedef struct kv_config {
    size_t initial_buckets; /* rounded up to a power of two; 0 = 16 */
    uint64_t hash_seed;     /* pick at random per process to blunt hash flooding; 0 is allowed */
} kv_config;

/* NULL config = defaults. Returns NULL when out of memory. */
kv_store *kv_store_new(const kv_config *config);
void kv_store_free(kv_store *store); /* also ends an open snapshot iterator; NULL is a no-op */

/* Outcome of one applied command: everything the client reply needs. */
typedef enum kv_status {
    KV_ST_OK = 0,         /* write done: version (SET CAS MSET INCR EXPIRE), integer (INCR) */
    KV_ST_NOT_FOUND,      /* CAS/EXPIRE on a missing key, DELETE that removed nothing */
    KV_ST_DELETED,        /* DELETE removed count >= 1 keys */
    KV_ST_VERSION,        /* CAS version mismatch; version = the current version */
    KV_ST_NOT_SET,        /* SET with NX/XX whose condition failed (Redis: nil reply) */
    KV_ST_NOT_INTEGER,    /* INCR on a value that is not a base-10 int64 */
    KV_ST_OVERFLOW,       /* INCR would overflow int64 */
    KV_ST_BAD_CMD,        /* the entry's bytes do not decode: ignored identically everywhere */
    KV_ST_SKIPPED,        /* a fast write of an unknown session, or one already applied */
} kv_status;
const char *kv_status_name(kv_status status);

typedef struct kv_result {
    uint8_t op;       /* kv_op of the entry (0 if it did not decode) */
    kv_status status;
    uint64_t version; /* the new version (= entry index), or the current one for KV_ST_VERSION */
    int64_t integer;  /* INCR: the new value */
    uint32_t count;   /* DELETE: keys removed; EXPIRE: 1 if applied; MSET: pairs written */
} kv_result;

/*
 * Apply the committed entry `index` whose bytes are data[0..len). Returns KV_OK and fills *result
 * (a malformed entry is KV_OK with KV_ST_BAD_CMD: bad input is not a replica failure), KV_EINVAL
 * when index <= kv_applied_index() (the caller broke the log order), or KV_ENOMEM: the entry is not
 * applied, and the store is as before except that its apply clock may have moved to the entry's
 * time, reclaiming keys that time expired, as applying the entry does anyway (the caller must not
 * count the entry as applied: retry this same entry or stop the node).
 */
int kv_apply(kv_store *store, uint64_t index, const uint8_t *data, size_t len, kv_result *result);

/* Record that entries up to index were applied without carrying a command (no-ops, config). */
void kv_skip_to(kv_store *store, uint64_t index);

/*
 * SESSIONS (the fast path, docs/NILEXT.md). A KV_OP_REGISTER entry applied at index i opens
 * session i (result.version = i). A fast write carries (session, seq); kv_apply_fast applies it
 * only if the session is open and seq is above the session's last applied seq, else it is
 * KV_ST_SKIPPED (a new leader's recovery may append a write twice; a write of a session the store
 * does not know cannot be told apart from a duplicate). A KV_OP_UNREGISTER entry closes a session
 * (KV_ST_OK, or KV_ST_NOT_FOUND when it is not open); its later writes are skipped, and an id at
 * or below the applied index that is not open never will be. Sessions are in snapshots; they do
 * not expire yet (16 bytes each).
 */
int kv_apply_fast(kv_store *store, uint64_t index, uint64_t session, uint64_t seq,
                  const uint8_t *data, size_t len, kv_result *result);
/* The last seq applied for session: true if the session is open. */
bool kv_session_seq(const kv_store *store, uint64_t session, uint64_t *seq);
size_t kv_session_count(const kv_store *store);

/* A value as a reader sees it; pointers valid as described at the top. */
typedef struct kv_view {
    const uint8_t *value;
    size_t value_len;
    uint64_t version;
    uint64_t deadline_ms; /* absolute; 0 = never */
} kv_view;

/* Look up key as of now_ms: true and *out filled when present and not expired. out may be NULL
 * (EXISTS); getm uses out->version and out->deadline_ms; MGET is one call per key. */
bool kv_get(kv_store *store, const uint8_t *key, size_t key_len, uint64_t now_ms, kv_view *out);

/* Redis TTL semantics in ms: -2 missing or expired, -1 no expiry, else ms left (>= 1). */
int64_t kv_ttl_ms(kv_store *store, const uint8_t *key, size_t key_len, uint64_t now_ms);

/* Reclaim expired items (deadline <= apply clock), visiting at most `budget` buckets from where the
 * last sweep stopped. Returns the number of items reclaimed. */
size_t kv_expire_sweep(kv_store *store, size_t budget);

typedef struct kv_stats {
    size_t keys;            /* items held, including expired ones not reclaimed yet (DBSIZE) */
    size_t bytes;           /* bytes allocated for items (keys + values + per-item overhead) */
    size_t buckets;         /* buckets of the main table (+ the target table during a resize) */
    bool resizing;          /* an incremental resize is in progress */
    uint64_t applied_index; /* last entry applied (or skipped to) */
    uint64_t apply_clock;   /* max proposal time seen in applied entries */
    size_t snapshot_preimages; /* items kept alive only for the open snapshot */
} kv_stats;
void kv_get_stats(const kv_store *store, kv_stats *stats);
uint64_t kv_applied_index(const kv_store *store);

/* ---- snapshots ------------------------------------------------------------------------------- */

typedef struct kv_snapshot kv_snapshot;

/* Start a point-in-time snapshot of the state as of kv_applied_index(). At most one per store:
 * KV_EBUSY if one is open; KV_ENOMEM. The store must outlive the iterator (or free it). */
int kv_snapshot_begin(kv_store *store, kv_snapshot **out);

/* Write the next at most cap (>= 1) bytes of the snapshot into buf. Returns the number of bytes
 * written; 0 means the snapshot is complete. kv_apply/reads/sweeps may run between calls. */
size_t kv_snapshot_next(kv_snapshot *snap, uint8_t *buf, size_t cap);

uint64_t kv_snapshot_index(const kv_snapshot *snap); /* applied index the snapshot captures */
void kv_snapshot_end(kv_snapshot *snap);             /* finish or abandon; frees it; NULL ok */

/* Streaming restore: feed the snapshot bytes in chunks of any size, then finish. */
typedef struct kv_restore kv_restore;
kv_restore *kv_restore_begin(const kv_config *config); /* NULL when out of memory */
/* KV_OK, KV_ECORRUPT (bad magic/version/lengths/key, bytes after the end), KV_ENOMEM. After an
 * error every later feed returns the same error. */
int kv_restore_feed(kv_restore *restore, const uint8_t *data, size_t len);
/* Check completeness and checksum, then replace the whole content of `into` (items, applied index,
 * apply clock) with the restored state; the restored items move to `into`. KV_ECORRUPT (truncated,
 * checksum or count mismatch) or KV_EBUSY (a snapshot is open on into) leave `into` unchanged.
 * Call kv_restore_free afterwards in every case. */
int kv_restore_finish(kv_restore *restore, kv_store *into);
void kv_restore_free(kv_restore *restore); /* NULL ok */
const char *kv_restore_error(const kv_restore *restore); /* what was wrong, with the byte offset */

#endif
