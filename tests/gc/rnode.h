/*
 * rnode.h - the collector tests' node with two declared reference fields
 * (rcgc_type.refs: the collector's cached shape), and what the tests do
 * with it.  Included after gctest.h, which gives rt.
 */
#ifndef RCGC_TEST_RNODE_H
#define RCGC_TEST_RNODE_H

#include "gctest.h"

typedef struct rnode {
    rcgc_object ob;
    rcgc_object *a;
    rcgc_object *b;
} rnode;

static const rcgc_type refs_type = {
    .name = "RefsNode", .size = sizeof(rnode), .refs = RCGC_REFS(rnode, a, b)};

/* The same shape in a bigger size class (128 B: other pools than
 * refs_type's), a and b at rnode's offsets. */
typedef struct rbig {
    rcgc_object ob;
    rcgc_object *a;
    rcgc_object *b;
    char pad[96];
} rbig;

static const rcgc_type rbig_type = {
    .name = "RBig", .size = sizeof(rbig), .refs = RCGC_REFS(rbig, a, b)};

/* A new node of type t (of rnode's layout), checked. */
static inline rnode *rn(const rcgc_type *t)
{
    rnode *n = (rnode *)rcgc_new(rt, t);
    assert_non_null(n);
    return n;
}

/* *slot = to, with a new reference (to may be NULL). */
static inline void rn_set(rcgc_object **slot, void *to)
{
    RCGC_SETREF(*slot, to ? rcgc_incref((rcgc_object *)to) : NULL);
}

/* Whether o is in generation gen's list. */
static inline int in_gen(const void *o, int gen)
{
    rcgc_list *l = rcgc_gc_get_objects(rt, gen);
    assert_non_null(l);
    int r = rcgc_list_index(l, (const rcgc_object *)o) >= 0;
    rcgc_decref(RCGC_OBJ(l));
    return r;
}

/* A node x of type t referenced by n holders (field a) that form a chain
 * (field b) headed by x (x.a = the first holder).  Only the last holder is
 * held from outside (returned in *last); x's own reference is dropped, so
 * its refcount is n, a collection reaches it only through the chain, and
 * for n beyond the header's count it is saturated. */
static inline rnode *rn_holder_chain(const rcgc_type *t, int n, rnode **last)
{
    rnode *x = rn(t), *prev = NULL;
    for (int i = 0; i < n; i++) {
        rnode *h = rn(t);
        rn_set(&h->a, x);
        if (prev) {
            rn_set(&prev->b, h);
            rcgc_decref(RCGC_OBJ(prev));
        } else {
            rn_set(&x->a, h);
        }
        prev = h;
    }
    rcgc_decref(RCGC_OBJ(x));
    *last = prev;
    return x;
}

#endif
