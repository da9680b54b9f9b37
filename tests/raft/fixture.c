/* fixture.c -- see fixture.h. */
#include "fixture.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

raft *fx_r(fx *f, int id)
{
    return f->nodes[id - 1].r;
}

static void node_start(fx *f, int id, bool restore)
{
    fx_node *nd = &f->nodes[id - 1];
    raft_config cfg = f->cfg;
    cfg.id = (raft_id)id;
    cfg.seed = f->cfg.seed + (uint64_t)id * 7919u + f->delivered;
    raft_restore rs = {0};
    if (restore) {
        rs.hard_state = nd->hs;
        rs.snapshot = nd->snap;
        rs.entries = nd->log;
        rs.n_entries = nd->log_len;
        rs.applied = nd->snap.index;
        nd->last_applied = nd->snap.index;
    }
    int rc = raft_new(&cfg, restore ? &rs : NULL, &nd->r);
    assert(rc == RAFT_OK);
    (void)rc;
    nd->up = true;
}

void fx_init(fx *f, int n, const raft_config *tmpl)
{
    memset(f, 0, sizeof(*f));
    f->n = n;
    f->cfg = *tmpl;
    f->cfg.conf.n_voters = (uint32_t)n;
    for (int i = 0; i < n; i++)
        f->cfg.conf.voters[i] = (raft_id)(i + 1);
    for (int i = 1; i <= n; i++)
        node_start(f, i, false);
}

static void free_log(fx_node *nd)
{
    for (size_t i = 0; i < nd->log_len; i++)
        free((void *)nd->log[i].data);
    free(nd->log);
    nd->log = NULL;
    nd->log_len = 0;
}

void fx_free(fx *f)
{
    for (int i = 0; i < f->n; i++) {
        raft_free(f->nodes[i].r);
        free_log(&f->nodes[i]);
    }
}

static void persist(fx_node *nd, const raft_ready *rd)
{
    if (rd->snapshot.index) {
        free_log(nd);
        nd->snap = rd->snapshot;
        nd->last_applied = rd->snapshot.index;
    }
    if (rd->truncate_from) {
        while (nd->log_len > 0 && nd->log[nd->log_len - 1].index >= rd->truncate_from) {
            free((void *)nd->log[nd->log_len - 1].data);
            nd->log_len--;
        }
    }
    if (rd->n_entries) {
        nd->log = realloc(nd->log, (nd->log_len + rd->n_entries) * sizeof(raft_entry));
        for (size_t i = 0; i < rd->n_entries; i++) {
            raft_entry e = rd->entries[i];
            if (e.len) {
                uint8_t *d = malloc(e.len);
                memcpy(d, e.data, e.len);
                e.data = d;
            }
            assert(nd->log_len == 0 || nd->log[nd->log_len - 1].index + 1 == e.index);
            nd->log[nd->log_len++] = e;
        }
    }
    if (rd->hard_state_changed)
        nd->hs = rd->hard_state;
}

typedef struct pending {
    raft_msg *msgs;
    size_t n, cap;
} pending;

static void queue_msgs(pending *p, const raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_msgs; i++) {
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 64;
            p->msgs = realloc(p->msgs, p->cap * sizeof(raft_msg));
        }
        raft_msg m = rd->msgs[i];
        /* deep copy: the Ready frees its messages at advance */
        if (m.n_entries) {
            raft_entry *es = malloc(m.n_entries * sizeof(raft_entry));
            for (uint32_t j = 0; j < m.n_entries; j++) {
                es[j] = m.entries[j];
                if (es[j].len) {
                    uint8_t *d = malloc(es[j].len);
                    memcpy(d, m.entries[j].data, es[j].len);
                    es[j].data = d;
                }
            }
            m.entries = es;
        }
        p->msgs[p->n++] = m;
    }
}

static void free_msg(raft_msg *m)
{
    for (uint32_t j = 0; j < m->n_entries; j++)
        free((void *)m->entries[j].data);
    free((void *)m->entries);
}

static bool ready_round(fx *f, pending *p)
{
    bool any = false;
    for (int i = 0; i < f->n; i++) {
        fx_node *nd = &f->nodes[i];
        if (!nd->up || !raft_has_ready(nd->r))
            continue;
        any = true;
        raft_ready rd;
        raft_ready_get(nd->r, &rd);
        persist(nd, &rd);
        queue_msgs(p, &rd);
        for (size_t k = 0; k < rd.n_committed; k++) {
            const raft_entry *e = &rd.committed[k];
            assert(e->index == nd->last_applied + 1);
            nd->last_applied = e->index;
            if (nd->n_applied < FX_MAX_APPLIED) {
                nd->applied[nd->n_applied] = e->index;
                nd->applied_term[nd->n_applied] = e->term;
                nd->n_applied++;
            }
        }
        for (size_t k = 0; k < rd.n_reads && nd->n_reads < 64; k++)
            nd->reads[nd->n_reads++] = rd.reads[k];
        raft_advance(nd->r, &rd);
    }
    return any;
}

void fx_pump(fx *f)
{
    pending p = {0};
    for (int round = 0; round < 10000; round++) {
        bool any = ready_round(f, &p);
        if (p.n == 0 && !any)
            break;
        pending now = p;
        memset(&p, 0, sizeof(p));
        for (size_t i = 0; i < now.n; i++) {
            raft_msg *m = &now.msgs[i];
            int to = (int)m->to;
            if (to >= 1 && to <= f->n && f->nodes[to - 1].up && !f->cut[m->from][to]) {
                raft_step(f->nodes[to - 1].r, m);
                f->delivered++;
            }
            free_msg(m);
        }
        free(now.msgs);
    }
    free(p.msgs);
}

void fx_tick(fx *f, int node)
{
    if (f->nodes[node - 1].up)
        raft_tick(f->nodes[node - 1].r);
    fx_pump(f);
}

void fx_tick_all(fx *f, int ticks)
{
    for (int t = 0; t < ticks; t++) {
        for (int i = 0; i < f->n; i++)
            if (f->nodes[i].up)
                raft_tick(f->nodes[i].r);
        fx_pump(f);
    }
}

int fx_leader(fx *f)
{
    int best = 0;
    raft_term term = 0;
    for (int i = 0; i < f->n; i++) {
        fx_node *nd = &f->nodes[i];
        if (nd->up && raft_get_role(nd->r) == RAFT_LEADER && raft_get_term(nd->r) >= term) {
            best = i + 1;
            term = raft_get_term(nd->r);
        }
    }
    return best;
}

int fx_elect(fx *f, int id)
{
    raft_campaign(fx_r(f, id));
    fx_pump(f);
    return fx_leader(f);
}

void fx_crash(fx *f, int id)
{
    fx_node *nd = &f->nodes[id - 1];
    raft_free(nd->r);
    nd->r = NULL;
    nd->up = false;
}

void fx_restart(fx *f, int id)
{
    node_start(f, id, true);
}

void fx_isolate(fx *f, int id, bool isolated)
{
    for (int j = 1; j <= f->n; j++) {
        f->cut[id][j] = isolated;
        f->cut[j][id] = isolated;
    }
}

raft_index fx_propose(fx *f, const char *text)
{
    int l = fx_leader(f);
    if (!l)
        return 0;
    raft_index index = 0;
    if (raft_propose(fx_r(f, l), RAFT_ENTRY_NORMAL, text, (uint32_t)strlen(text), &index, NULL) != RAFT_OK)
        return 0;
    fx_pump(f);
    return index;
}
