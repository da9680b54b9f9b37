/*
 * endpoints.c -- parsing --cluster specs and peers.json (see endpoints.h).
 */
#include "endpoints.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EP_MAX_FILE (1024 * 1024) /* a peers file of 64 nodes is a few KiB */

static bool parse_port(const char *text, size_t len, uint16_t *port)
{
    if (len == 0 || len > 5) return false;
    unsigned value = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return false;
        value = value * 10 + (unsigned)(text[i] - '0');
    }
    if (value == 0 || value > 65535) return false;
    *port = (uint16_t)value;
    return true;
}

/* Splits "host:port[:resp]" / "[v6]:port[:resp]"; resp may be NULL (then a third part is an error). */
static int split_entry(const char *text, size_t len, char *host, size_t hostcap, uint16_t *port,
                       uint16_t *resp)
{
    const char *end = text + len;
    const char *rest;
    size_t hostlen;
    if (len > 0 && text[0] == '[') {
        const char *close = memchr(text, ']', len);
        if (!close || close + 1 >= end || close[1] != ':') return EP_EINVAL;
        hostlen = (size_t)(close - text - 1);
        text++;
        rest = close + 2;
    } else {
        const char *colon = memchr(text, ':', len);
        if (!colon) return EP_EINVAL;
        hostlen = (size_t)(colon - text);
        rest = colon + 1;
    }
    if (hostlen == 0 || hostlen >= hostcap) return EP_EINVAL;
    memmove(host, text, hostlen);
    host[hostlen] = '\0';
    const char *colon2 = memchr(rest, ':', (size_t)(end - rest));
    if (!colon2) {
        if (resp) *resp = 0;
        return parse_port(rest, (size_t)(end - rest), port) ? EP_OK : EP_EINVAL;
    }
    if (!resp) return EP_EINVAL;
    if (!parse_port(rest, (size_t)(colon2 - rest), port)) return EP_EINVAL;
    return parse_port(colon2 + 1, (size_t)(end - colon2 - 1), resp) ? EP_OK : EP_EINVAL;
}

int ep_parse_hostport(const char *text, char *host, size_t hostcap, uint16_t *port)
{
    return split_entry(text, strlen(text), host, hostcap, port, NULL);
}

int ep_parse_cluster(const char *spec, ep_list *out, char *err, size_t errcap)
{
    out->nodes = NULL;
    out->count = 0;
    out->ids_known = false;
    ep_node *nodes = calloc(EP_MAX_NODES, sizeof *nodes);
    if (!nodes) {
        snprintf(err, errcap, "--cluster: out of memory");
        return EP_ENOMEM;
    }
    size_t count = 0;
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0) {
            if (count == EP_MAX_NODES) {
                snprintf(err, errcap, "--cluster: more than %d nodes", EP_MAX_NODES);
                free(nodes);
                return EP_EINVAL;
            }
            ep_node *n = &nodes[count];
            if (split_entry(p, len, n->host, sizeof n->host, &n->client_port, &n->resp_port) !=
                EP_OK) {
                snprintf(err, errcap,
                         "--cluster: entry %zu '%.*s': expected host:port or host:port:resp_port",
                         count + 1, (int)(len > 200 ? 200 : len), p);
                free(nodes);
                return EP_EINVAL;
            }
            n->id = count + 1;
            count++;
        }
        if (!comma) break;
        p = comma + 1;
    }
    if (count == 0) {
        snprintf(err, errcap, "--cluster: no node given (expected host:port,...)");
        free(nodes);
        return EP_EINVAL;
    }
    out->nodes = nodes;
    out->count = count;
    return EP_OK;
}

/* Reads an integer field in [min, max]; missing is an error when required. */
static int json_uint(const cJSON *obj, const char *field, uint64_t min, uint64_t max, bool required,
                     uint64_t *value, const char *name, size_t index, char *err, size_t errcap)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!item) {
        if (!required) {
            *value = 0;
            return EP_OK;
        }
        snprintf(err, errcap, "%s: entry %zu: %s: missing", name, index, field);
        return EP_EINVAL;
    }
    double number = item->valuedouble;
    if (!cJSON_IsNumber(item) || number < (double)min || number > (double)max ||
        number != (double)(uint64_t)number) {
        snprintf(err, errcap, "%s: entry %zu: %s: expected an integer in %llu..%llu", name, index,
                 field, (unsigned long long)min, (unsigned long long)max);
        return EP_EINVAL;
    }
    *value = (uint64_t)number;
    return EP_OK;
}

int ep_parse_peers_json(const char *json, const char *name, ep_list *out, char *err,
                        size_t errcap)
{
    out->nodes = NULL;
    out->count = 0;
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        const char *where = cJSON_GetErrorPtr();
        snprintf(err, errcap, "%s: not valid JSON near '%.20s'", name, where ? where : "?");
        return EP_EINVAL;
    }
    const cJSON *array = root;
    if (cJSON_IsObject(root)) array = cJSON_GetObjectItemCaseSensitive(root, "peers");
    if (!cJSON_IsArray(array)) {
        snprintf(err, errcap, "%s: expected a JSON array of peers (or {\"peers\": [...]})", name);
        cJSON_Delete(root);
        return EP_EINVAL;
    }
    int size = cJSON_GetArraySize(array);
    if (size <= 0 || size > EP_MAX_NODES) {
        snprintf(err, errcap, "%s: %d peers; expected 1..%d", name, size, EP_MAX_NODES);
        cJSON_Delete(root);
        return EP_EINVAL;
    }
    ep_node *nodes = calloc((size_t)size, sizeof *nodes);
    if (!nodes) {
        snprintf(err, errcap, "%s: out of memory", name);
        cJSON_Delete(root);
        return EP_ENOMEM;
    }
    int rc = EP_OK;
    size_t index = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, array)
    {
        ep_node *n = &nodes[index++];
        if (!cJSON_IsObject(entry)) {
            snprintf(err, errcap, "%s: entry %zu: expected an object", name, index);
            rc = EP_EINVAL;
            break;
        }
        uint64_t id, peer, client, resp;
        if ((rc = json_uint(entry, "id", 1, 1ull << 53, true, &id, name, index, err, errcap)) ||
            (rc = json_uint(entry, "peer_port", 1, 65535, false, &peer, name, index, err, errcap)) ||
            (rc = json_uint(entry, "client_port", 1, 65535, true, &client, name, index, err,
                            errcap)) ||
            (rc = json_uint(entry, "resp_port", 1, 65535, false, &resp, name, index, err, errcap)))
            break;
        const cJSON *host = cJSON_GetObjectItemCaseSensitive(entry, "host");
        if (!cJSON_IsString(host) || host->valuestring[0] == '\0' ||
            strlen(host->valuestring) >= sizeof n->host) {
            snprintf(err, errcap, "%s: entry %zu: host: expected a non-empty string under %d bytes",
                     name, index, EP_HOST_MAX);
            rc = EP_EINVAL;
            break;
        }
        for (size_t j = 0; j + 1 < index; j++) {
            if (nodes[j].id == id) {
                snprintf(err, errcap, "%s: entry %zu: id: %llu is used twice", name, index,
                         (unsigned long long)id);
                rc = EP_EINVAL;
                break;
            }
        }
        if (rc) break;
        n->id = id;
        snprintf(n->host, sizeof n->host, "%s", host->valuestring);
        n->peer_port = (uint16_t)peer;
        n->client_port = (uint16_t)client;
        n->resp_port = (uint16_t)resp;
    }
    cJSON_Delete(root);
    if (rc) {
        free(nodes);
        return rc;
    }
    out->nodes = nodes;
    out->count = (size_t)size;
    out->ids_known = true;
    return EP_OK;
}

int ep_load_peers(const char *path, ep_list *out, char *err, size_t errcap)
{
    out->nodes = NULL;
    out->count = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
        return EP_EIO;
    }
    char *text = malloc(EP_MAX_FILE + 1);
    if (!text) {
        fclose(f);
        snprintf(err, errcap, "%s: out of memory", path);
        return EP_ENOMEM;
    }
    size_t n = fread(text, 1, EP_MAX_FILE + 1, f);
    int read_error = ferror(f);
    fclose(f);
    if (read_error || n > EP_MAX_FILE) {
        snprintf(err, errcap, "%s: %s", path,
                 read_error ? "read error" : "larger than 1 MiB, not a peers file");
        free(text);
        return read_error ? EP_EIO : EP_EINVAL;
    }
    text[n] = '\0';
    int rc = ep_parse_peers_json(text, path, out, err, errcap);
    free(text);
    return rc;
}

void ep_list_free(ep_list *list)
{
    free(list->nodes);
    list->nodes = NULL;
    list->count = 0;
}

int ep_parse_member_list(const char *text, ep_list *out, bool *voter)
{
    out->nodes = NULL;
    out->count = 0;
    out->ids_known = true;
    ep_node *nodes = calloc(EP_MAX_NODES, sizeof *nodes);
    if (!nodes) return EP_ENOMEM;
    size_t n = 0;
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[512], role[16];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        line += len + (end ? 1 : 0);
        if (buf[0] == '(' || buf[0] == '\0') continue; /* "(a change is not committed yet)" */
        char *colon = strrchr(buf, ':');
        char *space = strchr(buf, ' ');
        unsigned long long id = 0;
        unsigned peer, client, resp;
        int used = 0;
        bool digits = space && space > buf && space - buf <= 16 &&
                      strspn(buf, "0123456789") == (size_t)(space - buf);
        if (digits) id = strtoull(buf, NULL, 10);
        if (n == EP_MAX_NODES || !digits || !colon || colon < space ||
            colon - space - 1 >= EP_HOST_MAX || colon - space - 1 < 1 ||
            sscanf(colon + 1, "%u client=%u resp=%u %15s%n", &peer, &client, &resp, role,
                   &used) != 4 ||
            colon[1 + used] != '\0' || id == 0 || id > (1ull << 53) || peer == 0 ||
            peer > 65535 || client == 0 || client > 65535 || resp == 0 || resp > 65535 ||
            (strcmp(role, "voter") != 0 && strcmp(role, "not-voter") != 0 &&
             strcmp(role, "learner") != 0)) {
            free(nodes);
            return EP_EINVAL;
        }
        nodes[n].id = id;
        snprintf(nodes[n].host, sizeof nodes[n].host, "%.*s", (int)(colon - space - 1), space + 1);
        nodes[n].peer_port = (uint16_t)peer;
        nodes[n].client_port = (uint16_t)client;
        nodes[n].resp_port = (uint16_t)resp;
        if (voter) voter[n] = strcmp(role, "voter") == 0;
        n++;
    }
    if (n == 0) {
        free(nodes);
        return EP_EINVAL;
    }
    out->nodes = nodes;
    out->count = n;
    return EP_OK;
}

int ep_list_merge(ep_list *list, const ep_list *more)
{
    /* Without the list's own ids (--cluster), a host may be spelled two ways ("localhost" and
     * "127.0.0.1"): matching by address would list a node twice, so nothing is added. */
    if (!list->ids_known || !more->ids_known) return 0;
    int added = 0;
    for (size_t i = 0; i < more->count && list->count < EP_MAX_NODES; i++) {
        const ep_node *m = &more->nodes[i];
        bool there = false;
        for (size_t j = 0; j < list->count && !there; j++)
            there = list->nodes[j].id == m->id;
        if (there) continue;
        ep_node *grown = realloc(list->nodes, (list->count + 1) * sizeof *grown);
        if (!grown) return EP_ENOMEM;
        list->nodes = grown;
        list->nodes[list->count++] = *m;
        added++;
    }
    return added;
}
