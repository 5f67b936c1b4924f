/*
 * format.h - the rcgc-prof capture file: constants shared by the writer (the
 * preloaded library) and the reader (the rcgc-prof command).
 *
 * docs/prof.md, "Capture format", is the specification; this header is its
 * executable part.  In short:
 *
 *   header (40 bytes, little-endian)
 *     0  magic "RCGCPROF"
 *     8  u32 version (RCGC_PROF_VERSION)
 *    12  u32 flags (RCGC_PROF_F_ZSTD: the body is one zstd frame)
 *    16  u64 raw body size (after decompression)
 *    24  u64 stored body size (bytes following the header)
 *    32  u32 CRC-32 of the stored body
 *    36  u32 CRC-32 of header bytes 0..35
 *   body: sections, each  u32 tag, u32 0, u64 length, payload.
 *
 * Payloads are LEB128 varints ("v"), zigzag varints ("z") and strings
 * (v length, then bytes, no NUL).  Invariants a reader checks:
 *   H1  magic, version, both CRCs, stored size == file size - 40;
 *   H2  raw size <= RCGC_PROF_MAX_RAW, decompressed size == raw size;
 *   H3  every section fits in the body; every varint ends inside its section;
 *   H4  INFO comes first and appears once; END comes last.
 */
#ifndef RCGC_PROF_FORMAT_H
#define RCGC_PROF_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define RCGC_PROF_MAGIC "RCGCPROF"
#define RCGC_PROF_VERSION 1u
#define RCGC_PROF_HEADER_SIZE 40u
#define RCGC_PROF_F_ZSTD 1u
/* A reader refuses bodies larger than this (1 GiB): protects it from a
 * corrupted size field asking for an absurd allocation. */
#define RCGC_PROF_MAX_RAW (1ull << 30)

/* Section tags (ASCII, little-endian). */
#define RCGC_PROF_SEC_INFO 0x4f464e49u    /* "INFO" */
#define RCGC_PROF_SEC_MODS 0x53444f4du    /* "MODS" */
#define RCGC_PROF_SEC_STACKS 0x4b545453u  /* "STTK" */
#define RCGC_PROF_SEC_SAMPLES 0x504d4153u /* "SAMP" */
#define RCGC_PROF_SEC_END 0x21444e45u     /* "END!" */

/* Why the capture was written (INFO.state). */
enum rcgc_prof_state {
    RCGC_PROF_RUNNING = 0, /* a periodic flush: the process was still running */
    RCGC_PROF_EXITED = 1,  /* exit() or return from main: leaks are final */
    RCGC_PROF_UEXIT = 2,   /* _exit()/_Exit() */
    RCGC_PROF_SIGNAL = 3,  /* killed by a fatal signal (INFO.code) */
};

/* Per-stack statistics, in the order they are stored (all varints). */
enum rcgc_prof_stat {
    RCGC_PROF_ST_ALLOC_COUNT, /* allocation calls */
    RCGC_PROF_ST_ALLOC_BYTES, /* bytes requested by them */
    RCGC_PROF_ST_PEAK_COUNT,  /* blocks live at the heap peak */
    RCGC_PROF_ST_PEAK_BYTES,  /* bytes live at the heap peak */
    RCGC_PROF_ST_LIVE_COUNT,  /* blocks live when written (leaked at exit) */
    RCGC_PROF_ST_LIVE_BYTES,
    RCGC_PROF_ST_TEMP_COUNT,  /* freed before the thread allocated again */
    RCGC_PROF_ST_TEMP_BYTES,
    RCGC_PROF_NSTATS
};

/* The largest stack depth a capture holds. */
#define RCGC_PROF_MAX_FRAMES 256

uint32_t rcgc_prof_crc32(uint32_t crc, const void *data, size_t len);

#endif
