/* Ways to end: "uexit" (_exit(3)), "segv" (a null write), "term" (raise
 * SIGTERM), "sleep" (waits to be SIGKILLed), "abort".  Each first leaks 77
 * blocks from leak_site(). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *volatile keep[77]; /* volatile: the stores, so the mallocs, must stay */

__attribute__((noinline)) static void leak_site(void)
{
    for (int i = 0; i < 77; i++)
        keep[i] = malloc(100);
}

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "uexit";
    leak_site();
    printf("allocated\n");
    fflush(stdout);
    if (!strcmp(how, "uexit"))
        _exit(3);
    if (!strcmp(how, "segv"))
        *(volatile int *)(uintptr_t)8 = 1;
    if (!strcmp(how, "term"))
        raise(SIGTERM);
    if (!strcmp(how, "abort"))
        abort();
    if (!strcmp(how, "sleep"))
        for (;;)
            pause();
    return 0;
}
