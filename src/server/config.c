/*
 * config.c -- defaults, the settings table, the two JSON files (cJSON) and the flags.
 *
 * One table (settings[]) describes every setting of the raft config file: its JSON key, type,
 * bounds and help line. The file parser, the flag parser and --help all walk it.
 */
#include "config.h"
#include "disk_fault.h"
#include "members.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum setting_type { SET_U64, SET_I64, SET_BOOL, SET_STR } setting_type;

typedef struct setting {
    const char *name; /* JSON key; the flag is --name with '-' for '_' */
    setting_type type;
    size_t offset;
    size_t size;      /* SET_STR: buffer size */
    int64_t min, max; /* SET_U64 / SET_I64 bounds, inclusive */
    const char *help;
} setting;

#define U64(f, lo, hi, h) {#f, SET_U64, offsetof(config, f), 0, lo, hi, h}
#define I64(f, lo, hi, h) {#f, SET_I64, offsetof(config, f), 0, lo, hi, h}
#define BOOL(f, h) {#f, SET_BOOL, offsetof(config, f), 0, 0, 1, h}
#define STR(f, h) {#f, SET_STR, offsetof(config, f), sizeof(((config *)0)->f), 0, 0, h}
#define GIB (1024LL * 1024 * 1024)
#define MAX_INT53 9007199254740992LL /* largest integer a JSON double holds exactly */

static const setting settings[] = {
    U64(election_timeout_min_ms, 2, 600000, "election timeout lower bound (default 300)"),
    U64(election_timeout_max_ms, 3, 1200000,
        "election timeout upper bound, > min (default 600); each timeout is drawn at "
        "random from [min, max)"),
    U64(check_quorum_ms, 0, 2400000,
        "a leader steps down after this long without hearing from a majority; at least "
        "election_timeout_min_ms; 0 = twice election_timeout_max_ms (default 0)"),
    U64(poll_us, 0, 1000000,
        "a leader keeps its loop polling (no sleep) this long after its last work: less "
        "latency per request, but a busy core while clients write; 0 = off (default 0)"),
    U64(heartbeat_ms, 1, 60000, "leader heartbeat interval, < election min (default 50)"),
    U64(tick_ms, 1, 1000, "logical clock tick; timeouts are counted in ticks (default 10)"),
    U64(snapshot_threshold, 0, MAX_INT53,
        "snapshot every this many applied entries, 0 = never (default 100000)"),
    U64(snapshot_trailing, 0, MAX_INT53, "log entries kept behind a snapshot (default 1000)"),
    STR(data_dir, "directory of the WAL and snapshots (default raftkv-data-<id>)"),
    U64(max_value_bytes, 1, 64LL * 1024 * 1024, "largest value a client may write (default 1 MiB)"),
    U64(max_inflight_msgs, 1, 65536, "appends in flight per follower (default 256)"),
    U64(max_entries_per_msg, 1, 1000000, "entries per append message (default 512)"),
    /* At most half the transport's frame limit (256 MiB): a larger append could never be sent. */
    U64(max_bytes_per_msg, 1024, 128LL * 1024 * 1024, "bytes per append message (default 1 MiB)"),
    U64(max_uncommitted_bytes, 0, 64 * GIB,
        "leader refuses writes past this many uncommitted bytes, 0 = no limit (default 256 MiB)"),
    U64(write_timeout_ms, 1, 3600000, "a write without outcome fails after this (default 5000)"),
    U64(read_timeout_ms, 1, 3600000, "a read barrier fails after this (default 5000)"),
    BOOL(fast_path, "the nil-externality fast path (docs/NILEXT.md): RAFTKV.FSET writes sent "
                    "by their client to every node; every node must agree (default false)"),
    BOOL(forward_to_leader, "text protocol: forward writes to the leader instead of "
                            "ERR_REDIRECT (default false)"),
    STR(cluster_id, "name every peer must present in the handshake (default \"raftkv\")"),
    STR(cluster_secret, "shared secret: handshakes are authenticated with HMAC-SHA256 "
                        "(default none)"),
    U64(peer_queue_bytes, 4096, 64 * GIB,
        "per-peer send queue bound; Raft messages past it are dropped (default 16 MiB)"),
    U64(snapshot_chunk_bytes, 4096, 64LL * 1024 * 1024,
        "snapshot transfer chunk size (default 1 MiB)"),
    U64(segment_bytes, 65536, 64 * GIB, "WAL segment size (default 64 MiB)"),
    BOOL(fsync, "fsync every write (default true; false is for tests: loses acknowledged writes)"),
    I64(clock_offset_ms, -MAX_INT53, MAX_INT53, "TEST ONLY: shift this node's clock (default 0)"),
    STR(test_bug, "TEST ONLY, UNSAFE: inject a safety bug so the torture harness can prove it "
                  "catches it: local-reads (no ReadIndex), ack-before-commit, ack-before-fsync "
                  "(send before persisting, persist 300 ms late) (default none)"),
    STR(test_disk_fault, "TEST ONLY: make the disk fail: fsync-eio:N (the Nth sync fails with EIO), "
                         "enospc:N (writes fail with ENOSPC after N bytes), torn-crash:N (the Nth "
                         "write is cut in half, then the process kills itself), fsync-stall:N:MS "
                         "(the Nth sync sleeps MS ms first) (default none)"),
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

void config_default(config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->election_timeout_min_ms = 300;
    cfg->election_timeout_max_ms = 600;
    cfg->heartbeat_ms = 50;
    cfg->tick_ms = 10;
    cfg->snapshot_threshold = 100000; /* as etcd: each snapshot writes the whole store */
    cfg->snapshot_trailing = 1000;
    cfg->max_value_bytes = 1024 * 1024;
    cfg->max_inflight_msgs = 256;
    cfg->max_entries_per_msg = 512;
    cfg->max_bytes_per_msg = 1024 * 1024;
    cfg->max_uncommitted_bytes = 256ull * 1024 * 1024;
    cfg->write_timeout_ms = 5000;
    cfg->read_timeout_ms = 5000;
    snprintf(cfg->cluster_id, sizeof cfg->cluster_id, "raftkv");
    cfg->peer_queue_bytes = 16ull * 1024 * 1024;
    cfg->snapshot_chunk_bytes = 1024 * 1024;
    cfg->segment_bytes = 64ull * 1024 * 1024;
    cfg->fsync = true;
}

/* ---- helpers ---------------------------------------------------------------------------------- */

/* Shows a JSON value in an error message: strings quoted, others as JSON, cut to 40 bytes. */
static void show_json(const cJSON *item, char *out, size_t cap)
{
    if (item == NULL) {
        snprintf(out, cap, "nothing");
        return;
    }
    if (cJSON_IsString(item)) {
        snprintf(out, cap, "\"%.40s\"", item->valuestring);
        return;
    }
    char *text = cJSON_PrintUnformatted(item);
    snprintf(out, cap, "%.40s", text != NULL ? text : "?");
    free(text);
}

static int json_integer(const cJSON *item, int64_t min, int64_t max, int64_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double v = item->valuedouble;
    if (!isfinite(v) || floor(v) != v || v < (double)min || v > (double)max)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20, len = 0; /* config files are small; refuse anything over 1 MiB */
    char *buf = malloc(cap + 1);
    if (buf != NULL)
        len = fread(buf, 1, cap + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (buf == NULL || failed || len > cap) {
        snprintf(err, errlen, "%s: cannot read: %s", path,
                 buf == NULL ? "out of memory" : failed ? "I/O error" : "larger than 1 MiB");
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static cJSON *parse_json(const char *path, const char *text, char *err, size_t errlen)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, true);
    if (root == NULL) {
        const char *at = end != NULL ? end : text;
        unsigned line = 1;
        for (const char *p = text; p < at && *p; p++)
            line += *p == '\n';
        snprintf(err, errlen, "%s: line %u: invalid JSON near \"%.20s\"", path, line, at);
    }
    return root;
}

/* ---- peers file ------------------------------------------------------------------------------- */

static int peer_port(const cJSON *obj, const char *path, int i, const char *key, uint16_t *out,
                     char *err, size_t errlen)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    int64_t v;
    if (json_integer(item, 1, 65535, &v) != 0) {
        char got[64];
        show_json(item, got, sizeof got);
        snprintf(err, errlen, "%s: [%d].%s: expected an integer 1..65535, got %s", path, i, key,
                 got);
        return CONFIG_EBAD;
    }
    *out = (uint16_t)v;
    return CONFIG_OK;
}

static int peer_cmp(const void *a, const void *b)
{
    raft_id x = ((const node_peer *)a)->id, y = ((const node_peer *)b)->id;
    return x < y ? -1 : x > y;
}

int config_parse_peers(config *cfg, const char *path, const char *text, char *err, size_t errlen)
{
    cJSON *root = parse_json(path, text, err, errlen);
    if (root == NULL)
        return CONFIG_EBAD;
    int rc = CONFIG_EBAD;
    int n = cJSON_GetArraySize(root);
    if (!cJSON_IsArray(root) || n < 1 || n > RAFT_MAX_NODES) {
        snprintf(err, errlen, "%s: expected a JSON array of 1..%d nodes", path, RAFT_MAX_NODES);
        goto out;
    }
    int voters = 0;
    static const char *const keys[] = {"id",        "host",      "peer_port",
                                       "client_port", "resp_port", "voter"};
    for (int i = 0; i < n; i++) {
        const cJSON *obj = cJSON_GetArrayItem(root, i);
        node_peer *p = &cfg->peers[i];
        memset(p, 0, sizeof *p);
        if (!cJSON_IsObject(obj)) {
            snprintf(err, errlen, "%s: [%d]: expected an object {id, host, peer_port, "
                     "client_port, resp_port}", path, i);
            goto out;
        }
        for (const cJSON *f = obj->child; f != NULL; f = f->next) {
            bool known = false;
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                known |= strcmp(f->string, keys[k]) == 0;
            if (!known) {
                snprintf(err, errlen, "%s: [%d].%.40s: unknown field", path, i, f->string);
                goto out;
            }
        }
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
        int64_t v;
        if (json_integer(id, 1, MAX_INT53, &v) != 0) {
            char got[64];
            show_json(id, got, sizeof got);
            snprintf(err, errlen, "%s: [%d].id: expected an integer 1..2^53, got %s", path, i, got);
            goto out;
        }
        p->id = (raft_id)v;
        for (int j = 0; j < i; j++)
            if (cfg->peers[j].id == p->id) {
                snprintf(err, errlen, "%s: [%d].id: %llu is already the id of [%d]", path, i,
                         (unsigned long long)p->id, j);
                goto out;
            }
        const cJSON *host = cJSON_GetObjectItemCaseSensitive(obj, "host");
        if (!cJSON_IsString(host) || host->valuestring[0] == '\0' ||
            strlen(host->valuestring) >= sizeof p->host) {
            char got[64];
            show_json(host, got, sizeof got);
            snprintf(err, errlen, "%s: [%d].host: expected a host name or address, got %s", path,
                     i, got);
            goto out;
        }
        snprintf(p->host, sizeof p->host, "%s", host->valuestring);
        if (peer_port(obj, path, i, "peer_port", &p->peer_port, err, errlen) != 0 ||
            peer_port(obj, path, i, "client_port", &p->client_port, err, errlen) != 0 ||
            peer_port(obj, path, i, "resp_port", &p->resp_port, err, errlen) != 0)
            goto out;
        if (!members_peer_valid(p)) { /* what a membership change can replicate (members.h) */
            snprintf(err, errlen, "%s: [%d].host: \"%.60s\" has a space or a control character",
                     path, i, p->host);
            goto out;
        }
        const cJSON *voter = cJSON_GetObjectItemCaseSensitive(obj, "voter");
        if (voter != NULL && !cJSON_IsBool(voter)) {
            char got[64];
            show_json(voter, got, sizeof got);
            snprintf(err, errlen, "%s: [%d].voter: expected true or false, got %s", path, i, got);
            goto out;
        }
        p->spare = voter != NULL && cJSON_IsFalse(voter);
        voters += !p->spare;
    }
    if (voters == 0) {
        snprintf(err, errlen, "%s: every node has \"voter\": false; the initial configuration "
                 "needs at least one voter", path);
        goto out;
    }
    cfg->n_peers = (uint32_t)n;
    qsort(cfg->peers, cfg->n_peers, sizeof cfg->peers[0], peer_cmp);
    rc = CONFIG_OK;
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- settings --------------------------------------------------------------------------------- */

static void set_u64(config *cfg, const setting *s, int64_t v)
{
    if (s->type == SET_I64)
        memcpy((char *)cfg + s->offset, &v, sizeof v);
    else {
        uint64_t u = (uint64_t)v;
        memcpy((char *)cfg + s->offset, &u, sizeof u);
    }
}

static void set_bool(config *cfg, const setting *s, bool v)
{
    memcpy((char *)cfg + s->offset, &v, sizeof v);
}

static int set_str(config *cfg, const setting *s, const char *v)
{
    if (strlen(v) >= s->size)
        return -1;
    memcpy((char *)cfg + s->offset, v, strlen(v) + 1);
    return 0;
}

static void expected(const setting *s, char *out, size_t cap)
{
    switch (s->type) {
    case SET_U64:
    case SET_I64:
        snprintf(out, cap, "an integer %lld..%lld", (long long)s->min, (long long)s->max);
        break;
    case SET_BOOL:
        snprintf(out, cap, "true or false");
        break;
    case SET_STR:
        snprintf(out, cap, "a string of at most %zu bytes", s->size - 1);
        break;
    }
}

int config_parse_settings(config *cfg, const char *path, const char *text, char *err,
                          size_t errlen)
{
    cJSON *root = parse_json(path, text, err, errlen);
    if (root == NULL)
        return CONFIG_EBAD;
    int rc = CONFIG_EBAD;
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: expected a JSON object of settings", path);
        goto out;
    }
    for (const cJSON *f = root->child; f != NULL; f = f->next) {
        const setting *s = NULL;
        for (size_t k = 0; k < N_SETTINGS; k++)
            if (strcmp(settings[k].name, f->string) == 0)
                s = &settings[k];
        if (s == NULL) {
            snprintf(err, errlen, "%s: %.60s: unknown field (raftkvd --help lists them)", path,
                     f->string);
            goto out;
        }
        int64_t v;
        bool ok = false;
        if (s->type == SET_U64 || s->type == SET_I64) {
            ok = json_integer(f, s->min, s->max, &v) == 0;
            if (ok)
                set_u64(cfg, s, v);
        } else if (s->type == SET_BOOL) {
            ok = cJSON_IsBool(f);
            if (ok)
                set_bool(cfg, s, cJSON_IsTrue(f));
        } else {
            ok = cJSON_IsString(f) && set_str(cfg, s, f->valuestring) == 0;
        }
        if (!ok) {
            char want[80], got[64];
            expected(s, want, sizeof want);
            show_json(f, got, sizeof got);
            snprintf(err, errlen, "%s: %s: expected %s, got %s", path, s->name, want, got);
            goto out;
        }
    }
    rc = CONFIG_OK;
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- flags ------------------------------------------------------------------------------------ */

/* "--election-timeout-min-ms" -> the setting "election_timeout_min_ms". */
static const setting *flag_setting(const char *flag, size_t len)
{
    for (size_t k = 0; k < N_SETTINGS; k++) {
        const char *name = settings[k].name;
        if (strlen(name) != len)
            continue;
        size_t i = 0;
        while (i < len && (flag[i] == name[i] || (flag[i] == '-' && name[i] == '_')))
            i++;
        if (i == len)
            return &settings[k];
    }
    return NULL;
}

static int parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (*text == '\0')
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int apply_flag(config *cfg, const setting *s, const char *flag, const char *value,
                      char *err, size_t errlen)
{
    bool ok = false;
    int64_t v;
    if (s->type == SET_U64 || s->type == SET_I64) {
        ok = parse_int(value, s->min, s->max, &v) == 0;
        if (ok)
            set_u64(cfg, s, v);
    } else if (s->type == SET_BOOL) {
        ok = strcmp(value, "true") == 0 || strcmp(value, "false") == 0;
        if (ok)
            set_bool(cfg, s, value[0] == 't');
    } else {
        ok = set_str(cfg, s, value) == 0;
    }
    if (!ok) {
        char want[80];
        expected(s, want, sizeof want);
        snprintf(err, errlen, "%s: expected %s, got \"%.40s\"", flag, want, value);
        return CONFIG_EBAD;
    }
    return CONFIG_OK;
}

/* Splits argv[*i] into a flag name and its value ("--x=v", "--x v", bare "--bool"). */
static int next_flag(int argc, char **argv, int *i, char *name, size_t cap, const char **value,
                     bool *is_bool_bare, char *err, size_t errlen)
{
    const char *arg = argv[*i];
    *is_bool_bare = false;
    if (strncmp(arg, "--", 2) != 0 && strcmp(arg, "-h") != 0) {
        snprintf(err, errlen, "%.60s: unexpected argument (raftkvd --help)", arg);
        return CONFIG_EBAD;
    }
    const char *eq = strchr(arg, '=');
    size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
    snprintf(name, cap, "%.*s", (int)len, arg);
    if (eq != NULL) {
        *value = eq + 1;
    } else if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) {
        *value = argv[++*i];
    } else {
        *value = NULL;
        *is_bool_bare = true;
    }
    return CONFIG_OK;
}

int config_from_args(config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    config_default(cfg);
    /* Pass 1: the files and the id; pass 2: every other flag overrides the file. */
    for (int pass = 1; pass <= 2; pass++) {
        for (int i = 1; i < argc; i++) {
            char name[64];
            const char *value;
            bool bare;
            if (next_flag(argc, argv, &i, name, sizeof name, &value, &bare, err, errlen) != 0)
                return CONFIG_EBAD;
            if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
                return CONFIG_HELP;
            bool file_flag = strcmp(name, "--peers") == 0 || strcmp(name, "--config") == 0 ||
                             strcmp(name, "--id") == 0;
            if (file_flag != (pass == 1))
                continue;
            if (file_flag && value == NULL) {
                snprintf(err, errlen, "%s: expected a value", name);
                return CONFIG_EBAD;
            }
            if (strcmp(name, "--id") == 0) {
                int64_t v;
                if (parse_int(value, 1, MAX_INT53, &v) != 0) {
                    snprintf(err, errlen, "--id: expected an integer 1..2^53, got \"%.40s\"",
                             value);
                    return CONFIG_EBAD;
                }
                cfg->id = (raft_id)v;
            } else if (strcmp(name, "--peers") == 0 || strcmp(name, "--config") == 0) {
                char *dst = name[2] == 'p' ? cfg->peers_path : cfg->config_path;
                if (strlen(value) >= CONFIG_PATH_MAX) {
                    snprintf(err, errlen, "%s: path longer than %d bytes", name,
                             CONFIG_PATH_MAX - 1);
                    return CONFIG_EBAD;
                }
                snprintf(dst, CONFIG_PATH_MAX, "%s", value);
            } else {
                const setting *s = flag_setting(name + 2, strlen(name) - 2);
                if (s == NULL) {
                    snprintf(err, errlen, "%s: unknown flag (raftkvd --help)", name);
                    return CONFIG_EBAD;
                }
                if (bare && s->type != SET_BOOL) {
                    snprintf(err, errlen, "%s: expected a value", name);
                    return CONFIG_EBAD;
                }
                if (apply_flag(cfg, s, name, bare ? "true" : value, err, errlen) != 0)
                    return CONFIG_EBAD;
            }
        }
        if (pass == 1) {
            if (cfg->peers_path[0] == '\0') {
                snprintf(err, errlen, "--peers: a peers file is required (raftkvd --help)");
                return CONFIG_EBAD;
            }
            char *text = read_file(cfg->peers_path, err, errlen);
            if (text == NULL)
                return CONFIG_EBAD;
            int rc = config_parse_peers(cfg, cfg->peers_path, text, err, errlen);
            free(text);
            if (rc != 0)
                return rc;
            if (cfg->config_path[0] != '\0') {
                text = read_file(cfg->config_path, err, errlen);
                if (text == NULL)
                    return CONFIG_EBAD;
                rc = config_parse_settings(cfg, cfg->config_path, text, err, errlen);
                free(text);
                if (rc != 0)
                    return rc;
            }
        }
    }
    if (cfg->data_dir[0] == '\0')
        snprintf(cfg->data_dir, sizeof cfg->data_dir, "raftkv-data-%llu",
                 (unsigned long long)cfg->id);
    return config_validate(cfg, err, errlen);
}

int config_validate(const config *cfg, char *err, size_t errlen)
{
    if (cfg->id == 0) {
        snprintf(err, errlen, "--id: required (this node's id in %s)",
                 cfg->peers_path[0] ? cfg->peers_path : "the peers file");
        return CONFIG_EBAD;
    }
    if (config_peer(cfg, cfg->id) == NULL) {
        char ids[200] = "";
        size_t used = 0;
        for (uint32_t i = 0; i < cfg->n_peers && used < sizeof ids - 24; i++)
            used += (size_t)snprintf(ids + used, sizeof ids - used, "%s%llu", i ? ", " : "",
                                     (unsigned long long)cfg->peers[i].id);
        snprintf(err, errlen, "--id: %llu is not in %s (ids %s)", (unsigned long long)cfg->id,
                 cfg->peers_path, ids);
        return CONFIG_EBAD;
    }
    const char *where = cfg->config_path[0] ? cfg->config_path : "flags";
    if (cfg->test_bug[0] && strcmp(cfg->test_bug, "local-reads") != 0 &&
        strcmp(cfg->test_bug, "ack-before-commit") != 0 &&
        strcmp(cfg->test_bug, "ack-before-fsync") != 0) {
        snprintf(err, errlen, "%s: test_bug: expected local-reads, ack-before-commit or "
                 "ack-before-fsync, got \"%s\"", where, cfg->test_bug);
        return CONFIG_EBAD;
    }
    disk_fault df;
    char df_err[160];
    if (disk_fault_parse(cfg->test_disk_fault, &df, df_err, sizeof df_err) != 0) {
        snprintf(err, errlen, "%s: %s", where, df_err);
        return CONFIG_EBAD;
    }
    if (cfg->election_timeout_max_ms <= cfg->election_timeout_min_ms) {
        snprintf(err, errlen, "%s: election_timeout_max_ms: must exceed election_timeout_min_ms "
                 "(%llu), got %llu", where, (unsigned long long)cfg->election_timeout_min_ms,
                 (unsigned long long)cfg->election_timeout_max_ms);
        return CONFIG_EBAD;
    }
    if (cfg->check_quorum_ms != 0 && cfg->check_quorum_ms < cfg->election_timeout_min_ms) {
        snprintf(err, errlen, "%s: check_quorum_ms: must be 0 or at least election_timeout_min_ms "
                 "(%llu), got %llu", where, (unsigned long long)cfg->election_timeout_min_ms,
                 (unsigned long long)cfg->check_quorum_ms);
        return CONFIG_EBAD;
    }
    if (cfg->heartbeat_ms < cfg->tick_ms || cfg->heartbeat_ms >= cfg->election_timeout_min_ms) {
        snprintf(err, errlen, "%s: heartbeat_ms: must be in tick_ms..election_timeout_min_ms-1 "
                 "(%llu..%llu), got %llu", where, (unsigned long long)cfg->tick_ms,
                 (unsigned long long)cfg->election_timeout_min_ms - 1,
                 (unsigned long long)cfg->heartbeat_ms);
        return CONFIG_EBAD;
    }
    if (cfg->election_timeout_min_ms < 2 * cfg->tick_ms) {
        snprintf(err, errlen, "%s: election_timeout_min_ms: must be at least 2 ticks (%llu), got "
                 "%llu", where, (unsigned long long)(2 * cfg->tick_ms),
                 (unsigned long long)cfg->election_timeout_min_ms);
        return CONFIG_EBAD;
    }
    return CONFIG_OK;
}

const node_peer *config_peer(const config *cfg, raft_id id)
{
    for (uint32_t i = 0; i < cfg->n_peers; i++)
        if (cfg->peers[i].id == id)
            return &cfg->peers[i];
    return NULL;
}

void config_usage(FILE *out)
{
    fprintf(out,
            "usage: raftkvd --id N --peers PEERS.json [--config RAFT.json] [--setting VALUE]...\n"
            "\n"
            "Runs one node of a raftkv cluster.\n"
            "\n"
            "  --id N             this node's id (one of the ids in the peers file)\n"
            "  --peers FILE       JSON array of {\"id\", \"host\", \"peer_port\", \"client_port\",\n"
            "                     \"resp_port\"}, one object per node\n"
            "  --config FILE      JSON object with any of the settings below\n"
            "  --help             this text\n"
            "\n"
            "Settings (config file key, or flag: --key-with-dashes VALUE or --key=VALUE;\n"
            "flags override the file; a bare boolean flag means true):\n");
    for (size_t k = 0; k < N_SETTINGS; k++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", settings[k].name);
        for (char *p = flag + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(out, "  %-28s %s\n", flag, settings[k].help);
    }
    fprintf(out, "\nExit status: 0 after SIGTERM/SIGINT, 1 on a storage failure, 2 on a bad "
                 "configuration.\n");
}
