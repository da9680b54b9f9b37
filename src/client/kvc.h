/*
 * kvc.h -- runs one text-protocol command against a cluster: picks a node, follows
 * ERR_REDIRECT to the leader, skips nodes that are down, retries what is safe to retry.
 *
 * ALGORITHM (one "round"): try the nodes of the list in order until one answers. A redirect
 * switches to the named leader (at most max_redirects hops per round; a hop to an address of the
 * list marks that node as tried). A node that cannot be reached is skipped. ERR_INTERNAL on a read
 * is retried on the same node up to read_retries times with a doubling pause. When every node of a
 * round has been tried without an answer, a new round starts after a pause (the cluster may be
 * electing a leader), up to rounds rounds.
 *
 * WHAT IS NEVER RETRIED. A write whose bytes all reached a node is never sent again: if the
 * connection then fails, or the node answers ERR_INTERNAL, the write may or may not have been
 * committed and kvc_execute returns KVC_EUNKNOWN. (A write that could not be sent completely never
 * reached the server's parser whole, so trying another node is safe.)
 *
 * RESULT. KVC_OK: *out holds the server's final answer (OK, VALUE, DELETED, ERR_NOT_FOUND,
 * ERR_VERSION, ERR_CMD_ERR or an mget result). Otherwise err says what happened, naming the last
 * node tried. OWNERSHIP: on KVC_OK the caller releases *out with txt_reply_free; on failure *out
 * holds nothing to free. THREADS: reentrant.
 */
#ifndef RAFTKV_KVC_H
#define RAFTKV_KVC_H

#include <stdbool.h>

#include "endpoints.h"
#include "txt.h"

enum {
    KVC_OK = 0,
    KVC_EUNAVAILABLE = -1, /* no node answered, no leader, or too many redirects */
    KVC_EUNKNOWN = -2,     /* a write's outcome is unknown (see above) */
    KVC_EPROTO = -3,       /* a reply this client does not understand */
    KVC_EINVAL = -4,       /* the request itself is invalid (bad key, value too big) */
    KVC_ENOMEM = -5,
};

typedef struct kvc_opts {
    int timeout_ms;     /* connect and each read/write; default 3000 */
    int max_redirects;  /* per round; default 5 */
    int read_retries;   /* ERR_INTERNAL retries for reads; default 3 */
    int rounds;         /* passes over the node list; default 6 */
    int retry_pause_ms; /* first pause (doubles each time, at most 1 s); default 100 */
    bool verbose;       /* one line on stderr per node tried */
} kvc_opts;

/* Fills the defaults above. */
void kvc_opts_default(kvc_opts *opts);

int kvc_execute(const ep_list *nodes, const kvc_opts *opts, const txt_req *req, txt_reply *out,
                char *err, size_t errcap);

#endif /* RAFTKV_KVC_H */
