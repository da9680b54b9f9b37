/*
 * test_read_index.c -- linearizable reads without a log write (thesis §6.4): the leader records
 * its commit index, confirms it still leads with a heartbeat round acknowledged by a majority,
 * and only then releases the read; a new leader first commits an entry of its term; followers
 * forward reads to the leader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"

static cx_ready rd;

static raft_hard_state hs_of(raft_term term, raft_index commit)
{
    raft_hard_state hs = {.term = term, .commit = commit};
    return hs;
}

static raft_msg ack(raft_id from, raft_term term, raft_index index)
{
    raft_msg m = cx_msg(RAFT_MSG_APPEND_RESP, from, 1, term);
    m.index = index;
    return m;
}

static raft_msg hb_resp(raft_id from, raft_term term, uint64_t context)
{
    raft_msg m = cx_msg(RAFT_MSG_HEARTBEAT_RESP, from, 1, term);
    m.context = context;
    return m;
}

/* Leader 1 of n nodes, term 2, whose no-op (index 1) is committed (acks from 2 and 3). */
static raft *leader_with_commit(int n)
{
    raft_config cfg = cx_config(1, n);
    raft *r = cx_new(&cfg, NULL, 0, hs_of(1, 0));
    cx_make_leader(r, NULL);
    for (raft_id id = 2; id <= 3; id++) {
        raft_msg a = ack(id, 2, 1);
        raft_step(r, &a);
    }
    cx_drain(r, &rd);
    assert_int_equal(raft_commit_index(r), 1);
    return r;
}

/* In a 5-node cluster the read waits for TWO followers to answer a heartbeat sent after the
 * request (an answer to an earlier round does not count), and carries the commit index of the
 * moment it was asked, even if the commit moved on meanwhile. */
static void leaderReadReleasedAfterQuorumHeartbeat(void **state)
{
    (void)state;
    raft *r = leader_with_commit(5);
    assert_int_equal(raft_read_index(r, 77), RAFT_OK);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 0);
    assert_int_equal(cx_count(&rd, RAFT_MSG_HEARTBEAT, 0), 4);
    uint64_t ctx = cx_find(&rd, RAFT_MSG_HEARTBEAT, 2)->context;
    assert_true(ctx > 0);

    raft_msg old = hb_resp(2, 2, ctx - 1);
    raft_step(r, &old);
    old.from = 3;
    raft_step(r, &old);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 0);

    /* the commit index moves on before the confirmation arrives */
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "w", 1, NULL, NULL), RAFT_OK);
    cx_drain(r, &rd);
    for (raft_id id = 2; id <= 3; id++) {
        raft_msg a = ack(id, 2, 2);
        raft_step(r, &a);
    }
    cx_drain(r, &rd);
    assert_int_equal(raft_commit_index(r), 2);
    assert_int_equal(rd.n_reads, 0);

    raft_msg ok = hb_resp(2, 2, ctx);
    raft_step(r, &ok);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 0); /* leader + 1 of 5 */
    ok.from = 4;
    raft_step(r, &ok);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 1);
    assert_int_equal(rd.reads[0].request_id, 77);
    assert_int_equal(rd.reads[0].index, 1);
    raft_free(r);
}

/* Several reads queued behind each other are released in order once their rounds are acked;
 * an ack of a later round confirms the earlier reads too. */
static void leaderReadsReleasedInOrder(void **state)
{
    (void)state;
    raft *r = leader_with_commit(3);
    assert_int_equal(raft_read_index(r, 1), RAFT_OK);
    assert_int_equal(raft_read_index(r, 2), RAFT_OK);
    cx_drain(r, &rd);
    uint64_t last_ctx = 0;
    for (size_t i = 0; i < rd.n_msgs; i++)
        if (rd.msgs[i].type == RAFT_MSG_HEARTBEAT && rd.msgs[i].context > last_ctx)
            last_ctx = rd.msgs[i].context;
    raft_msg ok = hb_resp(3, 2, last_ctx);
    raft_step(r, &ok);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 2);
    assert_int_equal(rd.reads[0].request_id, 1);
    assert_int_equal(rd.reads[1].request_id, 2);
    raft_free(r);
}

/* A new leader does not know whether its commit index is current until an entry of its own term
 * commits: a read asked before the no-op commits waits (no heartbeat answer releases it), then
 * runs its round and gets at least the no-op's index. */
static void newLeaderDelaysReadsUntilNoopCommits(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1};
    raft *r = cx_new(&cfg, terms, 2, hs_of(1, 1));
    cx_make_leader(r, NULL);
    assert_int_equal(raft_commit_index(r), 1);
    assert_int_equal(raft_read_index(r, 9), RAFT_OK);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 0);
    raft_msg hb = hb_resp(2, 2, 1000);
    raft_step(r, &hb);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 0);

    raft_msg a = ack(2, 2, 3);
    raft_step(r, &a);
    cx_drain(r, &rd);
    assert_int_equal(raft_commit_index(r), 3);
    assert_int_equal(rd.n_reads, 0); /* the confirmation round starts only now */
    const raft_msg *beat = cx_find(&rd, RAFT_MSG_HEARTBEAT, 3);
    assert_non_null(beat);
    hb = hb_resp(3, 2, beat->context);
    raft_step(r, &hb);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 1);
    assert_int_equal(rd.reads[0].request_id, 9);
    assert_int_equal(rd.reads[0].index, 3);
    raft_free(r);
}

/* A leader that steps down forgets its unconfirmed reads: they are never released. */
static void leaderStepDownDropsPendingReads(void **state)
{
    (void)state;
    raft *r = leader_with_commit(3);
    assert_int_equal(raft_read_index(r, 5), RAFT_OK);
    cx_drain(r, &rd);
    uint64_t ctx = cx_find(&rd, RAFT_MSG_HEARTBEAT, 2)->context;
    raft_msg higher = cx_msg(RAFT_MSG_HEARTBEAT, 3, 1, 3);
    raft_step(r, &higher);
    raft_msg late = hb_resp(2, 3, ctx);
    raft_step(r, &late);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 0);

    /* Re-elected in term 4, its first confirmed round releases only the new read: the old one's
     * index was taken while it may already have been deposed. */
    cx_make_leader(r, NULL);
    assert_int_equal(raft_get_term(r), 4);
    raft_msg a = ack(2, 4, 2);
    raft_step(r, &a);
    cx_drain(r, &rd);
    assert_int_equal(raft_commit_index(r), 2);
    assert_int_equal(raft_read_index(r, 6), RAFT_OK);
    cx_drain(r, &rd);
    ctx = cx_find(&rd, RAFT_MSG_HEARTBEAT, 2)->context;
    raft_msg ok = hb_resp(2, 4, ctx);
    raft_step(r, &ok);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 1);
    assert_int_equal(rd.reads[0].request_id, 6);
    raft_free(r);
}

/* A follower forwards the read to its leader and reports the index the leader answers; a
 * refused answer yields nothing. */
static void followerForwardsReadIndex(void **state)
{
    (void)state;
    raft_config cfg = cx_config(2, 3);
    raft *r = cx_new(&cfg, NULL, 0, hs_of(1, 0));
    raft_msg hb = cx_msg(RAFT_MSG_HEARTBEAT, 1, 2, 1);
    raft_step(r, &hb);
    cx_drain(r, &rd);
    assert_int_equal(raft_read_index(r, 42), RAFT_OK);
    cx_drain(r, &rd);
    const raft_msg *fwd = cx_find(&rd, RAFT_MSG_READ_INDEX, 1);
    assert_non_null(fwd);
    assert_int_equal(fwd->context, 42);

    raft_msg resp = cx_msg(RAFT_MSG_READ_INDEX_RESP, 1, 2, 1);
    resp.context = 42;
    resp.index = 7;
    raft_step(r, &resp);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 1);
    assert_int_equal(rd.reads[0].request_id, 42);
    assert_int_equal(rd.reads[0].index, 7);

    resp.reject = true;
    raft_step(r, &resp);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 0);
    raft_free(r);
}

/* The leader side of a forwarded read: answered with the index once a round confirms it. */
static void leaderAnswersForwardedRead(void **state)
{
    (void)state;
    raft *r = leader_with_commit(3);
    raft_msg req = cx_msg(RAFT_MSG_READ_INDEX, 2, 1, 2);
    req.context = 13;
    raft_step(r, &req);
    cx_drain(r, &rd);
    assert_int_equal(cx_count(&rd, RAFT_MSG_READ_INDEX_RESP, 0), 0);
    uint64_t ctx = cx_find(&rd, RAFT_MSG_HEARTBEAT, 3)->context;
    raft_msg ok = hb_resp(3, 2, ctx);
    raft_step(r, &ok);
    cx_drain(r, &rd);
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_READ_INDEX_RESP, 2);
    assert_non_null(resp);
    assert_false(resp->reject);
    assert_int_equal(resp->context, 13);
    assert_int_equal(resp->index, 1);
    assert_int_equal(rd.n_reads, 0); /* not a local read */
    raft_free(r);
}

/* Multi-node: a read asked on a follower comes back with the leader's commit index. */
static void clusterFollowerReadGetsLeaderCommit(void **state)
{
    (void)state;
    fx f;
    raft_config cfg;
    raft_config_default(&cfg);
    cfg.seed = 5;
    fx_init(&f, 3, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    for (int i = 0; i < 3; i++)
        assert_true(fx_propose(&f, "r") != 0);
    assert_int_equal(raft_read_index(fx_r(&f, 2), 99), RAFT_OK);
    fx_pump(&f);
    assert_int_equal(f.nodes[1].n_reads, 1);
    assert_int_equal(f.nodes[1].reads[0].request_id, 99);
    assert_int_equal(f.nodes[1].reads[0].index, raft_commit_index(fx_r(&f, 1)));
    assert_true(f.nodes[1].last_applied >= f.nodes[1].reads[0].index);
    fx_free(&f);
}

/* A follower that knows no leader (fresh, or a candidate) refuses at once. */
static void followerWithoutLeaderGetsENOLEADER(void **state)
{
    (void)state;
    raft_config cfg = cx_config(2, 3);
    raft *r = cx_new(&cfg, NULL, 0, hs_of(1, 0));
    assert_int_equal(raft_read_index(r, 1), RAFT_ENOLEADER);
    raft_campaign(r);
    assert_int_equal(raft_read_index(r, 2), RAFT_ENOLEADER);
    cx_drain(r, &rd);
    assert_int_equal(cx_count(&rd, RAFT_MSG_READ_INDEX, 0), 0);
    raft_free(r);
}

/* A single-node leader is its own majority: the read is released without any message. */
static void singleNodeReadImmediate(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 1);
    raft *r = cx_new(&cfg, NULL, 0, hs_of(0, 0));
    raft_campaign(r);
    assert_int_equal(raft_get_role(r), RAFT_LEADER);
    cx_drain(r, &rd); /* persists the no-op: it commits */
    assert_int_equal(raft_commit_index(r), 1);
    assert_int_equal(raft_read_index(r, 3), RAFT_OK);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 1);
    assert_int_equal(rd.reads[0].index, 1);
    assert_int_equal(rd.n_msgs, 0);
    raft_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leaderReadReleasedAfterQuorumHeartbeat),
        cmocka_unit_test(leaderReadsReleasedInOrder),
        cmocka_unit_test(newLeaderDelaysReadsUntilNoopCommits),
        cmocka_unit_test(leaderStepDownDropsPendingReads),
        cmocka_unit_test(followerForwardsReadIndex),
        cmocka_unit_test(leaderAnswersForwardedRead),
        cmocka_unit_test(clusterFollowerReadGetsLeaderCommit),
        cmocka_unit_test(followerWithoutLeaderGetsENOLEADER),
        cmocka_unit_test(singleNodeReadImmediate),
    };
    return cmocka_run_group_tests_name("raft_read_index", tests, NULL, NULL);
}
