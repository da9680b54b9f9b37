/*
 * raftkv-wal -- offline inspection of a raftkv storage directory.
 *
 *   raftkv-wal check DIR   verifies the newest snapshot and every WAL record, read-only, with the
 *                          same rules as startup. Exit 0: sound (a torn tail that startup would cut
 *                          is reported as a note); 1: corrupt (the message names file and offset);
 *                          2: usage or I/O error.
 *   raftkv-wal dump DIR    prints the snapshot metadata and one line per WAL record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap.h"
#include "vfs.h"
#include "wal.h"

typedef struct tool_ctx {
    bool dump;
    uint64_t records, entries, segments;
    char last_segment_buf[64];
    raft_index first_index, last_index;
    raft_index last_marker;
    raft_hard_state hs;
} tool_ctx;

static void print_note(void *ctx, const char *line)
{
    (void)ctx;
    printf("note: %s\n", line);
}

static const char *type_name(uint8_t type)
{
    switch (type) {
    case WAL_REC_ENTRY: return "ENTRY";
    case WAL_REC_HARD_STATE: return "HARD_STATE";
    case WAL_REC_TRUNCATE: return "TRUNCATE";
    case WAL_REC_SNAPSHOT: return "SNAPSHOT";
    default: return "?";
    }
}

static void on_record(void *arg, const wal_record *rec)
{
    tool_ctx *ctx = arg;
    ctx->records++;
    if (strcmp(ctx->last_segment_buf, rec->segment) != 0) {
        snprintf(ctx->last_segment_buf, sizeof ctx->last_segment_buf, "%s", rec->segment);
        ctx->segments++;
    }
    switch (rec->type) {
    case WAL_REC_ENTRY:
        ctx->entries++;
        if (ctx->first_index == 0)
            ctx->first_index = rec->index;
        ctx->last_index = rec->index;
        break;
    case WAL_REC_HARD_STATE:
        ctx->hs = rec->hard_state;
        break;
    case WAL_REC_TRUNCATE:
        if (rec->index > 0 && rec->index - 1 < ctx->last_index)
            ctx->last_index = rec->index - 1;
        break;
    case WAL_REC_SNAPSHOT:
        ctx->last_marker = rec->index;
        ctx->first_index = rec->index + 1;
        ctx->last_index = rec->index;
        break;
    }
    if (!ctx->dump)
        return;
    printf("%s@%llu %s", rec->segment, (unsigned long long)rec->offset, type_name(rec->type));
    switch (rec->type) {
    case WAL_REC_ENTRY:
        printf(" index=%llu term=%llu type=%u len=%u data=", (unsigned long long)rec->index,
               (unsigned long long)rec->term, rec->entry_type, rec->len);
        for (uint32_t i = 0; i < rec->len && i < 16; i++)
            printf("%02x", rec->data[i]);
        printf("%s\n", rec->len > 16 ? "..." : "");
        break;
    case WAL_REC_HARD_STATE:
        printf(" term=%llu vote=%llu commit=%llu\n", (unsigned long long)rec->hard_state.term,
               (unsigned long long)rec->hard_state.vote, (unsigned long long)rec->hard_state.commit);
        break;
    case WAL_REC_TRUNCATE:
        printf(" from=%llu\n", (unsigned long long)rec->index);
        break;
    case WAL_REC_SNAPSHOT:
        printf(" index=%llu term=%llu (log restarts after it)\n", (unsigned long long)rec->index,
               (unsigned long long)rec->term);
        break;
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: raftkv-wal check DIR | raftkv-wal dump DIR\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "check") != 0 && strcmp(argv[1], "dump") != 0))
        return usage();
    const char *dir = argv[2];
    tool_ctx ctx = {.dump = strcmp(argv[1], "dump") == 0};
    vfs *v = vfs_posix();
    char msg[SNAP_ERRMSG_SIZE > WAL_ERRMSG_SIZE ? SNAP_ERRMSG_SIZE : WAL_ERRMSG_SIZE] = "";

    raft_snapshot_meta meta;
    uint64_t snap_bytes;
    int rc = snap_load_newest(dir, v, false, &meta, &snap_bytes, msg);
    if (rc != SNAP_OK) {
        fprintf(stderr, "raftkv-wal: %s\n", msg);
        return rc == SNAP_ECORRUPT ? 1 : 2;
    }
    if (meta.index != 0) {
        printf("snapshot: snap-%020llu.snap index=%llu term=%llu bytes=%llu voters=",
               (unsigned long long)meta.index, (unsigned long long)meta.index,
               (unsigned long long)meta.term, (unsigned long long)snap_bytes);
        for (uint32_t i = 0; i < meta.conf.n_voters; i++)
            printf("%s%llu", i ? "," : "", (unsigned long long)meta.conf.voters[i]);
        if (meta.conf.n_learners > 0)
            printf(" learners=");
        for (uint32_t i = 0; i < meta.conf.n_learners; i++)
            printf("%s%llu", i ? "," : "", (unsigned long long)meta.conf.learners[i]);
        printf("\n");
    } else {
        printf("snapshot: none\n");
    }

    wal_opts opts;
    wal_opts_default(&opts);
    opts.log = print_note;
    rc = wal_check(dir, v, &opts, on_record, &ctx, msg);
    if (rc != WAL_OK) {
        fprintf(stderr, "raftkv-wal: %s\n", msg);
        return rc == WAL_ECORRUPT ? 1 : 2;
    }
    if (ctx.last_marker > meta.index) {
        fprintf(stderr, "raftkv-wal: the WAL restarts after a snapshot at index %llu but the newest snapshot is at %llu (snap-%020llu.snap missing)\n",
                (unsigned long long)ctx.last_marker, (unsigned long long)meta.index,
                (unsigned long long)ctx.last_marker);
        return 1;
    }
    printf("ok: %llu segments, %llu records, %llu entry records, log %llu..%llu, hard state term=%llu vote=%llu commit=%llu\n",
           (unsigned long long)ctx.segments, (unsigned long long)ctx.records,
           (unsigned long long)ctx.entries, (unsigned long long)ctx.first_index,
           (unsigned long long)ctx.last_index, (unsigned long long)ctx.hs.term,
           (unsigned long long)ctx.hs.vote, (unsigned long long)ctx.hs.commit);
    return 0;
}
