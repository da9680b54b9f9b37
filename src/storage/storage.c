/*
 * storage.c -- the storage facade (contract in storage.h). It owns one wal and the snapshot files
 * of a directory, reconciles the two at open, and turns any write failure into a permanent failure.
 */
#include "storage.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct storage {
    char *dir;
    vfs *v;
    storage_opts opts;
    wal *log;
    raft_index snapshot_index; /* newest installed snapshot known to us */
    bool failed;
    char errmsg[STORAGE_ERRMSG_SIZE];
};

const char *storage_strerror(int rc)
{
    switch (rc) {
    case STORAGE_OK: return "ok";
    case STORAGE_EIO: return "I/O error";
    case STORAGE_ECORRUPT: return "storage corrupt";
    case STORAGE_ENOMEM: return "out of memory";
    case STORAGE_EINVAL: return "invalid argument";
    case STORAGE_EFATAL: return "storage failed (write or fsync error, or disk full)";
    default: return "unknown error";
    }
}

void storage_opts_default(storage_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->segment_bytes = WAL_DEFAULT_SEGMENT_BYTES;
    opts->cache_bytes = 64ull << 20;
}

static void msg_set(char *errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_set(char *errmsg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, STORAGE_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

/* Same numbering in all three modules; kept explicit so a change in one is caught here. */
static int from_wal(int rc)
{
    switch (rc) {
    case WAL_OK: return STORAGE_OK;
    case WAL_EIO: return STORAGE_EIO;
    case WAL_ECORRUPT: return STORAGE_ECORRUPT;
    case WAL_ENOMEM: return STORAGE_ENOMEM;
    case WAL_EINVAL: return STORAGE_EINVAL;
    default: return STORAGE_EFATAL;
    }
}

static int from_snap(int rc)
{
    switch (rc) {
    case SNAP_OK: return STORAGE_OK;
    case SNAP_EIO: return STORAGE_EIO;
    case SNAP_ECORRUPT: return STORAGE_ECORRUPT;
    case SNAP_ENOMEM: return STORAGE_ENOMEM;
    case SNAP_EINVAL:
    case SNAP_ENOENT: return STORAGE_EINVAL;
    default: return STORAGE_EFATAL;
    }
}

static void note(const storage_opts *opts, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const storage_opts *opts, const char *fmt, ...)
{
    if (opts->log == NULL)
        return;
    char line[STORAGE_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    opts->log(opts->log_ctx, line);
}

void storage_loaded_free(storage_loaded *loaded)
{
    if (loaded == NULL)
        return;
    wal_loaded_free(&loaded->wal_);
    loaded->entries = NULL;
    loaded->n_entries = 0;
}

void storage_loaded_restore(const storage_loaded *loaded, raft_restore *restore)
{
    memset(restore, 0, sizeof *restore);
    restore->hard_state = loaded->hard_state;
    restore->snapshot = loaded->snapshot;
    restore->entries = loaded->entries;
    restore->n_entries = loaded->n_entries;
    restore->applied = loaded->snapshot.index;
}

/* Decides which WAL entries belong on top of the snapshot; *reset when the WAL must restart. */
static int reconcile(const storage_loaded *loaded, const wal_loaded *wl, size_t *skip, bool *reset,
                     char *errmsg)
{
    raft_index snap_index = loaded->snapshot.index;
    *skip = 0;
    *reset = false;
    if (wl->base_index > snap_index) {
        msg_set(errmsg, "storage: the WAL restarts after a snapshot at index %llu but the newest snapshot file is at %llu (snap-%020llu.snap missing): refusing to start",
                (unsigned long long)wl->base_index, (unsigned long long)snap_index,
                (unsigned long long)wl->base_index);
        return STORAGE_ECORRUPT;
    }
    if (wl->n_entries == 0) {
        /* A snapshot installed (or taken) whose WAL record was lost in a crash: the WAL must
         * restart after it, or the next save would be refused as out of order. */
        *reset = wl->base_index < snap_index;
        return STORAGE_OK;
    }
    raft_index first = wl->entries[0].index;
    raft_index last = wl->entries[wl->n_entries - 1].index;
    if (snap_index == 0) {
        if (first != 1) {
            msg_set(errmsg, "storage: the WAL starts at index %llu and there is no snapshot: entries 1..%llu missing: refusing to start",
                    (unsigned long long)first, (unsigned long long)(first - 1));
            return STORAGE_ECORRUPT;
        }
        return STORAGE_OK;
    }
    if (first > snap_index + 1) {
        msg_set(errmsg, "storage: the WAL starts at index %llu, after the snapshot at %llu: entries %llu..%llu missing: refusing to start",
                (unsigned long long)first, (unsigned long long)snap_index,
                (unsigned long long)(snap_index + 1), (unsigned long long)(first - 1));
        return STORAGE_ECORRUPT;
    }
    if (first == snap_index + 1)
        return STORAGE_OK; /* the log continues the snapshot (it restarted there, or was compacted) */
    /* first <= snap_index: the entry at the snapshot index tells whether the rest belongs. */
    if (last >= snap_index && wl->entries[snap_index - first].term == loaded->snapshot.term) {
        *skip = (size_t)(snap_index - first + 1);
        return STORAGE_OK;
    }
    *skip = wl->n_entries;
    *reset = true; /* a snapshot installed from the leader whose WAL record was lost in a crash */
    return STORAGE_OK;
}

int storage_open(const char *dir, vfs *v, const storage_opts *opts, storage **out,
                 storage_loaded *loaded)
{
    memset(loaded, 0, sizeof *loaded);
    storage *st = calloc(1, sizeof *st);
    if (st == NULL || (st->dir = strdup(dir)) == NULL) {
        free(st);
        msg_set(loaded->errmsg, "storage: out of memory");
        return STORAGE_ENOMEM;
    }
    st->v = v;
    if (opts != NULL)
        st->opts = *opts;
    else
        storage_opts_default(&st->opts);
    int rc = v->mkdir(v, dir);
    if (rc == 0) {
        /* A new directory's own name must be durable too, or a power loss could take the whole
         * log with it after we acknowledged writes into it. */
        char parent[1024];
        const char *slash = strrchr(dir, '/');
        if (slash == NULL)
            snprintf(parent, sizeof parent, ".");
        else if (slash == dir)
            snprintf(parent, sizeof parent, "/");
        else
            snprintf(parent, sizeof parent, "%.*s", (int)(slash - dir), dir);
        rc = v->sync_dir(v, parent);
        if (rc != 0) {
            msg_set(loaded->errmsg, "storage: %s: fsync of the parent directory %s: %s", dir, parent,
                    strerror(-rc));
            free(st->dir);
            free(st);
            return STORAGE_EIO;
        }
    } else if (rc != -EEXIST) {
        msg_set(loaded->errmsg, "storage: %s: mkdir: %s", dir, strerror(-rc));
        free(st->dir);
        free(st);
        return STORAGE_EIO;
    }
    char msg[SNAP_ERRMSG_SIZE > WAL_ERRMSG_SIZE ? SNAP_ERRMSG_SIZE : WAL_ERRMSG_SIZE] = "";
    rc = from_snap(snap_load_newest(dir, v, true, &loaded->snapshot, &loaded->snapshot_bytes, msg));
    if (rc == STORAGE_OK) {
        wal_opts wo;
        wal_opts_default(&wo);
        wo.segment_bytes = st->opts.segment_bytes ? st->opts.segment_bytes : WAL_DEFAULT_SEGMENT_BYTES;
        wo.cache_bytes = st->opts.cache_bytes;
        wo.seed = st->opts.seed;
        wo.log = st->opts.log;
        wo.log_ctx = st->opts.log_ctx;
        rc = from_wal(wal_open(dir, v, &wo, &st->log, &loaded->wal_, msg));
    }
    if (rc != STORAGE_OK) {
        msg_set(loaded->errmsg, "%s", msg);
        free(st->dir);
        free(st);
        return rc;
    }
    size_t skip;
    bool reset;
    rc = reconcile(loaded, &loaded->wal_, &skip, &reset, loaded->errmsg);
    if (rc == STORAGE_OK && reset) {
        note(&st->opts, "storage: %s: WAL entries do not continue the snapshot at index %llu (term %llu): WAL reset to it",
             dir, (unsigned long long)loaded->snapshot.index, (unsigned long long)loaded->snapshot.term);
        int wrc = wal_reset(st->log, loaded->snapshot.index, loaded->snapshot.term);
        if (wrc == WAL_OK)
            wrc = wal_sync(st->log);
        if (wrc != WAL_OK) {
            msg_set(loaded->errmsg, "%s", wal_errmsg(st->log));
            rc = from_wal(wrc);
        }
    }
    if (rc != STORAGE_OK) {
        wal_close(st->log);
        wal_loaded_free(&loaded->wal_);
        free(st->dir);
        free(st);
        return rc;
    }
    loaded->entries = loaded->wal_.entries + skip;
    loaded->n_entries = loaded->wal_.n_entries - skip;
    loaded->hard_state = loaded->wal_.hard_state;
    /* commit is a hint (raft.h): never below the snapshot, never beyond the log. */
    raft_index last = loaded->n_entries ? loaded->entries[loaded->n_entries - 1].index
                                        : loaded->snapshot.index;
    if (loaded->hard_state.commit < loaded->snapshot.index)
        loaded->hard_state.commit = loaded->snapshot.index;
    if (loaded->hard_state.commit > last)
        loaded->hard_state.commit = last;
    st->snapshot_index = loaded->snapshot.index;
    *out = st;
    return STORAGE_OK;
}

static int fail(storage *st, int rc, const char *what)
{
    if (rc == STORAGE_OK)
        return rc;
    if (!st->failed) {
        char cause[STORAGE_ERRMSG_SIZE];
        snprintf(cause, sizeof cause, "%s", *st->errmsg ? st->errmsg : "failed");
        st->failed = true;
        msg_set(st->errmsg, "storage: %s: %s", what, cause);
    }
    return STORAGE_EFATAL;
}

int storage_save(storage *st, const raft_ready *rd)
{
    if (st->failed)
        return STORAGE_EFATAL;
    /* Refuse a Ready that cannot be stored BEFORE buffering any of it, so that a caller's bug
     * costs an error, not the node. */
    if (rd->n_entries > 0) {
        raft_index first = wal_first_index(st->log), last = wal_last_index(st->log);
        raft_index next = last + 1;
        bool any_start = last < first && first == 1; /* a brand-new log starts where told */
        if (rd->snapshot.index != 0) {
            next = rd->snapshot.index + 1;
            any_start = false;
        } else if (rd->truncate_from != 0 && rd->truncate_from >= first && rd->truncate_from <= last) {
            next = rd->truncate_from;
        }
        bool contiguous = true;
        for (size_t i = 1; i < rd->n_entries; i++)
            contiguous = contiguous && rd->entries[i].index == rd->entries[0].index + i;
        if (!contiguous || (!any_start && rd->entries[0].index != next)) {
            snprintf(st->errmsg, sizeof st->errmsg,
                     "storage: save: entries start at index %llu, expected %llu (or are not contiguous)",
                     (unsigned long long)rd->entries[0].index, (unsigned long long)next);
            return STORAGE_EINVAL;
        }
    }
    int rc = WAL_OK;
    if (rd->snapshot.index != 0)
        rc = wal_reset(st->log, rd->snapshot.index, rd->snapshot.term);
    if (rc == WAL_OK && rd->truncate_from != 0 && rd->truncate_from > wal_first_index(st->log) - 1 &&
        rd->truncate_from <= wal_last_index(st->log))
        rc = wal_truncate(st->log, rd->truncate_from);
    if (rc == WAL_OK && rd->n_entries > 0)
        rc = wal_append(st->log, rd->entries, rd->n_entries);
    if (rc == WAL_OK && rd->hard_state_changed)
        rc = wal_set_hard_state(st->log, &rd->hard_state);
    if (rc == WAL_OK)
        rc = wal_sync(st->log);
    if (rc == WAL_OK && rd->snapshot.index > st->snapshot_index)
        st->snapshot_index = rd->snapshot.index;
    if (rc != WAL_OK) {
        /* Part of rd may sit in the WAL's buffer: the on-disk state and the caller's view can no
         * longer be reconciled in place, so any failure here is final. */
        snprintf(st->errmsg, sizeof st->errmsg, "%s", wal_errmsg(st->log));
        return fail(st, from_wal(rc), "save");
    }
    return STORAGE_OK;
}

int storage_compact(storage *st, raft_index index)
{
    if (st->failed)
        return STORAGE_EFATAL;
    if (index > st->snapshot_index) {
        /* The snapshot may have been installed with snap_writer_finish on another thread. */
        raft_index on_disk = 0;
        if (snap_newest_index(st->dir, st->v, &on_disk) == 0 && on_disk > st->snapshot_index)
            st->snapshot_index = on_disk;
    }
    if (index > st->snapshot_index) {
        /* Removing entries no snapshot covers would leave a log that cannot be opened. */
        snprintf(st->errmsg, sizeof st->errmsg,
                 "storage: compact to %llu refused: the newest snapshot is at %llu",
                 (unsigned long long)index, (unsigned long long)st->snapshot_index);
        return STORAGE_EINVAL;
    }
    int rc = wal_compact(st->log, index);
    if (rc != WAL_OK) {
        snprintf(st->errmsg, sizeof st->errmsg, "%s", wal_errmsg(st->log));
        return fail(st, from_wal(rc), "compact");
    }
    return STORAGE_OK;
}

int storage_entries(storage *st, raft_index lo, raft_index hi, raft_entry **entries, size_t *n)
{
    if (st->failed)
        return STORAGE_EFATAL;
    int rc = wal_read(st->log, lo, hi, entries, n);
    if (rc != WAL_OK && rc != WAL_EINVAL)
        snprintf(st->errmsg, sizeof st->errmsg, "%s", wal_errmsg(st->log));
    return from_wal(rc);
}

raft_index storage_first_index(const storage *st)
{
    return wal_first_index(st->log);
}

raft_index storage_last_index(const storage *st)
{
    return wal_last_index(st->log);
}

int storage_snapshot_begin(storage *st, const raft_snapshot_meta *meta, snap_writer **w)
{
    if (st->failed)
        return STORAGE_EFATAL;
    int rc = from_snap(snap_writer_begin(st->dir, st->v, meta, w, st->errmsg));
    return rc == STORAGE_EFATAL ? fail(st, rc, "snapshot") : rc;
}

int storage_snapshot_finish(storage *st, snap_writer *w)
{
    if (st->failed) {
        snap_writer_abort(w);
        return STORAGE_EFATAL;
    }
    raft_index index = snap_writer_meta_index(w);
    int rc = from_snap(snap_writer_finish(w, st->errmsg));
    if (rc == STORAGE_OK && index > st->snapshot_index)
        st->snapshot_index = index;
    return rc == STORAGE_EFATAL ? fail(st, rc, "snapshot") : rc;
}

const char *storage_errmsg(const storage *st)
{
    return st->errmsg;
}

const char *storage_dir(const storage *st)
{
    return st->dir;
}

bool storage_failed(const storage *st)
{
    return st->failed;
}

wal_stats storage_wal_stats(const storage *st)
{
    return wal_get_stats(st->log);
}

void storage_close(storage *st)
{
    if (st == NULL)
        return;
    wal_close(st->log);
    free(st->dir);
    free(st);
}
