/*
 * binarytrees.c - the Benchmarks Game's binary-trees workload, single
 * thread, written for rcgc's benchmarks; bench/gc/binarytrees.py is the same
 * for CPython.
 *
 * The workload (depth D, minimum depth 4, M = max(D, 6)):
 *   1. build a "stretch" tree of depth M + 1, count its nodes, free it;
 *   2. build a long-lived tree of depth M and keep it;
 *   3. for d = 4, 6, ..., M: build and count 2^(M - d + 4) trees of depth
 *      d, freeing each one right after counting it;
 *   4. count the long-lived tree, free it.
 * A tree of depth d is a node whose two children are trees of depth d - 1
 * (depth 0: no children); counting walks the whole tree.  The program
 * checks every count against 2^(d+1) - 1 per tree and exits 1 on a
 * mismatch, prints the usual report on stderr and one JSON sample (the
 * wall time of steps 1-4, in seconds) on stdout.
 *
 * Compiled once per memory manager:
 *   BT_RCGC     rcgc objects (tracked, two reference slots); a tree is
 *               freed by dropping the root's reference.  Automatic
 *               collection is on, as in any program, unless the second
 *               argument is "gcoff" (reported as impl rcgc-gcoff).  The
 *               node declares its two fields with rcgc_type.refs; with
 *               BT_TRAVERSE too (bt-rcgc-traverse, impl rcgc-traverse) it
 *               has a traverse and a clear function instead.
 *   BT_MALLOC   malloc/free by hand: glibc, or mimalloc when the binary is
 *               linked with it (BT_MIMALLOC checks that it is).
 *   BT_BOEHM    the Boehm-Demers-Weiser collector: GC_MALLOC, no frees.
 *
 * Usage: bt-<impl> [DEPTH [gcoff]]   (default depth 18)
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_DEPTH 4

#if defined(BT_RCGC)
#include "rcgc.h"

typedef struct tree {
    rcgc_object ob;
    struct tree *left;
    struct tree *right;
} tree;

#if defined(BT_TRAVERSE)
#define BT_IMPL "rcgc-traverse"
static int tree_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    tree *t = (tree *)self;
    int r;
    if (t->left != NULL && (r = visit(RCGC_OBJ(t->left), arg)) != 0)
        return r;
    if (t->right != NULL && (r = visit(RCGC_OBJ(t->right), arg)) != 0)
        return r;
    return 0;
}

static int tree_clear(rcgc_object *self)
{
    tree *t = (tree *)self;
    RCGC_CLEAR(t->left);
    RCGC_CLEAR(t->right);
    return 0;
}

static const rcgc_type tree_type = {
    .name = "tree", .size = sizeof(tree), .flags = RCGC_TYPE_GC,
    .traverse = tree_traverse, .clear = tree_clear,
};
#else
#define BT_IMPL "rcgc"
static const rcgc_type tree_type = {
    .name = "tree", .size = sizeof(tree), .flags = RCGC_TYPE_GC,
    .refs = RCGC_REFS(tree, left, right),
};
#endif

static rcgc_runtime *g_rt;
static const char *g_impl = BT_IMPL;

static void setup(int argc, char **argv)
{
    g_rt = rcgc_runtime_new(NULL);
    if (g_rt == NULL)
        bench_die("rcgc_runtime_new failed");
    if (argc > 2 && strcmp(argv[2], "gcoff") == 0) {
        rcgc_gc_disable(g_rt);
        g_impl = BT_IMPL "-gcoff";
    }
}

static void teardown(void)
{
    rcgc_gc_stats st[3];
    rcgc_gc_get_stats(g_rt, st);
    fprintf(stderr, "collections by generation: %ld %ld %ld\n", (long)st[0].collections,
            (long)st[1].collections, (long)st[2].collections);
    rcgc_runtime_free(g_rt);
}

/* rcgc_new zeroes the object: the children start NULL. */
static tree *new_node(void)
{
    tree *t = (tree *)rcgc_new(g_rt, &tree_type);
    if (t == NULL)
        bench_die("out of memory");
    return t;
}

/* Dropping the root's reference frees the whole tree at once. */
static void drop_tree(tree *t)
{
    rcgc_decref(RCGC_OBJ(t));
}

#elif defined(BT_MALLOC) || defined(BT_BOEHM)

typedef struct tree {
    struct tree *left;
    struct tree *right;
} tree;

#if defined(BT_BOEHM)
#include <gc.h>
static const char *g_impl = "boehm";
static void setup(int argc, char **argv)
{
    (void)argc, (void)argv;
    GC_INIT();
}
static void teardown(void) {}
/* GC_MALLOC returns cleared memory; the collector finds dead trees. */
static tree *new_node(void)
{
    tree *t = GC_MALLOC(sizeof(tree));
    if (t == NULL)
        bench_die("out of memory");
    return t;
}
static void drop_tree(tree *t)
{
    (void)t;
}

#else /* BT_MALLOC */
#if defined(BT_MIMALLOC)
#include <mimalloc.h>
static const char *g_impl = "mimalloc";
#else
static const char *g_impl = "glibc";
#endif
static void setup(int argc, char **argv)
{
    (void)argc, (void)argv;
#if defined(BT_MIMALLOC)
    void *p = malloc(16);
    if (!mi_is_in_heap_region(p))
        bench_die("malloc is not mimalloc in this binary (link order?)");
    free(p);
#endif
}
static void teardown(void) {}
static tree *new_node(void)
{
    tree *t = malloc(sizeof(tree));
    if (t == NULL)
        bench_die("out of memory");
    t->left = t->right = NULL;
    return t;
}
/* Children first, then the node: the by-hand way. */
static void drop_tree(tree *t)
{
    if (t->left != NULL) {
        drop_tree(t->left);
        drop_tree(t->right);
    }
    free(t);
}
#endif

#else
#error "define BT_RCGC, BT_MALLOC or BT_BOEHM"
#endif

/* A complete tree of the given depth, built children first. */
static tree *make_tree(int depth)
{
    tree *t = new_node();
    if (depth > 0) {
        t->left = make_tree(depth - 1);
        t->right = make_tree(depth - 1);
    }
    return t;
}

static long count_nodes(const tree *t)
{
    if (t->left == NULL)
        return 1;
    return 1 + count_nodes(t->left) + count_nodes(t->right);
}

static long nodes_of_depth(int depth)
{
    return (2L << depth) - 1;
}

static void expect(long got, long want, const char *what)
{
    if (got != want) {
        fprintf(stderr, "binarytrees: %s: counted %ld nodes, expected %ld\n", what, got, want);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int depth = argc > 1 ? atoi(argv[1]) : 18;
    int max_depth = depth > MIN_DEPTH + 2 ? depth : MIN_DEPTH + 2;
    setup(argc, argv);

    uint64_t t0 = bench_now_ns();

    tree *stretch = make_tree(max_depth + 1);
    long n = count_nodes(stretch);
    expect(n, nodes_of_depth(max_depth + 1), "stretch tree");
    fprintf(stderr, "stretch tree of depth %d\t check: %ld\n", max_depth + 1, n);
    drop_tree(stretch);

    tree *long_lived = make_tree(max_depth);

    for (int d = MIN_DEPTH; d <= max_depth; d += 2) {
        long iterations = 1L << (max_depth - d + MIN_DEPTH);
        long check = 0;
        for (long i = 0; i < iterations; i++) {
            tree *t = make_tree(d);
            check += count_nodes(t);
            drop_tree(t);
        }
        expect(check, iterations * nodes_of_depth(d), "short-lived trees");
        fprintf(stderr, "%ld\t trees of depth %d\t check: %ld\n", iterations, d, check);
    }

    n = count_nodes(long_lived);
    expect(n, nodes_of_depth(max_depth), "long-lived tree");
    fprintf(stderr, "long lived tree of depth %d\t check: %ld\n", max_depth, n);
    drop_tree(long_lived);

    uint64_t t1 = bench_now_ns();
    char bcase[32];
    snprintf(bcase, sizeof bcase, "binarytrees_%d", depth);
    bench_emit("gc", bcase, g_impl, "seconds", (double)(t1 - t0) / 1e9, "s");
    teardown();
    return 0;
}
