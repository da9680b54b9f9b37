/*
 * vfs_fault.c -- in-memory vfs with crash and fault injection (the model is in vfs_fault.h).
 *
 * State: a list of inodes, each with a durable and a current content; two name tables (current and
 * durable) mapping full paths to inodes; a global list of pending (unsynced) operations. An inode is
 * freed when no name in either table and no open handle refers to it. Sizes in tests are small, so
 * every look-up is a linear scan: clarity over speed.
 *
 * A content is `len` bytes of data followed by zeros up to `size` (so a preallocated 64 MiB segment
 * costs nothing until written).
 */
#include "vfs_fault.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct fault_content {
    uint8_t *data;
    size_t len; /* bytes materialized in data; bytes in [len, size) read as zero */
    size_t cap;
    uint64_t size;
} fault_content;

typedef struct fault_inode {
    fault_content cur;
    fault_content dur;
    int names; /* references from both name tables */
    int opens;
    struct fault_inode *next;
} fault_inode;

typedef struct fault_name {
    char *path;
    fault_inode *inode;
} fault_name;

typedef struct fault_names {
    fault_name *items;
    size_t n, cap;
} fault_names;

typedef enum { PENDING_WRITE, PENDING_TRUNCATE, PENDING_PREALLOCATE } pending_kind;

typedef struct fault_pending {
    pending_kind kind;
    fault_inode *inode;
    uint64_t offset; /* write offset, new size, or preallocate offset */
    uint64_t len;    /* write / preallocate length */
    uint8_t *data;   /* write data */
} fault_pending;

typedef struct fault_fs {
    uint64_t rng;
    fault_inode *inodes;
    fault_names cur_names, dur_names;
    char **dirs;
    size_t n_dirs;
    fault_pending *pending;
    size_t n_pending, cap_pending;
    uint64_t generation; /* bumped by each crash; handles of an older one are dead */
    uint64_t crash_points;
    uint64_t crash_at;
    bool down;
    vfs_fault_op fail_nth_op;
    uint64_t fail_nth_left;
    int fail_nth_err;
    int fail_all_err[VFS_OP_COUNT_];
    bool short_writes;
    uint64_t counts[VFS_OP_COUNT_];
} fault_fs;

struct vfs_file {
    fault_inode *inode;
    uint64_t generation;
    bool writable;
};

static fault_fs *fs_of(vfs *v)
{
    return v->ctx;
}

static uint64_t fault_rand(fault_fs *fs)
{
    /* splitmix64: tiny, good enough, and the same on every platform */
    uint64_t z = (fs->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- contents ---- */

static int content_reserve(fault_content *c, size_t len)
{
    if (len <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : 256;
    while (cap < len)
        cap *= 2;
    uint8_t *grown = realloc(c->data, cap);
    if (grown == NULL)
        return -ENOMEM;
    c->data = grown;
    c->cap = cap;
    return 0;
}

static int content_write(fault_content *c, const void *buf, size_t len, uint64_t offset)
{
    if (len == 0)
        return 0;
    size_t end = (size_t)offset + len;
    if (content_reserve(c, end) != 0)
        return -ENOMEM;
    if (offset > c->len)
        memset(c->data + c->len, 0, (size_t)offset - c->len);
    memcpy(c->data + offset, buf, len);
    if (end > c->len)
        c->len = end;
    if (end > c->size)
        c->size = end;
    return 0;
}

static void content_truncate(fault_content *c, uint64_t size)
{
    if (c->len > size)
        c->len = (size_t)size;
    c->size = size;
}

static void content_preallocate(fault_content *c, uint64_t offset, uint64_t len)
{
    if (offset + len > c->size)
        c->size = offset + len;
}

static int content_copy(fault_content *dst, const fault_content *src)
{
    if (content_reserve(dst, src->len) != 0)
        return -ENOMEM;
    if (src->len > 0)
        memcpy(dst->data, src->data, src->len);
    dst->len = src->len;
    dst->size = src->size;
    return 0;
}

/* ---- inodes and names ---- */

static fault_inode *inode_new(fault_fs *fs)
{
    fault_inode *inode = calloc(1, sizeof *inode);
    if (inode == NULL)
        return NULL;
    inode->next = fs->inodes;
    fs->inodes = inode;
    return inode;
}

static void pending_drop_inode(fault_fs *fs, const fault_inode *inode)
{
    size_t kept = 0;
    for (size_t i = 0; i < fs->n_pending; i++) {
        if (fs->pending[i].inode == inode)
            free(fs->pending[i].data);
        else
            fs->pending[kept++] = fs->pending[i];
    }
    fs->n_pending = kept;
}

static void inode_release_if_unused(fault_fs *fs, fault_inode *inode)
{
    if (inode->names > 0 || inode->opens > 0)
        return;
    pending_drop_inode(fs, inode);
    for (fault_inode **p = &fs->inodes; *p != NULL; p = &(*p)->next) {
        if (*p == inode) {
            *p = inode->next;
            break;
        }
    }
    free(inode->cur.data);
    free(inode->dur.data);
    free(inode);
}

static fault_name *names_find(fault_names *names, const char *path)
{
    for (size_t i = 0; i < names->n; i++)
        if (strcmp(names->items[i].path, path) == 0)
            return &names->items[i];
    return NULL;
}

/* Binds path to inode in the table (replacing an existing binding). */
static int names_set(fault_fs *fs, fault_names *names, const char *path, fault_inode *inode)
{
    fault_name *existing = names_find(names, path);
    if (existing != NULL) {
        fault_inode *old = existing->inode;
        inode->names++;
        existing->inode = inode;
        old->names--;
        inode_release_if_unused(fs, old);
        return 0;
    }
    if (names->n == names->cap) {
        size_t cap = names->cap ? names->cap * 2 : 16;
        fault_name *grown = realloc(names->items, cap * sizeof *grown);
        if (grown == NULL)
            return -ENOMEM;
        names->items = grown;
        names->cap = cap;
    }
    char *copy = strdup(path);
    if (copy == NULL)
        return -ENOMEM;
    names->items[names->n].path = copy;
    names->items[names->n].inode = inode;
    names->n++;
    inode->names++;
    return 0;
}

static void names_remove_at(fault_fs *fs, fault_names *names, size_t i)
{
    fault_inode *inode = names->items[i].inode;
    free(names->items[i].path);
    names->items[i] = names->items[names->n - 1];
    names->n--;
    inode->names--;
    inode_release_if_unused(fs, inode);
}

static void names_remove(fault_fs *fs, fault_names *names, const char *path)
{
    for (size_t i = 0; i < names->n; i++) {
        if (strcmp(names->items[i].path, path) == 0) {
            names_remove_at(fs, names, i);
            return;
        }
    }
}

/* Makes dst a copy of src, keeping inodes alive throughout (add before remove). */
static int names_assign(fault_fs *fs, fault_names *dst, const fault_names *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (names_set(fs, dst, src->items[i].path, src->items[i].inode) != 0)
            return -ENOMEM;
    for (size_t i = dst->n; i-- > 0;)
        if (names_find((fault_names *)src, dst->items[i].path) == NULL)
            names_remove_at(fs, dst, i);
    return 0;
}

/* Length of the directory part of path (0 when there is none). */
static size_t parent_len(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? (size_t)(slash - path) : 0;
}

static bool in_dir(const char *path, const char *dir)
{
    size_t plen = parent_len(path);
    return strlen(dir) == plen && strncmp(path, dir, plen) == 0;
}

static bool dir_exists(const fault_fs *fs, const char *dir, size_t len)
{
    if (len == 0 || (len == 1 && (dir[0] == '/' || dir[0] == '.')))
        return true; /* the root and the current directory always exist */
    for (size_t i = 0; i < fs->n_dirs; i++)
        if (strlen(fs->dirs[i]) == len && strncmp(fs->dirs[i], dir, len) == 0)
            return true;
    return false;
}

/* ---- fault decisions ---- */

/* Called at the start of every operation: counts it and returns -errno if it must fail.
 * *crashing is set when this operation is the armed crash point. */
static int fault_enter(fault_fs *fs, vfs_fault_op op, bool crash_point, bool *crashing)
{
    fs->counts[op]++;
    fs->counts[VFS_OP_ANY]++;
    if (crashing != NULL)
        *crashing = false;
    if (fs->down)
        return -EIO;
    if (crash_point) {
        fs->crash_points++;
        if (fs->crash_at != 0 && fs->crash_points == fs->crash_at) {
            fs->down = true;
            if (crashing != NULL)
                *crashing = true;
            return -EIO;
        }
    }
    if (fs->fail_all_err[op] != 0)
        return -fs->fail_all_err[op];
    if (fs->fail_all_err[VFS_OP_ANY] != 0)
        return -fs->fail_all_err[VFS_OP_ANY];
    if (fs->fail_nth_left > 0 && (fs->fail_nth_op == VFS_OP_ANY || fs->fail_nth_op == op)) {
        if (--fs->fail_nth_left == 0)
            return -fs->fail_nth_err;
    }
    return 0;
}

static int handle_check(fault_fs *fs, vfs_file *f)
{
    return f->generation == fs->generation ? 0 : -EIO;
}

static int pending_add(fault_fs *fs, pending_kind kind, fault_inode *inode, uint64_t offset,
                       uint64_t len, const void *data)
{
    if (fs->n_pending == fs->cap_pending) {
        size_t cap = fs->cap_pending ? fs->cap_pending * 2 : 64;
        fault_pending *grown = realloc(fs->pending, cap * sizeof *grown);
        if (grown == NULL)
            return -ENOMEM;
        fs->pending = grown;
        fs->cap_pending = cap;
    }
    fault_pending *p = &fs->pending[fs->n_pending];
    p->kind = kind;
    p->inode = inode;
    p->offset = offset;
    p->len = len;
    p->data = NULL;
    if (data != NULL) {
        p->data = malloc(len ? len : 1);
        if (p->data == NULL)
            return -ENOMEM;
        memcpy(p->data, data, len);
    }
    fs->n_pending++;
    return 0;
}

static void pending_apply(fault_content *c, const fault_pending *p, uint64_t len);

/* ---- the vfs operations ---- */

static int fault_open(vfs *v, const char *path, unsigned flags, vfs_file **out)
{
    fault_fs *fs = fs_of(v);
    fault_name *name = names_find(&fs->cur_names, path);
    bool creating = name == NULL && (flags & VFS_O_CREATE);
    bool crashing;
    int rc = fault_enter(fs, VFS_OP_OPEN, creating || (flags & VFS_O_TRUNC), &crashing);
    if (rc != 0)
        return rc;
    if (name != NULL && (flags & VFS_O_CREATE) && (flags & VFS_O_EXCL))
        return -EEXIST;
    if (name == NULL && !(flags & VFS_O_CREATE))
        return -ENOENT;
    if (!dir_exists(fs, path, parent_len(path)))
        return -ENOENT;
    vfs_file *f = malloc(sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    fault_inode *inode;
    if (name == NULL) {
        inode = inode_new(fs);
        if (inode == NULL || names_set(fs, &fs->cur_names, path, inode) != 0) {
            free(f);
            return -ENOMEM;
        }
    } else {
        inode = name->inode;
    }
    if ((flags & VFS_O_TRUNC) && inode->cur.size > 0) {
        content_truncate(&inode->cur, 0);
        pending_add(fs, PENDING_TRUNCATE, inode, 0, 0, NULL);
    }
    inode->opens++;
    f->inode = inode;
    f->generation = fs->generation;
    f->writable = (flags & VFS_O_RDWR) != 0;
    *out = f;
    return 0;
}

static int fault_close(vfs *v, vfs_file *f)
{
    fault_fs *fs = fs_of(v);
    fault_inode *inode = f->inode;
    bool stale = f->generation != fs->generation;
    free(f);
    if (!stale) {
        inode->opens--;
        inode_release_if_unused(fs, inode);
    }
    return stale ? -EIO : 0;
}

static int fault_pread(vfs *v, vfs_file *f, void *buf, size_t len, uint64_t offset, size_t *nread)
{
    fault_fs *fs = fs_of(v);
    int rc = fault_enter(fs, VFS_OP_PREAD, false, NULL);
    if (rc == 0)
        rc = handle_check(fs, f);
    if (rc != 0)
        return rc;
    const fault_content *c = &f->inode->cur;
    size_t n = 0;
    if (offset < c->size)
        n = (size_t)(c->size - offset < len ? c->size - offset : len);
    size_t from_data = 0;
    if (offset < c->len)
        from_data = c->len - (size_t)offset < n ? c->len - (size_t)offset : n;
    if (from_data > 0)
        memcpy(buf, c->data + offset, from_data);
    memset((uint8_t *)buf + from_data, 0, n - from_data);
    *nread = n;
    return 0;
}

static int fault_pwrite(vfs *v, vfs_file *f, const void *buf, size_t len, uint64_t offset,
                        size_t *written)
{
    fault_fs *fs = fs_of(v);
    bool crashing;
    int rc = fault_enter(fs, VFS_OP_PWRITE, true, &crashing);
    if (crashing && handle_check(fs, f) == 0) {
        /* The write was under way when power failed: a torn crash may keep part of it. */
        if (content_write(&f->inode->cur, buf, len, offset) == 0)
            pending_add(fs, PENDING_WRITE, f->inode, offset, len, buf);
    }
    if (rc == 0)
        rc = handle_check(fs, f);
    if (rc == 0 && !f->writable)
        rc = -EBADF;
    if (rc != 0)
        return rc;
    if (fs->short_writes && len > 1)
        len = 1 + (size_t)(fault_rand(fs) % (len - 1));
    if (content_write(&f->inode->cur, buf, len, offset) != 0 ||
        pending_add(fs, PENDING_WRITE, f->inode, offset, len, buf) != 0)
        return -ENOMEM;
    *written = len;
    return 0;
}

static int fault_sync(vfs *v, vfs_file *f, vfs_fault_op op)
{
    fault_fs *fs = fs_of(v);
    int rc = fault_enter(fs, op, true, NULL);
    if (rc == 0)
        rc = handle_check(fs, f);
    if (rc != 0)
        return rc;
    /* cur == dur + this inode's pending operations, in order: replaying them costs what was
     * written since the last sync, not the file's size (the simulator syncs very often). */
    for (size_t i = 0; i < fs->n_pending; i++)
        if (fs->pending[i].inode == f->inode)
            pending_apply(&f->inode->dur, &fs->pending[i], fs->pending[i].len);
    pending_drop_inode(fs, f->inode);
    return 0;
}

static int fault_fdatasync(vfs *v, vfs_file *f)
{
    return fault_sync(v, f, VFS_OP_FDATASYNC);
}

static int fault_fsync(vfs *v, vfs_file *f)
{
    return fault_sync(v, f, VFS_OP_FSYNC);
}

static int fault_preallocate(vfs *v, vfs_file *f, uint64_t offset, uint64_t len)
{
    fault_fs *fs = fs_of(v);
    int rc = fault_enter(fs, VFS_OP_PREALLOCATE, true, NULL);
    if (rc == 0)
        rc = handle_check(fs, f);
    if (rc != 0)
        return rc;
    content_preallocate(&f->inode->cur, offset, len);
    return pending_add(fs, PENDING_PREALLOCATE, f->inode, offset, len, NULL);
}

static int fault_truncate(vfs *v, vfs_file *f, uint64_t size)
{
    fault_fs *fs = fs_of(v);
    int rc = fault_enter(fs, VFS_OP_TRUNCATE, true, NULL);
    if (rc == 0)
        rc = handle_check(fs, f);
    if (rc != 0)
        return rc;
    content_truncate(&f->inode->cur, size);
    return pending_add(fs, PENDING_TRUNCATE, f->inode, size, 0, NULL);
}

static int fault_size(vfs *v, vfs_file *f, uint64_t *size)
{
    fault_fs *fs = fs_of(v);
    int rc = fault_enter(fs, VFS_OP_SIZE, false, NULL);
    if (rc == 0)
        rc = handle_check(fs, f);
    if (rc != 0)
        return rc;
    *size = f->inode->cur.size;
    return 0;
}

static int fault_rename(vfs *v, const char *from, const char *to)
{
    fault_fs *fs = fs_of(v);
    int rc = fault_enter(fs, VFS_OP_RENAME, true, NULL);
    if (rc != 0)
        return rc;
    fault_name *src = names_find(&fs->cur_names, from);
    if (src == NULL)
        return -ENOENT;
    if (!dir_exists(fs, to, parent_len(to)))
        return -ENOENT;
    fault_inode *inode = src->inode;
    inode->opens++; /* keep it alive while its old name goes */
    rc = names_set(fs, &fs->cur_names, to, inode);
    if (rc == 0)
        names_remove(fs, &fs->cur_names, from);
    inode->opens--;
    return rc;
}

static int fault_unlink(vfs *v, const char *path)
{
    fault_fs *fs = fs_of(v);
    int rc = fault_enter(fs, VFS_OP_UNLINK, true, NULL);
    if (rc != 0)
        return rc;
    if (names_find(&fs->cur_names, path) == NULL)
        return -ENOENT;
    names_remove(fs, &fs->cur_names, path);
    return 0;
}

static int fault_list(vfs *v, const char *dir, char ***names_out, size_t *n_out)
{
    fault_fs *fs = fs_of(v);
    int rc = fault_enter(fs, VFS_OP_LIST, false, NULL);
    if (rc != 0)
        return rc;
    if (!dir_exists(fs, dir, strlen(dir)))
        return -ENOENT;
    char **out = calloc(fs->cur_names.n + 1, sizeof *out);
    if (out == NULL)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < fs->cur_names.n; i++) {
        const char *path = fs->cur_names.items[i].path;
        if (!in_dir(path, dir))
            continue;
        size_t plen = parent_len(path);
        out[n] = strdup(path + (plen ? plen + 1 : 0));
        if (out[n] == NULL) {
            vfs_list_free(out, n);
            return -ENOMEM;
        }
        n++;
    }
    *names_out = out;
    *n_out = n;
    return 0;
}

static int fault_mkdir(vfs *v, const char *path)
{
    fault_fs *fs = fs_of(v);
    int rc = fault_enter(fs, VFS_OP_MKDIR, false, NULL);
    if (rc != 0)
        return rc;
    if (dir_exists(fs, path, strlen(path)))
        return -EEXIST;
    char **grown = realloc(fs->dirs, (fs->n_dirs + 1) * sizeof *grown);
    if (grown == NULL)
        return -ENOMEM;
    fs->dirs = grown;
    fs->dirs[fs->n_dirs] = strdup(path);
    if (fs->dirs[fs->n_dirs] == NULL)
        return -ENOMEM;
    fs->n_dirs++;
    return 0;
}

static int fault_sync_dir(vfs *v, const char *dir)
{
    fault_fs *fs = fs_of(v);
    int rc = fault_enter(fs, VFS_OP_SYNC_DIR, true, NULL);
    if (rc != 0)
        return rc;
    if (!dir_exists(fs, dir, strlen(dir)))
        return -ENOENT;
    /* The durable entries of this directory become exactly the current ones. */
    for (size_t i = 0; i < fs->cur_names.n; i++) {
        const fault_name *name = &fs->cur_names.items[i];
        if (in_dir(name->path, dir) && names_set(fs, &fs->dur_names, name->path, name->inode) != 0)
            return -ENOMEM;
    }
    for (size_t i = fs->dur_names.n; i-- > 0;) {
        const char *path = fs->dur_names.items[i].path;
        if (in_dir(path, dir) && names_find(&fs->cur_names, path) == NULL)
            names_remove_at(fs, &fs->dur_names, i);
    }
    return 0;
}

/* A copy stands in for a mapping: same contract, and the test build exercises the same path. */
static int fault_map(vfs *v, vfs_file *f, uint64_t len, const void **addr)
{
    uint8_t *copy = malloc(len ? (size_t)len : 1);
    if (copy == NULL)
        return -ENOMEM;
    size_t n = 0;
    int rc = fault_pread(v, f, copy, (size_t)len, 0, &n);
    if (rc == 0 && n != len)
        rc = -EINVAL; /* a real mapping beyond the end would fault */
    if (rc != 0) {
        free(copy);
        return rc;
    }
    *addr = copy;
    return 0;
}

static void fault_unmap(vfs *v, const void *addr, uint64_t len)
{
    (void)v;
    (void)len;
    free((void *)addr);
}

/* ---- control ---- */

vfs *vfs_fault_new(uint64_t seed)
{
    vfs *v = calloc(1, sizeof *v);
    fault_fs *fs = calloc(1, sizeof *fs);
    if (v == NULL || fs == NULL) {
        free(v);
        free(fs);
        return NULL;
    }
    fs->rng = seed;
    v->version = VFS_VERSION;
    v->name = "fault";
    v->ctx = fs;
    v->open = fault_open;
    v->close = fault_close;
    v->pread = fault_pread;
    v->pwrite = fault_pwrite;
    v->fdatasync = fault_fdatasync;
    v->fsync = fault_fsync;
    v->preallocate = fault_preallocate;
    v->truncate = fault_truncate;
    v->size = fault_size;
    v->rename = fault_rename;
    v->unlink = fault_unlink;
    v->list = fault_list;
    v->mkdir = fault_mkdir;
    v->sync_dir = fault_sync_dir;
    v->map = fault_map;
    v->unmap = fault_unmap;
    return v;
}

void vfs_fault_free(vfs *v)
{
    if (v == NULL)
        return;
    fault_fs *fs = fs_of(v);
    for (size_t i = 0; i < fs->n_pending; i++)
        free(fs->pending[i].data);
    free(fs->pending);
    for (size_t i = 0; i < fs->cur_names.n; i++)
        free(fs->cur_names.items[i].path);
    for (size_t i = 0; i < fs->dur_names.n; i++)
        free(fs->dur_names.items[i].path);
    free(fs->cur_names.items);
    free(fs->dur_names.items);
    while (fs->inodes != NULL) {
        fault_inode *next = fs->inodes->next;
        free(fs->inodes->cur.data);
        free(fs->inodes->dur.data);
        free(fs->inodes);
        fs->inodes = next;
    }
    for (size_t i = 0; i < fs->n_dirs; i++)
        free(fs->dirs[i]);
    free(fs->dirs);
    free(fs);
    free(v);
}

static void pending_apply(fault_content *c, const fault_pending *p, uint64_t len)
{
    switch (p->kind) {
    case PENDING_WRITE:
        (void)content_write(c, p->data, (size_t)len, p->offset);
        break;
    case PENDING_TRUNCATE:
        content_truncate(c, p->offset);
        break;
    case PENDING_PREALLOCATE:
        content_preallocate(c, p->offset, p->len);
        break;
    }
}

void vfs_fault_crash(vfs *v, unsigned flags)
{
    fault_fs *fs = fs_of(v);
    if (flags & VFS_FAULT_TORN) {
        /* The disk wrote the queue in order up to a random point, the last write in part. */
        size_t keep = (size_t)(fault_rand(fs) % (fs->n_pending + 1));
        for (size_t i = 0; i < keep; i++)
            pending_apply(&fs->pending[i].inode->dur, &fs->pending[i], fs->pending[i].len);
        if (keep < fs->n_pending && fs->pending[keep].kind == PENDING_WRITE &&
            fs->pending[keep].len > 1) {
            const fault_pending *p = &fs->pending[keep];
            pending_apply(&p->inode->dur, p, fault_rand(fs) % p->len);
        }
    }
    for (size_t i = 0; i < fs->n_pending; i++)
        free(fs->pending[i].data);
    fs->n_pending = 0;
    int rc;
    if (flags & VFS_FAULT_KEEP_NAMES)
        rc = names_assign(fs, &fs->dur_names, &fs->cur_names);
    else
        rc = names_assign(fs, &fs->cur_names, &fs->dur_names);
    assert(rc == 0 && "vfs_fault: out of memory during crash");
    (void)rc;
    for (fault_inode *inode = fs->inodes; inode != NULL; inode = inode->next) {
        rc = content_copy(&inode->cur, &inode->dur);
        assert(rc == 0);
        /* Handles of the old generation are dead; they no longer pin their inode. */
        inode->opens = 0;
    }
    /* Free the inodes that lost every name (files created but never made durable). */
    fault_inode *inode = fs->inodes;
    while (inode != NULL) {
        fault_inode *next = inode->next;
        inode_release_if_unused(fs, inode);
        inode = next;
    }
    fs->generation++;
    fs->down = false;
    fs->crash_at = 0;
}

void vfs_fault_crash_at(vfs *v, uint64_t n)
{
    fs_of(v)->crash_at = n;
}

uint64_t vfs_fault_crash_points(const vfs *v)
{
    return ((const fault_fs *)v->ctx)->crash_points;
}

bool vfs_fault_is_down(const vfs *v)
{
    return ((const fault_fs *)v->ctx)->down;
}

void vfs_fault_fail_nth(vfs *v, vfs_fault_op op, uint64_t n, int err)
{
    fault_fs *fs = fs_of(v);
    fs->fail_nth_op = op;
    fs->fail_nth_left = n;
    fs->fail_nth_err = err;
}

void vfs_fault_fail_all(vfs *v, vfs_fault_op op, int err)
{
    fs_of(v)->fail_all_err[op] = err;
}

void vfs_fault_short_writes(vfs *v, bool on)
{
    fs_of(v)->short_writes = on;
}

int vfs_fault_flip_bit(vfs *v, const char *path, uint64_t offset, unsigned bit)
{
    fault_fs *fs = fs_of(v);
    fault_name *name = names_find(&fs->cur_names, path);
    if (name == NULL)
        return -ENOENT;
    fault_inode *inode = name->inode;
    fault_content *contents[2] = {&inode->cur, &inode->dur};
    if (offset >= inode->cur.size)
        return -EINVAL;
    for (int i = 0; i < 2; i++) {
        fault_content *c = contents[i];
        if (offset >= c->size)
            continue;
        if (offset >= c->len) {
            uint8_t zero = 0;
            if (content_write(c, &zero, 1, offset) != 0)
                return -ENOMEM;
        }
        c->data[offset] ^= (uint8_t)(1u << (bit & 7u));
    }
    return 0;
}

uint64_t vfs_fault_count(const vfs *v, vfs_fault_op op)
{
    return ((const fault_fs *)v->ctx)->counts[op];
}
