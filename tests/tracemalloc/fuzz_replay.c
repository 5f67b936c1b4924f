/* fuzz_replay.c - run every file of a corpus directory through the fuzz
 * target (a regression test in `make test`, with any compiler).
 *   fuzz_replay DIR          replay; prints "N passed, 0 failed"
 *   fuzz_replay --seed DIR   write the seed corpus: real dumps, cut and
 *                            flipped variants */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcgc.h"
#include "rcgc_tracemalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static int frames3(void *arg, rcgc_frame *fr, int max, int *total)
{
    (void)arg;
    static int k;
    int n = max < 3 ? max : 3;
    for (int i = 0; i < n; i++)
        fr[i] = (rcgc_frame){ i == 1 ? "lib/b.c" : "a.c", 10 * i + (k++ % 4) };
    *total = 5;
    return n;
}

static int seed(const char *dir)
{
    for (int variant = 0; variant < 2; variant++) {
        rcgc_runtime *rt = rcgc_runtime_new(NULL);
        if (variant)
            rcgc_tracemalloc_set_frames_callback(rt, frames3, NULL);
        rcgc_tracemalloc_start(rt, 3);
        void *p[40];
        for (int i = 0; i < 40; i++)
            p[i] = rcgc_mem_malloc(rt, (size_t)(1 + i * 23 % 900));
        rcgc_tracemalloc_track(rt, 3, 0x1234, 77);
        rcgc_snapshot *s;
        rcgc_tracemalloc_take_snapshot(rt, &s);
        void *d;
        size_t n;
        rcgc_snapshot_dump_buffer(s, &d, &n);
        char name[64];
        snprintf(name, sizeof name, "valid-%d", variant);
        write_file(dir, name, d, n);
        snprintf(name, sizeof name, "cut-%d", variant);
        write_file(dir, name, d, n / 2);
        unsigned char *b = d;
        b[n / 3] ^= 0x40;
        snprintf(name, sizeof name, "flip-%d", variant);
        write_file(dir, name, d, n);
        free(d);
        rcgc_snapshot_free(s);
        for (int i = 0; i < 40; i++)
            rcgc_mem_free(rt, p[i]);
        rcgc_runtime_free(rt);
    }
    write_file(dir, "empty", "", 0);
    write_file(dir, "magic-only", "RCGCSNAP", 8);
    return 0;
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    if (argc == 3 && strcmp(argv[1], "--seed") == 0)
        return seed(argv[2]);
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_replay DIR | fuzz_replay --seed DIR\n");
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 1;
    }
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        size_t cap = 1 << 16, len = 0;
        unsigned char *buf = malloc(cap);
        size_t got;
        while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
            len += got;
            if (len == cap)
                buf = realloc(buf, cap *= 2);
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    printf("%ld passed, 0 failed\n", n);
    return n > 0 ? 0 : 1;
}
