/*
 * weakref.c - weak reference objects (CPython's Objects/weakrefobject.c
 * behaviour), the object -> weak references side table, clearing at
 * deallocation, the collector's weak reference step, and weakref.finalize.
 *
 * weakref.h states the layout and invariants W1-W3.  Objects that never get
 * a weak reference pay nothing: no header field, one flag bit that is never
 * set.  An object with weak references has RCGC_OF_WEAKREFS and an entry in
 * an open-addressing table keyed by its address.
 */
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "runtime.h"
#include "weakref.h"

/*
 * A weak reference.  referent is NULL once dead (W2).  The callback, its
 * argument and the optional strong `arg_obj` stay until the callback ran
 * (deallocation path) or until the weak reference is cleared (collector
 * path: CPython keeps wr_callback there too).
 */
struct rcgc_weakref {
    rcgc_object ob;
    rcgc_object *referent;
    rcgc_weakref *prev;          /* the referent's list (W3 order) */
    rcgc_weakref *next;
    rcgc_weakref_callback callback;
    void *arg;
    rcgc_object *arg_obj;        /* strong, traversed */
    rcgc_weakref *cb_next;       /* callbacks waiting to run */
};

/* weakref.finalize: alive while wr != NULL.  Like Python's finalize object,
 * a handle has two owners: the registry, until it is called or detached
 * (then it moves to the retired list), and the caller, until
 * rcgc_weakref_finalizer_release.  It is freed when both have let go, or
 * with the runtime. */
struct rcgc_finalizer {
    rcgc_weakref *wr;            /* strong; NULL once called or detached */
    void (*fn)(void *arg);
    void *arg;
    rcgc_runtime *rt;
    int refs;                    /* registry + caller */
    rcgc_finalizer *next;        /* registry (newest first) or retired list */
    rcgc_finalizer *prev;
};

typedef struct weak_slot {
    rcgc_object *key;            /* NULL: empty */
    rcgc_weakref *head;
} weak_slot;

/*
 * Per-runtime state, created with the first weak reference.
 *   slots[0..mask]  open addressing, linear probing, no tombstones
 *                   (backward-shift deletion); used*2 <= mask+1.
 */
struct rcgc_weak_state {
    weak_slot *slots;
    size_t mask;
    size_t used;
    rcgc_finalizer *finalizers;  /* alive, newest first */
    rcgc_finalizer *retired;     /* called or detached, still held by the caller */
    int atexit_done;
};

/* ------------------------------------------------------------- the table */

static inline size_t hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

static struct rcgc_weak_state *weak_state(rcgc_runtime *rt)
{
    if (rt->weak == NULL)
        rt->weak = rcgc_mem_domain_calloc(rt, RCGC_DOMAIN_RAW, 1, sizeof *rt->weak);
    return rt->weak;
}

static weak_slot *slot_find(const struct rcgc_weak_state *ws, const rcgc_object *o)
{
    if (ws == NULL || ws->slots == NULL)
        return NULL;
    size_t i = hash_ptr(o) & ws->mask;
    for (;;) {
        weak_slot *s = &ws->slots[i];
        if (s->key == o)
            return s;
        if (s->key == NULL)
            return NULL;
        i = (i + 1) & ws->mask;
    }
}

static void slot_place(struct rcgc_weak_state *ws, rcgc_object *key, rcgc_weakref *head)
{
    size_t i = hash_ptr(key) & ws->mask;
    while (ws->slots[i].key != NULL)
        i = (i + 1) & ws->mask;
    ws->slots[i].key = key;
    ws->slots[i].head = head;
}

/* Add an entry for o (absent); RCGC_OK or RCGC_ENOMEM (table unchanged). */
static int slot_add(rcgc_runtime *rt, struct rcgc_weak_state *ws, rcgc_object *o,
                    rcgc_weakref *head)
{
    size_t cap = ws->slots ? ws->mask + 1 : 0;
    if ((ws->used + 1) * 2 > cap) {
        size_t ncap = cap ? cap * 2 : 64;
        weak_slot *ns = rcgc_mem_domain_calloc(rt, RCGC_DOMAIN_RAW, ncap, sizeof *ns);
        if (ns == NULL)
            return RCGC_ENOMEM;
        weak_slot *old = ws->slots;
        ws->slots = ns;
        ws->mask = ncap - 1;
        for (size_t i = 0; i < cap; i++)
            if (old[i].key != NULL)
                slot_place(ws, old[i].key, old[i].head);
        if (old)
            rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, old);
    }
    slot_place(ws, o, head);
    ws->used++;
    o->flags |= RCGC_OF_WEAKREFS;
    return RCGC_OK;
}

/* Remove an entry (backward-shift deletion keeps probe chains whole) and
 * clear its object's flag (W1). */
static void slot_remove(struct rcgc_weak_state *ws, weak_slot *s)
{
    s->key->flags &= ~RCGC_OF_WEAKREFS;
    size_t mask = ws->mask;
    size_t i = (size_t)(s - ws->slots), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (ws->slots[j].key == NULL)
            break;
        size_t k = hash_ptr(ws->slots[j].key) & mask;
        /* The entry at j may move to the hole at i unless its home k lies
         * cyclically in (i, j]. */
        int stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            ws->slots[i] = ws->slots[j];
            i = j;
        }
    }
    ws->slots[i].key = NULL;
    ws->slots[i].head = NULL;
    ws->used--;
}

/* ------------------------------------------------------------ the lists */

/* Take w off its referent's list and make it dead; keeps the callback. */
static void clear_ref(rcgc_runtime *rt, rcgc_weakref *w)
{
    rcgc_object *o = w->referent;
    if (o == NULL)
        return;
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else {
        weak_slot *s = slot_find(rt->weak, o);
        RCGC_ASSERT(s != NULL && s->head == w);
        s->head = w->next;
        if (s->head == NULL)
            slot_remove(rt->weak, s);
    }
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->referent = NULL;
    w->prev = w->next = NULL;
}

/* The shared callback-less reference to o (the head, when it has no
 * callback: W3), or NULL. */
static rcgc_weakref *basic_ref(rcgc_runtime *rt, const rcgc_object *o)
{
    if (!(o->flags & RCGC_OF_WEAKREFS))
        return NULL;
    weak_slot *s = slot_find(rt->weak, o);
    if (s == NULL || s->head->callback != NULL)
        return NULL;
    return s->head;
}

/* Detach o's whole list (the entry goes, W1) and return its head. */
static rcgc_weakref *take_list(rcgc_runtime *rt, rcgc_object *o)
{
    weak_slot *s = slot_find(rt->weak, o);
    if (s == NULL) {
        o->flags &= ~RCGC_OF_WEAKREFS;
        return NULL;
    }
    rcgc_weakref *head = s->head;
    slot_remove(rt->weak, s);
    return head;
}

/* -------------------------------------------------------- the object */

static int weakref_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    rcgc_weakref *w = (rcgc_weakref *)self;
    if (w->arg_obj != NULL)
        return visit(w->arg_obj, arg);
    return 0;
}

/* CPython's clear_weakref: dead, and the callback forgotten. */
static int weakref_clear(rcgc_object *self)
{
    rcgc_weakref *w = (rcgc_weakref *)self;
    clear_ref(rcgc_obj_runtime(self), w);
    w->callback = NULL;
    w->arg = NULL;
    RCGC_CLEAR(w->arg_obj);
    return 0;
}

const rcgc_type rcgc_weakref_type = {
    .name = "weakref.ReferenceType",
    .size = sizeof(rcgc_weakref),
    .flags = RCGC_TYPE_GC,
    .traverse = weakref_traverse,
    .clear = weakref_clear,
};

static rcgc_weakref *weakref_make(rcgc_object *target, rcgc_weakref_callback callback,
                                  void *arg, rcgc_object *arg_obj)
{
    if (target == NULL)
        return NULL;
    rcgc_runtime *rt = rcgc_obj_runtime(target);
    RCGC_ENTER(rt);
    rcgc_weakref *w = NULL;
    if (callback == NULL) {
        /* CPython shares the callback-less reference. */
        w = basic_ref(rt, target);
        if (w != NULL) {
            rcgc_incref(&w->ob);
            goto done;
        }
    }
    if (weak_state(rt) == NULL)
        goto done;
    w = (rcgc_weakref *)rcgc_new(rt, &rcgc_weakref_type);
    if (w == NULL)
        goto done;
    if (callback == NULL) {
        /* rcgc_new may have collected and changed the list: look again. */
        rcgc_weakref *basic = basic_ref(rt, target);
        if (basic != NULL) {
            rcgc_decref(&w->ob);
            w = (rcgc_weakref *)rcgc_incref(&basic->ob);
            goto done;
        }
    }
    w->callback = callback;
    w->arg = callback ? arg : NULL;
    w->arg_obj = callback ? rcgc_xincref(arg_obj) : NULL;
    /* W3: the basic reference at the head; the others right after it (so
     * newer callbacks come first, as in CPython). */
    rcgc_weakref *prev = callback ? basic_ref(rt, target) : NULL;
    if (prev != NULL) {
        w->prev = prev;
        w->next = prev->next;
        if (prev->next)
            prev->next->prev = w;
        prev->next = w;
    } else if (target->flags & RCGC_OF_WEAKREFS) {
        weak_slot *s = slot_find(rt->weak, target);
        w->next = s->head;
        s->head->prev = w;
        s->head = w;
    } else if (slot_add(rt, rt->weak, target, w) != RCGC_OK) {
        rcgc_decref(&w->ob);   /* not linked yet: nothing to unlink */
        w = NULL;
        goto done;
    }
    w->referent = target;
done:
    RCGC_LEAVE(rt);
    return w;
}

rcgc_weakref *rcgc_weakref_new(rcgc_object *target, rcgc_weakref_callback callback, void *arg)
{
    return weakref_make(target, callback, arg, NULL);
}

rcgc_weakref *rcgc_weakref_new_obj(rcgc_object *target, rcgc_weakref_callback callback,
                                   rcgc_object *arg_obj)
{
    return weakref_make(target, callback, arg_obj, arg_obj);
}

/* A referent whose refcount is 0 is being deallocated: already dead (CPython
 * 3.11's PyWeakref_GET_OBJECT). */
rcgc_object *rcgc_weakref_peek(const rcgc_weakref *w)
{
    rcgc_object *o = w->referent;
    return (o != NULL && o->refcnt > 0) ? o : NULL;
}

rcgc_object *rcgc_weakref_get(rcgc_weakref *w)
{
    return rcgc_xincref(rcgc_weakref_peek(w));
}

size_t rcgc_weak_nobjects(const rcgc_runtime *rt)
{
    return rt->weak != NULL ? rt->weak->used : 0;
}

size_t rcgc_weakref_count(const rcgc_object *o)
{
    if (!(o->flags & RCGC_OF_WEAKREFS))
        return 0;
    weak_slot *s = slot_find(rcgc_obj_runtime(o)->weak, o);
    size_t n = 0;
    for (rcgc_weakref *w = s ? s->head : NULL; w; w = w->next)
        n++;
    return n;
}

rcgc_list *rcgc_weakref_list(rcgc_object *o)
{
    rcgc_runtime *rt = rcgc_obj_runtime(o);
    RCGC_ENTER(rt);
    rcgc_list *l = rcgc_list_new(rt);
    if (l != NULL && (o->flags & RCGC_OF_WEAKREFS)) {
        weak_slot *s = slot_find(rt->weak, o);
        /* Appending cannot run user code, so the list stays put. */
        for (rcgc_weakref *w = s ? s->head : NULL; w; w = w->next) {
            if (w->ob.refcnt == 0)
                continue;   /* being deallocated */
            if (rcgc_list_append(l, &w->ob) != RCGC_OK) {
                RCGC_CLEAR(l);
                break;
            }
        }
    }
    RCGC_LEAVE(rt);
    return l;
}

void rcgc_weak_kill(rcgc_weakref *w)
{
    weakref_clear(&w->ob);
}

/* ------------------------------------------------------------- clearing */

/* Run the callbacks queued on `chain` (each holding a reference taken by
 * the caller), in order, each seeing its weak reference dead. */
static void run_detached_callbacks(rcgc_weakref *chain)
{
    while (chain != NULL) {
        rcgc_weakref *w = chain;
        chain = w->cb_next;
        w->cb_next = NULL;
        rcgc_weakref_callback fn = w->callback;
        void *arg = w->arg;
        rcgc_object *arg_obj = w->arg_obj;
        w->callback = NULL;
        w->arg = NULL;
        w->arg_obj = NULL;
        if (fn != NULL)
            fn(w, arg);
        rcgc_xdecref(arg_obj);
        rcgc_decref(&w->ob);
    }
}

/*
 * CPython's PyObject_ClearWeakRefs: every weak reference to o dies first,
 * then the callbacks run in list order.  A weak reference that is itself
 * being deallocated (refcount 0) gets no callback.
 */
void rcgc_weak_clear_on_dealloc(rcgc_runtime *rt, rcgc_object *o)
{
    rcgc_weakref *w = take_list(rt, o);
    rcgc_weakref *chain = NULL, **tail = &chain;
    while (w != NULL) {
        rcgc_weakref *next = w->next;
        w->referent = NULL;
        w->prev = w->next = NULL;
        if (w->callback != NULL && w->ob.refcnt > 0) {
            rcgc_incref(&w->ob);
            *tail = w;
            tail = &w->cb_next;
        }
        w = next;
    }
    run_detached_callbacks(chain);
}

void rcgc_weak_clear_silently(rcgc_runtime *rt, rcgc_object *o)
{
    rcgc_weakref *w = take_list(rt, o);
    while (w != NULL) {
        rcgc_weakref *next = w->next;
        w->referent = NULL;
        w->prev = w->next = NULL;
        w = next;
    }
}

long rcgc_weak_gc_handle(rcgc_runtime *rt, rcgc_object *const *objs, size_t n, unsigned old,
                         int *ran)
{
    rcgc_weakref *chain = NULL, **tail = &chain;
    for (size_t i = 0; i < n; i++) {
        rcgc_object *o = objs[i];
        /* A weak reference in the trash must not fire: it dies first
         * (bpo-38006), keeping its callback until it is cleared. */
        if (o->type == &rcgc_weakref_type)
            clear_ref(rt, (rcgc_weakref *)o);
        if (!(o->flags & RCGC_OF_WEAKREFS))
            continue;
        rcgc_weakref *w = take_list(rt, o);
        while (w != NULL) {
            rcgc_weakref *next = w->next;
            w->referent = NULL;
            w->prev = w->next = NULL;
            /* Callbacks only for weak references that are not trash
             * themselves (nor being deallocated). */
            if (w->callback != NULL && !(w->ob.flags & RCGC_OF_COLLECTING) &&
                w->ob.refcnt > 0) {
                rcgc_incref(&w->ob);
                *tail = w;
                tail = &w->cb_next;
            }
            w = next;
        }
    }
    /* Now that no weak reference to the trash is left, callbacks cannot
     * reach it.  CPython counts a weak reference freed right after its
     * callback as collected. */
    long freed = 0;
    while (chain != NULL) {
        rcgc_weakref *w = chain;
        chain = w->cb_next;
        w->cb_next = NULL;
        *ran = 1;
        /* A callback that ran before may have killed this one (a weak map
         * letting go of its entries). */
        if (w->callback != NULL)
            w->callback(w, w->arg);
        if (w->ob.refcnt == 1) {
            freed++;
        } else {
            /* CPython moves it to the old generation: if it was in the
             * uncollectable set (RCGC_OF_MARK), it leaves it. */
            w->ob.flags &= ~RCGC_OF_MARK;
            rcgc_gc_promote(rt, &w->ob, old);
        }
        rcgc_decref(&w->ob);
    }
    return freed;
}

/* ------------------------------------------------------ weakref.finalize */

static void fin_link(rcgc_finalizer **head, rcgc_finalizer *f)
{
    f->prev = NULL;
    f->next = *head;
    if (*head)
        (*head)->prev = f;
    *head = f;
}

static void fin_unlink(rcgc_finalizer **head, rcgc_finalizer *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        *head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->next = f->prev = NULL;
}

/* Drop one owner's reference; free the handle when none is left. */
static void fin_unref(rcgc_finalizer *f)
{
    if (--f->refs > 0)
        return;
    struct rcgc_weak_state *ws = f->rt->weak;
    fin_unlink(f->wr ? &ws->finalizers : &ws->retired, f);
    rcgc_mem_domain_free(f->rt, RCGC_DOMAIN_RAW, f);
}

/* Called or detached: the registry lets go. */
static void fin_retire(rcgc_finalizer *f)
{
    struct rcgc_weak_state *ws = f->rt->weak;
    fin_unlink(&ws->finalizers, f);
    fin_link(&ws->retired, f);
    fin_unref(f);
}

/* Make f dead and return its weak reference (the caller drops it). */
static rcgc_weakref *fin_kill(rcgc_finalizer *f)
{
    rcgc_weakref *wr = f->wr;
    f->wr = NULL;
    return wr;
}

static void finalizer_fired(rcgc_weakref *w, void *arg)
{
    (void)w;
    (void)rcgc_weakref_finalizer_call(arg);
}

rcgc_finalizer *rcgc_weakref_finalize(rcgc_object *obj, void (*fn)(void *arg), void *arg)
{
    if (obj == NULL || fn == NULL)
        return NULL;
    rcgc_runtime *rt = rcgc_obj_runtime(obj);
    struct rcgc_weak_state *ws = weak_state(rt);
    if (ws == NULL)
        return NULL;
    rcgc_finalizer *f = rcgc_mem_domain_calloc(rt, RCGC_DOMAIN_RAW, 1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->fn = fn;
    f->arg = arg;
    f->rt = rt;
    f->refs = 2;
    f->wr = rcgc_weakref_new(obj, finalizer_fired, f);
    if (f->wr == NULL) {
        rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, f);
        return NULL;
    }
    fin_link(&ws->finalizers, f);
    return f;
}

/* The handle stays valid until the caller releases it, even after the
 * call: the registry's reference keeps it while fn runs. */
int rcgc_weakref_finalizer_call(rcgc_finalizer *f)
{
    if (f->wr == NULL)
        return 0;
    f->refs++;
    rcgc_weakref *wr = fin_kill(f);
    f->fn(f->arg);
    rcgc_decref(&wr->ob);
    fin_retire(f);
    fin_unref(f);
    return 1;
}

int rcgc_weakref_finalizer_detach(rcgc_finalizer *f)
{
    if (f->wr == NULL)
        return 0;
    f->refs++;
    rcgc_weakref *wr = fin_kill(f);
    rcgc_decref(&wr->ob);
    fin_retire(f);
    fin_unref(f);
    return 1;
}

int rcgc_weakref_finalizer_alive(const rcgc_finalizer *f)
{
    return f->wr != NULL;
}

void rcgc_weakref_finalizer_release(rcgc_finalizer *f)
{
    if (f != NULL)
        fin_unref(f);
}

/* weakref.finalize's _exitfunc: newest first, again from the newest after
 * each call (a finalizer may create finalizers).  Only live handles are in
 * the registry, so this is linear in their number. */
void rcgc_weak_atexit(rcgc_runtime *rt)
{
    struct rcgc_weak_state *ws = rt->weak;
    if (ws == NULL || ws->atexit_done)
        return;
    while (ws->finalizers != NULL)
        (void)rcgc_weakref_finalizer_call(ws->finalizers);
    ws->atexit_done = 1;
}

void rcgc_weak_state_fini(rcgc_runtime *rt)
{
    struct rcgc_weak_state *ws = rt->weak;
    if (ws == NULL)
        return;
    /* Handles still registered or still held by the caller end with the
     * runtime. */
    for (int list = 0; list < 2; list++) {
        rcgc_finalizer *f = list ? ws->retired : ws->finalizers;
        while (f != NULL) {
            rcgc_finalizer *next = f->next;
            rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, f);
            f = next;
        }
    }
    if (ws->slots)
        rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, ws->slots);
    rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, ws);
    rt->weak = NULL;
}

/* --------------------------------------------------------------- checks */

int rcgc_weak_validate(rcgc_runtime *rt, FILE *out)
{
    const struct rcgc_weak_state *ws = rt->weak;
    if (ws == NULL || ws->slots == NULL)
        return RCGC_OK;
    size_t used = 0;
    for (size_t i = 0; i <= ws->mask; i++) {
        const weak_slot *s = &ws->slots[i];
        if (s->key == NULL)
            continue;
        used++;
        const char *bad = NULL;
        if (!(s->key->flags & RCGC_OF_WEAKREFS))
            bad = "an object in the weak table lacks RCGC_OF_WEAKREFS (W1)";
        else if (s->head == NULL || s->head->prev != NULL)
            bad = "an empty or badly linked weak reference list (W1)";
        else if (slot_find(ws, s->key) != s)
            bad = "a weak table entry unreachable by probing";
        for (const rcgc_weakref *w = s->head; !bad && w; w = w->next) {
            if (w->referent != s->key)
                bad = "a weak reference on the wrong list (W2)";
            else if (w->next && w->next->prev != w)
                bad = "broken back link in a weak reference list";
            else if (w != s->head && w->callback == NULL)
                bad = "a callback-less weak reference after the head (W3)";
        }
        if (bad) {
            if (out)
                fprintf(out, "rcgc_validate: object %p: %s\n", (void *)s->key, bad);
            return RCGC_EFORMAT;
        }
    }
    if (used != ws->used) {
        if (out)
            fprintf(out, "rcgc_validate: weak table counts %zu entries, holds %zu\n", ws->used,
                    used);
        return RCGC_EFORMAT;
    }
    return RCGC_OK;
}
