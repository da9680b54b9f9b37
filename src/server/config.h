/*
 * config.h -- raftkvd's configuration: the peers file, the raft config file and command-line flags.
 *
 * PRECEDENCE. Built-in defaults < the raft config file (--config) < flags. Every field of the
 * config file has a flag of the same name with '-' for '_' (election_timeout_min_ms ->
 * --election-timeout-min-ms); `raftkvd --help` lists them all from one table (config.c), so the
 * file format, the flags and the help text cannot drift apart.
 *
 * FILES.
 *   peers file (--peers, required): a JSON array of {"id", "host", "peer_port", "client_port",
 *     "resp_port"} and an optional "voter" (default true; false = a spare, outside the initial
 *     configuration until added); ids 1..2^53 and unique, 1..RAFT_MAX_NODES nodes, at least one
 *     voter; --id must be one of them. A node added later with its addresses need not be listed:
 *     the addresses a membership change names are replicated (members.h). Hosts have no spaces.
 *   raft config file (--config, optional): a JSON object whose keys are the settings below;
 *     unknown keys are errors (a typo must not silently keep a default).
 *
 * ERRORS. A bad value yields CONFIG_EBAD and ONE line in err naming the file (or flag) and the
 * field, e.g.  peers.json: [2].client_port: expected an integer 1..65535, got "x"
 * The caller prints it after "raftkvd: " and exits with status 2.
 *
 * OWNERSHIP. config is a plain value (no pointers to free). THREADS: call from one thread.
 */
#ifndef RAFTKV_CONFIG_H
#define RAFTKV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "node.h"
#include "raft.h"

#define CONFIG_PATH_MAX 1024
#define CONFIG_ERR_SIZE 512

enum {
    CONFIG_OK = 0,
    CONFIG_EBAD = -1,  /* bad file, field or flag: err says which */
    CONFIG_HELP = -2,  /* --help was given: the caller prints config_usage and exits 0 */
};

typedef struct config {
    raft_id id;
    char peers_path[CONFIG_PATH_MAX];
    char config_path[CONFIG_PATH_MAX]; /* "" = none */
    node_peer peers[RAFT_MAX_NODES];   /* in id order */
    uint32_t n_peers;

    /* Settings of the raft config file (and flags). */
    uint64_t election_timeout_min_ms;
    uint64_t election_timeout_max_ms;
    uint64_t check_quorum_ms;     /* 0 = 2 * election_timeout_max_ms */
    uint64_t poll_us;             /* leader polls this long after its last work; 0 = off */
    uint64_t heartbeat_ms;
    uint64_t tick_ms;
    uint64_t snapshot_threshold;  /* take a snapshot every this many applied entries; 0 = never */
    uint64_t snapshot_trailing;   /* entries kept in the log behind a snapshot */
    char data_dir[CONFIG_PATH_MAX];
    uint64_t max_value_bytes;
    uint64_t max_inflight_msgs;
    uint64_t max_entries_per_msg;
    uint64_t max_bytes_per_msg;
    uint64_t max_uncommitted_bytes;
    uint64_t write_timeout_ms;
    uint64_t read_timeout_ms;
    bool forward_to_leader;
    bool fast_path;               /* docs/NILEXT.md; every node of a cluster must agree */
    char cluster_id[128];
    char cluster_secret[256]; /* "" = handshakes are not authenticated */
    uint64_t peer_queue_bytes;    /* per-peer send queue bound */
    uint64_t snapshot_chunk_bytes;
    uint64_t segment_bytes;
    bool fsync;                   /* false only in tests: acknowledged writes may be lost */
    int64_t clock_offset_ms;      /* test only: shifts node_now_ms */
    char test_bug[32];            /* test only: "" or a safety bug to inject (see config.c) */
    char test_disk_fault[32];     /* TEST ONLY: "" or a disk_fault.h spec */
} config;

/* Built-in defaults (no peers, id 0, data_dir "data"). */
void config_default(config *cfg);

/* Parses argv (argv[0] is skipped): reads --peers and --config, then applies the flags. Returns
 * CONFIG_OK, CONFIG_HELP or CONFIG_EBAD with the one-line reason in err. */
int config_from_args(config *cfg, int argc, char **argv, char *err, size_t errlen);

/* The pieces, for tests: load a file's text (path is only used in messages). */
int config_parse_peers(config *cfg, const char *path, const char *text, char *err, size_t errlen);
int config_parse_settings(config *cfg, const char *path, const char *text, char *err,
                          size_t errlen);
/* Cross-field checks (id in peers, timeouts ordered, ...). */
int config_validate(const config *cfg, char *err, size_t errlen);

/* Writes the --help text. */
void config_usage(FILE *out);

/* The peer with that id, or NULL. */
const node_peer *config_peer(const config *cfg, raft_id id);

#endif /* RAFTKV_CONFIG_H */
