/*
 * cli.h -- what the parts of the raftkv command line share: exit codes and parsed options.
 *
 * main.c parses the command line into a cli_opts and calls one command function; each returns
 * the process exit code. Messages go to stderr prefixed "raftkv: ", data to stdout.
 */
#ifndef RAFTKV_CLI_H
#define RAFTKV_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "endpoints.h"
#include "kvc.h"

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_MISS = 1,        /* key not found, cas version mismatch */
    CLI_EXIT_USAGE = 2,       /* bad command line, invalid key, server said ERR_CMD_ERR */
    CLI_EXIT_UNAVAILABLE = 3, /* no node answered / no leader / bad reply; nothing was changed */
    CLI_EXIT_UNKNOWN = 4,     /* a write reached a node but its outcome is unknown */
};

#define CLI_DEFAULT_DIR "raftkv-cluster"
#define CLI_DEFAULT_NODES 5
#define CLI_DEFAULT_BASE_PORT 7000

typedef struct cli_opts {
    const char *argv0;
    const char *cluster; /* --cluster spec */
    const char *peers;   /* --peers file */
    kvc_opts kvc;
    bool has_ttl;
    uint32_t ttl;
    /* cluster launcher */
    bool has_nodes, has_base_port;
    int nodes;
    int spares; /* cluster start --spares K: nodes n+1..n+K start outside the configuration */
    int base_port;
    const char *dir;
    const char *raftkvd;
    int wait_s;
    int stop_timeout_s;
    /* positional arguments after the command word */
    char **args;
    int nargs;
} cli_opts;

/* Fills out the node list from --cluster, --peers, $RAFTKV_CLUSTER, $RAFTKV_PEERS or
 * ./raftkv-cluster/peers.json, in that order. Prints the error and returns an exit code on failure. */
int cli_nodes(const cli_opts *opts, ep_list *out);

int cli_kv(const cli_opts *opts, const char *command); /* get getm set cas delete mget mset */
int cli_status(const cli_opts *opts);
int cli_member(const cli_opts *opts); /* member list|add ID|remove ID */
int cli_cluster(const cli_opts *opts); /* cluster start|stop|status */

#endif /* RAFTKV_CLI_H */
