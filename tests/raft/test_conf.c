/*
 * test_conf.c -- membership change, one server at a time (thesis §4.1): who may propose a change
 * and when, a configuration in force from the moment it is in the log (and gone when truncated),
 * new voters counted in the quorum, removed ones not, a leader that removes itself, and the
 * configuration a restart or a snapshot reads back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "raft_codec.h"

static cx_ready rd;

static raft_conf voters(int n, const raft_id *ids)
{
    raft_conf c = {.n_voters = (uint32_t)n};
    for (int i = 0; i < n; i++)
        c.voters[i] = ids[i];
    return c;
}

static bool conf_is(const raft_conf *c, int n, const raft_id *ids)
{
    if (c->n_voters != (uint32_t)n)
        return false;
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (uint32_t j = 0; j < c->n_voters; j++)
            found |= c->voters[j] == ids[i];
        if (!found)
            return false;
    }
    return true;
}

static raft_config cluster_cfg(void)
{
    raft_config cfg;
    raft_config_default(&cfg);
    cfg.seed = 7;
    return cfg;
}

/* A three-node cluster with node 1 leading and its no-op committed. */
static void start3(fx *f, int n_nodes)
{
    raft_config cfg = cluster_cfg();
    fx_init_voters(f, n_nodes, 3, &cfg);
    assert_int_equal(fx_elect(f, 1), 1);
    assert_int_not_equal(fx_propose(f, "a"), 0);
}

/* A node outside the configuration is left alone; once added it catches up, and from then on
 * commits need it: with 4 voters, 2 of them down, nothing commits. */
static void addedVoterCatchesUpAndCounts(void **state)
{
    (void)state;
    fx f;
    start3(&f, 4);
    assert_int_equal(raft_last_index(fx_r(&f, 4)), 0);
    fx_tick_all(&f, 50);
    assert_int_equal(raft_get_stats(fx_r(&f, 4)).elections, 0);

    raft_id four[] = {1, 2, 3, 4};
    raft_conf next = voters(4, four);
    raft_index at = 0;
    assert_int_equal(raft_propose_conf(fx_r(&f, 1), &next, "addr", 4, &at, NULL), RAFT_OK);
    assert_true(conf_is(raft_get_conf(fx_r(&f, 1)), 4, four)); /* in force at once */
    fx_pump(&f);
    fx_tick_all(&f, 3);
    for (int id = 1; id <= 4; id++) {
        assert_true(conf_is(raft_get_conf(fx_r(&f, id)), 4, four));
        assert_true(raft_commit_index(fx_r(&f, id)) >= at);
    }
    const raft_entry *e = raft_entry_at(fx_r(&f, 4), at);
    assert_non_null(e);
    assert_int_equal(e->type, RAFT_ENTRY_CONFIG);
    raft_conf decoded;
    const uint8_t *ctx;
    uint32_t ctx_len;
    assert_int_equal(raft_codec_conf_decode(e->data, e->len, &decoded, &ctx, &ctx_len, NULL, 0),
                     RAFT_OK);
    assert_int_equal(ctx_len, 4);
    assert_memory_equal(ctx, "addr", 4);

    fx_crash(&f, 2);
    raft_index i1 = fx_propose(&f, "b");
    fx_tick_all(&f, 3);
    assert_true(raft_commit_index(fx_r(&f, 1)) >= i1); /* 1, 3, 4: a majority of 4 */
    fx_crash(&f, 3);
    raft_index i2 = fx_propose(&f, "c");
    fx_tick_all(&f, 3);
    assert_true(raft_commit_index(fx_r(&f, 1)) < i2); /* 1, 4: not a majority of 4 */
    fx_free(&f);
}

/* Removing a follower shrinks the quorum at once. The leader stops replicating to the removed
 * node, which never learns of its removal: its pre-votes (its log lacks the change) disturb
 * nobody, the leader and its term stay. */
static void removedFollowerDoesNotDisturb(void **state)
{
    (void)state;
    fx f;
    start3(&f, 3);
    raft_id two[] = {1, 2};
    raft_conf next = voters(2, two);
    assert_int_equal(raft_propose_conf(fx_r(&f, 1), &next, NULL, 0, NULL, NULL), RAFT_OK);
    fx_pump(&f);
    fx_tick_all(&f, 3);
    assert_true(conf_is(raft_get_conf(fx_r(&f, 2)), 2, two));
    raft_term term = raft_get_term(fx_r(&f, 1));
    fx_tick_all(&f, 100);
    assert_true(raft_get_stats(fx_r(&f, 3)).elections > 0);
    assert_int_equal(fx_leader(&f), 1);
    assert_int_equal(raft_get_term(fx_r(&f, 1)), term);
    fx_crash(&f, 3);
    raft_index i = fx_propose(&f, "x");
    fx_tick_all(&f, 2);
    assert_true(raft_commit_index(fx_r(&f, 2)) >= i);
    fx_free(&f);
}

/* A leader that removes itself leads until the change commits (without counting its own copy),
 * then steps down for good; the others elect a leader among themselves. */
static void leaderRemovingItselfStepsDownAfterCommit(void **state)
{
    (void)state;
    fx f;
    start3(&f, 3);
    raft_id rest[] = {2, 3};
    raft_conf next = voters(2, rest);
    raft_index at = 0;
    fx_isolate(&f, 1, true);
    assert_int_equal(raft_propose_conf(fx_r(&f, 1), &next, NULL, 0, &at, NULL), RAFT_OK);
    fx_pump(&f);
    assert_int_equal(raft_get_role(fx_r(&f, 1)), RAFT_LEADER); /* not committed yet */
    assert_true(raft_commit_index(fx_r(&f, 1)) < at);          /* its own copy does not count */
    fx_isolate(&f, 1, false);
    fx_tick_all(&f, 2);
    assert_true(raft_commit_index(fx_r(&f, 2)) >= at);
    assert_int_equal(raft_get_role(fx_r(&f, 1)), RAFT_FOLLOWER);
    fx_tick_all(&f, 60);
    int leader = fx_leader(&f);
    assert_true(leader == 2 || leader == 3);
    assert_int_equal(raft_get_role(fx_r(&f, 1)), RAFT_FOLLOWER);
    raft_index i = fx_propose(&f, "after");
    fx_tick_all(&f, 2);
    assert_true(raft_commit_index(fx_r(&f, 2)) >= i && raft_commit_index(fx_r(&f, 3)) >= i);
    fx_free(&f);
}

/* Only a leader that has committed an entry of its term takes a change, one at a time, and only a
 * change of exactly one voter. */
static void oneValidChangeAtATime(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    raft_id four[] = {1, 2, 3, 4};
    raft_conf add4 = voters(4, four);
    assert_int_equal(raft_propose_conf(r, &add4, NULL, 0, NULL, NULL), RAFT_ENOTLEADER);
    cx_make_leader(r, &rd);
    /* its no-op is not committed yet: an older uncommitted change could still win */
    assert_int_equal(raft_propose_conf(r, &add4, NULL, 0, NULL, NULL), RAFT_ECONFBUSY);
    raft_index noop = raft_last_index(r);
    raft_msg ack = cx_msg(RAFT_MSG_APPEND_RESP, 2, 1, raft_get_term(r));
    ack.index = noop;
    raft_step(r, &ack);
    cx_drain(r, &rd);
    assert_int_equal(raft_commit_index(r), noop);

    raft_id same[] = {1, 2, 3}, two_more[] = {1, 2, 3, 4, 5}, swap[] = {1, 2, 4};
    raft_id dup[] = {1, 2, 2, 4}, zero[] = {1, 2, 3, 0};
    raft_conf bad[] = {voters(3, same), voters(5, two_more), voters(3, swap), voters(4, dup),
                       voters(4, zero), {.n_voters = 0}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(raft_propose_conf(r, &bad[i], NULL, 0, NULL, NULL), RAFT_EINVAL);
    assert_int_equal(raft_propose_conf(r, &add4, "x", 0, NULL, NULL), RAFT_OK);
    raft_id five[] = {1, 2, 3, 4, 5};
    raft_conf add5 = voters(5, five);
    assert_int_equal(raft_propose_conf(r, &add5, NULL, 0, NULL, NULL), RAFT_ECONFBUSY);
    assert_int_equal(raft_propose(r, RAFT_ENTRY_CONFIG, "c", 1, NULL, NULL), RAFT_EINVAL);
    raft_free(r);
}

static raft_entry conf_entry(raft_index index, raft_term term, const raft_conf *c, uint8_t *buf)
{
    size_t n = 0;
    assert_int_equal(raft_codec_conf_encode(c, NULL, 0, buf, 256, &n), RAFT_OK);
    raft_entry e = {.index = index, .term = term, .type = RAFT_ENTRY_CONFIG, .len = (uint32_t)n,
                    .data = buf};
    return e;
}

/* A follower uses a configuration from the moment the entry is appended; when a new leader
 * truncates the uncommitted entry, the previous configuration is back. A configuration entry
 * that does not decode makes the whole append be refused. */
static void truncatedChangeRevertsConf(void **state)
{
    (void)state;
    raft_config cfg = cx_config(2, 3);
    raft_term terms[] = {1, 1, 1};
    raft *r = cx_new(&cfg, terms, 3, (raft_hard_state){.term = 2, .commit = 3});
    raft_id four[] = {1, 2, 3, 4}, three[] = {1, 2, 3};
    raft_conf add4 = voters(4, four);
    uint8_t buf[256];
    raft_entry e = conf_entry(4, 2, &add4, buf);
    raft_msg m = cx_msg(RAFT_MSG_APPEND, 1, 2, 2);
    m.index = 3;
    m.log_term = 1;
    m.entries = &e;
    m.n_entries = 1;
    m.commit = 3;
    raft_step(r, &m);
    cx_drain(r, &rd);
    assert_true(conf_is(raft_get_conf(r), 4, four));
    raft_conf at;
    assert_int_equal(raft_conf_at(r, 3, &at), RAFT_OK);
    assert_true(conf_is(&at, 3, three));
    assert_int_equal(raft_conf_at(r, 5, &at), RAFT_EINVAL);

    raft_entry other = {.index = 4, .term = 3, .type = RAFT_ENTRY_NORMAL};
    m = cx_msg(RAFT_MSG_APPEND, 3, 2, 3);
    m.index = 3;
    m.log_term = 1;
    m.entries = &other;
    m.n_entries = 1;
    raft_step(r, &m);
    cx_drain(r, &rd);
    assert_int_equal(rd.truncate_from, 4);
    assert_true(conf_is(raft_get_conf(r), 3, three));

    uint8_t junk[3] = {1, 9, 9};
    raft_entry broken = {.index = 5, .term = 3, .type = RAFT_ENTRY_CONFIG, .len = 3, .data = junk};
    m.index = 4;
    m.log_term = 3;
    m.entries = &broken;
    uint64_t dropped = raft_get_stats(r).msgs_dropped;
    raft_step(r, &m);
    cx_drain(r, &rd);
    assert_int_equal(raft_get_stats(r).msgs_dropped, dropped + 1);
    assert_int_equal(raft_last_index(r), 4);
    assert_int_equal(cx_count(&rd, RAFT_MSG_APPEND_RESP, 3), 0);
    raft_free(r);
}

/* A restart reads its configuration from the newest configuration entry of its log, and a
 * snapshot taken before that entry records the configuration in force at its own index. */
static void restartAndCompactUseTheConfAtTheIndex(void **state)
{
    (void)state;
    raft_id four[] = {1, 2, 3, 4}, three[] = {1, 2, 3};
    raft_conf add4 = voters(4, four);
    uint8_t buf[256];
    raft_entry es[4] = {{.index = 1, .term = 1, .type = RAFT_ENTRY_NORMAL},
                        {.index = 2, .term = 1, .type = RAFT_ENTRY_NORMAL},
                        {.index = 3, .term = 1},
                        {.index = 4, .term = 1, .type = RAFT_ENTRY_NORMAL}};
    es[2] = conf_entry(3, 1, &add4, buf);
    raft_restore rs = {.hard_state = {.term = 1, .commit = 4}, .entries = es, .n_entries = 4,
                       .applied = 4};
    raft_config cfg = cx_config(4, 3); /* the file still names 1..3; the log knows better */
    raft *r = NULL;
    assert_int_equal(raft_new(&cfg, &rs, &r), RAFT_OK);
    assert_true(conf_is(raft_get_conf(r), 4, four));
    raft_conf at;
    assert_int_equal(raft_conf_at(r, 2, &at), RAFT_OK);
    assert_true(conf_is(&at, 3, three));
    assert_int_equal(raft_compact(r, 2, 0), RAFT_OK);
    raft_snapshot_meta snap = raft_get_snapshot(r);
    assert_true(conf_is(&snap.conf, 3, three));
    assert_int_equal(raft_conf_at(r, 1, &at), RAFT_EINVAL);
    assert_int_equal(raft_compact(r, 4, 0), RAFT_OK);
    snap = raft_get_snapshot(r);
    assert_true(conf_is(&snap.conf, 4, four));
    raft_free(r);

    es[2].len = 2; /* a configuration entry that does not decode */
    assert_int_equal(raft_new(&cfg, &rs, &r), RAFT_ECORRUPT);
}

/* A leader drops what a non-voter answers it, higher term included. */
static void leaderIgnoresNonVoterAnswers(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    cx_make_leader(r, &rd);
    raft_msg ack = cx_msg(RAFT_MSG_APPEND_RESP, 9, 1, raft_get_term(r));
    ack.index = raft_last_index(r);
    uint64_t dropped = raft_get_stats(r).msgs_dropped;
    raft_step(r, &ack);
    cx_drain(r, &rd);
    assert_int_equal(raft_get_stats(r).msgs_dropped, dropped + 1);
    assert_int_equal(raft_commit_index(r), 0);
    /* not even its term: a removed node campaigning in a higher term must not depose us */
    raft_term term = raft_get_term(r);
    ack.term = term + 5;
    raft_step(r, &ack);
    raft_msg beat = cx_msg(RAFT_MSG_HEARTBEAT_RESP, 9, 1, term + 5);
    raft_step(r, &beat);
    cx_drain(r, &rd);
    assert_int_equal(raft_get_role(r), RAFT_LEADER);
    assert_int_equal(raft_get_term(r), term);
    assert_int_equal(raft_get_stats(r).msgs_dropped, dropped + 3);
    raft_free(r);
}

/* A leader removes itself, then loses its quorum before the change commits: the remaining voter
 * lacks the change, so only the removed node holds a log it would vote for. That node campaigns
 * (counting the other's vote, not its own), commits its removal, steps down, and the remaining
 * voter then leads alone. */
static void uncommittedSelfRemovalStillCampaigns(void **state)
{
    (void)state;
    raft_config cfg = cluster_cfg();
    fx f;
    fx_init_voters(&f, 2, 2, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    assert_int_not_equal(fx_propose(&f, "a"), 0);
    raft_id only2[] = {2};
    raft_conf next = voters(1, only2);
    f.cut[1][2] = true;
    assert_int_equal(raft_propose_conf(fx_r(&f, 1), &next, NULL, 0, NULL, NULL), RAFT_OK);
    fx_tick_all(&f, 40); /* check-quorum: node 1 hears nobody and steps down */
    assert_int_not_equal(raft_get_role(fx_r(&f, 1)), RAFT_LEADER);
    assert_int_not_equal(raft_get_role(fx_r(&f, 2)), RAFT_LEADER); /* node 1 refuses it */
    f.cut[1][2] = false;
    fx_tick_all(&f, 100);
    assert_int_equal(fx_leader(&f), 2);
    assert_true(conf_is(raft_get_conf(fx_r(&f, 2)), 1, only2));
    raft_index i = fx_propose(&f, "b");
    assert_true(raft_commit_index(fx_r(&f, 2)) >= i);
    fx_free(&f);
}

/* A removed leader restarts having lost the commit of its removal (commit is a hint): it sees its
 * removal as uncommitted and campaigns. The new leader answers its vote request with what it
 * lacks -- the committed entries after its log, or, when the leader compacted past its last
 * entry meanwhile (compact), the snapshot -- and it then knows, and stops for good. */
static void removed_leader_restarts_without_commit(bool compact)
{
    fx f;
    start3(&f, 3);
    raft_id rest[] = {2, 3};
    raft_conf next = voters(2, rest);
    raft_index at = 0;
    assert_int_equal(raft_propose_conf(fx_r(&f, 1), &next, NULL, 0, &at, NULL), RAFT_OK);
    fx_pump(&f);
    fx_tick_all(&f, 60);
    int leader = fx_leader(&f);
    assert_true(leader == 2 || leader == 3);
    fx_crash(&f, 1);
    if (compact) {
        raft_index i = fx_propose(&f, "b");
        fx_tick_all(&f, 3);
        for (int id = 2; id <= 3; id++)
            assert_int_equal(raft_compact(fx_r(&f, id), i, 0), RAFT_OK);
        at = i;
    }
    f.nodes[0].hs.commit = 1; /* the hint lost */
    fx_restart(&f, 1);
    assert_true(raft_commit_index(fx_r(&f, 1)) < at);
    fx_tick_all(&f, 200);
    assert_true(raft_commit_index(fx_r(&f, 1)) >= at);
    raft_id all3[] = {1, 2, 3};
    assert_false(conf_is(raft_get_conf(fx_r(&f, 1)), 3, all3));
    uint64_t elections = raft_get_stats(fx_r(&f, 1)).elections;
    assert_true(elections >= 1); /* it did campaign before it knew */
    fx_tick_all(&f, 100);
    assert_int_equal(raft_get_stats(fx_r(&f, 1)).elections, elections);
    assert_int_equal(raft_get_role(fx_r(&f, 1)), RAFT_FOLLOWER);
    assert_int_equal(fx_leader(&f), leader);
    fx_free(&f);
}

static void removedNodeLearnsItsRemovalCommitted(void **state)
{
    (void)state;
    removed_leader_restarts_without_commit(false);
}

static void removedNodeBehindSnapshotGetsIt(void **state)
{
    (void)state;
    removed_leader_restarts_without_commit(true);
}

/* A vote request naming an index the leader compacted, with a made-up term 0, is not a match: it
 * must not read the entries that are gone (it gets the snapshot, if any). */
static void voteRequestBelowCompactionIsNoMatch(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1, 1, 1, 1, 1};
    raft *r = cx_new(&cfg, terms, 6, (raft_hard_state){.term = 1, .commit = 6});
    cx_make_leader(r, &rd);
    raft_msg ack = cx_msg(RAFT_MSG_APPEND_RESP, 2, 1, raft_get_term(r));
    ack.index = raft_last_index(r);
    raft_step(r, &ack);
    cx_drain(r, &rd);
    assert_int_equal(raft_compact(r, 5, 0), RAFT_OK);
    raft_msg v = cx_msg(RAFT_MSG_PREVOTE, 9, 1, raft_get_term(r) + 1);
    v.index = 2;
    v.log_term = 0;
    raft_step(r, &v);
    cx_drain(r, &rd);
    const raft_msg *snap = cx_find(&rd, RAFT_MSG_SNAPSHOT, 9);
    assert_non_null(snap);
    assert_int_equal(snap->snapshot.index, 5);
    assert_int_equal(cx_count(&rd, RAFT_MSG_APPEND, 9), 0);
    raft_step(r, &v); /* again at once: no second snapshot before snapshot_timeout_tick */
    cx_drain(r, &rd);
    assert_int_equal(cx_count(&rd, RAFT_MSG_SNAPSHOT, 9), 0);
    raft_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(addedVoterCatchesUpAndCounts),
        cmocka_unit_test(removedFollowerDoesNotDisturb),
        cmocka_unit_test(leaderRemovingItselfStepsDownAfterCommit),
        cmocka_unit_test(oneValidChangeAtATime),
        cmocka_unit_test(truncatedChangeRevertsConf),
        cmocka_unit_test(restartAndCompactUseTheConfAtTheIndex),
        cmocka_unit_test(leaderIgnoresNonVoterAnswers),
        cmocka_unit_test(uncommittedSelfRemovalStillCampaigns),
        cmocka_unit_test(removedNodeLearnsItsRemovalCommitted),
        cmocka_unit_test(removedNodeBehindSnapshotGetsIt),
        cmocka_unit_test(voteRequestBelowCompactionIsNoMatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
