/*
 * report_massif.c - a massif.out file, for valgrind's ms_print and
 * massif-visualizer.
 *
 * Snapshots come from the sampled timeline (heap in use over time); the
 * snapshot nearest the heap peak is replaced by a detailed "peak" snapshot
 * holding the heap tree of the blocks live at the peak, and the last one is
 * detailed with the blocks live at exit.  A heap tree's first level is the
 * allocation sites (innermost frames), each node's children its callers, as
 * massif writes them; nodes under 1% of their snapshot are folded into one
 * "below massif's threshold" line, as massif does.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>

struct node {
    uint64_t addr;
    uint64_t bytes;
    struct node *kids;
    size_t nkids, cap;
};

static struct node *child(struct node *n, uint64_t addr)
{
    for (size_t i = 0; i < n->nkids; i++)
        if (n->kids[i].addr == addr)
            return &n->kids[i];
    if (n->nkids == n->cap) {
        n->cap = n->cap ? n->cap * 2 : 4;
        n->kids = prof_xrealloc(n->kids, n->cap * sizeof *n->kids);
    }
    struct node *c = &n->kids[n->nkids++];
    memset(c, 0, sizeof *c);
    c->addr = addr;
    return c;
}

static void free_tree(struct node *n)
{
    for (size_t i = 0; i < n->nkids; i++)
        free_tree(&n->kids[i]);
    free(n->kids);
}

static int cmp_node(const void *a, const void *b)
{
    const struct node *x = a, *y = b;
    return x->bytes > y->bytes ? -1 : x->bytes < y->bytes ? 1 : 0;
}

static void print_node(struct prof_view *v, const struct node *n, int depth, uint64_t total,
                       FILE *out)
{
    /* children above the threshold, then one line for the rest */
    uint64_t threshold = total / 100;
    size_t shown = 0;
    uint64_t below = 0;
    size_t nbelow = 0;
    for (size_t i = 0; i < n->nkids; i++) {
        if (n->kids[i].bytes >= threshold && n->kids[i].bytes > 0)
            shown++;
        else {
            below += n->kids[i].bytes;
            nbelow++;
        }
    }
    for (size_t i = 0; i < n->nkids; i++) {
        const struct node *c = &n->kids[i];
        if (!(c->bytes >= threshold && c->bytes > 0))
            continue;
        const struct prof_frame *f = prof_symbolize(v->sym, c->addr);
        size_t gk = 0;
        for (size_t k = 0; k < c->nkids; k++)
            if (c->kids[k].bytes >= threshold && c->kids[k].bytes > 0)
                gk++;
        size_t gbelow = c->nkids - gk;
        fprintf(out, "%*sn%zu: %llu 0x%llX: %s", depth + 1, "", gk + (gbelow ? 1 : 0),
                (unsigned long long)c->bytes, (unsigned long long)c->addr,
                prof_frame_name(v->sym, f));
        if (f->file)
            fprintf(out, " (%s:%d)\n", f->file, f->line);
        else if (f->module)
            fprintf(out, " (in %s)\n", f->module);
        else
            fputc('\n', out);
        print_node(v, c, depth + 1, total, out);
    }
    if (nbelow && shown + nbelow > 0 && n->nkids)
        fprintf(out, "%*sn0: %llu in %zu place%s, below massif's threshold (1.00%%)\n", depth + 1,
                "", (unsigned long long)below, nbelow, nbelow == 1 ? "" : "s");
}

static void sort_tree(struct node *n)
{
    if (n->nkids)
        qsort(n->kids, n->nkids, sizeof *n->kids, cmp_node);
    for (size_t i = 0; i < n->nkids; i++)
        sort_tree(&n->kids[i]);
}

static void heap_tree(struct prof_view *v, enum prof_metric m, FILE *out)
{
    struct node root = { 0 };
    for (size_t i = 0; i < v->c->n_stacks; i++) {
        const struct prof_stack *s = &v->c->stacks[i];
        uint64_t b = prof_bytes(s, m);
        if (!b)
            continue;
        root.bytes += b;
        struct node *n = &root;
        for (uint32_t k = 0; k < s->nframes; k++) {
            n = child(n, s->frames[k]);
            n->bytes += b;
        }
    }
    sort_tree(&root);
    size_t shown = 0, below = 0;
    for (size_t i = 0; i < root.nkids; i++) {
        if (root.kids[i].bytes >= root.bytes / 100 && root.kids[i].bytes > 0)
            shown++;
        else
            below++;
    }
    fprintf(out, "n%zu: %llu (heap allocation functions) malloc/new/new[], --alloc-fns, etc.\n",
            shown + (below ? 1 : 0), (unsigned long long)root.bytes);
    print_node(v, &root, 0, root.bytes, out);
    free_tree(&root);
}

int prof_report_massif(struct prof_view *v, FILE *out)
{
    const struct prof_capture *c = v->c;
    fprintf(out, "desc: rcgc-prof capture of pid %llu, --native-frames %llu\n",
            (unsigned long long)c->pid, (unsigned long long)c->nframes);
    fprintf(out, "cmd: %s\n", c->cmdline[0] ? c->cmdline : c->exe);
    fprintf(out, "time_unit: ms\n");

    /* Up to 100 snapshots spread over the timeline, plus the peak. */
    size_t n = c->n_samples, step = n > 98 ? (n + 97) / 98 : 1;
    size_t *pick = prof_xmalloc((n / step + 4) * sizeof *pick);
    size_t np = 0;
    for (size_t i = 0; i < n; i += step)
        pick[np++] = i;
    int snap = 0;
    int peak_done = 0;
    for (size_t j = 0; j <= np; j++) {
        uint64_t t, heap;
        int is_last = j == np;
        if (!is_last) {
            t = c->samples[pick[j]].t_ms;
            heap = c->samples[pick[j]].heap;
        } else {
            t = c->duration_ms;
            heap = c->cur_bytes;
        }
        /* the peak goes in before the first sample later than it */
        if (!peak_done && (is_last || t > c->peak_ms)) {
            fprintf(out, "#-----------\nsnapshot=%d\n#-----------\n", snap++);
            fprintf(out, "time=%llu\nmem_heap_B=%llu\nmem_heap_extra_B=0\nmem_stacks_B=0\n",
                    (unsigned long long)c->peak_ms, (unsigned long long)c->peak_bytes);
            fprintf(out, "heap_tree=peak\n");
            heap_tree(v, PROF_PEAK, out);
            peak_done = 1;
        }
        fprintf(out, "#-----------\nsnapshot=%d\n#-----------\n", snap++);
        fprintf(out, "time=%llu\nmem_heap_B=%llu\nmem_heap_extra_B=0\nmem_stacks_B=0\n",
                (unsigned long long)t, (unsigned long long)heap);
        if (is_last) {
            fprintf(out, "heap_tree=detailed\n");
            heap_tree(v, PROF_LEAKED, out);
        } else {
            fprintf(out, "heap_tree=empty\n");
        }
    }
    free(pick);
    return 0;
}
