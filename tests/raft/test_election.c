/*
 * test_election.c -- leader election rules (Raft §5.2, §5.4.1), pre-vote (thesis §9.6) and
 * check-quorum / leader lease (thesis §6.2, §9.6), each on its own with concrete logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "fixture.h"

static cx_ready rd; /* big: keep it off the stack */

static raft_hard_state hs_term(raft_term term)
{
    raft_hard_state hs = {.term = term};
    return hs;
}

static raft_msg vote_req(int type, raft_id from, raft_id to, raft_term term, raft_index last_index,
                         raft_term last_term)
{
    raft_msg m = cx_msg(type, from, to, term);
    m.index = last_index;
    m.log_term = last_term;
    return m;
}

/* Ticks a fresh follower until it campaigns; returns the number of ticks. */
static int ticks_until_campaign(raft *r)
{
    raft_term before = raft_get_term(r);
    for (int t = 1; t <= 1000; t++) {
        raft_tick(r);
        if (raft_get_term(r) != before)
            return t;
    }
    return -1;
}

/* The election timeout is drawn from [election_tick, 2*election_tick), again at every reset, and
 * the draw depends on the seed so that nodes do not keep colliding. */
static void electionTimeoutRandomizedWithinRange(void **state)
{
    (void)state;
    bool seen[40] = {0};
    int distinct = 0;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        raft_config cfg = cx_config(1, 3);
        cfg.seed = seed;
        raft *r = cx_new(&cfg, NULL, 0, hs_term(0));
        int first = ticks_until_campaign(r);
        assert_true(first >= 10 && first < 20);
        /* the candidate's own retry timeout is redrawn in the same range */
        int second = ticks_until_campaign(r);
        assert_true(second >= 10 && second < 20);
        if (!seen[first]) {
            seen[first] = true;
            distinct++;
        }
        raft_free(r);
    }
    assert_true(distinct >= 5); /* 60 seeds over 10 values: a constant timeout would give 1 */
}

/* A candidate needs a majority (3 of 5): one grant is not enough, the second wins, and the new
 * leader's first act is to append and send a no-op of its term after its last entry (§8). */
static void candidateWinsWithMajorityAndSendsNoop(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 5);
    raft_term terms[] = {1, 1};
    raft *r = cx_new(&cfg, terms, 2, hs_term(1));
    raft_campaign(r);
    assert_int_equal(raft_get_role(r), RAFT_CANDIDATE);
    assert_true(cx_take(r, &rd));
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.term, 2);
    assert_int_equal(rd.hard_state.vote, 1);
    assert_int_equal(cx_count(&rd, RAFT_MSG_VOTE, 0), 4);
    for (size_t i = 0; i < rd.n_msgs; i++) {
        assert_int_equal(rd.msgs[i].term, 2);
        assert_int_equal(rd.msgs[i].index, 2);
        assert_int_equal(rd.msgs[i].log_term, 1);
    }

    raft_msg grant = cx_msg(RAFT_MSG_VOTE_RESP, 2, 1, 2);
    raft_step(r, &grant);
    assert_int_equal(raft_get_role(r), RAFT_CANDIDATE);
    raft_msg refuse = cx_msg(RAFT_MSG_VOTE_RESP, 4, 1, 2);
    refuse.reject = true;
    raft_step(r, &refuse);
    assert_int_equal(raft_get_role(r), RAFT_CANDIDATE);
    raft_step(r, &grant); /* a repeated grant from the same voter counts once */
    assert_int_equal(raft_get_role(r), RAFT_CANDIDATE);
    grant.from = 3;
    raft_step(r, &grant);
    assert_int_equal(raft_get_role(r), RAFT_LEADER);
    assert_int_equal(raft_get_leader(r), 1);

    assert_true(cx_take(r, &rd));
    assert_int_equal(rd.role, RAFT_LEADER);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].index, 3);
    assert_int_equal(rd.entries[0].term, 2);
    assert_int_equal(rd.entries[0].type, RAFT_ENTRY_NOOP);
    assert_int_equal(cx_count(&rd, RAFT_MSG_APPEND, 0), 4);
    for (raft_id peer = 2; peer <= 5; peer++) {
        const raft_msg *m = cx_find(&rd, RAFT_MSG_APPEND, peer);
        assert_non_null(m);
        assert_int_equal(m->index, 2);
        assert_int_equal(m->log_term, 1);
        assert_int_equal(m->n_entries, 1);
        assert_int_equal(m->entries[0].index, 3);
        assert_int_equal(m->entries[0].type, RAFT_ENTRY_NOOP);
    }
    raft_free(r);
}

/* A majority of refusals ends the candidacy: back to follower in the same term. */
static void candidateLosesWithMajorityRefusals(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, hs_term(1));
    raft_campaign(r);
    raft_msg refuse = cx_msg(RAFT_MSG_VOTE_RESP, 2, 1, 2);
    refuse.reject = true;
    raft_step(r, &refuse);
    assert_int_equal(raft_get_role(r), RAFT_CANDIDATE);
    refuse.from = 3;
    raft_step(r, &refuse);
    assert_int_equal(raft_get_role(r), RAFT_FOLLOWER);
    assert_int_equal(raft_get_term(r), 2);
    raft_free(r);
}

/* §5.4.1: refuse a candidate whose last entry has a lower term, even if its log is longer. The
 * term is still adopted (it is higher), but the vote stays empty. */
static void voteRefusedLowerLastTerm(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1, 2};
    raft *r = cx_new(&cfg, terms, 3, hs_term(2));
    raft_msg m = vote_req(RAFT_MSG_VOTE, 2, 1, 3, 9, 1);
    raft_step(r, &m);
    assert_true(cx_take(r, &rd));
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_VOTE_RESP, 2);
    assert_non_null(resp);
    assert_true(resp->reject);
    assert_int_equal(resp->term, 3);
    assert_int_equal(raft_get_term(r), 3);
    assert_int_equal(raft_get_vote(r), 0);
    assert_int_equal(rd.hard_state.vote, 0);
    raft_free(r);
}

/* §5.4.1: same last term but a shorter log is refused; equal or longer is granted. */
static void voteRefusedSameTermShorterLog(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 2, 2};
    raft *r = cx_new(&cfg, terms, 3, hs_term(2));
    raft_msg m = vote_req(RAFT_MSG_VOTE, 2, 1, 3, 2, 2);
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_true(cx_find(&rd, RAFT_MSG_VOTE_RESP, 2)->reject);
    assert_int_equal(raft_get_vote(r), 0);

    m = vote_req(RAFT_MSG_VOTE, 3, 1, 3, 3, 2); /* same length, same last term: up to date */
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_false(cx_find(&rd, RAFT_MSG_VOTE_RESP, 3)->reject);
    assert_int_equal(raft_get_vote(r), 3);
    raft_free(r);
}

/* A higher last term wins over length: a shorter log ending in a newer term is up to date. */
static void voteGrantedHigherLastTermShorterLog(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1, 1, 1, 2};
    raft *r = cx_new(&cfg, terms, 5, hs_term(3));
    raft_msg m = vote_req(RAFT_MSG_VOTE, 2, 1, 4, 2, 3);
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_false(cx_find(&rd, RAFT_MSG_VOTE_RESP, 2)->reject);
    assert_int_equal(raft_get_vote(r), 2);
    raft_free(r);
}

/* At most one vote per term: a second candidate of the same term is refused, the first one's
 * retransmitted request is granted again (idempotent), and a new term frees the vote. */
static void voteGrantedAtMostOncePerTerm(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 5);
    raft *r = cx_new(&cfg, NULL, 0, hs_term(1));
    raft_msg m = vote_req(RAFT_MSG_VOTE, 2, 1, 2, 0, 0);
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_false(cx_find(&rd, RAFT_MSG_VOTE_RESP, 2)->reject);

    m = vote_req(RAFT_MSG_VOTE, 3, 1, 2, 0, 0);
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_true(cx_find(&rd, RAFT_MSG_VOTE_RESP, 3)->reject);
    assert_int_equal(raft_get_vote(r), 2);
    assert_false(rd.hard_state_changed);

    m = vote_req(RAFT_MSG_VOTE, 2, 1, 2, 0, 0);
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_false(cx_find(&rd, RAFT_MSG_VOTE_RESP, 2)->reject);

    m = vote_req(RAFT_MSG_VOTE, 3, 1, 3, 0, 0);
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_false(cx_find(&rd, RAFT_MSG_VOTE_RESP, 3)->reject);
    assert_int_equal(rd.hard_state.term, 3);
    assert_int_equal(rd.hard_state.vote, 3);
    raft_free(r);
}

/* A candidate has voted for itself: it refuses another candidate of its term. */
static void candidateRefusesOtherCandidateSameTerm(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, hs_term(1));
    raft_campaign(r);
    cx_take(r, &rd);
    raft_msg m = vote_req(RAFT_MSG_VOTE, 2, 1, 2, 5, 1);
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_true(cx_find(&rd, RAFT_MSG_VOTE_RESP, 2)->reject);
    assert_int_equal(raft_get_vote(r), 1);
    assert_int_equal(raft_get_role(r), RAFT_CANDIDATE);
    raft_free(r);
}

/* A message of a higher term makes a leader step down and adopt the term (§5.1); an append or
 * heartbeat also names the new leader, anything else leaves the leader unknown. */
static void recvHigherTermLeaderStepsDown(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, hs_term(1));
    cx_make_leader(r, NULL);
    assert_int_equal(raft_get_term(r), 2);
    raft_msg hb = cx_msg(RAFT_MSG_HEARTBEAT, 3, 1, 5);
    raft_step(r, &hb);
    assert_int_equal(raft_get_role(r), RAFT_FOLLOWER);
    assert_int_equal(raft_get_term(r), 5);
    assert_int_equal(raft_get_leader(r), 3);
    cx_take(r, &rd);
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.term, 5);
    assert_int_equal(rd.hard_state.vote, 0);
    raft_free(r);

    r = cx_new(&cfg, NULL, 0, hs_term(1));
    cx_make_leader(r, NULL);
    raft_msg resp = cx_msg(RAFT_MSG_APPEND_RESP, 2, 1, 4);
    raft_step(r, &resp);
    assert_int_equal(raft_get_role(r), RAFT_FOLLOWER);
    assert_int_equal(raft_get_term(r), 4);
    assert_int_equal(raft_get_leader(r), 0);
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "x", 1, NULL, NULL), RAFT_ENOTLEADER);
    raft_free(r);
}

/* A candidate steps down on a higher-term refusal, and on an append of its own term (a leader
 * was elected in its term). */
static void recvHigherTermCandidateStepsDown(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, hs_term(1));
    raft_campaign(r);
    raft_msg refuse = cx_msg(RAFT_MSG_VOTE_RESP, 2, 1, 7);
    refuse.reject = true;
    raft_step(r, &refuse);
    assert_int_equal(raft_get_role(r), RAFT_FOLLOWER);
    assert_int_equal(raft_get_term(r), 7);
    raft_free(r);

    r = cx_new(&cfg, NULL, 0, hs_term(1));
    raft_campaign(r);
    raft_msg app = cx_msg(RAFT_MSG_APPEND, 3, 1, 2);
    raft_step(r, &app);
    assert_int_equal(raft_get_role(r), RAFT_FOLLOWER);
    assert_int_equal(raft_get_term(r), 2);
    assert_int_equal(raft_get_leader(r), 3);
    assert_int_equal(raft_get_vote(r), 1); /* its own vote of term 2 stays */
    raft_free(r);
}

/* A message of a lower term changes nothing; a stale leader's append is answered with our term
 * (so it steps down) when pre-vote or check-quorum is on. */
static void recvStaleTerm(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    cfg.check_quorum = true;
    raft *r = cx_new(&cfg, NULL, 0, hs_term(5));
    raft_msg app = cx_msg(RAFT_MSG_APPEND, 2, 1, 3);
    raft_step(r, &app);
    assert_int_equal(raft_get_term(r), 5);
    assert_int_equal(raft_get_leader(r), 0);
    cx_take(r, &rd);
    assert_false(rd.hard_state_changed);
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_APPEND_RESP, 2);
    assert_non_null(resp);
    assert_int_equal(resp->term, 5);

    raft_msg vote = vote_req(RAFT_MSG_VOTE, 2, 1, 4, 100, 4);
    raft_step(r, &vote);
    assert_int_equal(raft_get_vote(r), 0);
    assert_int_equal(raft_get_term(r), 5);
    raft_free(r);
}

/* The ordering rule: the vote and its term are in the same Ready as the granting response, so
 * the caller persists them before the response leaves. While a Ready is outstanding, the vote
 * waits for the next one -- together with its hard state. */
static void voteHardStateInSameReadyAsResponse(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, hs_term(1));
    raft_msg m = vote_req(RAFT_MSG_VOTE, 2, 1, 2, 0, 0);
    raft_step(r, &m);
    assert_true(cx_take(r, &rd));
    assert_non_null(cx_find(&rd, RAFT_MSG_VOTE_RESP, 2));
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.term, 2);
    assert_int_equal(rd.hard_state.vote, 2);

    /* Now with a Ready outstanding while the request arrives. */
    raft *r2 = cx_new(&cfg, NULL, 0, hs_term(1));
    raft_msg hb = cx_msg(RAFT_MSG_HEARTBEAT, 3, 1, 1);
    raft_step(r2, &hb);
    raft_ready outstanding;
    assert_true(raft_has_ready(r2));
    raft_ready_get(r2, &outstanding);
    assert_int_equal(outstanding.n_msgs, 1); /* the heartbeat response only */
    assert_false(outstanding.hard_state_changed);
    raft_step(r2, &m); /* a higher term forgets leader 3, so the vote is free */
    assert_false(raft_has_ready(r2));
    raft_advance(r2, &outstanding);
    cx_drain(r2, &rd);
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_VOTE_RESP, 2);
    assert_non_null(resp);
    assert_false(resp->reject);
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.vote, 2);
    assert_int_equal(rd.hard_state.term, 2);
    raft_free(r);
    raft_free(r2);
}

/* ---------------------------------------------------------------------------------------------- */
/* Pre-vote */

/* A pre-candidate asks for term + 1 but neither bumps its term nor votes for itself durably. */
static void preCandidateKeepsTermAndVote(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    cfg.pre_vote = true;
    raft_term terms[] = {1, 3};
    raft *r = cx_new(&cfg, terms, 2, hs_term(3));
    raft_campaign(r);
    assert_int_equal(raft_get_role(r), RAFT_PRE_CANDIDATE);
    assert_int_equal(raft_get_term(r), 3);
    assert_int_equal(raft_get_vote(r), 0);
    assert_true(cx_take(r, &rd));
    assert_false(rd.hard_state_changed);
    assert_int_equal(cx_count(&rd, RAFT_MSG_PREVOTE, 0), 2);
    const raft_msg *m = cx_find(&rd, RAFT_MSG_PREVOTE, 2);
    assert_int_equal(m->term, 4);
    assert_int_equal(m->index, 2);
    assert_int_equal(m->log_term, 3);

    /* one granted pre-vote (2 of 3 with itself) starts the real election */
    raft_msg grant = cx_msg(RAFT_MSG_PREVOTE_RESP, 2, 1, 4);
    raft_step(r, &grant);
    assert_int_equal(raft_get_role(r), RAFT_CANDIDATE);
    assert_int_equal(raft_get_term(r), 4);
    raft_free(r);
}

/* Answering a pre-vote, granted or refused, never changes the voter's term or vote. */
static void preVoteNeverChangesVoterTermOrVote(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    cfg.pre_vote = true;
    raft_term terms[] = {1, 2};
    raft_hard_state hs = {.term = 3, .vote = 3};
    raft *r = cx_new(&cfg, terms, 2, hs);

    raft_msg m = vote_req(RAFT_MSG_PREVOTE, 2, 1, 4, 2, 2); /* up to date: granted */
    raft_step(r, &m);
    assert_true(cx_take(r, &rd));
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_PREVOTE_RESP, 2);
    assert_non_null(resp);
    assert_false(resp->reject);
    assert_int_equal(resp->term, 4); /* answered in the future term, so the pre-candidate counts it */
    assert_false(rd.hard_state_changed);
    assert_int_equal(raft_get_term(r), 3);
    assert_int_equal(raft_get_vote(r), 3);

    m = vote_req(RAFT_MSG_PREVOTE, 2, 1, 9, 1, 1); /* stale log: refused */
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_true(cx_find(&rd, RAFT_MSG_PREVOTE_RESP, 2)->reject);
    assert_false(rd.hard_state_changed);
    assert_int_equal(raft_get_term(r), 3);
    assert_int_equal(raft_get_vote(r), 3);
    raft_free(r);
}

static raft_config cluster_cfg(bool pre_vote, bool check_quorum)
{
    raft_config cfg;
    raft_config_default(&cfg);
    cfg.seed = 7;
    cfg.pre_vote = pre_vote;
    cfg.check_quorum = check_quorum;
    return cfg;
}

/* A node cut off from the others keeps failing pre-votes without raising its term; when it comes
 * back (its log now behind) it neither raises anybody's term nor deposes the leader. */
static void preVotePartitionedNodeRejoinsWithoutDisruption(void **state)
{
    (void)state;
    fx f;
    raft_config cfg = cluster_cfg(true, false);
    fx_init(&f, 3, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    raft_term term = raft_get_term(fx_r(&f, 1));
    fx_isolate(&f, 3, true);
    for (int i = 0; i < 5; i++)
        assert_true(fx_propose(&f, "w") != 0);
    fx_tick_all(&f, 100); /* several election timeouts for node 3 */
    assert_true(raft_get_stats(fx_r(&f, 3)).elections >= 3);
    assert_int_equal(raft_get_term(fx_r(&f, 3)), term);

    fx_isolate(&f, 3, false);
    fx_tick_all(&f, 100);
    assert_int_equal(fx_leader(&f), 1);
    for (int id = 1; id <= 3; id++)
        assert_int_equal(raft_get_term(fx_r(&f, id)), term);
    assert_int_equal(raft_get_leader(fx_r(&f, 3)), 1);
    /* The heartbeat round alone repaired node 3's log. */
    assert_int_equal(raft_last_index(fx_r(&f, 3)), raft_last_index(fx_r(&f, 1)));
    fx_free(&f);
}

/* Without pre-vote the same partition does disrupt: the rejoining node's inflated term deposes
 * the leader. (Shows the test above can tell the difference.) */
static void noPreVotePartitionedNodeRaisesTerm(void **state)
{
    (void)state;
    fx f;
    raft_config cfg = cluster_cfg(false, false);
    fx_init(&f, 3, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    raft_term term = raft_get_term(fx_r(&f, 1));
    fx_isolate(&f, 3, true);
    assert_true(fx_propose(&f, "w") != 0);
    fx_tick_all(&f, 100);
    assert_true(raft_get_term(fx_r(&f, 3)) > term);
    fx_isolate(&f, 3, false);
    fx_tick_all(&f, 100);
    assert_true(raft_get_term(fx_r(&f, 1)) > term);
    fx_free(&f);
}

/* ---------------------------------------------------------------------------------------------- */
/* Check-quorum and the leader lease */

/* Ticks node id (and only it) until it is no longer leader; fails after 1000. */
static int ticks_to_step_down(fx *f, int id)
{
    int ticks = 0;
    while (raft_get_role(fx_r(f, id)) == RAFT_LEADER && ticks < 1000) {
        fx_tick(f, id);
        ticks++;
    }
    assert_int_equal(raft_get_role(fx_r(f, id)), RAFT_FOLLOWER);
    return ticks;
}

/* A leader that hears from no majority steps down: not before an election timeout, and at the
 * latest after the second check (the first check still counts the peers that elected it). */
static void checkQuorumIsolatedLeaderStepsDown(void **state)
{
    (void)state;
    fx f;
    raft_config cfg = cluster_cfg(true, true);
    fx_init(&f, 3, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    fx_isolate(&f, 1, true);
    int ticks = ticks_to_step_down(&f, 1);
    assert_true(ticks >= (int)cfg.election_tick);
    assert_true(ticks <= 2 * (int)cfg.election_tick);
    assert_int_equal(raft_propose(fx_r(&f, 1), RAFT_ENTRY_NORMAL, "x", 1, NULL, NULL),
                     RAFT_ENOTLEADER);
    fx_free(&f);
}

/* check_quorum_tick longer than the election timeout: a leader whose followers go silent for less
 * than it (a follower blocked on its disk) keeps leading; cut off for longer, it steps down after
 * one to two windows. */
static void checkQuorumLongerWindow(void **state)
{
    (void)state;
    fx f;
    raft_config cfg = cluster_cfg(true, true);
    cfg.check_quorum_tick = 4 * cfg.election_tick;
    fx_init(&f, 3, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    raft_term term = raft_get_term(fx_r(&f, 1));
    for (int round = 0; round < 5; round++) {
        fx_isolate(&f, 1, true);
        for (int i = 0; i < 3 * (int)cfg.election_tick; i++)
            fx_tick(&f, 1); /* silent for 3 election timeouts: less than the window */
        assert_int_equal(raft_get_role(fx_r(&f, 1)), RAFT_LEADER);
        fx_isolate(&f, 1, false);
        fx_tick(&f, 1); /* a heartbeat round: both followers answer */
    }
    assert_int_equal(raft_get_term(fx_r(&f, 1)), term);
    fx_isolate(&f, 1, true);
    int ticks = ticks_to_step_down(&f, 1);
    assert_true(ticks >= (int)cfg.check_quorum_tick - 3 * (int)cfg.election_tick);
    assert_true(ticks <= 2 * (int)cfg.check_quorum_tick);
    fx_free(&f);
}

/* The counterpart: a connected leader keeps leading through many checks. */
static void checkQuorumConnectedLeaderStays(void **state)
{
    (void)state;
    fx f;
    raft_config cfg = cluster_cfg(true, true);
    fx_init(&f, 3, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    raft_term term = raft_get_term(fx_r(&f, 1));
    fx_isolate(&f, 3, true); /* a majority (1, 2) is still enough */
    fx_tick_all(&f, 10 * (int)cfg.election_tick);
    assert_int_equal(fx_leader(&f), 1);
    assert_int_equal(raft_get_term(fx_r(&f, 1)), term);
    fx_free(&f);
}

/* Lease: a follower that heard from its leader less than an election timeout ago ignores a
 * higher-term vote request entirely (no answer, no term change); once the leader has been
 * silent for an election timeout, the same request is granted. */
static void leaseIgnoresHigherTermVoteRequest(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    cfg.check_quorum = true;
    cfg.pre_vote = true; /* its own timeout then only pre-campaigns: term and vote stay */
    raft *r = cx_new(&cfg, NULL, 0, hs_term(2));
    raft_msg hb = cx_msg(RAFT_MSG_HEARTBEAT, 2, 1, 2);
    raft_step(r, &hb);
    cx_drain(r, &rd);
    for (uint32_t t = 0; t + 1 < cfg.election_tick; t++)
        raft_tick(r);
    raft_msg m = vote_req(RAFT_MSG_VOTE, 3, 1, 3, 10, 2);
    raft_step(r, &m);
    assert_int_equal(raft_get_term(r), 2);
    assert_int_equal(raft_get_vote(r), 0);
    assert_int_equal(raft_get_leader(r), 2);
    cx_drain(r, &rd);
    assert_int_equal(cx_count(&rd, RAFT_MSG_VOTE_RESP, 0), 0);
    assert_false(rd.hard_state_changed);

    raft_tick(r); /* now an election timeout without the leader */
    raft_step(r, &m);
    cx_drain(r, &rd);
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_VOTE_RESP, 3);
    assert_non_null(resp);
    assert_false(resp->reject);
    assert_int_equal(raft_get_term(r), 3);
    assert_int_equal(raft_get_vote(r), 3);
    raft_free(r);
}

/* With check-quorum the lease also protects against a rejoining node whose log is NOT behind:
 * its pre-votes are ignored while the leader is alive. */
static void leaseProtectsLeaderFromUpToDateRejoiner(void **state)
{
    (void)state;
    fx f;
    raft_config cfg = cluster_cfg(true, true);
    fx_init(&f, 3, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    raft_term term = raft_get_term(fx_r(&f, 1));
    fx_isolate(&f, 3, true);
    fx_tick_all(&f, 100);
    fx_isolate(&f, 3, false);
    fx_tick_all(&f, 100);
    assert_int_equal(fx_leader(&f), 1);
    for (int id = 1; id <= 3; id++)
        assert_int_equal(raft_get_term(fx_r(&f, id)), term);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(electionTimeoutRandomizedWithinRange),
        cmocka_unit_test(candidateWinsWithMajorityAndSendsNoop),
        cmocka_unit_test(candidateLosesWithMajorityRefusals),
        cmocka_unit_test(voteRefusedLowerLastTerm),
        cmocka_unit_test(voteRefusedSameTermShorterLog),
        cmocka_unit_test(voteGrantedHigherLastTermShorterLog),
        cmocka_unit_test(voteGrantedAtMostOncePerTerm),
        cmocka_unit_test(candidateRefusesOtherCandidateSameTerm),
        cmocka_unit_test(recvHigherTermLeaderStepsDown),
        cmocka_unit_test(recvHigherTermCandidateStepsDown),
        cmocka_unit_test(recvStaleTerm),
        cmocka_unit_test(voteHardStateInSameReadyAsResponse),
        cmocka_unit_test(preCandidateKeepsTermAndVote),
        cmocka_unit_test(preVoteNeverChangesVoterTermOrVote),
        cmocka_unit_test(preVotePartitionedNodeRejoinsWithoutDisruption),
        cmocka_unit_test(noPreVotePartitionedNodeRaisesTerm),
        cmocka_unit_test(checkQuorumIsolatedLeaderStepsDown),
        cmocka_unit_test(checkQuorumConnectedLeaderStays),
        cmocka_unit_test(checkQuorumLongerWindow),
        cmocka_unit_test(leaseIgnoresHigherTermVoteRequest),
        cmocka_unit_test(leaseProtectsLeaderFromUpToDateRejoiner),
    };
    return cmocka_run_group_tests_name("raft_election", tests, NULL, NULL);
}
