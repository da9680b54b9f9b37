/*
 * fake_node.h -- a stand-in for the node driver (src/server/node.h) so the client front-ends can be
 * tested without Raft, disks or peers.
 *
 * A FAKE CLUSTER is one shared kv_store with a log index counter: every fake node of the cluster
 * reads and writes it, so a write through the "leader" is at once visible on a "follower" (perfect
 * replication). Each fake node has its own view of who leads (switch with fake_node_set_leader), so
 * tests can build "not leader, leader is X", "no leader known" and leader changes.
 *
 * node_write on the leader applies the command at once (immediate commit, version = next index) and
 * queues its callback; node_read queues a NODE_OK callback. Queued callbacks fire from the loop
 * (never inside node_write/node_read), in FIFO or LIFO order (LIFO shows that replies stay in
 * request order however completions arrive), or are held until released.
 * fake_node_set_write_outcome makes writes report NODE_ELOST / NODE_ETIMEOUT (outcome unknown) --
 * applied or not, as the flag says.
 *
 * THREADS: loop thread only. OWNERSHIP: the cluster owns its nodes; fake_cluster_free frees all
 * (after the loop stopped using them).
 */
#ifndef RAFTKV_FAKE_NODE_H
#define RAFTKV_FAKE_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "node.h"

typedef struct fake_cluster fake_cluster;

fake_cluster *fake_cluster_new(uv_loop_t *loop, uint32_t n_nodes);
void fake_cluster_free(fake_cluster *cluster); /* closes its uv handle: run the loop once after */
/* Node with id 1..n_nodes. Its node_peer (host 127.0.0.1) can be edited with fake_node_peer. */
node *fake_cluster_node(fake_cluster *cluster, raft_id id);
node_peer *fake_node_peer(fake_cluster *cluster, raft_id id);

/* Every node believes leader_id leads (0: no leader known). */
void fake_cluster_set_leader(fake_cluster *cluster, raft_id leader_id);
/* Only node id changes its belief. */
void fake_node_set_leader(fake_cluster *cluster, raft_id id, raft_id leader_id);

typedef enum fake_outcome {
    FAKE_WRITE_OK = 0,
    FAKE_WRITE_LOST = 1,    /* NODE_ELOST */
    FAKE_WRITE_TIMEOUT = 2, /* NODE_ETIMEOUT */
} fake_outcome;
/* Later writes report outcome; when apply is true they still change the store (unknown outcome
 * means "may have committed"). */
void fake_cluster_set_write_outcome(fake_cluster *cluster, fake_outcome outcome, bool apply);

void fake_cluster_set_lifo(fake_cluster *cluster, bool lifo);
/* After each round of callbacks the fake calls the reply flush of every node that completed
 * something (node_set_reply_flush), then stays busy for ms on the loop thread: a reply must have
 * left before that. */
void fake_cluster_set_busy(fake_cluster *cluster, uint32_t ms);
void fake_cluster_hold(fake_cluster *cluster, bool hold); /* hold=false releases the queue */
uint32_t fake_cluster_queued(const fake_cluster *cluster);
void fake_cluster_advance_clock(fake_cluster *cluster, uint64_t ms);
kv_store *fake_cluster_kv(fake_cluster *cluster);
uint64_t fake_cluster_writes(const fake_cluster *cluster); /* node_write calls that were accepted */

#endif
