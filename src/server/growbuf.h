/*
 * growbuf.h -- a byte buffer that grows as it is appended to, for replies and forwarded requests
 * assembled piece by piece. Out of memory is sticky: appends after a failed one do nothing and
 * `failed` stays true, so a caller checks once at the end instead of after every append.
 *
 * OWNERSHIP. A zero-initialized growbuf is empty and valid; base is malloc'd by the appends and
 * belongs to the caller, who frees it with growbuf_free (or free(base)).
 */
#ifndef RAFTKV_GROWBUF_H
#define RAFTKV_GROWBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct growbuf {
    uint8_t *base;
    size_t len, cap;
    bool failed; /* an allocation failed: the content is incomplete */
} growbuf;

void growbuf_put(growbuf *b, const void *data, size_t len);
void growbuf_printf(growbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void growbuf_free(growbuf *b);

#endif /* RAFTKV_GROWBUF_H */
