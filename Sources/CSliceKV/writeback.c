#define _GNU_SOURCE
#include <fcntl.h>
#include "CSliceKV.h"

int slice_start_writeback(int fd, int64_t offset, int64_t count) {
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
}
