/* growbuf.c -- see growbuf.h. */
#include "growbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void growbuf_put(growbuf *b, const void *data, size_t len)
{
    if (b->failed || len == 0)
        return;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        uint8_t *base = realloc(b->base, cap);
        if (base == NULL) {
            b->failed = true;
            return;
        }
        b->base = base;
        b->cap = cap;
    }
    memcpy(b->base + b->len, data, len);
    b->len += len;
}

void growbuf_printf(growbuf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof line) {
        growbuf_put(b, line, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1); /* a long line: format it again at its full size */
    if (big == NULL) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    growbuf_put(b, big, (size_t)n);
    free(big);
}

void growbuf_free(growbuf *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}
