/*
 * symbols.c - report-time symbolization with libdwfl (elfutils).
 *
 * The capture holds return addresses and, for every module that was loaded,
 * its path, build-id and load bias.  Here each module is reported to libdwfl
 * at the bias it had in the profiled process, and an address becomes a
 * function name (from the symbol table) and a file:line (from DWARF, in the
 * file itself or in separate debug info found by build-id).  A return
 * address is looked up one byte back, inside the call instruction, so the
 * line is the call's, not the next statement's.
 */
#include "capture.h"

#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct entry {
    uint64_t addr;
    struct prof_frame f;
    char *name; /* prof_frame_name's text, made on demand */
    int used;
};

struct prof_symtab {
    const struct prof_capture *c;
    Dwfl *dwfl;
    Dwfl_Module **dmods; /* per capture module, or NULL */
    struct entry *tab;
    size_t cap, n;
    char *warn;
    size_t warn_len;
};

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

static void add_warning(struct prof_symtab *t, const char *fmt, const char *arg)
{
    char line[600];
    int n = snprintf(line, sizeof line, fmt, arg);
    if (n <= 0)
        return;
    char *nw = realloc(t->warn, t->warn_len + (size_t)n + 1);
    if (!nw)
        return;
    memcpy(nw + t->warn_len, line, (size_t)n + 1);
    t->warn = nw;
    t->warn_len += (size_t)n;
}

struct prof_symtab *prof_symtab_new(const struct prof_capture *c)
{
    struct prof_symtab *t = calloc(1, sizeof *t);
    if (!t) {
        fprintf(stderr, "rcgc-prof: out of memory\n");
        exit(1);
    }
    t->c = c;
    t->cap = 1024;
    t->tab = calloc(t->cap, sizeof *t->tab);
    t->dmods = calloc(c->n_mods ? c->n_mods : 1, sizeof *t->dmods);
    t->dwfl = dwfl_begin(&callbacks);
    if (!t->tab || !t->dmods) {
        fprintf(stderr, "rcgc-prof: out of memory\n");
        exit(1);
    }
    if (t->dwfl) {
        dwfl_report_begin(t->dwfl);
        for (size_t i = 0; i < c->n_mods; i++) {
            const struct prof_module *m = &c->mods[i];
            if (!m->path[0] || m->path[0] != '/' || access(m->path, R_OK) != 0) {
                if (m->path[0] == '/')
                    add_warning(t, "rcgc-prof: %s is gone: its frames stay as addresses\n",
                                m->path);
                continue;
            }
            const char *base = strrchr(m->path, '/');
            t->dmods[i] = dwfl_report_elf(t->dwfl, base ? base + 1 : m->path, m->path, -1,
                                          m->bias, false);
            if (t->dmods[i] && m->build_id_len) {
                const unsigned char *bits;
                GElf_Addr vaddr;
                int n = dwfl_module_build_id(t->dmods[i], &bits, &vaddr);
                if (n > 0 && ((size_t)n != m->build_id_len ||
                              memcmp(bits, m->build_id, m->build_id_len) != 0)) {
                    add_warning(t, "rcgc-prof: %s changed since the capture (build-id differs)"
                                   ": its lines may be wrong\n", m->path);
                }
            }
        }
        dwfl_report_end(t->dwfl, NULL, NULL);
    }
    return t;
}

void prof_symtab_warnings(struct prof_symtab *t, FILE *out)
{
    if (t->warn)
        fputs(t->warn, out);
}

void prof_symtab_free(struct prof_symtab *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++)
        if (t->tab[i].used)
            free(t->tab[i].name);
    free(t->tab);
    free(t->dmods);
    free(t->warn);
    if (t->dwfl)
        dwfl_end(t->dwfl);
    free(t);
}

static const struct prof_module *module_of(const struct prof_capture *c, uint64_t a, size_t *idx)
{
    /* the last one loaded wins if an address range was reused */
    for (size_t i = c->n_mods; i-- > 0;)
        if (a >= c->mods[i].lo && a < c->mods[i].hi) {
            *idx = i;
            return &c->mods[i];
        }
    return NULL;
}

static void resolve(struct prof_symtab *t, struct entry *e)
{
    uint64_t a = e->addr;
    e->f.addr = a;
    size_t mi = 0;
    const struct prof_module *m = module_of(t->c, a, &mi);
    if (!m)
        return;
    e->f.module = m->path;
    e->f.offset = a - m->bias;
    Dwfl_Module *dm = t->dmods[mi];
    if (!dm || a == 0)
        return;
    GElf_Addr look = a - 1;
    const char *fn = dwfl_module_addrname(dm, look);
    if (fn)
        e->f.func = fn;
    Dwfl_Line *line = dwfl_module_getsrc(dm, look);
    if (line) {
        int lineno = 0;
        const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
        if (file && lineno > 0) {
            e->f.file = file;
            e->f.line = lineno;
        }
    }
}

static void grow(struct prof_symtab *t)
{
    size_t ncap = t->cap * 2;
    struct entry *nt = calloc(ncap, sizeof *nt);
    if (!nt) {
        fprintf(stderr, "rcgc-prof: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->tab[i].used)
            continue;
        size_t j = (size_t)(t->tab[i].addr * 0x9E3779B97F4A7C15ull >> 20) & (ncap - 1);
        while (nt[j].used)
            j = (j + 1) & (ncap - 1);
        nt[j] = t->tab[i];
    }
    free(t->tab);
    t->tab = nt;
    t->cap = ncap;
}

const struct prof_frame *prof_symbolize(struct prof_symtab *t, uint64_t addr)
{
    if ((t->n + 1) * 2 > t->cap)
        grow(t);
    size_t j = (size_t)(addr * 0x9E3779B97F4A7C15ull >> 20) & (t->cap - 1);
    while (t->tab[j].used) {
        if (t->tab[j].addr == addr)
            return &t->tab[j].f;
        j = (j + 1) & (t->cap - 1);
    }
    struct entry *e = &t->tab[j];
    e->used = 1;
    e->addr = addr;
    t->n++;
    resolve(t, e);
    return &e->f;
}

const char *prof_frame_name(struct prof_symtab *t, const struct prof_frame *f)
{
    struct entry *e = (struct entry *)((char *)f - offsetof(struct entry, f));
    (void)t;
    if (e->name)
        return e->name;
    char buf[512];
    if (f->func) {
        snprintf(buf, sizeof buf, "%s", f->func);
    } else if (f->module) {
        const char *b = strrchr(f->module, '/');
        snprintf(buf, sizeof buf, "%s+0x%llx", b ? b + 1 : f->module,
                 (unsigned long long)f->offset);
    } else {
        snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)f->addr);
    }
    /* ';' separates frames in folded stacks: never let one into a name */
    for (char *p = buf; *p; p++)
        if (*p == ';' || *p == '\n')
            *p = ':';
    e->name = strdup(buf);
    return e->name ? e->name : "?";
}
