/*
 * test_conf.c -- membership change, one server at a time (thesis §4.1): who may propose a change
 * and when, a configuration in force from the moment it is in the log (and gone when truncated),
 * new voters counted in the quorum, removed ones not, a leader that removes itself, and the
 * configuration a restart or a snapshot reads back; learners (replicated to, never counted,
 * never campaigning), promoted, demoted and removed.
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

/* ---------------------------------------------------------------------------------------------- */
/* Learners: members the leader replicates to that never vote, campaign or count. */

static raft_conf roles(int n_voters, const raft_id *voter_ids, int n_learners,
                       const raft_id *learner_ids)
{
    raft_conf c = voters(n_voters, voter_ids);
    c.n_learners = (uint32_t)n_learners;
    for (int i = 0; i < n_learners; i++)
        c.learners[i] = learner_ids[i];
    return c;
}

static bool learners_are(const raft_conf *c, int n, const raft_id *ids)
{
    if (c->n_learners != (uint32_t)n)
        return false;
    for (int i = 0; i < n; i++)
        if (!raft_conf_has_learner(c, ids[i]) || raft_conf_has(c, ids[i]))
            return false;
    return true;
}

static const raft_id one_two_three[] = {1, 2, 3};
static const raft_id learner4[] = {4};

/* Proposes next on the leader and lets it commit everywhere; returns the entry's index. */
static raft_index change_and_commit(fx *f, int leader, const raft_conf *next)
{
    raft_index at = 0;
    assert_int_equal(raft_propose_conf(fx_r(f, leader), next, NULL, 0, &at, NULL), RAFT_OK);
    fx_pump(f);
    fx_tick_all(f, 3);
    assert_true(raft_commit_index(fx_r(f, leader)) >= at);
    return at;
}

/* The entries a node holds, and the state machine it applied, match the leader's. */
static void assert_caught_up(fx *f, int leader, int id)
{
    assert_int_equal(raft_last_index(fx_r(f, id)), raft_last_index(fx_r(f, leader)));
    assert_int_equal(raft_commit_index(fx_r(f, id)), raft_commit_index(fx_r(f, leader)));
    assert_int_equal(f->nodes[id - 1].last_applied, raft_commit_index(fx_r(f, leader)));
    for (raft_index i = raft_first_index(fx_r(f, id)); i <= raft_last_index(fx_r(f, id)); i++)
        assert_int_equal(raft_term_at(fx_r(f, id), i), raft_term_at(fx_r(f, leader), i));
}

/* A learner gets the log like a follower (it is needed to promote it caught up, thesis §4.2.1),
 * but never counts: with 2 of 3 voters down it holds a new entry that still does not commit, its
 * heartbeat answers neither confirm a read nor keep the leader's check-quorum, and it never
 * campaigns, even with every voter gone. */
static void learnerReplicatesButNeverCountsOrCampaigns(void **state)
{
    (void)state;
    fx f;
    start3(&f, 4);
    raft_conf next = roles(3, one_two_three, 1, learner4);
    change_and_commit(&f, 1, &next);
    for (int i = 0; i < 5; i++)
        assert_int_not_equal(fx_propose(&f, "x"), 0);
    fx_tick_all(&f, 3);
    for (int id = 1; id <= 4; id++)
        assert_true(learners_are(raft_get_conf(fx_r(&f, id)), 1, learner4));
    assert_caught_up(&f, 1, 4);
    raft_progress_info pi;
    assert_true(raft_get_progress(fx_r(&f, 1), 4, &pi));
    assert_int_equal(pi.match, raft_last_index(fx_r(&f, 1)));

    fx_crash(&f, 2);
    fx_crash(&f, 3);
    raft_index i = fx_propose(&f, "b");
    assert_int_not_equal(i, 0);
    assert_true(raft_read_index(fx_r(&f, 1), 77) == RAFT_OK);
    fx_tick_all(&f, 3);
    assert_true(raft_last_index(fx_r(&f, 4)) >= i);     /* the learner holds it ... */
    assert_true(raft_commit_index(fx_r(&f, 1)) < i);    /* ... and it does not count */
    assert_int_equal(f.nodes[0].n_reads, 0);            /* nor does it confirm a read */
    fx_tick_all(&f, 3 * 10);
    assert_int_not_equal(raft_get_role(fx_r(&f, 1)), RAFT_LEADER); /* nor keep the quorum */
    fx_crash(&f, 1);
    fx_tick_all(&f, 200);
    assert_int_equal(raft_get_stats(fx_r(&f, 4)).elections, 0);
    assert_int_equal(raft_get_role(fx_r(&f, 4)), RAFT_FOLLOWER);
    fx_free(&f);
}

/* A single voter with a learner is still a single voter: it commits (and confirms reads) alone,
 * the learner down or not, and the learner follows. */
static void singleVoterWithLearnerCommitsAlone(void **state)
{
    (void)state;
    raft_config cfg = cluster_cfg();
    fx f;
    fx_init_voters(&f, 2, 1, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    raft_id one[] = {1}, two[] = {2};
    raft_conf next = roles(1, one, 1, two);
    change_and_commit(&f, 1, &next);
    raft_index i = fx_propose(&f, "a");
    assert_true(raft_commit_index(fx_r(&f, 1)) >= i);
    fx_tick_all(&f, 2);
    assert_caught_up(&f, 1, 2);
    fx_crash(&f, 2);
    i = fx_propose(&f, "b");
    assert_true(raft_commit_index(fx_r(&f, 1)) >= i);
    assert_int_equal(raft_read_index(fx_r(&f, 1), 5), RAFT_OK);
    fx_pump(&f);
    assert_int_equal(f.nodes[0].n_reads, 1);
    fx_tick_all(&f, 50); /* check-quorum does not wait for the learner either */
    assert_int_equal(fx_leader(&f), 1);
    fx_free(&f);
}

/* Promoting a caught-up learner keeps what the leader knows of it (no probe from scratch), and
 * from then on it counts: 1, 3 and 4 commit without 2; 1 and 4 alone do not. */
static void promotedLearnerKeepsMatchAndCounts(void **state)
{
    (void)state;
    fx f;
    start3(&f, 4);
    raft_conf add = roles(3, one_two_three, 1, learner4);
    change_and_commit(&f, 1, &add);
    raft_progress_info before, after;
    assert_true(raft_get_progress(fx_r(&f, 1), 4, &before));
    assert_int_equal(before.match, raft_last_index(fx_r(&f, 1)));
    assert_int_equal(before.state, 1); /* replicate */

    raft_id four[] = {1, 2, 3, 4};
    raft_conf promote = voters(4, four);
    raft_index at = 0;
    assert_int_equal(raft_propose_conf(fx_r(&f, 1), &promote, NULL, 0, &at, NULL), RAFT_OK);
    assert_true(raft_get_progress(fx_r(&f, 1), 4, &after));
    assert_int_equal(after.match, before.match);
    assert_int_equal(after.state, before.state);
    fx_pump(&f);
    fx_tick_all(&f, 3);
    for (int id = 1; id <= 4; id++) {
        assert_true(conf_is(raft_get_conf(fx_r(&f, id)), 4, four));
        assert_int_equal(raft_get_conf(fx_r(&f, id))->n_learners, 0);
        assert_true(raft_commit_index(fx_r(&f, id)) >= at);
    }
    fx_crash(&f, 2);
    raft_index i1 = fx_propose(&f, "b");
    fx_tick_all(&f, 3);
    assert_true(raft_commit_index(fx_r(&f, 1)) >= i1); /* 1, 3, 4 */
    fx_crash(&f, 3);
    raft_index i2 = fx_propose(&f, "c");
    fx_tick_all(&f, 3);
    assert_true(raft_commit_index(fx_r(&f, 1)) < i2); /* 1, 4 of 4 */
    fx_free(&f);
}

/* A voter demoted to learner stops counting the moment the change is in the log: voters 1, 2,
 * learner 3 -- with 2 down nothing commits, though 3 holds every entry. It keeps receiving the
 * log, and with the leader gone it does not campaign. */
static void demotedVoterStopsCounting(void **state)
{
    (void)state;
    fx f;
    start3(&f, 3);
    raft_id v12[] = {1, 2}, l3[] = {3};
    raft_conf demote = roles(2, v12, 1, l3);
    change_and_commit(&f, 1, &demote);
    assert_true(learners_are(raft_get_conf(fx_r(&f, 3)), 1, l3));
    raft_index i1 = fx_propose(&f, "a");
    fx_tick_all(&f, 2);
    assert_true(raft_commit_index(fx_r(&f, 1)) >= i1);
    assert_caught_up(&f, 1, 3);
    fx_crash(&f, 2);
    raft_index i2 = fx_propose(&f, "b");
    fx_tick_all(&f, 3);
    assert_true(raft_last_index(fx_r(&f, 3)) >= i2);
    assert_true(raft_commit_index(fx_r(&f, 1)) < i2);
    uint64_t elections = raft_get_stats(fx_r(&f, 3)).elections;
    fx_crash(&f, 1);
    fx_tick_all(&f, 200);
    assert_int_equal(raft_get_stats(fx_r(&f, 3)).elections, elections);
    assert_int_equal(raft_get_role(fx_r(&f, 3)), RAFT_FOLLOWER);
    fx_free(&f);
}

/* A leader that demotes itself leads until the change commits (its own copy not counted), then
 * steps down; as a learner it never campaigns again, and it still gets the new leader's log. */
static void leaderDemotingItselfStepsDownAndStaysQuiet(void **state)
{
    (void)state;
    fx f;
    start3(&f, 3);
    raft_id v23[] = {2, 3}, l1[] = {1};
    raft_conf demote = roles(2, v23, 1, l1);
    raft_index at = 0;
    fx_isolate(&f, 1, true);
    assert_int_equal(raft_propose_conf(fx_r(&f, 1), &demote, NULL, 0, &at, NULL), RAFT_OK);
    fx_pump(&f);
    assert_int_equal(raft_get_role(fx_r(&f, 1)), RAFT_LEADER);
    assert_true(raft_commit_index(fx_r(&f, 1)) < at);
    fx_isolate(&f, 1, false);
    fx_tick_all(&f, 2);
    assert_true(raft_commit_index(fx_r(&f, 2)) >= at);
    assert_int_equal(raft_get_role(fx_r(&f, 1)), RAFT_FOLLOWER);
    uint64_t elections = raft_get_stats(fx_r(&f, 1)).elections;
    fx_tick_all(&f, 60);
    int leader = fx_leader(&f);
    assert_true(leader == 2 || leader == 3);
    raft_index i = fx_propose(&f, "after");
    fx_tick_all(&f, 2);
    assert_true(raft_commit_index(fx_r(&f, 1)) >= i);
    assert_true(f.nodes[0].last_applied >= i);
    fx_crash(&f, leader);
    fx_tick_all(&f, 200); /* the remaining voter cannot win alone; the learner must not try */
    assert_int_equal(raft_get_stats(fx_r(&f, 1)).elections, elections);
    assert_int_not_equal(raft_get_role(fx_r(&f, 1)), RAFT_LEADER);
    fx_free(&f);
}

/* Like a removal: a leader demotes itself and loses its quorum before the change commits; only
 * its log has the change, so the remaining voter would elect nobody else. The demoted node still
 * campaigns (its demotion is uncommitted), commits the change, steps down, and then follows the
 * remaining voter as a learner, for good. */
static void uncommittedSelfDemotionStillCampaigns(void **state)
{
    (void)state;
    raft_config cfg = cluster_cfg();
    fx f;
    fx_init_voters(&f, 2, 2, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    assert_int_not_equal(fx_propose(&f, "a"), 0);
    raft_id only2[] = {2}, l1[] = {1};
    raft_conf next = roles(1, only2, 1, l1);
    f.cut[1][2] = true;
    assert_int_equal(raft_propose_conf(fx_r(&f, 1), &next, NULL, 0, NULL, NULL), RAFT_OK);
    fx_tick_all(&f, 40);
    assert_int_not_equal(raft_get_role(fx_r(&f, 1)), RAFT_LEADER);
    assert_int_not_equal(raft_get_role(fx_r(&f, 2)), RAFT_LEADER);
    f.cut[1][2] = false;
    fx_tick_all(&f, 100);
    assert_int_equal(fx_leader(&f), 2);
    assert_true(learners_are(raft_get_conf(fx_r(&f, 2)), 1, l1));
    uint64_t elections = raft_get_stats(fx_r(&f, 1)).elections;
    assert_true(elections >= 1);
    raft_index i = fx_propose(&f, "b");
    fx_tick_all(&f, 100);
    assert_true(raft_commit_index(fx_r(&f, 1)) >= i);
    assert_int_equal(raft_get_stats(fx_r(&f, 1)).elections, elections);
    assert_int_equal(fx_leader(&f), 2);
    fx_free(&f);
}

/* A removed learner: the leader drops its progress at once (the removal never reaches it), so
 * once it hears nothing for an election timeout it asks, without campaigning; the leader answers
 * with the committed entries it lacks, and it learns its removal. */
static void removedLearnerLearnsItsRemoval(void **state)
{
    (void)state;
    fx f;
    start3(&f, 4);
    raft_conf add = roles(3, one_two_three, 1, learner4);
    change_and_commit(&f, 1, &add);
    raft_progress_info pi;
    assert_true(raft_get_progress(fx_r(&f, 1), 4, &pi));
    raft_conf remove = voters(3, one_two_three);
    raft_index at = change_and_commit(&f, 1, &remove);
    assert_false(raft_get_progress(fx_r(&f, 1), 4, &pi));
    assert_int_equal(raft_get_conf(fx_r(&f, 1))->n_learners, 0);
    assert_true(raft_last_index(fx_r(&f, 4)) < at); /* nothing sent to it since */
    assert_true(raft_conf_has_learner(raft_get_conf(fx_r(&f, 4)), 4));
    raft_index i = fx_propose(&f, "after");
    fx_tick_all(&f, 100);
    assert_true(raft_commit_index(fx_r(&f, 1)) >= i);
    assert_true(raft_commit_index(fx_r(&f, 4)) >= at);
    assert_false(raft_conf_has_learner(raft_get_conf(fx_r(&f, 4)), 4));
    assert_false(raft_conf_has(raft_get_conf(fx_r(&f, 4)), 4));
    assert_int_equal(raft_get_stats(fx_r(&f, 4)).elections, 0);
    assert_int_equal(fx_leader(&f), 1);
    raft_term term = raft_get_term(fx_r(&f, 1));
    fx_tick_all(&f, 100);
    assert_int_equal(raft_get_term(fx_r(&f, 1)), term); /* its asking disturbed nobody */
    assert_int_equal(fx_leader(&f), 1);
    fx_free(&f);
}

/* A single core made leader of `conf` (node 1 one of its voters) with its no-op committed, so it
 * takes a change. */
static raft *leader_of(const raft_conf *conf)
{
    raft_config cfg = cx_config(1, 3);
    cfg.conf = *conf;
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    cx_make_leader(r, &rd);
    for (uint32_t i = 0; i < conf->n_voters && raft_commit_index(r) < raft_last_index(r); i++) {
        if (conf->voters[i] == 1)
            continue;
        raft_msg ack = cx_msg(RAFT_MSG_APPEND_RESP, conf->voters[i], 1, raft_get_term(r));
        ack.index = raft_last_index(r);
        raft_step(r, &ack);
    }
    cx_drain(r, &rd);
    assert_int_equal(raft_commit_index(r), raft_last_index(r));
    return r;
}

/* Exactly one node changes its role per change (among none, learner, voter): each single change
 * is taken; two at once, a node both voter and learner, id 0, or more than 16 members is not. */
static void oneRoleChangeAtATime(void **state)
{
    (void)state;
    raft_id v123[] = {1, 2, 3}, v12[] = {1, 2}, v1234[] = {1, 2, 3, 4}, v12345[] = {1, 2, 3, 4, 5};
    raft_id v1235[] = {1, 2, 3, 5}, v1245[] = {1, 2, 4, 5}, v124[] = {1, 2, 4};
    raft_id l45[] = {4, 5}, l4[] = {4}, l5[] = {5}, l456[] = {4, 5, 6}, l34[] = {3, 4};
    raft_id l35[] = {3, 5}, l44[] = {4, 4}, l0[] = {0};
    raft_conf start = roles(3, v123, 2, l45);
    raft_conf good[] = {
        roles(3, v123, 3, l456), /* add a learner */
        roles(3, v123, 1, l4),   /* remove a learner */
        roles(4, v1234, 1, l5),  /* promote a learner */
        roles(2, v12, 3, (raft_id[]){3, 4, 5}), /* demote a voter */
        roles(2, v12, 2, l45),   /* remove a voter */
        roles(4, (raft_id[]){1, 2, 3, 6}, 2, l45), /* add a voter */
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        raft *r = leader_of(&start);
        assert_int_equal(raft_propose_conf(r, &good[i], NULL, 0, NULL, NULL), RAFT_OK);
        assert_int_equal(raft_propose_conf(r, &start, NULL, 0, NULL, NULL), RAFT_ECONFBUSY);
        raft_free(r);
    }
    raft_conf bad[] = {
        start,                    /* no change */
        roles(5, v12345, 0, NULL),  /* promote two learners */
        roles(4, v1234, 0, NULL),   /* promote one, remove the other */
        roles(4, v1235, 2, (raft_id[]){4, 6}), /* add a voter and a learner */
        roles(3, v123, 4, (raft_id[]){4, 5, 6, 7}), /* add two learners */
        roles(2, v12, 2, l34),    /* demote a voter and remove a learner */
        roles(3, v124, 2, l35),   /* swap a learner and a voter */
        roles(4, v1245, 1, (raft_id[]){3}), /* promote two, demote one */
        roles(3, v123, 3, (raft_id[]){4, 5, 3}), /* a voter also a learner */
        roles(3, v123, 3, (raft_id[]){4, 5, 0}), /* learner id 0 */
        roles(3, v123, 2, l44),   /* a learner twice (and 5 removed) */
        roles(3, v123, 1, l0),
        roles(0, NULL, 3, (raft_id[]){1, 2, 3}), /* no voter */
    };
    raft *r = leader_of(&start);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(raft_propose_conf(r, &bad[i], NULL, 0, NULL, NULL), RAFT_EINVAL);
    raft_free(r);

    /* 16 members is the most: the 16th is taken, a 17th is not */
    raft_conf fifteen = roles(3, v123, 0, NULL), sixteen, seventeen;
    for (raft_id id = 4; id <= 15; id++)
        fifteen.learners[fifteen.n_learners++] = id;
    sixteen = fifteen;
    sixteen.learners[sixteen.n_learners++] = 16;
    seventeen = sixteen;
    seventeen.learners[seventeen.n_learners++] = 17;
    r = leader_of(&fifteen);
    assert_int_equal(raft_propose_conf(r, &sixteen, NULL, 0, NULL, NULL), RAFT_OK);
    raft_free(r);
    r = leader_of(&sixteen);
    assert_int_equal(raft_propose_conf(r, &seventeen, NULL, 0, NULL, NULL), RAFT_EINVAL);
    raft_conf promote16 = sixteen; /* promoting one of 16 stays at 16: taken */
    promote16.voters[promote16.n_voters++] = 16;
    promote16.n_learners--;
    assert_int_equal(raft_propose_conf(r, &promote16, NULL, 0, NULL, NULL), RAFT_OK);
    raft_free(r);
}

/* A follower takes a learner change from the moment it is appended; a new leader truncating the
 * uncommitted entry takes the learner away again. */
static void truncatedLearnerChangeReverts(void **state)
{
    (void)state;
    raft_config cfg = cx_config(2, 3);
    raft_term terms[] = {1, 1, 1};
    raft *r = cx_new(&cfg, terms, 3, (raft_hard_state){.term = 2, .commit = 3});
    raft_conf add = roles(3, one_two_three, 1, learner4);
    uint8_t buf[256];
    raft_entry e = conf_entry(4, 2, &add, buf);
    assert_int_equal(buf[0], 2); /* the format with learners */
    raft_msg m = cx_msg(RAFT_MSG_APPEND, 1, 2, 2);
    m.index = 3;
    m.log_term = 1;
    m.entries = &e;
    m.n_entries = 1;
    m.commit = 3;
    raft_step(r, &m);
    cx_drain(r, &rd);
    assert_true(learners_are(raft_get_conf(r), 1, learner4));
    assert_int_equal(raft_conf_index(r), 4);
    raft_conf at;
    assert_int_equal(raft_conf_at(r, 3, &at), RAFT_OK);
    assert_int_equal(at.n_learners, 0);

    raft_entry other = {.index = 4, .term = 3, .type = RAFT_ENTRY_NORMAL};
    m = cx_msg(RAFT_MSG_APPEND, 3, 2, 3);
    m.index = 3;
    m.log_term = 1;
    m.entries = &other;
    m.n_entries = 1;
    raft_step(r, &m);
    cx_drain(r, &rd);
    assert_int_equal(rd.truncate_from, 4);
    assert_true(conf_is(raft_get_conf(r), 3, one_two_three));
    assert_int_equal(raft_get_conf(r)->n_learners, 0);
    assert_int_equal(raft_conf_index(r), 0);
    raft_free(r);
}

/* The learners survive a restart (from the configuration entry in the log, or from the
 * snapshot) and a compaction (in the snapshot's meta); a restarted learner stays quiet. */
static void restartAndCompactKeepLearners(void **state)
{
    (void)state;
    raft_conf add = roles(3, one_two_three, 1, learner4);
    uint8_t buf[256];
    raft_entry es[4] = {{.index = 1, .term = 1, .type = RAFT_ENTRY_NORMAL},
                        {.index = 2, .term = 1, .type = RAFT_ENTRY_NORMAL},
                        {.index = 3, .term = 1},
                        {.index = 4, .term = 1, .type = RAFT_ENTRY_NORMAL}};
    es[2] = conf_entry(3, 1, &add, buf);
    raft_restore rs = {.hard_state = {.term = 1, .commit = 4}, .entries = es, .n_entries = 4,
                       .applied = 4};
    raft_config cfg = cx_config(4, 3); /* the file names 1..3 only; the log knows better */
    raft *r = NULL;
    assert_int_equal(raft_new(&cfg, &rs, &r), RAFT_OK);
    assert_true(learners_are(raft_get_conf(r), 1, learner4));
    raft_conf at;
    assert_int_equal(raft_conf_at(r, 2, &at), RAFT_OK);
    assert_int_equal(at.n_learners, 0);
    assert_int_equal(raft_conf_at(r, 3, &at), RAFT_OK);
    assert_true(learners_are(&at, 1, learner4));
    for (int t = 0; t < 200; t++)
        raft_tick(r);
    assert_int_equal(raft_get_stats(r).elections, 0);
    assert_int_equal(raft_compact(r, 2, 0), RAFT_OK);
    assert_int_equal(raft_get_snapshot(r).conf.n_learners, 0);
    assert_int_equal(raft_compact(r, 4, 0), RAFT_OK);
    raft_snapshot_meta snap = raft_get_snapshot(r);
    assert_true(conf_is(&snap.conf, 3, one_two_three));
    assert_true(learners_are(&snap.conf, 1, learner4));
    raft_free(r);

    /* the snapshot alone (log compacted past the change) */
    raft_restore from_snap = {.hard_state = {.term = 1, .commit = 4}, .snapshot = snap,
                              .applied = 4};
    assert_int_equal(raft_new(&cfg, &from_snap, &r), RAFT_OK);
    assert_true(learners_are(raft_get_conf(r), 1, learner4));
    assert_int_equal(raft_conf_at(r, 4, &at), RAFT_OK);
    assert_true(learners_are(&at, 1, learner4));
    for (int t = 0; t < 200; t++)
        raft_tick(r);
    assert_int_equal(raft_get_stats(r).elections, 0);
    raft_free(r);
}

/* A follower installing a snapshot whose configuration has learners takes them (and the Ready
 * hands them to storage); a node that learns it is a learner that way stays quiet. */
static void installedSnapshotBringsLearners(void **state)
{
    (void)state;
    raft_config cfg = cx_config(4, 3); /* node 4, not in its own initial configuration */
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    raft_msg m = cx_msg(RAFT_MSG_SNAPSHOT, 1, 4, 2);
    m.snapshot.index = 10;
    m.snapshot.term = 2;
    m.snapshot.conf = roles(3, one_two_three, 1, learner4);
    raft_step(r, &m);
    cx_drain(r, &rd);
    assert_int_equal(rd.snapshot.index, 10);
    assert_true(learners_are(&rd.snapshot.conf, 1, learner4));
    assert_true(learners_are(raft_get_conf(r), 1, learner4));
    raft_snapshot_meta snap = raft_get_snapshot(r);
    assert_true(learners_are(&snap.conf, 1, learner4));
    for (int t = 0; t < 200; t++)
        raft_tick(r);
    assert_int_equal(raft_get_stats(r).elections, 0);
    raft_free(r);
}

/* A learner added behind the leader's compaction point gets the snapshot, installs it (with its
 * configuration, itself a learner in it) and then the entries after it. */
static void learnerBehindCompactionGetsSnapshot(void **state)
{
    (void)state;
    fx f;
    start3(&f, 4);
    for (int i = 0; i < 5; i++)
        assert_int_not_equal(fx_propose(&f, "x"), 0);
    fx_tick_all(&f, 2);
    raft_index c = raft_commit_index(fx_r(&f, 1));
    assert_int_equal(raft_compact(fx_r(&f, 1), c, 0), RAFT_OK);
    raft_conf add = roles(3, one_two_three, 1, learner4);
    change_and_commit(&f, 1, &add);
    assert_int_not_equal(fx_propose(&f, "y"), 0);
    fx_tick_all(&f, 3);
    assert_int_equal(f.nodes[3].snap.index, c);
    assert_true(conf_is(&f.nodes[3].snap.conf, 3, one_two_three));
    assert_true(learners_are(raft_get_conf(fx_r(&f, 4)), 1, learner4));
    assert_caught_up(&f, 1, 4);
    fx_free(&f);
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
        cmocka_unit_test(learnerReplicatesButNeverCountsOrCampaigns),
        cmocka_unit_test(singleVoterWithLearnerCommitsAlone),
        cmocka_unit_test(promotedLearnerKeepsMatchAndCounts),
        cmocka_unit_test(demotedVoterStopsCounting),
        cmocka_unit_test(leaderDemotingItselfStepsDownAndStaysQuiet),
        cmocka_unit_test(uncommittedSelfDemotionStillCampaigns),
        cmocka_unit_test(removedLearnerLearnsItsRemoval),
        cmocka_unit_test(oneRoleChangeAtATime),
        cmocka_unit_test(truncatedLearnerChangeReverts),
        cmocka_unit_test(restartAndCompactKeepLearners),
        cmocka_unit_test(installedSnapshotBringsLearners),
        cmocka_unit_test(learnerBehindCompactionGetsSnapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
