/*
 * conf.c - the node types and helpers of the conformance suite (conf.h).
 */
#include "conf.h"

#include <regex.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

rcgc_runtime *conf_rt;
rcgc_list *conf_survivors;
int conf_cleaning;
int conf_errors;
char conf_first_error[256];

conf_log conf_del_calls;
conf_log conf_tp_del_calls;
conf_log conf_freed;

/* ------------------------------------------------------------------ logs */

void conf_log_add(conf_log *l, int id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        int *ids = realloc(l->ids, cap * sizeof *ids);
        if (!ids)
            abort();
        l->ids = ids;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
}

void conf_log_reset(conf_log *l)
{
    l->n = 0;
}

size_t conf_log_count(const conf_log *l, int id)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        k += l->ids[i] == id;
    return k;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int conf_log_same(const conf_log *l, const int *ids, size_t n)
{
    if (l->n != n)
        return 0;
    if (n == 0)
        return 1;
    int *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!a || !b)
        abort();
    memcpy(a, l->ids, n * sizeof *a);
    memcpy(b, ids, n * sizeof *b);
    qsort(a, n, sizeof *a, cmp_int);
    qsort(b, n, sizeof *b, cmp_int);
    int same = memcmp(a, b, n * sizeof *a) == 0;
    free(a);
    free(b);
    return same;
}

void conf_error(const char *fmt, ...)
{
    if (conf_errors++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(conf_first_error, sizeof conf_first_error, fmt, ap);
        va_end(ap);
    }
}

/* ------------------------------------------------------------ node types */

int conf_node_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    cnode *n = (cnode *)self;
    for (int i = 0; i < CONF_SLOTS; i++) {
        if (n->slot[i]) {
            int r = visit(n->slot[i], arg);
            if (r)
                return r;
        }
    }
    for (size_t i = 0; i < n->nitems; i++) {
        if (n->items[i]) {
            int r = visit(n->items[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

int conf_node_clear(rcgc_object *self)
{
    cnode *n = (cnode *)self;
    for (int i = 0; i < CONF_SLOTS; i++)
        RCGC_CLEAR(n->slot[i]);
    for (size_t i = 0; i < n->nitems; i++)
        RCGC_CLEAR(n->items[i]);
    return 0;
}

void conf_node_dealloc(rcgc_object *self)
{
    conf_log_add(&conf_freed, ((cnode *)self)->id);
}

/* The finalizer protocol of NonGCSimpleBase.__del__: record the call, check
 * sanity (the node's hook), then the side effect (the caller). */
static int fin_common(rcgc_object *self)
{
    cnode *n = (cnode *)self;
    if (conf_cleaning)
        return 0;
    conf_log_add(&conf_del_calls, n->id);
    if (n->on_finalize)
        n->on_finalize(n);
    return 1;
}

static void fin_plain(rcgc_object *self)
{
    (void)fin_common(self);
}

static void resurrect(rcgc_object *self)
{
    if (rcgc_list_append(conf_survivors, self) != RCGC_OK)
        conf_error("resurrect: append failed");
}

static void fin_resurrect(rcgc_object *self)
{
    if (fin_common(self))
        resurrect(self);
}

static void fin_suicidal(rcgc_object *self)
{
    if (fin_common(self)) {
        cnode *n = (cnode *)self;
        n->suicided = 1;
        for (int i = 0; i < CONF_SLOTS; i++)
            RCGC_CLEAR(n->slot[i]);
    }
}

static int legacy_common(rcgc_object *self)
{
    cnode *n = (cnode *)self;
    if (conf_cleaning)
        return 0;
    conf_log_add(&conf_tp_del_calls, n->id);
    if (n->on_legacy_del)
        n->on_legacy_del(n);
    return 1;
}

static void legacy_plain(rcgc_object *self)
{
    (void)legacy_common(self);
}

static void legacy_resurrect(rcgc_object *self)
{
    if (legacy_common(self))
        resurrect(self);
}

static int opaque_clear(rcgc_object *self)
{
    RCGC_CLEAR(((cnode *)self)->slot[0]);
    return 0;
}

static void opaque_dealloc(rcgc_object *self)
{
    /* Without a traverse the type may not be cleared by rcgc; drop the hidden
     * reference here too (RCGC_CLEAR makes the second drop a no-op). */
    RCGC_CLEAR(((cnode *)self)->slot[0]);
    conf_node_dealloc(self);
}

#define NODE_TYPE(var, nm, fin, leg)                                          \
    const rcgc_type var = {                                                   \
        .name = nm, .size = sizeof(cnode), .itemsize = 0, .flags = 0,         \
        .traverse = conf_node_traverse, .clear = conf_node_clear, .finalize = fin,      \
        .legacy_del = leg, .dealloc = conf_node_dealloc }

NODE_TYPE(conf_plain_type, "Plain", NULL, NULL);
NODE_TYPE(conf_fin_type, "Simple", fin_plain, NULL);
NODE_TYPE(conf_res_type, "SimpleResurrector", fin_resurrect, NULL);
NODE_TYPE(conf_suicidal_type, "Suicidal", fin_suicidal, NULL);
NODE_TYPE(conf_legacy_type, "Uncollectable", NULL, legacy_plain);
NODE_TYPE(conf_legacy_fin_type, "Legacy", fin_plain, legacy_plain);
NODE_TYPE(conf_legacy_res_type, "LegacyResurrector", fin_plain, legacy_resurrect);

#define LEAF_TYPE(var, nm, fin)                                               \
    const rcgc_type var = {                                                   \
        .name = nm, .size = sizeof(cnode), .itemsize = 0, .flags = 0,         \
        .traverse = NULL, .clear = NULL, .finalize = fin,                     \
        .legacy_del = NULL, .dealloc = conf_node_dealloc }

LEAF_TYPE(conf_leaf_type, "Leaf", NULL);
LEAF_TYPE(conf_leaf_fin_type, "NonGC", fin_plain);
LEAF_TYPE(conf_leaf_res_type, "NonGCResurrector", fin_resurrect);

const rcgc_type conf_opaque_type = {
    .name = "ContainerNoGC", .size = sizeof(cnode), .itemsize = 0, .flags = 0,
    .traverse = NULL, .clear = opaque_clear, .finalize = NULL,
    .legacy_del = NULL, .dealloc = opaque_dealloc };

const rcgc_type conf_var_type = {
    .name = "ListSubclass", .size = sizeof(cnode),
    .itemsize = sizeof(rcgc_object *), .flags = 0,
    .traverse = conf_node_traverse, .clear = conf_node_clear, .finalize = NULL,
    .legacy_del = NULL, .dealloc = conf_node_dealloc };

cnode *conf_new(const rcgc_type *type, int id)
{
    cnode *n = (cnode *)rcgc_new(conf_rt, type);
    assert_non_null(n);
    n->id = id;
    return n;
}

cnode *conf_new_var(size_t nitems, int id)
{
    cnode *n = (cnode *)rcgc_new_var(conf_rt, &conf_var_type, nitems);
    assert_non_null(n);
    n->id = id;
    n->nitems = nitems;
    return n;
}

void conf_set(cnode *node, int i, void *o)
{
    rcgc_object *v = (rcgc_object *)o;
    rcgc_xincref(v);
    RCGC_SETREF(node->slot[i], v);
}

void conf_unset(cnode *node, int i)
{
    RCGC_CLEAR(node->slot[i]);
}

int conf_list_has(const rcgc_list *l, const void *o)
{
    return rcgc_list_index(l, (const rcgc_object *)o) >= 0;
}

int conf_is_node(const void *o)
{
    const rcgc_type *t = ((const rcgc_object *)o)->type;
    return t->dealloc == conf_node_dealloc || t->dealloc == opaque_dealloc;
}

long conf_list_find_id(const rcgc_list *l, int id)
{
    size_t n = rcgc_list_len(l);
    for (size_t i = 0; i < n; i++) {
        rcgc_object *o = rcgc_list_get(l, i);
        if (o && conf_is_node(o) && ((cnode *)o)->id == id)
            return (long)i;
    }
    return -1;
}

void conf_wr_cb(rcgc_weakref *w, void *arg)
{
    conf_cb *cb = arg;
    cb->calls++;
    cb->last = w;
    if (rcgc_weakref_peek(w) != NULL)
        cb->saw_live++;
}

/* -------------------------------------------------------------- fixtures */

static int setup_common(int disabled)
{
    rcgc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.gc_disabled = disabled;
    conf_log_reset(&conf_del_calls);
    conf_log_reset(&conf_tp_del_calls);
    conf_log_reset(&conf_freed);
    conf_cleaning = 0;
    conf_errors = 0;
    conf_first_error[0] = '\0';
    conf_rt = rcgc_runtime_new(&cfg);
    if (!conf_rt)
        return -1;
    conf_survivors = rcgc_list_new(conf_rt);
    return conf_survivors ? 0 : -1;
}

int conf_setup(void **state)
{
    (void)state;
    return setup_common(1);
}

int conf_setup_enabled(void **state)
{
    (void)state;
    return setup_common(0);
}

int conf_teardown(void **state)
{
    (void)state;
    int errors = conf_errors;
    conf_cleaning = 1;
    if (conf_survivors) {
        rcgc_list_clear(conf_survivors);
        RCGC_CLEAR(conf_survivors);
    }
    rcgc_gc_set_debug(conf_rt, 0);
    rcgc_list_clear(rcgc_gc_garbage(conf_rt));
    rcgc_gc_collect(conf_rt, 2);
    rcgc_runtime_free(conf_rt);
    conf_rt = NULL;
    conf_cleaning = 0;
    if (errors)
        fprintf(stderr, "conformance: %d sanity error(s), first: %s\n", errors,
                conf_first_error);
    return errors ? -1 : 0;
}

/* -------------------------------------------------------- stderr capture */

void conf_capture_start(conf_capture *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    if (!c->tmp)
        abort();
    c->saved_fd = dup(2);
    if (c->saved_fd < 0 || dup2(fileno(c->tmp), 2) < 0)
        abort();
}

char *conf_capture_stop(conf_capture *c)
{
    fflush(stderr);
    if (dup2(c->saved_fd, 2) < 0)
        abort();
    close(c->saved_fd);
    long len;
    if (fseek(c->tmp, 0, SEEK_END) != 0 || (len = ftell(c->tmp)) < 0)
        abort();
    rewind(c->tmp);
    char *text = malloc((size_t)len + 1);
    if (!text)
        abort();
    size_t got = fread(text, 1, (size_t)len, c->tmp);
    text[got] = '\0';
    fclose(c->tmp);
    return text;
}

int conf_run_child(void (*fn)(void *arg), void *arg, char **err)
{
    int fds[2];
    if (pipe(fds) != 0)
        abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        /* cmocka's handlers would longjmp back into the test runner. */
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        fn(arg);
        fflush(NULL);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                abort();
            buf = nb;
        }
        ssize_t r = read(fds[0], buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fds[0]);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        abort();
    *err = buf;
    return status;
}

int conf_match(const char *text, const char *regex)
{
    regex_t re;
    if (regcomp(&re, regex, REG_EXTENDED | REG_NEWLINE | REG_NOSUB) != 0)
        return 0;
    int ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

size_t conf_count_substr(const char *text, const char *needle)
{
    size_t k = 0, len = strlen(needle);
    if (len == 0)
        return 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + len, needle))
        k++;
    return k;
}
