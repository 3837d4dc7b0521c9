#ifndef SLICE_CLZ4_SHIM_H
#define SLICE_CLZ4_SHIM_H
/* liblz4 (Debian: liblz4-dev): LZ4 block compression of table data blocks. */
#include <lz4.h>
#endif
