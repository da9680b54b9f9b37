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
    fx_init_voters(f, n, n, tmpl);
}

void fx_init_voters(fx *f, int n, int voters, const raft_config *tmpl)
{
    memset(f, 0, sizeof(*f));
    f->n = n;
    f->cfg = *tmpl;
    f->cfg.conf.n_voters = (uint32_t)voters;
    for (int i = 0; i < voters; i++)
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

/* ---------------------------------------------------------------------------------------------- */
/* Single-core helpers */

raft_config cx_config(raft_id id, int n)
{
    raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = id;
    cfg.seed = 42;
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    cfg.conf.n_voters = (uint32_t)n;
    for (int i = 0; i < n; i++)
        cfg.conf.voters[i] = (raft_id)(i + 1);
    return cfg;
}

raft *cx_new(const raft_config *cfg, const raft_term *terms, size_t n_terms, raft_hard_state hs)
{
    raft_entry *es = calloc(n_terms ? n_terms : 1, sizeof(raft_entry));
    assert(es != NULL);
    for (size_t i = 0; i < n_terms; i++) {
        es[i].index = (raft_index)(i + 1);
        es[i].term = terms[i];
        es[i].type = RAFT_ENTRY_NORMAL;
    }
    raft_restore rs = {.hard_state = hs, .entries = es, .n_entries = n_terms, .applied = hs.commit};
    raft *r = NULL;
    int rc = raft_new(cfg, &rs, &r);
    free(es);
    assert(rc == RAFT_OK && r != NULL);
    (void)rc;
    return r;
}

/* Copies n entries into `dst` (room checked) with their data in out's pool. */
static void copy_entries_into(cx_ready *out, raft_entry *dst, const raft_entry *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = src[i];
        if (src[i].len) {
            assert(out->n_data + src[i].len <= CX_MAX_DATA);
            memcpy(out->data + out->n_data, src[i].data, src[i].len);
            dst[i].data = out->data + out->n_data;
            out->n_data += src[i].len;
        } else {
            dst[i].data = NULL;
        }
    }
}

static void append_ready(cx_ready *out, const raft_ready *rd)
{
    out->got = true;
    out->role = rd->role;
    out->leader = rd->leader;
    if (rd->snapshot.index)
        out->snapshot = rd->snapshot;
    if (rd->truncate_from)
        out->truncate_from = rd->truncate_from;
    if (rd->hard_state_changed) {
        out->hard_state_changed = true;
        out->hard_state = rd->hard_state;
    }
    assert(out->n_entries + rd->n_entries <= CX_MAX_ENTRIES);
    copy_entries_into(out, out->entries + out->n_entries, rd->entries, rd->n_entries);
    out->n_entries += rd->n_entries;
    assert(out->n_committed + rd->n_committed <= CX_MAX_ENTRIES);
    copy_entries_into(out, out->committed + out->n_committed, rd->committed, rd->n_committed);
    out->n_committed += rd->n_committed;
    assert(out->n_msgs + rd->n_msgs <= CX_MAX_MSGS);
    for (size_t i = 0; i < rd->n_msgs; i++) {
        raft_msg m = rd->msgs[i];
        if (m.n_entries) {
            assert(out->n_msg_entries + m.n_entries <= CX_MAX_ENTRIES);
            raft_entry *dst = out->msg_entries + out->n_msg_entries;
            copy_entries_into(out, dst, m.entries, m.n_entries);
            out->n_msg_entries += m.n_entries;
            m.entries = dst;
        } else {
            m.entries = NULL;
        }
        out->msgs[out->n_msgs++] = m;
    }
    assert(out->n_reads + rd->n_reads <= CX_MAX_MSGS);
    if (rd->n_reads) /* memcpy from NULL is undefined even for 0 bytes */
        memcpy(out->reads + out->n_reads, rd->reads, rd->n_reads * sizeof(raft_read_state));
    out->n_reads += rd->n_reads;
}

static void cx_reset(cx_ready *out)
{
    /* the big pools need no clearing: only the counts say what is valid */
    out->got = false;
    out->role = RAFT_FOLLOWER;
    out->leader = 0;
    memset(&out->snapshot, 0, sizeof(out->snapshot));
    out->truncate_from = 0;
    out->n_entries = 0;
    out->hard_state_changed = false;
    memset(&out->hard_state, 0, sizeof(out->hard_state));
    out->n_msgs = 0;
    out->n_committed = 0;
    out->n_reads = 0;
    out->n_msg_entries = 0;
    out->n_data = 0;
}

bool cx_take(raft *r, cx_ready *out)
{
    cx_reset(out);
    if (!raft_has_ready(r))
        return false;
    raft_ready rd;
    raft_ready_get(r, &rd);
    append_ready(out, &rd);
    raft_advance(r, &rd);
    return true;
}

int cx_drain(raft *r, cx_ready *out)
{
    cx_reset(out);
    int n = 0;
    while (raft_has_ready(r)) {
        raft_ready rd;
        raft_ready_get(r, &rd);
        append_ready(out, &rd);
        raft_advance(r, &rd);
        n++;
        assert(n < 1000);
    }
    return n;
}

raft_msg cx_msg(int type, raft_id from, raft_id to, raft_term term)
{
    raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = (uint8_t)type;
    m.from = from;
    m.to = to;
    m.term = term;
    return m;
}

size_t cx_count(const cx_ready *rd, int type, raft_id to)
{
    size_t n = 0;
    for (size_t i = 0; i < rd->n_msgs; i++)
        n += (type == 0 || rd->msgs[i].type == type) && (to == 0 || rd->msgs[i].to == to);
    return n;
}

const raft_msg *cx_find(const cx_ready *rd, int type, raft_id to)
{
    for (size_t i = 0; i < rd->n_msgs; i++)
        if ((type == 0 || rd->msgs[i].type == type) && (to == 0 || rd->msgs[i].to == to))
            return &rd->msgs[i];
    return NULL;
}

void cx_make_leader(raft *r, cx_ready *out)
{
    const raft_conf *conf = raft_get_conf(r);
    raft_id self = raft_self(r);
    raft_campaign(r);
    for (int round = 0; round < 2 && raft_get_role(r) != RAFT_LEADER; round++) {
        bool pre = raft_get_role(r) == RAFT_PRE_CANDIDATE;
        raft_term term = raft_get_term(r) + (pre ? 1 : 0);
        for (uint32_t i = 0; i < conf->n_voters && raft_get_role(r) != RAFT_LEADER; i++) {
            if (conf->voters[i] == self)
                continue;
            if (pre && raft_get_role(r) != RAFT_PRE_CANDIDATE)
                break;
            raft_msg m = cx_msg(pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, conf->voters[i],
                                self, term);
            raft_step(r, &m);
        }
    }
    assert(raft_get_role(r) == RAFT_LEADER);
    if (out) {
        cx_drain(r, out);
    } else {
        cx_ready *tmp = malloc(sizeof(*tmp));
        assert(tmp != NULL);
        cx_drain(r, tmp);
        free(tmp);
    }
}
