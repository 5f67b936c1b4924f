/*
 * test_weakref.c - the collector-related tests of CPython 3.11's
 * Lib/test/test_weakref.py ported to rcgc: weak references and their
 * callbacks around deallocation and cyclic garbage, weakref.finalize, and
 * the weak-valued dictionary.  Tests about proxies, operators, hashing,
 * WeakMethod, weak-keyed dictionaries and threads have no counterpart in
 * rcgc's API; docs/conformance.md lists them with the reason.
 *
 * A Python callback that is a bound method (obj.cb) keeps obj alive; the C
 * counterpart is rcgc_weakref_new_obj, whose weak reference holds arg_obj
 * strongly (and traverses it) until the callback has run.  Those callbacks
 * find their bookkeeping in statics, not in `arg`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"

static long collect(void)
{
    return rcgc_gc_collect(conf_rt, 2);
}

static cnode *self_loop(const rcgc_type *type, int id)
{
    cnode *n = conf_new(type, id);
    conf_set(n, 0, n);
    return n;
}

/* A class: a node cyclic through its mro tuple (see test_gc.c). */
static cnode *make_class(int id)
{
    cnode *cls = conf_new(&conf_plain_type, id);
    cnode *mro = conf_new(&conf_plain_type, id + 1000);
    conf_set(mro, 0, cls);
    conf_set(cls, 0, mro);
    rcgc_decref(RCGC_OBJ(mro));
    return cls;
}

/* ------------------------------------------------- ReferencesTestCase */

/* The factories of check_basic_ref/check_basic_callback (a class instance,
 * a function, a bound method) become: a collectable node, a built-in list,
 * a variable-size node and an untracked leaf. */
static rcgc_object *factory(int kind)
{
    switch (kind) {
    case 0: return RCGC_OBJ(conf_new(&conf_plain_type, 1));
    case 1: return RCGC_OBJ(rcgc_list_new(conf_rt));
    case 2: return RCGC_OBJ(conf_new_var(2, 1));
    default: return RCGC_OBJ(conf_new(&conf_leaf_type, 1));
    }
}
#define NKINDS 4

/* ports test_weakref.ReferencesTestCase.test_basic_ref: a weak reference to
 * a live object gives back that very object.  (The repr part has no
 * counterpart.) */
static void ReferencesTestCase_test_basic_ref(void **state)
{
    (void)state;
    for (int kind = 0; kind < NKINDS; kind++) {
        rcgc_object *o = factory(kind);
        assert_non_null(o);
        rcgc_weakref *ref = rcgc_weakref_new(o, NULL, NULL);
        assert_non_null(ref);
        rcgc_object *o2 = rcgc_weakref_get(ref);
        assert_ptr_equal(o2, o);
        assert_ptr_equal(rcgc_weakref_peek(ref), o);
        assert_int_equal(rcgc_refcount(o), 2);
        rcgc_decref(o2);
        rcgc_decref(o);
        rcgc_decref(RCGC_OBJ(ref));
    }
}

/* ports test_weakref.ReferencesTestCase.test_basic_callback: the callback
 * runs once when the referent dies, and sees its weak reference dead. */
static void ReferencesTestCase_test_basic_callback(void **state)
{
    (void)state;
    for (int kind = 0; kind < NKINDS; kind++) {
        conf_cb cb = {0, 0, NULL};
        rcgc_object *o = factory(kind);
        rcgc_weakref *ref = rcgc_weakref_new(o, conf_wr_cb, &cb);
        assert_non_null(ref);
        rcgc_decref(o);
        collect();
        assert_int_equal(cb.calls, 1);
        assert_ptr_equal(cb.last, ref);
        assert_int_equal(cb.saw_live, 0);
        assert_null(rcgc_weakref_get(ref));
        rcgc_decref(RCGC_OBJ(ref));
    }
}

/* ports test_weakref.ReferencesTestCase.test_multiple_callbacks */
static void ReferencesTestCase_test_multiple_callbacks(void **state)
{
    (void)state;
    conf_cb cb = {0, 0, NULL};
    cnode *o = conf_new(&conf_plain_type, 1);
    rcgc_weakref *ref1 = rcgc_weakref_new(RCGC_OBJ(o), conf_wr_cb, &cb);
    rcgc_weakref *ref2 = rcgc_weakref_new(RCGC_OBJ(o), conf_wr_cb, &cb);
    assert_non_null(ref1);
    assert_non_null(ref2);
    rcgc_decref(RCGC_OBJ(o));
    collect();
    assert_null(rcgc_weakref_get(ref1));
    assert_null(rcgc_weakref_get(ref2));
    assert_int_equal(cb.calls, 2);
    rcgc_decref(RCGC_OBJ(ref1));
    rcgc_decref(RCGC_OBJ(ref2));
}

static rcgc_weakref *selfref_ref;
static int selfref_calls, selfref_saw_alive;

static void selfref_callback(rcgc_weakref *w, void *arg)
{
    (void)w;
    (void)arg;
    selfref_calls++;
    rcgc_object *o = rcgc_weakref_get(selfref_ref);    /* self.ref() */
    if (o) {
        selfref_saw_alive++;
        rcgc_decref(o);
    }
}

/* ports test_weakref.ReferencesTestCase.test_multiple_selfref_callbacks:
 * every weak reference to an object is dead before any of its callbacks
 * runs (the callback of the second reads the first). */
static void ReferencesTestCase_test_multiple_selfref_callbacks(void **state)
{
    (void)state;
    selfref_calls = selfref_saw_alive = 0;
    cnode *c = conf_new(&conf_plain_type, 1);
    selfref_ref = rcgc_weakref_new(RCGC_OBJ(c), selfref_callback, NULL);
    rcgc_weakref *ref1 = rcgc_weakref_new(RCGC_OBJ(c), selfref_callback, NULL);
    assert_non_null(selfref_ref);
    assert_non_null(ref1);
    rcgc_decref(RCGC_OBJ(c));
    assert_int_equal(selfref_calls, 2);
    assert_int_equal(selfref_saw_alive, 0);
    rcgc_decref(RCGC_OBJ(ref1));
    rcgc_decref(RCGC_OBJ(selfref_ref));
}

/* ports test_weakref.ReferencesTestCase.test_ref_reuse: a weak reference
 * without callback is shared (asking twice gives the same object), even
 * with another weak reference made in between (a proxy in Python, a weak
 * reference with a callback here); the count drops when that one goes. */
static void ReferencesTestCase_test_ref_reuse(void **state)
{
    (void)state;
    conf_cb cb = {0, 0, NULL};
    cnode *o = conf_new(&conf_plain_type, 1);
    rcgc_weakref *ref1 = rcgc_weakref_new(RCGC_OBJ(o), NULL, NULL);
    rcgc_weakref *other = rcgc_weakref_new(RCGC_OBJ(o), conf_wr_cb, &cb);
    rcgc_weakref *ref2 = rcgc_weakref_new(RCGC_OBJ(o), NULL, NULL);
    assert_non_null(ref1);
    assert_non_null(other);
    assert_ptr_equal(ref1, ref2);
    assert_ptr_not_equal(ref1, other);
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(o)), 2);
    rcgc_decref(RCGC_OBJ(other));
    collect();
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(o)), 1);
    rcgc_decref(RCGC_OBJ(ref1));
    rcgc_decref(RCGC_OBJ(ref2));
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(o)), 0);
    rcgc_decref(RCGC_OBJ(o));
    assert_int_equal(cb.calls, 0);
}

/* ports test_weakref.ReferencesTestCase.test_shared_ref_without_callback
 * (check_shared_without_callback): Python's callback=None and no callback
 * become, in C, a NULL callback with or without an argument (or arg_obj):
 * every combination gives the one shared reference. */
static void ReferencesTestCase_test_shared_ref_without_callback(void **state)
{
    (void)state;
    int token;
    cnode *o = conf_new(&conf_plain_type, 1);
    cnode *other = conf_new(&conf_plain_type, 2);
    rcgc_weakref *p[6];
    p[0] = rcgc_weakref_new(RCGC_OBJ(o), NULL, &token);
    p[1] = rcgc_weakref_new(RCGC_OBJ(o), NULL, &token);
    p[2] = rcgc_weakref_new(RCGC_OBJ(o), NULL, NULL);
    p[3] = rcgc_weakref_new(RCGC_OBJ(o), NULL, &token);
    p[4] = rcgc_weakref_new_obj(RCGC_OBJ(o), NULL, RCGC_OBJ(other));
    p[5] = rcgc_weakref_new(RCGC_OBJ(o), NULL, NULL);
    for (int i = 0; i < 6; i++)
        assert_ptr_equal(p[i], p[0]);
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(o)), 1);
    /* Without a callback there is nothing to keep alive for it. */
    assert_int_equal(rcgc_refcount(RCGC_OBJ(other)), 1);
    for (int i = 0; i < 6; i++)
        rcgc_decref(RCGC_OBJ(p[i]));
    rcgc_decref(RCGC_OBJ(o));
    rcgc_decref(RCGC_OBJ(other));
}

/* ports test_weakref.ReferencesTestCase.test_getweakrefcount: a shared
 * callback-less reference and one with a callback count 2; Python's two
 * proxies (one more shared, one with a callback) become two more weak
 * references with callbacks here.  An object that never had a weak
 * reference (the int in Python) counts 0. */
static void ReferencesTestCase_test_getweakrefcount(void **state)
{
    (void)state;
    conf_cb cb = {0, 0, NULL};
    cnode *o = conf_new(&conf_plain_type, 1);
    rcgc_weakref *r[4];
    r[0] = rcgc_weakref_new(RCGC_OBJ(o), NULL, NULL);
    r[1] = rcgc_weakref_new(RCGC_OBJ(o), conf_wr_cb, &cb);
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(o)), 2);
    r[2] = rcgc_weakref_new(RCGC_OBJ(o), conf_wr_cb, &cb);
    r[3] = rcgc_weakref_new(RCGC_OBJ(o), conf_wr_cb, &cb);
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(o)), 4);
    for (int i = 0; i < 4; i++)
        rcgc_decref(RCGC_OBJ(r[i]));
    collect();
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(o)), 0);
    assert_int_equal(cb.calls, 0);
    cnode *one = conf_new(&conf_leaf_type, 2);
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(one)), 0);
    rcgc_decref(RCGC_OBJ(one));
    rcgc_decref(RCGC_OBJ(o));
}

/* weakref.getweakrefs(o) == [w] (or [] when w is NULL) */
static void assert_weakrefs(rcgc_object *o, rcgc_weakref *w)
{
    rcgc_list *l = rcgc_weakref_list(o);
    assert_non_null(l);
    if (w) {
        assert_int_equal(rcgc_list_len(l), 1);
        assert_ptr_equal(rcgc_list_get(l, 0), RCGC_OBJ(w));
    } else {
        assert_int_equal(rcgc_list_len(l), 0);
    }
    rcgc_decref(RCGC_OBJ(l));
}

/* ports test_weakref.ReferencesTestCase.test_getweakrefs */
static void ReferencesTestCase_test_getweakrefs(void **state)
{
    (void)state;
    conf_cb cb = {0, 0, NULL};
    cnode *o = conf_new(&conf_plain_type, 1);
    rcgc_weakref *ref1 = rcgc_weakref_new(RCGC_OBJ(o), conf_wr_cb, &cb);
    rcgc_weakref *ref2 = rcgc_weakref_new(RCGC_OBJ(o), conf_wr_cb, &cb);
    rcgc_decref(RCGC_OBJ(ref1));
    collect();
    assert_weakrefs(RCGC_OBJ(o), ref2);
    rcgc_decref(RCGC_OBJ(ref2));
    rcgc_decref(RCGC_OBJ(o));

    o = conf_new(&conf_plain_type, 2);
    ref1 = rcgc_weakref_new(RCGC_OBJ(o), conf_wr_cb, &cb);
    ref2 = rcgc_weakref_new(RCGC_OBJ(o), conf_wr_cb, &cb);
    rcgc_decref(RCGC_OBJ(ref2));
    collect();
    assert_weakrefs(RCGC_OBJ(o), ref1);
    rcgc_decref(RCGC_OBJ(ref1));
    collect();
    assert_weakrefs(RCGC_OBJ(o), NULL);
    cnode *one = conf_new(&conf_leaf_type, 3);
    assert_weakrefs(RCGC_OBJ(one), NULL);
    rcgc_decref(RCGC_OBJ(one));
    rcgc_decref(RCGC_OBJ(o));
    assert_int_equal(cb.calls, 0);
}

static int collecting_calls;

static void collecting_callback(rcgc_weakref *w, void *arg)
{
    (void)w;
    (void)arg;
    collecting_calls++;
    rcgc_gc_collect(conf_rt, 2);
}

/* ports test_weakref.ReferencesTestCase.test_sf_bug_840829: a weak reference
 * callback that starts a collection while its referent (and, in the second
 * half, the object holding it) is being deallocated must not expose the
 * dying object to the collector (a double free, caught by ASan and by
 * rcgc's debug checks). */
static void ReferencesTestCase_test_sf_bug_840829(void **state)
{
    (void)state;
    collecting_calls = 0;
    cnode *c = conf_new(&conf_plain_type, 1);
    rcgc_weakref *wr = rcgc_weakref_new(RCGC_OBJ(c), collecting_callback, NULL);
    rcgc_decref(RCGC_OBJ(c));
    rcgc_decref(RCGC_OBJ(wr));
    assert_int_equal(collecting_calls, 1);

    cnode *c1 = conf_new(&conf_plain_type, 2);
    cnode *i = conf_new(&conf_plain_type, 3);
    conf_set(c1, 0, i);                          /* c1.i = C() */
    wr = rcgc_weakref_new(RCGC_OBJ(i), collecting_callback, NULL);
    rcgc_decref(RCGC_OBJ(i));
    cnode *c2 = conf_new(&conf_plain_type, 4);
    conf_set(c2, 0, c1);                         /* c2.c1 = c1 */
    rcgc_decref(RCGC_OBJ(c1));
    rcgc_decref(RCGC_OBJ(c2));
    assert_int_equal(collecting_calls, 2);
    for (int id = 1; id <= 4; id++)
        assert_int_equal(conf_log_count(&conf_freed, id), 1);
    rcgc_decref(RCGC_OBJ(wr));
}

/* A bound-method callback's view of its `self`: set before the collection,
 * checked by the callback if it ever runs. */
static int method_cb_calls;
static cnode *method_self;

static void method_callback(rcgc_weakref *w, void *arg)
{
    (void)w;
    (void)arg;
    method_cb_calls++;
    /* self.J / self.me / self.c1 / self.wr: all must still be there. */
    if (!method_self || method_self->ctx != method_self)
        conf_error("callback's self is gone");
    else
        for (int i = 0; i < 3; i++)
            if (!method_self->slot[i])
                conf_error("callback's self was cleared (slot %d)", i);
}

/* ports test_weakref.ReferencesTestCase.test_callback_in_cycle: I holds J
 * strongly and weakly, the weak reference's callback is I's bound method,
 * and classes J and II are self-cyclic.  All of it is trash: the weak
 * reference is trash itself, so its callback must not run (the crash the
 * test guards against came from running it after a clear). */
static void ReferencesTestCase_test_callback_in_cycle(void **state)
{
    (void)state;
    method_cb_calls = 0;
    cnode *J = make_class(1);
    cnode *II = make_class(2);
    cnode *I = conf_new(&conf_plain_type, 3);
    I->ctx = I;
    method_self = I;
    conf_set(I, 2, II);                          /* I's class */
    conf_set(I, 0, J);                           /* I.J = J */
    rcgc_weakref *wr = rcgc_weakref_new_obj(RCGC_OBJ(J), method_callback, RCGC_OBJ(I));
    assert_non_null(wr);
    conf_set(I, 1, wr);                          /* I.wr = ... */
    rcgc_decref(RCGC_OBJ(wr));
    rcgc_decref(RCGC_OBJ(I));                    /* del I, J, II */
    rcgc_decref(RCGC_OBJ(J));
    rcgc_decref(RCGC_OBJ(II));
    collect();
    assert_int_equal(method_cb_calls, 0);
    assert_int_equal(conf_errors, 0);
    assert_int_equal(conf_log_count(&conf_freed, 3), 1);
}

/* ports test_weakref.ReferencesTestCase.test_callback_reachable_one_way:
 * c2 (self-cyclic) holds c1 strongly and a weak reference to c1 whose
 * callback is c2's method.  Everything is trash; the weak reference too, so
 * no callback. */
static void ReferencesTestCase_test_callback_reachable_one_way(void **state)
{
    (void)state;
    method_cb_calls = 0;
    cnode *c1 = conf_new(&conf_plain_type, 1);
    cnode *c2 = conf_new(&conf_plain_type, 2);
    c2->ctx = c2;
    method_self = c2;
    conf_set(c2, 0, c2);                         /* c2.me = c2 */
    conf_set(c2, 1, c1);                         /* c2.c1 = c1 */
    rcgc_weakref *wr = rcgc_weakref_new_obj(RCGC_OBJ(c1), method_callback, RCGC_OBJ(c2));
    assert_non_null(wr);
    conf_set(c2, 2, wr);                         /* c2.wr = ... */
    rcgc_decref(RCGC_OBJ(wr));
    rcgc_decref(RCGC_OBJ(c1));
    rcgc_decref(RCGC_OBJ(c2));
    collect();
    assert_int_equal(method_cb_calls, 0);
    assert_int_equal(conf_errors, 0);
    assert_int_equal(conf_log_count(&conf_freed, 1), 1);
    assert_int_equal(conf_log_count(&conf_freed, 2), 1);
}

/* ports test_weakref.ReferencesTestCase.test_callback_different_classes:
 * the same with c1 and c2 of different (self-cyclic, trash) classes, so
 * c2's class is not reachable from c1. */
static void ReferencesTestCase_test_callback_different_classes(void **state)
{
    (void)state;
    method_cb_calls = 0;
    cnode *C = make_class(10);
    cnode *D = make_class(20);
    cnode *c1 = conf_new(&conf_plain_type, 1);
    cnode *c2 = conf_new(&conf_plain_type, 2);
    conf_set(c1, 3, D);
    conf_set(c2, 3, C);
    c2->ctx = c2;
    method_self = c2;
    conf_set(c2, 0, c2);
    conf_set(c2, 1, c1);
    rcgc_weakref *wr = rcgc_weakref_new_obj(RCGC_OBJ(c1), method_callback, RCGC_OBJ(c2));
    assert_non_null(wr);
    conf_set(c2, 2, wr);
    rcgc_decref(RCGC_OBJ(wr));
    rcgc_decref(RCGC_OBJ(c1));                   /* del c1, c2, C, D */
    rcgc_decref(RCGC_OBJ(c2));
    rcgc_decref(RCGC_OBJ(C));
    rcgc_decref(RCGC_OBJ(D));
    collect();
    assert_int_equal(method_cb_calls, 0);
    assert_int_equal(conf_errors, 0);
    assert_int_equal(conf_log_count(&conf_freed, 10), 1);
    assert_int_equal(conf_log_count(&conf_freed, 20), 1);
}

/* test_callback_in_cycle_resurrection: alist, and what acallback tried to
 * resurrect. */
static int went_away_calls, acallback_calls;
static rcgc_weakref *resurrection_wr;

static void acallback(rcgc_weakref *w, void *arg)
{
    (void)w;
    (void)arg;
    acallback_calls++;                           /* alist.append(self.c) */
}

static void c_went_away(rcgc_weakref *w, void *arg)
{
    (void)arg;
    went_away_calls++;
    if (w != resurrection_wr || rcgc_weakref_peek(w) != NULL)
        conf_error("C_went_away: wrong or live weak reference");
}

/* ports test_weakref.ReferencesTestCase.test_callback_in_cycle_resurrection:
 * weak references inside the trash, whose callbacks could resurrect the
 * trash, are cleared without running them; the weak reference to the class
 * held from outside does run its callback. */
static void ReferencesTestCase_test_callback_in_cycle_resurrection(void **state)
{
    (void)state;
    went_away_calls = acallback_calls = 0;
    cnode *C = make_class(10);
    cnode *c1 = conf_new(&conf_plain_type, 1);
    cnode *c2 = conf_new(&conf_plain_type, 2);
    conf_set(c1, 3, C);
    conf_set(c2, 3, C);
    conf_set(c1, 0, c2);                         /* c1.c = c2 */
    conf_set(c2, 0, c1);                         /* c2.c = c1 */
    rcgc_weakref *w1 = rcgc_weakref_new_obj(RCGC_OBJ(c2), acallback, RCGC_OBJ(c1));
    rcgc_weakref *w2 = rcgc_weakref_new_obj(RCGC_OBJ(c1), acallback, RCGC_OBJ(c2));
    assert_non_null(w1);
    assert_non_null(w2);
    conf_set(c1, 1, w1);                         /* c1.wr */
    conf_set(c2, 1, w2);                         /* c2.wr */
    rcgc_decref(RCGC_OBJ(w1));
    rcgc_decref(RCGC_OBJ(w2));
    resurrection_wr = rcgc_weakref_new(RCGC_OBJ(C), c_went_away, NULL);
    assert_non_null(resurrection_wr);
    rcgc_decref(RCGC_OBJ(c1));                   /* del c1, c2, C */
    rcgc_decref(RCGC_OBJ(c2));
    rcgc_decref(RCGC_OBJ(C));
    assert_int_equal(went_away_calls + acallback_calls, 0);
    collect();
    assert_int_equal(acallback_calls, 0);
    assert_int_equal(went_away_calls, 1);
    assert_null(rcgc_weakref_get(resurrection_wr));
    collect();
    assert_int_equal(acallback_calls, 0);
    assert_int_equal(went_away_calls, 1);
    assert_int_equal(conf_errors, 0);
    rcgc_decref(RCGC_OBJ(resurrection_wr));
}

static int cb_called, safe_called;

static void c_cb(rcgc_weakref *w, void *arg)
{
    (void)w;
    (void)arg;
    cb_called++;                                 /* "cb called" */
}

static void safe_callback(rcgc_weakref *w, void *arg)
{
    (void)w;
    (void)arg;
    safe_called++;                               /* "safe_callback called" */
}

/* ports test_weakref.ReferencesTestCase.test_callbacks_on_callback: weak
 * references whose callbacks are trash, and a weak reference to a callback
 * (itself trash).  Only the external weak reference's callback runs. */
static void ReferencesTestCase_test_callbacks_on_callback(void **state)
{
    (void)state;
    cb_called = safe_called = 0;
    cnode *C = make_class(10);
    cnode *c = conf_new(&conf_plain_type, 1);
    cnode *d = conf_new(&conf_plain_type, 2);
    conf_set(c, 3, C);
    conf_set(d, 3, C);
    conf_set(c, 0, d);                           /* c.other = d */
    conf_set(d, 0, c);                           /* d.other = c */
    cnode *callback = conf_new(&conf_plain_type, 3);   /* c.cb */
    conf_set(callback, 0, c);
    cnode *dcb = conf_new(&conf_plain_type, 4);        /* d.cb */
    conf_set(dcb, 0, d);
    rcgc_weakref *cwr = rcgc_weakref_new_obj(RCGC_OBJ(d), c_cb, RCGC_OBJ(callback));
    rcgc_weakref *dwr = rcgc_weakref_new_obj(RCGC_OBJ(callback), c_cb, RCGC_OBJ(dcb));
    assert_non_null(cwr);
    assert_non_null(dwr);
    conf_set(c, 1, cwr);                         /* c.wr: won't trigger */
    conf_set(d, 1, dwr);                         /* d.wr: ditto */
    rcgc_decref(RCGC_OBJ(cwr));
    rcgc_decref(RCGC_OBJ(dwr));
    rcgc_decref(RCGC_OBJ(dcb));
    rcgc_weakref *external_wr = rcgc_weakref_new(RCGC_OBJ(callback), safe_callback, NULL);
    assert_non_null(external_wr);
    assert_ptr_equal(rcgc_weakref_peek(external_wr), RCGC_OBJ(callback));
    rcgc_decref(RCGC_OBJ(callback));             /* del callback, c, d, C */
    rcgc_decref(RCGC_OBJ(c));
    rcgc_decref(RCGC_OBJ(d));
    rcgc_decref(RCGC_OBJ(C));
    assert_int_equal(cb_called + safe_called, 0);
    collect();
    assert_int_equal(cb_called, 0);
    assert_int_equal(safe_called, 1);
    assert_null(rcgc_weakref_get(external_wr));
    collect();
    assert_int_equal(cb_called, 0);
    assert_int_equal(safe_called, 1);
    rcgc_decref(RCGC_OBJ(external_wr));
}

static void noop_callback(rcgc_weakref *w, void *arg)
{
    (void)w;
    (void)arg;
}

/* ports test_weakref.ReferencesTestCase.test_gc_during_ref_creation
 * (check_gc_during_creation with weakref.ref; the proxy variant has no
 * counterpart): with thresholds (1, 1, 1), creating a weak reference starts
 * a collection that clears another weak reference to the same object,
 * which is trash. */
static void ReferencesTestCase_test_gc_during_ref_creation(void **state)
{
    (void)state;
    long th[3];
    rcgc_gc_get_threshold(conf_rt, th);
    rcgc_gc_enable(conf_rt);
    assert_int_equal(rcgc_gc_set_threshold(conf_rt, 1, 1, 1), RCGC_OK);
    collect();
    cnode *referenced = conf_new(&conf_plain_type, 1);
    cnode *a = conf_new(&conf_plain_type, 2);
    conf_set(a, 0, a);                           /* a.a = a */
    rcgc_weakref *w = rcgc_weakref_new(RCGC_OBJ(referenced), NULL, NULL);
    assert_non_null(w);
    conf_set(a, 1, w);                           /* a.wr = ref(referenced) */
    rcgc_decref(RCGC_OBJ(w));
    rcgc_decref(RCGC_OBJ(a));                    /* a = A(): trash */
    rcgc_decref(RCGC_OBJ(conf_new(&conf_plain_type, 3)));
    rcgc_weakref *w2 = rcgc_weakref_new(RCGC_OBJ(referenced), noop_callback, NULL);
    assert_non_null(w2);
    rcgc_decref(RCGC_OBJ(w2));
    rcgc_gc_set_threshold(conf_rt, th[0], th[1], th[2]);
    rcgc_gc_disable(conf_rt);
    collect();
    assert_int_equal(rcgc_weakref_count(RCGC_OBJ(referenced)), 0);
    assert_int_equal(conf_log_count(&conf_freed, 2), 1);
    rcgc_decref(RCGC_OBJ(referenced));
}

static rcgc_weakref *ref_from_del;

static void make_ref_to_self(cnode *self)
{
    ref_from_del = rcgc_weakref_new(RCGC_OBJ(self), NULL, NULL);
    if (!ref_from_del)
        conf_error("weakref_new failed in a finalizer");
}

/* ports test_weakref.ReferencesTestCase.test_ref_created_during_del: a weak
 * reference made by the object's own finalizer must be dead (not dangling)
 * once the object is freed.  Also through a collection (the object in a
 * self-cycle). */
static void ReferencesTestCase_test_ref_created_during_del(void **state)
{
    (void)state;
    for (int cyclic = 0; cyclic < 2; cyclic++) {
        ref_from_del = NULL;
        cnode *w = conf_new(&conf_fin_type, 1 + cyclic);
        w->on_finalize = make_ref_to_self;
        if (cyclic)
            conf_set(w, 0, w);
        rcgc_decref(RCGC_OBJ(w));
        collect();
        assert_int_equal(conf_log_count(&conf_freed, 1 + cyclic), 1);
        assert_non_null(ref_from_del);
        assert_null(rcgc_weakref_get(ref_from_del));
        assert_null(rcgc_weakref_peek(ref_from_del));
        rcgc_decref(RCGC_OBJ(ref_from_del));
    }
    assert_int_equal(conf_errors, 0);
}

static rcgc_weakref *appended[4];
static int nappended;

static void append_callback(rcgc_weakref *w, void *arg)
{
    (void)arg;
    if (nappended < 4)
        appended[nappended] = w;
    nappended++;
}

/* ports test_weakref.ReferencesTestCase.test_classes: a weak reference to a
 * (cyclic) class; the callback (l.append) receives the weak reference
 * itself once the collector frees the class. */
static void ReferencesTestCase_test_classes(void **state)
{
    (void)state;
    nappended = 0;
    cnode *A = make_class(1);
    rcgc_weakref *a = rcgc_weakref_new(RCGC_OBJ(A), append_callback, NULL);
    assert_non_null(a);
    rcgc_decref(RCGC_OBJ(A));                    /* A = None */
    collect();
    assert_null(rcgc_weakref_get(a));
    assert_int_equal(nappended, 1);
    assert_ptr_equal(appended[0], a);
    rcgc_decref(RCGC_OBJ(a));
}

/* test_trashcan_16602: the chain's weak references. */
static int wself_calls, wself_zombies;

static rcgc_weakref *wself_of_callback[8192];

static void parent_died_cb(rcgc_weakref *w, void *arg)
{
    (void)w;
    rcgc_weakref *wself = wself_of_callback[(size_t)(uintptr_t)arg];
    wself_calls++;
    rcgc_object *o = rcgc_weakref_get(wself);    /* o = wself() */
    if (o) {
        /* Ours and at least one more: never an object whose count hit 0. */
        if (rcgc_refcount(o) < 2)
            wself_zombies++;
        rcgc_decref(o);
    }
}

/* ports test_weakref.ReferencesTestCase.test_trashcan_16602: a long chain of
 * deallocations where each death releases the next object (a weak-keyed
 * dictionary entry: weak reference to the key holding the value strongly
 * until its callback ran) while callbacks look the dying objects up through
 * their weak references.  An object whose count reached zero, even with its
 * deallocation deferred, must no longer be reachable through a weak
 * reference.  CPython uses 100 links; the port also runs 5000, deep enough
 * for rcgc's deferred deallocation. */
static void ReferencesTestCase_test_trashcan_16602(void **state)
{
    (void)state;
    static const int sizes[] = {100, 5000};
    for (int s = 0; s < 2; s++) {
        int n = sizes[s];
        wself_calls = wself_zombies = 0;
        rcgc_list *d = rcgc_list_new(conf_rt);  /* the WeakKeyDictionary */
        /* The callbacks find wself by index; this list keeps every wself
         * alive whatever order the chain dies in. */
        rcgc_list *wselfs = rcgc_list_new(conf_rt);
        cnode *root = conf_new(&conf_plain_type, 0);
        cnode *c = root;
        rcgc_incref(RCGC_OBJ(c));
        for (int i = 1; i <= n; i++) {
            cnode *child = conf_new(&conf_plain_type, i);   /* C(c) */
            rcgc_weakref *wself = rcgc_weakref_new(RCGC_OBJ(child), NULL, NULL);
            assert_non_null(wself);
            wself_of_callback[i] = wself;
            rcgc_list_append(wselfs, RCGC_OBJ(wself));
            conf_set(child, 1, wself);
            rcgc_decref(RCGC_OBJ(wself));
            rcgc_weakref *wparent = rcgc_weakref_new(RCGC_OBJ(c), parent_died_cb,
                                                     (void *)(uintptr_t)i);
            assert_non_null(wparent);
            conf_set(child, 0, wparent);             /* self.wparent */
            rcgc_decref(RCGC_OBJ(wparent));
            /* d[c] = child: an entry keyed weakly by c, holding child. */
            rcgc_weakref *entry = rcgc_weakref_new_obj(RCGC_OBJ(c), noop_callback,
                                                       RCGC_OBJ(child));
            assert_non_null(entry);
            rcgc_list_append(d, RCGC_OBJ(entry));
            rcgc_decref(RCGC_OBJ(entry));
            rcgc_decref(RCGC_OBJ(c));
            c = child;                               /* c = C(c) */
        }
        rcgc_decref(RCGC_OBJ(c));
        conf_log_reset(&conf_freed);
        rcgc_decref(RCGC_OBJ(root));                 /* del root */
        collect();
        assert_int_equal(wself_zombies, 0);
        assert_int_equal(wself_calls, n);
        assert_int_equal(conf_freed.n, (size_t)n + 1);
        rcgc_decref(RCGC_OBJ(d));
        rcgc_decref(RCGC_OBJ(wselfs));
    }
}

static int argobj_calls;

static void count_callback(rcgc_weakref *w, void *arg)
{
    (void)w;
    (void)arg;
    argobj_calls++;
}

/* ports test_weakref.ReferencesTestCase.test_callback_attribute_after_deletion:
 * once the referent is dead and the callback ran, the weak reference lets go
 * of its callback (ref.__callback__ is None): here, of arg_obj. */
static void ReferencesTestCase_test_callback_attribute_after_deletion(void **state)
{
    (void)state;
    argobj_calls = 0;
    cnode *x = conf_new(&conf_plain_type, 1);
    cnode *closure = conf_new(&conf_plain_type, 2);
    rcgc_weakref *ref = rcgc_weakref_new_obj(RCGC_OBJ(x), count_callback, RCGC_OBJ(closure));
    assert_non_null(ref);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(closure)), 2);
    rcgc_decref(RCGC_OBJ(x));
    collect();
    assert_int_equal(argobj_calls, 1);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(closure)), 1);
    rcgc_decref(RCGC_OBJ(closure));
    assert_int_equal(conf_log_count(&conf_freed, 2), 1);
    rcgc_decref(RCGC_OBJ(ref));
}

/* ports test_weakref.ReferencesTestCase.test_callback_gcs: the referent has
 * a finalizer and the callback collects. */
static void ReferencesTestCase_test_callback_gcs(void **state)
{
    (void)state;
    collecting_calls = 0;
    cnode *x = conf_new(&conf_fin_type, 1);
    rcgc_weakref *ref1 = rcgc_weakref_new(RCGC_OBJ(x), collecting_callback, NULL);
    assert_non_null(ref1);
    rcgc_decref(RCGC_OBJ(x));
    collect();
    assert_int_equal(collecting_calls, 1);
    assert_int_equal(conf_log_count(&conf_del_calls, 1), 1);
    assert_int_equal(conf_log_count(&conf_freed, 1), 1);
    rcgc_decref(RCGC_OBJ(ref1));
}

/* ---------------------------------------- SubclassableWeakrefTestCase */

/* ports test_weakref.SubclassableWeakrefTestCase.test_subclass_refs_with_cycle
 * (bpo-3100): a weak reference that holds the only strong reference to its
 * own referent (r1.o = o; here arg_obj).  Deleting the weak reference kills
 * the referent, and the callback of the weak reference being deleted must
 * not run.  Then the same with two weak references (r1.r = r2, r2.o = o). */
static void SubclassableWeakrefTestCase_test_subclass_refs_with_cycle(void **state)
{
    (void)state;
    argobj_calls = 0;
    cnode *o = conf_new(&conf_plain_type, 1);
    rcgc_weakref *r1 = rcgc_weakref_new_obj(RCGC_OBJ(o), count_callback, RCGC_OBJ(o));
    assert_non_null(r1);
    rcgc_decref(RCGC_OBJ(o));
    rcgc_decref(RCGC_OBJ(r1));
    assert_int_equal(argobj_calls, 0);
    assert_int_equal(conf_log_count(&conf_freed, 1), 1);

    o = conf_new(&conf_plain_type, 2);
    rcgc_weakref *r2 = rcgc_weakref_new_obj(RCGC_OBJ(o), count_callback, RCGC_OBJ(o));
    assert_non_null(r2);
    r1 = rcgc_weakref_new_obj(RCGC_OBJ(o), count_callback, RCGC_OBJ(r2));
    assert_non_null(r1);
    rcgc_decref(RCGC_OBJ(o));
    rcgc_decref(RCGC_OBJ(r2));
    rcgc_decref(RCGC_OBJ(r1));
    assert_int_equal(argobj_calls, 0);
    assert_int_equal(conf_log_count(&conf_freed, 2), 1);
}

/* --------------------------------------------------- MappingTestCase */

static void key_of(char *buf, size_t n, int i)
{
    snprintf(buf, n, "k%d", i);
}

/* ports test_weakref.MappingTestCase.test_weak_valued_len_cycles
 * (check_len_cycles with WeakValueDictionary): values that are cyclic trash
 * leave the map at the next collection.  rcgc's map has no iterators, so
 * the "one item kept alive by an iterator" case does not arise. */
static void MappingTestCase_test_weak_valued_len_cycles(void **state)
{
    (void)state;
    const int N = 20;
    rcgc_weakmap *dct = rcgc_weakmap_new(conf_rt);
    assert_non_null(dct);
    for (int i = 0; i < N; i++) {
        char key[16];
        key_of(key, sizeof key, i);
        cnode *item = self_loop(&conf_plain_type, i);   /* RefCycle() */
        assert_int_equal(rcgc_weakmap_set(dct, key, RCGC_OBJ(item)), RCGC_OK);
        rcgc_decref(RCGC_OBJ(item));
    }
    assert_int_equal(rcgc_weakmap_len(dct), N);
    collect();
    assert_int_equal(rcgc_weakmap_len(dct), 0);
    rcgc_decref(RCGC_OBJ(dct));
}

/* ports test_weakref.MappingTestCase.test_weak_valued_len_race
 * (check_len_race): len() stays sane while automatic collections, at every
 * threshold from 1 to 99, remove cyclic values behind its back. */
static void MappingTestCase_test_weak_valued_len_race(void **state)
{
    (void)state;
    const int N = 20;
    long th0[3];
    rcgc_gc_get_threshold(conf_rt, th0);
    rcgc_gc_enable(conf_rt);
    for (int th = 1; th < 100; th++) {
        rcgc_gc_collect(conf_rt, 0);
        assert_int_equal(rcgc_gc_set_threshold(conf_rt, th, th, th), RCGC_OK);
        rcgc_weakmap *dct = rcgc_weakmap_new(conf_rt);
        assert_non_null(dct);
        for (int i = 0; i < N; i++) {
            char key[16];
            key_of(key, sizeof key, i);
            cnode *item = self_loop(&conf_plain_type, i);
            assert_int_equal(rcgc_weakmap_set(dct, key, RCGC_OBJ(item)), RCGC_OK);
            rcgc_decref(RCGC_OBJ(item));
        }
        size_t n1 = rcgc_weakmap_len(dct);
        rcgc_decref(RCGC_OBJ(conf_new(&conf_plain_type, 99)));
        size_t n2 = rcgc_weakmap_len(dct);
        assert_true(n1 <= (size_t)N);
        assert_true(n2 <= n1);
        rcgc_decref(RCGC_OBJ(dct));
    }
    rcgc_gc_set_threshold(conf_rt, th0[0], th0[1], th0[2]);
    rcgc_gc_disable(conf_rt);
}

/* ports test_weakref.MappingTestCase.test_weak_values: one weak reference
 * per value (getweakrefcount == 1), lookups give the very object, entries
 * vanish with their values; a value that dies at once is never found (SF
 * bug 447152).  (copy() and items() have no counterpart.) */
static void MappingTestCase_test_weak_values(void **state)
{
    (void)state;
    enum { COUNT = 10 };
    rcgc_weakmap *dict = rcgc_weakmap_new(conf_rt);
    assert_non_null(dict);
    cnode *objects[COUNT];
    char key[16];
    for (int i = 0; i < COUNT; i++) {
        objects[i] = conf_new(&conf_plain_type, i);      /* Object(i) */
        key_of(key, sizeof key, i);
        assert_int_equal(rcgc_weakmap_set(dict, key, RCGC_OBJ(objects[i])), RCGC_OK);
    }
    for (int i = 0; i < COUNT; i++) {
        assert_int_equal(rcgc_weakref_count(RCGC_OBJ(objects[i])), 1);
        key_of(key, sizeof key, i);
        rcgc_object *got = rcgc_weakmap_get(dict, key);
        assert_ptr_equal(got, RCGC_OBJ(objects[i]));
        rcgc_xdecref(got);
    }
    assert_int_equal(rcgc_weakmap_len(dict), COUNT);
    rcgc_decref(RCGC_OBJ(objects[0]));                   /* del objects[0] */
    collect();
    assert_int_equal(rcgc_weakmap_len(dict), COUNT - 1);
    for (int i = 1; i < COUNT; i++)                      /* del objects, o */
        rcgc_decref(RCGC_OBJ(objects[i]));
    collect();
    assert_int_equal(rcgc_weakmap_len(dict), 0);
    rcgc_decref(RCGC_OBJ(dict));

    dict = rcgc_weakmap_new(conf_rt);
    assert_non_null(dict);
    assert_null(rcgc_weakmap_get(dict, "1"));            /* KeyError */
    cnode *tmp = conf_new(&conf_plain_type, 100);        /* dict[2] = C() */
    assert_int_equal(rcgc_weakmap_set(dict, "2", RCGC_OBJ(tmp)), RCGC_OK);
    rcgc_decref(RCGC_OBJ(tmp));
    collect();
    assert_null(rcgc_weakmap_get(dict, "2"));            /* KeyError */
    assert_int_equal(rcgc_weakmap_len(dict), 0);
    rcgc_decref(RCGC_OBJ(dict));
}

/* ports test_weakref.MappingTestCase.test_remove_closure: the map's
 * removal callback does not keep the map alive (no closure over it).  The
 * map dies while its values live on; a value dying later must not touch
 * the freed map (ASan would see it). */
static void MappingTestCase_test_remove_closure(void **state)
{
    (void)state;
    rcgc_weakmap *d = rcgc_weakmap_new(conf_rt);
    assert_non_null(d);
    cnode *o = conf_new(&conf_plain_type, 1);
    assert_int_equal(rcgc_weakmap_set(d, "k", RCGC_OBJ(o)), RCGC_OK);
    rcgc_weakref *wd = rcgc_weakref_new(RCGC_OBJ(d), NULL, NULL);
    assert_non_null(wd);
    rcgc_decref(RCGC_OBJ(d));
    assert_null(rcgc_weakref_get(wd));           /* freed at once */
    rcgc_decref(RCGC_OBJ(o));
    collect();
    assert_int_equal(conf_log_count(&conf_freed, 1), 1);
    rcgc_decref(RCGC_OBJ(wd));
}

/* --------------------------------------------------- FinalizeTestCase */

typedef struct add_args {
    int x, y, z;
    int *res;
    int *nres;
} add_args;

static void add(void *arg)
{
    add_args *a = arg;
    a->res[(*a->nres)++] = a->x + a->y + a->z;
}

/* ports test_weakref.FinalizeTestCase.test_finalize: called by hand it runs
 * once; detached it never runs; otherwise it runs when the object dies.
 * (peek() and the return value of the call have no counterpart; the
 * "ran"/"was alive" results of call and detach stand in for them.) */
static void FinalizeTestCase_test_finalize(void **state)
{
    (void)state;
    int res[8], nres = 0;
    add_args args = {67, 43, 89, res, &nres};
    cnode *a = conf_new(&conf_plain_type, 1);

    rcgc_finalizer *f = rcgc_weakref_finalize(RCGC_OBJ(a), add, &args);
    assert_non_null(f);
    assert_true(rcgc_weakref_finalizer_alive(f));
    assert_int_equal(rcgc_weakref_finalizer_call(f), 1);
    assert_int_equal(rcgc_weakref_finalizer_call(f), 0);
    assert_int_equal(rcgc_weakref_finalizer_call(f), 0);
    assert_int_equal(rcgc_weakref_finalizer_detach(f), 0);
    assert_false(rcgc_weakref_finalizer_alive(f));
    assert_int_equal(nres, 1);
    assert_int_equal(res[0], 199);

    nres = 0;
    f = rcgc_weakref_finalize(RCGC_OBJ(a), add, &args);
    assert_non_null(f);
    assert_int_equal(rcgc_weakref_finalizer_detach(f), 1);
    assert_int_equal(rcgc_weakref_finalizer_call(f), 0);
    assert_int_equal(rcgc_weakref_finalizer_call(f), 0);
    assert_int_equal(rcgc_weakref_finalizer_detach(f), 0);
    assert_false(rcgc_weakref_finalizer_alive(f));
    assert_int_equal(nres, 0);

    f = rcgc_weakref_finalize(RCGC_OBJ(a), add, &args);
    assert_non_null(f);
    rcgc_decref(RCGC_OBJ(a));                    /* del a */
    assert_int_equal(rcgc_weakref_finalizer_call(f), 0);
    assert_int_equal(rcgc_weakref_finalizer_call(f), 0);
    assert_int_equal(rcgc_weakref_finalizer_detach(f), 0);
    assert_false(rcgc_weakref_finalizer_alive(f));
    assert_int_equal(nres, 1);
    assert_int_equal(res[0], 199);
}

static char order_res[16][16];
static int norder;

static void res_append(void *arg)
{
    if (norder < 16)
        snprintf(order_res[norder], sizeof order_res[0], "%s", (const char *)arg);
    norder++;
}

/* ports test_weakref.FinalizeTestCase.test_order: finalizers of one object
 * run newest first when it dies; detached or already-called ones do not run
 * again.  ("del f1, f4": the runtime owns the handles, so finalizers keep
 * themselves alive as in Python.) */
static void FinalizeTestCase_test_order(void **state)
{
    (void)state;
    norder = 0;
    cnode *a = conf_new(&conf_plain_type, 1);
    rcgc_finalizer *f[6];
    static char names[6][3] = {"", "f1", "f2", "f3", "f4", "f5"};
    for (int i = 1; i <= 5; i++) {
        f[i] = rcgc_weakref_finalize(RCGC_OBJ(a), res_append, names[i]);
        assert_non_null(f[i]);
    }
    assert_true(rcgc_weakref_finalizer_alive(f[2]));
    assert_true(rcgc_weakref_finalizer_alive(f[3]));
    assert_true(rcgc_weakref_finalizer_alive(f[5]));
    assert_true(rcgc_weakref_finalizer_detach(f[5]));
    assert_false(rcgc_weakref_finalizer_alive(f[5]));
    rcgc_weakref_finalizer_call(f[5]);           /* nothing: unregistered */
    res_append("A");
    rcgc_weakref_finalizer_call(f[3]);           /* f3 */
    assert_false(rcgc_weakref_finalizer_alive(f[3]));
    res_append("B");
    rcgc_weakref_finalizer_call(f[3]);           /* nothing: called */
    res_append("C");
    rcgc_decref(RCGC_OBJ(a));                    /* f4, f2, f1 */
    assert_false(rcgc_weakref_finalizer_alive(f[2]));
    res_append("D");
    rcgc_weakref_finalizer_call(f[2]);           /* nothing: called by gc */
    static const char *expected[] = {"A", "f3", "B", "C", "f4", "f2", "f1", "D"};
    assert_int_equal(norder, 8);
    for (int i = 0; i < 8; i++)
        assert_string_equal(order_res[i], expected[i]);
}

static int all_freed_res;

static void all_freed_callback(void *arg)
{
    (void)arg;
    all_freed_res = 123;
}

static size_t live_blocks(void)
{
    rcgc_mem_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    assert_int_equal(rcgc_mem_get_stats(conf_rt, &st), RCGC_OK);
    return st.blocks_allocated + st.raw_blocks;
}

/* ports test_weakref.FinalizeTestCase.test_all_freed: once the finalizer
 * ran, nothing of it stays allocated (Python checks the callback and the
 * finalize object through weak references; the port compares the
 * allocator's live blocks with a baseline taken after one warm-up round, so
 * that tables grown once do not count). */
static void FinalizeTestCase_test_all_freed(void **state)
{
    (void)state;
    cnode *a0 = conf_new(&conf_plain_type, 1);
    rcgc_weakref_finalizer_release(rcgc_weakref_finalize(RCGC_OBJ(a0), all_freed_callback, NULL));
    rcgc_decref(RCGC_OBJ(a0));
    collect();
    size_t base = live_blocks();

    all_freed_res = 0;
    cnode *a = conf_new(&conf_plain_type, 2);
    rcgc_finalizer *f = rcgc_weakref_finalize(RCGC_OBJ(a), all_freed_callback, NULL);
    assert_non_null(f);
    rcgc_weakref_finalizer_release(f);           /* del f */
    assert_true(live_blocks() > base);
    rcgc_decref(RCGC_OBJ(a));                    /* del a */
    collect();
    assert_int_equal(all_freed_res, 123);
    assert_int_equal(live_blocks(), base);
}

static rcgc_object *atexit_obj;

static void atexit_error(void *arg)
{
    /* Registers a finalizer from inside a finalizer run at exit: it must be
     * the next one to run. */
    if (!rcgc_weakref_finalize(atexit_obj, res_append, "g1"))
        res_append("g1 failed");
    res_append(arg);
}

/* ports test_weakref.FinalizeTestCase.test_atexit: finalizers of objects
 * still alive at shutdown run when the runtime is freed, newest first, and
 * one registered during that run runs next.  rcgc has no per-finalizer
 * atexit flag: f2 (atexit = False in Python) is detached instead; the
 * exception raised by f3 has no C counterpart. */
static void FinalizeTestCase_test_atexit(void **state)
{
    (void)state;
    norder = 0;
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    assert_non_null(rt);
    rcgc_runtime *saved = conf_rt;
    conf_rt = rt;
    atexit_obj = RCGC_OBJ(conf_new(&conf_plain_type, 1));    /* cls */
    conf_rt = saved;
    assert_non_null(rcgc_weakref_finalize(atexit_obj, res_append, "f1"));
    rcgc_finalizer *f2 = rcgc_weakref_finalize(atexit_obj, res_append, "f2");
    assert_non_null(f2);
    assert_non_null(rcgc_weakref_finalize(atexit_obj, atexit_error, "f3 error"));
    assert_non_null(rcgc_weakref_finalize(atexit_obj, res_append, "f4"));
    assert_true(rcgc_weakref_finalizer_detach(f2));
    rcgc_runtime_free(rt);                       /* cls still referenced */
    static const char *expected[] = {"f4", "f3 error", "g1", "f1"};
    assert_int_equal(norder, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(order_res[i], expected[i]);
}

#define T(name) cmocka_unit_test_setup_teardown(name, conf_setup, conf_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(ReferencesTestCase_test_basic_ref),
        T(ReferencesTestCase_test_basic_callback),
        T(ReferencesTestCase_test_multiple_callbacks),
        T(ReferencesTestCase_test_multiple_selfref_callbacks),
        T(ReferencesTestCase_test_ref_reuse),
        T(ReferencesTestCase_test_shared_ref_without_callback),
        T(ReferencesTestCase_test_getweakrefcount),
        T(ReferencesTestCase_test_getweakrefs),
        T(ReferencesTestCase_test_sf_bug_840829),
        T(ReferencesTestCase_test_callback_in_cycle),
        T(ReferencesTestCase_test_callback_reachable_one_way),
        T(ReferencesTestCase_test_callback_different_classes),
        T(ReferencesTestCase_test_callback_in_cycle_resurrection),
        T(ReferencesTestCase_test_callbacks_on_callback),
        T(ReferencesTestCase_test_gc_during_ref_creation),
        T(ReferencesTestCase_test_ref_created_during_del),
        T(ReferencesTestCase_test_classes),
        T(ReferencesTestCase_test_trashcan_16602),
        T(ReferencesTestCase_test_callback_attribute_after_deletion),
        T(ReferencesTestCase_test_callback_gcs),
        T(SubclassableWeakrefTestCase_test_subclass_refs_with_cycle),
        T(MappingTestCase_test_weak_valued_len_cycles),
        T(MappingTestCase_test_weak_valued_len_race),
        T(MappingTestCase_test_weak_values),
        T(MappingTestCase_test_remove_closure),
        T(FinalizeTestCase_test_finalize),
        T(FinalizeTestCase_test_order),
        T(FinalizeTestCase_test_all_freed),
        cmocka_unit_test(FinalizeTestCase_test_atexit),
    };
    return cmocka_run_group_tests_name("test_weakref", tests, NULL, NULL);
}
