/*
 * list.c - the built-in list: a growable array of strong references, and a
 * collectable object (what gc.garbage, gc.get_objects() and
 * gc.get_referrers() return).
 *
 * Invariants: len <= cap; items[0..len) are non-NULL strong references;
 * items is NULL iff cap == 0.  The items array lives in the MEM domain.
 */
#include <string.h>

#include "runtime.h"

struct rcgc_list {
    rcgc_object ob;
    size_t len;
    size_t cap;
    rcgc_object **items;
};

static int list_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    rcgc_list *l = (rcgc_list *)self;
    for (size_t i = 0; i < l->len; i++) {
        int rc = visit(l->items[i], arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* Drop every item; the items are detached from the list first so that a
 * finalizer running during the decrefs sees an empty, consistent list. */
static int list_clear(rcgc_object *self)
{
    rcgc_list *l = (rcgc_list *)self;
    rcgc_object **items = l->items;
    size_t n = l->len;
    l->items = NULL;
    l->len = l->cap = 0;
    for (size_t i = n; i-- > 0;)
        rcgc_decref(items[i]);
    rcgc_mem_free(rcgc_obj_runtime(self), items);
    return 0;
}

const rcgc_type rcgc_list_type = {
    .name = "list",
    .size = sizeof(rcgc_list),
    .flags = RCGC_TYPE_GC,
    .traverse = list_traverse,
    .clear = list_clear,
};

rcgc_list *rcgc_list_new_at(rcgc_runtime *rt, size_t capacity, const char *file, int line)
{
    rcgc_list *l = (rcgc_list *)rcgc_new_at(rt, &rcgc_list_type, file, line);
    if (l == NULL || capacity == 0)
        return l;
    l->items = rcgc_mem_malloc_at(rt, capacity * sizeof(rcgc_object *), file, line);
    if (l->items == NULL) {
        rcgc_decref(&l->ob);
        return NULL;
    }
    l->cap = capacity;
    return l;
}

size_t rcgc_list_len(const rcgc_list *l)
{
    return l->len;
}

rcgc_object *rcgc_list_get(const rcgc_list *l, size_t i)
{
    return i < l->len ? l->items[i] : NULL;
}

/* Make room for one more item (growth by ~1.5x, like CPython's list); the
 * memory is traced to the caller's line, as Python traces a list's growth
 * to the line that appends. */
static int list_reserve(rcgc_list *l, const char *file, int line)
{
    if (l->len < l->cap)
        return RCGC_OK;
    size_t cap = l->cap + (l->cap >> 1) + 4;
    if (cap > SIZE_MAX / sizeof(rcgc_object *))
        return RCGC_ENOMEM;
    rcgc_object **items = rcgc_mem_realloc_at(rcgc_obj_runtime(&l->ob), l->items,
                                              cap * sizeof(rcgc_object *), file, line);
    if (items == NULL)
        return RCGC_ENOMEM;
    l->items = items;
    l->cap = cap;
    return RCGC_OK;
}

int rcgc_list_append_at(rcgc_list *l, rcgc_object *o, const char *file, int line)
{
    if (o == NULL)
        return RCGC_EINVAL;
    if (list_reserve(l, file, line) != RCGC_OK)
        return RCGC_ENOMEM;
    l->items[l->len++] = rcgc_incref(o);
    return RCGC_OK;
}

int rcgc_list_insert_at(rcgc_list *l, size_t i, rcgc_object *o, const char *file, int line)
{
    if (o == NULL)
        return RCGC_EINVAL;
    if (list_reserve(l, file, line) != RCGC_OK)
        return RCGC_ENOMEM;
    if (i > l->len)
        i = l->len;
    memmove(&l->items[i + 1], &l->items[i], (l->len - i) * sizeof(rcgc_object *));
    l->items[i] = rcgc_incref(o);
    l->len++;
    return RCGC_OK;
}

int rcgc_list_set(rcgc_list *l, size_t i, rcgc_object *o)
{
    if (o == NULL || i >= l->len)
        return RCGC_EINVAL;
    rcgc_object *old = l->items[i];
    l->items[i] = rcgc_incref(o);
    rcgc_decref(old);
    return RCGC_OK;
}

rcgc_object *rcgc_list_pop(rcgc_list *l, size_t i)
{
    if (i >= l->len)
        return NULL;
    rcgc_object *o = l->items[i];
    memmove(&l->items[i], &l->items[i + 1], (l->len - i - 1) * sizeof(rcgc_object *));
    l->len--;
    return o;
}

long rcgc_list_index(const rcgc_list *l, const rcgc_object *o)
{
    for (size_t i = 0; i < l->len; i++)
        if (l->items[i] == o)
            return (long)i;
    return -1;
}

int rcgc_list_remove(rcgc_list *l, rcgc_object *o)
{
    long i = rcgc_list_index(l, o);
    if (i < 0)
        return RCGC_EINVAL;
    rcgc_decref(rcgc_list_pop(l, (size_t)i));
    return RCGC_OK;
}

void rcgc_list_clear(rcgc_list *l)
{
    list_clear(&l->ob);
}

/* Stable insertion sort for short runs merged bottom-up: no allocation
 * beyond one temporary array; falls back to insertion sort alone when that
 * array cannot be allocated. */
void rcgc_list_sort(rcgc_list *l, int (*cmp)(const rcgc_object *, const rcgc_object *))
{
    size_t n = l->len;
    if (n < 2)
        return;
    rcgc_runtime *rt = rcgc_obj_runtime(&l->ob);
    rcgc_object **a = l->items;
    const size_t run = 16;
    for (size_t lo = 0; lo < n; lo += run) {
        size_t hi = lo + run < n ? lo + run : n;
        for (size_t i = lo + 1; i < hi; i++) {
            rcgc_object *x = a[i];
            size_t j = i;
            while (j > lo && cmp(a[j - 1], x) > 0) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
    }
    if (n <= run)
        return;
    rcgc_object **tmp = rcgc_mem_malloc(rt, n * sizeof *tmp);
    if (tmp == NULL) {
        for (size_t i = 1; i < n; i++) {
            rcgc_object *x = a[i];
            size_t j = i;
            while (j > 0 && cmp(a[j - 1], x) > 0) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    for (size_t width = run; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = cmp(a[j], a[i]) < 0 ? a[j++] : a[i++];
            while (i < mid)
                tmp[k++] = a[i++];
            while (j < hi)
                tmp[k++] = a[j++];
        }
        memcpy(a, tmp, n * sizeof *a);
    }
    rcgc_mem_free(rt, tmp);
}
