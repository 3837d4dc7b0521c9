#ifndef SLICE_CZSTD_SHIM_H
#define SLICE_CZSTD_SHIM_H
/* libzstd (Debian: libzstd-dev): zstd compression of table data blocks. */
#include <zstd.h>
#endif
