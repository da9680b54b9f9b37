/*
 * test_kv.c -- unit tests of the key-value state machine: command encoding, apply of every command,
 * versions, expiry deadlines (and replicas that agree on them), incremental resize, snapshots taken
 * while applying, restore, and limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv_cmd.h"
#include "kv_store.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static kv_slice S(const char *text)
{
    kv_slice s = {(const uint8_t *)text, strlen(text)};
    return s;
}

typedef struct encoded {
    uint8_t bytes[8192];
    size_t len;
} encoded;

static encoded encode(const kv_cmd *cmd)
{
    encoded e;
    long n = kv_cmd_encode(cmd, e.bytes, sizeof e.bytes);
    assert_true(n > 0);
    e.len = (size_t)n;
    return e;
}

static kv_result apply(kv_store *store, uint64_t index, const kv_cmd *cmd)
{
    encoded e = encode(cmd);
    kv_result result;
    assert_int_equal(kv_apply(store, index, e.bytes, e.len, &result), KV_OK);
    return result;
}

static kv_cmd cmd_set(const char *key, const char *value, uint64_t now, uint64_t deadline)
{
    kv_cmd cmd = {0};
    cmd.op = KV_OP_SET;
    cmd.now_ms = now;
    cmd.key = S(key);
    cmd.value = S(value);
    cmd.deadline_ms = deadline;
    return cmd;
}

static kv_cmd cmd_key(uint8_t op, const char *key, uint64_t now)
{
    kv_cmd cmd = {0};
    cmd.op = op;
    cmd.now_ms = now;
    cmd.key = S(key);
    cmd.delta = 1;
    return cmd;
}

static kv_cmd cmd_delete(const kv_pair *pairs, uint32_t n, uint64_t now)
{
    kv_cmd cmd = {0};
    cmd.op = KV_OP_DELETE;
    cmd.now_ms = now;
    cmd.pairs = pairs;
    cmd.n_pairs = n;
    return cmd;
}

static void assert_value(kv_store *store, const char *key, uint64_t now, const char *value,
                         uint64_t version)
{
    kv_view view;
    assert_true(kv_get(store, (const uint8_t *)key, strlen(key), now, &view));
    assert_int_equal(view.value_len, strlen(value));
    assert_memory_equal(view.value, value, view.value_len);
    assert_int_equal(view.version, version);
}

static void assert_missing(kv_store *store, const char *key, uint64_t now)
{
    assert_false(kv_get(store, (const uint8_t *)key, strlen(key), now, NULL));
}

/* ---- kv_cmd ---------------------------------------------------------------------------------- */

static void keyValidEnforcesSeedLimits(void **state)
{
    (void)state;
    uint8_t key[KV_MAX_KEY + 1];
    memset(key, 'k', sizeof key);
    assert_true(kv_key_valid(key, KV_MAX_KEY));
    assert_false(kv_key_valid(key, KV_MAX_KEY + 1));
    assert_false(kv_key_valid(key, 0));
    assert_false(kv_key_valid((const uint8_t *)"a b", 3));
    assert_false(kv_key_valid((const uint8_t *)"a\rb", 3));
    assert_false(kv_key_valid((const uint8_t *)"a\nb", 3));
    assert_false(kv_key_valid((const uint8_t *)"a\x7f", 2));
    assert_false(kv_key_valid((const uint8_t *)"\0", 1));
    assert_true(kv_key_valid((const uint8_t *)"\xff\x80:{}", 5));
}

static void cmdRoundTripsEveryOp(void **state)
{
    (void)state;
    kv_pair pairs[3] = {
        {S("a"), S("1"), 0}, {S("b"), {(const uint8_t *)"x\r\n\0y", 5}, 99}, {S("c"), S(""), 7}};
    kv_cmd cmds[7];
    memset(cmds, 0, sizeof cmds);
    cmds[0] = cmd_set("key", "val\r\nue", 1000, 61000);
    cmds[0].flags = KV_SET_NX;
    cmds[1] = cmd_set("key", "v2", 1001, 0);
    cmds[1].op = KV_OP_CAS;
    cmds[1].expected_version = 12345678901ull;
    cmds[2] = cmd_delete(pairs, 3, 1002);
    cmds[3] = cmd_delete(pairs, 3, 1003);
    cmds[3].op = KV_OP_MSET;
    cmds[4] = cmd_key(KV_OP_INCR, "n", 1004);
    cmds[4].delta = -42;
    cmds[5] = cmd_key(KV_OP_EXPIRE, "k", 1005);
    cmds[5].deadline_ms = 777;
    cmds[6].op = KV_OP_TICK;
    cmds[6].now_ms = 1006;
    for (size_t i = 0; i < 7; i++) {
        encoded e = encode(&cmds[i]);
        assert_int_equal(kv_cmd_encoded_size(&cmds[i]), e.len);
        kv_cmd out;
        assert_int_equal(kv_cmd_decode(e.bytes, e.len, &out), KV_OK);
        assert_int_equal(out.op, cmds[i].op);
        assert_int_equal(out.flags, cmds[i].flags);
        assert_int_equal(out.now_ms, cmds[i].now_ms);
        assert_int_equal(out.deadline_ms, cmds[i].deadline_ms);
        assert_int_equal(out.expected_version, cmds[i].expected_version);
        assert_int_equal(out.key.len, cmds[i].key.len);
        if (out.key.len) assert_memory_equal(out.key.base, cmds[i].key.base, out.key.len);
        assert_int_equal(out.value.len, cmds[i].value.len);
        if (out.value.len) assert_memory_equal(out.value.base, cmds[i].value.base, out.value.len);
        if (out.op == KV_OP_INCR) assert_int_equal(out.delta, -42);
        if (out.op == KV_OP_DELETE || out.op == KV_OP_MSET) {
            size_t cursor = 0, n = 0;
            kv_pair pair;
            while (kv_cmd_next_pair(&out, &cursor, &pair)) {
                assert_int_equal(pair.key.len, pairs[n].key.len);
                assert_memory_equal(pair.key.base, pairs[n].key.base, pair.key.len);
                if (out.op == KV_OP_MSET) {
                    assert_int_equal(pair.value.len, pairs[n].value.len);
                    if (pair.value.len)
                        assert_memory_equal(pair.value.base, pairs[n].value.base, pair.value.len);
                    assert_int_equal(pair.deadline_ms, pairs[n].deadline_ms);
                }
                n++;
            }
            assert_int_equal(n, 3);
        }
        /* every strict prefix and one extra byte are rejected */
        for (size_t cut = 0; cut < e.len; cut++)
            assert_int_equal(kv_cmd_decode(e.bytes, cut, &out), KV_EINVAL);
        e.bytes[e.len] = 0;
        assert_int_equal(kv_cmd_decode(e.bytes, e.len + 1, &out), KV_EINVAL);
    }
}

static void cmdRejectsBadFields(void **state)
{
    (void)state;
    kv_cmd cmd = cmd_set("key", "v", 1, 0);
    encoded e = encode(&cmd);
    kv_cmd out;
    e.bytes[0] = 2; /* unknown format version */
    assert_int_equal(kv_cmd_decode(e.bytes, e.len, &out), KV_EINVAL);
    e = encode(&cmd);
    e.bytes[1] = 99; /* unknown op */
    assert_int_equal(kv_cmd_decode(e.bytes, e.len, &out), KV_EINVAL);
    e = encode(&cmd);
    e.bytes[2] = KV_SET_NX | KV_SET_XX;
    assert_int_equal(kv_cmd_decode(e.bytes, e.len, &out), KV_EINVAL);
    e = encode(&cmd);
    e.bytes[11 + 8 + 2 + 1] = ' '; /* a space inside the key */
    assert_int_equal(kv_cmd_decode(e.bytes, e.len, &out), KV_EINVAL);
    assert_int_equal(kv_cmd_decode(NULL, 0, &out), KV_EINVAL);

    /* encode refuses what decode would refuse */
    cmd.key = S("bad key");
    assert_int_equal(kv_cmd_encode(&cmd, e.bytes, sizeof e.bytes), KV_EINVAL);
    cmd = cmd_set("key", "v", 1, 0);
    cmd.flags = KV_SET_NX | KV_SET_XX;
    assert_int_equal(kv_cmd_encode(&cmd, e.bytes, sizeof e.bytes), KV_EINVAL);
    cmd = cmd_set("key", "v", 1, 0);
    assert_int_equal(kv_cmd_encode(&cmd, e.bytes, 5), KV_ENOSPC);
    kv_cmd empty = cmd_delete(NULL, 0, 1);
    assert_int_equal(kv_cmd_encode(&empty, e.bytes, sizeof e.bytes), KV_EINVAL);

    /* value over the hard limit of the encoding (the length is checked before any byte is read) */
    cmd = cmd_set("key", "v", 1, 0);
    cmd.value.len = KV_MAX_VALUE_HARD + 1;
    assert_int_equal(kv_cmd_encoded_size(&cmd), 0);
    cmd.value.len = KV_MAX_VALUE_HARD;
    assert_int_equal(kv_cmd_encoded_size(&cmd), 11 + 8 + 2 + 3 + 4 + KV_MAX_VALUE_HARD);
    /* more than KV_MAX_MULTI keys in one entry */
    static kv_pair many[KV_MAX_MULTI + 1];
    for (size_t i = 0; i <= KV_MAX_MULTI; i++) many[i].key = S("k");
    kv_cmd del = cmd_delete(many, KV_MAX_MULTI + 1, 1);
    assert_int_equal(kv_cmd_encoded_size(&del), 0);
    del.n_pairs = KV_MAX_MULTI;
    static uint8_t big[16 * KV_MAX_MULTI];
    long n = kv_cmd_encode(&del, big, sizeof big);
    assert_true(n > 0);
    assert_int_equal(kv_cmd_decode(big, (size_t)n, &out), KV_OK);
    big[11] = (uint8_t)(KV_MAX_MULTI + 1); /* patch the count: 1025 = 0x401 */
    big[12] = (uint8_t)((KV_MAX_MULTI + 1) >> 8);
    assert_int_equal(kv_cmd_decode(big, (size_t)n, &out), KV_EINVAL);
    /* a well-formed SET whose key is 251 bytes is refused on decode; 250 is accepted */
    for (size_t key_len = KV_MAX_KEY; key_len <= KV_MAX_KEY + 1; key_len++) {
        uint8_t raw[11 + 8 + 2 + KV_MAX_KEY + 1 + 4 + 1] = {KV_CMD_VERSION, KV_OP_SET, 0};
        size_t at = 11 + 8;
        raw[at++] = (uint8_t)key_len;
        raw[at++] = (uint8_t)(key_len >> 8);
        memset(raw + at, 'k', key_len);
        at += key_len;
        raw[at] = 1; /* value length 1 */
        at += 4;
        raw[at++] = 'v';
        assert_int_equal(kv_cmd_decode(raw, at, &out), key_len == KV_MAX_KEY ? KV_OK : KV_EINVAL);
    }
}

static void deadlineHelpersSaturate(void **state)
{
    (void)state;
    assert_int_equal(kv_deadline_from_seconds(1000, 0), 0);
    assert_int_equal(kv_deadline_from_seconds(1000, 5), 6000);
    assert_int_equal(kv_deadline_from_seconds(1000, -5), 1000);
    assert_int_equal(kv_deadline_from_seconds(0, -5), 1);
    assert_int_equal(kv_deadline_from_seconds(1000, INT64_MAX), UINT64_MAX);
    assert_int_equal(kv_deadline_from_ms(UINT64_MAX - 1, 10), UINT64_MAX);
    assert_int_equal(kv_deadline_from_ms(10, 5), 15);
}

/* ---- apply ----------------------------------------------------------------------------------- */

static void applySetVersionIsLogIndex(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_cmd set = cmd_set("k", "v1", 100, 0);
    kv_result result = apply(store, 5, &set);
    assert_int_equal(result.status, KV_ST_OK);
    assert_int_equal(result.version, 5);
    assert_value(store, "k", 100, "v1", 5);
    set = cmd_set("k", "v2", 101, 0);
    result = apply(store, 9, &set);
    assert_int_equal(result.version, 9);
    assert_value(store, "k", 100, "v2", 9);
    assert_int_equal(kv_applied_index(store), 9);
    /* out of order apply is the caller's bug, reported */
    encoded e = encode(&set);
    assert_int_equal(kv_apply(store, 9, e.bytes, e.len, &result), KV_EINVAL);
    /* undecodable entry: consumed, identical on every replica, state unchanged */
    assert_int_equal(kv_apply(store, 10, (const uint8_t *)"junk", 4, &result), KV_OK);
    assert_int_equal(result.status, KV_ST_BAD_CMD);
    assert_int_equal(kv_applied_index(store), 10);
    assert_value(store, "k", 100, "v2", 9);
    kv_skip_to(store, 20);
    assert_int_equal(kv_applied_index(store), 20);
    kv_store_free(store);
}

static void applySetNxXx(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_cmd set = cmd_set("k", "a", 1, 0);
    set.flags = KV_SET_XX;
    assert_int_equal(apply(store, 1, &set).status, KV_ST_NOT_SET);
    assert_missing(store, "k", 1);
    set.flags = KV_SET_NX;
    assert_int_equal(apply(store, 2, &set).status, KV_ST_OK);
    set.value = S("b");
    assert_int_equal(apply(store, 3, &set).status, KV_ST_NOT_SET);
    assert_value(store, "k", 1, "a", 2);
    set.flags = KV_SET_XX;
    assert_int_equal(apply(store, 4, &set).status, KV_ST_OK);
    assert_value(store, "k", 1, "b", 4);
    kv_store_free(store);
}

static void applyCasChecksVersion(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_cmd cas = cmd_set("k", "new", 1, 0);
    cas.op = KV_OP_CAS;
    cas.expected_version = 1;
    assert_int_equal(apply(store, 1, &cas).status, KV_ST_NOT_FOUND);
    kv_cmd set = cmd_set("k", "old", 1, 0);
    apply(store, 2, &set);
    cas.expected_version = 1;
    kv_result result = apply(store, 3, &cas);
    assert_int_equal(result.status, KV_ST_VERSION);
    assert_int_equal(result.version, 2);
    assert_value(store, "k", 1, "old", 2);
    cas.expected_version = 2;
    result = apply(store, 4, &cas);
    assert_int_equal(result.status, KV_ST_OK);
    assert_int_equal(result.version, 4);
    assert_value(store, "k", 1, "new", 4);
    kv_store_free(store);
}

static void applyDeleteAndMset(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_pair pairs[3] = {{S("a"), S("1"), 0}, {S("b"), S("2"), 0}, {S("a"), S("3"), 0}};
    kv_cmd mset = cmd_delete(pairs, 3, 1);
    mset.op = KV_OP_MSET;
    kv_result result = apply(store, 7, &mset);
    assert_int_equal(result.status, KV_ST_OK);
    assert_int_equal(result.version, 7);
    assert_int_equal(result.count, 3);
    assert_value(store, "a", 1, "3", 7); /* the later pair of a duplicated key wins */
    assert_value(store, "b", 1, "2", 7);
    kv_stats stats;
    kv_get_stats(store, &stats);
    assert_int_equal(stats.keys, 2);

    kv_pair dels[3] = {{S("a"), {0}, 0}, {S("zz"), {0}, 0}, {S("b"), {0}, 0}};
    kv_cmd del = cmd_delete(dels, 3, 2);
    result = apply(store, 8, &del);
    assert_int_equal(result.status, KV_ST_DELETED);
    assert_int_equal(result.count, 2);
    assert_missing(store, "a", 2);
    result = apply(store, 9, &del);
    assert_int_equal(result.status, KV_ST_NOT_FOUND);
    assert_int_equal(result.count, 0);
    kv_get_stats(store, &stats);
    assert_int_equal(stats.keys, 0);
    kv_store_free(store);
}

static void applyIncr(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_cmd incr = cmd_key(KV_OP_INCR, "n", 1);
    kv_result result = apply(store, 1, &incr);
    assert_int_equal(result.status, KV_ST_OK);
    assert_int_equal(result.integer, 1);
    assert_value(store, "n", 1, "1", 1);
    kv_cmd set = cmd_set("n", "-10", 1, 5000);
    apply(store, 2, &set);
    incr.delta = 4;
    result = apply(store, 3, &incr);
    assert_int_equal(result.integer, -6);
    kv_view view;
    assert_true(kv_get(store, (const uint8_t *)"n", 1, 1, &view));
    assert_int_equal(view.deadline_ms, 5000); /* INCR keeps the deadline */
    const char *bad[] = {"abc", "", " 1", "1 ", "+1", "01", "-0", "1.5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set = cmd_set("s", bad[i], 1, 0);
        apply(store, 10 + 2 * i, &set);
        result = apply(store, 11 + 2 * i, &(kv_cmd){.op = KV_OP_INCR, .now_ms = 1, .key = S("s"),
                                                     .delta = 1});
        assert_int_equal(result.status, KV_ST_NOT_INTEGER);
    }
    set = cmd_set("big", "9223372036854775807", 1, 0);
    apply(store, 100, &set);
    incr = cmd_key(KV_OP_INCR, "big", 1);
    assert_int_equal(apply(store, 101, &incr).status, KV_ST_OVERFLOW);
    set = cmd_set("small", "-9223372036854775808", 1, 0);
    apply(store, 102, &set);
    incr = cmd_key(KV_OP_INCR, "small", 1);
    incr.delta = -1;
    assert_int_equal(apply(store, 103, &incr).status, KV_ST_OVERFLOW);
    incr.delta = 1;
    assert_int_equal(apply(store, 104, &incr).integer, INT64_MIN + 1);
    kv_store_free(store);
}

static void applyExpire(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_cmd expire = cmd_key(KV_OP_EXPIRE, "k", 1000);
    expire.deadline_ms = 5000;
    assert_int_equal(apply(store, 1, &expire).status, KV_ST_NOT_FOUND);
    kv_cmd set = cmd_set("k", "v", 1000, 0);
    apply(store, 2, &set);
    kv_result result = apply(store, 3, &expire);
    assert_int_equal(result.status, KV_ST_OK);
    assert_int_equal(result.count, 1);
    assert_int_equal(kv_ttl_ms(store, (const uint8_t *)"k", 1, 1000), 4000);
    assert_value(store, "k", 1000, "v", 3);
    expire.deadline_ms = 0; /* remove the expiry */
    apply(store, 4, &expire);
    assert_int_equal(kv_ttl_ms(store, (const uint8_t *)"k", 1, 1000), -1);
    expire.deadline_ms = 1000; /* a deadline not after the entry's time deletes the key */
    assert_int_equal(apply(store, 5, &expire).status, KV_ST_OK);
    assert_int_equal(kv_ttl_ms(store, (const uint8_t *)"k", 1, 0), -2);
    kv_stats stats;
    kv_get_stats(store, &stats);
    assert_int_equal(stats.keys, 0);
    kv_store_free(store);
}

/* ---- expiry ---------------------------------------------------------------------------------- */

static void expiredKeyInvisibleToReadersAtOnce(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    uint64_t now = 1000;
    kv_cmd set = cmd_set("k", "v", now, kv_deadline_from_seconds(now, 5));
    apply(store, 1, &set);
    assert_value(store, "k", 5999, "v", 1);
    assert_int_equal(kv_ttl_ms(store, (const uint8_t *)"k", 1, 5999), 1);
    assert_missing(store, "k", 6000);
    assert_int_equal(kv_ttl_ms(store, (const uint8_t *)"k", 1, 6000), -2);
    /* a reader's clock never frees it: the log has not expired it yet (apply clock 1000) */
    kv_stats stats;
    kv_get_stats(store, &stats);
    assert_int_equal(stats.keys, 1);
    /* a set with a deadline already passed at its entry time leaves nothing behind */
    set = cmd_set("gone", "v", 2000, 1500);
    assert_int_equal(apply(store, 2, &set).status, KV_ST_OK);
    assert_missing(store, "gone", 0);
    kv_store_free(store);
}

/*
 * The leader proposes at t=1000 a key expiring in 10 s and, at t=9000, a CAS on it. Replica B
 * applies both entries an hour later (its clock says 3,601,000): it must decide exactly as the
 * leader did, because the decisions use the entries' times, and both must then agree on every read.
 */
static void replicaApplyingLaterAgrees(void **state)
{
    (void)state;
    kv_store *leader = kv_store_new(NULL), *replica = kv_store_new(NULL);
    kv_cmd set = cmd_set("k", "v", 1000, kv_deadline_from_seconds(1000, 10));
    kv_cmd cas = cmd_set("k", "w", 9000, kv_deadline_from_seconds(1000, 10));
    cas.op = KV_OP_CAS;
    cas.expected_version = 1;
    kv_cmd incr = cmd_key(KV_OP_INCR, "k", 12000); /* after the deadline: k is gone, INCR -> 1 */
    kv_store *stores[2] = {leader, replica};
    kv_result results[2][3];
    for (int s = 0; s < 2; s++) {
        results[s][0] = apply(stores[s], 1, &set);
        if (s == 0) assert_value(leader, "k", 9000, "v", 1);
        results[s][1] = apply(stores[s], 2, &cas);
        if (s == 0) assert_value(leader, "k", 9000, "w", 2);
        results[s][2] = apply(stores[s], 3, &incr);
    }
    assert_int_equal(results[1][1].status, KV_ST_OK); /* not NOT_FOUND despite the late clock */
    assert_int_equal(results[1][2].status, KV_ST_OK);
    assert_int_equal(results[1][2].integer, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(results[0][i].status, results[1][i].status);
        assert_int_equal(results[0][i].version, results[1][i].version);
        assert_int_equal(results[0][i].integer, results[1][i].integer);
    }
    uint64_t probes[] = {0, 10999, 11000, 3601000};
    for (size_t i = 0; i < 4; i++) {
        kv_view a, b;
        bool found_a = kv_get(leader, (const uint8_t *)"k", 1, probes[i], &a);
        bool found_b = kv_get(replica, (const uint8_t *)"k", 1, probes[i], &b);
        assert_int_equal(found_a, found_b);
        assert_true(found_a);
        assert_int_equal(a.version, b.version);
        assert_int_equal(a.deadline_ms, b.deadline_ms);
    }
    kv_store_free(leader);
    kv_store_free(replica);
}

/* A new leader whose clock is behind must not resurrect a key the log already expired. */
static void applyClockNeverGoesBack(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_cmd set = cmd_set("k", "v", 1000, 2000);
    apply(store, 1, &set);
    kv_cmd tick = {.op = KV_OP_TICK, .now_ms = 3000};
    apply(store, 2, &tick);
    kv_cmd cas = cmd_set("k", "w", 1500, 0); /* proposed by a leader whose clock lags */
    cas.op = KV_OP_CAS;
    cas.expected_version = 1;
    assert_int_equal(apply(store, 3, &cas).status, KV_ST_NOT_FOUND);
    kv_stats stats;
    kv_get_stats(store, &stats);
    assert_int_equal(stats.apply_clock, 3000);
    kv_store_free(store);
}

static void expiredMemoryIsReclaimedLazilyAndBySweep(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        kv_cmd set = cmd_set(key, "value", 100, i < 600 ? 500 : 0);
        apply(store, (uint64_t)i + 1, &set);
    }
    kv_stats stats;
    kv_get_stats(store, &stats);
    assert_int_equal(stats.keys, 1000);
    size_t bytes_before = stats.bytes;
    kv_cmd tick = {.op = KV_OP_TICK, .now_ms = 600};
    apply(store, 2000, &tick);
    assert_missing(store, "k0", 600); /* lazy: the access reclaims it */
    kv_get_stats(store, &stats);
    assert_int_equal(stats.keys, 999);
    size_t total = 1, rounds = 0;
    while (stats.keys > 400) {
        total += kv_expire_sweep(store, 8);
        kv_get_stats(store, &stats);
        assert_true(++rounds < 100000);
    }
    assert_int_equal(total, 600);
    assert_int_equal(stats.keys, 400);
    assert_true(stats.bytes < bytes_before);
    assert_value(store, "k999", 600, "value", 1000);
    /* the sweep never frees what the log has not expired */
    assert_int_equal(kv_expire_sweep(store, 100000), 0);
    kv_store_free(store);
}

/* ---- hash table ------------------------------------------------------------------------------ */

static void incrementalResizeWithManyKeys(void **state)
{
    (void)state;
    kv_config config = {.initial_buckets = 0, .hash_seed = 12345};
    kv_store *store = kv_store_new(&config);
    enum { N = 100000 };
    char key[32], value[32];
    int resizes_seen = 0;
    size_t last_buckets = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        snprintf(value, sizeof value, "v%d", i);
        kv_cmd set = cmd_set(key, value, 1, 0);
        apply(store, (uint64_t)i + 1, &set);
        kv_stats stats;
        kv_get_stats(store, &stats);
        if (stats.resizing) {
            resizes_seen++;
            /* while buckets move, every key stays reachable */
            if (i % 97 == 0) {
                int probe = i / 2;
                snprintf(key, sizeof key, "key:%d", probe);
                snprintf(value, sizeof value, "v%d", probe);
                assert_value(store, key, 1, value, (uint64_t)probe + 1);
            }
        }
        assert_true(stats.buckets >= last_buckets / 2);
        last_buckets = stats.buckets;
    }
    assert_true(resizes_seen > 1000); /* resizes were spread over many operations */
    kv_stats stats;
    kv_get_stats(store, &stats);
    assert_int_equal(stats.keys, N);
    assert_true(stats.buckets >= N / 2);
    for (int i = 0; i < N; i += 7) {
        snprintf(key, sizeof key, "key:%d", i);
        snprintf(value, sizeof value, "v%d", i);
        assert_value(store, key, 1, value, (uint64_t)i + 1);
    }
    /* deleting almost everything shrinks the table, incrementally too */
    uint64_t index = N + 1;
    for (int i = 0; i < N - 100; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        kv_pair del = {S(key), {0}, 0};
        kv_cmd cmd = cmd_delete(&del, 1, 1);
        assert_int_equal(apply(store, index++, &cmd).status, KV_ST_DELETED);
    }
    for (int i = 0; i < 1000; i++) kv_get(store, (const uint8_t *)"x", 1, 1, NULL);
    kv_get_stats(store, &stats);
    assert_int_equal(stats.keys, 100);
    assert_true(stats.buckets <= 1024);
    for (int i = N - 100; i < N; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        snprintf(value, sizeof value, "v%d", i);
        assert_value(store, key, 1, value, (uint64_t)i + 1);
    }
    kv_store_free(store);
}

/* MSET entries of 1024 new keys each: the table must keep up with the count (a resize step per
 * insertion, not per entry), or every lookup walks chains of hundreds of items. */
static void bulkMsetKeepsTheTableSized(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    enum { ENTRIES = 200, PER = 1024 };
    static char keys[PER][16];
    kv_pair pairs[PER];
    for (int e = 0; e < ENTRIES; e++) {
        for (int i = 0; i < PER; i++) {
            snprintf(keys[i], sizeof keys[i], "k%d", e * PER + i);
            pairs[i] = (kv_pair){S(keys[i]), S("v"), 0};
        }
        kv_cmd mset = cmd_delete(pairs, PER, 1);
        mset.op = KV_OP_MSET;
        size_t size = kv_cmd_encoded_size(&mset);
        uint8_t *bytes = malloc(size);
        assert_non_null(bytes);
        assert_true(kv_cmd_encode(&mset, bytes, size) > 0);
        kv_result result;
        assert_int_equal(kv_apply(store, (uint64_t)e + 1, bytes, size, &result), KV_OK);
        assert_int_equal(result.status, KV_ST_OK);
        free(bytes);
        kv_stats stats;
        kv_get_stats(store, &stats);
        /* at most a few keys per bucket (a resize doubles once the count reaches the size) */
        assert_true(stats.keys <= 4 * stats.buckets);
    }
    kv_stats stats;
    kv_get_stats(store, &stats);
    assert_int_equal(stats.keys, ENTRIES * PER);
    assert_value(store, "k0", 1, "v", 1);
    assert_value(store, "k204799", 1, "v", ENTRIES);
    kv_store_free(store);
}

/* ---- snapshots ------------------------------------------------------------------------------- */

typedef struct image_entry {
    bool present;
    char value[64];
    size_t value_len;
    uint64_t version;
    uint64_t deadline;
} image_entry;

enum { UNIVERSE = 3000 };

static void capture(kv_store *store, image_entry *image)
{
    char key[32];
    for (int i = 0; i < UNIVERSE; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        kv_view view;
        image[i].present = kv_get(store, (const uint8_t *)key, strlen(key), 0, &view);
        if (image[i].present) {
            assert_true(view.value_len <= sizeof image[i].value);
            memcpy(image[i].value, view.value, view.value_len);
            image[i].value_len = view.value_len;
            image[i].version = view.version;
            image[i].deadline = view.deadline_ms;
        }
    }
}

static uint64_t rng_next(uint64_t *seed)
{
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    return *seed;
}

/* One random write over the key universe; returns the index it used. */
static void random_write(kv_store *store, uint64_t *seed, uint64_t index, uint64_t now)
{
    char key[32], value[64];
    int k = (int)(rng_next(seed) % UNIVERSE);
    snprintf(key, sizeof key, "key:%d", k);
    snprintf(value, sizeof value, "w%llu\r\n", (unsigned long long)index);
    kv_cmd cmd = cmd_set(key, value, now, 0);
    switch (rng_next(seed) % 5) {
    case 0: break;
    case 1: cmd.deadline_ms = now + rng_next(seed) % 50; break;
    case 2: {
        kv_pair del = {S(key), {0}, 0};
        kv_cmd d = cmd_delete(&del, 1, now);
        apply(store, index, &d);
        return;
    }
    case 3: cmd.op = KV_OP_EXPIRE; cmd.deadline_ms = now + rng_next(seed) % 50; break;
    default: cmd.op = KV_OP_INCR; cmd.delta = 1; break;
    }
    apply(store, index, &cmd);
}

static void assert_image_equal(kv_store *store, const image_entry *image)
{
    image_entry now[UNIVERSE];
    capture(store, now);
    for (int i = 0; i < UNIVERSE; i++) {
        assert_int_equal(now[i].present, image[i].present);
        if (!image[i].present) continue;
        assert_int_equal(now[i].value_len, image[i].value_len);
        assert_memory_equal(now[i].value, image[i].value, image[i].value_len);
        assert_int_equal(now[i].version, image[i].version);
        assert_int_equal(now[i].deadline, image[i].deadline);
    }
}

static void snapshotWhileApplyingRestoresPointInTime(void **state)
{
    (void)state;
    for (uint64_t round = 1; round <= 6; round++) {
        uint64_t seed = 0x9e3779b97f4a7c15ull * round;
        kv_store *store = kv_store_new(NULL);
        uint64_t index = 1, now = 1000;
        for (int i = 0; i < 2000; i++) random_write(store, &seed, index++, now++);
        static image_entry image[UNIVERSE];
        capture(store, image);
        kv_stats stats;
        kv_get_stats(store, &stats);
        uint64_t snap_index = stats.applied_index;

        kv_snapshot *snap = NULL;
        assert_int_equal(kv_snapshot_begin(store, &snap), KV_OK);
        kv_snapshot *second = NULL;
        assert_int_equal(kv_snapshot_begin(store, &second), KV_EBUSY);
        assert_int_equal(kv_snapshot_index(snap), snap_index);

        uint8_t *bytes = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
            uint8_t chunk[160];
            size_t want = 1 + rng_next(&seed) % (round == 1 ? 1 : sizeof chunk);
            size_t n = kv_snapshot_next(snap, chunk, want);
            if (n == 0) break;
            assert_true(n <= want);
            if (len + n > cap) {
                cap = (len + n) * 2;
                bytes = realloc(bytes, cap);
                assert_non_null(bytes);
            }
            memcpy(bytes + len, chunk, n);
            len += n;
            /* the store keeps serving writes (and sweeps) between chunks */
            int writes = (int)(rng_next(&seed) % 4);
            for (int w = 0; w < writes; w++) random_write(store, &seed, index++, now++);
            if (rng_next(&seed) % 8 == 0) kv_expire_sweep(store, 16);
        }
        kv_snapshot_end(snap);
        kv_get_stats(store, &stats);
        assert_int_equal(stats.snapshot_preimages, 0);

        /* restore, fed in uneven pieces, equals the state at begin */
        kv_store *restored = kv_store_new(NULL);
        kv_restore *restore = kv_restore_begin(NULL);
        size_t off = 0;
        while (off < len) {
            size_t piece = 1 + rng_next(&seed) % 300;
            if (piece > len - off) piece = len - off;
            assert_int_equal(kv_restore_feed(restore, bytes + off, piece), KV_OK);
            off += piece;
        }
        assert_int_equal(kv_restore_finish(restore, restored), KV_OK);
        kv_restore_free(restore);
        assert_int_equal(kv_applied_index(restored), snap_index);
        assert_image_equal(restored, image);
        /* the restored store keeps applying */
        random_write(restored, &seed, snap_index + 1, now);
        free(bytes);
        kv_store_free(restored);
        kv_store_free(store);
    }
}

/*
 * Two replicas apply the same random log (clocks that jump back on "failovers", expiries, deletes,
 * INCRs); one of them also serves reads with its own, much later clock and runs sweeps between
 * entries. Their logical states must be identical at every probe time.
 */
static void replicasAgreeWhateverTheirReadsAndSweeps(void **state)
{
    (void)state;
    uint64_t seed_a = 77, seed_b = 77, reads = 12345;
    kv_store *a = kv_store_new(NULL);
    kv_store *b = kv_store_new(&(kv_config){.hash_seed = 999}); /* another seed, another layout */
    uint64_t now = 10000;
    for (uint64_t index = 1; index <= 20000; index++) {
        if (index % 1000 == 0) now -= 300; /* a new leader whose clock lags */
        now += 1;
        random_write(a, &seed_a, index, now);
        random_write(b, &seed_b, index, now);
        char key[32];
        snprintf(key, sizeof key, "key:%d", (int)(rng_next(&reads) % UNIVERSE));
        kv_get(b, (const uint8_t *)key, strlen(key), now + 100000, NULL);
        if (index % 7 == 0) kv_expire_sweep(b, 5);
    }
    static image_entry image_a[UNIVERSE], image_b[UNIVERSE];
    kv_stats stats;
    kv_get_stats(a, &stats);
    uint64_t probes[] = {0, stats.apply_clock, stats.apply_clock + 20, stats.apply_clock + 100};
    int present = 0;
    for (size_t p = 0; p < 4; p++) {
        char key[32];
        for (int i = 0; i < UNIVERSE; i++) {
            snprintf(key, sizeof key, "key:%d", i);
            kv_view va, vb;
            bool in_a = kv_get(a, (const uint8_t *)key, strlen(key), probes[p], &va);
            bool in_b = kv_get(b, (const uint8_t *)key, strlen(key), probes[p], &vb);
            assert_int_equal(in_a, in_b);
            if (!in_a) continue;
            present++;
            assert_int_equal(va.version, vb.version);
            assert_int_equal(va.deadline_ms, vb.deadline_ms);
            assert_int_equal(va.value_len, vb.value_len);
            assert_memory_equal(va.value, vb.value, va.value_len);
        }
    }
    assert_true(present > 100); /* the comparison saw real data */
    capture(a, image_a);
    capture(b, image_b);
    assert_memory_equal(image_a, image_b, sizeof image_a);
    kv_store_free(a);
    kv_store_free(b);
}

static size_t snapshot_all(kv_store *store, uint8_t *buf, size_t cap)
{
    kv_snapshot *snap = NULL;
    assert_int_equal(kv_snapshot_begin(store, &snap), KV_OK);
    size_t len = 0, n;
    while ((n = kv_snapshot_next(snap, buf + len, cap - len)) > 0) len += n;
    assert_true(len < cap);
    kv_snapshot_end(snap);
    return len;
}

static int restore_bytes(kv_store *into, const uint8_t *bytes, size_t len)
{
    kv_restore *restore = kv_restore_begin(NULL);
    assert_non_null(restore);
    int rc = kv_restore_feed(restore, bytes, len);
    if (rc == KV_OK) rc = kv_restore_finish(restore, into);
    if (rc != KV_OK) assert_true(strstr(kv_restore_error(restore), "snapshot byte") != NULL);
    kv_restore_free(restore);
    return rc;
}

static void restoreRejectsDamage(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_cmd set = cmd_set("a", "1", 10, 0);
    apply(store, 1, &set);
    set = cmd_set("bb", "binary\r\n\0", 10, 99999);
    apply(store, 2, &set);
    uint8_t buf[4096];
    size_t len = snapshot_all(store, buf, sizeof buf);
    assert_int_equal(len, 32 + 2 * 22 + 1 + 1 + 2 + 8 + 4); /* format 1: no sessions */

    kv_store *target = kv_store_new(NULL);
    kv_cmd other = cmd_set("other", "x", 1, 0);
    apply(target, 1, &other);
    for (size_t i = 0; i < len; i++) { /* any flipped bit is caught, target untouched */
        buf[i] ^= 0x10;
        assert_int_not_equal(restore_bytes(target, buf, len), KV_OK);
        buf[i] ^= 0x10;
    }
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(restore_bytes(target, buf, cut), KV_ECORRUPT);
    buf[len] = 0;
    assert_int_equal(restore_bytes(target, buf, len + 1), KV_ECORRUPT);
    assert_value(target, "other", 1, "x", 1);
    assert_int_equal(kv_applied_index(target), 1);

    /* the intact bytes restore, replacing what target held */
    assert_int_equal(restore_bytes(target, buf, len), KV_OK);
    assert_missing(target, "other", 1);
    assert_value(target, "bb", 1, "binary\r\n", 2); /* strlen stops at \0: compare prefix */
    kv_stats stats;
    kv_get_stats(target, &stats);
    assert_int_equal(stats.keys, 2);
    assert_int_equal(stats.apply_clock, 10);

    /* restoring into a store with an open snapshot is refused */
    kv_snapshot *snap = NULL;
    assert_int_equal(kv_snapshot_begin(target, &snap), KV_OK);
    assert_int_equal(restore_bytes(target, buf, len), KV_EBUSY);
    kv_snapshot_end(snap);

    /* an empty store round-trips too */
    kv_store *empty = kv_store_new(NULL);
    len = snapshot_all(empty, buf, sizeof buf);
    assert_int_equal(len, 36);
    assert_int_equal(restore_bytes(target, buf, len), KV_OK);
    kv_get_stats(target, &stats);
    assert_int_equal(stats.keys, 0);
    kv_store_free(empty);
    kv_store_free(target);
    kv_store_free(store);
}

static void freeingStoreEndsOpenSnapshot(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_cmd set = cmd_set("a", "1", 10, 0);
    apply(store, 1, &set);
    kv_snapshot *snap = NULL;
    assert_int_equal(kv_snapshot_begin(store, &snap), KV_OK);
    uint8_t buf[40];
    assert_int_equal(kv_snapshot_next(snap, buf, 40), 40); /* mid-record */
    set = cmd_set("a", "2", 10, 0);
    apply(store, 2, &set); /* retires the item being serialized: pinned, not freed */
    kv_get_stats(store, &(kv_stats){0});
    kv_store_free(store); /* ASan reports any leak or double free here */
}

/* Reflected CRC-32 (IEEE), as the snapshot trailer uses. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

/* Fast-path sessions: REGISTER opens one at its index; a fast write applies once per (session,
 * seq), never for an unknown session; sessions survive a snapshot. */
static void sessionsSkipDuplicatesAndSurviveSnapshots(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_cmd reg = {.op = KV_OP_REGISTER, .now_ms = 5};
    kv_result res = apply(store, 3, &reg);
    assert_int_equal(res.status, KV_ST_OK);
    assert_int_equal(res.version, 3);
    uint64_t seq = 99;
    assert_true(kv_session_seq(store, 3, &seq) && seq == 0);
    assert_false(kv_session_seq(store, 4, &seq));

    uint8_t bytes[256];
    kv_cmd set = cmd_set("k", "one", 6, 0);
    long len = kv_cmd_encode(&set, bytes, sizeof bytes);
    assert_true(len > 0);
    assert_int_equal(kv_apply_fast(store, 4, 3, 1, bytes, (size_t)len, &res), KV_OK);
    assert_int_equal(res.status, KV_ST_OK);
    assert_value(store, "k", 10, "one", 4);
    set = cmd_set("k", "two", 7, 0);
    len = kv_cmd_encode(&set, bytes, sizeof bytes);
    /* the same seq again (a recovery appended it twice), an older one, an unknown session */
    assert_int_equal(kv_apply_fast(store, 5, 3, 1, bytes, (size_t)len, &res), KV_OK);
    assert_int_equal(res.status, KV_ST_SKIPPED);
    assert_int_equal(kv_apply_fast(store, 6, 9, 5, bytes, (size_t)len, &res), KV_OK);
    assert_int_equal(res.status, KV_ST_SKIPPED);
    assert_value(store, "k", 10, "one", 4);
    assert_int_equal(kv_applied_index(store), 6);
    assert_int_equal(kv_apply_fast(store, 6, 3, 2, bytes, (size_t)len, &res), KV_EINVAL);
    assert_int_equal(kv_apply_fast(store, 7, 3, 2, bytes, (size_t)len, &res), KV_OK);
    assert_value(store, "k", 10, "two", 7);

    uint8_t buf[4096];
    size_t n = snapshot_all(store, buf, sizeof buf);
    assert_int_equal(n, 40 + 22 + 1 + 3 + 16 + 4);
    kv_store *copy = kv_store_new(NULL);
    assert_int_equal(restore_bytes(copy, buf, n), KV_OK);
    assert_true(kv_session_seq(copy, 3, &seq) && seq == 2);
    assert_int_equal(kv_session_count(copy), 1);
    assert_int_equal(kv_apply_fast(copy, 8, 3, 2, bytes, (size_t)len, &res), KV_OK);
    assert_int_equal(res.status, KV_ST_SKIPPED);
    /* a damaged session record is caught (ids must increase: id 0 is not one) */
    memset(buf + n - 4 - 16, 0, 8);
    uint32_t crc = crc32_ieee(buf, n - 4);
    memcpy(buf + n - 4, &crc, 4); /* little-endian host */
    assert_int_equal(restore_bytes(copy, buf, n), KV_ECORRUPT);
    kv_store_free(copy);
    kv_store_free(store);
}

/* UNREGISTER closes a session: its later fast writes are skipped, closing it again finds
 * nothing, other sessions stay; the command encodes and decodes (session 0 is no session). */
static void unregisterClosesASession(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_cmd reg = {.op = KV_OP_REGISTER, .now_ms = 5};
    apply(store, 1, &reg);
    apply(store, 2, &reg);
    uint8_t bytes[256];
    kv_cmd unreg = {.op = KV_OP_UNREGISTER, .now_ms = 6, .session = 1};
    long len = kv_cmd_encode(&unreg, bytes, sizeof bytes);
    assert_int_equal(len, 1 + 1 + 1 + 8 + 8);
    kv_cmd back;
    assert_int_equal(kv_cmd_decode(bytes, (size_t)len, &back), KV_OK);
    assert_int_equal(back.op, KV_OP_UNREGISTER);
    assert_int_equal(back.session, 1);
    assert_int_equal(kv_cmd_decode(bytes, (size_t)len - 1, &back), KV_EINVAL);
    kv_result res = apply(store, 3, &unreg);
    assert_int_equal(res.status, KV_ST_OK);
    uint64_t seq;
    assert_false(kv_session_seq(store, 1, &seq));
    assert_true(kv_session_seq(store, 2, &seq));
    assert_int_equal(kv_session_count(store), 1);
    res = apply(store, 4, &unreg);
    assert_int_equal(res.status, KV_ST_NOT_FOUND);
    kv_cmd set = cmd_set("k", "v", 7, 0);
    len = kv_cmd_encode(&set, bytes, sizeof bytes);
    assert_int_equal(kv_apply_fast(store, 5, 1, 1, bytes, (size_t)len, &res), KV_OK);
    assert_int_equal(res.status, KV_ST_SKIPPED);
    assert_int_equal(kv_apply_fast(store, 6, 2, 1, bytes, (size_t)len, &res), KV_OK);
    assert_int_equal(res.status, KV_ST_OK);
    kv_cmd none = {.op = KV_OP_UNREGISTER, .session = 0};
    assert_int_equal(kv_cmd_encoded_size(&none), 0);
    kv_store_free(store);
}

/* A store without sessions writes format 1, which older versions read, and it restores. */
static void restoresVersion1Snapshots(void **state)
{
    (void)state;
    kv_store *store = kv_store_new(NULL);
    kv_cmd set = cmd_set("a", "1", 10, 0);
    apply(store, 1, &set);
    uint8_t buf[4096];
    size_t n = snapshot_all(store, buf, sizeof buf);
    assert_int_equal(buf[4], 1);
    assert_int_equal(n, 32 + 22 + 1 + 1 + 4);
    kv_store *copy = kv_store_new(NULL);
    assert_int_equal(restore_bytes(copy, buf, n), KV_OK);
    assert_value(copy, "a", 10, "1", 1);
    assert_int_equal(kv_session_count(copy), 0);
    buf[4] = 3; /* an unknown version is refused */
    assert_int_equal(restore_bytes(copy, buf, n), KV_ECORRUPT);
    kv_store_free(copy);
    kv_store_free(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keyValidEnforcesSeedLimits),
        cmocka_unit_test(cmdRoundTripsEveryOp),
        cmocka_unit_test(cmdRejectsBadFields),
        cmocka_unit_test(deadlineHelpersSaturate),
        cmocka_unit_test(applySetVersionIsLogIndex),
        cmocka_unit_test(applySetNxXx),
        cmocka_unit_test(applyCasChecksVersion),
        cmocka_unit_test(applyDeleteAndMset),
        cmocka_unit_test(applyIncr),
        cmocka_unit_test(applyExpire),
        cmocka_unit_test(expiredKeyInvisibleToReadersAtOnce),
        cmocka_unit_test(replicaApplyingLaterAgrees),
        cmocka_unit_test(applyClockNeverGoesBack),
        cmocka_unit_test(expiredMemoryIsReclaimedLazilyAndBySweep),
        cmocka_unit_test(incrementalResizeWithManyKeys),
        cmocka_unit_test(bulkMsetKeepsTheTableSized),
        cmocka_unit_test(snapshotWhileApplyingRestoresPointInTime),
        cmocka_unit_test(replicasAgreeWhateverTheirReadsAndSweeps),
        cmocka_unit_test(restoreRejectsDamage),
        cmocka_unit_test(sessionsSkipDuplicatesAndSurviveSnapshots),
        cmocka_unit_test(unregisterClosesASession),
        cmocka_unit_test(restoresVersion1Snapshots),
        cmocka_unit_test(freeingStoreEndsOpenSnapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
