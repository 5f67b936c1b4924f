/*
 * test_capture.c - rcgc-prof's capture on programs that use threads, fork,
 * exec, _exit, fatal signals and the whole malloc family: their behaviour
 * (output, exit status) must not change, and what the capture says must be
 * exact.  The programs are tests/prof/progs/*.c; rcgc-prof runs them.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture.h"

static char workdir[] = "/tmp/rcgc-prof-test-XXXXXX";

/* Run argv; stdout+stderr into out (NUL-terminated); returns the raw wait
 * status.  If pgid_out is set the child gets its own process group and the
 * call returns at once (status 0), leaving the child running. */
static int run(char *const argv[], char *out, size_t cap, pid_t *pgid_out)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        if (pgid_out)
            setpgid(0, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(126);
    }
    close(fds[1]);
    if (pgid_out) {
        *pgid_out = pid;
        /* the caller reads from the pipe: hand it over in out[0..] as fd */
        snprintf(out, cap, "%d", fds[0]);
        return 0;
    }
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], out + n, cap - 1 - n)) > 0 && n + 1 < cap)
        n += (size_t)r;
    out[n] = 0;
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    return st;
}

static char *cap_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 512, "%s/%s", workdir, name);
    return b;
}

/* Profile PROG ARGS into work/NAME.cap; also run it plainly and check the
 * outputs and wait statuses are identical.  Returns the wait status. */
static int profile(const char *name, const char *prog, const char *arg)
{
    char plain_out[8192], prof_out[8192];
    char *plain[] = { (char *)prog, (char *)arg, NULL };
    int st_plain = run(plain, plain_out, sizeof plain_out, NULL);
    char *argv[] = { RCGC_PROF_BIN, "run", "-q", "-o", cap_path(name), "--", (char *)prog,
                     (char *)arg, NULL };
    int st = run(argv, prof_out, sizeof prof_out, NULL);
    assert_string_equal(plain_out, prof_out);
    assert_int_equal(st_plain, st);
    return st;
}

static void load(const char *path, struct prof_capture *c)
{
    char err[512];
    int rc = prof_capture_load(path, c, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
}

/* Sum a statistic over the stacks that pass through function `fn`. */
static uint64_t sum_at(struct prof_capture *c, struct prof_symtab *sym, const char *fn, int stat)
{
    uint64_t total = 0;
    for (size_t i = 0; i < c->n_stacks; i++)
        for (uint32_t k = 0; k < c->stacks[i].nframes; k++) {
            const struct prof_frame *f = prof_symbolize(sym, c->stacks[i].frames[k]);
            if (f->func && !strcmp(f->func, fn)) {
                total += c->stacks[i].st[stat];
                break;
            }
        }
    return total;
}

static void test_threads(void **state)
{
    (void)state;
    int st = profile("threads.cap", PROGS "/prof_threads", NULL);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct prof_capture c;
    load(cap_path("threads.cap"), &c);
    struct prof_symtab *sym = prof_symtab_new(&c);
    assert_int_equal(c.state, RCGC_PROF_EXITED);
    assert_int_equal(sum_at(&c, sym, "worker", RCGC_PROF_ST_ALLOC_COUNT), 40000);
    assert_int_equal(sum_at(&c, sym, "worker", RCGC_PROF_ST_LIVE_COUNT), 400);
    assert_true(c.alloc_calls >= 40000);
    assert_int_equal(c.alloc_calls - c.free_calls, c.cur_count);
    prof_symtab_free(sym);
    prof_capture_free(&c);
}

static void test_fork_exec(void **state)
{
    (void)state;
    int st = profile("fork.cap", PROGS "/prof_forker", NULL);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct prof_capture c;
    load(cap_path("fork.cap"), &c);
    struct prof_symtab *sym = prof_symtab_new(&c);
    assert_int_equal(sum_at(&c, sym, "parent_site", RCGC_PROF_ST_ALLOC_COUNT), 1000);
    assert_int_equal(sum_at(&c, sym, "child_site", RCGC_PROF_ST_ALLOC_COUNT), 0);
    assert_true(c.is_root);
    prof_symtab_free(sym);
    prof_capture_free(&c);
    /* the child's capture: written by the image it exec'd, same pid */
    char cmd[1024], child[600] = "";
    snprintf(cmd, sizeof cmd, "ls %s/fork.cap.* 2>/dev/null", workdir);
    FILE *ls = popen(cmd, "r");
    int n = 0;
    while (fgets(child, sizeof child, ls))
        n++;
    pclose(ls);
    assert_int_equal(n, 1);
    child[strcspn(child, "\n")] = 0;
    load(child, &c);
    sym = prof_symtab_new(&c);
    assert_false(c.is_root);
    assert_int_equal(sum_at(&c, sym, "exec_site", RCGC_PROF_ST_ALLOC_COUNT), 300);
    assert_int_equal(c.state, RCGC_PROF_EXITED);
    prof_symtab_free(sym);
    prof_capture_free(&c);
}

static void check_leak77(const char *name, int want_state, int want_code)
{
    struct prof_capture c;
    load(cap_path(name), &c);
    struct prof_symtab *sym = prof_symtab_new(&c);
    assert_int_equal(c.state, want_state);
    if (want_state != RCGC_PROF_RUNNING)
        assert_int_equal(c.code, want_code);
    assert_int_equal(sum_at(&c, sym, "leak_site", RCGC_PROF_ST_LIVE_COUNT), 77);
    assert_int_equal(sum_at(&c, sym, "leak_site", RCGC_PROF_ST_LIVE_BYTES), 7700);
    prof_symtab_free(sym);
    prof_capture_free(&c);
}

static void test_uexit(void **state)
{
    (void)state;
    int st = profile("uexit.cap", PROGS "/prof_ending", "uexit");
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    check_leak77("uexit.cap", RCGC_PROF_UEXIT, 3);
}

static void test_segv(void **state)
{
    (void)state;
    int st = profile("segv.cap", PROGS "/prof_ending", "segv");
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    check_leak77("segv.cap", RCGC_PROF_SIGNAL, SIGSEGV);
}

static void test_term(void **state)
{
    (void)state;
    int st = profile("term.cap", PROGS "/prof_ending", "term");
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    check_leak77("term.cap", RCGC_PROF_SIGNAL, SIGTERM);
}

static void test_abort(void **state)
{
    (void)state;
    int st = profile("abort.cap", PROGS "/prof_ending", "abort");
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    check_leak77("abort.cap", RCGC_PROF_SIGNAL, SIGABRT);
}

/* SIGKILL cannot be caught: the last periodic flush must be there. */
static void test_sigkill(void **state)
{
    (void)state;
    char fdbuf[32];
    pid_t pg;
    char *argv[] = { RCGC_PROF_BIN, "run", "-q", "--interval", "5", "-o", cap_path("kill.cap"),
                     "--", PROGS "/prof_ending", "sleep", NULL };
    run(argv, fdbuf, sizeof fdbuf, &pg);
    int fd = atoi(fdbuf);
    char line[64];
    ssize_t n = read(fd, line, sizeof line - 1); /* "allocated\n" */
    assert_true(n > 0);
    struct timespec ts = { 0, 700 * 1000000L }; /* a few flush periods */
    nanosleep(&ts, NULL);
    kill(-pg, SIGKILL);
    int st;
    waitpid(pg, &st, 0);
    close(fd);
    check_leak77("kill.cap", RCGC_PROF_RUNNING, 0);
}

static void test_malloc_family(void **state)
{
    (void)state;
    int st = profile("aligned.cap", PROGS "/prof_aligned", NULL);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct prof_capture c;
    load(cap_path("aligned.cap"), &c);
    /* posix_memalign, aligned_alloc, memalign, realloc, valloc, pvalloc,
     * calloc, reallocarray, malloc(0): at least 9 calls from main */
    struct prof_symtab *sym = prof_symtab_new(&c);
    assert_true(sum_at(&c, sym, "main", RCGC_PROF_ST_ALLOC_COUNT) >= 9);
    /* nothing left but stdout's buffer */
    assert_int_equal(sum_at(&c, sym, "main", RCGC_PROF_ST_LIVE_COUNT) -
                         sum_at(&c, sym, "_IO_file_doallocate", RCGC_PROF_ST_LIVE_COUNT),
                     0);
    prof_symtab_free(sym);
    prof_capture_free(&c);
}

/* Python asks whether SIGINT is at its default before installing its
 * KeyboardInterrupt handler: the profiler must not change the answer. */
static void test_signal_dispositions_hidden(void **state)
{
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0)
        skip();
    int st = profile("py.cap", "/usr/bin/python3",
                     "-cimport signal; print(signal.getsignal(signal.SIGINT), "
                     "signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGSEGV))");
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_loader_errors(void **state)
{
    (void)state;
    struct prof_capture c;
    char err[512];
    assert_int_equal(prof_capture_load(cap_path("does-not-exist"), &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
    /* a good capture, then damaged copies */
    FILE *f = fopen(cap_path("threads.cap"), "rb");
    if (!f)
        skip();
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(prof_capture_parse(buf, n, &c, err, sizeof err), 0);
    prof_capture_free(&c);
    assert_int_equal(prof_capture_parse(buf, n / 2, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    prof_capture_free(&c);
    buf[n - 3] ^= 0x40;
    assert_int_equal(prof_capture_parse(buf, n, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "checksum"));
    prof_capture_free(&c);
    assert_int_equal(prof_capture_parse((const unsigned char *)"hello", 5, &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "not an rcgc-prof capture"));
    prof_capture_free(&c);
}

int main(void)
{
    if (!mkdtemp(workdir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_fork_exec),
        cmocka_unit_test(test_uexit),
        cmocka_unit_test(test_segv),
        cmocka_unit_test(test_term),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_sigkill),
        cmocka_unit_test(test_malloc_family),
        cmocka_unit_test(test_signal_dispositions_hidden),
        cmocka_unit_test(test_loader_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", workdir);
        if (system(cmd) != 0)
            rc = 1;
    }
    return rc;
}
