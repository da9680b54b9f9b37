/*
 * main.c -- raftkv: command-line parsing, --help, and dispatch to one command.
 *
 * Options may come before or after the command word; "--" ends them (for a value that starts
 * with "--"). A lone "-" is a positional argument (a value read from stdin). After the command
 * word, "-h" and "-v" are values too: "raftkv set opt -h" must write "-h", not print help.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage_text[] =
    "usage: raftkv [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Key-value commands (text protocol on a node's client port; redirects are followed):\n"
    "  get KEY                      print the value\n"
    "  getm KEY                     print \"<version> <seconds-left>\" then the value\n"
    "  set KEY VALUE [--ttl S]      store; prints the new version\n"
    "  cas KEY VERSION VALUE [--ttl S]\n"
    "                               store only if KEY is at VERSION; prints the new version\n"
    "  delete KEY                   remove KEY\n"
    "  mget KEY...                  one block per key: \"KEY <numbytes>\" + value, or \"KEY -\"\n"
    "  mset KEY VALUE [KEY VALUE...] [--ttl S]\n"
    "                               store all pairs atomically; prints the version\n"
    "  status                       table of every node (id, address, role, term, leader,\n"
    "                               commit, applied, lag) from each node's RESP INFO\n"
    "  member list                  every node the cluster knows and its role (voter,\n"
    "                               learner, not-voter)\n"
    "  member peers                 the same as a peers file (JSON): what a joining node is\n"
    "                               given (it must list every member)\n"
    "  member add ID [HOST:PEER_PORT:CLIENT_PORT:RESP_PORT] | remove ID\n"
    "                               make node ID a voter, or no longer one; answered once the\n"
    "                               change is committed. A node no peers file lists needs its\n"
    "                               addresses: every node learns them from the change. One\n"
    "                               change at a time; a leader may remove itself.\n"
    "  member add-learner ID [HOST:PEER_PORT:CLIENT_PORT:RESP_PORT] | promote ID\n"
    "                               add node ID as a learner (it gets the log but never votes\n"
    "                               or counts), then make it a voter once it has caught up\n"
    "                               (exit 3 until then). `remove ID` removes a learner too.\n"
    "  member demote ID             make voter ID a learner (it keeps the log, stops counting)\n"
    "  A VALUE of \"-\" is read from stdin (binary-safe). A value is printed raw; a newline is\n"
    "  added only when stdout is a terminal.\n"
    "\n";

/* In two parts: ISO C bounds one string literal at 4095 bytes. */
static const char usage_text_more[] =
    "Local cluster:\n"
    "  cluster start [--nodes N] [--spares K] [--dir DIR] [--base-port P] [--raftkvd PATH]\n"
    "                [--wait S]\n"
    "      write DIR/peers.json and DIR/raft.json (kept if present), start every raftkvd in\n"
    "      the background (log DIR/node-N.log, pid DIR/node-N.pid, data DIR/node-N/), wait for\n"
    "      a leader. Node N listens on P+N (text), P+100+N (RESP), P+200+N (peers).\n"
    "      Starting a running cluster starts only the nodes that are down. --spares K adds\n"
    "      nodes N+1..N+K outside the configuration, for `raftkv member add`.\n"
    "  cluster stop [--dir DIR] [--stop-timeout S]\n"
    "      SIGTERM each node of DIR (only processes that are raftkvd), SIGKILL after S seconds.\n"
    "  cluster status [--dir DIR]   the status table of the cluster in DIR\n"
    "  Defaults: --nodes 5, --dir ./raftkv-cluster, --base-port 7000, --wait 30,\n"
    "  --stop-timeout 10; raftkvd is looked for next to raftkv, then on PATH.\n"
    "\n"
    "Options:\n"
    "  --cluster HOST:PORT[:RESP],...  nodes to talk to (PORT = client port)\n"
    "  --peers FILE                    nodes from a peers.json\n"
    "      Without either: $RAFTKV_CLUSTER, $RAFTKV_PEERS, then ./raftkv-cluster/peers.json.\n"
    "  --timeout MS       connect/read/write timeout per node (default 3000)\n"
    "  --retries N        retries of a read answered ERR_INTERNAL (default 3)\n"
    "  --redirects N      redirects followed per pass over the nodes (default 5)\n"
    "      When no node gives an answer, the list is tried again, 6 passes with pauses of\n"
    "      about 2.5 s in all (a leader election may be under way), plus each node's timeout.\n"
    "      A write is sent only to a node that first answered a probe (an empty line), and\n"
    "      never twice.\n"
    "  -v, --verbose      say on stderr which node was tried and what it answered\n"
    "  -h, --help         this text (-h and -v only before the command; after it, a word\n"
    "                     starting with one \"-\" is a value; \"--\" ends the options)\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  key not found (get, getm, delete; mget when any key is missing), or cas version mismatch\n"
    "  2  usage error: bad arguments, invalid key, or the server rejected the command (ERR_CMD_ERR)\n"
    "  3  cluster unavailable: no node answered, no leader, too many redirects, or a reply that\n"
    "     could not be understood; a write was not applied\n"
    "  4  a write reached a node but its outcome is unknown (connection lost or ERR_INTERNAL\n"
    "     before the reply): read the key to find out\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fputs("raftkv: ", stderr);
    vfprintf(stderr, fmt, args);
    fputs("\n(raftkv --help for usage)\n", stderr);
    va_end(args);
    return CLI_EXIT_USAGE;
}

static int parse_int(const char *name, const char *text, long min, long max, long *value)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || !end || *end || end == text || v < min || v > max) {
        fprintf(stderr, "raftkv: %s: '%s' is not an integer in %ld..%ld\n(raftkv --help for usage)\n",
                name, text, min, max);
        return -1;
    }
    *value = v;
    return 0;
}

int cli_nodes(const cli_opts *opts, ep_list *out)
{
    char err[512];
    const char *cluster = opts->cluster;
    const char *peers = opts->peers;
    if (cluster && peers) return usage_error("%s", "give --cluster or --peers, not both");
    if (!cluster && !peers) {
        cluster = getenv("RAFTKV_CLUSTER");
        if (cluster && !*cluster) cluster = NULL;
        if (!cluster) {
            peers = getenv("RAFTKV_PEERS");
            if (peers && !*peers) peers = NULL;
        }
        if (!cluster && !peers) {
            if (access(CLI_DEFAULT_DIR "/peers.json", R_OK) != 0)
                return usage_error("%s", "no cluster given: use --cluster HOST:PORT,... or --peers "
                                         "FILE (or start one with `raftkv cluster start`)");
            peers = CLI_DEFAULT_DIR "/peers.json";
        }
    }
    int rc = cluster ? ep_parse_cluster(cluster, out, err, sizeof err)
                     : ep_load_peers(peers, out, err, sizeof err);
    if (rc != EP_OK) {
        fprintf(stderr, "raftkv: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

typedef enum opt_id {
    OPT_CLUSTER,
    OPT_PEERS,
    OPT_TIMEOUT,
    OPT_RETRIES,
    OPT_REDIRECTS,
    OPT_TTL,
    OPT_NODES,
    OPT_DIR,
    OPT_BASE_PORT,
    OPT_RAFTKVD,
    OPT_WAIT,
    OPT_STOP_TIMEOUT,
    OPT_SPARES,
} opt_id;

static const struct {
    const char *name;
    opt_id id;
} value_opts[] = {
    {"--cluster", OPT_CLUSTER},     {"--peers", OPT_PEERS},       {"--timeout", OPT_TIMEOUT},
    {"--retries", OPT_RETRIES},     {"--redirects", OPT_REDIRECTS}, {"--ttl", OPT_TTL},
    {"--nodes", OPT_NODES},         {"--dir", OPT_DIR},           {"--base-port", OPT_BASE_PORT},
    {"--raftkvd", OPT_RAFTKVD},     {"--wait", OPT_WAIT},         {"--stop-timeout", OPT_STOP_TIMEOUT},
    {"--spares", OPT_SPARES},
};

static int set_option(cli_opts *opts, opt_id id, const char *name, const char *value)
{
    long v;
    switch (id) {
    case OPT_CLUSTER: opts->cluster = value; return 0;
    case OPT_PEERS: opts->peers = value; return 0;
    case OPT_DIR: opts->dir = value; return 0;
    case OPT_RAFTKVD: opts->raftkvd = value; return 0;
    case OPT_TIMEOUT:
        if (parse_int(name, value, 1, 600000, &v)) return -1;
        opts->kvc.timeout_ms = (int)v;
        return 0;
    case OPT_RETRIES:
        if (parse_int(name, value, 0, 100, &v)) return -1;
        opts->kvc.read_retries = (int)v;
        return 0;
    case OPT_REDIRECTS:
        if (parse_int(name, value, 0, 100, &v)) return -1;
        opts->kvc.max_redirects = (int)v;
        return 0;
    case OPT_TTL:
        if (parse_int(name, value, 0, 2147483647L, &v)) return -1;
        opts->has_ttl = true;
        opts->ttl = (uint32_t)v;
        return 0;
    case OPT_NODES:
        if (parse_int(name, value, 1, 15, &v)) return -1;
        opts->has_nodes = true;
        opts->nodes = (int)v;
        return 0;
    case OPT_BASE_PORT:
        if (parse_int(name, value, 1, 65535 - 300, &v)) return -1;
        opts->has_base_port = true;
        opts->base_port = (int)v;
        return 0;
    case OPT_WAIT:
        if (parse_int(name, value, 0, 3600, &v)) return -1;
        opts->wait_s = (int)v;
        return 0;
    case OPT_SPARES:
        if (parse_int(name, value, 0, 15, &v)) return -1;
        opts->spares = (int)v;
        return 0;
    case OPT_STOP_TIMEOUT:
        if (parse_int(name, value, 0, 3600, &v)) return -1;
        opts->stop_timeout_s = (int)v;
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    cli_opts opts = {0};
    opts.argv0 = argv[0];
    kvc_opts_default(&opts.kvc);
    opts.nodes = CLI_DEFAULT_NODES;
    opts.base_port = CLI_DEFAULT_BASE_PORT;
    opts.dir = CLI_DEFAULT_DIR;
    opts.wait_s = 30;
    opts.stop_timeout_s = 10;

    /* Positionals are gathered in place at the front of argv (after argv[0]). */
    char **positional = argv + 1;
    int npos = 0;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            positional[npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (npos > 0 && arg[1] != '-') { /* "-h", "-5" after the command: a value */
            positional[npos++] = arg;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage_text, stdout);
            fputs(usage_text_more, stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            opts.kvc.verbose = true;
            continue;
        }
        if (arg[1] != '-') { /* "-5": a value, not an option */
            positional[npos++] = arg;
            continue;
        }
        char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        bool known = false;
        for (size_t k = 0; k < sizeof value_opts / sizeof value_opts[0]; k++) {
            if (strlen(value_opts[k].name) != name_len || strncmp(arg, value_opts[k].name, name_len))
                continue;
            known = true;
            const char *value = eq ? eq + 1 : NULL;
            if (!value) {
                if (i + 1 >= argc) return usage_error("%s needs a value", value_opts[k].name);
                value = argv[++i];
            }
            if (set_option(&opts, value_opts[k].id, value_opts[k].name, value)) return CLI_EXIT_USAGE;
            break;
        }
        if (!known) return usage_error("unknown option '%s'", arg);
    }
    if (npos == 0) return usage_error("%s", "no command given");
    const char *command = positional[0];
    opts.args = positional + 1;
    opts.nargs = npos - 1;

    bool is_cluster = strcmp(command, "cluster") == 0;
    if (opts.nodes + opts.spares > 16)
        return usage_error("--nodes %d plus --spares %d is more than the 16 nodes a cluster can have",
                           opts.nodes, opts.spares);
    if (!is_cluster && (opts.has_nodes || opts.has_base_port || opts.raftkvd || opts.spares ||
                        strcmp(opts.dir, CLI_DEFAULT_DIR) != 0))
        return usage_error("%s", "--nodes, --spares, --dir, --base-port and --raftkvd are for "
                                 "`cluster`");
    if (opts.has_ttl && strcmp(command, "set") != 0 && strcmp(command, "cas") != 0 &&
        strcmp(command, "mset") != 0)
        return usage_error("--ttl applies to set, cas and mset, not %s", command);

    if (is_cluster) return cli_cluster(&opts);
    if (strcmp(command, "member") == 0) return cli_member(&opts);
    if (strcmp(command, "status") == 0) {
        if (opts.nargs) return usage_error("%s", "status takes no arguments");
        return cli_status(&opts);
    }
    static const char *const kv_commands[] = {"get", "getm", "set", "cas", "delete", "mget", "mset"};
    for (size_t k = 0; k < sizeof kv_commands / sizeof kv_commands[0]; k++)
        if (strcmp(command, kv_commands[k]) == 0) return cli_kv(&opts, command);
    return usage_error("unknown command '%s'", command);
}
