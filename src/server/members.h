/*
 * members.h -- the address book that membership changes replicate: where each node is (host, peer,
 * client and RESP ports). A node added with its addresses (RAFTKV.MEMBER ADD id host ports) is
 * then known to every node, to a node restarted with an old peers file, and to a node that joins
 * later from a snapshot (once it accepts the leader: a joining node's own peers file lists every
 * member), because the book travels in two places:
 *   - the context of every configuration entry the leader proposes (raft_propose_conf);
 *   - the head of every snapshot file the node writes (members_snap_*), ahead of the state machine.
 * A node merges what it reads into the addresses it has (node_learn in node.c): an unknown node
 * is added; an address given by RAFTKV.MEMBER ADD (flag MEMBERS_GIVEN, sticky: every later book
 * carries it) belongs to the cluster and moves any other, and only a newer given one moves it; a
 * known one learned from a book takes the address of a newer book; a node of its own peers file
 * keeps the file's address otherwise (host names may be spelled differently from node to node;
 * the operator moves a peers-file node by editing the files). Only the voters
 * of the configuration a book comes with are taken from it. A node knows 16 nodes at most; for
 * room it forgets the former voter it learned longest ago, so the 16 are at a time, not ever.
 *
 * FORMAT (little-endian, version 2): u8 version, u8 count (1..RAFT_MAX_NODES), then per node u64
 * id (1..2^53), u16 peer_port, u16 client_port, u16 resp_port (1..65535 each), u8 flags
 * (MEMBERS_GIVEN or 0), u8 host_len (1..255), host_len bytes of host (no NUL, space, quote,
 * backslash or control character). Ids are unique. Version 1 (read, not written) has no flags
 * byte.
 * In a snapshot the book is framed: u32 magic "RKVM", u32 book length, the book, u32 CRC32C of
 * the book. A snapshot that does not start with that magic (written before version 1) starts with
 * the state machine's own header, which has another magic.
 *
 * ERRORS. decode and snap_parse name the field and the offset of what is wrong, e.g.
 *   members: node 2 at offset 31: host length 0
 * OWNERSHIP. Plain values; nothing is allocated. THREADS: any (no state).
 */
#ifndef RAFTKV_MEMBERS_H
#define RAFTKV_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node.h"

#define MEMBERS_VERSION 2
#define MEMBERS_GIVEN 0x01 /* flags: the address was given by RAFTKV.MEMBER ADD (node_peer.given) */
/* The largest encoded book: RAFT_MAX_NODES nodes with 255-byte host names. */
#define MEMBERS_MAX_BYTES (2 + RAFT_MAX_NODES * (8 + 6 + 1 + 1 + 255))
/* The snapshot framing around a book. */
#define MEMBERS_SNAP_OVERHEAD 12
#define MEMBERS_SNAP_MAGIC 0x4d564b52u /* "RKVM" */

/* Whether p is a valid entry of a book: id 1..2^53, ports 1..65535, a host of 1..255 printable
 * characters without spaces, quotes or backslashes. */
bool members_peer_valid(const node_peer *p);

/* Encodes n peers (1..RAFT_MAX_NODES, each valid, ids unique) into buf. Returns the length, or 0
 * when they are not encodable or cap is too small. The spare flag is not encoded. */
size_t members_encode(const node_peer *peers, uint32_t n, uint8_t *buf, size_t cap);

/* Decodes a book into out (RAFT_MAX_NODES slots), every peer marked spare and learned (a book
 * says where a node is, not whether it votes). 0, or -1 with the reason in err. */
int members_decode(const uint8_t *buf, size_t len, node_peer *out, uint32_t *n, char *err,
                   size_t errlen);

/* Adds to into (*n_into peers, kept in id order, RAFT_MAX_NODES slots) each peer of from whose id
 * is not there yet, as a learned spare, and copies the ones added to added (RAFT_MAX_NODES slots,
 * may be NULL). Returns how many were added, or -1 (nothing added) when they would not fit. */
int members_merge(node_peer *into, uint32_t *n_into, const node_peer *from, uint32_t n_from,
                  node_peer *added);

/* The framed book written at the head of a snapshot: length, or 0 if cap is too small. */
size_t members_snap_encode(const node_peer *peers, uint32_t n, uint8_t *buf, size_t cap);

enum {
    MEMBERS_SNAP_ABSENT = 0,   /* no book: the snapshot's data starts at offset 0 */
    MEMBERS_SNAP_FOUND = 1,    /* *consumed bytes are the book; the state machine follows */
    MEMBERS_SNAP_CORRUPT = -1, /* the magic is there but the rest is not right: err says why */
};
/* Reads a book framed at the head of buf, the first len bytes of a snapshot's data (len may be
 * the whole data or any prefix of at least MEMBERS_SNAP_OVERHEAD + MEMBERS_MAX_BYTES bytes). */
int members_snap_parse(const uint8_t *buf, size_t len, node_peer *out, uint32_t *n,
                       size_t *consumed, char *err, size_t errlen);

#endif /* RAFTKV_MEMBERS_H */
