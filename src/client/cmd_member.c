/*
 * cmd_member.c -- `raftkv member list | peers | add ID [HOST:PEER_PORT:CLIENT_PORT:RESP_PORT] |
 * add-learner ID [HOST:...] | promote ID | demote ID | remove ID`: RAFTKV.MEMBER over RESP. `peers` prints
 * RAFTKV.MEMBER LIST as a peers file (JSON, every node the cluster knows, non-voters and learners
 * with "voter": false): what a joining node is given.
 *
 * Any node will do: a follower forwards ADD/REMOVE to the leader, and the reply (+OK once the
 * change is committed) comes back the same way. The nodes are tried in order until one answers.
 * Exit codes: 0 done; 2 refused (the node is unknown and no address was given, is a member at
 * another address, is already / is not a voter or a learner, is the last voter); 3 no node
 * answered, no leader, another change in progress, or a learner that has not caught up (nothing
 * changed); 4 the outcome is unknown (leadership changed or the wait timed out: run
 * `raftkv member list` to see).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conn.h"

#define MEMBER_MAX_REPLY (64 * 1024)

/* Sends one RESP command (argc words) and reads the reply: a status or error line into line
 * (without its '+' or '-', *is_error set), or a bulk into a malloc'd *bulk. CONN_* code. */
static int resp_call(conn *c, int argc, const char *const *argv, char *line, size_t cap,
                     bool *is_error, char **bulk)
{
    char req[512];
    int used = snprintf(req, sizeof req, "*%d\r\n", argc);
    for (int i = 0; i < argc && used > 0 && (size_t)used < sizeof req; i++)
        used += snprintf(req + used, sizeof req - (size_t)used, "$%zu\r\n%s\r\n", strlen(argv[i]),
                         argv[i]);
    if (used <= 0 || (size_t)used >= sizeof req) return CONN_ENOMEM;
    int rc = conn_write_all(c, req, (size_t)used);
    const char *got;
    size_t len;
    if (rc == CONN_OK) rc = conn_read_line(c, &got, &len);
    if (rc != CONN_OK) return rc;
    *is_error = len > 0 && got[0] == '-';
    *bulk = NULL;
    if (len > 0 && got[0] == '$') {
        long size = strtol(got + 1, NULL, 10);
        if (size < 0 || size > MEMBER_MAX_REPLY) {
            snprintf(line, cap, "bad bulk length '%.*s'", (int)(len > 30 ? 30 : len), got);
            *is_error = true;
            return CONN_OK;
        }
        *bulk = malloc((size_t)size + 2);
        if (*bulk == NULL) return CONN_ENOMEM;
        rc = conn_read_exact(c, (uint8_t *)*bulk, (size_t)size + 2);
        if (rc != CONN_OK) {
            free(*bulk);
            *bulk = NULL;
            return rc;
        }
        (*bulk)[size] = '\0';
        line[0] = '\0';
        return CONN_OK;
    }
    snprintf(line, cap, "%.*s", (int)(len > 0 ? len - 1 : 0), len > 0 ? got + 1 : "");
    return CONN_OK;
}

/* HOST:PEER_PORT:CLIENT_PORT:RESP_PORT into four words, split at the last three colons (so an IPv6
 * literal host keeps its own). 0, or -1 when it is not that. */
static int split_addr(const char *text, char words[4][256])
{
    const char *end = text + strlen(text);
    for (int w = 3; w >= 1; w--) {
        const char *colon = end;
        while (colon > text && colon[-1] != ':') colon--;
        if (colon == text) return -1;
        size_t n = (size_t)(end - colon);
        if (n == 0 || n > 5 || strspn(colon, "0123456789") < n) return -1;
        memcpy(words[w], colon, n);
        words[w][n] = '\0';
        long port = strtol(words[w], NULL, 10);
        if (port < 1 || port > 65535) return -1;
        end = colon - 1;
    }
    size_t hn = (size_t)(end - text);
    if (hn == 0 || hn > 255) return -1;
    memcpy(words[0], text, hn);
    words[0][hn] = '\0';
    return 0;
}

/* RAFTKV.MEMBER LIST's lines as a peers file, printed only once every line parsed. 0, or -1 when
 * one does not. */
static int print_peers(const char *list)
{
    ep_list nodes;
    bool voter[EP_MAX_NODES];
    if (ep_parse_member_list(list, &nodes, voter) != EP_OK)
        return -1;
    printf("[\n");
    for (size_t i = 0; i < nodes.count; i++) {
        const ep_node *nd = &nodes.nodes[i];
        printf("  {\"id\": %llu, \"host\": \"%s\", \"peer_port\": %u, \"client_port\": %u, "
               "\"resp_port\": %u%s}%s\n", (unsigned long long)nd->id, nd->host, nd->peer_port,
               nd->client_port, nd->resp_port, voter[i] ? "" : ", \"voter\": false",
               i + 1 < nodes.count ? "," : "");
    }
    printf("]\n");
    ep_list_free(&nodes);
    return 0;
}

/* Which exit code a refusal from the server means (a change refused as unsafe, or while another
 * is in progress, is 3: the cluster is not in a state to take it). */
static int refusal_code(const char *text)
{
    static const char *const usage[] = {"is unknown", "at another address", "already a voter",
                                        "is not a voter", "the last voter", "usage:",
                                        "not a valid membership change", "cannot be added",
                                        "is a learner:", "already a learner",
                                        "is not a learner"};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++)
        if (strstr(text, usage[i])) return CLI_EXIT_USAGE;
    if (strstr(text, "outcome unknown")) return CLI_EXIT_UNKNOWN;
    return CLI_EXIT_UNAVAILABLE;
}

/* The changes: the CLI's word, RAFTKV.MEMBER's, what is printed once done, whether an address
 * may follow the id. */
static const struct member_change {
    const char *verb, *command, *done;
    bool takes_addr;
} member_changes[] = {
    {"add", "ADD", "added", true},
    {"add-learner", "ADDLEARNER", "added as a learner", true},
    {"promote", "PROMOTE", "promoted", false},
    {"demote", "DEMOTE", "demoted to a learner", false},
    {"remove", "REMOVE", "removed", false},
};

int cli_member(const cli_opts *opts)
{
    bool peers = opts->nargs == 1 && strcmp(opts->args[0], "peers") == 0;
    bool list = (opts->nargs == 1 && strcmp(opts->args[0], "list") == 0) || peers;
    const struct member_change *mc = NULL;
    for (size_t i = 0; i < sizeof member_changes / sizeof member_changes[0]; i++)
        if (opts->nargs >= 2 && strcmp(opts->args[0], member_changes[i].verb) == 0 &&
            (opts->nargs == 2 || (opts->nargs == 3 && member_changes[i].takes_addr)))
            mc = &member_changes[i];
    bool change = mc != NULL;
    if (!list && !change) {
        fprintf(stderr, "raftkv: member: expected 'list', 'peers', 'add ID [HOST:PEER_PORT:"
                        "CLIENT_PORT:RESP_PORT]', 'add-learner ID [HOST:...]', 'promote ID', "
                        "'demote ID' or 'remove ID'\n(raftkv --help for usage)\n");
        return CLI_EXIT_USAGE;
    }
    char addr_words[4][256];
    if (opts->nargs == 3 && split_addr(opts->args[2], addr_words) != 0) {
        fprintf(stderr, "raftkv: member add: '%s' is not HOST:PEER_PORT:CLIENT_PORT:RESP_PORT "
                        "(ports 1..65535)\n", opts->args[2]);
        return CLI_EXIT_USAGE;
    }
    if (change) {
        const char *id = opts->args[1];
        size_t n = strlen(id);
        if (n == 0 || n > 16 || strspn(id, "0123456789") != n || strspn(id, "0") == n) {
            fprintf(stderr, "raftkv: member %s: '%s' is not a node id (1..2^53)\n",
                    opts->args[0], id);
            return CLI_EXIT_USAGE;
        }
    }
    ep_list nodes;
    int code = cli_nodes(opts, &nodes);
    if (code != CLI_EXIT_OK) return code;
    const char *argv[7] = {"RAFTKV.MEMBER", change ? mc->command : "LIST",
                           change ? opts->args[1] : NULL, addr_words[0], addr_words[1],
                           addr_words[2], addr_words[3]};
    int argc = list ? 2 : opts->nargs == 3 ? 7 : 3;
    code = CLI_EXIT_UNAVAILABLE;
    bool asked = false;
    size_t no_resp = 0;
    for (size_t i = 0; i < nodes.count; i++) {
        const ep_node *nd = &nodes.nodes[i];
        if (nd->resp_port == 0) {
            no_resp++;
            if (opts->kvc.verbose)
                fprintf(stderr, "raftkv: %s:%u: no RESP port known (give HOST:PORT:RESP)\n",
                        nd->host, nd->client_port);
            continue;
        }
        char err[256];
        conn *c = NULL;
        /* A change waits for its commit: give it the node's whole write timeout and more. */
        int timeout = change ? opts->kvc.timeout_ms + 10000 : opts->kvc.timeout_ms;
        if (conn_open(nd->host, nd->resp_port, timeout, &c, err, sizeof err) != CONN_OK) {
            if (opts->kvc.verbose) fprintf(stderr, "raftkv: %s\n", err);
            continue;
        }
        char line[512];
        bool is_error = false;
        char *bulk = NULL;
        int rc = resp_call(c, argc, argv, line, sizeof line, &is_error, &bulk);
        if (rc != CONN_OK) {
            fprintf(stderr, "raftkv: %s\n", conn_errmsg(c));
            conn_close(c);
            if (change) { /* it may have been taken: do not send it twice */
                asked = true;
                code = CLI_EXIT_UNKNOWN;
                break;
            }
            continue;
        }
        conn_close(c);
        asked = true;
        bool elsewhere = strncmp(line, "CLUSTERDOWN", 11) == 0 ||
                         strstr(line, "not the leader") != NULL;
        if (is_error && elsewhere && i + 1 < nodes.count) {
            /* This node knows no leader (a spare, a removed node, an election), or forwarded to
             * one that no longer leads: nothing was proposed, ask the next. */
            if (opts->kvc.verbose)
                fprintf(stderr, "raftkv: %s:%u: %s\n", nd->host, nd->resp_port, line);
            asked = false;
            continue;
        }
        if (is_error) {
            fprintf(stderr, "raftkv: member %s: %s (asked %s:%u)\n", argv[1], line, nd->host,
                    nd->resp_port);
            code = refusal_code(line);
        } else if (bulk != NULL) {
            if (peers) {
                if (print_peers(bulk) != 0) {
                    fprintf(stderr, "raftkv: member peers: cannot read the list from %s:%u\n",
                            nd->host, nd->resp_port);
                    code = CLI_EXIT_UNAVAILABLE;
                    free(bulk);
                    break;
                }
            } else {
                fputs(bulk, stdout);
            }
            code = CLI_EXIT_OK;
        } else if (change) {
            printf("node %s %s\n", argv[2], mc->done);
            code = CLI_EXIT_OK;
        } else { /* LIST answered by a status line: not what a node says */
            fprintf(stderr, "raftkv: member list: unexpected reply '%s' from %s:%u\n", line,
                    nd->host, nd->resp_port);
            code = CLI_EXIT_UNAVAILABLE;
        }
        free(bulk);
        break;
    }
    if (!asked && no_resp == nodes.count)
        fprintf(stderr, "raftkv: member: no RESP port known for any node: give --peers FILE or "
                        "--cluster HOST:PORT:RESP,...\n");
    else if (!asked)
        fprintf(stderr, "raftkv: member: no node answered on its RESP port (%zu tried)\n",
                nodes.count - no_resp);
    if (code == CLI_EXIT_OK && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "raftkv: stdout: write failed\n");
        code = CLI_EXIT_UNAVAILABLE;
    }
    ep_list_free(&nodes);
    return code;
}
