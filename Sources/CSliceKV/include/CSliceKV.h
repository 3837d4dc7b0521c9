#ifndef CSLICEKV_H
#define CSLICEKV_H
#include <stddef.h>
#include <stdint.h>

/// Extends a CRC32C (Castagnoli) with `n` bytes. Start with crc = 0.
/// Uses SSE4.2 when the CPU has it (7+ GB/s), a slicing-by-8 table otherwise.
uint32_t slice_crc32c_extend(uint32_t crc, const void *data, size_t n);

/// 1 when the hardware path is in use.
int slice_crc32c_hardware(void);

#endif
