/*
 * cmd_status.c -- `raftkv status`: the table of every node (status.h), exit 3 without a leader.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "status.h"

int cli_status(const cli_opts *opts)
{
    ep_list nodes;
    int code = cli_nodes(opts, &nodes);
    if (code != CLI_EXIT_OK) return code;
    status_row *rows = status_collect(&nodes, opts->kvc.timeout_ms);
    int leader = rows ? status_leader(rows, nodes.count) : -1;
    /* Nodes joined by address are in no peers file: the leader names them. */
    if (leader >= 0 && status_add_members(&nodes, (size_t)leader, opts->kvc.timeout_ms) > 0) {
        free(rows);
        rows = status_collect(&nodes, opts->kvc.timeout_ms);
    }
    if (!rows) {
        ep_list_free(&nodes);
        fprintf(stderr, "raftkv: status: out of memory\n");
        return CLI_EXIT_UNAVAILABLE;
    }
    status_print(stdout, rows, nodes.count);
    code = CLI_EXIT_OK;
    if (fflush(stdout) != 0 || ferror(stdout)) { /* a full disk or a closed pipe: say so */
        fprintf(stderr, "raftkv: stdout: %s\n", strerror(errno ? errno : EIO));
        code = CLI_EXIT_UNAVAILABLE;
    }
    status_print_errors(stderr, rows, nodes.count);
    if (status_leader(rows, nodes.count) < 0) {
        fprintf(stderr, "raftkv: status: no node reports itself leader\n");
        code = CLI_EXIT_UNAVAILABLE;
    }
    free(rows);
    ep_list_free(&nodes);
    return code;
}
