/*
 * plot.c - `rcgc-prof plot FILE -o chart.svg|png`: memory over time, the
 * way `mprof plot` shows it: RSS and heap in use against time, the heap
 * peak marked with dashed lines.
 *
 * The SVG is written here.  A PNG is that SVG photographed by headless
 * Chromium when it is installed, else drawn by gnuplot's pngcairo terminal
 * from the same data.
 */
#include "report.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tmformat.h"

static void xml_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", out);
        else if (*s == '>')
            fputs("&gt;", out);
        else if (*s == '&')
            fputs("&amp;", out);
        else if (*s == '"')
            fputs("&quot;", out);
        else
            fputc(*s, out);
    }
}

/* A "nice" axis step (1, 2 or 5 times a power of ten) for about n ticks. */
static double nice_step(double range, int n)
{
    double raw = range / n, p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static int write_svg(struct prof_view *v, FILE *out, int W, int H)
{
    const struct prof_capture *c = v->c;
    const int L = 80, R = 20, T = 40, B = 50;
    double tmax = (double)c->duration_ms, ymax = (double)c->peak_bytes;
    for (size_t i = 0; i < c->n_samples; i++) {
        if ((double)c->samples[i].t_ms > tmax)
            tmax = (double)c->samples[i].t_ms;
        if ((double)c->samples[i].rss > ymax)
            ymax = (double)c->samples[i].rss;
        if ((double)c->samples[i].heap > ymax)
            ymax = (double)c->samples[i].heap;
    }
    if (tmax <= 0)
        tmax = 1;
    /* y in MiB as mprof does, KiB for small programs */
    double unit = ymax >= 4 * 1048576.0 ? 1048576.0 : 1024.0;
    const char *uname = unit > 1024 ? "MiB" : "KiB";
    double ytop = ymax / unit;
    double ystep = nice_step(ytop > 0 ? ytop : 1, 5);
    ytop = ceil((ytop > 0 ? ytop : 1) / ystep) * ystep;
    double ts = tmax / 1000.0, tstep = nice_step(ts, 8);
    double ttop = ceil(ts / tstep) * tstep;
    if (ttop <= 0)
        ttop = tstep;
#define PX(t) (L + (W - L - R) * ((t) / 1000.0) / ttop)
#define PY(b) (H - B - (H - T - B) * ((b) / unit) / ytop)
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
            W, H, W, H);
    fprintf(out, "<text x=\"%d\" y=\"22\" font-size=\"15\">", L);
    xml_text(out, c->cmdline[0] ? c->cmdline : c->exe);
    fputs("</text>\n", out);
    /* grid and ticks */
    for (double y = 0; y <= ytop + ystep / 2; y += ystep) {
        double py = PY(y * unit);
        fprintf(out,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                L, py, W - R, py, L - 6, py + 4, y);
    }
    for (double t = 0; t <= ttop + tstep / 2; t += tstep) {
        double px = L + (W - L - R) * t / ttop;
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e4e4e4\"/>"
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                px, T, px, H - B, px, H - B + 16, t);
    }
    fprintf(out,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n",
            L, H - B, W - R, H - B, L, T, L, H - B);
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (in seconds)</text>\n",
            (L + W - R) / 2, H - 12);
    fprintf(out,
            "<text transform=\"translate(18,%d) rotate(-90)\" text-anchor=\"middle\">"
            "memory used (in %s)</text>\n",
            (T + H - B) / 2, uname);
    /* series: RSS grey, heap red; the capture's end closes both */
    const char *names[2] = { "rss", "heap" }, *cols[2] = { "#888", "#c0392b" };
    for (int k = 0; k < 2; k++) {
        fprintf(out, "<polyline id=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"",
                names[k], cols[k]);
        for (size_t i = 0; i < c->n_samples; i++) {
            double b = (double)(k ? c->samples[i].heap : c->samples[i].rss);
            fprintf(out, "%s%.1f,%.1f", i ? " " : "", PX((double)c->samples[i].t_ms), PY(b));
        }
        fputs("\"/>\n", out);
    }
    /* the peak, dashed like mprof's max marker */
    double px = PX((double)c->peak_ms), py = PY((double)c->peak_bytes);
    char sz[64];
    rcgc_fmt_size(sz, sizeof sz, (double)c->peak_bytes, 0);
    fprintf(out,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c0392b\" "
            "stroke-dasharray=\"4 3\"/>"
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%d\" stroke=\"#c0392b\" "
            "stroke-dasharray=\"4 3\"/>\n"
            "<circle id=\"peak\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#c0392b\"/>"
            "<text x=\"%.1f\" y=\"%.1f\" fill=\"#c0392b\">peak %s</text>\n",
            L, py, px, py, px, py, px, H - B, px, py, px + 6, py - 6, sz);
    fprintf(out,
            "<rect x=\"%d\" y=\"%d\" width=\"150\" height=\"40\" fill=\"#fff\" stroke=\"#ccc\"/>"
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#c0392b\" stroke-width=\"2\"/>"
            "<text x=\"%d\" y=\"%d\">heap in use</text>"
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\" stroke-width=\"2\"/>"
            "<text x=\"%d\" y=\"%d\">RSS</text>\n",
            W - R - 160, T + 6, W - R - 150, T + 19, W - R - 125, T + 19, W - R - 118, T + 23,
            W - R - 150, T + 35, W - R - 125, T + 35, W - R - 118, T + 39);
    fputs("</svg>\n", out);
#undef PX
#undef PY
    return 0;
}

static int run_quiet(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open("/dev/null", 1);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* PNG through Chromium: a screenshot of the SVG at its own size. */
static int png_chromium(const char *svg, const char *png, int W, int H)
{
    const char *browsers[] = { "chromium", "chromium-browser", "google-chrome" };
    char dir[] = "/tmp/rcgc-prof-plot-XXXXXX";
    if (!mkdtemp(dir))
        return -1;
    char udd[64], shot[64], size[64], url[4200];
    snprintf(udd, sizeof udd, "--user-data-dir=%s", dir);
    snprintf(shot, sizeof shot, "--screenshot=%s/p.png", dir);
    snprintf(size, sizeof size, "--window-size=%d,%d", W, H);
    char abs[4096];
    if (!realpath(svg, abs))
        return -1;
    snprintf(url, sizeof url, "file://%s", abs);
    int rc = -1;
    for (size_t i = 0; i < 3 && rc != 0; i++) {
        char *argv[] = { (char *)browsers[i], "--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                         udd, shot, size, url, NULL };
        rc = run_quiet(argv);
    }
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/p.png", dir);
    struct stat st;
    if (rc == 0 && stat(tmp, &st) == 0 && st.st_size > 0) {
        char *mv[] = { "cp", tmp, (char *)png, NULL };
        rc = run_quiet(mv);
    } else {
        rc = -1;
    }
    char *rm[] = { "rm", "-rf", dir, NULL };
    run_quiet(rm);
    return rc;
}

/* PNG through gnuplot, from the samples. */
static int png_gnuplot(struct prof_view *v, const char *png, int W, int H)
{
    char data[] = "/tmp/rcgc-prof-plot-XXXXXX";
    int fd = mkstemp(data);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    for (size_t i = 0; i < v->c->n_samples; i++)
        fprintf(f, "%.3f %.4f %.4f\n", (double)v->c->samples[i].t_ms / 1000.0,
                (double)v->c->samples[i].rss / 1048576.0,
                (double)v->c->samples[i].heap / 1048576.0);
    fclose(f);
    char script[1024 + 8192];
    snprintf(script, sizeof script,
             "set terminal pngcairo size %d,%d; set output '%s'; set xlabel 'time (in seconds)';"
             " set ylabel 'memory used (in MiB)'; set grid; set key top left;"
             " plot '%s' using 1:2 with lines lc rgb '#888888' title 'RSS',"
             " '' using 1:3 with lines lc rgb '#c0392b' title 'heap in use'",
             W, H, png, data);
    char *argv[] = { "gnuplot", "-e", script, NULL };
    int rc = run_quiet(argv);
    unlink(data);
    return rc;
}

int prof_plot(struct prof_view *v, const char *path)
{
    int W = v->o->width, H = v->o->height;
    int png = ends_with(path, ".png");
    if (!png && !ends_with(path, ".svg")) {
        fprintf(stderr, "rcgc-prof plot: -o must name a .svg or .png file\n");
        return 2;
    }
    char svgpath[4200];
    if (png)
        snprintf(svgpath, sizeof svgpath, "%s.svg", path);
    else
        snprintf(svgpath, sizeof svgpath, "%s", path);
    FILE *out = fopen(svgpath, "w");
    if (!out) {
        perror(svgpath);
        return 1;
    }
    write_svg(v, out, W, H);
    if (fclose(out) != 0) {
        perror(svgpath);
        return 1;
    }
    if (!png)
        return 0;
    int rc = png_chromium(svgpath, path, W, H);
    if (rc != 0)
        rc = png_gnuplot(v, path, W, H);
    unlink(svgpath);
    if (rc != 0) {
        fprintf(stderr, "rcgc-prof plot: a PNG needs chromium or gnuplot; write an .svg "
                        "instead\n");
        return 1;
    }
    return 0;
}
