/*
 * kv_store.c -- hash table, apply, reads, expiry, snapshot and restore (contract in kv_store.h).
 *
 * STATE. Every live item is in exactly one hash bucket (of tables[0], or of tables[1] while a resize
 * moves buckets from 0 to 1) and on the creation-order list (head..tail, seq strictly increasing).
 * Items are never modified after insertion; an update links a new item in place of the old one.
 * count/bytes describe exactly the linked items.
 *
 * SNAPSHOT FORMAT (little-endian), written by kv_snapshot_next and read by kv_restore_feed:
 *
 *     header   u32 magic "RKVS" (0x53564b52), u32 format version (2 when there are sessions,
 *              else 1, which older versions read),
 *              u64 applied index, u64 apply clock (ms), u64 item count,
 *              u64 session count (version 2 only)
 *     count x  u16 key length, u32 value length, u64 version, u64 deadline ms, key, value
 *     sessions x  u64 session id, u64 last seq applied (version 2 only; ids increasing)
 *     trailer  u32 CRC-32 (IEEE 802.3, reflected 0xEDB88320) of every byte before it
 *
 * Items appear in no particular order; a key appears once. Expired items that were not reclaimed
 * yet are included with their deadline (they stay invisible after the restore).
 *
 * SNAPSHOT INVARIANT. With a snapshot open, end_seq is the seq the next new item gets at begin time,
 * so "existed at begin" is seq < end_seq. cursor is the next list item to serialize (NULL once the
 * list walk is over). An item that existed at begin and is not serialized yet is either on the list
 * at or after cursor, or on the preimages stack; the one being serialized (current) is pinned.
 */
#include "kv_store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_MIN_BUCKETS 16
#define KV_REHASH_STEP 2    /* buckets moved per operation during a resize */
#define KV_REHASH_EMPTY 16  /* empty buckets skipped per moved bucket, so a step stays bounded */

#define SNAP_MAGIC 0x53564b52u
#define SNAP_VERSION 2u
#define SNAP_HEADER_BYTES 40 /* 32 in version 1 */
#define SNAP_V1_HEADER_BYTES 32
#define SNAP_SESSION_BYTES 16
#define SNAP_RECORD_BYTES 22
#define SNAP_TRAILER_BYTES 4

typedef struct kv_session {
    uint64_t id, seq;
} kv_session;

typedef struct kv_item {
    struct kv_item *chain;      /* next in the hash bucket */
    struct kv_item *prev, *next; /* creation-order list; next also links the preimages stack */
    uint64_t seq;
    uint64_t hash;
    uint64_t version;
    uint64_t deadline_ms;
    uint32_t value_len;
    uint16_t key_len;
    uint8_t data[]; /* key_len key bytes, then value_len value bytes */
} kv_item;

typedef struct kv_table {
    kv_item **buckets;
    size_t size; /* power of two, or 0 for an absent table */
} kv_table;

struct kv_store {
    kv_table tables[2];
    bool rehashing;
    size_t rehash_next; /* next bucket of tables[0] to move */
    kv_item *head, *tail;
    uint64_t next_seq;
    size_t count;
    size_t bytes;
    uint64_t applied_index;
    uint64_t apply_clock;
    uint64_t seed;
    size_t sweep_pos;
    kv_snapshot *snap;
    kv_session *sessions; /* increasing ids */
    size_t n_sessions, cap_sessions;
};

struct kv_snapshot {
    kv_store *store;
    kv_session *sessions; /* copied at begin */
    size_t n_sessions, written_sessions;
    uint64_t end_seq;
    uint64_t applied_index;
    uint64_t apply_clock;
    uint64_t count; /* items at begin = records to write */
    uint64_t written_records;
    kv_item *cursor;
    kv_item *preimages;
    size_t n_preimages;
    kv_item *current;     /* being serialized */
    bool current_owned;   /* current is not in the store any more: free it when done */
    size_t current_off;   /* bytes of current's record written */
    uint8_t record_header[SNAP_RECORD_BYTES];
    enum { SNAP_HEADER, SNAP_ITEMS, SNAP_SESSIONS, SNAP_TRAILER, SNAP_DONE } phase;
    uint8_t fixed[SNAP_HEADER_BYTES]; /* the header, then the trailer */
    size_t fixed_len, fixed_off;
    uint32_t crc;
    uint32_t crc_table[256];
};

/* ---- small helpers --------------------------------------------------------------------------- */

static void crc32_init_table(uint32_t table[256])
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}

/* crc is the running value with the final xor already applied (start from 0). */
static uint32_t crc32_update(const uint32_t table[256], uint32_t crc, const uint8_t *data, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++) crc = table[(crc ^ data[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

static void le_put(uint8_t *at, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) at[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_get(const uint8_t *at, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)at[i] << (8 * i);
    return v;
}

static uint64_t rotl64(uint64_t x, int bits) { return (x << bits) | (x >> (64 - bits)); }

#define SIP_ROUND(v0, v1, v2, v3)                                                                  \
    do {                                                                                           \
        v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);                              \
        v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                                                   \
        v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                                                   \
        v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);                              \
    } while (0)

/* SipHash-2-4 keyed by the store's seed: keys come from clients, and a keyed PRF keeps an attacker
 * who does not know the seed from filling one bucket chain (hash flooding). */
static uint64_t hash_key(uint64_t seed, const uint8_t *key, size_t len)
{
    uint64_t k0 = seed, k1 = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = le_get(key + i, 8);
        v3 ^= m;
        SIP_ROUND(v0, v1, v2, v3);
        SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t i = full; i < len; i++) last |= (uint64_t)key[i] << (8 * (i - full));
    v3 ^= last;
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++) SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

static size_t round_pow2(size_t n)
{
    size_t size = KV_MIN_BUCKETS;
    while (size < n && size < ((size_t)1 << (sizeof(size_t) * 8 - 2))) size <<= 1;
    return size;
}

static size_t item_bytes(const kv_item *item)
{
    return sizeof(kv_item) + item->key_len + item->value_len;
}

static const uint8_t *item_key(const kv_item *item) { return item->data; }
static const uint8_t *item_value(const kv_item *item) { return item->data + item->key_len; }

static kv_item *item_new(uint64_t hash, const uint8_t *key, size_t key_len, const uint8_t *value,
                         size_t value_len, uint64_t version, uint64_t deadline_ms)
{
    assert(key_len <= KV_MAX_KEY && value_len <= KV_MAX_VALUE_HARD);
    kv_item *item = malloc(sizeof(kv_item) + key_len + value_len);
    if (item == NULL) return NULL;
    memset(item, 0, sizeof *item);
    item->hash = hash;
    item->version = version;
    item->deadline_ms = deadline_ms;
    item->key_len = (uint16_t)key_len;
    item->value_len = (uint32_t)value_len;
    memcpy(item->data, key, key_len);
    if (value_len) memcpy(item->data + key_len, value, value_len);
    return item;
}

/* Expired for the log: no entry applied from now on can see it, so it may be freed. */
static bool expired_for_log(const kv_store *store, const kv_item *item)
{
    return item->deadline_ms != 0 && item->deadline_ms <= store->apply_clock;
}

static bool visible_at(const kv_item *item, uint64_t now_ms)
{
    return item->deadline_ms == 0 || item->deadline_ms > now_ms;
}

/* ---- hash table ------------------------------------------------------------------------------ */

static void rehash_step(kv_store *store, int steps)
{
    if (!store->rehashing) return;
    kv_table *from = &store->tables[0], *to = &store->tables[1];
    int empty_budget = steps * KV_REHASH_EMPTY;
    while (steps > 0 && store->rehash_next < from->size) {
        kv_item *item = from->buckets[store->rehash_next];
        if (item == NULL) {
            store->rehash_next++;
            if (--empty_budget == 0) return;
            continue;
        }
        while (item != NULL) {
            kv_item *chain = item->chain;
            size_t b = item->hash & (to->size - 1);
            item->chain = to->buckets[b];
            to->buckets[b] = item;
            item = chain;
        }
        from->buckets[store->rehash_next++] = NULL;
        steps--;
    }
    if (store->rehash_next >= from->size) {
        free(from->buckets);
        *from = *to;
        to->buckets = NULL;
        to->size = 0;
        store->rehashing = false;
        store->rehash_next = 0;
        store->sweep_pos = 0;
    }
}

/* Start an incremental resize when the load leaves [1/8, 1]. A failed allocation only means we keep
 * a fuller table for now: correctness never depends on the resize. */
static void maybe_resize(kv_store *store)
{
    if (store->rehashing) return;
    size_t size = store->tables[0].size, target = 0;
    if (store->count >= size) {
        target = size * 2;
    } else if (size > KV_MIN_BUCKETS && store->count * 8 < size) {
        target = round_pow2(store->count * 2);
        if (target >= size) return;
    } else {
        return;
    }
    kv_item **buckets = calloc(target, sizeof *buckets);
    if (buckets == NULL) return;
    store->tables[1].buckets = buckets;
    store->tables[1].size = target;
    store->rehashing = true;
    store->rehash_next = 0;
}

/* Returns the item for key and sets *slot to the link that points to it, or NULL. */
static kv_item *table_find(kv_store *store, uint64_t hash, const uint8_t *key, size_t key_len,
                           kv_item ***slot)
{
    for (int t = 0; t < (store->rehashing ? 2 : 1); t++) {
        kv_table *table = &store->tables[t];
        kv_item **link = &table->buckets[hash & (table->size - 1)];
        for (; *link != NULL; link = &(*link)->chain) {
            kv_item *item = *link;
            if (item->hash == hash && item->key_len == key_len &&
                memcmp(item_key(item), key, key_len) == 0) {
                *slot = link;
                return item;
            }
        }
    }
    return NULL;
}

static void list_append(kv_store *store, kv_item *item)
{
    item->seq = store->next_seq++;
    item->next = NULL;
    item->prev = store->tail;
    if (store->tail) store->tail->next = item;
    else store->head = item;
    store->tail = item;
}

static void list_unlink(kv_store *store, kv_item *item)
{
    if (item->prev) item->prev->next = item->next;
    else store->head = item->next;
    if (item->next) item->next->prev = item->prev;
    else store->tail = item->prev;
    item->prev = item->next = NULL;
}

/* The item left the store: free it, unless the open snapshot still has to serialize it. */
static void item_retire(kv_store *store, kv_item *item)
{
    kv_snapshot *snap = store->snap;
    bool pinned = false, preimage = false;
    if (snap != NULL) {
        if (item == snap->current) {
            pinned = true;
        } else if (item->seq < snap->end_seq && snap->cursor != NULL &&
                   item->seq >= snap->cursor->seq) {
            preimage = true;
        }
        if (snap->cursor == item) snap->cursor = item->next;
    }
    list_unlink(store, item);
    if (pinned) {
        snap->current_owned = true;
    } else if (preimage) {
        item->next = snap->preimages;
        snap->preimages = item;
        snap->n_preimages++;
    } else {
        free(item);
    }
}

static void store_add(kv_store *store, kv_item *item)
{
    /* A step per insertion, not only per entry: an MSET adds up to 1024 keys in one entry, and a
     * resize that advanced once per entry would fall ever further behind the count. */
    rehash_step(store, KV_REHASH_STEP);
    kv_table *table = &store->tables[store->rehashing ? 1 : 0];
    size_t b = item->hash & (table->size - 1);
    item->chain = table->buckets[b];
    table->buckets[b] = item;
    list_append(store, item);
    store->count++;
    store->bytes += item_bytes(item);
    maybe_resize(store);
}

static void store_remove(kv_store *store, kv_item **slot, kv_item *item)
{
    assert(*slot == item);
    *slot = item->chain;
    item->chain = NULL;
    store->count--;
    store->bytes -= item_bytes(item);
    item_retire(store, item);
    maybe_resize(store);
}

static void store_replace(kv_store *store, kv_item **slot, kv_item *old, kv_item *item)
{
    assert(*slot == old);
    item->chain = old->chain;
    *slot = item;
    old->chain = NULL;
    store->bytes += item_bytes(item);
    store->bytes -= item_bytes(old);
    list_append(store, item);
    item_retire(store, old);
}

/* Find a key that is live at `clock`; an item expired for the log is reclaimed on the way. */
static kv_item *find_live(kv_store *store, uint64_t hash, const uint8_t *key, size_t key_len,
                          kv_item ***slot)
{
    kv_item *item = table_find(store, hash, key, key_len, slot);
    if (item != NULL && expired_for_log(store, item)) {
        store_remove(store, *slot, item);
        return NULL;
    }
    return item;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

kv_store *kv_store_new(const kv_config *config)
{
    kv_store *store = calloc(1, sizeof *store);
    if (store == NULL) return NULL;
    size_t size = round_pow2(config ? config->initial_buckets : 0);
    store->tables[0].buckets = calloc(size, sizeof(kv_item *));
    if (store->tables[0].buckets == NULL) {
        free(store);
        return NULL;
    }
    store->tables[0].size = size;
    store->seed = config ? config->hash_seed : 0;
    store->next_seq = 1;
    return store;
}

static void free_items_and_tables(kv_store *store)
{
    for (kv_item *item = store->head; item != NULL;) {
        kv_item *next = item->next;
        free(item);
        item = next;
    }
    free(store->tables[0].buckets);
    free(store->tables[1].buckets);
}

void kv_store_free(kv_store *store)
{
    if (store == NULL) return;
    kv_snapshot_end(store->snap);
    free_items_and_tables(store);
    free(store->sessions);
    free(store);
}

const char *kv_status_name(kv_status status)
{
    switch (status) {
    case KV_ST_OK: return "OK";
    case KV_ST_NOT_FOUND: return "NOT_FOUND";
    case KV_ST_DELETED: return "DELETED";
    case KV_ST_VERSION: return "VERSION";
    case KV_ST_NOT_SET: return "NOT_SET";
    case KV_ST_NOT_INTEGER: return "NOT_INTEGER";
    case KV_ST_OVERFLOW: return "OVERFLOW";
    case KV_ST_BAD_CMD: return "BAD_CMD";
    case KV_ST_SKIPPED: return "SKIPPED";
    }
    return "UNKNOWN";
}

/* ---- apply ----------------------------------------------------------------------------------- */

/* Strict base-10 int64 as Redis reads it: optional '-', no '+', no spaces, no leading zeros. */
static bool parse_int64(const uint8_t *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 20) return false;
    size_t i = 0;
    bool negative = false;
    if (s[0] == '-') {
        negative = true;
        i = 1;
        if (len == 1) return false;
    }
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

/* Insert or overwrite key with a new item; a deadline already passed just removes the key. */
static int write_item(kv_store *store, uint64_t hash, kv_slice key, kv_slice value,
                      uint64_t version, uint64_t deadline_ms, kv_item *existing, kv_item **slot,
                      kv_item *prealloc)
{
    if (deadline_ms != 0 && deadline_ms <= store->apply_clock) {
        free(prealloc);
        if (existing) store_remove(store, slot, existing);
        return KV_OK;
    }
    kv_item *item = prealloc;
    if (item == NULL) {
        item = item_new(hash, key.base, key.len, value.base, value.len, version, deadline_ms);
        if (item == NULL) return KV_ENOMEM;
    }
    if (existing) store_replace(store, slot, existing, item);
    else store_add(store, item);
    return KV_OK;
}

static int apply_mset(kv_store *store, uint64_t index, const kv_cmd *cmd, kv_result *result)
{
    /* Allocate every item first so that running out of memory leaves the store untouched. */
    kv_item **items = calloc(cmd->n_pairs, sizeof *items);
    if (items == NULL) return KV_ENOMEM;
    size_t cursor = 0;
    kv_pair pair;
    for (uint32_t i = 0; kv_cmd_next_pair(cmd, &cursor, &pair); i++) {
        uint64_t hash = hash_key(store->seed, pair.key.base, pair.key.len);
        items[i] = item_new(hash, pair.key.base, pair.key.len, pair.value.base, pair.value.len,
                            index, pair.deadline_ms);
        if (items[i] == NULL) {
            for (uint32_t j = 0; j < i; j++) free(items[j]);
            free(items);
            return KV_ENOMEM;
        }
    }
    cursor = 0;
    for (uint32_t i = 0; kv_cmd_next_pair(cmd, &cursor, &pair); i++) {
        kv_item **slot = NULL;
        kv_item *existing = find_live(store, items[i]->hash, pair.key.base, pair.key.len, &slot);
        int rc = write_item(store, items[i]->hash, pair.key, pair.value, index, pair.deadline_ms,
                            existing, slot, items[i]);
        assert(rc == KV_OK);
        (void)rc;
    }
    free(items);
    result->status = KV_ST_OK;
    result->version = index;
    result->count = cmd->n_pairs;
    return KV_OK;
}

static int apply_incr(kv_store *store, uint64_t index, const kv_cmd *cmd, kv_result *result)
{
    uint64_t hash = hash_key(store->seed, cmd->key.base, cmd->key.len);
    kv_item **slot = NULL;
    kv_item *existing = find_live(store, hash, cmd->key.base, cmd->key.len, &slot);
    int64_t value = 0;
    if (existing && !parse_int64(item_value(existing), existing->value_len, &value)) {
        result->status = KV_ST_NOT_INTEGER;
        return KV_OK;
    }
    if ((cmd->delta > 0 && value > INT64_MAX - cmd->delta) ||
        (cmd->delta < 0 && value < INT64_MIN - cmd->delta)) {
        result->status = KV_ST_OVERFLOW;
        return KV_OK;
    }
    value += cmd->delta;
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", (long long)value);
    assert(n > 0 && (size_t)n < sizeof text);
    kv_slice digits = {(const uint8_t *)text, (size_t)n};
    /* INCR keeps the key's deadline, as Redis does. */
    int rc = write_item(store, hash, cmd->key, digits, index, existing ? existing->deadline_ms : 0,
                        existing, slot, NULL);
    if (rc != KV_OK) return rc;
    result->status = KV_ST_OK;
    result->version = index;
    result->integer = value;
    return KV_OK;
}

/* ---- sessions -------------------------------------------------------------------------------- */

static kv_session *session_find(const kv_store *store, uint64_t id)
{
    size_t lo = 0, hi = store->n_sessions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (store->sessions[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < store->n_sessions && store->sessions[lo].id == id ? &store->sessions[lo] : NULL;
}

/* Ids are entry indexes, applied in increasing order: appending keeps the array sorted. */
static int session_open(kv_store *store, uint64_t id)
{
    if (store->n_sessions == store->cap_sessions) {
        size_t cap = store->cap_sessions ? store->cap_sessions * 2 : 16;
        kv_session *grown = realloc(store->sessions, cap * sizeof *grown);
        if (grown == NULL) return KV_ENOMEM;
        store->sessions = grown;
        store->cap_sessions = cap;
    }
    store->sessions[store->n_sessions++] = (kv_session){.id = id, .seq = 0};
    return KV_OK;
}

static bool session_close(kv_store *store, uint64_t id)
{
    kv_session *s = session_find(store, id);
    if (s == NULL) return false;
    size_t at = (size_t)(s - store->sessions);
    memmove(s, s + 1, (store->n_sessions - at - 1) * sizeof *s);
    store->n_sessions--;
    return true;
}

bool kv_session_seq(const kv_store *store, uint64_t session, uint64_t *seq)
{
    const kv_session *s = session_find(store, session);
    if (s == NULL) return false;
    *seq = s->seq;
    return true;
}

size_t kv_session_count(const kv_store *store) { return store->n_sessions; }

int kv_apply_fast(kv_store *store, uint64_t index, uint64_t session, uint64_t seq,
                  const uint8_t *data, size_t len, kv_result *result)
{
    if (index <= store->applied_index) return KV_EINVAL;
    kv_session *s = session_find(store, session);
    if (s == NULL || seq <= s->seq) {
        memset(result, 0, sizeof *result);
        result->status = KV_ST_SKIPPED;
        store->applied_index = index;
        return KV_OK;
    }
    int rc = kv_apply(store, index, data, len, result);
    if (rc == KV_OK) s->seq = seq;
    return rc;
}

int kv_apply(kv_store *store, uint64_t index, const uint8_t *data, size_t len, kv_result *result)
{
    memset(result, 0, sizeof *result);
    if (index <= store->applied_index) return KV_EINVAL;
    kv_cmd cmd;
    if (kv_cmd_decode(data, len, &cmd) != KV_OK) {
        result->status = KV_ST_BAD_CMD;
        store->applied_index = index;
        return KV_OK;
    }
    result->op = cmd.op;
    /* Monotonic apply clock (see the header): set first, it is a pure function of the log. */
    if (cmd.now_ms > store->apply_clock) store->apply_clock = cmd.now_ms;
    rehash_step(store, KV_REHASH_STEP);

    int rc = KV_OK;
    uint64_t hash = 0;
    kv_item **slot = NULL;
    kv_item *existing = NULL;
    if (cmd.op == KV_OP_SET || cmd.op == KV_OP_CAS || cmd.op == KV_OP_EXPIRE) {
        hash = hash_key(store->seed, cmd.key.base, cmd.key.len);
        existing = find_live(store, hash, cmd.key.base, cmd.key.len, &slot);
    }
    switch (cmd.op) {
    case KV_OP_SET:
        if (((cmd.flags & KV_SET_NX) && existing) || ((cmd.flags & KV_SET_XX) && !existing)) {
            result->status = KV_ST_NOT_SET;
            break;
        }
        rc = write_item(store, hash, cmd.key, cmd.value, index, cmd.deadline_ms, existing, slot, NULL);
        result->status = KV_ST_OK;
        result->version = index;
        break;
    case KV_OP_CAS:
        if (!existing) {
            result->status = KV_ST_NOT_FOUND;
        } else if (existing->version != cmd.expected_version) {
            result->status = KV_ST_VERSION;
            result->version = existing->version;
        } else {
            rc = write_item(store, hash, cmd.key, cmd.value, index, cmd.deadline_ms, existing, slot,
                            NULL);
            result->status = KV_ST_OK;
            result->version = index;
        }
        break;
    case KV_OP_EXPIRE:
        if (!existing) {
            result->status = KV_ST_NOT_FOUND;
            break;
        }
        {
            kv_slice value = {item_value(existing), existing->value_len};
            rc = write_item(store, hash, cmd.key, value, index, cmd.deadline_ms, existing, slot,
                            NULL);
        }
        result->status = KV_ST_OK;
        result->version = index;
        result->count = 1;
        break;
    case KV_OP_DELETE: {
        size_t cursor = 0;
        kv_pair pair;
        while (kv_cmd_next_pair(&cmd, &cursor, &pair)) {
            uint64_t key_hash = hash_key(store->seed, pair.key.base, pair.key.len);
            kv_item *item = find_live(store, key_hash, pair.key.base, pair.key.len, &slot);
            if (item) {
                store_remove(store, slot, item);
                result->count++;
            }
        }
        result->status = result->count ? KV_ST_DELETED : KV_ST_NOT_FOUND;
        break;
    }
    case KV_OP_MSET:
        rc = apply_mset(store, index, &cmd, result);
        break;
    case KV_OP_INCR:
        rc = apply_incr(store, index, &cmd, result);
        break;
    case KV_OP_TICK:
        result->status = KV_ST_OK;
        break;
    case KV_OP_REGISTER:
        rc = session_open(store, index);
        result->status = KV_ST_OK;
        result->version = index;
        break;
    case KV_OP_UNREGISTER:
        result->status = session_close(store, cmd.session) ? KV_ST_OK : KV_ST_NOT_FOUND;
        break;
    default:
        assert(0 && "kv_cmd_decode accepted an unknown op");
        break;
    }
    if (rc != KV_OK) {
        memset(result, 0, sizeof *result);
        return rc;
    }
    store->applied_index = index;
    return KV_OK;
}

void kv_skip_to(kv_store *store, uint64_t index)
{
    if (index > store->applied_index) store->applied_index = index;
}

/* ---- reads ----------------------------------------------------------------------------------- */

static kv_item *read_lookup(kv_store *store, const uint8_t *key, size_t key_len, uint64_t now_ms)
{
    if (key == NULL || key_len == 0 || key_len > KV_MAX_KEY) return NULL;
    rehash_step(store, 1);
    kv_item **slot = NULL;
    kv_item *item = find_live(store, hash_key(store->seed, key, key_len), key, key_len, &slot);
    if (item == NULL || !visible_at(item, now_ms)) return NULL;
    return item;
}

bool kv_get(kv_store *store, const uint8_t *key, size_t key_len, uint64_t now_ms, kv_view *out)
{
    kv_item *item = read_lookup(store, key, key_len, now_ms);
    if (item == NULL) return false;
    if (out) {
        out->value = item_value(item);
        out->value_len = item->value_len;
        out->version = item->version;
        out->deadline_ms = item->deadline_ms;
    }
    return true;
}

int64_t kv_ttl_ms(kv_store *store, const uint8_t *key, size_t key_len, uint64_t now_ms)
{
    kv_item *item = read_lookup(store, key, key_len, now_ms);
    if (item == NULL) return -2;
    if (item->deadline_ms == 0) return -1;
    uint64_t left = item->deadline_ms - now_ms; /* > 0: the item is visible */
    return left > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)left;
}

size_t kv_expire_sweep(kv_store *store, size_t budget)
{
    size_t reclaimed = 0;
    for (size_t visited = 0; visited < budget; visited++) {
        size_t total = store->tables[0].size + (store->rehashing ? store->tables[1].size : 0);
        if (store->sweep_pos >= total) store->sweep_pos = 0;
        size_t pos = store->sweep_pos++;
        kv_table *table = &store->tables[0];
        if (pos >= table->size) {
            pos -= table->size;
            table = &store->tables[1];
        }
        kv_item **link = &table->buckets[pos];
        while (*link != NULL) {
            kv_item *item = *link;
            if (expired_for_log(store, item)) {
                *link = item->chain;
                item->chain = NULL;
                store->count--;
                store->bytes -= item_bytes(item);
                item_retire(store, item);
                reclaimed++;
            } else {
                link = &item->chain;
            }
        }
    }
    /* shrinking is started here rather than per removal above: we were walking the buckets */
    maybe_resize(store);
    return reclaimed;
}

void kv_get_stats(const kv_store *store, kv_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    stats->keys = store->count;
    stats->bytes = store->bytes;
    stats->buckets = store->tables[0].size + store->tables[1].size;
    stats->resizing = store->rehashing;
    stats->applied_index = store->applied_index;
    stats->apply_clock = store->apply_clock;
    stats->snapshot_preimages = store->snap ? store->snap->n_preimages : 0;
}

uint64_t kv_applied_index(const kv_store *store) { return store->applied_index; }

/* ---- snapshot -------------------------------------------------------------------------------- */

int kv_snapshot_begin(kv_store *store, kv_snapshot **out)
{
    *out = NULL;
    if (store->snap != NULL) return KV_EBUSY;
    kv_snapshot *snap = calloc(1, sizeof *snap);
    if (snap == NULL) return KV_ENOMEM;
    crc32_init_table(snap->crc_table);
    snap->store = store;
    snap->end_seq = store->next_seq;
    snap->applied_index = store->applied_index;
    snap->apply_clock = store->apply_clock;
    snap->count = store->count;
    snap->cursor = store->head;
    snap->phase = SNAP_HEADER;
    if (store->n_sessions > 0) {
        snap->sessions = malloc(store->n_sessions * sizeof *snap->sessions);
        if (snap->sessions == NULL) {
            free(snap);
            return KV_ENOMEM;
        }
        memcpy(snap->sessions, store->sessions, store->n_sessions * sizeof *snap->sessions);
        snap->n_sessions = store->n_sessions;
    }
    le_put(snap->fixed, SNAP_MAGIC, 4);
    le_put(snap->fixed + 4, SNAP_VERSION, 4);
    le_put(snap->fixed + 8, snap->applied_index, 8);
    le_put(snap->fixed + 16, snap->apply_clock, 8);
    le_put(snap->fixed + 24, snap->count, 8);
    le_put(snap->fixed + 32, snap->n_sessions, 8);
    snap->fixed_len = SNAP_HEADER_BYTES;
    if (snap->n_sessions == 0) { /* format 1: what a node of an older version still installs */
        le_put(snap->fixed + 4, 1, 4);
        snap->fixed_len = SNAP_V1_HEADER_BYTES;
    }
    store->snap = snap;
    *out = snap;
    return KV_OK;
}

uint64_t kv_snapshot_index(const kv_snapshot *snap) { return snap->applied_index; }

/* Pick the next item to serialize: the list first (items older than the snapshot), then the
 * pre-images that writes handed over. */
static bool snapshot_load_next(kv_snapshot *snap)
{
    kv_item *item = NULL;
    if (snap->cursor != NULL && snap->cursor->seq < snap->end_seq) {
        item = snap->cursor;
        snap->cursor = item->next;
        snap->current_owned = false;
    } else {
        snap->cursor = NULL; /* every later list item is newer than the snapshot */
        if (snap->preimages == NULL) return false;
        item = snap->preimages;
        snap->preimages = item->next;
        snap->n_preimages--;
        item->next = NULL;
        snap->current_owned = true;
    }
    snap->current = item;
    snap->current_off = 0;
    le_put(snap->record_header, item->key_len, 2);
    le_put(snap->record_header + 2, item->value_len, 4);
    le_put(snap->record_header + 6, item->version, 8);
    le_put(snap->record_header + 14, item->deadline_ms, 8);
    return true;
}

static void snapshot_finish_current(kv_snapshot *snap)
{
    if (snap->current_owned) free(snap->current);
    snap->current = NULL;
    snap->current_owned = false;
    snap->written_records++;
}

/* After the items: the next session record, or the trailer once they are all written. */
static void snapshot_next_session(kv_snapshot *snap)
{
    snap->fixed_off = 0;
    if (snap->written_sessions < snap->n_sessions) {
        const kv_session *s = &snap->sessions[snap->written_sessions++];
        le_put(snap->fixed, s->id, 8);
        le_put(snap->fixed + 8, s->seq, 8);
        snap->fixed_len = SNAP_SESSION_BYTES;
        snap->phase = SNAP_SESSIONS;
        return;
    }
    le_put(snap->fixed, snap->crc, 4);
    snap->fixed_len = SNAP_TRAILER_BYTES;
    snap->phase = SNAP_TRAILER;
}

size_t kv_snapshot_next(kv_snapshot *snap, uint8_t *buf, size_t cap)
{
    assert(cap > 0); /* 0 would read as "complete" */
    size_t n = 0;
    while (n < cap) {
        if (snap->phase == SNAP_DONE) break;
        if (snap->phase != SNAP_ITEMS) {
            size_t chunk = snap->fixed_len - snap->fixed_off;
            if (chunk > cap - n) chunk = cap - n;
            memcpy(buf + n, snap->fixed + snap->fixed_off, chunk);
            if (snap->phase != SNAP_TRAILER)
                snap->crc = crc32_update(snap->crc_table, snap->crc, buf + n, chunk);
            n += chunk;
            snap->fixed_off += chunk;
            if (snap->fixed_off < snap->fixed_len) continue;
            if (snap->phase == SNAP_HEADER) snap->phase = SNAP_ITEMS;
            else if (snap->phase == SNAP_TRAILER) snap->phase = SNAP_DONE;
            else snapshot_next_session(snap);
            continue;
        }
        if (snap->current == NULL && !snapshot_load_next(snap)) {
            assert(snap->written_records == snap->count);
            snapshot_next_session(snap);
            continue;
        }
        /* copy the next piece of the record: header, key, then value */
        const kv_item *item = snap->current;
        size_t off = snap->current_off;
        const uint8_t *src;
        size_t avail;
        if (off < SNAP_RECORD_BYTES) {
            src = snap->record_header + off;
            avail = SNAP_RECORD_BYTES - off;
        } else if (off < SNAP_RECORD_BYTES + (size_t)item->key_len) {
            src = item_key(item) + (off - SNAP_RECORD_BYTES);
            avail = SNAP_RECORD_BYTES + item->key_len - off;
        } else {
            size_t voff = off - SNAP_RECORD_BYTES - item->key_len;
            src = item_value(item) + voff;
            avail = item->value_len - voff;
        }
        if (avail > cap - n) avail = cap - n;
        memcpy(buf + n, src, avail);
        snap->crc = crc32_update(snap->crc_table, snap->crc, buf + n, avail);
        n += avail;
        snap->current_off += avail;
        if (snap->current_off == SNAP_RECORD_BYTES + (size_t)item->key_len + item->value_len)
            snapshot_finish_current(snap);
    }
    return n;
}

void kv_snapshot_end(kv_snapshot *snap)
{
    if (snap == NULL) return;
    if (snap->current_owned) free(snap->current);
    for (kv_item *item = snap->preimages; item != NULL;) {
        kv_item *next = item->next;
        free(item);
        item = next;
    }
    snap->store->snap = NULL;
    free(snap->sessions);
    free(snap);
}

/* ---- restore --------------------------------------------------------------------------------- */

struct kv_restore {
    kv_store *store; /* built here, moved into the target by finish */
    enum {
        RESTORE_HEADER, RESTORE_SESSION_COUNT, RESTORE_RECORD, RESTORE_BODY, RESTORE_SESSION,
        RESTORE_TRAILER, RESTORE_DONE
    } phase;
    int error;       /* sticky KV_E* */
    char errmsg[160];
    uint64_t offset; /* bytes consumed so far */
    uint8_t fixed[SNAP_HEADER_BYTES];
    size_t fixed_len, fixed_off;
    uint64_t count, records;
    uint64_t n_sessions, sessions_read;
    uint64_t applied_index, apply_clock;
    kv_item *item; /* being filled */
    size_t body_len, body_off;
    uint32_t crc;
    uint32_t crc_table[256];
};

kv_restore *kv_restore_begin(const kv_config *config)
{
    kv_restore *restore = calloc(1, sizeof *restore);
    if (restore == NULL) return NULL;
    restore->store = kv_store_new(config);
    if (restore->store == NULL) {
        free(restore);
        return NULL;
    }
    crc32_init_table(restore->crc_table);
    restore->phase = RESTORE_HEADER;
    restore->fixed_len = SNAP_V1_HEADER_BYTES; /* version 2 reads 8 more bytes after it */
    return restore;
}

static int restore_fail(kv_restore *restore, int rc, const char *what)
{
    restore->error = rc;
    snprintf(restore->errmsg, sizeof restore->errmsg, "snapshot byte %llu: %s",
             (unsigned long long)restore->offset, what);
    return rc;
}

/* Every item read: the next session record, or the trailer. */
static void restore_after_records(kv_restore *restore)
{
    bool more = restore->sessions_read < restore->n_sessions;
    restore->phase = more ? RESTORE_SESSION : RESTORE_TRAILER;
    restore->fixed_len = more ? SNAP_SESSION_BYTES : SNAP_TRAILER_BYTES;
}

/* A fixed-size part (header, record header, trailer) is complete in restore->fixed. */
static int restore_fixed_done(kv_restore *restore)
{
    const uint8_t *f = restore->fixed;
    restore->fixed_off = 0;
    switch (restore->phase) {
    case RESTORE_HEADER: {
        if (le_get(f, 4) != SNAP_MAGIC) return restore_fail(restore, KV_ECORRUPT, "bad magic");
        uint64_t version = le_get(f + 4, 4);
        if (version != 1 && version != SNAP_VERSION)
            return restore_fail(restore, KV_ECORRUPT, "unknown format version");
        restore->applied_index = le_get(f + 8, 8);
        restore->apply_clock = le_get(f + 16, 8);
        restore->count = le_get(f + 24, 8);
        if (version == SNAP_VERSION) {
            restore->phase = RESTORE_SESSION_COUNT;
            restore->fixed_len = SNAP_HEADER_BYTES - SNAP_V1_HEADER_BYTES;
            return KV_OK;
        }
        break;
    }
    case RESTORE_SESSION_COUNT:
        restore->n_sessions = le_get(f, 8);
        break;
    case RESTORE_SESSION: {
        uint64_t id = le_get(f, 8), seq = le_get(f + 8, 8);
        kv_store *st = restore->store;
        if (id == 0 || (st->n_sessions > 0 && id <= st->sessions[st->n_sessions - 1].id))
            return restore_fail(restore, KV_ECORRUPT, "session ids not increasing");
        if (session_open(st, id) != KV_OK)
            return restore_fail(restore, KV_ENOMEM, "out of memory for a session");
        st->sessions[st->n_sessions - 1].seq = seq;
        restore->sessions_read++;
        restore_after_records(restore);
        return KV_OK;
    }
    case RESTORE_RECORD: {
        size_t key_len = (size_t)le_get(f, 2), value_len = (size_t)le_get(f + 2, 4);
        if (key_len == 0 || key_len > KV_MAX_KEY)
            return restore_fail(restore, KV_ECORRUPT, "key length out of range");
        if (value_len > KV_MAX_VALUE_HARD)
            return restore_fail(restore, KV_ECORRUPT, "value length over the hard limit");
        kv_item *item = malloc(sizeof(kv_item) + key_len + value_len);
        if (item == NULL) return restore_fail(restore, KV_ENOMEM, "out of memory for an item");
        memset(item, 0, sizeof *item);
        item->key_len = (uint16_t)key_len;
        item->value_len = (uint32_t)value_len;
        item->version = le_get(f + 6, 8);
        item->deadline_ms = le_get(f + 14, 8);
        restore->item = item;
        restore->body_len = key_len + value_len;
        restore->body_off = 0;
        restore->phase = RESTORE_BODY;
        return KV_OK;
    }
    case RESTORE_TRAILER:
        if ((uint32_t)le_get(f, 4) != restore->crc)
            return restore_fail(restore, KV_ECORRUPT, "checksum mismatch");
        restore->phase = RESTORE_DONE;
        return KV_OK;
    default:
        assert(0);
    }
    /* after the header */
    if (restore->count) {
        restore->phase = RESTORE_RECORD;
        restore->fixed_len = SNAP_RECORD_BYTES;
    } else {
        restore_after_records(restore);
    }
    return KV_OK;
}

static int restore_body_done(kv_restore *restore)
{
    kv_item *item = restore->item;
    restore->item = NULL;
    if (!kv_key_valid(item_key(item), item->key_len)) {
        free(item);
        return restore_fail(restore, KV_ECORRUPT, "invalid key");
    }
    item->hash = hash_key(restore->store->seed, item_key(item), item->key_len);
    kv_item **slot = NULL;
    if (table_find(restore->store, item->hash, item_key(item), item->key_len, &slot) != NULL) {
        free(item);
        return restore_fail(restore, KV_ECORRUPT, "duplicate key");
    }
    rehash_step(restore->store, KV_REHASH_STEP);
    store_add(restore->store, item);
    restore->records++;
    if (restore->records == restore->count) {
        restore_after_records(restore);
    } else {
        restore->phase = RESTORE_RECORD;
        restore->fixed_len = SNAP_RECORD_BYTES;
    }
    return KV_OK;
}

int kv_restore_feed(kv_restore *restore, const uint8_t *data, size_t len)
{
    if (restore->error) return restore->error;
    size_t i = 0;
    while (i < len) {
        size_t chunk;
        if (restore->phase == RESTORE_DONE)
            return restore_fail(restore, KV_ECORRUPT, "bytes after the trailer");
        if (restore->phase == RESTORE_BODY) {
            chunk = restore->body_len - restore->body_off;
            if (chunk > len - i) chunk = len - i;
            memcpy(restore->item->data + restore->body_off, data + i, chunk);
            restore->body_off += chunk;
        } else {
            chunk = restore->fixed_len - restore->fixed_off;
            if (chunk > len - i) chunk = len - i;
            memcpy(restore->fixed + restore->fixed_off, data + i, chunk);
            restore->fixed_off += chunk;
        }
        if (restore->phase != RESTORE_TRAILER)
            restore->crc = crc32_update(restore->crc_table, restore->crc, data + i, chunk);
        i += chunk;
        restore->offset += chunk;
        int rc = KV_OK;
        if (restore->phase == RESTORE_BODY) {
            if (restore->body_off == restore->body_len) rc = restore_body_done(restore);
        } else if (restore->fixed_off == restore->fixed_len) {
            rc = restore_fixed_done(restore);
        }
        if (rc != KV_OK) return rc;
    }
    return KV_OK;
}

int kv_restore_finish(kv_restore *restore, kv_store *into)
{
    if (restore->error) return restore->error;
    if (restore->phase != RESTORE_DONE)
        return restore_fail(restore, KV_ECORRUPT, "snapshot truncated");
    if (into->snap != NULL)
        return restore_fail(restore, KV_EBUSY, "the target store has an open snapshot iterator");
    /* Swap contents: `into` takes the restored state, restore->store the old one (freed later). */
    kv_store old = *into;
    *into = *restore->store;
    *restore->store = old;
    into->applied_index = restore->applied_index;
    into->apply_clock = restore->apply_clock;
    restore->phase = RESTORE_DONE;
    restore->error = restore_fail(restore, KV_EINVAL, "already finished");
    return KV_OK;
}

void kv_restore_free(kv_restore *restore)
{
    if (restore == NULL) return;
    free(restore->item);
    kv_store_free(restore->store);
    free(restore);
}

const char *kv_restore_error(const kv_restore *restore)
{
    return restore->error ? restore->errmsg : "no error";
}
