/*
 * cmd_kv.c -- the key-value commands of raftkv: argument checks, one request through kvc, and
 * the printing of its answer (formats and exit codes are documented in main.c's --help).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int fail_usage(const char *command, const char *what)
{
    fprintf(stderr, "raftkv: %s: %s\n(raftkv --help for usage)\n", command, what);
    return CLI_EXIT_USAGE;
}

/* Reads all of stdin (a "-" value), at most TXT_MAX_VALUE bytes. */
static int read_stdin(uint8_t **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) return -1;
    for (;;) {
        if (n == cap) {
            if (cap > TXT_MAX_VALUE) break;
            cap *= 2;
            uint8_t *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                return -1;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) break;
    }
    if (ferror(stdin) || n > TXT_MAX_VALUE) {
        fprintf(stderr, "raftkv: stdin: %s\n",
                ferror(stdin) ? strerror(errno) : "value over the 64 MiB hard limit");
        free(buf);
        return -2;
    }
    *out = buf;
    *len = n;
    return 0;
}

typedef struct values {
    uint8_t *from_stdin; /* at most one "-" per command */
    bool stdin_used;
} values;

/* Points value at arg, or at stdin's bytes for "-". Returns an exit code on failure, else -1. */
static int take_value(values *v, const char *command, const char *arg, const uint8_t **value,
                      size_t *len)
{
    if (strcmp(arg, "-") != 0) {
        *value = (const uint8_t *)arg;
        *len = strlen(arg);
        return -1;
    }
    if (v->stdin_used) return fail_usage(command, "only one value may be read from stdin (\"-\")");
    v->stdin_used = true;
    int rc = read_stdin(&v->from_stdin, len);
    if (rc == -1) {
        fprintf(stderr, "raftkv: out of memory reading stdin\n");
        return CLI_EXIT_UNAVAILABLE;
    }
    if (rc) return CLI_EXIT_USAGE;
    *value = v->from_stdin;
    return -1;
}

static int check_key(const char *command, const char *key)
{
    if (txt_key_valid(key)) return -1;
    fprintf(stderr,
            "raftkv: %s: invalid key '%.60s': keys are 1..%d bytes without spaces or control "
            "characters\n",
            command, key, TXT_MAX_KEY);
    return CLI_EXIT_USAGE;
}

static bool parse_version(const char *text, uint64_t *version)
{
    if (!*text || strlen(text) > 20) return false;
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        uint64_t digit = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10) return false;
        v = v * 10 + digit;
    }
    *version = v;
    return true;
}

static void print_value(const txt_value *v)
{
    fwrite(v->data, 1, v->len, stdout);
    if (isatty(STDOUT_FILENO)) fputc('\n', stdout);
}

/* Builds the request from the positional arguments. Returns -1 when req is ready, else an exit
 * code. */
static int build(const cli_opts *opts, const char *command, values *vals, txt_req *req,
                 txt_pair **pairs_out)
{
    char **args = opts->args;
    int nargs = opts->nargs;
    int rc;
    memset(req, 0, sizeof *req);
    req->exptime = opts->has_ttl ? opts->ttl : 0;
    if (!strcmp(command, "get") || !strcmp(command, "getm") || !strcmp(command, "delete")) {
        if (nargs != 1) return fail_usage(command, "expected exactly one KEY");
        req->op = !strcmp(command, "get") ? TXT_GET : !strcmp(command, "getm") ? TXT_GETM : TXT_DELETE;
        req->key = args[0];
        return check_key(command, args[0]);
    }
    if (!strcmp(command, "set")) {
        if (nargs != 2) return fail_usage(command, "expected KEY VALUE (VALUE \"-\" reads stdin)");
        req->op = TXT_SET;
        req->key = args[0];
        if ((rc = check_key(command, args[0])) >= 0) return rc;
        return take_value(vals, command, args[1], &req->value, &req->value_len);
    }
    if (!strcmp(command, "cas")) {
        if (nargs != 3) return fail_usage(command, "expected KEY VERSION VALUE");
        req->op = TXT_CAS;
        req->key = args[0];
        if ((rc = check_key(command, args[0])) >= 0) return rc;
        if (!parse_version(args[1], &req->version))
            return fail_usage(command, "VERSION must be an unsigned integer (from set or getm)");
        return take_value(vals, command, args[2], &req->value, &req->value_len);
    }
    if (!strcmp(command, "mget")) {
        if (nargs < 1 || nargs > TXT_MAX_MULTI) return fail_usage(command, "expected 1..1024 KEYs");
        for (int i = 0; i < nargs; i++)
            if ((rc = check_key(command, args[i])) >= 0) return rc;
        req->op = TXT_MGET;
        req->n = (size_t)nargs;
        req->keys = (const char *const *)args;
        return -1;
    }
    if (!strcmp(command, "mset")) {
        if (nargs < 2 || nargs % 2 != 0 || nargs / 2 > TXT_MAX_MULTI)
            return fail_usage(command, "expected KEY VALUE pairs (1..1024 of them)");
        txt_pair *pairs = calloc((size_t)nargs / 2, sizeof *pairs);
        if (!pairs) {
            fprintf(stderr, "raftkv: out of memory\n");
            return CLI_EXIT_UNAVAILABLE;
        }
        *pairs_out = pairs;
        for (int i = 0; i < nargs / 2; i++) {
            pairs[i].key = args[2 * i];
            if ((rc = check_key(command, args[2 * i])) >= 0) return rc;
            if ((rc = take_value(vals, command, args[2 * i + 1], &pairs[i].value,
                                 &pairs[i].value_len)) >= 0)
                return rc;
        }
        req->op = TXT_MSET;
        req->n = (size_t)nargs / 2;
        req->pairs = pairs;
        return -1;
    }
    return fail_usage(command, "unknown command");
}

/* Prints the final reply and returns the exit code. */
static int report(const txt_req *req, const txt_reply *reply)
{
    const char *name = txt_op_name(req->op);
    switch (reply->kind) {
    case TXT_R_OK: printf("%" PRIu64 "\n", reply->version); return CLI_EXIT_OK;
    case TXT_R_DELETED: return CLI_EXIT_OK;
    case TXT_R_VALUE:
        if (req->op == TXT_GETM)
            printf("%" PRIu64 " %" PRIu64 "\n", reply->value.version, reply->value.exptime);
        print_value(&reply->value);
        return CLI_EXIT_OK;
    case TXT_R_MULTI: {
        int code = CLI_EXIT_OK;
        for (size_t i = 0; i < reply->n_values; i++) {
            const txt_value *v = &reply->values[i];
            if (!v->found) {
                printf("%s -\n", req->keys[i]);
                code = CLI_EXIT_MISS;
                continue;
            }
            printf("%s %zu\n", req->keys[i], v->len);
            fwrite(v->data, 1, v->len, stdout);
            fputc('\n', stdout);
        }
        return code;
    }
    case TXT_R_NOT_FOUND:
        fprintf(stderr, "raftkv: %s %s: not found\n", name, req->key ? req->key : "");
        return CLI_EXIT_MISS;
    case TXT_R_VERSION:
        fprintf(stderr, "raftkv: cas %s: version mismatch (the key is not at version %" PRIu64 ")\n",
                req->key, req->version);
        return CLI_EXIT_MISS;
    case TXT_R_CMD_ERR:
        fprintf(stderr,
                "raftkv: %s: the server rejected the command (ERR_CMD_ERR: malformed, a value "
                "over the server's limit (default 1 MiB), or a command line over its limit "
                "(default 8192 bytes: fewer or shorter keys per mget/mset))\n",
                name);
        return CLI_EXIT_USAGE;
    case TXT_R_INTERNAL:
    case TXT_R_REDIRECT: break; /* kvc never returns these as final */
    }
    fprintf(stderr, "raftkv: %s: unexpected final reply\n", name);
    return CLI_EXIT_UNAVAILABLE;
}

int cli_kv(const cli_opts *opts, const char *command)
{
    values vals = {0};
    txt_pair *pairs = NULL;
    txt_req req;
    int code = build(opts, command, &vals, &req, &pairs);
    if (code >= 0) goto out;
    ep_list nodes;
    if ((code = cli_nodes(opts, &nodes)) != CLI_EXIT_OK) goto out;
    txt_reply reply;
    char err[1024];
    int rc = kvc_execute(&nodes, &opts->kvc, &req, &reply, err, sizeof err);
    ep_list_free(&nodes);
    switch (rc) {
    case KVC_OK:
        code = report(&req, &reply);
        txt_reply_free(&reply);
        break;
    case KVC_EINVAL:
        fprintf(stderr, "raftkv: %s: %s\n", command, err);
        code = CLI_EXIT_USAGE;
        break;
    case KVC_EUNKNOWN:
        fprintf(stderr, "raftkv: %s: outcome unknown: %s\n", command, err);
        code = CLI_EXIT_UNKNOWN;
        break;
    default:
        fprintf(stderr, "raftkv: %s: %s\n", command, err);
        code = CLI_EXIT_UNAVAILABLE;
        break;
    }
    if (fflush(stdout) != 0 && code == CLI_EXIT_OK) {
        fprintf(stderr, "raftkv: stdout: %s\n", strerror(errno));
        code = CLI_EXIT_UNAVAILABLE;
    }
out:
    free(pairs);
    free(vals.from_stdin);
    return code;
}
