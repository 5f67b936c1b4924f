/*
 * preload_out.c - how librcgc-prof.so gets its aggregate out of the process:
 * the sampler thread (RSS and heap every interval, periodic flushes), the
 * capture writer (format.h), and the ways a process ends: exit, _exit, a
 * fatal signal, exec; and fork, where the child starts its own capture.
 *
 * Every write goes to "<file>.tmp" and is renamed over <file>, so a reader
 * never sees half a capture: a process killed by SIGKILL leaves its latest
 * periodic flush.  The writer uses only mmap'd buffers, a static zstd
 * context and plain system calls, so it can run in a signal handler.
 */
#include "preload.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_initStaticCCtx: compress without malloc */
#include <zstd.h>

/* ---- growable mmap'd byte buffers ----------------------------------------- */

struct obuf {
    unsigned char *p;
    size_t len, cap;
    int failed;
};

static int ob_reserve(struct obuf *b, size_t extra)
{
    if (b->failed)
        return 0;
    if (b->len + extra <= b->cap)
        return 1;
    size_t ncap = b->cap ? b->cap : 1u << 16;
    while (ncap < b->len + extra)
        ncap *= 2;
    void *np = b->p ? mremap(b->p, b->cap, ncap, MREMAP_MAYMOVE)
                    : mmap(NULL, ncap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (np == MAP_FAILED) {
        b->failed = 1;
        return 0;
    }
    b->p = np;
    b->cap = ncap;
    return 1;
}

static void put_bytes(struct obuf *b, const void *d, size_t n)
{
    if (ob_reserve(b, n)) {
        memcpy(b->p + b->len, d, n);
        b->len += n;
    }
}

static void put_v(struct obuf *b, uint64_t v)
{
    if (!ob_reserve(b, 10))
        return;
    while (v >= 0x80) {
        b->p[b->len++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (unsigned char)v;
}

static void put_z(struct obuf *b, int64_t v)
{
    put_v(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void put_s(struct obuf *b, const char *s, size_t n)
{
    put_v(b, n);
    put_bytes(b, s, n);
}

static void put_u32(unsigned char *d, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        d[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *d, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        d[i] = (unsigned char)(v >> (8 * i));
}

static size_t sec_begin(struct obuf *b, uint32_t tag)
{
    size_t at = b->len;
    unsigned char h[16] = { 0 };
    put_u32(h, tag);
    put_bytes(b, h, 16);
    return at;
}

static void sec_end(struct obuf *b, size_t at)
{
    if (!b->failed)
        put_u64(b->p + at + 8, (uint64_t)(b->len - at - 16));
}

/* ---- process facts --------------------------------------------------------- */

static char exe_path[4096];
static size_t exe_len;
static char cmdline[8192];
static size_t cmdline_len;

static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static sighandler_t (*real_signal)(int, sighandler_t);
static void (*real_exit)(int);

static void read_process_facts(void)
{
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    exe_len = n > 0 ? (size_t)n : 0;
    exe_path[exe_len] = 0;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    cmdline_len = 0;
    if (fd >= 0) {
        ssize_t r;
        while (cmdline_len < sizeof cmdline &&
               (r = read(fd, cmdline + cmdline_len, sizeof cmdline - cmdline_len)) > 0)
            cmdline_len += (size_t)r;
        close(fd);
    }
}

/* RSS from /proc/self/statm, through a descriptor kept far above the ones
 * the program uses; checked with fstat in case the program closed it. */
static int statm_fd = -1;
static dev_t statm_dev;
static ino_t statm_ino;

static void statm_open(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 900);
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    struct stat st;
    if (fstat(fd, &st) == 0) {
        statm_dev = st.st_dev;
        statm_ino = st.st_ino;
        statm_fd = fd;
    } else {
        close(fd);
    }
}

static uint64_t read_rss(void)
{
    struct stat st;
    if (statm_fd < 0 || fstat(statm_fd, &st) != 0 || st.st_dev != statm_dev ||
        st.st_ino != statm_ino) {
        statm_fd = -1; /* not ours any more: leave it alone */
        statm_open();
        if (statm_fd < 0)
            return 0;
    }
    char buf[128];
    ssize_t n = pread(statm_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *sp = strchr(buf, ' ');
    if (!sp)
        return 0;
    uint64_t pages = strtoull(sp + 1, NULL, 10);
    return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ---- loaded modules --------------------------------------------------------- */

struct pf_module {
    uint64_t bias, lo, hi;
    uint32_t name_off, name_len, bid_off, bid_len;
};

static struct pf_module *mods;
static uint32_t n_mods, cap_mods = 4096;
static struct obuf mod_strings;

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    uint64_t lo = UINT64_MAX, hi = 0;
    const unsigned char *bid = NULL;
    uint32_t bid_len = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uint64_t a = info->dlpi_addr + ph->p_vaddr;
            if (a < lo)
                lo = a;
            if (a + ph->p_memsz > hi)
                hi = a + ph->p_memsz;
        } else if (ph->p_type == PT_NOTE && !bid) {
            const unsigned char *n = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
            const unsigned char *end = n + ph->p_memsz;
            while (n + sizeof(ElfW(Nhdr)) <= end) {
                const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)n;
                size_t namesz = (nh->n_namesz + 3u) & ~3u, descsz = (nh->n_descsz + 3u) & ~3u;
                const unsigned char *name = n + sizeof *nh, *desc = name + namesz;
                if (desc + descsz > end)
                    break;
                if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                    !memcmp(name, "GNU", 4)) {
                    bid = desc;
                    bid_len = nh->n_descsz;
                    break;
                }
                n = desc + descsz;
            }
        }
    }
    if (lo >= hi)
        return 0;
    const char *name = info->dlpi_name;
    if (!name || !*name)
        name = exe_path;
    size_t nlen = strlen(name);
    for (uint32_t i = 0; i < n_mods; i++)
        if (mods[i].bias == info->dlpi_addr && mods[i].lo == lo && mods[i].name_len == nlen &&
            !memcmp(mod_strings.p + mods[i].name_off, name, nlen))
            return 0;
    if (n_mods >= cap_mods)
        return 0;
    struct pf_module *m = &mods[n_mods];
    m->bias = info->dlpi_addr;
    m->lo = lo;
    m->hi = hi;
    m->name_off = (uint32_t)mod_strings.len;
    m->name_len = (uint32_t)nlen;
    put_bytes(&mod_strings, name, nlen);
    m->bid_off = (uint32_t)mod_strings.len;
    m->bid_len = bid_len;
    if (bid)
        put_bytes(&mod_strings, bid, bid_len);
    if (!mod_strings.failed)
        n_mods++;
    return 0;
}

static void refresh_modules(void)
{
    if (!mods)
        mods = pf_map(sizeof(struct pf_module) * cap_mods);
    if (mods)
        dl_iterate_phdr(phdr_cb, NULL);
}

/* ---- the capture writer --------------------------------------------------- */

static int flush_lock;
static struct obuf body, packed;
static uint64_t *snap;      /* per-stack statistics copied under the lock */
static size_t snap_cap;
static ZSTD_CCtx *zctx;
static int exit_code = -1;  /* from exit(), when the program calls it */

static void write_all(int fd, const unsigned char *p, size_t n, int *ok)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            *ok = 0;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static size_t path_of(char *dst, size_t cap)
{
    char num[24];
    int k = 0;
    pid_t pid = pf.pid;
    char tmp[24];
    do {
        tmp[k++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid && k < 20);
    for (int i = 0; i < k; i++)
        num[i] = tmp[k - 1 - i];
    num[k] = 0;
    size_t n;
    if (pf.out[0]) {
        n = strlen(pf.out);
        if (n + 32 >= cap)
            return 0;
        memcpy(dst, pf.out, n);
        if (pf.pid != pf.root_pid) {
            dst[n++] = '.';
            memcpy(dst + n, num, (size_t)k);
            n += (size_t)k;
        }
    } else {
        const char *base = strrchr(exe_path, '/');
        base = base ? base + 1 : exe_path;
        size_t bl = strlen(base);
        if (bl > 200)
            bl = 200;
        memcpy(dst, "rcgc-prof.", 10);
        n = 10;
        memcpy(dst + n, base, bl);
        n += bl;
        dst[n++] = '.';
        memcpy(dst + n, num, (size_t)k);
        n += (size_t)k;
        memcpy(dst + n, ".cap", 4);
        n += 4;
    }
    dst[n] = 0;
    return n;
}

void pf_write_capture(int state, int code, int in_signal)
{
    if (pf.ready != 2 || (pid_t)syscall(SYS_getpid) != pf.pid)
        return; /* a vfork/clone child sharing our memory: not ours to write */
    pf_guard++;
    if (!pf_trylock_for(&flush_lock, in_signal ? 200 : 5000))
        goto out_guard;
    if (pf.final_done && state == RCGC_PROF_RUNNING)
        goto out;
    if (!in_signal)
        refresh_modules();

    /* Snapshot the aggregate under the stack lock (skipped when a signal
     * interrupted this very thread inside a hook: values may then be off by
     * the interrupted operation, which is acceptable for a dying process). */
    int locked = pf_trylock_for(&pf.lock, in_signal ? 50 : 100000);
    uint32_t n = __atomic_load_n(&pf.n_stacks, __ATOMIC_ACQUIRE);
    size_t need = (size_t)n * RCGC_PROF_NSTATS * sizeof(uint64_t);
    if (need > snap_cap) {
        size_t ncap = need * 2;
        void *np = mmap(NULL, ncap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (np == MAP_FAILED) {
            if (locked)
                pf_unlock();
            goto out;
        }
        if (snap)
            munmap(snap, snap_cap);
        snap = np;
        snap_cap = ncap;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct pf_stack *s = &pf.stacks[i];
        uint64_t *d = snap + (size_t)i * RCGC_PROF_NSTATS;
        memcpy(d, s->st, sizeof s->st);
        if (s->peak_gen != pf.gen) { /* S2 */
            d[RCGC_PROF_ST_PEAK_COUNT] = s->st[RCGC_PROF_ST_LIVE_COUNT];
            d[RCGC_PROF_ST_PEAK_BYTES] = s->st[RCGC_PROF_ST_LIVE_BYTES];
        }
    }
    struct pf_totals tot = pf.tot;
    if (locked)
        pf_unlock();

    uint64_t now_ms = (pf_now_ns() - pf.t0_ns) / 1000000u;
    struct rusage ru;
    uint64_t maxrss = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        maxrss = (uint64_t)ru.ru_maxrss * 1024u;
    if (pf.peak_rss > maxrss)
        maxrss = pf.peak_rss;

    body.len = 0;
    body.failed = 0;
    size_t at = sec_begin(&body, RCGC_PROF_SEC_INFO);
    put_v(&body, (uint64_t)pf.pid);
    put_v(&body, (uint64_t)pf.parent_pid);
    put_v(&body, pf.pid == pf.root_pid || !pf.out[0]);
    put_v(&body, pf.start_unix_ns);
    put_v(&body, now_ms);
    put_v(&body, (uint64_t)pf.nframes);
    put_v(&body, (uint64_t)pf.interval_ms);
    put_v(&body, (uint64_t)state);
    put_z(&body, code);
    put_v(&body, tot.alloc_calls);
    put_v(&body, tot.free_calls);
    put_v(&body, tot.alloc_bytes);
    put_v(&body, tot.temp_calls);
    put_v(&body, tot.cur_bytes);
    put_v(&body, tot.cur_count);
    put_v(&body, tot.peak_bytes);
    put_v(&body, tot.peak_ms);
    put_v(&body, maxrss);
    put_s(&body, exe_path, exe_len);
    put_s(&body, cmdline, cmdline_len);
    sec_end(&body, at);

    at = sec_begin(&body, RCGC_PROF_SEC_MODS);
    put_v(&body, n_mods);
    for (uint32_t i = 0; i < n_mods; i++) {
        const struct pf_module *m = &mods[i];
        put_s(&body, (const char *)mod_strings.p + m->name_off, m->name_len);
        put_s(&body, (const char *)mod_strings.p + m->bid_off, m->bid_len);
        put_v(&body, m->bias);
        put_v(&body, m->lo);
        put_v(&body, m->hi);
    }
    sec_end(&body, at);

    at = sec_begin(&body, RCGC_PROF_SEC_STACKS);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint64_t *d = snap + (size_t)i * RCGC_PROF_NSTATS;
        if (d[RCGC_PROF_ST_ALLOC_COUNT] || d[RCGC_PROF_ST_LIVE_COUNT] || d[RCGC_PROF_ST_PEAK_COUNT])
            kept++;
    }
    put_v(&body, kept);
    for (uint32_t i = 0; i < n; i++) {
        const uint64_t *d = snap + (size_t)i * RCGC_PROF_NSTATS;
        if (!(d[RCGC_PROF_ST_ALLOC_COUNT] || d[RCGC_PROF_ST_LIVE_COUNT] ||
              d[RCGC_PROF_ST_PEAK_COUNT]))
            continue;
        const struct pf_stack *s = &pf.stacks[i];
        put_v(&body, s->nframes);
        uint64_t prev = 0;
        for (uint32_t k = 0; k < s->nframes; k++) {
            uint64_t f = pf.frames[s->frames_off + k];
            put_z(&body, (int64_t)(f - prev));
            prev = f;
        }
        for (int k = 0; k < RCGC_PROF_NSTATS; k++)
            put_v(&body, d[k]);
    }
    sec_end(&body, at);

    at = sec_begin(&body, RCGC_PROF_SEC_SAMPLES);
    uint32_t ns = pf.n_samples;
    if (ns > pf.cap_samples)
        ns = pf.cap_samples;
    /* a final capture closes the timeline with the state at the end */
    int closing = state != RCGC_PROF_RUNNING;
    put_v(&body, ns + (uint32_t)closing);
    uint64_t prev_t = 0;
    for (uint32_t i = 0; i < ns; i++) {
        const struct pf_sample *sm = &pf.samples[i];
        put_v(&body, sm->t_ms >= prev_t ? sm->t_ms - prev_t : 0);
        prev_t = sm->t_ms;
        put_v(&body, sm->rss);
        put_v(&body, sm->heap);
    }
    if (closing) {
        put_v(&body, now_ms >= prev_t ? now_ms - prev_t : 0);
        put_v(&body, in_signal ? (ns ? pf.samples[ns - 1].rss : 0) : read_rss());
        put_v(&body, tot.cur_bytes);
    }
    sec_end(&body, at);
    at = sec_begin(&body, RCGC_PROF_SEC_END);
    sec_end(&body, at);
    if (body.failed)
        goto out;

    /* Compress (static context: no allocation) and write atomically. */
    size_t bound = ZSTD_compressBound(body.len);
    packed.len = 0;
    packed.failed = 0;
    if (!ob_reserve(&packed, bound + RCGC_PROF_HEADER_SIZE))
        goto out;
    uint32_t flags = 0;
    size_t stored = 0;
    if (zctx) {
        size_t r = ZSTD_compressCCtx(zctx, packed.p + RCGC_PROF_HEADER_SIZE, bound, body.p,
                                     body.len, 3);
        if (!ZSTD_isError(r)) {
            flags = RCGC_PROF_F_ZSTD;
            stored = r;
        }
    }
    if (!flags) {
        memcpy(packed.p + RCGC_PROF_HEADER_SIZE, body.p, body.len);
        stored = body.len;
    }
    unsigned char *h = packed.p;
    memcpy(h, RCGC_PROF_MAGIC, 8);
    put_u32(h + 8, RCGC_PROF_VERSION);
    put_u32(h + 12, flags);
    put_u64(h + 16, body.len);
    put_u64(h + 24, stored);
    put_u32(h + 32, rcgc_prof_crc32(0, packed.p + RCGC_PROF_HEADER_SIZE, stored));
    put_u32(h + 36, rcgc_prof_crc32(0, h, 36));

    char path[4200], tmp[4300];
    size_t pl = path_of(path, sizeof path);
    if (!pl)
        goto out;
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        int ok = 1;
        write_all(fd, packed.p, stored + RCGC_PROF_HEADER_SIZE, &ok);
        close(fd);
        if (ok)
            rename(tmp, path);
        else
            unlink(tmp);
    }
    if (state != RCGC_PROF_RUNNING)
        pf.final_done = 1;
out:
    __atomic_store_n(&flush_lock, 0, __ATOMIC_RELEASE);
out_guard:
    pf_guard--;
}

/* ---- the sampler thread ----------------------------------------------------- */

static void add_sample(uint64_t t_ms)
{
    static uint64_t tick;
    uint64_t rss = read_rss();
    if (rss > pf.peak_rss)
        pf.peak_rss = rss;
    if (tick++ % pf.stride)
        return;
    if (pf.n_samples == pf.cap_samples) {
        /* Full: halve the resolution, keeping each pair's maxima, so the
         * timeline stays bounded however long the program runs. */
        for (uint32_t i = 0; i < pf.cap_samples / 2; i++) {
            struct pf_sample a = pf.samples[2 * i], b = pf.samples[2 * i + 1];
            pf.samples[i].t_ms = a.t_ms;
            pf.samples[i].rss = a.rss > b.rss ? a.rss : b.rss;
            pf.samples[i].heap = a.heap > b.heap ? a.heap : b.heap;
        }
        pf.n_samples = pf.cap_samples / 2;
        pf.stride *= 2;
    }
    struct pf_sample *s = &pf.samples[pf.n_samples];
    s->t_ms = t_ms;
    s->rss = rss;
    s->heap = __atomic_load_n(&pf.tot.cur_bytes, __ATOMIC_RELAXED);
    pf.n_samples++;
}

static void *sampler_main(void *arg)
{
    (void)arg;
    pf_guard = 1; /* everything this thread allocates is ours, untraced */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pid_t me = pf.pid;
    uint64_t last_flush = 0, flush_every = 200;
    for (;;) {
        struct timespec ts = { pf.interval_ms / 1000, (long)(pf.interval_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        if (pf.final_done || pf.pid != me)
            return NULL;
        uint64_t now = (pf_now_ns() - pf.t0_ns) / 1000000u;
        pf.now_ms = now;
        add_sample(now);
        if (now - last_flush >= flush_every) {
            uint64_t t = pf_now_ns();
            pf_write_capture(RCGC_PROF_RUNNING, 0, 0);
            uint64_t cost_ms = (pf_now_ns() - t) / 1000000u;
            /* keep flushing under ~5% of one core */
            flush_every = cost_ms * 20 > 200 ? cost_ms * 20 : 200;
            last_flush = now;
        }
    }
}

void pf_start_sampler(void)
{
    pf.need_sampler = 0;
    pf_guard++;
    /* The timeline's first point is taken here, not by the new thread: on
     * a busy machine the thread may not run before a short program ends,
     * and a timeline needs its start as well as the end the final capture
     * adds. */
    add_sample(0);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&t, &attr, sampler_main, NULL) == 0)
        pthread_setname_np(t, "rcgc-prof");
    pthread_attr_destroy(&attr);
    pf_guard--;
}

/* ---- exit, _exit, signals, fork ------------------------------------------------ */

static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP,
                                     SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1,
                                     SIGUSR2, SIGXCPU, SIGXFSZ, SIGVTALRM };

static void on_fatal(int sig)
{
    int saved = errno;
    pf_write_capture(RCGC_PROF_SIGNAL, sig, 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    if (real_sigaction)
        real_sigaction(sig, &sa, NULL);
    errno = saved;
    /* The signal is blocked while we run: re-sent, it is delivered with the
     * default action as soon as we return (a fault simply recurs). */
    syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
}

static void install_signal_handlers(void)
{
    if (!real_sigaction)
        return;
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
        struct sigaction old, sa;
        if (real_sigaction(fatal_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL ||
            (old.sa_flags & SA_SIGINFO))
            continue; /* ignored or handled by someone: leave it */
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        real_sigaction(fatal_signals[i], &sa, NULL);
    }
}

/* The program sees SIG_DFL where our handler stands in for it. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (!real_sigaction)
        real_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(
            RTLD_NEXT, "sigaction");
    int r = real_sigaction(sig, act, old);
    if (r == 0 && old && !(old->sa_flags & SA_SIGINFO) && old->sa_handler == on_fatal) {
        old->sa_handler = SIG_DFL;
        old->sa_flags = 0;
        sigemptyset(&old->sa_mask);
    }
    return r;
}

sighandler_t signal(int sig, sighandler_t h)
{
    if (!real_signal)
        real_signal = (sighandler_t(*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal");
    sighandler_t r = real_signal(sig, h);
    return r == on_fatal ? SIG_DFL : r;
}

void exit(int status)
{
    exit_code = status;
    if (!real_exit)
        real_exit = (void (*)(int))dlsym(RTLD_NEXT, "exit");
    real_exit(status);
    __builtin_unreachable();
}

static void uexit(int status) __attribute__((noreturn));
static void uexit(int status)
{
    if (pf.ready == 2)
        pf_write_capture(RCGC_PROF_UEXIT, status, 1);
    for (;;)
        syscall(SYS_exit_group, status);
}

void _exit(int status)
{
    uexit(status);
}

void _Exit(int status)
{
    uexit(status);
}

__attribute__((destructor)) static void pf_destructor(void)
{
    if (pf.ready == 2)
        pf_write_capture(RCGC_PROF_EXITED, exit_code, 0);
}

static void atfork_prepare(void)
{
    pf_guard++;
    while (__atomic_exchange_n(&flush_lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
    pf_lock();
}

static void atfork_parent(void)
{
    pf_unlock();
    __atomic_store_n(&flush_lock, 0, __ATOMIC_RELEASE);
    pf_guard--;
}

static void atfork_child(void)
{
    pf_unlock();
    __atomic_store_n(&flush_lock, 0, __ATOMIC_RELEASE);
    pf_child_reset();
    pf_guard--;
}

/* In a forked child: a new capture, counting what the child allocates and
 * the heap it inherited (live blocks stay live; totals and peak restart). */
void pf_child_reset(void)
{
    pf_cs_child();
    pf.pid = getpid();
    pf.parent_pid = getppid();
    for (uint32_t i = 0; i < pf.n_stacks; i++) {
        struct pf_stack *s = &pf.stacks[i];
        s->st[RCGC_PROF_ST_ALLOC_COUNT] = s->st[RCGC_PROF_ST_ALLOC_BYTES] = 0;
        s->st[RCGC_PROF_ST_TEMP_COUNT] = s->st[RCGC_PROF_ST_TEMP_BYTES] = 0;
    }
    pf.tot.alloc_calls = pf.tot.free_calls = pf.tot.alloc_bytes = pf.tot.temp_calls = 0;
    pf.tot.peak_bytes = pf.tot.cur_bytes;
    pf.tot.peak_ms = 0;
    pf.gen++;
    pf.n_samples = 0;
    pf.stride = 1;
    pf.t0_ns = pf_now_ns();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pf.start_unix_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    pf.now_ms = 0;
    pf.peak_rss = 0;
    pf.final_done = 0;
    if (statm_fd >= 0)
        close(statm_fd); /* it describes the parent */
    statm_fd = -1;
    pf.need_sampler = 1;
    exit_code = -1;
}

void pf_out_init(void)
{
    pf_guard++;
    real_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(
        RTLD_NEXT, "sigaction");
    real_signal = (sighandler_t(*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal");
    real_exit = (void (*)(int))dlsym(RTLD_NEXT, "exit");
    read_process_facts();
    (void)rcgc_prof_crc32(0, "", 0); /* build the table outside any signal */
    size_t zsize = ZSTD_estimateCCtxSize(3);
    void *zmem = pf_map(zsize);
    if (zmem)
        zctx = ZSTD_initStaticCCtx(zmem, zsize);
    refresh_modules();
    statm_open();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    install_signal_handlers();
    pf_guard--;
    pf_start_sampler();
}
