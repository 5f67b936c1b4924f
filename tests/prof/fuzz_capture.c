/*
 * fuzz_capture.c - the capture loader must answer any bytes with an error
 * message or a capture, never a crash, a hang or an absurd allocation.
 *
 * LLVMFuzzerTestOneInput is a libFuzzer target (build with clang
 * -fsanitize=fuzzer,address -DRCGC_PROF_LIBFUZZER).  Each input is parsed
 * as it is, and again with its checksums repaired, so that mutations reach
 * the section parsers instead of stopping at the CRC.
 *
 * Without libFuzzer, main() replays a corpus (tests/prof/corpus/, run by
 * make test, under ASan in the sanitizer build) and then, for each file,
 * makes seeded structure-aware mutations: the body is decompressed, bytes
 * are flipped, inserted, deleted or the body cut, and the result is
 * re-wrapped uncompressed with valid checksums.
 *
 * usage: fuzz_capture [-m MUTATIONS] FILE_OR_DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "capture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put32(unsigned char *d, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        d[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *d, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        d[i] = (unsigned char)(v >> (8 * i));
}

static void parse_once(const uint8_t *data, size_t size)
{
    struct prof_capture c;
    char err[256];
    if (prof_capture_parse(data, size, &c, err, sizeof err) == 0) {
        /* walk what was loaded, as a report would */
        uint64_t sum = 0;
        for (size_t i = 0; i < c.n_stacks; i++)
            for (uint32_t k = 0; k < c.stacks[i].nframes; k++)
                sum += c.stacks[i].frames[k];
        for (size_t i = 0; i < c.n_mods; i++)
            sum += strlen(c.mods[i].path) + c.mods[i].build_id_len;
        for (size_t i = 0; i < c.n_samples; i++)
            sum += c.samples[i].heap;
        (void)sum;
    } else if (!err[0]) {
        abort(); /* every failure must say why */
    }
    prof_capture_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_once(data, size);
    if (size >= RCGC_PROF_HEADER_SIZE && size < (1u << 24)) {
        unsigned char *fixed = malloc(size);
        if (!fixed)
            return 0;
        memcpy(fixed, data, size);
        put64(fixed + 24, size - RCGC_PROF_HEADER_SIZE);
        put32(fixed + 32,
              rcgc_prof_crc32(0, fixed + RCGC_PROF_HEADER_SIZE, size - RCGC_PROF_HEADER_SIZE));
        put32(fixed + 36, rcgc_prof_crc32(0, fixed, 36));
        parse_once(fixed, size);
        free(fixed);
    }
    return 0;
}

#ifndef RCGC_PROF_LIBFUZZER

static uint64_t rng = 0x853c49e6748fea9bull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* An uncompressed capture around `body`, checksums valid. */
static unsigned char *wrap(const unsigned char *body, size_t n, size_t *out_len)
{
    unsigned char *f = malloc(n + RCGC_PROF_HEADER_SIZE);
    memcpy(f, RCGC_PROF_MAGIC, 8);
    put32(f + 8, RCGC_PROF_VERSION);
    put32(f + 12, 0);
    put64(f + 16, n);
    put64(f + 24, n);
    memcpy(f + RCGC_PROF_HEADER_SIZE, body, n);
    put32(f + 32, rcgc_prof_crc32(0, body, n));
    put32(f + 36, rcgc_prof_crc32(0, f, 36));
    *out_len = n + RCGC_PROF_HEADER_SIZE;
    return f;
}

static void mutate_file(const unsigned char *data, size_t size, int rounds)
{
    if (size < RCGC_PROF_HEADER_SIZE || memcmp(data, RCGC_PROF_MAGIC, 8))
        return;
    uint64_t raw = 0;
    for (int i = 0; i < 8; i++)
        raw |= (uint64_t)data[16 + i] << (8 * i);
    if (raw > (1u << 24))
        return;
    unsigned char *body = malloc(raw + 1);
    size_t n = (size_t)raw;
    if (data[12] & RCGC_PROF_F_ZSTD) {
        size_t got = ZSTD_decompress(body, n, data + RCGC_PROF_HEADER_SIZE,
                                     size - RCGC_PROF_HEADER_SIZE);
        if (ZSTD_isError(got) || got != n) {
            free(body);
            return;
        }
    } else {
        if (size - RCGC_PROF_HEADER_SIZE != n) {
            free(body);
            return;
        }
        memcpy(body, data + RCGC_PROF_HEADER_SIZE, n);
    }
    unsigned char *m = malloc(n + 64);
    for (int r = 0; r < rounds; r++) {
        memcpy(m, body, n);
        size_t len = n;
        int edits = 1 + (int)(next() % 4);
        for (int e = 0; e < edits && len; e++) {
            size_t at = (size_t)(next() % len);
            switch (next() % 5) {
            case 0: /* flip a bit */
                m[at] ^= (unsigned char)(1u << (next() % 8));
                break;
            case 1: /* an extreme byte: long varints, huge counts */
                m[at] = (next() & 1) ? 0xff : 0x7f;
                break;
            case 2: /* cut */
                len = at;
                break;
            case 3: /* delete one byte */
                memmove(m + at, m + at + 1, len - at - 1);
                len--;
                break;
            default: /* insert one byte */
                if (len < n + 60) {
                    memmove(m + at + 1, m + at, len - at);
                    m[at] = (unsigned char)next();
                    len++;
                }
                break;
            }
        }
        size_t flen;
        unsigned char *f = wrap(m, len, &flen);
        parse_once(f, flen);
        free(f);
    }
    free(m);
    free(body);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(d, 1, n > 0 ? (size_t)n : 0, f);
    fclose(f);
    return d;
}

static int files;

static void one(const char *path, int rounds)
{
    size_t len;
    unsigned char *d = read_file(path, &len);
    if (!d) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    LLVMFuzzerTestOneInput(d, len);
    /* every prefix of a small file: truncation at each byte */
    if (len <= 4096)
        for (size_t k = 0; k < len; k++)
            parse_once(d, k);
    mutate_file(d, len, rounds);
    free(d);
    files++;
}

int main(int argc, char **argv)
{
    int rounds = 2000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            continue;
        }
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "cannot stat %s\n", argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                    continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                one(p, rounds);
            }
            if (d)
                closedir(d);
        } else {
            one(argv[i], rounds);
        }
    }
    printf("fuzz_capture: %d files replayed, %d mutations each; no crash\n", files, rounds);
    printf("%d passed, 0 failed\n", files);
    return files ? 0 : 1;
}
#endif
