/* The tour, part 2: the cycle collector (Python's gc module) and weak
 * references (the weakref module). */
#include <rcgc.h>
#include <stdio.h>

#include "tour.h"

/* A type with an old-style finalizer (CPython's tp_del): the collector will
 * not guess in which order to run such finalizers in a cycle. */
static void legacy_del(rcgc_object *self)
{
    printf("Legacy %s finalized\n", ((my_object *)self)->name);
}

static const rcgc_type legacy_type = {
    .name = "Legacy",
    .size = sizeof(my_object),
    .traverse = my_traverse,
    .clear = my_clear,
    .legacy_del = legacy_del,
};

static void print_counts(rcgc_runtime *rt)
{
    long c[3];
    rcgc_gc_get_count(rt, c);
    printf("gc.get_count()     = (%ld, %ld, %ld)\n", c[0], c[1], c[2]);
}

static void print_stats(rcgc_runtime *rt)
{
    rcgc_gc_stats st[3];
    rcgc_gc_get_stats(rt, st);
    printf("gc.get_stats()     = [");
    for (int g = 0; g < 3; g++)
        printf("%s{'collections': %ld, 'collected': %ld, 'uncollectable': %ld}", g ? ", " : "",
               st[g].collections, st[g].collected, st[g].uncollectable);
    printf("]\n");
}

static void cycle_that_del_cannot_free(rcgc_runtime *rt)
{
    tour_heading("A cycle that del cannot free");
    printf("obj1 = MyObject(\"A\"); obj2 = MyObject(\"B\")\n");
    my_object *obj1 = my_new(rt, "A");
    my_object *obj2 = my_new(rt, "B");
    printf("obj1.reference = obj2; obj2.reference = obj1\n");
    obj1->reference = rcgc_incref(RCGC_OBJ(obj2));
    obj2->reference = rcgc_incref(RCGC_OBJ(obj1));
    printf("rcgc_refcount(obj1) = %zu, rcgc_refcount(obj2) = %zu\n",
           rcgc_refcount(RCGC_OBJ(obj1)), rcgc_refcount(RCGC_OBJ(obj2)));
    printf("del obj1; del obj2\n");
    rcgc_decref(RCGC_OBJ(obj1));
    rcgc_decref(RCGC_OBJ(obj2));
    tour_note("nothing was deleted: each object still holds a reference to the other, so");
    tour_note("both counts stay at 1.  Reference counting alone leaks this pair.");
    print_counts(rt);
    tour_note("count 0 is the net number of container objects made since the last collection");
    tour_note("(the collector runs when it passes threshold 0).");

    tour_heading("gc.collect() frees it");
    printf("gc.collect()\n");
    long n = rcgc_gc_collect(rt, 2);
    printf("-> %ld\n", n);
    tour_note("the collector found the two objects unreachable: it ran their finalizers");
    tour_note("once each (PEP 442), then cleared them, which broke the cycle and freed them.");
    tour_note("It returns how many unreachable objects it found: 2 (Python's 7 or 483 in the");
    tour_note("seed counts the interpreter's own objects as well).");
    print_counts(rt);
}

static void inspecting(rcgc_runtime *rt)
{
    tour_heading("Looking at the collector");
    printf("gc.isenabled()     = %s\n", rcgc_gc_isenabled(rt) ? "True" : "False");
    long t[3];
    rcgc_gc_get_threshold(rt, t);
    printf("gc.get_threshold() = (%ld, %ld, %ld)\n", t[0], t[1], t[2]);
    tour_note("generation 0 is collected when its count passes 700; generation 1 after 10");
    tour_note("collections of generation 0; generation 2 after 10 of generation 1, and only");
    tour_note("once the objects waiting for it are a quarter of those already there.");
    print_stats(rt);
    tour_note("one collection so far, of generation 2 (gc.collect() collects all three).");

    printf("\ngc.disable(); make 1000 garbage cycles\n");
    rcgc_gc_disable(rt);
    for (int i = 0; i < 1000; i++) {
        rcgc_list *l = rcgc_list_new(rt);
        rcgc_list_append(l, RCGC_OBJ(l));
        rcgc_decref(RCGC_OBJ(l));
    }
    print_counts(rt);
    tour_note("disabled, the collector never runs on its own: the 1000 lists pile up.");
    printf("gc.enable(); make 1000 more\n");
    rcgc_gc_enable(rt);
    for (int i = 0; i < 1000; i++) {
        rcgc_list *l = rcgc_list_new(rt);
        rcgc_list_append(l, RCGC_OBJ(l));
        rcgc_decref(RCGC_OBJ(l));
    }
    print_counts(rt);
    print_stats(rt);
    tour_note("enabled, it ran by itself: the first new list found the count at 1001, past");
    tour_note("700, and the collection freed the 1000 waiting lists; 701 lists later it ran");
    tour_note("again (the list being created is counted but not yet tracked, as in CPython).");
    tour_note("Each young collection bumps generation 1's count.  The rest waits:");
    printf("gc.collect() -> %ld\n", rcgc_gc_collect(rt, 2));

    printf("\nkeep = [] (alive); a, b = MyObject('C'), MyObject('D') in a cycle; del a, b\n");
    rcgc_list *keep = rcgc_list_new(rt);
    my_object *c = my_new(rt, "C");
    my_object *d = my_new(rt, "D");
    c->reference = RCGC_OBJ(d);
    d->reference = RCGC_OBJ(c);
    printf("gc.set_debug(gc.DEBUG_STATS | gc.DEBUG_COLLECTABLE); gc.collect()\n");
    fflush(stdout);
    rcgc_gc_set_debug(rt, RCGC_DEBUG_STATS | RCGC_DEBUG_COLLECTABLE);
    rcgc_gc_collect(rt, 2);
    rcgc_gc_set_debug(rt, 0);
    fflush(stderr);
    tour_note("CPython's messages, on stderr: the generation sizes before the collection (3");
    tour_note("objects, all young), each unreachable object, then the totals and the time.");
    rcgc_decref(RCGC_OBJ(keep));
}

static void garbage_list(rcgc_runtime *rt)
{
    tour_heading("gc.garbage: what cannot be collected");
    printf("gc.garbage = %zu objects\n", rcgc_list_len(rcgc_gc_garbage(rt)));
    tour_note("empty: since Python 3.4 (PEP 442) cycles with finalizers are collected.");
    printf("a cycle of two objects whose type has a legacy finalizer (tp_del):\n");
    my_object *x = (my_object *)rcgc_new(rt, &legacy_type);
    my_object *y = (my_object *)rcgc_new(rt, &legacy_type);
    x->name = "X";
    y->name = "Y";
    x->reference = rcgc_incref(RCGC_OBJ(y));
    y->reference = RCGC_OBJ(x);   /* our reference to x moves in */
    rcgc_decref(RCGC_OBJ(y));
    printf("gc.collect() -> %ld\n", rcgc_gc_collect(rt, 2));
    rcgc_list *garbage = rcgc_gc_garbage(rt);
    printf("gc.garbage = [");
    for (size_t i = 0; i < rcgc_list_len(garbage); i++)
        printf("%s%s %s", i ? ", " : "", rcgc_type_name(rcgc_list_get(garbage, i)),
               ((my_object *)rcgc_list_get(garbage, i))->name);
    printf("]\n");
    tour_note("an old-style finalizer may need the other objects of its cycle intact, and");
    tour_note("the collector cannot pick an order: it leaves the whole cycle alone, counts it");
    tour_note("as uncollectable and puts it in gc.garbage for the program to deal with.");
    printf("the program breaks the cycle itself:\n");
    rcgc_object *first = rcgc_list_pop(garbage, 0);
    rcgc_object *second = rcgc_list_pop(garbage, 0);
    RCGC_CLEAR(((my_object *)first)->reference);
    rcgc_decref(second);
    rcgc_decref(first);
    print_stats(rt);
}

/* A tree node: children held strongly, the parent weakly. */
typedef struct tree_node {
    rcgc_object ob;
    const char *name;
    rcgc_list *children;
    rcgc_weakref *parent;
} tree_node;

static int tree_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    tree_node *t = (tree_node *)self;
    int rc = t->children ? visit(RCGC_OBJ(t->children), arg) : 0;
    if (rc == 0 && t->parent)
        rc = visit((rcgc_object *)t->parent, arg);
    return rc;
}

static int tree_clear(rcgc_object *self)
{
    tree_node *t = (tree_node *)self;
    RCGC_CLEAR(t->children);
    RCGC_CLEAR(t->parent);
    return 0;
}

static void tree_finalize(rcgc_object *self)
{
    printf("Node %s deleted\n", ((tree_node *)self)->name);
}

static const rcgc_type tree_type = {
    .name = "Node",
    .size = sizeof(tree_node),
    .traverse = tree_traverse,
    .clear = tree_clear,
    .finalize = tree_finalize,
};

static tree_node *tree_new(rcgc_runtime *rt, const char *name, tree_node *parent)
{
    tree_node *t = (tree_node *)rcgc_new(rt, &tree_type);
    t->name = name;
    t->children = rcgc_list_new(rt);
    if (parent) {
        t->parent = rcgc_weakref_new(RCGC_OBJ(parent), NULL, NULL);
        rcgc_list_append(parent->children, RCGC_OBJ(t));
        rcgc_decref(RCGC_OBJ(t));   /* the parent's list keeps it */
    }
    return t;
}

static void weak_parents(rcgc_runtime *rt)
{
    tour_heading("Weak references break parent/child cycles");
    rcgc_gc_disable(rt);
    printf("root = Node('root'); Node('left', parent=root); Node('right', parent=root)\n");
    tree_node *root = tree_new(rt, "root", NULL);
    tree_node *left = tree_new(rt, "left", root);
    tree_new(rt, "right", root);
    rcgc_object *p = rcgc_weakref_get(left->parent);
    printf("left.parent() is root: %s\n", p == RCGC_OBJ(root) ? "True" : "False");
    rcgc_xdecref(p);
    printf("weakref.getweakrefcount(root) = %zu, rcgc_refcount(root) = %zu\n",
           rcgc_weakref_count(RCGC_OBJ(root)), rcgc_refcount(RCGC_OBJ(root)));
    tour_note("the children point back at their parent through weak references, which do");
    tour_note("not count: root is referenced once (by us), and there is no cycle.");
    rcgc_weakref *watch = rcgc_weakref_new(RCGC_OBJ(left), NULL, NULL);
    printf("del root\n");
    rcgc_decref(RCGC_OBJ(root));
    tour_note("freed at once by reference counting - root, then its children - with the");
    tour_note("collector switched off.");
    printf("a weak reference to 'left' now gives: %s\n",
           rcgc_weakref_peek(watch) ? "the node" : "None");
    printf("gc.collect() -> %ld (only the weak reference 'watch' is left, and it is alive)\n",
           rcgc_gc_collect(rt, 2));
    rcgc_decref((rcgc_object *)watch);
    rcgc_gc_enable(rt);
}

void tour_gc(void)
{
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    if (rt == NULL) {
        printf("rcgc_runtime_new failed\n");
        return;
    }
    cycle_that_del_cannot_free(rt);
    inspecting(rt);
    garbage_list(rt);
    weak_parents(rt);
    rcgc_runtime_free(rt);
}
