#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
#include "CSliceKV.h"

int slice_start_writeback(int fd, int64_t offset, int64_t count) {
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
}

int slice_set_thread_nice(int nice) {
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int previous = getpriority(PRIO_PROCESS, tid);
    if (errno != 0) previous = 0;
    setpriority(PRIO_PROCESS, tid, nice);
    return previous;
}

int slice_is_zero(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    // memcmp against the same buffer shifted by one: zero iff the first byte is zero and
    // every byte equals the next (the libc routine is vectorised; debug builds of Swift loops are not).
    if (n == 0) return 1;
    return b[0] == 0 && memcmp(b, b + 1, n - 1) == 0;
}
