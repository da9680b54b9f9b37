/*
 * raft_log.c -- the core's in-memory log: a growable array with a movable head, so compaction
 * (dropping a prefix) is O(entries dropped) and appends are amortized O(1).
 */
#include "raft_log.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void raft_log_init(raft_log *log, raft_index offset, raft_term offset_term)
{
    memset(log, 0, sizeof(*log));
    log->offset = offset;
    log->offset_term = offset_term;
}

static void entry_release(raft_entry *e)
{
    free((void *)e->data);
    e->data = NULL;
}

void raft_log_free(raft_log *log)
{
    for (size_t i = 0; i < log->count; i++)
        entry_release(&log->entries[log->head + i]);
    free(log->entries);
    memset(log, 0, sizeof(*log));
}

const raft_entry *raft_log_get(const raft_log *log, raft_index index)
{
    if (index <= log->offset || index > raft_log_last(log))
        return NULL;
    return &log->entries[log->head + (size_t)(index - log->offset - 1)];
}

raft_term raft_log_term(const raft_log *log, raft_index index)
{
    if (index == log->offset)
        return log->offset_term;
    const raft_entry *e = raft_log_get(log, index);
    return e ? e->term : 0;
}

/* Makes room for one more entry at the tail: first by sliding the live slots down over the dead
 * head (when at least half the array is dead), else by doubling. */
static int reserve_one(raft_log *log)
{
    if (log->head + log->count < log->cap)
        return RAFT_OK;
    if (log->head > 0 && log->head >= log->cap / 2) {
        memmove(log->entries, log->entries + log->head, log->count * sizeof(raft_entry));
        log->head = 0;
        return RAFT_OK;
    }
    size_t cap = log->cap ? log->cap * 2 : 64;
    raft_entry *grown = realloc(log->entries, cap * sizeof(raft_entry));
    if (!grown)
        return RAFT_ENOMEM;
    log->entries = grown;
    log->cap = cap;
    return RAFT_OK;
}

int raft_log_append(raft_log *log, raft_term term, uint8_t type, const void *data, uint32_t len)
{
    assert(term >= raft_log_term(log, raft_log_last(log)));
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (!copy)
            return RAFT_ENOMEM;
        memcpy(copy, data, len);
    }
    if (reserve_one(log) != RAFT_OK) {
        free(copy);
        return RAFT_ENOMEM;
    }
    raft_entry *e = &log->entries[log->head + log->count];
    e->term = term;
    e->index = raft_log_last(log) + 1;
    e->type = type;
    e->len = len;
    e->data = copy;
    log->count++;
    return RAFT_OK;
}

void raft_log_truncate(raft_log *log, raft_index from)
{
    assert(from > log->offset);
    while (log->count > 0 && raft_log_last(log) >= from) {
        entry_release(&log->entries[log->head + log->count - 1]);
        log->count--;
    }
}

void raft_log_compact(raft_log *log, raft_index upto)
{
    if (upto <= log->offset)
        return;
    assert(upto <= raft_log_last(log));
    raft_term term = raft_log_term(log, upto);
    while (log->offset < upto) {
        entry_release(&log->entries[log->head]);
        log->head++;
        log->count--;
        log->offset++;
    }
    log->offset_term = term;
    if (log->count == 0)
        log->head = 0;
}

void raft_log_reset(raft_log *log, raft_index index, raft_term term)
{
    for (size_t i = 0; i < log->count; i++)
        entry_release(&log->entries[log->head + i]);
    log->head = 0;
    log->count = 0;
    log->offset = index;
    log->offset_term = term;
}

uint64_t raft_log_bytes(const raft_log *log, raft_index from, raft_index to)
{
    uint64_t bytes = 0;
    for (raft_index i = from + 1; i <= to; i++) {
        const raft_entry *e = raft_log_get(log, i);
        if (e)
            bytes += e->len;
    }
    return bytes;
}
