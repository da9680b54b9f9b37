/*
 * endpoints.h -- the list of nodes the client may talk to, from --cluster or a peers file.
 *
 * --cluster takes "host:port[:resp_port],..." where port is a node's text-protocol client port
 * (IPv6 literals in brackets: "[::1]:7001"). A peers file is the daemon's peers.json: a JSON array of
 * {id, host, peer_port, client_port, resp_port} (an object {"peers": [...]} is accepted too). Nodes
 * from --cluster get ids 1..n in the order given and resp_port 0 ("unknown") when it is left out.
 *
 * ERRORS. The parse functions return EP_OK or EP_EINVAL/EP_EIO/EP_ENOMEM with a message in err that
 * names the file, the entry and the field ("peers.json: entry 2: client_port: missing").
 * OWNERSHIP. An ep_list is a plain value; ep_list_free releases the nodes array (the struct itself
 * is the caller's). THREADS: reentrant.
 */
#ifndef RAFTKV_ENDPOINTS_H
#define RAFTKV_ENDPOINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EP_MAX_NODES 64
#define EP_HOST_MAX 256

enum { EP_OK = 0, EP_EINVAL = -1, EP_EIO = -2, EP_ENOMEM = -3 };

typedef struct ep_node {
    uint64_t id;
    char host[EP_HOST_MAX];
    uint16_t peer_port;   /* 0 = unknown */
    uint16_t client_port; /* text protocol */
    uint16_t resp_port;   /* RESP2 (INFO for status); 0 = unknown */
} ep_node;

typedef struct ep_list {
    ep_node *nodes;
    size_t count;
    bool ids_known; /* the ids are the nodes' own (a peers file), not 1..n (--cluster) */
} ep_list;

int ep_parse_cluster(const char *spec, ep_list *out, char *err, size_t errcap);
int ep_load_peers(const char *path, ep_list *out, char *err, size_t errcap);
/* Parses peers JSON already in memory; name is used in messages. */
int ep_parse_peers_json(const char *json, const char *name, ep_list *out, char *err,
                        size_t errcap);
void ep_list_free(ep_list *list);

/* Parses RAFTKV.MEMBER LIST's lines ("ID HOST:PEER_PORT client=C resp=R voter|learner|not-voter"; a line
 * in parentheses is a remark) into out (ids known), and whether each node votes into voter
 * (out->count entries, at most EP_MAX_NODES; may be NULL). EP_EINVAL when a line is not that or
 * there is none. */
int ep_parse_member_list(const char *text, ep_list *out, bool *voter);
/* Adds to list each node of more whose id is not there yet, up to EP_MAX_NODES, when both lists
 * have the nodes' own ids (a --cluster list has not: nothing is added). Returns how many were
 * added, or EP_ENOMEM. */
int ep_list_merge(ep_list *list, const ep_list *more);

/* Parses "host:port" (or "[v6]:port") into host and port; EP_EINVAL when malformed. */
int ep_parse_hostport(const char *text, char *host, size_t hostcap, uint16_t *port);

#endif /* RAFTKV_ENDPOINTS_H */
