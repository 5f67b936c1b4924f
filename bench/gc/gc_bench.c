/*
 * gc_bench.c - the `gc` suite's collector cases for rcgc (issue 3).
 * bench/gc/gc_bench.py is the same program for CPython; keep them in step.
 *
 * Usage:  gc-rcgc CASE N
 *
 *   ring     N nodes in a ring (each node: a -> next, b -> previous), the
 *            program holding one reference to the head.  After one untimed
 *            full collection (which settles everything in the oldest
 *            generation), three timed full collections: ns per node each.
 *            Also the resident memory the ring added, in bytes per node.
 *   garbage  the same ring, then the head's reference dropped: one timed
 *            full collection frees all N nodes: ns per node.
 *   churn    N times: make two nodes that point at each other and drop
 *            them, with automatic collection on (default thresholds), then
 *            one full collection: ns per cycle for the whole thing.  Three
 *            timed batches one after the other in the same runtime (a
 *            batch at 1M lasts about 25 ms, short enough for one slow
 *            moment of the machine to decide a sample).
 *   overhead rcgc_getsizeof of a node minus its two reference slots.
 *
 * A node is a tracked object with two reference slots (a, b).  Automatic
 * collection is off while the ring and the garbage are built (building is
 * not what is measured), on for churn.
 *
 * Compiled twice: gc-rcgc (impl rcgc) declares the node's two fields with
 * rcgc_type.refs, the natural way for a type whose references sit at fixed
 * offsets; gc-rcgc-traverse (GC_BENCH_TRAVERSE, impl rcgc-traverse) gives
 * the same type a traverse and a clear function instead.
 */
#include "bench.h"
#include "rcgc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    rcgc_object ob;
    rcgc_object *a;
    rcgc_object *b;
} node;

#if defined(GC_BENCH_TRAVERSE)
#define IMPL "rcgc-traverse"

static int node_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    node *n = (node *)self;
    int r;
    if (n->a != NULL && (r = visit(n->a, arg)) != 0)
        return r;
    if (n->b != NULL && (r = visit(n->b, arg)) != 0)
        return r;
    return 0;
}

static int node_clear(rcgc_object *self)
{
    node *n = (node *)self;
    RCGC_CLEAR(n->a);
    RCGC_CLEAR(n->b);
    return 0;
}

static const rcgc_type node_type = {
    .name = "node", .size = sizeof(node), .flags = RCGC_TYPE_GC,
    .traverse = node_traverse, .clear = node_clear,
};
#else
#define IMPL "rcgc"

static const rcgc_type node_type = {
    .name = "node", .size = sizeof(node), .flags = RCGC_TYPE_GC,
    .refs = RCGC_REFS(node, a, b),
};
#endif

static rcgc_runtime *g_rt;
static char g_case[64];

static node *new_node(void)
{
    node *n = (node *)rcgc_new(g_rt, &node_type);
    if (n == NULL)
        bench_die("rcgc_new failed");
    return n;
}

/* A ring of n nodes; returns the one reference the caller owns (to the
 * head).  Each node holds its successor in a and its predecessor in b. */
static node *build_ring(size_t n)
{
    node *head = new_node();
    node *prev = head;
    for (size_t i = 1; i < n; i++) {
        node *x = new_node();
        prev->a = RCGC_OBJ(x);                  /* our reference moves in */
        x->b = rcgc_incref(RCGC_OBJ(prev));
        prev = x;
    }
    prev->a = rcgc_incref(RCGC_OBJ(head));
    head->b = rcgc_incref(RCGC_OBJ(prev));
    return head;
}

static void emit(const char *metric, double value, const char *unit)
{
    bench_emit("gc", g_case, IMPL, metric, value, unit);
}

static void case_ring(size_t n)
{
    rcgc_gc_disable(g_rt);
    size_t rss0 = bench_rss_bytes();
    node *head = build_ring(n);
    size_t rss1 = bench_rss_bytes();
    rcgc_gc_collect(g_rt, 2);
    for (int rep = 0; rep < 3; rep++) {
        uint64_t t0 = bench_now_ns();
        long found = rcgc_gc_collect(g_rt, 2);
        uint64_t t1 = bench_now_ns();
        if (found != 0)
            bench_die("a live ring had unreachable nodes");
        emit("ns_per_object", (double)(t1 - t0) / (double)n, "ns");
    }
    emit("rss_bytes_per_node", (double)(rss1 - rss0) / (double)n, "B");
    rcgc_decref(RCGC_OBJ(head));
    rcgc_gc_collect(g_rt, 2);
}

static void case_garbage(size_t n)
{
    rcgc_gc_disable(g_rt);
    node *head = build_ring(n);
    rcgc_decref(RCGC_OBJ(head));
    uint64_t t0 = bench_now_ns();
    long found = rcgc_gc_collect(g_rt, 2);
    uint64_t t1 = bench_now_ns();
    if (found != (long)n) {
        fprintf(stderr, "gc-rcgc: collected %ld of %zu\n", found, n);
        bench_die("the garbage ring was not collected");
    }
    emit("ns_per_object", (double)(t1 - t0) / (double)n, "ns");
}

static void case_churn(size_t n)
{
    rcgc_gc_enable(g_rt);
    for (int rep = 0; rep < 3; rep++) {
        uint64_t t0 = bench_now_ns();
        for (size_t i = 0; i < n; i++) {
            node *x = new_node();
            node *y = new_node();
            x->a = RCGC_OBJ(y);                 /* our reference to y moves in */
            y->a = rcgc_incref(RCGC_OBJ(x));
            rcgc_decref(RCGC_OBJ(x));
        }
        rcgc_gc_collect(g_rt, 2);
        uint64_t t1 = bench_now_ns();
        emit("ns_per_cycle", (double)(t1 - t0) / (double)n, "ns");
    }
}

static void case_overhead(void)
{
    node *x = new_node();
    emit("bytes", (double)rcgc_getsizeof(RCGC_OBJ(x)) - 2.0 * (double)sizeof(void *), "B");
    rcgc_decref(RCGC_OBJ(x));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ring|garbage|churn N | overhead\n", argv[0]);
        return 2;
    }
    size_t n = argc > 2 ? bench_parse_count(argv[2]) : 1000000;
    if (n < 2)
        bench_die("N must be at least 2");
    g_rt = rcgc_runtime_new(NULL);
    if (g_rt == NULL)
        bench_die("rcgc_runtime_new failed");
    const char *c = argv[1];
    if (strcmp(c, "overhead") == 0) {
        snprintf(g_case, sizeof g_case, "overhead_tracked");
        case_overhead();
    } else {
        /* case names carry the size: ring_1M, garbage_10M, ... */
        if (n % 1000000 == 0)
            snprintf(g_case, sizeof g_case, "%s_%zuM", c, n / 1000000);
        else
            snprintf(g_case, sizeof g_case, "%s_%zu", c, n);
        if (strcmp(c, "ring") == 0)
            case_ring(n);
        else if (strcmp(c, "garbage") == 0)
            case_garbage(n);
        else if (strcmp(c, "churn") == 0)
            case_churn(n);
        else {
            fprintf(stderr, "%s: unknown case %s\n", argv[0], c);
            return 2;
        }
    }
    rcgc_runtime_free(g_rt);
    return 0;
}
