/*
 * weakmap.c - a weak-valued map from string keys to objects (Python's
 * WeakValueDictionary), for caches: an entry vanishes when its value dies.
 *
 * Each entry holds a weak reference with a callback (CPython's KeyedRef).
 * The callback only counts the death (it may run inside a collection or a
 * deallocation, where changing the table would be unsafe); dead entries are
 * dropped when next looked up, and all at once by rcgc_weakmap_len().
 *
 * Invariants:
 *   M1  slots[0..mask] is open addressing with linear probing, no
 *       tombstones; used entries, used*2 <= mask+1; slots NULL iff mask 0.
 *   M2  every entry owns a copy of its key (MEM domain) and a strong
 *       reference to its weak reference, whose callback argument is the map.
 *   M3  a weak reference the map lets go of is killed first (no callback
 *       can reach the map after it is cleared).
 */
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "weakref.h"

typedef struct wm_entry {
    char *key;           /* NULL: empty */
    size_t hash;
    rcgc_weakref *ref;
} wm_entry;

struct rcgc_weakmap {
    rcgc_object ob;
    wm_entry *slots;
    size_t mask;
    size_t used;
    size_t ndead;        /* value deaths since the last purge (an upper bound) */
};

static size_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return (size_t)h;
}

static wm_entry *find(const rcgc_weakmap *m, const char *key, size_t h)
{
    if (m->slots == NULL)
        return NULL;
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        wm_entry *e = &m->slots[i];
        if (e->key == NULL)
            return NULL;
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    }
}

static void place(wm_entry *slots, size_t mask, wm_entry e)
{
    size_t i = e.hash & mask;
    while (slots[i].key != NULL)
        i = (i + 1) & mask;
    slots[i] = e;
}

/* Take e out of the table (backward-shift deletion); returns its content,
 * which the caller releases once the table is consistent again. */
static wm_entry take(rcgc_weakmap *m, wm_entry *e)
{
    wm_entry out = *e;
    size_t mask = m->mask;
    size_t i = (size_t)(e - m->slots), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->slots[j].key == NULL)
            break;
        size_t k = m->slots[j].hash & mask;
        int stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->slots[i].ref = NULL;
    m->used--;
    return out;
}

static void release(rcgc_runtime *rt, wm_entry e)
{
    rcgc_mem_free(rt, e.key);
    rcgc_weak_kill(e.ref);
    rcgc_decref((rcgc_object *)e.ref);
}

static int weakmap_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    rcgc_weakmap *m = (rcgc_weakmap *)self;
    for (size_t i = 0; m->slots && i <= m->mask; i++) {
        if (m->slots[i].key != NULL) {
            int rc = visit((rcgc_object *)m->slots[i].ref, arg);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Empty the map; the table is detached first so that code run by the
 * releases sees an empty, consistent map. */
static int weakmap_clear(rcgc_object *self)
{
    rcgc_weakmap *m = (rcgc_weakmap *)self;
    rcgc_runtime *rt = rcgc_obj_runtime(self);
    wm_entry *slots = m->slots;
    size_t cap = slots ? m->mask + 1 : 0;
    m->slots = NULL;
    m->mask = m->used = m->ndead = 0;
    for (size_t i = 0; i < cap; i++)
        if (slots[i].key != NULL)
            rcgc_weak_kill(slots[i].ref);   /* M3, before any release */
    for (size_t i = 0; i < cap; i++)
        if (slots[i].key != NULL)
            release(rt, slots[i]);
    if (slots)
        rcgc_mem_free(rt, slots);
    return 0;
}

static const rcgc_type weakmap_type = {
    .name = "WeakValueDictionary",
    .size = sizeof(rcgc_weakmap),
    .flags = RCGC_TYPE_GC,
    .traverse = weakmap_traverse,
    .clear = weakmap_clear,
};

static void value_died(rcgc_weakref *w, void *arg)
{
    (void)w;
    ((rcgc_weakmap *)arg)->ndead++;
}

rcgc_weakmap *rcgc_weakmap_new(rcgc_runtime *rt)
{
    return (rcgc_weakmap *)rcgc_new(rt, &weakmap_type);
}

/* Room for one more entry; RCGC_OK or RCGC_ENOMEM (map unchanged). */
static int reserve(rcgc_runtime *rt, rcgc_weakmap *m)
{
    size_t cap = m->slots ? m->mask + 1 : 0;
    if ((m->used + 1) * 2 <= cap)
        return RCGC_OK;
    size_t ncap = cap ? cap * 2 : 8;
    wm_entry *ns = rcgc_mem_calloc(rt, ncap, sizeof *ns);
    if (ns == NULL)
        return RCGC_ENOMEM;
    for (size_t i = 0; i < cap; i++)
        if (m->slots[i].key != NULL)
            place(ns, ncap - 1, m->slots[i]);
    rcgc_mem_free(rt, m->slots);
    m->slots = ns;
    m->mask = ncap - 1;
    return RCGC_OK;
}

int rcgc_weakmap_set(rcgc_weakmap *m, const char *key, rcgc_object *value)
{
    if (key == NULL || value == NULL)
        return RCGC_EINVAL;
    rcgc_runtime *rt = rcgc_obj_runtime(&m->ob);
    /* Everything that can fail or collect first; the table changes last. */
    rcgc_weakref *w = rcgc_weakref_new(value, value_died, m);
    if (w == NULL)
        return RCGC_ENOMEM;
    size_t h = hash_str(key);
    wm_entry *e = find(m, key, h);
    if (e != NULL) {
        wm_entry old = *e;
        e->ref = w;
        rcgc_weak_kill(old.ref);
        rcgc_decref((rcgc_object *)old.ref);
        return RCGC_OK;
    }
    size_t len = strlen(key);
    char *copy = rcgc_mem_malloc(rt, len + 1);
    if (copy == NULL || reserve(rt, m) != RCGC_OK) {
        rcgc_mem_free(rt, copy);
        rcgc_weak_kill(w);
        rcgc_decref((rcgc_object *)w);
        return RCGC_ENOMEM;
    }
    memcpy(copy, key, len + 1);
    place(m->slots, m->mask, (wm_entry){copy, h, w});
    m->used++;
    return RCGC_OK;
}

rcgc_object *rcgc_weakmap_get(rcgc_weakmap *m, const char *key)
{
    if (key == NULL)
        return NULL;
    wm_entry *e = find(m, key, hash_str(key));
    if (e == NULL)
        return NULL;
    rcgc_object *v = rcgc_weakref_get(e->ref);
    if (v == NULL)
        release(rcgc_obj_runtime(&m->ob), take(m, e));   /* dead: drop it */
    return v;
}

/* RCGC_OK, or RCGC_EINVAL when the key is absent or its value is dead. */
int rcgc_weakmap_delete(rcgc_weakmap *m, const char *key)
{
    if (key == NULL)
        return RCGC_EINVAL;
    wm_entry *e = find(m, key, hash_str(key));
    if (e == NULL)
        return RCGC_EINVAL;
    int alive = rcgc_weakref_peek(e->ref) != NULL;
    release(rcgc_obj_runtime(&m->ob), take(m, e));
    return alive ? RCGC_OK : RCGC_EINVAL;
}

/* Drop every dead entry, in one pass: after a deletion the same slot is
 * looked at again (backward shift may have moved a later entry into it).
 * If code run by a release replaced the table, start over. */
static void purge(rcgc_weakmap *m)
{
    rcgc_runtime *rt = rcgc_obj_runtime(&m->ob);
    m->ndead = 0;
    size_t i = 0;
    while (m->slots != NULL && i <= m->mask) {
        wm_entry *e = &m->slots[i];
        if (e->key != NULL && rcgc_weakref_peek(e->ref) == NULL) {
            const wm_entry *before = m->slots;
            release(rt, take(m, e));
            if (m->slots != before)
                i = 0;
            continue;
        }
        i++;
    }
}

size_t rcgc_weakmap_len(rcgc_weakmap *m)
{
    if (m->ndead > 0)
        purge(m);
    return m->used;
}
