/*
 * sim_net.c -- the simulated network.
 *
 * Every message is deep-copied into one allocation (a sim_packet followed by its entries and
 * their bytes) because the Ready it came from is freed at raft_advance. Each copy gets its own
 * random delay: mostly in [delay_min, delay_max], with a long tail of 10-50x, so reordering
 * follows from the delays. Messages may be dropped or duplicated. Partitions are a matrix of cut
 * directed links, checked both when a message is sent and when it arrives (a link cut while a
 * message is in flight loses it). RAFT_MSG_SNAPSHOT carries the sender's snapshot bytes (read from its
 * storage), which the receiver stashes until a Ready asks it to install that snapshot.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

static sim_packet *packet_new(const raft_msg *msg)
{
    size_t size = sizeof(sim_packet) + msg->n_entries * sizeof(raft_entry);
    for (uint32_t i = 0; i < msg->n_entries; i++)
        size += msg->entries[i].len;
    sim_packet *p = malloc(size);
    if (!p)
        abort();
    memset(p, 0, sizeof(*p));
    p->msg = *msg;
    p->alloc_size = size;
    raft_entry *entries = (raft_entry *)(p + 1);
    uint8_t *bytes = (uint8_t *)(entries + msg->n_entries);
    for (uint32_t i = 0; i < msg->n_entries; i++) {
        entries[i] = msg->entries[i];
        if (msg->entries[i].len > 0) {
            memcpy(bytes, msg->entries[i].data, msg->entries[i].len);
            entries[i].data = bytes;
            bytes += msg->entries[i].len;
        } else {
            entries[i].data = NULL;
        }
    }
    p->msg.entries = msg->n_entries ? entries : NULL;
    return p;
}

/* A duplicate must own its bytes and point into its own allocation. */
static sim_packet *packet_clone(const sim_packet *src)
{
    sim_packet *p = malloc(src->alloc_size);
    if (!p)
        abort();
    memcpy(p, src, src->alloc_size);
    raft_entry *entries = (raft_entry *)(p + 1);
    uint8_t *bytes = (uint8_t *)(entries + p->msg.n_entries);
    for (uint32_t i = 0; i < p->msg.n_entries; i++) {
        if (entries[i].len > 0) {
            entries[i].data = bytes;
            bytes += entries[i].len;
        }
    }
    p->msg.entries = p->msg.n_entries ? entries : NULL;
    return p;
}

static uint64_t net_delay(sim *s)
{
    const sim_net_params *np = &s->net.params;
    uint64_t delay = sim_rng_range(&s->rng, np->delay_min_us, np->delay_max_us);
    if (np->tail_permille && sim_rng_permille(&s->rng, np->tail_permille))
        delay *= sim_rng_range(&s->rng, np->tail_mult_min, np->tail_mult_max);
    return delay;
}

/* Finds the bytes of the snapshot a node advertises: its stored one (read back from its storage
 * through the snapshot reader, in chunks), or one it received and has not installed yet (kept by
 * the transport, as raft.h asks). */
static bool snapshot_bytes(sim *s, int slot, const raft_snapshot_meta *meta, uint8_t *out)
{
    const sim_node *n = &s->nodes[slot];
    if (meta->index != 0 && n->durable.snap.index == meta->index &&
        n->durable.snap.term == meta->term)
        return sim_disk_read_snapshot(s, slot, meta, out);
    for (int i = 0; i < 4; i++) {
        if (n->rx_snap[i].meta.index == meta->index && n->rx_snap[i].meta.index != 0 &&
            n->rx_snap[i].meta.term == meta->term) {
            memcpy(out, n->rx_snap[i].data, SIM_SNAP_BYTES);
            return true;
        }
    }
    return false;
}

static void describe_msg(const raft_msg *m, char *buf, size_t len)
{
    int used = snprintf(buf, len, "%s %llu->%llu term=%llu index=%llu log_term=%llu commit=%llu",
                        raft_msg_type_name(m->type), (unsigned long long)m->from,
                        (unsigned long long)m->to, (unsigned long long)m->term,
                        (unsigned long long)m->index, (unsigned long long)m->log_term,
                        (unsigned long long)m->commit);
    if (m->n_entries && used > 0 && (size_t)used < len)
        used += snprintf(buf + used, len - (size_t)used, " entries=%llu..%llu",
                         (unsigned long long)m->entries[0].index,
                         (unsigned long long)m->entries[m->n_entries - 1].index);
    if (m->reject && used > 0 && (size_t)used < len)
        used += snprintf(buf + used, len - (size_t)used, " REJECT hint=%llu/%llu",
                         (unsigned long long)m->hint_index, (unsigned long long)m->hint_term);
    if (m->context && used > 0 && (size_t)used < len)
        used +=
            snprintf(buf + used, len - (size_t)used, " ctx=%llu", (unsigned long long)m->context);
    if (m->snapshot.index && used > 0 && (size_t)used < len)
        snprintf(buf + used, len - (size_t)used, " snapshot=%llu/%llu",
                 (unsigned long long)m->snapshot.index, (unsigned long long)m->snapshot.term);
}

void sim_net_send(sim *s, const raft_msg *msg)
{
    char desc[256];
    if (s->opt->trace)
        describe_msg(msg, desc, sizeof(desc));
    if (msg->from < 1 || msg->from > (raft_id)s->n_nodes || msg->to < 1 ||
        msg->to > (raft_id)s->n_nodes || msg->to == msg->from) {
        sim_violation(s, SIM_CHECK_CONTRACT, "node %llu sent a %s to unknown node %llu",
                      (unsigned long long)msg->from, raft_msg_type_name(msg->type),
                      (unsigned long long)msg->to);
        return;
    }
    int from = (int)msg->from - 1, to = (int)msg->to - 1;
    s->net.sent++;
    if (s->net.cut[from][to] || sim_rng_permille(&s->rng, s->net.params.drop_permille)) {
        s->net.dropped++;
        if (s->opt->trace)
            sim_trace(s, "  send %s: LOST%s", desc, s->net.cut[from][to] ? " (cut)" : "");
        return;
    }
    sim_packet *p = packet_new(msg);
    if (msg->type == RAFT_MSG_SNAPSHOT) {
        if (!snapshot_bytes(s, from, &msg->snapshot, p->snap_data)) {
            if (s->stop) {
                free(p);
                return; /* the stored snapshot could not be read: reported */
            }
            /* The core advertised a snapshot the node does not hold (yet): tell it, as a
             * transport that failed to read the snapshot would. */
            free(p);
            s->net.dropped++;
            if (s->nodes[from].up)
                raft_report_snapshot_failed(s->nodes[from].r, msg->to);
            sim_trace(s, "  send SNAPSHOT %d->%d: no bytes for index %llu, reported failed",
                      from + 1, to + 1, (unsigned long long)msg->snapshot.index);
            return;
        }
        p->snap_len = SIM_SNAP_BYTES;
    }
    uint64_t delay = net_delay(s);
    if (s->opt->trace)
        sim_trace(s, "  send %s: arrives +%.3fms", desc, (double)delay / 1000.0);
    sim_schedule(s, s->now + delay, SIM_EV_DELIVER, to, 0, p);
    if (s->net.params.dup_permille && sim_rng_permille(&s->rng, s->net.params.dup_permille)) {
        s->net.duplicated++;
        uint64_t dup_delay = net_delay(s);
        sim_schedule(s, s->now + dup_delay, SIM_EV_DELIVER, to, 0, packet_clone(p));
        if (s->opt->trace)
            sim_trace(s, "  send (duplicate) arrives +%.3fms", (double)dup_delay / 1000.0);
    }
}

void sim_net_deliver(sim *s, const sim_event *ev)
{
    sim_packet *p = ev->payload;
    const raft_msg *m = &p->msg;
    int from = (int)m->from - 1, to = ev->node;
    sim_node *n = &s->nodes[to];
    char desc[256];
    if (s->opt->trace)
        describe_msg(m, desc, sizeof(desc));
    if (!n->up || s->net.cut[from][to]) {
        s->net.dropped++;
        if (s->opt->trace)
            sim_trace(s, "deliver %s: LOST (%s)", desc, n->up ? "cut" : "node down");
        return;
    }
    s->net.delivered++;
    if (s->opt->trace)
        sim_trace(s, "deliver %s", desc);
    if (m->type == RAFT_MSG_SNAPSHOT && p->snap_len == SIM_SNAP_BYTES) {
        uint32_t slot = n->rx_next++ % 4;
        n->rx_snap[slot].meta = m->snapshot;
        memcpy(n->rx_snap[slot].data, p->snap_data, SIM_SNAP_BYTES);
    }
    int rc = raft_step(n->r, m);
    if (rc != RAFT_OK && rc != RAFT_EINVAL)
        sim_violation(s, SIM_CHECK_CONTRACT, "raft_step on node %d returned %s", to + 1,
                      raft_strerror(rc));
    /* Narration: which votes a candidate collected for its current term. */
    if (m->type == RAFT_MSG_VOTE_RESP && !m->reject && m->term == raft_get_term(n->r)) {
        if (n->vote_term != m->term) {
            n->vote_term = m->term;
            n->vote_mask = 1u << to;
        }
        n->vote_mask |= 1u << from;
    }
}

void sim_net_heal(sim *s)
{
    memset(s->net.cut, 0, sizeof(s->net.cut));
}

void sim_net_isolate(sim *s, int node)
{
    for (int i = 0; i < s->n_nodes; i++) {
        if (i != node) {
            s->net.cut[node][i] = true;
            s->net.cut[i][node] = true;
        }
    }
}

void sim_net_split(sim *s, uint32_t side_mask)
{
    for (int a = 0; a < s->n_nodes; a++)
        for (int b = 0; b < s->n_nodes; b++)
            if (((side_mask >> a) & 1u) != ((side_mask >> b) & 1u))
                s->net.cut[a][b] = true;
}

void sim_net_cut_one_way(sim *s, int from, int to)
{
    s->net.cut[from][to] = true;
}

void sim_net_bridge(sim *s, int bridge, uint32_t side_mask)
{
    for (int a = 0; a < s->n_nodes; a++)
        for (int b = 0; b < s->n_nodes; b++)
            if (a != bridge && b != bridge && ((side_mask >> a) & 1u) != ((side_mask >> b) & 1u))
                s->net.cut[a][b] = true;
}

/* "1,2|3,4,5" style: lists the cut links compactly for traces and narration. */
void sim_net_describe(const sim *s, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int a = 0; a < s->n_nodes; a++)
        for (int b = 0; b < s->n_nodes; b++)
            if (s->net.cut[a][b] && used + 8 < len)
                used += (size_t)snprintf(buf + used, len - used, "%s%d->%d", used ? " " : "", a + 1,
                                         b + 1);
    if (used == 0)
        snprintf(buf, len, "none");
}
