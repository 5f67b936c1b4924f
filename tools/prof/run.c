/*
 * run.c - `rcgc-prof run`: start a program with librcgc-prof.so preloaded
 * and hand back its exit status unchanged.
 */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef RCGC_PROF_PRELOAD_REL
#define RCGC_PROF_PRELOAD_REL "../lib/rcgc/librcgc-prof.so"
#endif

/* The preload library: $RCGC_PROF_PRELOAD, else next to this binary as
 * installed (bin/../lib/rcgc/), else as laid out in a build tree. */
int prof_find_preload(char *out, size_t cap)
{
    const char *env = getenv("RCGC_PROF_PRELOAD");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return access(out, R_OK) == 0 ? 0 : -1;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = 0;
    const char *cands[] = { RCGC_PROF_PRELOAD_REL, "../lib/rcgc/librcgc-prof.so" };
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", self, cands[i]);
        char real[PATH_MAX];
        if (realpath(p, real) && access(real, R_OK) == 0) {
            snprintf(out, cap, "%s", real);
            return 0;
        }
    }
    return -1;
}

static void usage_run(void)
{
    fprintf(stderr, "usage: rcgc-prof run [-o FILE] [--native-frames N] [--interval MS] [-q] "
                    "[--unwind=libunwind] -- PROGRAM [ARGS...]\n");
}

/* Remove captures of an earlier run with the same name (FILE.<pid>). */
static void remove_stale(const char *out)
{
    char dir[PATH_MAX * 2];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : out;
    if (slash)
        *slash = 0;
    DIR *d = opendir(slash ? dir : ".");
    if (!d)
        return;
    size_t bl = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, bl) || e->d_name[bl] != '.')
            continue;
        const char *p = e->d_name + bl + 1;
        if (!*p)
            continue;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p && strcmp(p, ".tmp"))
            continue;
        char full[PATH_MAX * 3];
        snprintf(full, sizeof full, "%s/%s", slash ? dir : ".", e->d_name);
        unlink(full);
    }
    closedir(d);
}

static int count_children(const char *out, char *first, size_t cap)
{
    char dir[PATH_MAX * 2];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : out;
    if (slash)
        *slash = 0;
    DIR *d = opendir(slash ? dir : ".");
    if (!d)
        return 0;
    size_t bl = strlen(base);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, bl) || e->d_name[bl] != '.')
            continue;
        const char *p = e->d_name + bl + 1;
        if (!*p || strspn(p, "0123456789") != strlen(p))
            continue;
        if (!n && first)
            snprintf(first, cap, "%s/%s", slash ? dir : ".", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

int prof_cmd_run(int argc, char **argv)
{
    const char *out = NULL;
    int frames = 32, interval = 10, quiet = 0, slow = 0, i = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--native-frames") && i + 1 < argc) {
            frames = atoi(argv[++i]);
        } else if (!strcmp(a, "--interval") && i + 1 < argc) {
            interval = atoi(argv[++i]);
        } else if (!strcmp(a, "--unwind=libunwind")) {
            slow = 1; /* every stack by unw_backtrace: slower, for checking */
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-') {
            fprintf(stderr, "rcgc-prof run: unknown option %s\n", a);
            usage_run();
            return 2;
        } else {
            break;
        }
    }
    if (i >= argc) {
        usage_run();
        return 2;
    }
    if (frames < 1 || frames > 256 || interval < 1 || interval > 60000) {
        fprintf(stderr, "rcgc-prof run: --native-frames takes 1..256, --interval 1..60000\n");
        return 2;
    }
    char preload[PATH_MAX];
    if (prof_find_preload(preload, sizeof preload) < 0) {
        fprintf(stderr, "rcgc-prof run: cannot find librcgc-prof.so (set RCGC_PROF_PRELOAD)\n");
        return 2;
    }
    if (strpbrk(preload, " :")) {
        fprintf(stderr, "rcgc-prof run: %s: LD_PRELOAD cannot hold a path with ' ' or ':'\n",
                preload);
        return 2;
    }
    char **prog = argv + i;

    /* The output path is made absolute: the program may change directory. */
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
        perror("rcgc-prof run: getcwd");
        return 2;
    }
    char outpath[PATH_MAX * 2];
    int fds[2];
    if (pipe(fds) < 0) {
        perror("rcgc-prof run: pipe");
        return 2;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("rcgc-prof run: fork");
        return 2;
    }
    if (pid == 0) {
        close(fds[0]);
        pid_t me = getpid();
        if (out)
            snprintf(outpath, sizeof outpath, "%s%s%s", out[0] == '/' ? "" : cwd,
                     out[0] == '/' ? "" : "/", out);
        else {
            const char *b = strrchr(prog[0], '/');
            snprintf(outpath, sizeof outpath, "%s/rcgc-prof.%s.%d.cap", cwd, b ? b + 1 : prog[0],
                     (int)me);
        }
        remove_stale(outpath);
        unlink(outpath);
        /* tell the parent where the capture goes */
        ssize_t w = write(fds[1], outpath, strlen(outpath) + 1);
        (void)w;
        close(fds[1]);
        char env[PATH_MAX * 2 + 128];
        snprintf(env, sizeof env, "frames=%d,interval=%d,root=%d,%sout=%s", frames, interval,
                 (int)me, slow ? "unwind=libunwind," : "", outpath);
        setenv("RCGC_PROF", env, 1);
        const char *old = getenv("LD_PRELOAD");
        char pre[PATH_MAX * 2 + 8192];
        if (old && *old)
            snprintf(pre, sizeof pre, "%s:%s", preload, old);
        else
            snprintf(pre, sizeof pre, "%s", preload);
        setenv("LD_PRELOAD", pre, 1);
        execvp(prog[0], prog);
        fprintf(stderr, "rcgc-prof run: cannot run %s: %s\n", prog[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got < sizeof outpath - 1 &&
           (r = read(fds[0], outpath + got, sizeof outpath - 1 - got)) > 0)
        got += (size_t)r;
    outpath[got] = 0;
    close(fds[0]);
    /* Like a shell waiting for its job: the terminal's ^C and ^\ go to the
     * program; we wait for it and then end the same way. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("rcgc-prof run: waitpid");
            return 2;
        }
    }
    if (!quiet) {
        struct stat st;
        char first[PATH_MAX * 3];
        int kids = count_children(outpath, first, sizeof first);
        if (stat(outpath, &st) == 0)
            fprintf(stderr, "rcgc-prof: wrote %s (%lld bytes)", outpath, (long long)st.st_size);
        else
            fprintf(stderr, "rcgc-prof: %s has no capture (a static or setuid program?)",
                    prog[0]);
        if (kids)
            fprintf(stderr, " and %d child capture%s (%s...)", kids, kids > 1 ? "s" : "",
                    first);
        fprintf(stderr, "\n");
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        struct rlimit no_core = { 0, 0 }; /* the program dumped its own core */
        setrlimit(RLIMIT_CORE, &no_core);
        signal(sig, SIG_DFL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        kill(getpid(), sig);
        return 128 + sig;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
