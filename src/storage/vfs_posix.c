/*
 * vfs_posix.c -- the real implementation of vfs.h over POSIX file descriptors.
 *
 * preallocate uses fallocate(mode 0) so the size and the extents are fixed once per segment: later
 * fdatasync calls then flush only data, not metadata (the point of preallocating a WAL segment).
 * File systems without fallocate get posix_fallocate's emulation.
 */
#include "vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct vfs_file {
    int fd;
};

static int posix_open(vfs *v, const char *path, unsigned flags, vfs_file **out)
{
    (void)v;
    int oflags = O_CLOEXEC | ((flags & VFS_O_RDWR) ? O_RDWR : O_RDONLY);
    if (flags & VFS_O_CREATE)
        oflags |= O_CREAT;
    if (flags & VFS_O_EXCL)
        oflags |= O_EXCL;
    if (flags & VFS_O_TRUNC)
        oflags |= O_TRUNC;
    vfs_file *f = malloc(sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    f->fd = open(path, oflags, 0644);
    if (f->fd < 0) {
        int err = errno;
        free(f);
        return -err;
    }
    *out = f;
    return 0;
}

static int posix_close(vfs *v, vfs_file *f)
{
    (void)v;
    int rc = close(f->fd) == 0 ? 0 : -errno;
    free(f);
    return rc;
}

static int posix_pread(vfs *v, vfs_file *f, void *buf, size_t len, uint64_t offset, size_t *nread)
{
    (void)v;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(f->fd, (char *)buf + done, len - done, (off_t)(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *nread = done;
    return 0;
}

static int posix_pwrite(vfs *v, vfs_file *f, const void *buf, size_t len, uint64_t offset,
                        size_t *written)
{
    (void)v;
    for (;;) {
        ssize_t n = pwrite(f->fd, buf, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        *written = (size_t)n;
        return 0;
    }
}

static int posix_fdatasync(vfs *v, vfs_file *f)
{
    (void)v;
    return fdatasync(f->fd) == 0 ? 0 : -errno;
}

static int posix_fsync(vfs *v, vfs_file *f)
{
    (void)v;
    return fsync(f->fd) == 0 ? 0 : -errno;
}

static int posix_preallocate(vfs *v, vfs_file *f, uint64_t offset, uint64_t len)
{
    (void)v;
    if (fallocate(f->fd, 0, (off_t)offset, (off_t)len) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS)
        return -errno;
    int rc = posix_fallocate(f->fd, (off_t)offset, (off_t)len);
    return -rc;
}

static int posix_truncate(vfs *v, vfs_file *f, uint64_t size)
{
    (void)v;
    return ftruncate(f->fd, (off_t)size) == 0 ? 0 : -errno;
}

static int posix_size(vfs *v, vfs_file *f, uint64_t *size)
{
    (void)v;
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

static int posix_rename(vfs *v, const char *from, const char *to)
{
    (void)v;
    return rename(from, to) == 0 ? 0 : -errno;
}

static int posix_unlink(vfs *v, const char *path)
{
    (void)v;
    return unlink(path) == 0 ? 0 : -errno;
}

static int posix_list(vfs *v, const char *dir, char ***names, size_t *n_names)
{
    (void)v;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    char **out = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t new_cap = cap ? cap * 2 : 16;
            char **grown = realloc(out, new_cap * sizeof *grown);
            if (grown == NULL) {
                rc = -ENOMEM;
                break;
            }
            out = grown;
            cap = new_cap;
        }
        out[n] = strdup(de->d_name);
        if (out[n] == NULL) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc != 0) {
        vfs_list_free(out, n);
        return rc;
    }
    *names = out;
    *n_names = n;
    return 0;
}

static int posix_mkdir(vfs *v, const char *path)
{
    (void)v;
    return mkdir(path, 0755) == 0 ? 0 : -errno;
}

static int posix_sync_dir(vfs *v, const char *path)
{
    (void)v;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int posix_map(vfs *v, vfs_file *f, uint64_t len, const void **addr)
{
    (void)v;
    /* MAP_POPULATE: recovery reads every byte once, in order; fault it all in one go. */
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, f->fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *addr = p;
    return 0;
}

static void posix_unmap(vfs *v, const void *addr, uint64_t len)
{
    (void)v;
    munmap((void *)addr, (size_t)len);
}

static vfs posix_vfs = {
    .version = VFS_VERSION,
    .name = "posix",
    .ctx = NULL,
    .open = posix_open,
    .close = posix_close,
    .pread = posix_pread,
    .pwrite = posix_pwrite,
    .fdatasync = posix_fdatasync,
    .fsync = posix_fsync,
    .preallocate = posix_preallocate,
    .truncate = posix_truncate,
    .size = posix_size,
    .rename = posix_rename,
    .unlink = posix_unlink,
    .list = posix_list,
    .mkdir = posix_mkdir,
    .sync_dir = posix_sync_dir,
    .map = posix_map,
    .unmap = posix_unmap,
};

vfs *vfs_posix(void)
{
    return &posix_vfs;
}

void vfs_list_free(char **names, size_t n_names)
{
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
}

int vfs_write_all(vfs *v, vfs_file *f, const void *buf, size_t len, uint64_t offset)
{
    size_t done = 0;
    int zero_writes = 0;
    while (done < len) {
        size_t n = 0;
        int rc = v->pwrite(v, f, (const char *)buf + done, len - done, offset + done, &n);
        if (rc != 0)
            return rc;
        if (n == 0 && ++zero_writes > 3)
            return -ENOSPC; /* a device that accepts nothing is full, whatever it says */
        done += n;
    }
    return 0;
}

int vfs_read_all(vfs *v, vfs_file *f, void *buf, size_t len, uint64_t offset)
{
    size_t n = 0;
    int rc = v->pread(v, f, buf, len, offset, &n);
    if (rc != 0)
        return rc;
    return n == len ? 0 : -ENODATA;
}
