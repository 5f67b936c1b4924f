/* crc32.c - CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the
 * capture file's checksum.  Table built on first use; no allocation, safe
 * in a signal handler once the table exists (the writer builds it at start). */
#include "format.h"

static uint32_t table[256];
static int table_ready;

static void build_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

/* Continue a CRC over `len` more bytes; start with crc = 0. */
uint32_t rcgc_prof_crc32(uint32_t crc, const void *data, size_t len)
{
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE))
        build_table();
    const unsigned char *p = data;
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}
