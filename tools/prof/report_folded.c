/*
 * report_folded.c - folded stacks and JSON.
 *
 * Folded stacks are one line per stack, frames from the outermost to the
 * innermost joined by ';', then a space and the value (bytes of the chosen
 * metric): the input flamegraph.pl, inferno-flamegraph and speedscope read.
 */
#include "report.h"

#include <string.h>

int prof_report_folded(struct prof_view *v, FILE *out)
{
    enum prof_metric m = v->o->metric;
    for (size_t i = 0; i < v->c->n_stacks; i++) {
        const struct prof_stack *s = &v->c->stacks[i];
        uint64_t b = prof_bytes(s, m);
        if (!b)
            continue;
        if (!s->nframes)
            fputs("[unknown]", out);
        for (uint32_t k = s->nframes; k-- > 0;) {
            const struct prof_frame *f = prof_symbolize(v->sym, s->frames[k]);
            fputs(prof_frame_name(v->sym, f), out);
            if (k)
                fputc(';', out);
        }
        fprintf(out, " %llu\n", (unsigned long long)b);
    }
    return 0;
}

static void json_frame(struct prof_view *v, uint64_t addr, FILE *out)
{
    const struct prof_frame *f = prof_symbolize(v->sym, addr);
    fprintf(out, "{\"addr\":\"0x%llx\",\"name\":", (unsigned long long)addr);
    prof_json_str(out, prof_frame_name(v->sym, f));
    if (f->file) {
        fputs(",\"file\":", out);
        prof_json_str(out, f->file);
        fprintf(out, ",\"line\":%d", f->line);
    }
    if (f->module) {
        fputs(",\"module\":", out);
        prof_json_str(out, f->module);
    }
    fputc('}', out);
}

int prof_report_json(struct prof_view *v, FILE *out)
{
    const struct prof_capture *c = v->c;
    char st[160];
    fputs("{\n\"format\":\"rcgc-prof\",\"version\":1,\n\"exe\":", out);
    prof_json_str(out, c->exe);
    fputs(",\"cmdline\":", out);
    prof_json_str(out, c->cmdline);
    fprintf(out, ",\"pid\":%llu,\"ppid\":%llu,\"state\":", (unsigned long long)c->pid,
            (unsigned long long)c->ppid);
    prof_json_str(out, prof_state_name(c, st, sizeof st));
    fprintf(out,
            ",\n\"duration_ms\":%llu,\"native_frames\":%llu,\"interval_ms\":%llu,\n"
            "\"alloc_calls\":%llu,\"free_calls\":%llu,\"alloc_bytes\":%llu,"
            "\"temporary_calls\":%llu,\n\"peak_bytes\":%llu,\"peak_ms\":%llu,\"peak_rss\":%llu,"
            "\"leaked_bytes\":%llu,\"leaked_blocks\":%llu,\n",
            (unsigned long long)c->duration_ms, (unsigned long long)c->nframes,
            (unsigned long long)c->interval_ms, (unsigned long long)c->alloc_calls,
            (unsigned long long)c->free_calls, (unsigned long long)c->alloc_bytes,
            (unsigned long long)c->temp_calls, (unsigned long long)c->peak_bytes,
            (unsigned long long)c->peak_ms, (unsigned long long)c->peak_rss,
            (unsigned long long)c->cur_bytes, (unsigned long long)c->cur_count);
    fputs("\"samples\":[", out);
    for (size_t i = 0; i < c->n_samples; i++)
        fprintf(out, "%s[%llu,%llu,%llu]", i ? "," : "", (unsigned long long)c->samples[i].t_ms,
                (unsigned long long)c->samples[i].rss, (unsigned long long)c->samples[i].heap);
    fputs("],\n\"stacks\":[\n", out);
    for (size_t i = 0; i < c->n_stacks; i++) {
        const struct prof_stack *s = &c->stacks[i];
        fprintf(out,
                "%s{\"alloc_count\":%llu,\"alloc_bytes\":%llu,\"peak_count\":%llu,"
                "\"peak_bytes\":%llu,\"leaked_count\":%llu,\"leaked_bytes\":%llu,"
                "\"temporary_count\":%llu,\"temporary_bytes\":%llu,\"frames\":[",
                i ? ",\n" : "", (unsigned long long)s->st[0], (unsigned long long)s->st[1],
                (unsigned long long)s->st[2], (unsigned long long)s->st[3],
                (unsigned long long)s->st[4], (unsigned long long)s->st[5],
                (unsigned long long)s->st[6], (unsigned long long)s->st[7]);
        for (uint32_t k = 0; k < s->nframes; k++) {
            if (k)
                fputc(',', out);
            json_frame(v, s->frames[k], out);
        }
        fputs("]}", out);
    }
    fputs("\n]}\n", out);
    return 0;
}
