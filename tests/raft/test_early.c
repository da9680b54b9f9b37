/*
 * test_early.c -- raft_take_messages: what may be sent before the Ready that holds it is durable.
 * Heartbeats (and so elections) must not wait for a slow fsync; votes and append answers must.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"

static cx_ready rd;

static size_t count_type(const raft_msg *msgs, size_t n, int type)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += msgs[i].type == type;
    return c;
}

/* A leader whose disk write is in flight keeps sending heartbeats. */
static void heartbeatsLeaveWhileReadyOutstanding(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    cx_make_leader(r, NULL);
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "a", 1, NULL, NULL), RAFT_OK);
    raft_ready outstanding;
    raft_ready_get(r, &outstanding);
    assert_false(raft_has_ready(r));
    for (uint32_t t = 0; t < cfg.heartbeat_tick; t++)
        raft_tick(r);
    raft_msg *msgs;
    size_t n = raft_take_messages(r, &msgs);
    assert_int_equal(count_type(msgs, n, RAFT_MSG_HEARTBEAT), 2);
    raft_messages_free(msgs, n);
    assert_int_equal(raft_take_messages(r, &msgs), 0); /* taken means gone */
    assert_null(msgs);
    raft_advance(r, &outstanding);
    raft_free(r);
}

/* Proposals made during the leader's write are replicated at once, not after it. */
static void proposalsReplicatedWhileLeaderWrites(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    cx_make_leader(r, NULL);
    raft_msg ack = cx_msg(RAFT_MSG_APPEND_RESP, 2, 1, raft_get_term(r));
    ack.index = raft_last_index(r);
    raft_step(r, &ack);
    cx_drain(r, &rd);
    raft_ready outstanding;
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "a", 1, NULL, NULL), RAFT_OK);
    raft_ready_get(r, &outstanding);
    for (int i = 0; i < 3; i++)
        assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "b", 1, NULL, NULL), RAFT_OK);
    raft_msg *msgs;
    size_t n = raft_take_messages(r, &msgs);
    size_t entries_to_2 = 0;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].type == RAFT_MSG_APPEND && msgs[i].to == 2)
            entries_to_2 += msgs[i].n_entries;
    assert_int_equal(entries_to_2, 3); /* one batch with the three proposals */
    raft_messages_free(msgs, n);
    raft_advance(r, &outstanding);
    raft_free(r);
}

/* A follower's vote and its append acknowledgement wait for their Ready (they promise durable
 * state); its heartbeat answer does not. */
static void votesAndAppendAnswersWait(void **state)
{
    (void)state;
    raft_config cfg = cx_config(2, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    raft_msg vote = cx_msg(RAFT_MSG_VOTE, 1, 2, 2);
    raft_step(r, &vote);
    raft_msg *msgs;
    assert_int_equal(raft_take_messages(r, &msgs), 0);
    assert_true(cx_take(r, &rd));
    assert_non_null(cx_find(&rd, RAFT_MSG_VOTE_RESP, 1));
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.vote, 1);

    raft_msg app = cx_msg(RAFT_MSG_APPEND, 1, 2, 2);
    raft_entry e = {.term = 2, .index = 1, .type = RAFT_ENTRY_NOOP};
    app.entries = &e;
    app.n_entries = 1;
    raft_step(r, &app);
    raft_msg hb = cx_msg(RAFT_MSG_HEARTBEAT, 1, 2, 2);
    hb.context = 9;
    raft_step(r, &hb);
    size_t n = raft_take_messages(r, &msgs);
    assert_int_equal(n, 1);
    assert_int_equal(msgs[0].type, RAFT_MSG_HEARTBEAT_RESP);
    assert_int_equal(msgs[0].context, 9);
    raft_messages_free(msgs, n);
    assert_true(cx_take(r, &rd));
    assert_int_equal(rd.n_entries, 1);
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_APPEND_RESP, 1);
    assert_non_null(resp);
    assert_int_equal(resp->index, 1);
    raft_free(r);
}

/* Only a Ready with entries, a snapshot, a truncation or a new term/vote needs an fsync; a
 * commit-only Ready does not (no fsync per commit). */
static void mustSyncOnlyForDurableState(void **state)
{
    (void)state;
    raft_config cfg = cx_config(2, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    raft_msg vote = cx_msg(RAFT_MSG_VOTE, 1, 2, 2);
    raft_step(r, &vote);
    raft_ready rdy;
    raft_ready_get(r, &rdy);
    assert_true(rdy.must_sync); /* the vote */
    raft_advance(r, &rdy);

    raft_msg app = cx_msg(RAFT_MSG_APPEND, 1, 2, 2);
    raft_entry e = {.term = 2, .index = 1, .type = RAFT_ENTRY_NOOP};
    app.entries = &e;
    app.n_entries = 1;
    raft_step(r, &app);
    raft_ready_get(r, &rdy);
    assert_true(rdy.must_sync); /* the entry */
    raft_advance(r, &rdy);

    raft_msg hb = cx_msg(RAFT_MSG_HEARTBEAT, 1, 2, 2);
    hb.commit = 1;
    raft_step(r, &hb);
    raft_ready_get(r, &rdy);
    assert_true(rdy.hard_state_changed);
    assert_int_equal(rdy.hard_state.commit, 1);
    assert_false(rdy.must_sync); /* commit only */
    assert_int_equal(rdy.n_committed, 1);
    raft_advance(r, &rdy);
    raft_free(r);
}

/* The election timeout is drawn from [election_tick, election_tick_max). */
static void electionTimeoutWithinConfiguredRange(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 50; seed++) {
        raft_config cfg = cx_config(1, 3);
        cfg.election_tick = 10;
        cfg.election_tick_max = 13;
        cfg.seed = seed;
        raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
        int ticks = 0;
        while (raft_get_role(r) == RAFT_FOLLOWER && ticks < 100) {
            raft_tick(r);
            ticks++;
        }
        assert_true(ticks >= 10 && ticks < 13);
        raft_free(r);
    }
    raft_config bad = cx_config(1, 3);
    bad.election_tick_max = bad.election_tick;
    raft *r = NULL;
    assert_int_equal(raft_new(&bad, NULL, &r), RAFT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(heartbeatsLeaveWhileReadyOutstanding),
        cmocka_unit_test(proposalsReplicatedWhileLeaderWrites),
        cmocka_unit_test(votesAndAppendAnswersWait),
        cmocka_unit_test(electionTimeoutWithinConfiguredRange),
        cmocka_unit_test(mustSyncOnlyForDurableState),
    };
    return cmocka_run_group_tests_name("raft_early", tests, NULL, NULL);
}
