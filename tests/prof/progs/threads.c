/* Four threads allocate and free concurrently; each keeps (leaks) 100
 * blocks.  The test checks the exact counts attributed to worker(). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define ROUNDS 10000

/* Every block escapes through here, so the compiler keeps each malloc. */
static void *volatile sink;

static void *worker(void *arg)
{
    long id = (long)arg, sum = 0;
    for (int i = 0; i < ROUNDS; i++) {
        char *p = malloc((size_t)(16 + (i + id) % 200));
        p[0] = (char)i;
        sink = p;
        sum += p[0];
        if (i % 100 != 0)
            free(p);
    }
    return (void *)sum;
}

int main(void)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    long total = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    printf("threads done %ld\n", total);
    return 0;
}
