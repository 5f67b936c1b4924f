/* The tour, part 1: reference counting, freeing at zero, sizes, pools and
 * arenas, choosing the allocator. */
#include <rcgc.h>
#include <stdio.h>
#include <string.h>

#include "tour.h"

/* A float-like object holding no references: never tracked. */
typedef struct number {
    rcgc_object ob;
    double value;
} number;
static const rcgc_type number_type = {.name = "float", .size = sizeof(number)};

static void refcounts(rcgc_runtime *rt)
{
    tour_heading("Reference counting (sys.getrefcount)");
    printf("a = []\n");
    rcgc_list *a = rcgc_list_new(rt);
    printf("rcgc_refcount(a) = %zu\n", rcgc_refcount(RCGC_OBJ(a)));
    tour_note("Python prints 2 here: sys.getrefcount(a) holds one more reference, its own");
    tour_note("argument, while it looks.  rcgc_refcount is the exact count: just `a`.");
    printf("b = a\n");
    rcgc_object *b = rcgc_incref(RCGC_OBJ(a));
    printf("rcgc_refcount(a) = %zu\n", rcgc_refcount(RCGC_OBJ(a)));
    tour_note("`b = a` is rcgc_incref: two references now (Python shows 3).");
    printf("del b\n");
    rcgc_decref(b);
    printf("rcgc_refcount(a) = %zu\n", rcgc_refcount(RCGC_OBJ(a)));
    tour_note("`del b` is rcgc_decref: back to one (Python shows 2).");
    rcgc_list *holder = rcgc_list_new(rt);
    rcgc_list_append(holder, RCGC_OBJ(a));
    printf("holder.append(a): rcgc_refcount(a) = %zu\n", rcgc_refcount(RCGC_OBJ(a)));
    tour_note("containers hold strong references too.");
    rcgc_decref(RCGC_OBJ(holder));
    printf("del holder: rcgc_refcount(a) = %zu\n", rcgc_refcount(RCGC_OBJ(a)));
    rcgc_decref(RCGC_OBJ(a));
}

static void freeing_at_zero(rcgc_runtime *rt)
{
    tour_heading("Freed at zero: del and __del__");
    my_object *obj = my_new(rt, "A");
    printf("del obj\n");
    rcgc_decref(RCGC_OBJ(obj));
    tour_note("the last reference went away: the finalizer ran and the memory was freed");
    tour_note("at once, inside rcgc_decref - no collector involved.");
    my_object *parent = my_new(rt, "parent");
    parent->reference = RCGC_OBJ(my_new(rt, "child"));
    printf("del parent\n");
    rcgc_decref(RCGC_OBJ(parent));
    tour_note("freeing the parent dropped its reference to the child, which died next.");
}

static void sizes(rcgc_runtime *rt)
{
    tour_heading("Object sizes (sys.getsizeof)");
    number *x = (number *)rcgc_new(rt, &number_type);
    rcgc_list *l = rcgc_list_new(rt);
    my_object *m = my_new(rt, "sized");
    printf("rcgc_getsizeof(float)    = %zu bytes (tracked: %s)\n", rcgc_getsizeof(RCGC_OBJ(x)),
           rcgc_gc_is_tracked(RCGC_OBJ(x)) ? "yes" : "no");
    printf("rcgc_getsizeof(list)     = %zu bytes (tracked: %s)\n", rcgc_getsizeof(RCGC_OBJ(l)),
           rcgc_gc_is_tracked(RCGC_OBJ(l)) ? "yes" : "no");
    printf("rcgc_getsizeof(MyObject) = %zu bytes (tracked: %s)\n", rcgc_getsizeof(RCGC_OBJ(m)),
           rcgc_gc_is_tracked(RCGC_OBJ(m)) ? "yes" : "no");
    tour_note("rcgc_getsizeof counts the whole block: the float's 24 B struct sits in a 32 B");
    tour_note("size class (CPython's 24 B float does too, though getsizeof says 24).");
    tour_note("CPython: sys.getsizeof([]) is 56, of which 16 B are the GC header every tracked");
    tour_note("object carries on top of its 16 B PyObject head.");
    tour_note("rcgc's header is 16 B whether or not the object is tracked: the collector finds");
    tour_note("tracked objects through a bitmap in their pool, not through list links.");
    tour_note("A list's items live in a separate block, as in CPython.");
    rcgc_decref(RCGC_OBJ(x));
    rcgc_decref(RCGC_OBJ(l));
    rcgc_decref(RCGC_OBJ(m));
}

static void pools_and_arenas(rcgc_runtime *rt)
{
    tour_heading("Pools and arenas (sys._debugmallocstats)");
    enum { N = 30000 };
    static void *blocks[N];
    for (int i = 0; i < N; i++)
        blocks[i] = rcgc_mem_malloc(rt, (size_t)(16 + (i % 8) * 48));
    rcgc_mem_print_stats(rt, stdout);
    tour_note("small blocks (<= 512 B) come from 16 KiB pools of one size class, carved");
    tour_note("lazily inside 1 MiB arenas mapped from the OS; bigger ones go to malloc.");
    for (int i = 0; i < N; i++)
        rcgc_mem_free(rt, blocks[i]);
    rcgc_mem_stats st = {.size = sizeof st};
    rcgc_mem_get_stats(rt, &st);
    printf("after freeing everything: %zu arena(s) mapped, %zu returned to the OS\n",
           st.arenas_current, st.arenas_freed_total);
    tour_note("empty arenas go back to the OS (one is kept to avoid thrashing).");
}

static void choosing_the_allocator(void)
{
    tour_heading("Choosing the allocator (PYTHONMALLOC, PyMem_SetAllocator)");
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = "malloc"};
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    rcgc_list *l = rcgc_list_new(rt);
    printf("malloc_mode=\"malloc\": list at %p is in an rcgc pool: %s\n", (void *)l,
           rcgc_mem_is_pool_address(l) ? "yes" : "no");
    tour_note("RCGC_MALLOC=malloc (or rcgc_config.malloc_mode) sends the MEM and OBJ domains");
    tour_note("to libc malloc; rcgc_config.allocators / rcgc_mem_set_allocator plug in any");
    tour_note("allocator (mimalloc, jemalloc...) per domain.  RCGC_MALLOC=debug adds");
    tour_note("CPython's debug hooks: guard bytes 0xFD, 0xCD in new blocks, 0xDD in freed ones.");
    rcgc_decref(RCGC_OBJ(l));
    rcgc_runtime_free(rt);
}

void tour_core(void)
{
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    refcounts(rt);
    freeing_at_zero(rt);
    sizes(rt);
    pools_and_arenas(rt);
    rcgc_runtime_free(rt);
    choosing_the_allocator();
}
