#ifndef SLICE_CFUSE_SHIM_H
#define SLICE_CFUSE_SHIM_H
/* libfuse 3.12+ API: fuse_new, fuse_loop_mt and fuse_loop_cfg_* are real functions at this
   version (macros at older ones, which Swift cannot call). */
#define FUSE_USE_VERSION 312
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <sys/xattr.h>
#include <sys/statvfs.h>

/* Not exported to Swift by Glibc. */
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
static const unsigned int slice_rename_noreplace = RENAME_NOREPLACE;
static const unsigned int slice_rename_exchange = RENAME_EXCHANGE;
static const int slice_xattr_create = XATTR_CREATE;
static const int slice_xattr_replace = XATTR_REPLACE;
static const long slice_utime_now = UTIME_NOW;
static const long slice_utime_omit = UTIME_OMIT;
static const unsigned int slice_cap_readdirplus = FUSE_CAP_READDIRPLUS;
static const unsigned int slice_cap_readdirplus_auto = FUSE_CAP_READDIRPLUS_AUTO;
/* fallocate(2) modes and lseek(2) whences: Glibc shows them only under _GNU_SOURCE. */
#include <linux/falloc.h>
#ifndef SEEK_DATA
#define SEEK_DATA 3
#endif
#ifndef SEEK_HOLE
#define SEEK_HOLE 4
#endif
static const int slice_falloc_keep_size = FALLOC_FL_KEEP_SIZE;
static const int slice_falloc_punch_hole = FALLOC_FL_PUNCH_HOLE;
static const int slice_falloc_zero_range = FALLOC_FL_ZERO_RANGE;
static const int slice_seek_data = SEEK_DATA;
static const int slice_seek_hole = SEEK_HOLE;
/* System calls Glibc declares only under _GNU_SOURCE, for tests that drive a mount through
   the kernel with them. -1 and errno on failure, as the libc functions. */
#include <sys/syscall.h>
#include <unistd.h>
static inline int slice_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                                  unsigned int flags) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}
static inline int slice_fallocate(int fd, int mode, off_t offset, off_t len) {
    return (int)syscall(SYS_fallocate, fd, mode, offset, len);
}
static inline long slice_getdents64(int fd, void *buf, size_t count) {
    return syscall(SYS_getdents64, fd, buf, count);
}
/* Swift sees `statvfs` as the struct's initialiser, not the function. */
static inline int slice_statvfs(const char *path, struct statvfs *buf) { return statvfs(path, buf); }
#endif
