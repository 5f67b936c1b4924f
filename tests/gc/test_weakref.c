/* Weak references: the side table, CPython's list order and sharing,
 * callbacks at deallocation and in collections, weakref.finalize, and the
 * weak-valued map. */
#include "gctest.h"

typedef struct cbrec {
    int calls;
    int saw_live;
    rcgc_weakref *last;
    int order[16];
} cbrec;

static int order_seq;

static void cb(rcgc_weakref *w, void *arg)
{
    cbrec *r = arg;
    if (r->calls < 16)
        r->order[r->calls] = ++order_seq;
    r->calls++;
    r->last = w;
    if (rcgc_weakref_peek(w) != NULL)
        r->saw_live++;
}

static void test_basic(void **state)
{
    (void)state;
    gnode *a = gn_new(&plain_type, 1);
    assert_false(a->ob.flags & RCGC_OF_WEAKREFS);      /* no cost until used */
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(a)), 0);
    rcgc_weakref *w = rcgc_weakref_new(RCGC_OBJ(a), NULL, NULL);
    assert_non_null(w);
    assert_true(a->ob.flags & RCGC_OF_WEAKREFS);
    assert_true(rcgc_gc_is_tracked((rcgc_object *)w));  /* a collectable object */
    assert_ptr_equal(rcgc_weakref_peek(w), RCGC_OBJ(a));
    rcgc_object *g = rcgc_weakref_get(w);
    assert_ptr_equal(g, RCGC_OBJ(a));
    assert_int_equal(rcgc_refcount(g), 2);
    rcgc_decref(g);
    /* The callback-less reference is shared, as in CPython. */
    rcgc_weakref *w2 = rcgc_weakref_new(RCGC_OBJ(a), NULL, NULL);
    assert_ptr_equal(w2, w);
    assert_int_equal(rcgc_refcount((rcgc_object *)w), 2);
    rcgc_decref((rcgc_object *)w2);
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(a)), 1);
    gn_drop(a);
    assert_null(rcgc_weakref_peek(w));
    assert_null(rcgc_weakref_get(w));
    rcgc_decref((rcgc_object *)w);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

/* CPython's list order: the basic reference first, then callbacks newest
 * first; at deallocation callbacks run in that order, each seeing its
 * reference dead; all references die before any callback runs. */
static void test_order_and_dealloc_callbacks(void **state)
{
    (void)state;
    cbrec r1 = {0}, r2 = {0};
    gnode *a = gn_new(&plain_type, 1);
    rcgc_weakref *c1 = rcgc_weakref_new(RCGC_OBJ(a), cb, &r1);
    rcgc_weakref *basic = rcgc_weakref_new(RCGC_OBJ(a), NULL, NULL);
    rcgc_weakref *c2 = rcgc_weakref_new(RCGC_OBJ(a), cb, &r2);
    assert_true(c1 != c2 && c1 != basic);
    rcgc_list *l = rcgc_weakref_list(RCGC_OBJ(a));
    assert_int_equal(rcgc_list_len(l), 3);
    assert_ptr_equal(rcgc_list_get(l, 0), (rcgc_object *)basic);
    assert_ptr_equal(rcgc_list_get(l, 1), (rcgc_object *)c2);
    assert_ptr_equal(rcgc_list_get(l, 2), (rcgc_object *)c1);
    rcgc_decref(RCGC_OBJ(l));
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(a)), 3);
    order_seq = 0;
    gn_drop(a);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 1);
    assert_true(r2.order[0] < r1.order[0]);
    assert_int_equal(r1.saw_live + r2.saw_live, 0);
    assert_ptr_equal(r1.last, c1);
    assert_null(rcgc_weakref_peek(basic));
    rcgc_decref((rcgc_object *)c1);
    rcgc_decref((rcgc_object *)c2);
    rcgc_decref((rcgc_object *)basic);
}

/* A weak reference dropped before its referent: no callback, unlinked. */
static void test_dropped_weakref_no_callback(void **state)
{
    (void)state;
    cbrec r = {0};
    gnode *a = gn_new(&plain_type, 1);
    rcgc_weakref *w = rcgc_weakref_new(RCGC_OBJ(a), cb, &r);
    rcgc_decref((rcgc_object *)w);
    assert_false(a->ob.flags & RCGC_OF_WEAKREFS);
    gn_drop(a);
    assert_int_equal(r.calls, 0);
}

static rcgc_object *cb_obj_arg;
static int cb_obj_refcnt;

static void cb_obj(rcgc_weakref *w, void *arg)
{
    (void)w;
    cb_obj_arg = arg;
    cb_obj_refcnt = (int)rcgc_refcount(arg);
}

/* The callback's object is its argument, held (and traversed) until the
 * callback ran. */
static void test_callback_object(void **state)
{
    (void)state;
    gnode *a = gn_new(&plain_type, 1), *closure = gn_new(&plain_type, 2);
    rcgc_weakref *w = rcgc_weakref_new_obj(RCGC_OBJ(a), cb_obj, RCGC_OBJ(closure));
    assert_int_equal(rcgc_refcount(RCGC_OBJ(closure)), 2);
    rcgc_list *refs = rcgc_gc_get_referents(rt, (rcgc_object *const *)&w, 1);
    assert_int_equal(rcgc_list_len(refs), 1);
    rcgc_decref(RCGC_OBJ(refs));
    gn_drop(closure);
    assert_int_equal(free_log.n, 0);
    gn_drop(a);                                   /* callback(w, closure) */
    assert_ptr_equal(cb_obj_arg, RCGC_OBJ(closure));
    assert_int_equal(cb_obj_refcnt, 1);
    assert_int_equal(log_count(&free_log, 2), 1);
    rcgc_decref((rcgc_object *)w);
}

static rcgc_weakref *seen_by_finalizer;
static int finalizer_saw_live;

static void check_weakref(gnode *self)
{
    (void)self;
    finalizer_saw_live = rcgc_weakref_peek(seen_by_finalizer) != NULL;
}

/* In a collection: weak references to the trash are cleared before any
 * finalizer runs; callbacks run for live weak references only, each seeing
 * its reference dead; a weak reference that is trash itself never fires. */
static void test_collection_callbacks(void **state)
{
    (void)state;
    cbrec live = {0}, trash = {0};
    gnode *a = gn_new(&fin_type, 1), *b = gn_new(&plain_type, 2);
    gn_set(a, 0, b);
    gn_set(b, 0, a);
    rcgc_weakref *wl = rcgc_weakref_new(RCGC_OBJ(a), cb, &live);
    rcgc_weakref *wt = rcgc_weakref_new(RCGC_OBJ(b), cb, &trash);
    b->s[1] = (rcgc_object *)wt;                  /* b owns wt: wt is trash */
    seen_by_finalizer = wl;
    a->on_finalize = check_weakref;
    gn_drop(a);
    gn_drop(b);
    assert_int_equal(collect(2), 3);              /* a, b and wt */
    assert_int_equal(finalizer_saw_live, 0);
    assert_int_equal(live.calls, 1);
    assert_int_equal(live.saw_live, 0);
    assert_int_equal(trash.calls, 0);
    assert_null(rcgc_weakref_peek(wl));
    rcgc_decref((rcgc_object *)wl);
}

static rcgc_weakref *only_ref;

static void drop_self(rcgc_weakref *w, void *arg)
{
    (void)arg;
    assert_ptr_equal(w, only_ref);
    rcgc_decref((rcgc_object *)w);
}

/* CPython counts a weak reference freed right after its callback as
 * collected. */
static void test_weakref_freed_after_callback_counted(void **state)
{
    (void)state;
    gnode *a = gn_new(&plain_type, 1);
    gn_set(a, 0, a);
    only_ref = rcgc_weakref_new(RCGC_OBJ(a), drop_self, NULL);
    gn_drop(a);
    assert_int_equal(collect(2), 2);
    rcgc_gc_stats st[3];
    rcgc_gc_get_stats(rt, st);
    assert_int_equal(st[2].collected, 2);
}

/* A callback-less weak reference in a cycle with its referent: both trash. */
static void test_weakref_in_trash(void **state)
{
    (void)state;
    gnode *a = gn_new(&plain_type, 1);
    rcgc_weakref *w = rcgc_weakref_new(RCGC_OBJ(a), NULL, NULL);
    a->s[0] = (rcgc_object *)w;
    gn_set(a, 1, a);
    gn_drop(a);
    assert_int_equal(collect(2), 2);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

/* The side table survives growth and shrinking with many referents. */
static void test_many_referents(void **state)
{
    (void)state;
    enum { N = 5000 };
    gnode *objs[N];
    rcgc_weakref *ws[N];
    for (int i = 0; i < N; i++) {
        objs[i] = gn_new(&plain_type, i);
        ws[i] = rcgc_weakref_new(RCGC_OBJ(objs[i]), NULL, NULL);
        assert_non_null(ws[i]);
    }
    for (int i = 0; i < N; i += 2)
        gn_drop(objs[i]);
    for (int i = 0; i < N; i++)
        assert_true((rcgc_weakref_peek(ws[i]) != NULL) == (i % 2 == 1));
    for (int i = 1; i < N; i += 2)
        assert_int_equal(rcgc_weakref_count(RCGC_OBJ(objs[i])), 1);
    for (int i = 0; i < N; i++)
        rcgc_decref((rcgc_object *)ws[i]);
    for (int i = 1; i < N; i += 2) {
        assert_false(objs[i]->ob.flags & RCGC_OF_WEAKREFS);
        gn_drop(objs[i]);
    }
}

/* ----------------------------------------------------- weakref.finalize */

static char calls[64];

static void note(void *arg)
{
    strncat(calls, (const char *)arg, sizeof calls - strlen(calls) - 1);
}

static void test_finalize(void **state)
{
    (void)state;
    calls[0] = '\0';
    gnode *a = gn_new(&plain_type, 1), *b = gn_new(&plain_type, 2);
    rcgc_finalizer *fa = rcgc_weakref_finalize(RCGC_OBJ(a), note, "a");
    rcgc_finalizer *fb = rcgc_weakref_finalize(RCGC_OBJ(b), note, "b");
    assert_true(rcgc_weakref_finalizer_alive(fa));
    gn_drop(a);
    assert_string_equal(calls, "a");
    assert_false(rcgc_weakref_finalizer_alive(fa));
    assert_int_equal(rcgc_weakref_finalizer_call(fa), 0);
    assert_int_equal(rcgc_weakref_finalizer_call(fb), 1);
    assert_string_equal(calls, "ab");
    assert_int_equal(rcgc_weakref_finalizer_call(fb), 0);
    gn_drop(b);
    assert_string_equal(calls, "ab");
    gnode *c = gn_new(&plain_type, 3);
    rcgc_finalizer *fc = rcgc_weakref_finalize(RCGC_OBJ(c), note, "c");
    assert_int_equal(rcgc_weakref_finalizer_detach(fc), 1);
    assert_int_equal(rcgc_weakref_finalizer_detach(fc), 0);
    assert_false(c->ob.flags & RCGC_OF_WEAKREFS);   /* its weak reference went */
    gn_drop(c);
    assert_string_equal(calls, "ab");
    /* In cyclic trash: called by the collection. */
    gnode *d = gn_new(&plain_type, 4);
    gn_set(d, 0, d);
    rcgc_weakref_finalize(RCGC_OBJ(d), note, "d");
    gn_drop(d);
    collect(2);
    assert_string_equal(calls, "abd");
}

static void atexit_child(void *arg)
{
    (void)arg;
    gc_setup(NULL);
    calls[0] = '\0';
    gnode *a = gn_new(&plain_type, 1), *b = gn_new(&plain_type, 2);
    rcgc_weakref_finalize(RCGC_OBJ(a), note, "1");
    rcgc_weakref_finalize(RCGC_OBJ(b), note, "2");
    rcgc_weakref_finalize(RCGC_OBJ(a), note, "3");
    rcgc_list_clear(saved);
    RCGC_CLEAR(saved);
    rcgc_runtime_free(rt);                       /* a and b still alive */
    fprintf(stderr, "calls=%s\n", calls);
}

/* At shutdown the live finalizers run newest first (Python's atexit). */
static void test_finalize_atexit(void **state)
{
    (void)state;
    int status;
    const char *err = tu_run_child(atexit_child, NULL, &status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(strstr(err, "calls=321\n"));
}

/* ---------------------------------------------------------- weak map */

static void test_weakmap(void **state)
{
    (void)state;
    rcgc_weakmap *m = rcgc_weakmap_new(rt);
    assert_non_null(m);
    enum { N = 300 };
    gnode *vals[N];
    char key[32];
    for (int i = 0; i < N; i++) {
        vals[i] = gn_new(&plain_type, i);
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(rcgc_weakmap_set(m, key, RCGC_OBJ(vals[i])), RCGC_OK);
    }
    assert_int_equal(rcgc_weakmap_len(m), N);
    rcgc_object *v = rcgc_weakmap_get(m, "k7");
    assert_ptr_equal(v, RCGC_OBJ(vals[7]));
    rcgc_decref(v);
    assert_null(rcgc_weakmap_get(m, "nope"));
    /* Values die: their entries vanish. */
    for (int i = 0; i < N; i += 3)
        gn_drop(vals[i]);
    assert_null(rcgc_weakmap_get(m, "k3"));
    assert_int_equal(rcgc_weakmap_len(m), N - N / 3);
    assert_int_equal(rcgc_weakmap_delete(m, "k6"), RCGC_EINVAL);   /* dead */
    assert_int_equal(rcgc_weakmap_delete(m, "k1"), RCGC_OK);
    assert_int_equal(rcgc_weakmap_delete(m, "k1"), RCGC_EINVAL);
    assert_int_equal(rcgc_weakmap_len(m), N - N / 3 - 1);
    /* Overwrite. */
    assert_int_equal(rcgc_weakmap_set(m, "k2", RCGC_OBJ(vals[4])), RCGC_OK);
    v = rcgc_weakmap_get(m, "k2");
    assert_ptr_equal(v, RCGC_OBJ(vals[4]));
    rcgc_decref(v);
    /* The map holds no strong reference to its values. */
    assert_int_equal(rcgc_refcount(RCGC_OBJ(vals[2])), 1);
    for (int i = 0; i < N; i++)
        if (i % 3 != 0)
            gn_drop(vals[i]);
    assert_int_equal(rcgc_weakmap_len(m), 0);
    rcgc_decref(RCGC_OBJ(m));
}

/* A map in a cycle with one of its values is collectable; no callback can
 * reach a map that is gone. */
static void test_weakmap_collectable(void **state)
{
    (void)state;
    rcgc_weakmap *m = rcgc_weakmap_new(rt);
    gnode *v = gn_new(&plain_type, 1), *outside = gn_new(&plain_type, 2);
    assert_int_equal(rcgc_weakmap_set(m, "self", RCGC_OBJ(v)), RCGC_OK);
    assert_int_equal(rcgc_weakmap_set(m, "out", RCGC_OBJ(outside)), RCGC_OK);
    v->s[0] = RCGC_OBJ(m);                       /* v -> m, m ~> v */
    gn_set(v, 1, v);                             /* v <-> v */
    gn_drop(v);
    assert_int_equal(collect(2), 4);              /* m, v and two weak references */
    assert_int_equal(log_count(&free_log, 1), 1);
    gn_drop(outside);                              /* its weak reference is gone */
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GC_TEST(test_basic),
        GC_TEST(test_order_and_dealloc_callbacks),
        GC_TEST(test_dropped_weakref_no_callback),
        GC_TEST(test_callback_object),
        GC_TEST(test_collection_callbacks),
        GC_TEST(test_weakref_freed_after_callback_counted),
        GC_TEST(test_weakref_in_trash),
        GC_TEST(test_many_referents),
        GC_TEST(test_finalize),
        GC_TEST(test_finalize_atexit),
        GC_TEST(test_weakmap),
        GC_TEST(test_weakmap_collectable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
