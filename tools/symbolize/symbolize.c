/*
 * symbolize.c - libdw symbolization for tracemalloc's native frames
 * (rcgc_symbolize.h).  One Dwfl session reports the modules of this
 * process; an address not found re-reports them once (a library loaded
 * since).  Answers are cached by address in an open-addressing table.
 */
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rcgc_symbolize.h"

typedef struct entry {
    uintptr_t pc;        /* 0: empty slot */
    char *function;
    char *filename;
    int lineno;
    int found;
} entry;

static Dwfl *dwfl;
static entry *cache;
static size_t cache_mask, cache_n;

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
};

static int report(void)
{
    if (!dwfl) {
        dwfl = dwfl_begin(&callbacks);
        if (!dwfl)
            return -1;
    }
    dwfl_report_begin(dwfl);
    int rc = dwfl_linux_proc_report(dwfl, getpid());
    dwfl_report_end(dwfl, NULL, NULL);
    return rc == 0 ? 0 : -1;
}

void rcgc_symbolize_reset(void)
{
    for (size_t i = 0; cache && i <= cache_mask; i++) {
        free(cache[i].function);
        free(cache[i].filename);
    }
    free(cache);
    cache = NULL;
    cache_mask = cache_n = 0;
    if (dwfl)
        dwfl_end(dwfl);
    dwfl = NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Look pc up with libdw; fills e. */
static void lookup(uintptr_t pc, entry *e)
{
    /* pc is a return address: the call is the instruction before it. */
    Dwarf_Addr addr = (Dwarf_Addr)(pc - 1);
    Dwfl_Module *mod = dwfl ? dwfl_addrmodule(dwfl, addr) : NULL;
    if (!mod && report() == 0)
        mod = dwfl_addrmodule(dwfl, addr);
    e->found = 0;
    if (!mod)
        return;
    e->function = dup_or_null(dwfl_module_addrname(mod, addr));
    Dwfl_Line *line = dwfl_module_getsrc(mod, addr);
    if (line) {
        int lineno = 0;
        const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
        if (file) {
            e->filename = strdup(file);
            e->lineno = lineno;
        }
    }
    e->found = e->filename != NULL || e->function != NULL;
}

static int grow(void)
{
    size_t cap = cache ? (cache_mask + 1) * 2 : 1024;
    entry *t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; cache && i <= cache_mask; i++) {
        if (!cache[i].pc)
            continue;
        size_t j = (cache[i].pc * 0x9e3779b97f4a7c15ULL >> 20) & (cap - 1);
        while (t[j].pc)
            j = (j + 1) & (cap - 1);
        t[j] = cache[i];
    }
    free(cache);
    cache = t;
    cache_mask = cap - 1;
    return 0;
}

int rcgc_symbolize_dw(void *arg, uintptr_t pc, rcgc_symbol *out)
{
    (void)arg;
    if (pc == 0)
        return 0;
    if ((!cache || (cache_n + 1) * 2 > cache_mask + 1) && grow() != 0)
        return 0;
    size_t j = (pc * 0x9e3779b97f4a7c15ULL >> 20) & cache_mask;
    while (cache[j].pc && cache[j].pc != pc)
        j = (j + 1) & cache_mask;
    entry *e = &cache[j];
    if (!e->pc) {
        e->pc = pc;
        cache_n++;
        lookup(pc, e);
    }
    if (!e->found)
        return 0;
    out->function = e->function;
    out->filename = e->filename;
    out->lineno = e->lineno;
    return 1;
}

void rcgc_symbolize_install(void)
{
    rcgc_tracemalloc_set_symbolizer(rcgc_symbolize_dw, NULL);
}
