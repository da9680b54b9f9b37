/* lc_int.h -- internals shared by the lincheck files (not a contract for anyone else). */
#ifndef RAFTKV_LC_INT_H
#define RAFTKV_LC_INT_H

#include "lincheck.h"

#define LC_FIELDS 9

struct lc_history {
    lc_op *ops;
    size_t n_ops, ops_cap;
    char **strs;        /* id -> text */
    uint32_t n_strs;
    size_t strs_cap;
    uint32_t *slots;    /* open addressing over strs, UINT32_MAX = empty */
    size_t slots_cap;
    uint32_t id_true, id_false;
};

uint32_t lc_intern(lc_history *h, const char *s, size_t len);

#endif /* RAFTKV_LC_INT_H */
