/*
 * alloc_bench.c - rcgc-prof's allocation benchmark: the core issue's
 * workload (free + malloc pairs of random sizes 8..512 B over 1,000 live
 * blocks, 5M pairs by default), run unprofiled, under rcgc-prof and under
 * heaptrack by bench/prof/run.sh.
 *
 * usage: alloc_bench [PAIRS] [SEED]; prints a checksum so the work is not
 * optimized away and the profiled runs can be checked against the plain one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE 1000

static uint64_t rng_state;

static uint64_t next_rand(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* Kept out of line so the allocation has a caller frame of its own. */
__attribute__((noinline)) static unsigned char *make_block(size_t n)
{
    unsigned char *p = malloc(n);
    if (!p) {
        perror("malloc");
        exit(1);
    }
    p[0] = (unsigned char)n;
    return p;
}

int main(int argc, char **argv)
{
    long pairs = argc > 1 ? atol(argv[1]) : 5000000L;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 0x9E3779B97F4A7C15ull;
    if (!rng_state)
        rng_state = 1;
    static unsigned char *live[LIVE];
    for (int i = 0; i < LIVE; i++)
        live[i] = make_block(8 + next_rand() % 505);
    uint64_t sum = 0;
    for (long i = 0; i < pairs; i++) {
        uint64_t r = next_rand();
        size_t slot = (size_t)(r % LIVE);
        sum += live[slot][0];
        free(live[slot]);
        live[slot] = make_block(8 + (size_t)((r >> 32) % 505));
    }
    for (int i = 0; i < LIVE; i++)
        free(live[i]);
    printf("checksum %llu\n", (unsigned long long)sum);
    return 0;
}
