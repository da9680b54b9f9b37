/*
 * info.h -- a node's Raft state from its RESP `INFO` reply.
 *
 * INFO answers a bulk string of "# Section" headers and "key:value" lines (Redis' format). The
 * front-end adds a "# Raft" section: role, term, leader, commit, applied and per-peer match
 * indexes. Parsing is tolerant: unknown lines are ignored, any field may be missing (its has_ flag
 * stays false), and a few spellings are accepted for each field: inside the Raft section the bare
 * name or its long form (term/current_term, commit/commit_index, applied/last_applied/
 * applied_index, leader/leader_id, id/node_id), anywhere the same names prefixed with "raft_".
 * "voters:" (comma-separated ids) says whether the node counts itself a voter, "learners:" whether
 * a learner.
 *
 * OWNERSHIP. info_fetch returns a malloc'd NUL-terminated text the caller frees. THREADS: reentrant.
 */
#ifndef RAFTKV_INFO_H
#define RAFTKV_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INFO_MAX_REPLY (1024 * 1024)

typedef struct info_state {
    bool has_id, has_role, has_term, has_leader, has_commit, has_applied;
    uint64_t id;
    char role[24]; /* "leader", "follower", "candidate", "pre-candidate"... as the node says */
    uint64_t term;
    uint64_t leader; /* 0 = none known */
    uint64_t commit;
    uint64_t applied;
    bool has_voter; /* the node's INFO has "voters:" and its id */
    bool voter;     /* ... and its id is in that list (a spare or a removed node is not) */
    bool learner;   /* its id is in its "learners:" list (has_voter set too) */
} info_state;

enum { INFO_OK = 0, INFO_ECONN = -1, INFO_EPROTO = -2, INFO_ENOMEM = -3 };

/* Sends INFO to host:port (RESP2) and returns the bulk text. err names the address on failure. */
int info_fetch(const char *host, uint16_t port, int timeout_ms, char **text, size_t *len,
               char *err, size_t errcap);
/* The same for any request (RESP2, whole) whose reply is a bulk string; what names it in err. An
 * error reply is INFO_EPROTO with its text in err. */
int info_fetch_bulk(const char *host, uint16_t port, int timeout_ms, const char *request,
                    const char *what, char **text, size_t *len, char *err, size_t errcap);

/* Never fails: fields not found keep has_X = false. */
void info_parse(const char *text, size_t len, info_state *out);

/* True when role names the leader ("leader", or Redis' "master"). */
bool info_is_leader(const info_state *state);

#endif /* RAFTKV_INFO_H */
