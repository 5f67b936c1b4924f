/*
 * scenario.c - run a differential scenario on rcgc (issue 3, item 6).
 *
 *     rcgc-scenario FILE
 *
 * The scenario language and the output are those of twin.py, which runs the
 * same scenario on CPython; README.md beside this file states them.  Both
 * runners check a scenario completely before running any of it, with the
 * same rules and the same messages ("FILE:LINE: message", exit status 2),
 * since what the scenario holds and which edges a held node has follow from
 * the ops alone.  The input may be anything (it is also a fuzz target): any
 * byte, any length; nothing in it can crash the runner.
 *
 * A node is one rcgc object whose strong references live in a growable
 * array (allocated from the runtime, so a node the runtime releases at
 * shutdown leaks nothing): one collectable object per node, as in the twin,
 * where a node is a list subclass.
 */
#include "rcgc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_PARSE = 2, EXIT_RUNTIME = 1 };
enum { NAME_MAX_LEN = 64 };

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static void die(const char *what)
{
    fprintf(stderr, "rcgc-scenario: %s\n", what);
    exit(EXIT_RUNTIME);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        die("out of memory");
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xrealloc(NULL, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* A malloc'd printf. */
static char *xformat(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xformat(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("formatting failed");
    char *s = xrealloc(NULL, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Open-addressing hash map from a 64-bit key to a long value (0 = absent
 * is never stored: callers store value+1 or counts >= 0 with a present
 * flag).  Grows at half load, so lookups stay O(1) on any input. */
typedef struct {
    uint64_t *keys;
    long *vals;
    unsigned char *used;
    size_t cap, len;
} map64;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static long *map64_slot(map64 *m, uint64_t key, int create);

static void map64_grow(map64 *m)
{
    map64 old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->len = 0;
    m->keys = xrealloc(NULL, m->cap * sizeof *m->keys);
    m->vals = xrealloc(NULL, m->cap * sizeof *m->vals);
    m->used = calloc(m->cap, 1);
    if (m->used == NULL)
        die("out of memory");
    for (size_t i = 0; i < old.cap; i++)
        if (old.used[i])
            *map64_slot(m, old.keys[i], 1) = old.vals[i];
    free(old.keys);
    free(old.vals);
    free(old.used);
}

/* The value slot for key; NULL when absent and !create. */
static long *map64_slot(map64 *m, uint64_t key, int create)
{
    if (create && (m->len + 1) * 2 > m->cap)
        map64_grow(m);
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)mix64(key) & mask;; i = (i + 1) & mask) {
        if (!m->used[i]) {
            if (!create)
                return NULL;
            m->used[i] = 1;
            m->keys[i] = key;
            m->vals[i] = 0;
            m->len++;
            return &m->vals[i];
        }
        if (m->keys[i] == key)
            return &m->vals[i];
    }
}

static void map64_free(map64 *m)
{
    free(m->keys);
    free(m->vals);
    free(m->used);
    memset(m, 0, sizeof *m);
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL;     /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* ------------------------------------------------------------------------ */
/* The scenario: symbols and ops                                            */
/* ------------------------------------------------------------------------ */

enum kind { KIND_PLAIN, KIND_FINALIZER, KIND_RESURRECT, KIND_LEGACY };
static const char *const kind_names[] = {"plain", "finalizer", "resurrect", "legacy"};

/* A name the scenario gave, in creation order.  Names are never reused, so
 * a name is an identity for the whole run. */
typedef struct sym {
    char *name;
    int is_weak;
    int held;             /* the scenario holds obj */
    rcgc_object *obj;     /* the scenario's reference while held */
} sym;

enum opcode {
    OP_NEW, OP_EDGE, OP_UNEDGE, OP_WEAKREF, OP_HOLD, OP_DEREF, OP_REFCOUNT,
    OP_DROP, OP_DROPWEAK, OP_UNSAVE, OP_COLLECT, OP_DEBUG, OP_GARBAGE,
    OP_STATS, OP_COUNT
};

static const struct opinfo {
    const char *name;
    int min_args, max_args;
    const char *usage;
} opinfo[OP_COUNT] = {
    [OP_NEW] = {"new", 1, 2, "new NAME [plain|finalizer|resurrect|legacy]"},
    [OP_EDGE] = {"edge", 2, 2, "edge FROM TO"},
    [OP_UNEDGE] = {"unedge", 2, 2, "unedge FROM TO"},
    [OP_WEAKREF] = {"weakref", 2, 3, "weakref W TARGET [callback]"},
    [OP_HOLD] = {"hold", 2, 2, "hold NAME W"},
    [OP_DEREF] = {"deref", 1, 1, "deref W"},
    [OP_REFCOUNT] = {"refcount", 1, 1, "refcount NAME"},
    [OP_DROP] = {"drop", 1, 1, "drop NAME"},
    [OP_DROPWEAK] = {"dropweak", 1, 1, "dropweak W"},
    [OP_UNSAVE] = {"unsave", 0, 0, "unsave"},
    [OP_COLLECT] = {"collect", 0, 1, "collect [0|1|2]"},
    [OP_DEBUG] = {"debug", 1, 1, "debug saveall|none"},
    [OP_GARBAGE] = {"garbage", 0, 0, "garbage"},
    [OP_STATS] = {"stats", 0, 0, "stats"},
};

typedef struct op {
    long line;
    char *text;           /* the line without its comment, trimmed */
    enum opcode code;
    int a, b;             /* symbol ids */
    int arg;              /* kind, callback flag, generation or saveall flag */
} op;

typedef struct scenario {
    sym *syms;
    size_t nsyms, capsyms;
    map64 names;          /* hash(name) chains are resolved by strcmp below */
    op *ops;
    size_t nops, capops;
    /* parse errors */
    long err_line;
    char *err_msg;
} scenario;

/* Symbol lookup: the name map stores, for each hash, the id of the first
 * symbol with that hash + 1; collisions probe hash+1, hash+2... */
static long sym_find(scenario *sc, const char *name)
{
    uint64_t h = hash_name(name);
    for (;; h++) {
        long *slot = map64_slot(&sc->names, h, 0);
        if (slot == NULL)
            return -1;
        if (strcmp(sc->syms[*slot - 1].name, name) == 0)
            return *slot - 1;
    }
}

static int sym_add(scenario *sc, const char *name, int is_weak)
{
    if (sc->nsyms == sc->capsyms) {
        sc->capsyms = sc->capsyms ? sc->capsyms * 2 : 64;
        sc->syms = xrealloc(sc->syms, sc->capsyms * sizeof *sc->syms);
    }
    if (sc->nsyms >= INT32_MAX)
        die("too many names");
    int id = (int)sc->nsyms++;
    sym *s = &sc->syms[id];
    s->name = xstrndup(name, strlen(name));
    s->is_weak = is_weak;
    s->held = 1;
    s->obj = NULL;
    uint64_t h = hash_name(name);
    while (map64_slot(&sc->names, h, 0) != NULL)
        h++;
    *map64_slot(&sc->names, h, 1) = id + 1;
    return id;
}

static int fail(scenario *sc, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(scenario *sc, long line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    sc->err_line = line;
    sc->err_msg = xrealloc(NULL, n > 0 ? (size_t)n + 1 : 1);
    sc->err_msg[0] = '\0';
    va_start(ap, fmt);
    if (n > 0)
        vsnprintf(sc->err_msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return -1;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > NAME_MAX_LEN || strcmp(s, "none") == 0)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* The checks of one line's words; the same rules, in the same order, with
 * the same messages as twin.py's parse(). */
static int parse_words(scenario *sc, map64 *edges, long line, char **w,
                       int nw, op *o)
{
    int code = -1;
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(w[0], opinfo[i].name) == 0)
            code = i;
    if (code < 0)
        return fail(sc, line, "unknown op '%s'", w[0]);
    const struct opinfo *info = &opinfo[code];
    int nargs = nw - 1;
    if (nargs < info->min_args || nargs > info->max_args)
        return fail(sc, line, "usage: %s", info->usage);
    o->code = (enum opcode)code;
    o->a = o->b = -1;
    o->arg = 0;

#define FRESH(name)                                                           \
    do {                                                                      \
        if (!valid_name(name))                                                \
            return fail(sc, line, "bad name '%s' (1 to 64 of A-Z a-z 0-9 _, " \
                        "not 'none')", name);                                 \
        if (sym_find(sc, name) >= 0)                                          \
            return fail(sc, line, "name '%s' is already used", name);         \
    } while (0)
#define NODE(name, out)                                                       \
    do {                                                                      \
        long id_ = sym_find(sc, name);                                        \
        if (id_ < 0 || sc->syms[id_].is_weak || !sc->syms[id_].held)          \
            return fail(sc, line, "'%s' is not a node the scenario holds",    \
                        name);                                                \
        (out) = (int)id_;                                                     \
    } while (0)
#define WEAK(name, out)                                                       \
    do {                                                                      \
        long id_ = sym_find(sc, name);                                        \
        if (id_ < 0 || !sc->syms[id_].is_weak || !sc->syms[id_].held)         \
            return fail(sc, line,                                             \
                        "'%s' is not a weak reference the scenario holds",    \
                        name);                                                \
        (out) = (int)id_;                                                     \
    } while (0)

    switch (o->code) {
    case OP_NEW: {
        int kind = KIND_PLAIN;
        if (nargs == 2) {
            kind = -1;
            for (int k = 0; k < 4; k++)
                if (strcmp(w[2], kind_names[k]) == 0)
                    kind = k;
            if (kind < 0)
                return fail(sc, line, "usage: %s", info->usage);
        }
        FRESH(w[1]);
        o->a = sym_add(sc, w[1], 0);
        o->arg = kind;
        break;
    }
    case OP_EDGE: {
        NODE(w[1], o->a);
        NODE(w[2], o->b);
        (*map64_slot(edges, ((uint64_t)o->a << 32) | (uint32_t)o->b, 1))++;
        break;
    }
    case OP_UNEDGE: {
        NODE(w[1], o->a);
        long to = sym_find(sc, w[2]);
        long *count = NULL;
        if (to >= 0 && !sc->syms[to].is_weak)
            count = map64_slot(edges, ((uint64_t)o->a << 32) | (uint32_t)to, 0);
        if (count == NULL || *count == 0)
            return fail(sc, line, "'%s' has no edge to '%s'", w[1], w[2]);
        (*count)--;
        o->b = (int)to;
        break;
    }
    case OP_WEAKREF:
        if (nargs == 3 && strcmp(w[3], "callback") != 0)
            return fail(sc, line, "usage: %s", info->usage);
        NODE(w[2], o->b);
        FRESH(w[1]);
        o->a = sym_add(sc, w[1], 1);
        o->arg = nargs == 3;
        break;
    case OP_HOLD:
        NODE(w[1], o->a);
        WEAK(w[2], o->b);
        break;
    case OP_DEREF:
    case OP_DROPWEAK:
        WEAK(w[1], o->a);
        if (o->code == OP_DROPWEAK)
            sc->syms[o->a].held = 0;
        break;
    case OP_REFCOUNT:
    case OP_DROP:
        NODE(w[1], o->a);
        if (o->code == OP_DROP)
            sc->syms[o->a].held = 0;
        break;
    case OP_COLLECT:
        o->arg = 2;
        if (nargs == 1) {
            if (strcmp(w[1], "0") && strcmp(w[1], "1") && strcmp(w[1], "2"))
                return fail(sc, line, "usage: %s", info->usage);
            o->arg = w[1][0] - '0';
        }
        break;
    case OP_DEBUG:
        if (strcmp(w[1], "saveall") == 0)
            o->arg = 1;
        else if (strcmp(w[1], "none") != 0)
            return fail(sc, line, "usage: %s", info->usage);
        break;
    default:
        break;
    }
#undef FRESH
#undef NODE
#undef WEAK
    return 0;
}

/* Parse and check the whole input.  0, or -1 with err_line/err_msg set.
 * Afterwards every symbol is marked held again: `held` then tracks the run. */
static int parse(scenario *sc, const char *data, size_t len)
{
    map64 edges = {0};
    char **words = NULL;
    size_t capwords = 0;
    int rc = 0;
    long line = 0;
    size_t pos = 0;
    while (rc == 0 && pos <= len) {
        const char *start = data + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + 1;
        line++;
        const char *hash = memchr(start, '#', n);
        if (hash)
            n = (size_t)(hash - start);
        while (n > 0 && is_blank(start[0])) {
            start++;
            n--;
        }
        while (n > 0 && is_blank(start[n - 1]))
            n--;
        if (n == 0)
            continue;
        int nonascii = 0, control = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)start[i];
            if (c >= 0x80)
                nonascii = 1;
            else if ((c < 0x20 && c != '\t') || c == 0x7f)
                control = 1;
        }
        if (nonascii) {
            rc = fail(sc, line, "non-ASCII byte outside a comment");
            break;
        }
        if (control) {
            rc = fail(sc, line, "control character outside a comment");
            break;
        }
        char *text = xstrndup(start, n);
        /* Split a copy into words at runs of spaces and tabs. */
        char *buf = xstrndup(start, n);
        size_t nw = 0;
        for (char *p = buf; *p;) {
            while (*p == ' ' || *p == '\t')
                *p++ = '\0';
            if (!*p)
                break;
            if (nw == capwords) {
                capwords = capwords ? capwords * 2 : 8;
                words = xrealloc(words, capwords * sizeof *words);
            }
            words[nw++] = p;
            while (*p && *p != ' ' && *p != '\t')
                p++;
        }
        op o = {0};
        o.line = line;
        o.text = text;
        /* Any count past the largest arity fails the same way. */
        rc = parse_words(sc, &edges, line, words, (int)(nw > 64 ? 64 : nw), &o);
        free(buf);
        if (rc != 0) {
            free(text);
            break;
        }
        if (sc->nops == sc->capops) {
            sc->capops = sc->capops ? sc->capops * 2 : 64;
            sc->ops = xrealloc(sc->ops, sc->capops * sizeof *sc->ops);
        }
        sc->ops[sc->nops++] = o;
    }
    free(words);
    map64_free(&edges);
    for (size_t i = 0; i < sc->nsyms; i++)
        sc->syms[i].held = 0;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The output lines of one op                                               */
/* ------------------------------------------------------------------------ */

static char **g_lines;
static size_t g_nlines, g_caplines;
static int g_logging = 1;

static void line_add(char *s)
{
    if (g_nlines == g_caplines) {
        g_caplines = g_caplines ? g_caplines * 2 : 16;
        g_lines = xrealloc(g_lines, g_caplines * sizeof *g_lines);
    }
    g_lines[g_nlines++] = s;
}

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static FILE *g_out;

static void lines_flush(const char *text)
{
    if (g_nlines > 1)
        qsort(g_lines, g_nlines, sizeof *g_lines, cmp_lines);
    fputs(text, g_out);
    fputs(" | ", g_out);
    for (size_t i = 0; i < g_nlines; i++) {
        if (i)
            fputs("; ", g_out);
        fputs(g_lines[i], g_out);
        free(g_lines[i]);
    }
    fputc('\n', g_out);
    g_nlines = 0;
}

/* ------------------------------------------------------------------------ */
/* Nodes on rcgc                                                            */
/* ------------------------------------------------------------------------ */

static rcgc_runtime *g_rt;
static rcgc_list *g_saved;     /* what resurrecting finalizers append to */

typedef struct node {
    rcgc_object ob;
    const char *name;          /* the symbol's name; outlives the runtime */
    rcgc_object **items;       /* strong references, from the runtime's memory */
    size_t len, cap;
} node;

static int node_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    node *n = (node *)self;
    for (size_t i = 0; i < n->len; i++) {
        int r = visit(n->items[i], arg);
        if (r)
            return r;
    }
    return 0;
}

/* Detach the array first: a decref may run finalizers, which must see the
 * node already empty.  Python's list clear drops items last to first. */
static int node_clear(rcgc_object *self)
{
    node *n = (node *)self;
    rcgc_object **items = n->items;
    size_t len = n->len;
    n->items = NULL;
    n->len = n->cap = 0;
    while (len > 0)
        rcgc_decref(items[--len]);
    if (items)
        rcgc_mem_free(g_rt, items);
    return 0;
}

static void node_dealloc(rcgc_object *self)
{
    node_clear(self);
}

static void node_finalize(rcgc_object *self)
{
    if (g_logging)
        line_add(xformat("finalize %s", ((node *)self)->name));
}

static void node_resurrect(rcgc_object *self)
{
    node_finalize(self);
    if (g_saved && rcgc_list_append(g_saved, self) != RCGC_OK)
        die("out of memory");
}

static void node_legacy_del(rcgc_object *self)
{
    if (g_logging)
        line_add(xformat("del %s", ((node *)self)->name));
}

#define NODE_TYPE(tname, fin, leg)                                            \
    {                                                                         \
        .name = tname, .size = sizeof(node), .itemsize = 0,                   \
        .flags = RCGC_TYPE_GC, .traverse = node_traverse,                     \
        .clear = node_clear, .finalize = fin, .legacy_del = leg,              \
        .dealloc = node_dealloc                                               \
    }

static const rcgc_type node_types[4] = {
    [KIND_PLAIN] = NODE_TYPE("node", NULL, NULL),
    [KIND_FINALIZER] = NODE_TYPE("finalizer-node", node_finalize, NULL),
    [KIND_RESURRECT] = NODE_TYPE("resurrect-node", node_resurrect, NULL),
    [KIND_LEGACY] = NODE_TYPE("legacy-node", NULL, node_legacy_del),
};

static int is_node(const rcgc_object *o)
{
    return o->type >= &node_types[0] && o->type <= &node_types[3];
}

/* Append a new reference to o. */
static void node_append(node *n, rcgc_object *o)
{
    if (n->len == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 4;
        rcgc_object **items = rcgc_mem_realloc(g_rt, n->items, cap * sizeof *items);
        if (items == NULL)
            die("out of memory");
        n->items = items;
        n->cap = cap;
    }
    n->items[n->len++] = rcgc_incref(o);
}

/* ------------------------------------------------------------------------ */
/* Weak references                                                          */
/* ------------------------------------------------------------------------ */

/* Every weak reference object ever made, with the name of the op that made
 * it.  A dead object's address may be reused by a later one, so lookups
 * search newest first: for a live object that always finds the right name. */
static struct wentry {
    rcgc_weakref *w;
    const char *name;
} *g_weak;
static size_t g_nweak, g_capweak;

static void weak_callback(rcgc_weakref *w, void *arg)
{
    (void)w;
    if (g_logging)
        line_add(xformat("callback %s", (const char *)arg));
}

static const char *weak_name(const rcgc_object *o)
{
    for (size_t i = g_nweak; i > 0; i--)
        if ((const rcgc_object *)g_weak[i - 1].w == o)
            return g_weak[i - 1].name;
    return NULL;
}

/* A name for what gc.garbage may hold (malloc'd). */
static char *label(const rcgc_object *o)
{
    if (is_node(o))
        return xformat("%s", ((const node *)o)->name);
    if (o->type == &rcgc_weakref_type) {
        const char *name = weak_name(o);
        if (name)
            return xformat("weakref:%s", name);
    }
    return xformat("?%s", rcgc_type_name(o));
}

/* ------------------------------------------------------------------------ */
/* Running                                                                  */
/* ------------------------------------------------------------------------ */

/* Empty a list the way Python's list.clear() does: the list is empty before
 * the first item is released, so a finalizer that appends to it keeps what
 * it appended. */
static void list_empty(rcgc_list *l)
{
    size_t n = rcgc_list_len(l);
    if (n == 0)
        return;
    rcgc_object **items = xrealloc(NULL, n * sizeof *items);
    for (size_t i = n; i > 0; i--)
        items[i - 1] = rcgc_list_pop(l, i - 1);
    for (size_t i = n; i > 0; i--)
        rcgc_decref(items[i - 1]);
    free(items);
}

static void run_op(scenario *sc, const op *o, const rcgc_gc_stats base[3])
{
    sym *a = o->a >= 0 ? &sc->syms[o->a] : NULL;
    sym *b = o->b >= 0 ? &sc->syms[o->b] : NULL;
    switch (o->code) {
    case OP_NEW: {
        node *n = (node *)rcgc_new(g_rt, &node_types[o->arg]);
        if (n == NULL)
            die("out of memory");
        n->name = a->name;
        a->obj = RCGC_OBJ(n);
        a->held = 1;
        break;
    }
    case OP_EDGE:
        node_append((node *)a->obj, b->obj);
        break;
    case OP_UNEDGE: {
        node *n = (node *)a->obj;
        for (size_t i = 0; i < n->len; i++) {
            rcgc_object *item = n->items[i];
            if (is_node(item) && ((node *)item)->name == b->name) {
                memmove(&n->items[i], &n->items[i + 1],
                        (n->len - i - 1) * sizeof *n->items);
                n->len--;
                rcgc_decref(item);
                break;
            }
        }
        break;
    }
    case OP_WEAKREF: {
        rcgc_weakref *w = rcgc_weakref_new(b->obj, o->arg ? weak_callback : NULL,
                                           a->name);
        if (w == NULL)
            die("out of memory");
        /* Without a callback rcgc (like CPython) may return the target's
         * existing callback-less reference: then it keeps the name of the
         * op that created it. */
        if (rcgc_refcount(RCGC_OBJ(w)) == 1) {
            if (g_nweak == g_capweak) {
                g_capweak = g_capweak ? g_capweak * 2 : 16;
                g_weak = xrealloc(g_weak, g_capweak * sizeof *g_weak);
            }
            g_weak[g_nweak].w = w;
            g_weak[g_nweak].name = a->name;
            g_nweak++;
        }
        a->obj = RCGC_OBJ(w);
        a->held = 1;
        break;
    }
    case OP_HOLD:
        node_append((node *)a->obj, b->obj);
        break;
    case OP_DEREF: {
        rcgc_object *t = rcgc_weakref_get((rcgc_weakref *)a->obj);
        if (t == NULL) {
            line_add(xformat("deref %s none", a->name));
        } else {
            char *name = label(t);
            line_add(xformat("deref %s %s", a->name, name));
            free(name);
            rcgc_decref(t);
        }
        break;
    }
    case OP_REFCOUNT:
        line_add(xformat("refcount %s %zu", a->name, rcgc_refcount(a->obj)));
        break;
    case OP_DROP:
    case OP_DROPWEAK: {
        rcgc_object *obj = a->obj;
        a->obj = NULL;
        a->held = 0;
        rcgc_decref(obj);
        break;
    }
    case OP_UNSAVE:
        list_empty(g_saved);
        break;
    case OP_COLLECT:
        line_add(xformat("collect %ld", rcgc_gc_collect(g_rt, o->arg)));
        break;
    case OP_DEBUG:
        rcgc_gc_set_debug(g_rt, o->arg ? RCGC_DEBUG_SAVEALL : 0);
        break;
    case OP_GARBAGE: {
        rcgc_list *garbage = rcgc_gc_garbage(g_rt);
        size_t n = rcgc_list_len(garbage);
        char **names = xrealloc(NULL, (n ? n : 1) * sizeof *names);
        size_t total = 32;
        for (size_t i = 0; i < n; i++) {
            names[i] = label(rcgc_list_get(garbage, i));
            total += strlen(names[i]) + 1;
        }
        if (n > 1)
            qsort(names, n, sizeof *names, cmp_lines);
        char *s = xrealloc(NULL, total);
        size_t at = (size_t)snprintf(s, total, "garbage %zu", n);
        for (size_t i = 0; i < n; i++) {
            size_t k = strlen(names[i]);
            s[at++] = ' ';
            memcpy(s + at, names[i], k + 1);
            at += k;
            free(names[i]);
        }
        free(names);
        line_add(s);
        list_empty(garbage);
        break;
    }
    case OP_STATS: {
        rcgc_gc_stats now[3];
        rcgc_gc_get_stats(g_rt, now);
        for (int g = 0; g < 3; g++)
            line_add(xformat("stats %d %ld %ld %ld", g,
                             now[g].collections - base[g].collections,
                             now[g].collected - base[g].collected,
                             now[g].uncollectable - base[g].uncollectable));
        break;
    }
    default:
        break;
    }
}

/* After the last op: let go of the nodes (creation order), then the weak
 * references, then what the saved list holds; debug off; collect. */
static void run_end(scenario *sc)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < sc->nsyms; i++) {
            sym *s = &sc->syms[i];
            if (s->held && s->is_weak == pass) {
                rcgc_object *obj = s->obj;
                s->obj = NULL;
                s->held = 0;
                rcgc_decref(obj);
            }
        }
    list_empty(g_saved);
    rcgc_gc_set_debug(g_rt, 0);
    line_add(xformat("collect %ld", rcgc_gc_collect(g_rt, 2)));
}

static void scenario_free(scenario *sc)
{
    for (size_t i = 0; i < sc->nsyms; i++)
        free(sc->syms[i].name);
    free(sc->syms);
    for (size_t i = 0; i < sc->nops; i++)
        free(sc->ops[i].text);
    free(sc->ops);
    map64_free(&sc->names);
    free(sc->err_msg);
}

/* Check and run one scenario (the bytes of FILE at `path`), writing the
 * output to `out` and a rejection to `err`.  Returns the exit status. */
static int run_text(const char *path, const char *data, size_t len, FILE *out,
                    FILE *err)
{
    g_out = out;
    g_logging = 1;
    g_nlines = 0;
    g_nweak = 0;
    scenario sc = {0};
    int rc = parse(&sc, len ? data : "", len);
    if (rc != 0) {
        fprintf(err, "%s:%ld: %s\n", path, sc.err_line, sc.err_msg);
        scenario_free(&sc);
        return EXIT_PARSE;
    }

    rcgc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.gc_disabled = 1;
    g_rt = rcgc_runtime_new(&cfg);
    if (g_rt == NULL)
        die("cannot create the runtime");
    rcgc_gc_disable(g_rt);
    g_saved = rcgc_list_new(g_rt);
    if (g_saved == NULL)
        die("out of memory");
    rcgc_gc_stats base[3];
    rcgc_gc_get_stats(g_rt, base);

    for (size_t i = 0; i < sc.nops; i++) {
        run_op(&sc, &sc.ops[i], base);
        lines_flush(sc.ops[i].text);
    }
    run_end(&sc);
    lines_flush("end");
    fflush(out);

    /* What is left (gc.garbage, resurrected nodes) goes with the runtime;
     * nothing of it is part of the output any more. */
    g_logging = 0;
    rcgc_list *saved = g_saved;
    g_saved = NULL;
    list_empty(saved);
    rcgc_decref(RCGC_OBJ(saved));
    rcgc_runtime_free(g_rt);
    g_rt = NULL;
    free(g_lines);
    g_lines = NULL;
    g_caplines = 0;
    free(g_weak);
    g_weak = NULL;
    g_capweak = 0;
    scenario_free(&sc);
    return ferror(out) ? EXIT_RUNTIME : 0;
}

#ifdef RCGC_SCENARIO_FUZZ
/* libFuzzer: any bytes as a scenario; the output goes nowhere. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (sink == NULL && (sink = fopen("/dev/null", "w")) == NULL)
        die("cannot open /dev/null");
    if (size > (1u << 16))   /* long inputs only cost time */
        return 0;
    run_text("fuzz", (const char *)data, size, sink, sink);
    return 0;
}
#else
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = xrealloc(NULL, cap);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) {
            if (ferror(f)) {
                int e = errno;
                fclose(f);
                free(buf);
                errno = e;
                return NULL;
            }
            break;
        }
        cap *= 2;
        buf = xrealloc(buf, cap);
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fputs("usage: rcgc-scenario FILE\n", stderr);
        return EXIT_PARSE;
    }
    const char *path = argv[1];
    size_t len = 0;
    char *data = read_file(path, &len);
    if (data == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return EXIT_PARSE;
    }
    int status = run_text(path, data, len, stdout, stderr);
    free(data);
    return status;
}
#endif
