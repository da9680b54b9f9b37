/*
 * test_codec.c -- tests of src/raft/raft_codec.c: round trips of every message type and state
 * type, every truncation, every rejection rule with its error text, golden bytes of one message
 * (so an accidental format change fails here), and a seeded random-mutation loop that must never
 * crash (run it under ASan: decode reads an exact-size heap copy, so any over-read is caught).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft.h"
#include "raft_codec.h"

/* ---- helpers ---- */

static void assert_entry_equal(const raft_entry *a, const raft_entry *b) {
    assert_int_equal(a->term, b->term);
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->len, b->len);
    if (a->len == 0) {
        assert_null(b->data);
    } else {
        assert_non_null(b->data);
        assert_memory_equal(a->data, b->data, a->len);
    }
}

static void assert_snapshot_equal(const raft_snapshot_meta *a, const raft_snapshot_meta *b) {
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->term, b->term);
    assert_int_equal(a->conf.n_voters, b->conf.n_voters);
    assert_int_equal(a->conf.n_learners, b->conf.n_learners);
    for (uint32_t i = 0; i < RAFT_MAX_NODES; i++) {
        assert_int_equal(i < a->conf.n_voters ? a->conf.voters[i] : 0, b->conf.voters[i]);
        assert_int_equal(i < a->conf.n_learners ? a->conf.learners[i] : 0, b->conf.learners[i]);
    }
}

static void assert_msg_equal(const raft_msg *a, const raft_msg *b) {
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->from, b->from);
    assert_int_equal(a->to, b->to);
    assert_int_equal(a->term, b->term);
    assert_int_equal(a->log_term, b->log_term);
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->commit, b->commit);
    assert_int_equal(a->reject, b->reject);
    assert_int_equal(a->hint_index, b->hint_index);
    assert_int_equal(a->hint_term, b->hint_term);
    assert_int_equal(a->context, b->context);
    assert_int_equal(a->n_entries, b->n_entries);
    for (uint32_t i = 0; i < a->n_entries; i++)
        assert_entry_equal(&a->entries[i], &b->entries[i]);
    if (a->n_entries == 0)
        assert_null(b->entries);
    assert_snapshot_equal(&a->snapshot, &b->snapshot);
}

/* Encodes into an exact-size heap buffer (so ASan sees any over-read by decode). */
static uint8_t *encode_msg(const raft_msg *m, size_t *len) {
    size_t size = raft_codec_msg_size(m);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    size_t written = 0;
    assert_int_equal(raft_codec_msg_encode(m, buf, size, &written), RAFT_OK);
    assert_int_equal(written, size);
    *len = size;
    return buf;
}

static const uint8_t binary_data[] = {0x00, 0xff, 0x00, 0x0a, 0x0d, 0x80, 0x7f, 0x00};
static uint8_t big_data[1000];

/* A message of `type` with every field set to something distinct. */
static raft_msg sample_msg(uint8_t type, const raft_entry *entries, uint32_t n_entries) {
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.from = 0x0102030405060708ull;
    m.to = 2;
    m.term = 0xfffffffffffffffeull;
    m.log_term = 41;
    m.index = 1000u + type;
    m.commit = 999;
    m.reject = (type % 2) == 0;
    m.hint_index = 77;
    m.hint_term = 40;
    m.context = 0xdeadbeefcafef00dull;
    m.n_entries = n_entries;
    m.entries = entries;
    m.snapshot.index = 500;
    m.snapshot.term = 39;
    m.snapshot.conf.n_voters = 3;
    m.snapshot.conf.voters[0] = 1;
    m.snapshot.conf.voters[1] = 2;
    m.snapshot.conf.voters[2] = UINT64_MAX;
    return m;
}

static const raft_entry sample_entries[] = {
    {.term = 5, .index = 10, .type = RAFT_ENTRY_NOOP, .len = 0, .data = NULL},
    {.term = 5, .index = 11, .type = RAFT_ENTRY_NORMAL, .len = sizeof binary_data,
     .data = binary_data},
    {.term = 6, .index = 12, .type = RAFT_ENTRY_NORMAL, .len = sizeof big_data, .data = big_data},
    {.term = 6, .index = 13, .type = RAFT_ENTRY_CONFIG, .len = 1, .data = binary_data + 1},
    {.term = 6, .index = 14, .type = RAFT_ENTRY_NORMAL, .len = 0, .data = NULL},
};
#define N_SAMPLE_ENTRIES ((uint32_t)(sizeof sample_entries / sizeof sample_entries[0]))

static void round_trip_msg(const raft_msg *m) {
    size_t len;
    uint8_t *buf = encode_msg(m, &len);
    raft_msg out;
    char err[128] = "untouched";
    assert_int_equal(raft_codec_msg_decode(buf, len, &out, err, sizeof err), RAFT_OK);
    assert_string_equal(err, "");
    assert_msg_equal(m, &out);
    /* Zero copy: entry data lies inside the encoded buffer. */
    for (uint32_t i = 0; i < out.n_entries; i++)
        if (out.entries[i].len > 0)
            assert_true(out.entries[i].data > buf && out.entries[i].data + out.entries[i].len <= buf + len);
    raft_codec_msg_release(&out);
    assert_null(out.entries);
    assert_int_equal(out.n_entries, 0);
    raft_codec_msg_release(&out); /* idempotent */
    free(buf);
}

/* ---- round trips ---- */

static void msg_round_trip_every_type_without_entries(void **state) {
    (void)state;
    for (uint8_t type = 1; type <= RAFT_MSG_TYPE_MAX; type++) {
        raft_msg m = sample_msg(type, NULL, 0);
        assert_int_equal(raft_codec_msg_size(&m), RAFT_CODEC_MSG_FIXED_SIZE + 3 * 8);
        round_trip_msg(&m);
    }
}

static void msg_round_trip_every_type_with_entries(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof big_data; i++)
        big_data[i] = (uint8_t)(i * 7 + 3);
    for (uint8_t type = 1; type <= RAFT_MSG_TYPE_MAX; type++) {
        raft_msg m = sample_msg(type, sample_entries, N_SAMPLE_ENTRIES);
        round_trip_msg(&m);
        /* One zero-length entry alone. */
        m = sample_msg(type, sample_entries, 1);
        round_trip_msg(&m);
    }
}

static void msg_round_trip_all_zero_and_full_conf(void **state) {
    (void)state;
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_HEARTBEAT;
    assert_int_equal(raft_codec_msg_size(&m), RAFT_CODEC_MSG_FIXED_SIZE);
    round_trip_msg(&m);

    m.type = RAFT_MSG_SNAPSHOT;
    m.snapshot.conf.n_voters = RAFT_MAX_NODES;
    for (uint32_t i = 0; i < RAFT_MAX_NODES; i++)
        m.snapshot.conf.voters[i] = 100 + i;
    assert_int_equal(raft_codec_msg_size(&m), RAFT_CODEC_MSG_FIXED_SIZE + 8 * RAFT_MAX_NODES);
    round_trip_msg(&m);
}

static void entry_round_trip(void **state) {
    (void)state;
    for (uint32_t i = 0; i < N_SAMPLE_ENTRIES; i++) {
        const raft_entry *e = &sample_entries[i];
        size_t size = raft_codec_entry_size(e);
        assert_int_equal(size, RAFT_CODEC_ENTRY_FIXED_SIZE + e->len);
        uint8_t *buf = malloc(size);
        assert_non_null(buf);
        size_t written = 0;
        assert_int_equal(raft_codec_entry_encode(e, buf, size, &written), RAFT_OK);
        assert_int_equal(written, size);
        raft_entry out;
        assert_int_equal(raft_codec_entry_decode(buf, size, &out, NULL, 0), RAFT_OK);
        assert_entry_equal(e, &out);
        if (e->len > 0)
            assert_ptr_equal(out.data, buf + RAFT_CODEC_ENTRY_FIXED_SIZE);
        free(buf);
    }
}

static void hard_state_round_trip(void **state) {
    (void)state;
    const raft_hard_state cases[] = {{0, 0, 0}, {7, 3, 1234}, {UINT64_MAX, UINT64_MAX, UINT64_MAX}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[RAFT_CODEC_HARD_STATE_SIZE];
        size_t written = 0;
        assert_int_equal(raft_codec_hard_state_encode(&cases[i], buf, sizeof buf, &written), RAFT_OK);
        assert_int_equal(written, RAFT_CODEC_HARD_STATE_SIZE);
        raft_hard_state out;
        assert_int_equal(raft_codec_hard_state_decode(buf, sizeof buf, &out, NULL, 0), RAFT_OK);
        assert_int_equal(out.term, cases[i].term);
        assert_int_equal(out.vote, cases[i].vote);
        assert_int_equal(out.commit, cases[i].commit);
    }
}

static void snapshot_meta_round_trip(void **state) {
    (void)state;
    const uint32_t voter_counts[] = {0, 1, 3, RAFT_MAX_NODES};
    for (size_t c = 0; c < sizeof voter_counts / sizeof voter_counts[0]; c++) {
        raft_snapshot_meta sm;
        memset(&sm, 0, sizeof sm);
        sm.index = 1u << 20;
        sm.term = 9;
        sm.conf.n_voters = voter_counts[c];
        for (uint32_t i = 0; i < sm.conf.n_voters; i++)
            sm.conf.voters[i] = (i + 1) * 0x0101010101010101ull;
        uint8_t buf[RAFT_CODEC_SNAPSHOT_META_MAX_SIZE];
        size_t size = raft_codec_snapshot_meta_size(&sm);
        assert_int_equal(size, RAFT_CODEC_SNAPSHOT_META_FIXED_SIZE + 8 * sm.conf.n_voters);
        size_t written = 0;
        assert_int_equal(raft_codec_snapshot_meta_encode(&sm, buf, sizeof buf, &written), RAFT_OK);
        assert_int_equal(written, size);
        raft_snapshot_meta out;
        memset(&out, 0xaa, sizeof out); /* decode must clear unused voter slots */
        assert_int_equal(raft_codec_snapshot_meta_decode(buf, size, &out, NULL, 0), RAFT_OK);
        assert_snapshot_equal(&sm, &out);
    }
}

/* Configuration entry data: round trip with and without context, every truncation refused, and
 * each invalid field named. */
static void conf_round_trip_and_rejects(void **state) {
    (void)state;
    raft_conf c = {.n_voters = 3, .voters = {7, 0x0102030405060708ull, 9}};
    uint8_t buf[256];
    size_t n = 0;
    assert_int_equal(raft_codec_conf_size(&c, 5), 6 + 24 + 5);
    assert_int_equal(raft_codec_conf_encode(&c, "hello", 5, buf, 10, &n), RAFT_ETOOBIG);
    assert_int_equal(n, 35);
    assert_int_equal(raft_codec_conf_encode(&c, "hello", 5, buf, sizeof buf, &n), RAFT_OK);
    raft_conf out;
    const uint8_t *ctx;
    uint32_t ctx_len;
    char err[160];
    assert_int_equal(raft_codec_conf_decode(buf, n, &out, &ctx, &ctx_len, err, sizeof err), RAFT_OK);
    assert_int_equal(out.n_voters, 3);
    assert_memory_equal(out.voters, c.voters, 3 * sizeof(raft_id));
    assert_int_equal(ctx_len, 5);
    assert_memory_equal(ctx, "hello", 5);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(raft_codec_conf_decode(buf, cut, &out, &ctx, &ctx_len, NULL, 0),
                         RAFT_ECORRUPT);
    assert_int_equal(raft_codec_conf_encode(&c, NULL, 0, buf, sizeof buf, &n), RAFT_OK);
    assert_int_equal(raft_codec_conf_decode(buf, n, &out, &ctx, &ctx_len, NULL, 0), RAFT_OK);
    assert_null(ctx);
    assert_int_equal(ctx_len, 0);

    uint8_t bad[64];
    memcpy(bad, buf, n);
    bad[1] = 0;
    assert_int_equal(raft_codec_conf_decode(bad, n, &out, &ctx, &ctx_len, err, sizeof err),
                     RAFT_ECORRUPT);
    assert_non_null(strstr(err, "conf.n_voters=0"));
    memcpy(bad, buf, n);
    memset(bad + 2 + 8, 0, 8); /* voters[1] = 0 */
    assert_int_equal(raft_codec_conf_decode(bad, n, &out, &ctx, &ctx_len, err, sizeof err),
                     RAFT_ECORRUPT);
    assert_non_null(strstr(err, "conf.voters[1]=0"));
    memcpy(bad, buf, n);
    memcpy(bad + 2 + 16, bad + 2, 8); /* voters[2] = voters[0] */
    assert_int_equal(raft_codec_conf_decode(bad, n, &out, &ctx, &ctx_len, err, sizeof err),
                     RAFT_ECORRUPT);
    assert_non_null(strstr(err, "listed twice"));
    memcpy(bad, buf, n);
    bad[n] = 'x'; /* a trailing byte the context length does not cover */
    assert_int_equal(raft_codec_conf_decode(bad, n + 1, &out, &ctx, &ctx_len, err, sizeof err),
                     RAFT_ECORRUPT);
    assert_non_null(strstr(err, "conf.ctx_len=0"));
    raft_conf dup = {.n_voters = 2, .voters = {4, 4}}, none = {.n_voters = 0};
    raft_conf many = {.n_voters = RAFT_MAX_NODES + 1};
    assert_int_equal(raft_codec_conf_encode(&dup, NULL, 0, buf, sizeof buf, &n), RAFT_EINVAL);
    assert_int_equal(raft_codec_conf_encode(&none, NULL, 0, buf, sizeof buf, &n), RAFT_EINVAL);
    assert_int_equal(raft_codec_conf_encode(&many, NULL, 0, buf, sizeof buf, &n), RAFT_EINVAL);
    assert_int_equal(raft_codec_conf_encode(&c, NULL, 3, buf, sizeof buf, &n), RAFT_EINVAL);
}

/* ---- learners ---- */

static raft_conf conf_of(uint32_t n_voters, const raft_id *v, uint32_t n_learners, const raft_id *l) {
    raft_conf c;
    memset(&c, 0, sizeof c);
    c.n_voters = n_voters;
    c.n_learners = n_learners;
    for (uint32_t i = 0; i < n_voters; i++)
        c.voters[i] = v[i];
    for (uint32_t i = 0; i < n_learners; i++)
        c.learners[i] = l[i];
    return c;
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A configuration with learners round-trips in the version-2 layout (version, n_voters,
 * n_learners, voters, learners, ctx_len, ctx); every truncation is refused. */
static void conf_with_learners_round_trips_as_version_2(void **state) {
    (void)state;
    const raft_id v[] = {7, 0x0102030405060708ull, 9}, l[] = {10, UINT64_MAX};
    raft_conf c = conf_of(3, v, 2, l);
    assert_true(raft_codec_conf_valid(&c));
    size_t size = raft_codec_conf_size(&c, 2);
    assert_int_equal(size, 7 + 8 * (3 + 2) + 2);
    uint8_t buf[256];
    size_t n = 0;
    assert_int_equal(raft_codec_conf_encode(&c, "hi", 2, buf, sizeof buf, &n), RAFT_OK);
    assert_int_equal(n, size);
    uint8_t expect[7 + 8 * 5 + 2];
    expect[0] = 2;
    expect[1] = 3;
    expect[2] = 2;
    for (int i = 0; i < 3; i++)
        put_le64(expect + 3 + 8 * i, v[i]);
    for (int i = 0; i < 2; i++)
        put_le64(expect + 27 + 8 * i, l[i]);
    expect[43] = 2, expect[44] = 0, expect[45] = 0, expect[46] = 0;
    expect[47] = 'h', expect[48] = 'i';
    assert_int_equal(sizeof expect, size);
    assert_memory_equal(buf, expect, size);
    raft_conf out;
    memset(&out, 0xaa, sizeof out); /* unused slots must decode as 0 */
    const uint8_t *ctx;
    uint32_t ctx_len;
    assert_int_equal(raft_codec_conf_decode(buf, n, &out, &ctx, &ctx_len, NULL, 0), RAFT_OK);
    assert_int_equal(out.n_voters, 3);
    assert_int_equal(out.n_learners, 2);
    for (uint32_t i = 0; i < RAFT_MAX_NODES; i++) {
        assert_int_equal(out.voters[i], i < 3 ? v[i] : 0);
        assert_int_equal(out.learners[i], i < 2 ? l[i] : 0);
    }
    assert_int_equal(ctx_len, 2);
    assert_memory_equal(ctx, "hi", 2);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(raft_codec_conf_decode(buf, cut, &out, &ctx, &ctx_len, NULL, 0),
                         RAFT_ECORRUPT);
    /* 1 voter and 15 learners: the most there can be */
    raft_conf full = conf_of(1, v, 0, NULL);
    for (uint32_t i = 0; i < RAFT_MAX_NODES - 1; i++)
        full.learners[full.n_learners++] = 100 + i;
    assert_int_equal(raft_codec_conf_encode(&full, NULL, 0, buf, sizeof buf, &n), RAFT_OK);
    assert_int_equal(n, 7 + 8 * RAFT_MAX_NODES);
    assert_int_equal(raft_codec_conf_decode(buf, n, &out, &ctx, &ctx_len, NULL, 0), RAFT_OK);
    assert_int_equal(out.n_learners, RAFT_MAX_NODES - 1);
    assert_int_equal(out.learners[RAFT_MAX_NODES - 2], 100 + RAFT_MAX_NODES - 2);
}

/* Without learners the bytes are exactly what every release before learners wrote (version 1,
 * 6 + 8n + ctx), so older nodes still read them. */
static void conf_without_learners_is_the_version_1_layout(void **state) {
    (void)state;
    const raft_id v[] = {1, 0x0203};
    raft_conf c = conf_of(2, v, 0, NULL);
    uint8_t buf[64];
    size_t n = 0;
    assert_int_equal(raft_codec_conf_encode(&c, "ab", 2, buf, sizeof buf, &n), RAFT_OK);
    static const uint8_t golden[] = {
        0x01, 0x02,                   /* version 1, n_voters */
        0x01, 0, 0, 0, 0, 0, 0, 0,    /* voters[0] */
        0x03, 0x02, 0, 0, 0, 0, 0, 0, /* voters[1] */
        0x02, 0, 0, 0,                /* ctx_len */
        'a', 'b',
    };
    assert_int_equal(n, sizeof golden);
    assert_int_equal(raft_codec_conf_size(&c, 2), sizeof golden);
    assert_memory_equal(buf, golden, sizeof golden);
}

/* A version-2 configuration that breaks a rule is refused with the field named: a learner that is
 * a voter, a learner twice, learner id 0, n_learners 0 (version 2 means learners), more than 16
 * members; version 3 is unknown. encode refuses the same configurations. */
static void conf_decode_rejects_bad_learners(void **state) {
    (void)state;
    const raft_id v[] = {1, 2, 3}, l[] = {4, 5};
    raft_conf c = conf_of(3, v, 2, l);
    uint8_t buf[128], bad[128];
    size_t n = 0;
    assert_int_equal(raft_codec_conf_encode(&c, NULL, 0, buf, sizeof buf, &n), RAFT_OK);
    const size_t learners_at = 3 + 8 * 3;
    raft_conf out;
    const uint8_t *ctx;
    uint32_t ctx_len;
    char err[160];
    struct {
        size_t off;
        uint64_t value;
        size_t width;
        const char *want;
    } cases[] = {
        {learners_at + 8, 2, 8, "conf.learners[1]=2 is listed twice"}, /* a voter too */
        {learners_at + 8, 4, 8, "conf.learners[1]=4 is listed twice"}, /* twice a learner */
        {learners_at, 0, 8, "conf.learners[0]=0 is not a node id"},
        {2, 0, 1, "conf.n_learners=0 is not in"},
        {2, RAFT_MAX_NODES - 3 + 1, 1, "conf.n_learners=14 is not in"},
        {0, 3, 1, "conf.version=3 unsupported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(bad, buf, n);
        if (cases[i].width == 8)
            put_le64(bad + cases[i].off, cases[i].value);
        else
            bad[cases[i].off] = (uint8_t)cases[i].value;
        err[0] = 0;
        assert_int_equal(raft_codec_conf_decode(bad, n, &out, &ctx, &ctx_len, err, sizeof err),
                         RAFT_ECORRUPT);
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
    }
    /* the learner count of version 2 in a version-1 header: the voters read as 3, then the
     * bytes no longer line up (not silently taken as learners) */
    memcpy(bad, buf, n);
    bad[0] = 1;
    assert_int_equal(raft_codec_conf_decode(bad, n, &out, &ctx, &ctx_len, NULL, 0), RAFT_ECORRUPT);

    const raft_id both[] = {3}, twice[] = {4, 4}, zero[] = {0}, v0[] = {0};
    raft_conf refused[] = {conf_of(3, v, 1, both), conf_of(3, v, 2, twice), conf_of(3, v, 1, zero),
                           conf_of(0, v0, 2, l), conf_of(3, v, 0, NULL)};
    for (raft_id id = 10; refused[4].n_learners < RAFT_MAX_NODES - 3 + 1; id++)
        refused[4].learners[refused[4].n_learners++] = id; /* 17 members */
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_false(raft_codec_conf_valid(&refused[i]));
        assert_int_equal(raft_codec_conf_encode(&refused[i], NULL, 0, buf, sizeof buf, &n),
                         RAFT_EINVAL);
    }
}

/* Snapshot metas with learners round-trip, alone and inside a message, and the size functions
 * count them (8 bytes each); encode refuses more than 16 members. */
static void snapshot_meta_with_learners_round_trips(void **state) {
    (void)state;
    const uint32_t shapes[][2] = {{1, 1}, {3, 2}, {1, RAFT_MAX_NODES - 1}, {RAFT_MAX_NODES - 1, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        raft_snapshot_meta sm;
        memset(&sm, 0, sizeof sm);
        sm.index = 77;
        sm.term = 5;
        sm.conf.n_voters = shapes[s][0];
        sm.conf.n_learners = shapes[s][1];
        for (uint32_t i = 0; i < sm.conf.n_voters; i++)
            sm.conf.voters[i] = 1 + i;
        for (uint32_t i = 0; i < sm.conf.n_learners; i++)
            sm.conf.learners[i] = 0x1000 + i;
        uint32_t members = sm.conf.n_voters + sm.conf.n_learners;
        uint8_t buf[RAFT_CODEC_SNAPSHOT_META_MAX_SIZE];
        size_t size = raft_codec_snapshot_meta_size(&sm), written = 0;
        assert_int_equal(size, RAFT_CODEC_SNAPSHOT_META_FIXED_SIZE + 8 * members);
        assert_int_equal(raft_codec_snapshot_meta_encode(&sm, buf, sizeof buf, &written), RAFT_OK);
        assert_int_equal(written, size);
        raft_snapshot_meta out;
        memset(&out, 0xaa, sizeof out);
        assert_int_equal(raft_codec_snapshot_meta_decode(buf, size, &out, NULL, 0), RAFT_OK);
        assert_snapshot_equal(&sm, &out);
        for (size_t cut = 0; cut < size; cut++)
            assert_int_equal(raft_codec_snapshot_meta_decode(buf, cut, &out, NULL, 0),
                             RAFT_ECORRUPT);

        raft_msg m = sample_msg(RAFT_MSG_SNAPSHOT, NULL, 0);
        m.snapshot = sm;
        assert_int_equal(raft_codec_msg_size(&m), RAFT_CODEC_MSG_FIXED_SIZE + 8 * members);
        round_trip_msg(&m);
        m = sample_msg(RAFT_MSG_APPEND, sample_entries, N_SAMPLE_ENTRIES);
        m.snapshot = sm;
        round_trip_msg(&m);
    }
    raft_snapshot_meta over;
    memset(&over, 0, sizeof over);
    over.index = 1;
    over.conf.n_voters = 10;
    over.conf.n_learners = RAFT_MAX_NODES - 10 + 1;
    uint8_t buf[512];
    size_t written;
    assert_int_equal(raft_codec_snapshot_meta_encode(&over, buf, sizeof buf, &written), RAFT_EINVAL);
    raft_msg m = sample_msg(RAFT_MSG_SNAPSHOT, NULL, 0);
    m.snapshot = over;
    assert_int_equal(raft_codec_msg_encode(&m, buf, sizeof buf, &written), RAFT_EINVAL);
}

/* The snapshot meta body of the format before learners (u32 n_voters, the voters) decodes the
 * same, and a meta without learners still encodes to those bytes; with learners, an old reader
 * would see a u32 above 16 and refuse it. A count of learners beyond 16 members is refused. */
static void snapshot_meta_old_format_decodes_the_same(void **state) {
    (void)state;
    uint8_t old[RAFT_CODEC_SNAPSHOT_META_FIXED_SIZE + 8 * 3];
    memset(old, 0, sizeof old);
    old[0] = 1;
    put_le64(old + 1, 1234);
    put_le64(old + 9, 6);
    old[17] = 3; /* u32 n_voters = 3 */
    const raft_id v[] = {4, 5, 0x0606060606060606ull};
    for (int i = 0; i < 3; i++)
        put_le64(old + 21 + 8 * i, v[i]);
    raft_snapshot_meta out;
    memset(&out, 0xaa, sizeof out);
    assert_int_equal(raft_codec_snapshot_meta_decode(old, sizeof old, &out, NULL, 0), RAFT_OK);
    raft_snapshot_meta want;
    memset(&want, 0, sizeof want);
    want.index = 1234;
    want.term = 6;
    want.conf = conf_of(3, v, 0, NULL);
    assert_snapshot_equal(&want, &out);
    uint8_t buf[RAFT_CODEC_SNAPSHOT_META_MAX_SIZE];
    size_t n = 0;
    assert_int_equal(raft_codec_snapshot_meta_encode(&want, buf, sizeof buf, &n), RAFT_OK);
    assert_int_equal(n, sizeof old);
    assert_memory_equal(buf, old, sizeof old);

    want.conf.learners[want.conf.n_learners++] = 9;
    assert_int_equal(raft_codec_snapshot_meta_encode(&want, buf, sizeof buf, &n), RAFT_OK);
    uint32_t old_count = (uint32_t)buf[17] | (uint32_t)buf[18] << 8 | (uint32_t)buf[19] << 16 |
                         (uint32_t)buf[20] << 24;
    assert_true(old_count > RAFT_MAX_NODES);

    buf[19] = RAFT_MAX_NODES - 3 + 1; /* n_learners 14 with 3 voters */
    char err[160];
    assert_int_equal(raft_codec_snapshot_meta_decode(buf, n, &out, err, sizeof err), RAFT_ECORRUPT);
    assert_string_equal(err, "snapshot_meta.conf.n_learners=14 exceeds RAFT_MAX_NODES - n_voters "
                             "13 at offset 19");
}

/* ---- golden bytes: any change here is a format change and needs RAFT_CODEC_VERSION + 1 ---- */

static void msg_golden_bytes(void **state) {
    (void)state;
    static const uint8_t data[] = {'s', 'e', 't', ' ', 'x'};
    const raft_entry entry = {.term = 3, .index = 8, .type = RAFT_ENTRY_NORMAL, .len = 5, .data = data};
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 0x0203;
    m.term = 3;
    m.log_term = 2;
    m.index = 7;
    m.commit = 6;
    m.reject = true; /* not meaningful for APPEND; here to pin the flag bit */
    m.context = 0x1122334455667788ull;
    m.snapshot.conf.n_voters = 1;
    m.snapshot.conf.voters[0] = 9;
    m.n_entries = 1;
    m.entries = &entry;
    static const uint8_t golden[] = {
        0x01, 0x01, 0x01,                               /* version, type APPEND, flags reject */
        0x01, 0, 0, 0, 0, 0, 0, 0,                      /* from */
        0x03, 0x02, 0, 0, 0, 0, 0, 0,                   /* to */
        0x03, 0, 0, 0, 0, 0, 0, 0,                      /* term */
        0x02, 0, 0, 0, 0, 0, 0, 0,                      /* log_term */
        0x07, 0, 0, 0, 0, 0, 0, 0,                      /* index */
        0x06, 0, 0, 0, 0, 0, 0, 0,                      /* commit */
        0, 0, 0, 0, 0, 0, 0, 0,                         /* hint_index */
        0, 0, 0, 0, 0, 0, 0, 0,                         /* hint_term */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* context */
        0, 0, 0, 0, 0, 0, 0, 0,                         /* snapshot.index */
        0, 0, 0, 0, 0, 0, 0, 0,                         /* snapshot.term */
        0x01, 0, 0, 0,                                  /* snapshot.conf.n_voters */
        0x09, 0, 0, 0, 0, 0, 0, 0,                      /* snapshot.conf.voters[0] */
        0x01, 0, 0, 0,                                  /* n_entries */
        0x03, 0, 0, 0, 0, 0, 0, 0,                      /* entries[0].term */
        0x08, 0, 0, 0, 0, 0, 0, 0,                      /* entries[0].index */
        0x01,                                           /* entries[0].type NORMAL */
        0x05, 0, 0, 0,                                  /* entries[0].len */
        's', 'e', 't', ' ', 'x',                        /* entries[0].data */
    };
    size_t len;
    uint8_t *buf = encode_msg(&m, &len);
    assert_int_equal(len, sizeof golden);
    assert_memory_equal(buf, golden, sizeof golden);
    free(buf);

    static const uint8_t hard_state_golden[] = {
        0x01, 0x05, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0, 0, 0, 0, 0, 0,
    };
    const raft_hard_state hs = {.term = 5, .vote = 2, .commit = 256};
    uint8_t hs_buf[RAFT_CODEC_HARD_STATE_SIZE];
    assert_int_equal(raft_codec_hard_state_encode(&hs, hs_buf, sizeof hs_buf, NULL), RAFT_OK);
    assert_memory_equal(hs_buf, hard_state_golden, sizeof hard_state_golden);
}

/* ---- rejections ---- */

static void decode_msg_expect(const uint8_t *buf, size_t len, const char *expected_err) {
    uint8_t *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, buf, len);
    raft_msg out;
    char err[160];
    assert_int_equal(raft_codec_msg_decode(copy, len, &out, err, sizeof err), RAFT_ECORRUPT);
    assert_string_equal(err, expected_err);
    assert_null(out.entries);
    assert_int_equal(out.n_entries, 0);
    assert_int_equal(out.type, 0);
    free(copy);
}

static void decode_rejects_bad_fields_with_named_errors(void **state) {
    (void)state;
    raft_msg m = sample_msg(RAFT_MSG_APPEND, sample_entries, 2);
    size_t len;
    uint8_t *buf = encode_msg(&m, &len);
    /* Layout: header 75, snapshot 20 + 3 voters = 44, n_entries at 119, entries from 123. */
    uint8_t *bad = malloc(len + 1);
    assert_non_null(bad);

    memcpy(bad, buf, len);
    bad[0] = 7;
    decode_msg_expect(bad, len, "msg.version=7 unsupported (this build reads 1) at offset 0");

    memcpy(bad, buf, len);
    bad[1] = 0;
    decode_msg_expect(bad, len, "msg.type=0 unknown (known: 1..13) at offset 1");
    bad[1] = 14;
    decode_msg_expect(bad, len, "msg.type=14 unknown (known: 1..13) at offset 1");

    memcpy(bad, buf, len);
    bad[2] = 0x03;
    decode_msg_expect(bad, len, "msg.flags=3 has reserved bits set (known: 0x01 reject) at offset 2");

    memcpy(bad, buf, len);
    bad[91] = 17;
    decode_msg_expect(bad, len, "msg.snapshot.conf.n_voters=17 exceeds RAFT_MAX_NODES 16 at offset 91");

    memcpy(bad, buf, len);
    bad[119] = 0x00, bad[120] = 0x09, bad[121] = 0x3d, bad[122] = 0x00; /* 4,000,000 */
    char expected[128];
    snprintf(expected, sizeof expected, "msg.n_entries=4000000 exceeds remaining %zu bytes at offset 119",
             len - 123);
    decode_msg_expect(bad, len, expected);

    /* 3 entries cannot fit in 50 bytes (each takes >= 21): refused before any allocation. */
    memcpy(bad, buf, len);
    bad[119] = 3, bad[120] = 0, bad[121] = 0, bad[122] = 0;
    decode_msg_expect(bad, len, "msg.n_entries=3 exceeds remaining 50 bytes at offset 119");

    memcpy(bad, buf, len);
    bad[123 + 16] = 5; /* entries[0].type */
    decode_msg_expect(bad, len,
                      "msg.entries[0].type=5 unknown (known: 0 noop, 1 normal, 2 config, 3 fast, "
                      "4 barrier) at offset 139");

    memcpy(bad, buf, len);
    bad[123 + 21 + 17] = 9; /* entries[1].len 8 -> 9: runs past the end by one */
    decode_msg_expect(bad, len, "msg.entries[1].len=9 exceeds remaining 8 bytes at offset 161");

    memcpy(bad, buf, len);
    bad[len] = 0;
    snprintf(expected, sizeof expected, "msg: 1 trailing bytes at offset %zu", len);
    decode_msg_expect(bad, len + 1, expected);

    decode_msg_expect(buf, 0, "msg.version truncated: needs 1 bytes, 0 remain at offset 0");
    decode_msg_expect(buf, 22, "msg.term truncated: needs 8 bytes, 3 remain at offset 19");
    decode_msg_expect(buf, 100, "msg.snapshot.conf.voters[0] truncated: needs 8 bytes, 5 remain at offset 95");
    free(bad);
    free(buf);

    /* The other decoders name their own root. */
    uint8_t hs[RAFT_CODEC_HARD_STATE_SIZE + 1] = {1};
    raft_hard_state hs_out;
    char err[128];
    assert_int_equal(raft_codec_hard_state_decode(hs, sizeof hs, &hs_out, err, sizeof err), RAFT_ECORRUPT);
    assert_string_equal(err, "hard_state: 1 trailing bytes at offset 25");
    hs[0] = 2;
    assert_int_equal(raft_codec_hard_state_decode(hs, 25, &hs_out, err, sizeof err), RAFT_ECORRUPT);
    assert_string_equal(err, "hard_state.version=2 unsupported (this build reads 1) at offset 0");
    uint8_t sm[RAFT_CODEC_SNAPSHOT_META_FIXED_SIZE] = {1};
    sm[18] = 0xff; /* n_voters = 0xff00 */
    raft_snapshot_meta sm_out;
    assert_int_equal(raft_codec_snapshot_meta_decode(sm, sizeof sm, &sm_out, err, sizeof err), RAFT_ECORRUPT);
    assert_string_equal(err, "snapshot_meta.conf.n_voters=65280 exceeds RAFT_MAX_NODES 16 at offset 17");
    uint8_t en[RAFT_CODEC_ENTRY_FIXED_SIZE] = {1};
    en[18] = 1; /* len = 1, no data follows */
    raft_entry e_out;
    assert_int_equal(raft_codec_entry_decode(en, sizeof en, &e_out, err, sizeof err), RAFT_ECORRUPT);
    assert_string_equal(err, "entry.len=1 exceeds remaining 0 bytes at offset 18");
}

static void decode_error_text_is_truncated_safely(void **state) {
    (void)state;
    uint8_t buf[1] = {9};
    raft_msg out;
    char err[8];
    memset(err, 'x', sizeof err);
    assert_int_equal(raft_codec_msg_decode(buf, 1, &out, err, sizeof err), RAFT_ECORRUPT);
    assert_string_equal(err, "msg.ver");
    assert_int_equal(raft_codec_msg_decode(buf, 1, &out, NULL, 0), RAFT_ECORRUPT);
}

/* Every proper prefix of a valid encoding is rejected cleanly, and nothing leaks (ASan). */
static void decode_rejects_every_truncation(void **state) {
    (void)state;
    raft_msg m = sample_msg(RAFT_MSG_APPEND, sample_entries, N_SAMPLE_ENTRIES);
    size_t len;
    uint8_t *buf = encode_msg(&m, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *prefix = malloc(cut > 0 ? cut : 1);
        assert_non_null(prefix);
        memcpy(prefix, buf, cut);
        raft_msg out;
        char err[160] = "";
        assert_int_equal(raft_codec_msg_decode(prefix, cut, &out, err, sizeof err), RAFT_ECORRUPT);
        assert_true(strstr(err, "truncated") != NULL || strstr(err, "exceeds remaining") != NULL);
        assert_null(out.entries);
        free(prefix);
    }
    free(buf);

    uint8_t entry_buf[64];
    size_t entry_len;
    assert_int_equal(raft_codec_entry_encode(&sample_entries[1], entry_buf, sizeof entry_buf, &entry_len), RAFT_OK);
    for (size_t cut = 0; cut < entry_len; cut++) {
        raft_entry out;
        assert_int_equal(raft_codec_entry_decode(entry_buf, cut, &out, NULL, 0), RAFT_ECORRUPT);
    }
    uint8_t hs_buf[RAFT_CODEC_HARD_STATE_SIZE];
    const raft_hard_state hs = {1, 2, 3};
    assert_int_equal(raft_codec_hard_state_encode(&hs, hs_buf, sizeof hs_buf, NULL), RAFT_OK);
    for (size_t cut = 0; cut < sizeof hs_buf; cut++) {
        raft_hard_state out;
        assert_int_equal(raft_codec_hard_state_decode(hs_buf, cut, &out, NULL, 0), RAFT_ECORRUPT);
    }
    raft_snapshot_meta sm = m.snapshot;
    uint8_t sm_buf[RAFT_CODEC_SNAPSHOT_META_MAX_SIZE];
    size_t sm_len;
    assert_int_equal(raft_codec_snapshot_meta_encode(&sm, sm_buf, sizeof sm_buf, &sm_len), RAFT_OK);
    for (size_t cut = 0; cut < sm_len; cut++) {
        raft_snapshot_meta out;
        assert_int_equal(raft_codec_snapshot_meta_decode(sm_buf, cut, &out, NULL, 0), RAFT_ECORRUPT);
    }
}

/* ---- encode errors ---- */

static void encode_rejects_what_decode_would_reject(void **state) {
    (void)state;
    uint8_t buf[512];
    size_t written = 99;
    raft_msg m = sample_msg(0, NULL, 0);
    assert_int_equal(raft_codec_msg_encode(&m, buf, sizeof buf, &written), RAFT_EINVAL);
    assert_int_equal(written, 0);
    m.type = RAFT_MSG_TYPE_MAX + 1;
    assert_int_equal(raft_codec_msg_encode(&m, buf, sizeof buf, &written), RAFT_EINVAL);
    m = sample_msg(RAFT_MSG_SNAPSHOT, NULL, 0);
    m.snapshot.conf.n_voters = RAFT_MAX_NODES + 1;
    assert_int_equal(raft_codec_msg_encode(&m, buf, sizeof buf, &written), RAFT_EINVAL);
    assert_int_equal(raft_codec_snapshot_meta_encode(&m.snapshot, buf, sizeof buf, &written), RAFT_EINVAL);
    m = sample_msg(RAFT_MSG_APPEND, NULL, 2); /* entries missing */
    assert_int_equal(raft_codec_msg_encode(&m, buf, sizeof buf, &written), RAFT_EINVAL);
    raft_entry bad_entries[2] = {sample_entries[1], sample_entries[1]};
    bad_entries[1].data = NULL;
    m = sample_msg(RAFT_MSG_APPEND, bad_entries, 2);
    assert_int_equal(raft_codec_msg_encode(&m, buf, sizeof buf, &written), RAFT_EINVAL);
    assert_int_equal(raft_codec_entry_encode(&bad_entries[1], buf, sizeof buf, &written), RAFT_EINVAL);
    bad_entries[1] = sample_entries[1];
    bad_entries[1].type = RAFT_ENTRY_BARRIER + 1;
    assert_int_equal(raft_codec_msg_encode(&m, buf, sizeof buf, &written), RAFT_EINVAL);
    assert_int_equal(raft_codec_entry_encode(&bad_entries[1], buf, sizeof buf, &written), RAFT_EINVAL);
}

static void encode_reports_needed_capacity(void **state) {
    (void)state;
    raft_msg m = sample_msg(RAFT_MSG_APPEND, sample_entries, 2);
    size_t size = raft_codec_msg_size(&m);
    uint8_t buf[256];
    memset(buf, 0x5a, sizeof buf);
    size_t written = 0;
    assert_int_equal(raft_codec_msg_encode(&m, buf, size - 1, &written), RAFT_ETOOBIG);
    assert_int_equal(written, size);
    assert_int_equal(buf[0], 0x5a); /* nothing written */
    assert_int_equal(raft_codec_msg_encode(&m, buf, size, NULL), RAFT_OK);
    const raft_hard_state hs = {1, 2, 3};
    assert_int_equal(raft_codec_hard_state_encode(&hs, buf, RAFT_CODEC_HARD_STATE_SIZE - 1, &written),
                     RAFT_ETOOBIG);
    assert_int_equal(written, RAFT_CODEC_HARD_STATE_SIZE);
    assert_int_equal(raft_codec_entry_encode(&sample_entries[2], buf, sizeof buf, &written), RAFT_ETOOBIG);
    assert_int_equal(written, RAFT_CODEC_ENTRY_FIXED_SIZE + sizeof big_data);
}

/* ---- seeded random mutation ---- */

static uint64_t rng_state;
static uint64_t rng_next(void) { /* xorshift64*: deterministic, no libc rand */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}
static size_t rng_below(size_t n) {
    return n == 0 ? 0 : (size_t)(rng_next() % n);
}

/* Mutates buf (capacity cap, current length *len) in place in one of several ways. */
static void mutate(uint8_t *buf, size_t *len, size_t cap) {
    size_t n = *len;
    switch (rng_below(7)) {
    case 0: /* flip one bit */
        if (n > 0)
            buf[rng_below(n)] ^= (uint8_t)(1u << rng_below(8));
        break;
    case 1: /* random byte */
        if (n > 0)
            buf[rng_below(n)] = (uint8_t)rng_next();
        break;
    case 2: /* truncate */
        *len = rng_below(n + 1);
        break;
    case 3: /* insert a byte */
        if (n < cap) {
            size_t at = rng_below(n + 1);
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = (uint8_t)rng_next();
            *len = n + 1;
        }
        break;
    case 4: /* delete a byte */
        if (n > 0) {
            size_t at = rng_below(n);
            memmove(buf + at, buf + at + 1, n - at - 1);
            *len = n - 1;
        }
        break;
    case 5: /* boundary value into a 4-byte window (counts and lengths) */
        if (n >= 4) {
            static const uint32_t values[] = {0, 1, 16, 17, 21, 0x7fffffff, 0xffffffff, 4000000};
            uint32_t v = values[rng_below(sizeof values / sizeof values[0])];
            size_t at = rng_below(n - 3);
            for (int i = 0; i < 4; i++)
                buf[at + (size_t)i] = (uint8_t)(v >> (8 * i));
        }
        break;
    default: /* small byte at a small offset: type/flags/version */
        if (n > 0)
            buf[rng_below(n < 4 ? n : 4)] = (uint8_t)rng_below(20);
        break;
    }
}

enum { MUTATION_ROUNDS = 20000 };

static void decode_survives_random_mutations(void **state) {
    (void)state;
    rng_state = 0x9e3779b97f4a7c15ull; /* fixed seed: failures replay */
    raft_msg seeds[5];
    seeds[0] = sample_msg(RAFT_MSG_APPEND, sample_entries, N_SAMPLE_ENTRIES);
    seeds[1] = sample_msg(RAFT_MSG_HEARTBEAT, NULL, 0);
    seeds[2] = sample_msg(RAFT_MSG_SNAPSHOT, NULL, 0);
    seeds[3] = sample_msg(RAFT_MSG_APPEND, sample_entries, 2);
    seeds[4] = sample_msg(RAFT_MSG_SNAPSHOT, NULL, 0); /* with learners */
    seeds[4].snapshot.conf.n_learners = 2;
    seeds[4].snapshot.conf.learners[0] = 8;
    seeds[4].snapshot.conf.learners[1] = 9;
    size_t decoded = 0, rejected = 0;
    enum { CAP = 2048 };
    uint8_t work[CAP];
    for (int round = 0; round < MUTATION_ROUNDS; round++) {
        const raft_msg *seed = &seeds[rng_below(sizeof seeds / sizeof seeds[0])];
        size_t len = raft_codec_msg_size(seed);
        assert_true(len <= CAP);
        assert_int_equal(raft_codec_msg_encode(seed, work, CAP, NULL), RAFT_OK);
        size_t n_mutations = 1 + rng_below(4);
        for (size_t i = 0; i < n_mutations; i++)
            mutate(work, &len, CAP);
        /* Exact-size heap copy so ASan flags any read past the end. */
        uint8_t *input = malloc(len > 0 ? len : 1);
        assert_non_null(input);
        memcpy(input, work, len);
        raft_msg out;
        char err[160];
        int rc = raft_codec_msg_decode(input, len, &out, err, sizeof err);
        if (rc == RAFT_OK) {
            decoded++;
            /* The format is canonical: whatever decodes re-encodes to the same bytes. */
            uint8_t again[CAP];
            size_t again_len = 0;
            assert_int_equal(raft_codec_msg_encode(&out, again, CAP, &again_len), RAFT_OK);
            assert_int_equal(again_len, len);
            assert_memory_equal(again, input, len);
            raft_codec_msg_release(&out);
        } else {
            rejected++;
            assert_int_equal(rc, RAFT_ECORRUPT);
            assert_true(strlen(err) > 0 && strstr(err, " at offset ") != NULL);
        }
        /* The other decoders read the same bytes too: they must not crash either. */
        raft_entry e;
        raft_hard_state hs;
        raft_snapshot_meta sm;
        (void)raft_codec_entry_decode(input, len, &e, NULL, 0);
        (void)raft_codec_hard_state_decode(input, len, &hs, NULL, 0);
        (void)raft_codec_snapshot_meta_decode(input, len, &sm, NULL, 0);
        free(input);
    }
    print_message("mutations: %zu decoded, %zu rejected\n", decoded, rejected);
    /* Both outcomes must occur, or the loop is not exercising the decoder. */
    assert_true(decoded > 100);
    assert_true(rejected > 100);
    assert_int_equal(decoded + rejected, MUTATION_ROUNDS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(msg_round_trip_every_type_without_entries),
        cmocka_unit_test(msg_round_trip_every_type_with_entries),
        cmocka_unit_test(msg_round_trip_all_zero_and_full_conf),
        cmocka_unit_test(entry_round_trip),
        cmocka_unit_test(hard_state_round_trip),
        cmocka_unit_test(snapshot_meta_round_trip),
        cmocka_unit_test(conf_round_trip_and_rejects),
        cmocka_unit_test(conf_with_learners_round_trips_as_version_2),
        cmocka_unit_test(conf_without_learners_is_the_version_1_layout),
        cmocka_unit_test(conf_decode_rejects_bad_learners),
        cmocka_unit_test(snapshot_meta_with_learners_round_trips),
        cmocka_unit_test(snapshot_meta_old_format_decodes_the_same),
        cmocka_unit_test(msg_golden_bytes),
        cmocka_unit_test(decode_rejects_bad_fields_with_named_errors),
        cmocka_unit_test(decode_error_text_is_truncated_safely),
        cmocka_unit_test(decode_rejects_every_truncation),
        cmocka_unit_test(encode_rejects_what_decode_would_reject),
        cmocka_unit_test(encode_reports_needed_capacity),
        cmocka_unit_test(decode_survives_random_mutations),
    };
    return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
