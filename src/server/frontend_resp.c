/*
 * frontend_resp.c -- the RESP2 server (parser and command mapping in proto_resp.h).
 *
 * Writes (SET DEL MSET INCR EXPIRE) are proposed on the leader and forwarded from a follower to the
 * leader's RESP port (Redis clients do not follow redirects), whose reply line is relayed as is.
 * Reads (GET MGET EXISTS TTL, and DBSIZE) pass a read barrier on whichever node they reach. PING,
 * INFO (with a "# Raft" section from node_get_info), COMMAND (an empty array: enough for redis-cli)
 * and QUIT are answered at once, and so are SELECT 0 and CLIENT SETNAME/SETINFO, which client
 * libraries send when they connect.
 *
 * RAFTKV.MEMBER ADD|ADDLEARNER <id> [<host> <peer_port> <client_port> <resp_port>] / PROMOTE <id>
 * / DEMOTE <id> / REMOVE <id> changes the members (one node at a time; a node no peers file lists needs its
 * addresses, which the change then replicates; a learner gets the log but never votes, and is
 * promoted once caught up), forwarded to the leader like a write and answered +OK once the
 * change commits; RAFTKV.MEMBER LIST is a read: one line per known node and its role (voter,
 * learner, not-voter).
 *
 * The fast path (docs/NILEXT.md, when fast_path is on): RAFTKV.REGISTER opens a client session
 * (a write, forwarded like one; the reply is its id, :<id>). RAFTKV.FSET <session> <seq> <key>
 * <value> is a SET that its client sends to every node: each node answers, once the write is
 * durable there, "+FAST <term> <leader> <index> <voter,voter,...> <its own id>" (index 0 on a
 * follower); the client is done when the leader and every listed voter answered in one term.
 *
 * The command FWD_RESP_COMMAND ("RAFTKV.FORWARDED") marks the connection as another node's
 * forwarder: its writes are never forwarded again; on a node that is not the leader they get
 * "-ERR not the leader" instead.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend_int.h"
#include "growbuf.h"
#include "members.h"
#include "proto_resp.h"

/* The argument vector copied out of the parser's buffer. */
typedef struct resp_copy {
    proto_resp_cmd cmd;
    kv_slice argv[]; /* cmd.argc, then the bytes */
} resp_copy;

static resp_copy *copy_cmd(const proto_resp_cmd *cmd, size_t *size)
{
    size_t bytes = 0;
    for (uint32_t i = 0; i < cmd->argc; i++) bytes += cmd->argv[i].len;
    size_t argv_size = (size_t)cmd->argc * sizeof(kv_slice);
    *size = sizeof(resp_copy) + argv_size + bytes + 1;
    resp_copy *copy = malloc(*size);
    if (copy == NULL) return NULL;
    uint8_t *at = (uint8_t *)copy->argv + argv_size;
    for (uint32_t i = 0; i < cmd->argc; i++) {
        if (cmd->argv[i].len) memcpy(at, cmd->argv[i].base, cmd->argv[i].len);
        copy->argv[i].base = at;
        copy->argv[i].len = cmd->argv[i].len;
        at += cmd->argv[i].len;
    }
    copy->cmd.argc = cmd->argc;
    copy->cmd.argv = copy->argv;
    return copy;
}

/* Keeps a copy of cmd in req until req leaves the queue, counted against the connection
 * (fe_req_keep); false, with req failed, when out of memory. */
static bool keep_copy(fe_req *req, const proto_resp_cmd *cmd)
{
    if (req->cmd != NULL) return true;
    size_t size = 0;
    void *copy = copy_cmd(cmd, &size); /* sets size: not in fe_req_keep's argument list */
    return fe_req_keep(req, copy, size);
}

static bool equals_nocase(kv_slice s, const char *word)
{
    size_t len = strlen(word);
    if (s.len != len) return false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s.base[i];
        if (c >= 'A' && c <= 'Z') c = (uint8_t)(c - 'A' + 'a');
        uint8_t w = (uint8_t)word[i];
        if (w >= 'A' && w <= 'Z') w = (uint8_t)(w - 'A' + 'a');
        if (c != w) return false;
    }
    return true;
}


static void encode_multibulk(const proto_resp_cmd *cmd, growbuf *b)
{
    growbuf_printf(b, "*%u\r\n", cmd->argc);
    for (uint32_t i = 0; i < cmd->argc; i++) {
        growbuf_printf(b, "$%zu\r\n", cmd->argv[i].len);
        growbuf_put(b, cmd->argv[i].base, cmd->argv[i].len);
        growbuf_put(b, "\r\n", 2);
    }
}

/* ---- INFO ------------------------------------------------------------------------------------ */

static const char *role_name(raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRE_CANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    }
    return "unknown";
}

static bool want_section(const kv_slice *arg, const char *section)
{
    return arg == NULL || equals_nocase(*arg, section) || equals_nocase(*arg, "all") ||
           equals_nocase(*arg, "everything") || equals_nocase(*arg, "default");
}

static void reply_info(fe_session *s, const kv_slice *section)
{
    frontend *fe = s->fe;
    node *n = fe->node;
    const node_peer *self = node_self(n);
    node_info info;
    node_get_info(n, &info);
    frontend_stats st;
    frontend_get_stats(fe, &st);
    kv_stats kvs;
    kv_get_stats(node_kv(n), &kvs);
    growbuf b = {0};
    if (want_section(section, "server"))
        growbuf_printf(&b, "# Server\r\nredis_version:7.0.0\r\nraftkv_version:0.1.0\r\nredis_mode:standalone\r\n"
                      "tcp_port:%u\r\n\r\n", fe->resp_port);
    if (want_section(section, "clients"))
        growbuf_printf(&b, "# Clients\r\nconnected_clients:%u\r\ntext_clients:%u\r\n\r\n", st.resp_conns,
                  st.text_conns);
    if (want_section(section, "stats"))
        growbuf_printf(&b, "# Stats\r\ntotal_connections_received:%llu\r\nrejected_connections:%llu\r\n"
                      "total_requests:%llu\r\nforwarded_requests:%llu\r\nredirected_requests:%llu\r\n"
                      "client_output_limit_disconnections:%llu\r\n\r\n",
                  (unsigned long long)st.accepted, (unsigned long long)st.refused,
                  (unsigned long long)st.requests, (unsigned long long)st.forwarded,
                  (unsigned long long)st.redirected, (unsigned long long)st.closed_output_limit);
    if (want_section(section, "raft")) {
        node_peer leader;
        bool has_leader = node_leader(n, &leader);
        growbuf_printf(&b, "# Raft\r\nnode_id:%llu\r\nrole:%s\r\nterm:%llu\r\nleader:%llu\r\n",
                  (unsigned long long)info.id, role_name(info.role), (unsigned long long)info.term,
                  (unsigned long long)info.leader);
        if (has_leader) growbuf_printf(&b, "leader_resp:%s:%u\r\n", leader.host, leader.resp_port);
        growbuf_printf(&b, "commit:%llu\r\napplied:%llu\r\nlast_index:%llu\r\nsnapshot_index:%llu\r\n"
                      "writes_ok:%llu\r\nreads_ok:%llu\r\nfsyncs:%llu\r\npeers:%u\r\n",
                  (unsigned long long)info.commit, (unsigned long long)info.applied,
                  (unsigned long long)info.last_index, (unsigned long long)info.snapshot_index,
                  (unsigned long long)info.writes_ok, (unsigned long long)info.reads_ok,
                  (unsigned long long)info.fsyncs, info.n_peers);
        growbuf_printf(&b, "loop_polls:%llu\r\nfast_sessions:%zu\r\n",
                       (unsigned long long)info.loop_polls, kv_session_count(node_kv(n)));
        growbuf_printf(&b, "voters:");
        for (uint32_t i = 0; i < info.voters.n_voters; i++)
            growbuf_printf(&b, "%s%llu", i ? "," : "", (unsigned long long)info.voters.voters[i]);
        growbuf_printf(&b, "\r\nlearners:");
        for (uint32_t i = 0; i < info.voters.n_learners; i++)
            growbuf_printf(&b, "%s%llu", i ? "," : "", (unsigned long long)info.voters.learners[i]);
        growbuf_printf(&b, "\r\nconf_pending:%d\r\n", info.conf_pending ? 1 : 0);
        growbuf_printf(&b, "peer_msgs_sent:%llu\r\npeer_msgs_received:%llu\r\npeer_msgs_dropped:%llu\r\n",
                  (unsigned long long)info.peer_msgs_sent, (unsigned long long)info.peer_msgs_received,
                  (unsigned long long)info.peer_msgs_dropped);
        for (uint32_t i = 0; i < info.n_peers && i < RAFT_MAX_NODES; i++)
            growbuf_printf(&b, "peer_%llu:match=%llu,connected=%d\r\n", (unsigned long long)info.peers[i].id,
                      (unsigned long long)info.peers[i].match, info.peers[i].connected ? 1 : 0);
        growbuf_put(&b, "\r\n", 2);
    }
    if (want_section(section, "keyspace"))
        growbuf_printf(&b, "# Keyspace\r\ndb0:keys=%zu,expires=0,avg_ttl=0\r\n", kvs.keys);
    (void)self;
    if (b.failed) {
        conn_reply(s->c, "-ERR out of memory\r\n", 20);
    } else {
        if (b.len >= 2) b.len -= 2; /* no blank line after the last section */
        char header[32];
        size_t h = proto_resp_bulk_header(header, sizeof header, b.len);
        growbuf whole = {0};
        growbuf_put(&whole, header, h);
        growbuf_put(&whole, b.base, b.len);
        growbuf_put(&whole, "\r\n", 2);
        if (whole.failed) conn_reply(s->c, "-ERR out of memory\r\n", 20);
        else conn_reply(s->c, whole.base, whole.len);
        free(whole.base);
    }
    free(b.base);
}

/* A write (or membership change) this node cannot propose: forwarded to the leader when one is
 * known (not if it came forwarded: never twice), else it waits for one. */
static void to_leader(fe_req *req, const proto_resp_cmd *cmd)
{
    fe_session *s = req->s;
    node *n = s->fe->node;
    node_peer leader;
    if (node_leader(n, &leader) && leader.id != node_self(n)->id) {
        if (s->forwarded) {
            fe_req_fail(req, FE_ERR_NOT_LEADER);
            return;
        }
        growbuf b = {0};
        encode_multibulk(cmd, &b);
        if (b.failed) fe_req_fail(req, FE_ERR_INTERNAL);
        else fe_req_forward(req, s->fe->fwd_resp, &leader, (const uint8_t *)b.base, b.len);
        free(b.base);
        return;
    }
    if (!keep_copy(req, cmd)) return;
    fe_req_wait_leader(req);
}

/* ---- membership ------------------------------------------------------------------------------ */

#define MEMBER_USAGE "-ERR usage: RAFTKV.MEMBER ADD|ADDLEARNER <id> [<host> <peer_port> " \
                     "<client_port> <resp_port>] | PROMOTE|DEMOTE|REMOVE <id> | LIST\r\n"

/* Built when the reply is written, after a read barrier: it shows every change acknowledged before
 * (on this connection or anywhere), and a spare or removed node, which knows no current
 * configuration, fails the barrier instead of listing a stale one. */
static void emit_member_list(node *n, fe_out *out)
{
    node_info info;
    node_get_info(n, &info);
    uint32_t count;
    const node_peer *peers = node_peers(n, &count);
    growbuf b = {0};
    for (uint32_t i = 0; i < count; i++)
        growbuf_printf(&b, "%llu %s:%u client=%u resp=%u %s\n", (unsigned long long)peers[i].id,
                       peers[i].host, peers[i].peer_port, peers[i].client_port, peers[i].resp_port,
                       node_votes(n, peers[i].id)    ? "voter"
                       : node_learns(n, peers[i].id) ? "learner"
                                                     : "not-voter");
    if (info.conf_pending) growbuf_printf(&b, "(a change is not committed yet)\n");
    if (b.failed) {
        fe_out_put(out, "-ERR out of memory\r\n", 20);
    } else {
        char header[32];
        size_t h = proto_resp_bulk_header(header, sizeof header, b.len);
        fe_out_put(out, header, h);
        fe_out_put(out, b.base, b.len);
        fe_out_put(out, "\r\n", 2);
    }
    free(b.base);
}

static bool parse_u64(const kv_slice *a, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (a->len == 0 || a->len > 16) return false;
    for (size_t i = 0; i < a->len; i++) {
        if (a->base[i] < '0' || a->base[i] > '9') return false;
        v = v * 10 + (uint64_t)(a->base[i] - '0');
    }
    if (v == 0 || v > max) return false;
    *out = v;
    return true;
}

/* ADD|ADDLEARNER <id> [<host> <peer_port> <client_port> <resp_port>], PROMOTE <id> or REMOVE
 * <id>: the id (and *op, *has_addr, *addr filled), else 0. */
static raft_id member_target(const proto_resp_cmd *cmd, node_member_op *op, bool *has_addr,
                             node_peer *addr)
{
    static const char *const verbs[] = {
        [NODE_MEMBER_ADD] = "add", [NODE_MEMBER_ADD_LEARNER] = "addlearner",
        [NODE_MEMBER_PROMOTE] = "promote", [NODE_MEMBER_REMOVE] = "remove",
        [NODE_MEMBER_DEMOTE] = "demote"};
    if (cmd->argc != 3 && cmd->argc != 7) return 0;
    int verb = -1;
    for (int i = 0; i < (int)(sizeof verbs / sizeof verbs[0]); i++)
        if (equals_nocase(cmd->argv[1], verbs[i])) verb = i;
    if (verb < 0) return 0;
    *op = (node_member_op)verb;
    bool add = *op == NODE_MEMBER_ADD || *op == NODE_MEMBER_ADD_LEARNER;
    if (cmd->argc == 7 && !add) return 0;
    uint64_t id = 0;
    if (!parse_u64(&cmd->argv[2], 1ull << 53, &id)) return 0;
    *has_addr = cmd->argc == 7;
    if (*has_addr) {
        memset(addr, 0, sizeof *addr);
        addr->id = id;
        const kv_slice *h = &cmd->argv[3];
        if (h->len == 0 || h->len >= sizeof addr->host) return 0;
        memcpy(addr->host, h->base, h->len);
        uint64_t port[3];
        for (int i = 0; i < 3; i++)
            if (!parse_u64(&cmd->argv[4 + i], 65535, &port[i])) return 0;
        addr->peer_port = (uint16_t)port[0];
        addr->client_port = (uint16_t)port[1];
        addr->resp_port = (uint16_t)port[2];
        if (!members_peer_valid(addr)) return 0;
    }
    return (raft_id)id;
}

static void member_go(fe_req *req, const proto_resp_cmd *cmd)
{
    fe_session *s = req->s;
    frontend *fe = s->fe;
    node *n = fe->node;
    node_member_op op = NODE_MEMBER_ADD;
    bool has_addr = false;
    node_peer addr;
    raft_id id = member_target(cmd, &op, &has_addr, &addr);
    assert(id != 0);
    if (node_is_leader(n)) {
        const char *refusal = node_member_refusal(n, id, op, has_addr ? &addr : NULL);
        if (refusal != NULL) { /* named, so the client learns which rule */
            char why[256];
            int len = snprintf(why, sizeof why, "-ERR node %llu %s\r\n", (unsigned long long)id,
                               refusal);
            fe_req_done_bytes(req, why, (size_t)len);
            return;
        }
        int rc = fe_req_change_member(req, id, op, has_addr ? &addr : NULL);
        if (rc == 0) return;
        if (rc == NODE_ECONFBUSY) {
            const char *busy = "-ERR a membership change is in progress (or the new leader has "
                               "not committed an entry yet), retry later\r\n";
            fe_req_done_bytes(req, busy, strlen(busy));
            return;
        }
        if (rc == NODE_EUNSAFE) {
            const char *unsafe = "-ERR the change would leave fewer voters answering than a "
                                 "majority of the new configuration (a node added counts only "
                                 "once it has caught up): bring the missing voters back first\r\n";
            fe_req_done_bytes(req, unsafe, strlen(unsafe));
            return;
        }
        if (rc == NODE_ELAGGING) {
            char why[200];
            int len = snprintf(why, sizeof why, "-ERR node %llu has not caught up: a learner is "
                               "promoted once its log is within %d entries of the commit index "
                               "and it answered within an election timeout, retry later\r\n",
                               (unsigned long long)id, NODE_PROMOTE_MAX_LAG);
            fe_req_done_bytes(req, why, (size_t)len);
            return;
        }
        if (rc == NODE_EMEMBER) {
            const char *bad = "-ERR not a valid membership change\r\n";
            fe_req_done_bytes(req, bad, strlen(bad));
            return;
        }
    }
    to_leader(req, cmd);
}

static void dispatch_member(fe_session *s, const proto_resp_cmd *cmd)
{
    if (cmd->argc == 2 && equals_nocase(cmd->argv[1], "list")) {
        fe_req *req = fe_req_new(s, PROTO_RESP_CMD_MEMBER_LIST, false, false);
        if (req == NULL) {
            conn_close(s->c, "closed: out of memory for a request");
            return;
        }
        if (keep_copy(req, cmd)) fe_req_read(req);
        return;
    }
    node_member_op op;
    bool has_addr;
    node_peer addr;
    if (member_target(cmd, &op, &has_addr, &addr) == 0) {
        conn_reply(s->c, MEMBER_USAGE, strlen(MEMBER_USAGE));
        return;
    }
    fe_req *req = fe_req_new(s, PROTO_RESP_CMD_MEMBER, true, false);
    if (req == NULL) {
        conn_close(s->c, "closed: out of memory for a request");
        return;
    }
    if (!fe_req_write_must_wait(req)) member_go(req, cmd);
    else keep_copy(req, cmd); /* retried when its turn comes */
}

/* ---- the fast path --------------------------------------------------------------------------- */

#define FSET_USAGE "-ERR usage: RAFTKV.FSET <session> <seq> <key> <value>\r\n"

/* Sessions never expire yet (docs/NILEXT.md, rule 10): a bound on how many may be opened. */
#define FAST_MAX_SESSIONS 100000
#define FAST_MAX_SEQ 9999999999999999ull /* 16 digits */

static void fast_cb(void *ctx, int status, const raft_fast_ack *ack)
{
    fe_req *req = ctx;
    if (status != NODE_OK) {
        const char *text = "-ERR the node is shutting down\r\n";
        fe_req_done_bytes(req, text, strlen(text));
        return;
    }
    char line[96 + RAFT_MAX_NODES * 21];
    int len = snprintf(line, sizeof line, "+FAST %llu %llu %llu ",
                       (unsigned long long)ack->term, (unsigned long long)ack->leader,
                       (unsigned long long)ack->index);
    for (uint32_t i = 0; i < ack->conf.n_voters; i++)
        len += snprintf(line + len, sizeof line - (size_t)len, "%s%llu", i ? "," : "",
                        (unsigned long long)ack->conf.voters[i]);
    len += snprintf(line + len, sizeof line - (size_t)len, " %llu\r\n",
                    (unsigned long long)node_self(req->s->fe->node)->id);
    fe_req_done_bytes(req, line, (size_t)len);
}

/* Why FSET's arguments are not right (the field and its limit), or NULL. */
static const char *fast_args_refusal(const frontend *fe, const proto_resp_cmd *cmd,
                                     uint64_t *session, uint64_t *seq)
{
    if (cmd->argc != 5) return FSET_USAGE;
    if (!parse_u64(&cmd->argv[1], FAST_MAX_SEQ, session))
        return "-ERR RAFTKV.FSET: session: expected an integer 1..9999999999999999\r\n";
    if (!parse_u64(&cmd->argv[2], FAST_MAX_SEQ, seq))
        return "-ERR RAFTKV.FSET: seq: expected an integer 1..9999999999999999\r\n";
    if (!kv_key_valid(cmd->argv[3].base, cmd->argv[3].len))
        return "-ERR RAFTKV.FSET: key: 1..250 bytes, no space or control character\r\n";
    if (cmd->argv[4].len > fe->config.max_value)
        return "-ERR RAFTKV.FSET: value: larger than max_value_bytes\r\n";
    return NULL;
}

static void fast_go(fe_req *req, const proto_resp_cmd *cmd)
{
    frontend *fe = req->s->fe;
    uint64_t session = 0, seq = 0;
    const char *err = fast_args_refusal(fe, cmd, &session, &seq);
    if (err == NULL) {
        kv_cmd set = {.op = KV_OP_SET, .key = cmd->argv[3], .value = cmd->argv[4]};
        int rc = node_fast_write(fe->node, session, seq, &set, fast_cb, req);
        switch (rc) {
        case NODE_OK: req->state = FE_WRITING; return;
        case NODE_EFASTOFF: err = "-ERR the fast path is off on this node (fast_path)\r\n"; break;
        case NODE_ESESSION: err = "-ERR unknown session (RAFTKV.REGISTER first)\r\n"; break;
        case NODE_ESTALE:
            err = "-ERR stale seq: the session applied this seq already (seqs must rise)\r\n";
            break;
        case NODE_ENOLEADER:
        case NODE_ENOTLEADER: err = "-CLUSTERDOWN no leader known\r\n"; break;
        case NODE_EBUSY: err = "-TRYAGAIN the leader is busy or recovering, retry\r\n"; break;
        case NODE_ETOOBIG: err = "-ERR value too large\r\n"; break;
        default: err = "-ERR the node cannot take it now\r\n"; break;
        }
    }
    fe_req_done_bytes(req, err, strlen(err));
}

static void register_go(fe_req *req, const proto_resp_cmd *cmd)
{
    node *n = req->s->fe->node;
    if (!node_fast_path(n)) {
        const char *off = "-ERR the fast path is off on this node (fast_path)\r\n";
        fe_req_done_bytes(req, off, strlen(off));
        return;
    }
    kv_cmd reg = {.op = KV_OP_REGISTER};
    if (node_is_leader(n)) {
        if (kv_session_count(node_kv(n)) >= FAST_MAX_SESSIONS) {
            const char *full = "-ERR too many fast-path sessions (100000; they do not expire "
                               "yet: clients close theirs with RAFTKV.UNREGISTER)\r\n";
            fe_req_done_bytes(req, full, strlen(full));
            return;
        }
        if (fe_req_propose(req, &reg) == 0) return;
    }
    to_leader(req, cmd);
}

#define UNREGISTER_USAGE "-ERR usage: RAFTKV.UNREGISTER <session>\r\n"

/* Closes a session (its owner is done: a write it sends afterwards may be acknowledged and then
 * skipped, so it sends none). Taken with the fast path off too: sessions outlive the setting. */
static void unregister_go(fe_req *req, const proto_resp_cmd *cmd)
{
    uint64_t session = 0;
    if (cmd->argc != 2 || !parse_u64(&cmd->argv[1], FAST_MAX_SEQ, &session)) {
        fe_req_done_bytes(req, UNREGISTER_USAGE, strlen(UNREGISTER_USAGE));
        return;
    }
    kv_cmd unreg = {.op = KV_OP_UNREGISTER, .session = session};
    if (node_is_leader(req->s->fe->node) && fe_req_propose(req, &unreg) == 0) return;
    to_leader(req, cmd);
}

/* RAFTKV.FSET: on its connection, after the reads sent before it (like SET). */
static void dispatch_fast(fe_session *s, const proto_resp_cmd *cmd)
{
    uint64_t session, seq;
    const char *err = fast_args_refusal(s->fe, cmd, &session, &seq);
    if (err != NULL) {
        conn_reply(s->c, err, strlen(err));
        return;
    }
    fe_req *req = fe_req_new(s, PROTO_RESP_CMD_FSET, true, false);
    if (req == NULL) {
        conn_close(s->c, "closed: out of memory for a request");
        return;
    }
    if (!fe_req_write_must_wait(req)) fast_go(req, cmd);
    else keep_copy(req, cmd); /* retried when its turn comes */
}

static void dispatch_unregister(fe_session *s, const proto_resp_cmd *cmd)
{
    uint64_t session;
    if (cmd->argc != 2 || !parse_u64(&cmd->argv[1], FAST_MAX_SEQ, &session)) {
        conn_reply(s->c, UNREGISTER_USAGE, strlen(UNREGISTER_USAGE));
        return;
    }
    fe_req *req = fe_req_new(s, PROTO_RESP_CMD_UNREGISTER, true, false);
    if (req == NULL) {
        conn_close(s->c, "closed: out of memory for a request");
        return;
    }
    if (!fe_req_write_must_wait(req)) unregister_go(req, cmd);
    else keep_copy(req, cmd);
}

static void dispatch_register(fe_session *s, const proto_resp_cmd *cmd)
{
    if (cmd->argc != 1) {
        const char *usage = "-ERR usage: RAFTKV.REGISTER\r\n";
        conn_reply(s->c, usage, strlen(usage));
        return;
    }
    fe_req *req = fe_req_new(s, PROTO_RESP_CMD_REGISTER, true, false);
    if (req == NULL) {
        conn_close(s->c, "closed: out of memory for a request");
        return;
    }
    if (!fe_req_write_must_wait(req)) register_go(req, cmd);
    else keep_copy(req, cmd);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static void resp_write(fe_req *req, const proto_resp_cmd *cmd, const proto_resp_request *rq)
{
    fe_session *s = req->s;
    frontend *fe = s->fe;
    node *n = fe->node;
    if (node_is_leader(n) && fe_req_propose(req, &rq->cmd) == 0) return;
    to_leader(req, cmd);
}

static void dispatch(fe_session *s, const proto_resp_cmd *cmd)
{
    frontend *fe = s->fe;
    conn *c = s->c;
    if (equals_nocase(cmd->argv[0], FWD_RESP_COMMAND)) {
        s->forwarded = true;
        conn_reply(c, "+OK\r\n", 5);
        return;
    }
    /* What client libraries send on connect: one database (0), names accepted and ignored. */
    if (equals_nocase(cmd->argv[0], "select") && cmd->argc == 2) {
        bool zero = cmd->argv[1].len == 1 && cmd->argv[1].base[0] == '0';
        const char *r = zero ? "+OK\r\n" : "-ERR DB index is out of range\r\n";
        conn_reply(c, r, strlen(r));
        return;
    }
    if (equals_nocase(cmd->argv[0], "client") && cmd->argc >= 2 &&
        (equals_nocase(cmd->argv[1], "setname") || equals_nocase(cmd->argv[1], "setinfo"))) {
        conn_reply(c, "+OK\r\n", 5);
        return;
    }
    if (equals_nocase(cmd->argv[0], "raftkv.member")) {
        dispatch_member(s, cmd);
        return;
    }
    if (equals_nocase(cmd->argv[0], "raftkv.fset")) {
        dispatch_fast(s, cmd);
        return;
    }
    if (equals_nocase(cmd->argv[0], "raftkv.register")) {
        dispatch_register(s, cmd);
        return;
    }
    if (equals_nocase(cmd->argv[0], "raftkv.unregister")) {
        dispatch_unregister(s, cmd);
        return;
    }
    proto_resp_request rq;
    proto_resp_map(cmd, node_now_ms(fe->node), fe->config.max_value, fe->pairs, &rq);
    switch (rq.kind) {
    case PROTO_RESP_KIND_REPLY: conn_reply(c, rq.reply, rq.reply_len); return;
    case PROTO_RESP_KIND_LOCAL:
        switch (rq.name) {
        case PROTO_RESP_CMD_PING:
            if (rq.n_keys == 0) {
                conn_reply(c, "+PONG\r\n", 7);
            } else {
                char header[32];
                size_t h = proto_resp_bulk_header(header, sizeof header, rq.keys[0].len);
                growbuf b = {0};
                growbuf_put(&b, header, h);
                growbuf_put(&b, rq.keys[0].base, rq.keys[0].len);
                growbuf_put(&b, "\r\n", 2);
                if (!b.failed) conn_reply(c, b.base, b.len);
                else conn_close(c, "closed: out of memory");
                free(b.base);
            }
            return;
        case PROTO_RESP_CMD_INFO: reply_info(s, rq.n_keys > 0 ? &rq.keys[0] : NULL); return;
        case PROTO_RESP_CMD_COMMAND: conn_reply(c, "*0\r\n", 4); return;
        case PROTO_RESP_CMD_QUIT:
            conn_reply(c, "+OK\r\n", 5);
            conn_close_after_replies(c, NULL);
            return;
        case PROTO_RESP_CMD_DBSIZE: break; /* a read: after a barrier, below */
        default: conn_reply(c, "-ERR internal error: unhandled command\r\n", 40); return;
        }
        __attribute__((fallthrough)); /* DBSIZE is a read */
    case PROTO_RESP_KIND_READ: {
        fe_req *req = fe_req_new(s, (int)rq.name, false, false);
        if (req == NULL) {
            conn_close(c, "closed: out of memory for a request");
            return;
        }
        if (keep_copy(req, cmd)) fe_req_read(req);
        return;
    }
    case PROTO_RESP_KIND_WRITE: {
        fe_req *req = fe_req_new(s, (int)rq.name, true, false);
        if (req == NULL) {
            conn_close(c, "closed: out of memory for a request");
            return;
        }
        if (!fe_req_write_must_wait(req)) {
            resp_write(req, cmd, &rq);
        } else {
            keep_copy(req, cmd); /* retried when its turn comes */
        }
        return;
    }
    }
}

static void resp_retry(fe_req *req)
{
    resp_copy *copy = req->cmd;
    assert(copy != NULL && req->is_write);
    if (req->op == PROTO_RESP_CMD_MEMBER) {
        member_go(req, &copy->cmd);
        return;
    }
    if (req->op == PROTO_RESP_CMD_REGISTER) {
        register_go(req, &copy->cmd);
        return;
    }
    if (req->op == PROTO_RESP_CMD_FSET) {
        fast_go(req, &copy->cmd);
        return;
    }
    if (req->op == PROTO_RESP_CMD_UNREGISTER) {
        unregister_go(req, &copy->cmd);
        return;
    }
    /* Map again: the deadline must come from the clock of the node that proposes, now. */
    frontend *fe = req->s->fe;
    proto_resp_request rq;
    proto_resp_map(&copy->cmd, node_now_ms(fe->node), fe->config.max_value, fe->pairs, &rq);
    assert(rq.kind == PROTO_RESP_KIND_WRITE);
    resp_write(req, &copy->cmd, &rq);
}

/* ---- input ----------------------------------------------------------------------------------- */

static size_t resp_on_data(conn *c, const uint8_t *data, size_t len)
{
    fe_session *s = conn_proto(c);
    size_t off = 0;
    while (off < len && conn_accepting(c)) {
        size_t used = 0;
        proto_resp_cmd cmd;
        proto_resp_error err;
        proto_resp_status st = proto_resp_parse(s->parser, data + off, len - off, &used, &cmd, &err);
        off += used;
        if (st == PROTO_RESP_NEED_MORE) break;
        if (st == PROTO_RESP_ERROR) {
            conn_reply(c, err.reply, err.reply_len);
            if (err.close) {
                char why[200];
                snprintf(why, sizeof why, "closed after %.*s", (int)(err.reply_len - 2), err.reply);
                conn_close_after_replies(c, why);
                return len;
            }
            continue;
        }
        dispatch(s, &cmd);
    }
    return off;
}

/* ---- output ---------------------------------------------------------------------------------- */

static void emit_bulk_or_nil(fe_out *out, kv_store *kv, kv_slice key, uint64_t now)
{
    kv_view v;
    char header[32];
    if (kv_get(kv, key.base, key.len, now, &v)) {
        size_t h = proto_resp_bulk_header(header, sizeof header, v.value_len);
        fe_out_put(out, header, h);
        fe_out_put(out, v.value, v.value_len);
        fe_out_put(out, "\r\n", 2);
    } else {
        fe_out_put(out, "$-1\r\n", 5);
    }
}

static void emit_read(fe_req *req, fe_out *out)
{
    const resp_copy *copy = req->cmd;
    node *n = req->s->fe->node;
    kv_store *kv = node_kv(n);
    uint64_t now = node_now_ms(n);
    char buf[64];
    size_t len;
    const kv_slice *keys = copy->argv + 1;
    uint32_t n_keys = copy->cmd.argc - 1;
    switch ((proto_resp_name)req->op) {
    case PROTO_RESP_CMD_GET: emit_bulk_or_nil(out, kv, keys[0], now); break;
    case PROTO_RESP_CMD_MGET:
        len = proto_resp_array_header(buf, sizeof buf, n_keys);
        fe_out_put(out, buf, len);
        for (uint32_t i = 0; i < n_keys; i++) emit_bulk_or_nil(out, kv, keys[i], now);
        break;
    case PROTO_RESP_CMD_EXISTS: {
        int64_t count = 0;
        for (uint32_t i = 0; i < n_keys; i++) count += kv_get(kv, keys[i].base, keys[i].len, now, NULL);
        len = proto_resp_integer(buf, sizeof buf, count);
        fe_out_put(out, buf, len);
        break;
    }
    case PROTO_RESP_CMD_TTL:
        len = proto_resp_integer(buf, sizeof buf,
                                 proto_resp_ttl_seconds(kv_ttl_ms(kv, keys[0].base, keys[0].len, now)));
        fe_out_put(out, buf, len);
        break;
    case PROTO_RESP_CMD_DBSIZE: {
        kv_stats st;
        kv_get_stats(kv, &st);
        len = proto_resp_integer(buf, sizeof buf, (int64_t)st.keys);
        fe_out_put(out, buf, len);
        break;
    }
    case PROTO_RESP_CMD_MEMBER_LIST: emit_member_list(n, out); break;
    default: assert(!"not a read"); break;
    }
}

static const char *error_text(fe_err err)
{
    switch (err) {
    case FE_ERR_NO_LEADER: return "-CLUSTERDOWN no leader elected, retry later\r\n";
    case FE_ERR_UNKNOWN: return "-ERR outcome unknown: leadership changed or timed out before the write was confirmed\r\n";
    case FE_ERR_BUSY: return "-ERR server busy: too many pending writes, retry later\r\n";
    case FE_ERR_TOO_BIG: return "-ERR command too large\r\n";
    case FE_ERR_STOPPING: return "-ERR server shutting down\r\n";
    case FE_ERR_NOT_LEADER: return "-ERR not the leader\r\n";
    default: return "-ERR internal error\r\n";
    }
}

static void resp_emit(fe_req *req, fe_out *out)
{
    char buf[128];
    size_t n;
    const char *text;
    switch (req->reply) {
    case FE_REPLY_BYTES: fe_out_put(out, req->bytes, req->bytes_len); break;
    case FE_REPLY_RESULT:
        if (req->op == PROTO_RESP_CMD_MEMBER) {
            fe_out_put(out, "+OK\r\n", 5);
            break;
        }
        if (req->op == PROTO_RESP_CMD_REGISTER) {
            n = (size_t)snprintf(buf, sizeof buf, ":%llu\r\n",
                                 (unsigned long long)req->result.version);
            fe_out_put(out, buf, n);
            break;
        }
        if (req->op == PROTO_RESP_CMD_UNREGISTER) { /* :1 closed, :0 not open */
            fe_out_put(out, req->result.status == KV_ST_OK ? ":1\r\n" : ":0\r\n", 4);
            break;
        }
        n = proto_resp_reply_write(buf, sizeof buf, (proto_resp_name)req->op, &req->result);
        assert(n <= sizeof buf);
        fe_out_put(out, buf, n);
        break;
    case FE_REPLY_READ: emit_read(req, out); break;
    case FE_REPLY_ERROR:
        text = error_text(req->err);
        fe_out_put(out, text, strlen(text));
        break;
    case FE_REPLY_NONE: break;
    }
}

static void *resp_new_parser(const frontend *fe)
{
    /* A bulk may carry a whole value; arguments of one command may carry an MSET of big values up
     * to the text protocol's bound (one command = one log entry). */
    proto_resp_limits limits = {.max_bulk = fe->config.max_value};
    return proto_resp_new(&limits);
}

static void resp_free_parser(void *parser) { proto_resp_free(parser); }

const fe_proto fe_resp_proto = {
    .ops = {.name = "resp", .on_data = resp_on_data, .closed = fe_conn_closed},
    .new_parser = resp_new_parser,
    .free_parser = resp_free_parser,
    .emit = resp_emit,
    .retry = resp_retry,
};
