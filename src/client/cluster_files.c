/*
 * cluster_files.c -- writes peers.json and raft.json (see cluster_files.h).
 */
#include "cluster_files.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Writes text to path through path.tmp + rename, so a crash never leaves half a config. */
static int write_atomic(const char *path, const char *text, char *err, size_t errcap)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errcap, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    bool ok = fputs(text, f) >= 0;
    ok = (fflush(f) == 0) && ok;
    ok = (fsync(fileno(f)) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errcap, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int cluster_files_write_peers(const char *path, int nodes, int spares, int base_port, char *err,
                              size_t errcap)
{
    char text[8192];
    size_t used = 0;
    used += (size_t)snprintf(text + used, sizeof text - used, "[\n");
    int total = nodes + spares;
    for (int id = 1; id <= total; id++) {
        used += (size_t)snprintf(text + used, sizeof text - used,
                                 "  {\"id\": %d, \"host\": \"127.0.0.1\", \"peer_port\": %d, "
                                 "\"client_port\": %d, \"resp_port\": %d%s}%s\n",
                                 id, base_port + 200 + id, base_port + id, base_port + 100 + id,
                                 id > nodes ? ", \"voter\": false" : "", id < total ? "," : "");
        if (used >= sizeof text) {
            snprintf(err, errcap, "%s: too many nodes (%d)", path, total);
            return -1;
        }
    }
    snprintf(text + used, sizeof text - used, "]\n");
    return write_atomic(path, text, err, errcap);
}

int cluster_files_write_raft(const char *path, const char *cluster_id, char *err, size_t errcap)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\n"
             "  \"election_timeout_min_ms\": 300,\n"
             "  \"election_timeout_max_ms\": 600,\n"
             "  \"heartbeat_ms\": 50,\n"
             "  \"snapshot_threshold\": 100000,\n"
             "  \"max_value_bytes\": 1048576,\n"
             "  \"cluster_id\": \"%s\"\n"
             "}\n",
             cluster_id);
    return write_atomic(path, text, err, errcap);
}
