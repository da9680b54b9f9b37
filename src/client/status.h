/*
 * status.h -- the cluster table of `raftkv status` and `raftkv cluster status`.
 *
 * Every node of the list is asked for INFO on its RESP port, one after the other; a node that
 * cannot be reached (or has no known RESP port) is shown as "down" and never stops the others.
 * `raftkv status` first adds the members the list lacks (status_add_members).
 *
 *     ID  ADDRESS          ROLE      TERM  LEADER  COMMIT  APPLIED  LAG
 *     1   127.0.0.1:7001   leader    3     1       120     120      0
 *     2   127.0.0.1:7002   follower  3     1       120     118      2
 *     3   127.0.0.1:7003   down      -     -       -       -        -
 *
 * LAG = the leader's commit index - this node's applied index. With no node reporting itself as
 * leader, the highest commit index seen stands in for it (and the leader column shows what each
 * node believes). A field a node did not report is shown as "-".
 *
 * OWNERSHIP. status_collect allocates rows (count = nodes->count); free with free(). THREADS: any.
 */
#ifndef RAFTKV_STATUS_H
#define RAFTKV_STATUS_H

#include <stdbool.h>
#include <stdio.h>

#include "endpoints.h"
#include "info.h"

typedef struct status_row {
    const ep_node *node; /* points into the ep_list given to status_collect */
    bool up;
    char error[640]; /* why the node is down */
    info_state state;
} status_row;

/* Adds to nodes (a peers file's: the ids are known) the members the cluster knows that nodes
 * lacks (joined by address, so in no peers file): RAFTKV.MEMBER LIST from nodes->nodes[ask], the
 * leader (a node without one would hold the request up to its leader wait). Best effort: the
 * number added, 0 when it did not answer. nodes->nodes may move: rows that point into it must
 * be collected again. */
int status_add_members(ep_list *nodes, size_t ask, int timeout_ms);
/* NULL only when out of memory. */
status_row *status_collect(const ep_list *nodes, int timeout_ms);
/* Index of the row that reports itself leader with the highest term, or -1. */
int status_leader(const status_row *rows, size_t count);
void status_print(FILE *out, const status_row *rows, size_t count);
/* One line per down node with the reason (stderr material). */
void status_print_errors(FILE *out, const status_row *rows, size_t count);

#endif /* RAFTKV_STATUS_H */
