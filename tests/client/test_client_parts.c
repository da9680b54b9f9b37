/*
 * test_client_parts.c -- the raftkv client's pure parts: --cluster specs and peers files
 * (endpoints.h), RAFTKV.MEMBER LIST lines and list merging (endpoints.h), INFO parsing (info.h),
 * request encoding and key rules (txt.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "endpoints.h"
#include "info.h"
#include "txt.h"

static void clusterSpecHostsPortsAndIds(void **state)
{
    (void)state;
    ep_list list;
    char err[256];
    assert_int_equal(ep_parse_cluster("a:1,[::1]:7001:7101,10.0.0.2:65535", &list, err, sizeof err),
                     EP_OK);
    assert_int_equal(list.count, 3);
    assert_string_equal(list.nodes[0].host, "a");
    assert_int_equal(list.nodes[0].client_port, 1);
    assert_int_equal(list.nodes[0].resp_port, 0);
    assert_string_equal(list.nodes[1].host, "::1");
    assert_int_equal(list.nodes[1].client_port, 7001);
    assert_int_equal(list.nodes[1].resp_port, 7101);
    assert_int_equal(list.nodes[2].id, 3);
    ep_list_free(&list);
}

static void clusterSpecRejectsMalformedEntries(void **state)
{
    (void)state;
    static const char *const bad[] = {"", ",", "host", "host:", ":1", "h:0", "h:65536", "h:1x",
                                      "[::1]7001", "[::1:7001", "h:1:2:3", "h:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ep_list list;
        char err[256] = "";
        assert_int_equal(ep_parse_cluster(bad[i], &list, err, sizeof err), EP_EINVAL);
        assert_non_null(strstr(err, "--cluster"));
        assert_null(list.nodes);
    }
}

static void peersFileNamesTheBadField(void **state)
{
    (void)state;
    ep_list list;
    char err[256];
    const char *good = "[{\"id\": 2, \"host\": \"h\", \"peer_port\": 3, \"client_port\": 4, "
                       "\"resp_port\": 5}]";
    assert_int_equal(ep_parse_peers_json(good, "p.json", &list, err, sizeof err), EP_OK);
    assert_int_equal(list.nodes[0].id, 2);
    assert_int_equal(list.nodes[0].resp_port, 5);
    ep_list_free(&list);

    struct {
        const char *json, *expect;
    } cases[] = {
        {"[{\"id\": 1, \"host\": \"h\"}]", "p.json: entry 1: client_port: missing"},
        {"[{\"id\": 1, \"host\": \"h\", \"client_port\": 70000}]", "entry 1: client_port"},
        {"[{\"id\": 1, \"host\": \"h\", \"client_port\": 1}, {\"id\": 1, \"host\": \"h\", "
         "\"client_port\": 2}]",
         "entry 2: id: 1 is used twice"},
        {"[{\"id\": 1, \"host\": 5, \"client_port\": 1}]", "entry 1: host"},
        {"[]", "0 peers"},
        {"{\"x\": 1}", "expected a JSON array"},
        {"[{\"id\": 1,", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        assert_int_equal(ep_parse_peers_json(cases[i].json, "p.json", &list, err, sizeof err),
                         EP_EINVAL);
        if (!strstr(err, cases[i].expect)) fail_msg("case %zu: got '%s'", i, err);
    }
}

static void infoRaftSectionParsed(void **state)
{
    (void)state;
    /* Redis' replication section comes after ours: its role:master must not override. */
    const char *text = "# Server\r\nredis_version:7\r\n\r\n"
                       "# Raft\r\nnode_id:3\r\nrole:follower\r\nterm:12\r\nleader:1\r\n"
                       "commit:340\r\napplied:338\r\npeer_1:match=0,connected=1\r\n\r\n"
                       "# Replication\r\nrole:master\r\n";
    info_state st;
    info_parse(text, strlen(text), &st);
    assert_true(st.has_id && st.has_role && st.has_term && st.has_leader && st.has_commit &&
                st.has_applied);
    assert_int_equal(st.id, 3);
    assert_string_equal(st.role, "follower"); /* not Redis' role:master */
    assert_int_equal(st.term, 12);
    assert_int_equal(st.leader, 1);
    assert_int_equal(st.commit, 340);
    assert_int_equal(st.applied, 338);
    assert_false(info_is_leader(&st));
    assert_false(st.has_voter); /* no voters: line */

    /* voters: may come before the id; 13 is not 3 */
    info_parse("# Raft\r\nvoters:1,13,2\r\nnode_id:3\r\n", 34, &st);
    assert_true(st.has_voter);
    assert_false(st.voter);
    info_parse("# Raft\r\nnode_id:13\r\nvoters:1,13,2\r\n", 35, &st);
    assert_true(st.has_voter && st.voter);
    assert_false(st.learner);
    /* learners: names the node a learner (before or after its id) */
    const char *l = "# Raft\r\nlearners:4,14\r\nnode_id:14\r\nvoters:1,2,3\r\n";
    info_parse(l, strlen(l), &st);
    assert_true(st.has_voter && !st.voter && st.learner);
    l = "# Raft\r\nnode_id:1\r\nvoters:1,2,3\r\nlearners:14\r\n";
    info_parse(l, strlen(l), &st);
    assert_true(st.voter && !st.learner);
}

static void infoToleratesMissingAndOddFields(void **state)
{
    (void)state;
    const char *text = "role:leader\nraft_role:leader\nraft_current_term:4\n# Raft\n"
                       "leader:none\ncommit:notanumber\n";
    info_state st;
    info_parse(text, strlen(text), &st);
    assert_true(info_is_leader(&st));
    assert_int_equal(st.term, 4);
    assert_true(st.has_leader);
    assert_int_equal(st.leader, 0);
    assert_false(st.has_commit);
    assert_false(st.has_applied);
    assert_false(st.has_id);

    info_parse("", 0, &st);
    assert_false(st.has_role);
    assert_false(info_is_leader(&st));
}

static void keysFollowTheServerRules(void **state)
{
    (void)state;
    char key[260];
    memset(key, 'k', 250);
    key[250] = '\0';
    assert_true(txt_key_valid(key));
    key[250] = 'k';
    key[251] = '\0';
    assert_false(txt_key_valid(key));
    assert_false(txt_key_valid(""));
    assert_false(txt_key_valid("a b"));
    assert_false(txt_key_valid("a\x7f"));
    assert_true(txt_key_valid("caf\xc3\xa9")); /* UTF-8 bytes are fine */
}

static void requestsEncodeExactly(void **state)
{
    (void)state;
    uint8_t *wire;
    size_t len;
    char err[256];
    txt_req set = {.op = TXT_SET, .key = "k", .value = (const uint8_t *)"a\r\nb", .value_len = 4,
                   .exptime = 9};
    assert_int_equal(txt_encode(&set, &wire, &len, err, sizeof err), TXT_OK);
    assert_int_equal(len, strlen("set k 9 4\r\na\r\nb\r\n"));
    assert_memory_equal(wire, "set k 9 4\r\na\r\nb\r\n", len);
    free(wire);

    txt_req cas = {.op = TXT_CAS, .key = "k", .value = (const uint8_t *)"", .version = 18446744073709551615u};
    assert_int_equal(txt_encode(&cas, &wire, &len, err, sizeof err), TXT_OK);
    assert_memory_equal(wire, "cas k 0 18446744073709551615 0\r\n\r\n", len);
    free(wire);

    txt_pair pairs[] = {{"a", (const uint8_t *)"1", 1}, {"b", (const uint8_t *)"xy", 2}};
    txt_req mset = {.op = TXT_MSET, .n = 2, .pairs = pairs, .exptime = 5};
    assert_int_equal(txt_encode(&mset, &wire, &len, err, sizeof err), TXT_OK);
    assert_memory_equal(wire, "mset 2\r\na 5 1\r\n1\r\nb 5 2\r\nxy\r\n", len);
    free(wire);

    const char *keys[] = {"a", "b c"};
    txt_req mget = {.op = TXT_MGET, .n = 2, .keys = keys};
    assert_int_equal(txt_encode(&mget, &wire, &len, err, sizeof err), TXT_EPROTO);
    assert_non_null(strstr(err, "invalid key 'b c'"));
    txt_req none = {.op = TXT_MGET, .n = 0, .keys = keys};
    assert_int_equal(txt_encode(&none, &wire, &len, err, sizeof err), TXT_EPROTO);
}

static void memberListParsedAndMerged(void **state)
{
    (void)state;
    ep_list members;
    bool voter[EP_MAX_NODES];
    const char *text = "1 127.0.0.1:7201 client=7001 resp=7101 voter\n"
                       "4 ::1:7204 client=7004 resp=7104 not-voter\n"
                       "5 127.0.0.1:7205 client=7005 resp=7105 learner\n"
                       "(a change is not committed yet)\n";
    assert_int_equal(ep_parse_member_list(text, &members, voter), EP_OK);
    assert_int_equal(members.count, 3);
    assert_int_equal(members.nodes[2].id, 5);
    assert_false(voter[2]); /* a learner does not vote */
    assert_true(members.ids_known);
    assert_int_equal(members.nodes[1].id, 4);
    assert_string_equal(members.nodes[1].host, "::1"); /* split at the last colon */
    assert_int_equal(members.nodes[1].peer_port, 7204);
    assert_int_equal(members.nodes[1].resp_port, 7104);
    assert_true(voter[0]);
    assert_false(voter[1]);
    static const char *const bad[] = {"", "(only a remark)\n", "x 127.0.0.1:1 client=2 resp=3 voter",
                                      "1 127.0.0.1:1 client=2 resp=3 maybe",
                                      "1 127.0.0.1:0 client=2 resp=3 voter", "1 :1 client=2 resp=3 voter",
                                      "1 127.0.0.1 client=2 resp=3 voter",
                                      "-1 127.0.0.1:1 client=2 resp=3 voter",
                                      "12x 127.0.0.1:1 client=2 resp=3 voter",
                                      "1 127.0.0.1:1 client=2 resp=3 voter extra"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ep_list none;
        assert_int_equal(ep_parse_member_list(bad[i], &none, NULL), EP_EINVAL);
    }

    /* A peers file of node 1 only, then the cluster's list: nodes 4 and 5 are added, node 1 is
     * not duplicated; to a --cluster list (ids 1..n, hosts as typed) nothing is added. */
    ep_list file;
    char err[256];
    assert_int_equal(ep_parse_peers_json("[{\"id\": 1, \"host\": \"127.0.0.1\", \"peer_port\": 7201, "
                                         "\"client_port\": 7001, \"resp_port\": 7101}]",
                                         "p.json", &file, err, sizeof err), EP_OK);
    assert_int_equal(ep_list_merge(&file, &members), 2);
    assert_int_equal(file.count, 3);
    assert_int_equal(file.nodes[1].id, 4);
    assert_int_equal(file.nodes[2].id, 5);
    ep_list_free(&file);
    ep_list spec;
    assert_int_equal(ep_parse_cluster("[::1]:7004,127.0.0.1:9", &spec, err, sizeof err), EP_OK);
    assert_false(spec.ids_known);
    assert_int_equal(ep_list_merge(&spec, &members), 0);
    assert_int_equal(spec.count, 2);
    ep_list_free(&spec);
    ep_list_free(&members);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clusterSpecHostsPortsAndIds),
        cmocka_unit_test(clusterSpecRejectsMalformedEntries),
        cmocka_unit_test(peersFileNamesTheBadField),
        cmocka_unit_test(infoRaftSectionParsed),
        cmocka_unit_test(infoToleratesMissingAndOddFields),
        cmocka_unit_test(keysFollowTheServerRules),
        cmocka_unit_test(requestsEncodeExactly),
        cmocka_unit_test(memberListParsedAndMerged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
