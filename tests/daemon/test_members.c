/*
 * test_members.c -- the replicated address book (src/server/members.h): round trips, every
 * refusal of decode, merging, and the snapshot framing with a damaged book.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "members.h"

static node_peer peer(raft_id id, const char *host, uint16_t base)
{
    node_peer p;
    memset(&p, 0, sizeof p);
    p.id = id;
    snprintf(p.host, sizeof p.host, "%s", host);
    p.peer_port = base;
    p.client_port = (uint16_t)(base + 1);
    p.resp_port = (uint16_t)(base + 2);
    return p;
}

static void test_round_trip(void **state)
{
    (void)state;
    node_peer in[3] = {peer(1, "10.0.0.1", 7000), peer(7, "db-7.example", 7100),
                       peer(1ull << 53, "::1", 65533)};
    in[1].given = true;
    uint8_t buf[MEMBERS_MAX_BYTES];
    size_t len = members_encode(in, 3, buf, sizeof buf);
    assert_int_equal(len, 2 + 3 * 16 + 8 + 12 + 3);
    assert_int_equal(buf[0], 2);
    node_peer out[RAFT_MAX_NODES];
    uint32_t n = 0;
    char err[160];
    assert_int_equal(members_decode(buf, len, out, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(out[i].id, in[i].id);
        assert_string_equal(out[i].host, in[i].host);
        assert_int_equal(out[i].peer_port, in[i].peer_port);
        assert_int_equal(out[i].client_port, in[i].client_port);
        assert_int_equal(out[i].resp_port, in[i].resp_port);
        assert_true(out[i].spare); /* a book says where, not who votes */
        assert_int_equal(out[i].given, i == 1);
    }
    /* Too small a buffer, and a buffer of exactly the size. */
    assert_int_equal(members_encode(in, 3, buf, len - 1), 0);
    assert_int_equal(members_encode(in, 3, buf, len), len);
}

static void test_encode_refuses(void **state)
{
    (void)state;
    uint8_t buf[MEMBERS_MAX_BYTES];
    node_peer p[2] = {peer(1, "a", 10), peer(1, "b", 20)};
    assert_int_equal(members_encode(p, 2, buf, sizeof buf), 0); /* the same id twice */
    assert_int_equal(members_encode(p, 0, buf, sizeof buf), 0);
    node_peer bad = peer(2, "has space", 10);
    assert_false(members_peer_valid(&bad));
    assert_int_equal(members_encode(&bad, 1, buf, sizeof buf), 0);
    bad = peer(2, "h", 10);
    bad.resp_port = 0;
    assert_false(members_peer_valid(&bad));
    bad = peer(0, "h", 10);
    assert_false(members_peer_valid(&bad));
    bad = peer((1ull << 53) + 1, "h", 10);
    assert_false(members_peer_valid(&bad));
    bad = peer(3, "", 10);
    assert_false(members_peer_valid(&bad));
}

static void expect_decode_error(const uint8_t *buf, size_t len, const char *want)
{
    node_peer out[RAFT_MAX_NODES];
    uint32_t n = 99;
    char err[160] = "";
    assert_int_equal(members_decode(buf, len, out, &n, err, sizeof err), -1);
    assert_int_equal(n, 0);
    if (strstr(err, want) == NULL)
        fail_msg("error %s does not name %s", err, want);
}

static void test_decode_refuses(void **state)
{
    (void)state;
    node_peer in[2] = {peer(1, "host1", 7000), peer(2, "host2", 7100)};
    uint8_t buf[MEMBERS_MAX_BYTES], bad[MEMBERS_MAX_BYTES + 8];
    size_t len = members_encode(in, 2, buf, sizeof buf);
    assert_true(len > 0);
    expect_decode_error(buf, 1, "too short");
    memcpy(bad, buf, len);
    bad[0] = 3;
    expect_decode_error(bad, len, "version 3");
    memcpy(bad, buf, len);
    bad[2 + 14] = 0x82; /* flags this build does not know */
    expect_decode_error(bad, len, "unknown flags");
    memcpy(bad, buf, len);
    bad[1] = 0;
    expect_decode_error(bad, len, "0 nodes");
    bad[1] = RAFT_MAX_NODES + 1;
    expect_decode_error(bad, len, "17 nodes");
    for (size_t cut = 2; cut < len; cut++) /* every truncation is refused */
        expect_decode_error(buf, cut, "node");
    memcpy(bad, buf, len);
    bad[len] = 0;
    expect_decode_error(bad, len + 1, "after the last node");
    memcpy(bad, buf, len);
    bad[2 + 15] = 0; /* first host length 0 */
    expect_decode_error(bad, len, "host length 0");
    memcpy(bad, buf, len);
    memset(bad + 2, 0, 8); /* id 0 */
    expect_decode_error(bad, len, "not valid");
    memcpy(bad, buf, len);
    bad[2 + 16] = ' '; /* a space in the first host */
    expect_decode_error(bad, len, "not valid");
    memcpy(bad, buf, len);
    bad[2 + 16 + 2] = '\0'; /* a NUL inside the first host would shorten it: found by fuzzing */
    expect_decode_error(bad, len, "not valid");
    memcpy(bad, buf, len);
    memcpy(bad + 2 + 16 + 5, bad + 2, 8); /* second id = first id */
    expect_decode_error(bad, len, "listed twice");
}

/* Version 1 (no flags byte), as written before the given flag, still reads. */
static void test_decode_version1(void **state)
{
    (void)state;
    static const uint8_t v1[] = {1, 1, 9, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x27, 0x11, 0x27, 0x12, 0x27,
                                 3, 'a', 'b', 'c'};
    node_peer out[RAFT_MAX_NODES];
    uint32_t n = 0;
    char err[160];
    assert_int_equal(members_decode(v1, sizeof v1, out, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, 9);
    assert_int_equal(out[0].peer_port, 10000);
    assert_int_equal(out[0].resp_port, 10002);
    assert_string_equal(out[0].host, "abc");
    assert_false(out[0].given);
}

static void test_merge(void **state)
{
    (void)state;
    node_peer into[RAFT_MAX_NODES] = {peer(1, "a", 10), peer(3, "c", 30), peer(5, "e", 50)};
    uint32_t n = 3;
    node_peer from[3] = {peer(4, "d", 40), peer(3, "elsewhere", 99), peer(2, "b", 20)};
    node_peer added[RAFT_MAX_NODES];
    assert_int_equal(members_merge(into, &n, from, 3, added), 2);
    assert_int_equal(n, 5);
    for (uint32_t i = 0; i < 5; i++) /* in id order */
        assert_int_equal(into[i].id, i + 1);
    assert_string_equal(into[2].host, "c"); /* a known node keeps its address */
    assert_int_equal(added[0].id, 4);
    assert_int_equal(added[1].id, 2);
    assert_true(into[1].spare && into[3].spare);
    assert_int_equal(members_merge(into, &n, from, 3, NULL), 0); /* nothing new */
    /* Too many: nothing is added. */
    node_peer many[RAFT_MAX_NODES];
    for (uint32_t i = 0; i < RAFT_MAX_NODES; i++)
        many[i] = peer(100 + i, "x", 10);
    assert_int_equal(members_merge(into, &n, many, RAFT_MAX_NODES, NULL), -1);
    assert_int_equal(n, 5);
    assert_int_equal(members_merge(into, &n, many, RAFT_MAX_NODES - 5, NULL),
                     RAFT_MAX_NODES - 5);
    assert_int_equal(n, RAFT_MAX_NODES);
}

static void test_snap_framing(void **state)
{
    (void)state;
    node_peer in[2] = {peer(1, "host1", 7000), peer(4, "host4", 7400)};
    uint8_t buf[MEMBERS_SNAP_OVERHEAD + MEMBERS_MAX_BYTES + 16];
    size_t len = members_snap_encode(in, 2, buf, sizeof buf);
    assert_true(len > MEMBERS_SNAP_OVERHEAD);
    memcpy(buf + len, "RKVSdata", 8); /* the state machine follows */
    node_peer out[RAFT_MAX_NODES];
    uint32_t n;
    size_t used;
    char err[160] = "";
    assert_int_equal(members_snap_parse(buf, len + 8, out, &n, &used, err, sizeof err),
                     MEMBERS_SNAP_FOUND);
    assert_int_equal(used, len);
    assert_int_equal(n, 2);
    assert_int_equal(out[1].id, 4);
    /* A snapshot written before the book: its data starts with the state machine. */
    assert_int_equal(members_snap_parse(buf + len, 8, out, &n, &used, err, sizeof err),
                     MEMBERS_SNAP_ABSENT);
    assert_int_equal(used, 0);
    /* One flipped bit in the book: the checksum names it. */
    buf[10] ^= 1;
    assert_int_equal(members_snap_parse(buf, len + 8, out, &n, &used, err, sizeof err),
                     MEMBERS_SNAP_CORRUPT);
    assert_non_null(strstr(err, "checksum"));
    buf[10] ^= 1;
    /* Cut short: the length runs past what is there. */
    assert_int_equal(members_snap_parse(buf, len - 1, out, &n, &used, err, sizeof err),
                     MEMBERS_SNAP_CORRUPT);
    assert_int_equal(members_snap_parse(buf, 6, out, &n, &used, err, sizeof err),
                     MEMBERS_SNAP_CORRUPT);
    /* An absurd length. */
    buf[7] = 0x7f;
    assert_int_equal(members_snap_parse(buf, len + 8, out, &n, &used, err, sizeof err),
                     MEMBERS_SNAP_CORRUPT);
    assert_non_null(strstr(err, "book length"));
    assert_int_equal(members_snap_encode(in, 2, buf, 8), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_decode_refuses),
        cmocka_unit_test(test_decode_version1), cmocka_unit_test(test_merge),
        cmocka_unit_test(test_snap_framing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
