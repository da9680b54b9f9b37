/*
 * status.c -- collect INFO from every node and print the table (see status.h).
 */
#include "status.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int status_add_members(ep_list *nodes, size_t ask, int timeout_ms)
{
    static const char list_request[] = "*2\r\n$13\r\nRAFTKV.MEMBER\r\n$4\r\nLIST\r\n";
    const ep_node *nd = &nodes->nodes[ask];
    char *text = NULL, err[256];
    size_t len = 0;
    if (!nodes->ids_known || nd->resp_port == 0 ||
        info_fetch_bulk(nd->host, nd->resp_port, timeout_ms, list_request, "RAFTKV.MEMBER LIST",
                        &text, &len, err, sizeof err) != INFO_OK)
        return 0;
    ep_list members;
    int rc = ep_parse_member_list(text, &members, NULL);
    free(text);
    if (rc != EP_OK) return 0;
    size_t before = nodes->count;
    (void)ep_list_merge(nodes, &members); /* out of memory part way: what it added still counts */
    ep_list_free(&members);
    return (int)(nodes->count - before); /* the caller collects rows again for every one */
}

status_row *status_collect(const ep_list *nodes, int timeout_ms)
{
    status_row *rows = calloc(nodes->count ? nodes->count : 1, sizeof *rows);
    if (!rows) return NULL;
    for (size_t i = 0; i < nodes->count; i++) {
        status_row *row = &rows[i];
        row->node = &nodes->nodes[i];
        if (row->node->resp_port == 0) {
            snprintf(row->error, sizeof row->error,
                     "%s:%u: RESP port unknown (give host:port:resp_port or a peers file)",
                     row->node->host, (unsigned)row->node->client_port);
            continue;
        }
        char *text = NULL;
        size_t len = 0;
        if (info_fetch(row->node->host, row->node->resp_port, timeout_ms, &text, &len, row->error,
                       sizeof row->error) != INFO_OK)
            continue;
        info_parse(text, len, &row->state);
        free(text);
        row->up = true;
    }
    return rows;
}

int status_leader(const status_row *rows, size_t count)
{
    int best = -1;
    for (size_t i = 0; i < count; i++) {
        if (!rows[i].up || !info_is_leader(&rows[i].state)) continue;
        if (best < 0 || rows[i].state.term > rows[best].state.term) best = (int)i;
    }
    return best;
}

static void cell_u64(char *buf, size_t cap, bool has, uint64_t value)
{
    if (has) snprintf(buf, cap, "%" PRIu64, value);
    else snprintf(buf, cap, "-");
}

void status_print(FILE *out, const status_row *rows, size_t count)
{
    int leader = status_leader(rows, count);
    bool have_reference = false;
    uint64_t reference = 0; /* the commit index lag is measured against */
    if (leader >= 0 && rows[leader].state.has_commit) {
        have_reference = true;
        reference = rows[leader].state.commit;
    } else {
        for (size_t i = 0; i < count; i++) {
            if (rows[i].up && rows[i].state.has_commit &&
                (!have_reference || rows[i].state.commit > reference)) {
                have_reference = true;
                reference = rows[i].state.commit;
            }
        }
    }
    fprintf(out, "%-4s %-22s %-14s %-6s %-7s %-10s %-10s %s\n", "ID", "ADDRESS", "ROLE", "TERM",
            "LEADER", "COMMIT", "APPLIED", "LAG");
    for (size_t i = 0; i < count; i++) {
        const status_row *row = &rows[i];
        const info_state *st = &row->state;
        char id[24], addr[EP_HOST_MAX + 8], term[24], lead[24], commit[24], applied[24], lag[24];
        uint64_t shown_id = row->up && st->has_id ? st->id : row->node->id;
        snprintf(id, sizeof id, "%" PRIu64, shown_id);
        snprintf(addr, sizeof addr, "%s:%u", row->node->host, (unsigned)row->node->client_port);
        const char *role = !row->up ? "down" : st->has_role ? st->role : "-";
        if (row->up && st->has_voter && !st->voter && !info_is_leader(st))
            role = st->learner ? "learner" /* gets the log, never votes */
                               : "non-voter"; /* a spare, or removed: it follows, never campaigns */
        cell_u64(term, sizeof term, row->up && st->has_term, st->term);
        if (row->up && st->has_leader && st->leader != 0) cell_u64(lead, sizeof lead, true, st->leader);
        else snprintf(lead, sizeof lead, "-");
        cell_u64(commit, sizeof commit, row->up && st->has_commit, st->commit);
        cell_u64(applied, sizeof applied, row->up && st->has_applied, st->applied);
        bool has_lag = row->up && st->has_applied && have_reference;
        /* A node may have applied past a stale reference (a lagging leader view): show 0. */
        cell_u64(lag, sizeof lag, has_lag, has_lag && reference > st->applied ? reference - st->applied : 0);
        fprintf(out, "%-4s %-22s %-14s %-6s %-7s %-10s %-10s %s\n", id, addr, role, term, lead,
                commit, applied, lag);
    }
}

void status_print_errors(FILE *out, const status_row *rows, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!rows[i].up) fprintf(out, "raftkv: node %" PRIu64 " down: %s\n", rows[i].node->id, rows[i].error);
}
