/* fork and exec under the profiler: the parent allocates at parent_site(),
 * its child at child_site() and then execs this program again ("exec"),
 * which allocates at exec_site().  Each process must get its own capture. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile keep[2000]; /* volatile: the stores, so the mallocs, must stay */

__attribute__((noinline)) static void parent_site(void)
{
    for (int i = 0; i < 1000; i++)
        keep[i] = malloc(64);
}

__attribute__((noinline)) static void child_site(void)
{
    for (int i = 0; i < 500; i++)
        keep[1000 + i] = malloc(32);
}

__attribute__((noinline)) static void exec_site(void)
{
    for (int i = 0; i < 300; i++)
        keep[i] = malloc(16);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "exec")) {
        exec_site();
        printf("exec'd image done\n");
        return 0;
    }
    parent_site();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        child_site();
        execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    printf("parent done, child status %d\n", WEXITSTATUS(st));
    return 0;
}
