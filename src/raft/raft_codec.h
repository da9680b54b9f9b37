/*
 * raft_codec.h -- the stable binary encoding of everything in raft.h that crosses a wire or a disk:
 * raft_msg (all types, with entries and snapshot meta), raft_entry, raft_hard_state and
 * raft_snapshot_meta (with its raft_conf). The byte layout is documented at the top of
 * raft_codec.c; changing it means bumping RAFT_CODEC_VERSION.
 *
 * Pure like the rest of the core: no I/O, no clock, no global state; safe to call from any thread
 * on distinct buffers. No checksum and no framing: the transport and the WAL add their own length
 * prefix and CRC around these bytes.
 *
 * ENCODING. raft_codec_X_size() gives the exact number of bytes raft_codec_X_encode() writes.
 * encode writes into a caller-owned buffer and returns
 *   RAFT_OK        *written = bytes written (== size)
 *   RAFT_ETOOBIG   cap < size; nothing written, *written = size (the capacity needed)
 *   RAFT_EINVAL    the value cannot be encoded (unknown msg or entry type, n_voters >
 *                  RAFT_MAX_NODES, len > 0 with data == NULL, n_entries > 0 with entries == NULL);
 *                  nothing written, *written = 0
 * written may be NULL.
 *
 * DECODING. decode reads exactly len bytes: every byte must belong to the value. It returns
 *   RAFT_OK        *out holds the value
 *   RAFT_ECORRUPT  unknown version or type, truncated input, trailing bytes, a count that cannot
 *                  fit in the remaining bytes, n_voters > RAFT_MAX_NODES, reserved bits set;
 *                  err (if errlen > 0) names the field, the value and the offset, e.g.
 *                  "msg.n_entries=4000000 exceeds remaining 12 bytes at offset 99"
 *   RAFT_ENOMEM    (msg only) the entries array could not be allocated
 * On failure nothing is allocated and *out is zeroed. err may be NULL when errlen == 0.
 *
 * OWNERSHIP (zero copy). Decoded entries' data point INTO buf: they are valid as long as buf is,
 * and len == 0 gives data == NULL. raft_codec_msg_decode() additionally mallocs out->entries (NULL
 * when n_entries == 0); the caller frees it with raft_codec_msg_release(), which leaves buf alone.
 * Feeding a decoded message to raft_step() is fine: the core copies what it keeps.
 */
#ifndef RAFTKV_RAFT_CODEC_H
#define RAFTKV_RAFT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* First byte of every top-level encoding. */
#define RAFT_CODEC_VERSION 1

/* Fixed sizes (see the layout in raft_codec.c). */
#define RAFT_CODEC_MSG_FIXED_SIZE 99      /* a message with no voters and no entries */
#define RAFT_CODEC_MSG_ENTRY_OVERHEAD 21  /* per entry inside a message, plus its data */
#define RAFT_CODEC_ENTRY_FIXED_SIZE 22    /* a top-level entry, plus its data */
#define RAFT_CODEC_HARD_STATE_SIZE 25
#define RAFT_CODEC_SNAPSHOT_META_FIXED_SIZE 21 /* plus 8 bytes per voter */
#define RAFT_CODEC_SNAPSHOT_META_MAX_SIZE (RAFT_CODEC_SNAPSHOT_META_FIXED_SIZE + 8 * RAFT_MAX_NODES)

/* Messages. Size saturates at SIZE_MAX if it cannot be represented. */
size_t raft_codec_msg_size(const raft_msg *m);
int raft_codec_msg_encode(const raft_msg *m, uint8_t *buf, size_t cap, size_t *written);
int raft_codec_msg_decode(const uint8_t *buf, size_t len, raft_msg *out, char *err, size_t errlen);
/* Frees out->entries of a decoded message and zeroes n_entries/entries; NULL-safe, idempotent. */
void raft_codec_msg_release(raft_msg *m);

/* One log entry (for the WAL). decode allocates nothing; out->data points into buf. */
size_t raft_codec_entry_size(const raft_entry *e);
int raft_codec_entry_encode(const raft_entry *e, uint8_t *buf, size_t cap, size_t *written);
int raft_codec_entry_decode(const uint8_t *buf, size_t len, raft_entry *out, char *err,
                            size_t errlen);

/* Hard state: always RAFT_CODEC_HARD_STATE_SIZE bytes. */
int raft_codec_hard_state_encode(const raft_hard_state *hs, uint8_t *buf, size_t cap,
                                 size_t *written);
int raft_codec_hard_state_decode(const uint8_t *buf, size_t len, raft_hard_state *out, char *err,
                                 size_t errlen);

/* Snapshot meta with its configuration: 21 + 8 * (n_voters + n_learners) bytes. */
size_t raft_codec_snapshot_meta_size(const raft_snapshot_meta *sm);
int raft_codec_snapshot_meta_encode(const raft_snapshot_meta *sm, uint8_t *buf, size_t cap,
                                    size_t *written);
int raft_codec_snapshot_meta_decode(const uint8_t *buf, size_t len, raft_snapshot_meta *out,
                                    char *err, size_t errlen);

/* Data of a RAFT_ENTRY_CONFIG entry (raft_propose_conf): the new voters and learners, then an
 * opaque context the caller attached (raftkv: the members' addresses); without learners, in the
 * format that older releases read. decode allocates nothing: *ctx points into buf (NULL when
 * ctx_len is 0). It refuses n_voters of 0, more than RAFT_MAX_NODES members, an id 0 and an id
 * listed twice (as voter or learner). */
size_t raft_codec_conf_size(const raft_conf *conf, uint32_t ctx_len);
/* 1..RAFT_MAX_NODES voters, learners that bring the total to at most RAFT_MAX_NODES, no id 0, no
 * id twice: what encode takes and decode gives. */
bool raft_codec_conf_valid(const raft_conf *conf);
int raft_codec_conf_encode(const raft_conf *conf, const void *ctx, uint32_t ctx_len, uint8_t *buf,
                           size_t cap, size_t *written);
int raft_codec_conf_decode(const uint8_t *buf, size_t len, raft_conf *out, const uint8_t **ctx,
                           uint32_t *ctx_len, char *err, size_t errlen);

#endif /* RAFTKV_RAFT_CODEC_H */
