/*
 * lincheck.h -- checkers for the histories that raftkv-torture records.
 *
 * HISTORY FORMAT (one operation per line, fields separated by one TAB; '#' starts a comment line):
 *
 *   client  op  key  arg1  arg2  invoke_us  complete_us  outcome  result
 *
 *   client       integer, the client (thread) that ran the operation
 *   op           register: read | write | cas     append-set: add | read
 *                multi-key: mset | mget           ttl: setttl | read
 *   key          the register key, set name, key group or TTL key (no whitespace)
 *   arg1, arg2   write: arg1 = value; cas: arg1 = expected value, arg2 = new value;
 *                add: arg1 = element; mset: arg1 = the value written to every key of the group;
 *                setttl: arg1 = value, arg2 = time to live in ms; '-' when unused
 *   invoke_us    when the client sent the request (microseconds, any common origin)
 *   complete_us  when it saw the outcome; ignored (may be '-') when the outcome is unknown
 *   outcome      ok      the operation took effect and result is what the system answered
 *                fail    it certainly did not take effect (refused, redirected, read error)
 *                unknown it may or may not have taken effect (timeout, connection lost)
 *   result       read: the value read, '-' for none; cas: true | false (false = the store held
 *                another value; it is still a completed operation); set read: comma-separated
 *                elements, '-' for none; mget: comma-separated values, '-' for a missing key;
 *                otherwise '-'
 *
 * Values and elements are opaque words without whitespace or ','; '-' alone means "no value".
 *
 * CHECKERS.
 *   lc_check_register  linearizability of read/write/cas registers, one key at a time (keys are
 *                      independent, so the history is linearizable iff every key's sub-history is).
 *                      The Wing-Gong search as refined by Lowe: a linked list of call/return events;
 *                      an operation is linearized by lifting both of its events; a return event
 *                      reached before its operation was linearized forces a backtrack. Visited
 *                      (set of linearized operations, register value) pairs are memoized, so each
 *                      configuration is explored once. Unknown-outcome writes and cas never return
 *                      (their completion is +infinity) and need not be linearized at all; unknown
 *                      and failed reads are dropped (reads change nothing).
 *   lc_check_set       every acknowledged add is in every final read that began after it;
 *                      no read holds an element that was never added.
 *   lc_check_multi     every mget of a group returns one value for all keys of the group (never a
 *                      mix of two msets), and only values that some mset wrote.
 *   lc_check_ttl       a key set with a TTL is gone in every read invoked later than its deadline
 *                      (set completion + ttl + tolerance) and present in every read that completed
 *                      before (set invocation + ttl - tolerance) and started after the set completed;
 *                      a read sees the key's one set value or nothing, never a failed set's.
 *
 * Each checker writes a human explanation of every violation to `out` (naming the history line
 * numbers of the offending operations) and a one-line summary. Return: LC_VALID, LC_VIOLATION,
 * or LC_UNDECIDED (register: the search budget ran out) ; never exits.
 *
 * OWNERSHIP. lc_history owns its operations and strings; free with lc_history_free.
 * THREADS. A history is read-only during a register check (the list checkers intern the words of
 * list results, so give each thread its own history); checkers keep no global state.
 */
#ifndef RAFTKV_LINCHECK_H
#define RAFTKV_LINCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { LC_VALID = 0, LC_VIOLATION = 1, LC_UNDECIDED = 3, LC_EBAD = -1 };

typedef enum lc_kind {
    LC_READ = 1, LC_WRITE, LC_CAS, LC_ADD, LC_MSET, LC_MGET, LC_SETTTL
} lc_kind;

typedef enum lc_outcome { LC_OK = 1, LC_FAIL, LC_UNKNOWN } lc_outcome;

#define LC_NIL 0u /* interned id of "-" (no value) */

typedef struct lc_op {
    uint32_t line;     /* line in the history text, for messages */
    int32_t client;
    lc_kind kind;
    lc_outcome outcome;
    uint32_t key;      /* interned ids (lc_history.strings) */
    uint32_t arg1, arg2;
    uint32_t result;   /* interned; cas: the id of "true" or "false" */
    int64_t invoke, complete; /* complete = INT64_MAX when outcome is unknown */
} lc_op;

typedef struct lc_history lc_history;

/* Parses a whole history text (NUL-terminated; `name` is only used in messages). Returns NULL
 * on a malformed line with the reason in err ("hist.tsv:12: field 6 (invoke_us): ..."). */
lc_history *lc_history_parse(const char *text, const char *name, char *err, size_t errlen);
/* Reads and parses a file ("-" = stdin). */
lc_history *lc_history_load(const char *path, char *err, size_t errlen);
void lc_history_free(lc_history *h);

size_t lc_history_len(const lc_history *h);
const lc_op *lc_history_op(const lc_history *h, size_t i);
/* The text of an interned id (valid while h lives). */
const char *lc_str(const lc_history *h, uint32_t id);

typedef struct lc_stats {
    uint64_t ops_checked;   /* operations that took part in the check */
    uint64_t keys;
    uint64_t configurations;/* register: memoized (linearized set, value) pairs */
    uint64_t violations;
} lc_stats;

/* max_configurations: search budget per key (0 = unlimited). The _jobs form checks keys on up to
 * `jobs` threads (the output is the same, in key order). */
int lc_check_register(const lc_history *h, uint64_t max_configurations, FILE *out, lc_stats *st);
int lc_check_register_jobs(const lc_history *h, uint64_t max_configurations, unsigned jobs,
                           FILE *out, lc_stats *st);
int lc_check_set(const lc_history *h, FILE *out, lc_stats *st);
int lc_check_multi(const lc_history *h, FILE *out, lc_stats *st);
int lc_check_ttl(const lc_history *h, int64_t tolerance_us, FILE *out, lc_stats *st);

/* Writes a random linearizable register history of n_ops operations by `clients` clients over
 * `keys` keys to out (the format above); about unknown_percent of the writes get an unknown
 * outcome (half of those took effect). Deterministic in seed. For tests and benchmarks. */
void lc_generate_register(FILE *out, uint64_t seed, size_t n_ops, int clients, int keys,
                          int unknown_percent);

#endif /* RAFTKV_LINCHECK_H */
