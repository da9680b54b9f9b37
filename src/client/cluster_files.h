/*
 * cluster_files.h -- the files `raftkv cluster start` writes into the cluster directory.
 *
 *   DIR/peers.json   the daemon's peers file (src/server/config.h): a JSON array of
 *                    {"id", "host", "peer_port", "client_port", "resp_port"}. Node N (1..n) gets
 *                    client_port base+N, resp_port base+100+N, peer_port base+200+N on 127.0.0.1.
 *                    Nodes n+1..n+spares follow with "voter": false (added with `raftkv member`).
 *   DIR/raft.json    the daemon's raft config file: timeouts, heartbeat, snapshot threshold,
 *                    value limit, cluster id. data_dir is left out on purpose: each node gets its
 *                    own with --data-dir DIR/node-N on its command line.
 *
 * Both are written atomically (temp file + rename) and only when missing: an existing cluster
 * keeps its files, so a restart never moves a node to other ports or another data dir.
 * ERRORS: 0 or -1 with err naming the file. THREADS: any.
 */
#ifndef RAFTKV_CLUSTER_FILES_H
#define RAFTKV_CLUSTER_FILES_H

#include <stddef.h>

#define CLUSTER_FILES_PORT_SPAN 300 /* ports used above base: 3 blocks of 100 */

int cluster_files_write_peers(const char *path, int nodes, int spares, int base_port, char *err,
                              size_t errcap);
int cluster_files_write_raft(const char *path, const char *cluster_id, char *err, size_t errcap);

#endif /* RAFTKV_CLUSTER_FILES_H */
