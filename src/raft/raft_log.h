/*
 * raft_log.h -- the core's in-memory log (internal to src/raft).
 *
 * Holds every entry after the compaction point `offset` (entry i lives at entries[head + i -
 * offset - 1]). The term of the entry at `offset` is kept in `offset_term` so the log-matching
 * check works right after a compaction or snapshot install. Each entry owns a private copy of its
 * data (malloc'd), freed when the entry is truncated or compacted away.
 *
 * Invariants: indexes are contiguous from offset + 1 to offset + count; terms never decrease.
 */
#ifndef RAFTKV_RAFT_LOG_H
#define RAFTKV_RAFT_LOG_H

#include "raft.h"

typedef struct raft_log {
    raft_entry *entries; /* slots [head, head + count) are live */
    size_t head;
    size_t count;
    size_t cap;
    raft_index offset;     /* index of the last compacted entry (0: nothing compacted) */
    raft_term offset_term; /* its term */
} raft_log;

void raft_log_init(raft_log *log, raft_index offset, raft_term offset_term);
void raft_log_free(raft_log *log);

static inline raft_index raft_log_first(const raft_log *log)
{
    return log->offset + 1;
}
static inline raft_index raft_log_last(const raft_log *log)
{
    return log->offset + log->count;
}

/* Term of the entry at index; 0 when it is neither in memory nor the compaction point. */
raft_term raft_log_term(const raft_log *log, raft_index index);
/* Entry at index, NULL when not in memory. Valid until the next mutating call. */
const raft_entry *raft_log_get(const raft_log *log, raft_index index);
/* Appends a copy of e (whose index must be last + 1). RAFT_ENOMEM leaves the log unchanged. */
int raft_log_append(raft_log *log, raft_term term, uint8_t type, const void *data, uint32_t len);
/* Drops entries with index >= from. */
void raft_log_truncate(raft_log *log, raft_index from);
/* Drops entries with index <= upto (which must be in memory or the compaction point). */
void raft_log_compact(raft_log *log, raft_index upto);
/* Drops everything; the log restarts after (index, term) -- a snapshot install. */
void raft_log_reset(raft_log *log, raft_index index, raft_term term);
/* Bytes of entry data in (from, to]. */
uint64_t raft_log_bytes(const raft_log *log, raft_index from, raft_index to);

#endif /* RAFTKV_RAFT_LOG_H */
