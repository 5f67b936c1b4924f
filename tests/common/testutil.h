/* Shared helpers for rcgc's cmocka tests. */
#ifndef RCGC_TESTUTIL_H
#define RCGC_TESTUTIL_H
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "rcgc.h"

/* Run fn in a forked child with stderr captured; returns the child's
 * stderr text (static buffer) and its wait status in *status. */
static inline const char *tu_run_child(void (*fn)(void *), void *arg, int *status)
{
    static char buf[65536];
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fds[0]);
    waitpid(pid, status, 0);
    return buf;
}

/* The exit status of a forked child that ended in rcgc_fatal. */
#define TU_FATAL_EXIT 77

static inline void tu_exit_on_fatal(const char *message, void *arg)
{
    (void)message;
    (void)arg;
    _exit(TU_FATAL_EXIT);
}

/* In a forked child: fatal errors end it with TU_FATAL_EXIT, and a crash
 * ends it by its signal (not through cmocka's handler, which would jump
 * back into the parent's copy of the test run). */
static inline void tu_child_init(void)
{
    rcgc_set_fatal_handler(tu_exit_on_fatal, NULL);
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

/* Run fn in a child that must die through the fatal handler; returns its
 * captured stderr. */
static inline const char *tu_run_fatal(void (*fn)(void *), void *arg)
{
    int status = 0;
    const char *out = tu_run_child(fn, arg, &status);
    assert_non_null(out);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != TU_FATAL_EXIT) {
        fprintf(stderr, "child status 0x%x, output:\n%s\n", status, out);
        fail_msg("the child did not end in rcgc_fatal");
    }
    return out;
}

/* A node with two reference slots, the shape the collector's numbers use. */
typedef struct tu_node {
    rcgc_object ob;
    rcgc_object *a;
    rcgc_object *b;
    long value;
} tu_node;

static inline int tu_node_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    tu_node *n = (tu_node *)self;
    int rc;
    if (n->a && (rc = visit(n->a, arg)) != 0)
        return rc;
    if (n->b && (rc = visit(n->b, arg)) != 0)
        return rc;
    return 0;
}

static inline int tu_node_clear(rcgc_object *self)
{
    tu_node *n = (tu_node *)self;
    RCGC_CLEAR(n->a);
    RCGC_CLEAR(n->b);
    return 0;
}

static const rcgc_type tu_node_type = {
    .name = "node",
    .size = sizeof(tu_node),
    .traverse = tu_node_traverse,
    .clear = tu_node_clear,
};

static inline tu_node *tu_new_node(rcgc_runtime *rt)
{
    return (tu_node *)rcgc_new(rt, &tu_node_type);
}
#endif
