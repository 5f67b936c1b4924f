/*
 * conf.h - shared node types and helpers for the conformance suite.
 *
 * The suite ports CPython 3.11's Lib/test/test_gc.py, test_finalization.py
 * and the collector tests of test_weakref.py to C (docs/conformance.md has
 * the table).  Python tests build graphs out of lists, dicts, instances and
 * classes; here every such object is a `cnode`: a collectable object with a
 * few reference slots (and, for the list-subclass stand-in, inline items).
 * The node's type chooses its finalization behaviour, mirroring the helper
 * classes of the Python tests:
 *
 *   type                  Python stand-in            behaviour
 *   conf_plain_type       instance, dict, tuple      none
 *   conf_fin_type         Simple (has __del__)       finalize logs its id
 *   conf_res_type         SimpleResurrector          finalize logs, resurrects
 *                                                    into conf_survivors
 *   conf_suicidal_type    SuicidalSelfCycle/Chained  finalize logs, drops its
 *                                                    own references
 *   conf_legacy_type      with_tp_del class          legacy_del logs (tp_del)
 *   conf_legacy_fin_type  Legacy                     finalize + legacy_del log
 *   conf_legacy_res_type  LegacyResurrector          both log; legacy_del
 *                                                    resurrects
 *   conf_leaf_type        int, str (not tracked)     none; no traverse
 *   conf_leaf_fin_type    NonGC (without_gc)         finalize logs; no traverse
 *   conf_leaf_res_type    NonGCResurrector           finalize resurrects
 *   conf_opaque_type      _testcapi.ContainerNoGC    holds slot[0] but does
 *                                                    not traverse it
 *   conf_var_type         a list subclass instance   slots + inline items
 *
 * Every deallocation is logged in conf_freed; finalizers and legacy
 * finalizers in conf_del_calls and conf_tp_del_calls (the Python tests'
 * del_calls and tp_del_calls).  A node may carry extra per-test behaviour in
 * on_finalize / on_legacy_del, run after the logging.  While conf_cleaning is
 * set (teardown, like NonGCSimpleBase._cleaning) nothing is logged and no
 * side effect runs.
 */
#ifndef CONF_H
#define CONF_H

#include <stddef.h>
#include <stdio.h>

#include "rcgc.h"

#define CONF_SLOTS 4

typedef struct cnode cnode;
typedef void (*cnode_hook)(cnode *self);

struct cnode {
    rcgc_object ob;
    rcgc_object *slot[CONF_SLOTS];
    int id;                   /* chosen by the test; leaves: their value */
    int suicided;             /* set by the suicidal finalizer */
    cnode_hook on_finalize;   /* extra side effect of finalize */
    cnode_hook on_legacy_del; /* extra side effect of legacy_del */
    void *ctx;                /* per-test data */
    size_t nitems;            /* conf_var_type only */
    rcgc_object *items[];
};

/* The traverse, clear and dealloc of every cnode type, for tests that
 * define their own variants. */
int conf_node_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg);
int conf_node_clear(rcgc_object *self);
void conf_node_dealloc(rcgc_object *self);

extern const rcgc_type conf_plain_type;
extern const rcgc_type conf_fin_type;
extern const rcgc_type conf_res_type;
extern const rcgc_type conf_suicidal_type;
extern const rcgc_type conf_legacy_type;
extern const rcgc_type conf_legacy_fin_type;
extern const rcgc_type conf_legacy_res_type;
extern const rcgc_type conf_leaf_type;
extern const rcgc_type conf_leaf_fin_type;
extern const rcgc_type conf_leaf_res_type;
extern const rcgc_type conf_opaque_type;
extern const rcgc_type conf_var_type;

/* A growable log of ids (kept outside the runtime: plain malloc). */
typedef struct conf_log {
    int *ids;
    size_t n, cap;
} conf_log;

extern conf_log conf_del_calls;    /* finalize ran (PEP 442 __del__) */
extern conf_log conf_tp_del_calls; /* legacy_del ran (tp_del) */
extern conf_log conf_freed;        /* dealloc ran: the memory is going away */

void conf_log_add(conf_log *l, int id);
void conf_log_reset(conf_log *l);
/* How many times id appears. */
size_t conf_log_count(const conf_log *l, int id);
/* Non-zero when the log holds exactly these ids, in any order (the Python
 * tests compare sorted lists). */
int conf_log_same(const conf_log *l, const int *ids, size_t n);

/* The runtime of the current test, the survivors list (SimpleBase.survivors)
 * and the sanity-check error count of finalizers (SimpleBase.errors). */
extern rcgc_runtime *conf_rt;
extern rcgc_list *conf_survivors;
extern int conf_cleaning;
extern int conf_errors;
extern char conf_first_error[256];
/* Record a sanity failure seen inside a callback (asserting there would
 * longjmp out of the collector). */
void conf_error(const char *fmt, ...);

/* cmocka fixtures: a fresh runtime with automatic collection off (test_gc's
 * setUpModule disables gc) or on (GCTogglingTests), logs reset, an empty
 * survivors list.  Teardown drops the survivors and gc.garbage, then frees
 * the runtime. */
int conf_setup(void **state);
int conf_setup_enabled(void **state);
int conf_teardown(void **state);

/* New node of `type` with the given id (fails the test on NULL). */
cnode *conf_new(const rcgc_type *type, int id);
/* New conf_var_type node with n inline item slots (all NULL). */
cnode *conf_new_var(size_t n, int id);
/* node->slot[i] = o (a new reference; the old value is dropped). */
void conf_set(cnode *node, int i, void *o);
/* Drop node->slot[i]. */
void conf_unset(cnode *node, int i);

/* Non-zero when the list holds o. */
int conf_list_has(const rcgc_list *l, const void *o);
/* Non-zero when o is one of the cnode types above. */
int conf_is_node(const void *o);
/* Index of the first cnode with this id in the list, or -1. */
long conf_list_find_id(const rcgc_list *l, int id);

/* Weak reference callback bookkeeping.  conf_wr_cb counts its calls and
 * checks that the weak reference is already dead when it runs. */
typedef struct conf_cb {
    int calls;
    int saw_live;            /* calls where the weak ref still had a referent */
    rcgc_weakref *last;      /* the weak reference of the last call */
} conf_cb;
void conf_wr_cb(rcgc_weakref *w, void *arg);

/* Capture everything written to stderr (fd 2) between start and stop. */
typedef struct conf_capture {
    int saved_fd;
    FILE *tmp;
} conf_capture;
void conf_capture_start(conf_capture *c);
/* Returns the captured text (malloc'd, NUL-terminated). */
char *conf_capture_stop(conf_capture *c);

/* Run fn(arg) in a forked child whose stderr goes to a pipe (the way
 * CPython's tests use a subprocess for shutdown and crash behaviour); the
 * child exits 0 when fn returns.  *err receives what the child wrote on
 * stderr (malloc'd).  Returns the wait status. */
int conf_run_child(void (*fn)(void *arg), void *arg, char **err);

/* Non-zero when `text` matches the POSIX extended regex (REG_NEWLINE: ^ and
 * $ match at line boundaries). */
int conf_match(const char *text, const char *regex);
/* Occurrences of needle in text. */
size_t conf_count_substr(const char *text, const char *needle);

#endif /* CONF_H */
