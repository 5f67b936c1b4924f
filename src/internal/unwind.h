/*
 * unwind.h - native stack capture for tracemalloc, libc only.
 *
 * Frame-pointer walking: each frame holds [fp] = the caller's fp and
 * [fp + sizeof(void *)] = the return address (x86-64 and AArch64 alike).
 * Every fp read is checked against the calling thread's stack bounds, so a
 * broken chain (code built without frame pointers that used the register
 * for data) ends the walk instead of faulting.
 */
#ifndef RCGC_UNWIND_H
#define RCGC_UNWIND_H

#include <stddef.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Walk from fp (a frame pointer of the calling thread): skip `skip` frames,
 * then store up to `max` return addresses in pcs.  *depth receives the
 * number of frames after the skipped ones (stored or not), counted up to
 * 65535.  Returns the number stored (0 when fp is not on this thread's
 * stack).  Never faults. */
int rcgc_unwind_fp(uintptr_t fp, int skip, uintptr_t *pcs, int max, int *depth);

/* A recorded walk (rcgc_unwind_walk), to tell cheaply whether a later walk
 * from the same frame would read exactly the same chain
 * (rcgc_unwind_same): the frame pointers are known, so the check loads
 * every frame record independently instead of chasing them one after the
 * other, and compares each record's two words (saved frame pointer,
 * return address) with one 16-byte compare where the CPU has one.
 * Same chain words + same stack bounds = same walk, frame for frame. */
#define RCGC_UNWIND_MEMO 128
#if defined(__x86_64__) && defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#define RCGC_UNWIND_HAVE_AVX2 1
/* U1's unrolled keyed check (below) with GCC and the GNU assembler,
 * which check its byte sizes; with clang the keyed check runs the AVX2
 * loop. */
#if !defined(__clang__)
#define RCGC_UNWIND_HAVE_U1 1
#endif
#endif
typedef struct rcgc_unwind_memo {
    /* K1 (perf-tm23): what rcgc_unwind_same_key compares before the
     * records, as one 32-byte XOR with {its frame, this thread's stack
     * top, record 0's saved frame pointer, its tag}: head_fp is fps[0]
     * and w0tag[0] is words[0] whenever key is not RCGC_UNWIND_NO_KEY
     * (rcgc_unwind_walk writes them together; whoever clears fps[0]
     * clears the key too), so one load of the memo serves the gate (frame
     * and stack top, tested before any record is read) and the
     * accumulator's start.  rcgc_validate checks it for the tracer's
     * recorded walks. */
    union {
        _Alignas(16) uintptr_t head[4];
        struct {
            uintptr_t head_fp;   /* fps[0] (K1) */
            uintptr_t key;       /* hi when rcgc_unwind_same_key may take
                                  * this walk for a repeat, else
                                  * RCGC_UNWIND_NO_KEY: rcgc_unwind_walk
                                  * sets hi where that check's loop can
                                  * run (rcgc_unwind_avx2 set, or a target
                                  * without the AVX2 loop); a caller
                                  * clears it for a walk taken with
                                  * another skip than the one it checks
                                  * with (rcgc_unwind_same_key has no skip
                                  * test) */
            /* words[0] (K1) and the walk's tag (0 from rcgc_unwind_walk;
             * a caller of rcgc_unwind_same_key may set its own, which
             * that check compares with its `tag` argument). */
            uintptr_t w0tag[2];
        };
    };
    uintptr_t lo, hi;            /* the stack bounds of the walk */
    int n;                       /* frames walked (skipped ones included);
                                  * 0: nothing to compare with, and then
                                  * fps[0] is 0 (rcgc_unwind_same tests
                                  * only that: no frame pointer is 0) */
    int nchk;                    /* records after record 0 to compare:
                                  * n - 1 rounded up to a multiple of 4, at
                                  * least 4 (the records past n repeat
                                  * record n - 1, which compares the same) */
    int skip;
    int end_zero;                /* the walk ended on a zero return address
                                  * in the frame at words[2n-2] */
    uintptr_t chk_bytes;         /* nchk * sizeof(uintptr_t): where the
                                  * AVX2 loop's index starts */
#if defined(RCGC_UNWIND_HAVE_U1)
    /* rcgc_unwind_same_key's entry into its unrolled pairs (U1, see
     * rcgc_unwind_u1_entry): a byte offset from the first pair, or, for a
     * walk of more than 2 RCGC_UNWIND_UNROLL records after record 0,
     * -RCGC_UNWIND_DEEP_BYTES (the loop over its records past those,
     * deep_bytes its byte index).  U1: a memo with a key has the ent
     * and deep_bytes of rcgc_unwind_u1_entry(n, nchk), set with the key
     * (a memo without one is never checked by it); rcgc_validate checks
     * it for the tracer's recorded walks. */
    intptr_t ent;
    uint64_t entw;   /* U3, below */
    uintptr_t deep_bytes;
    /* U3 (perf-tm21, after U2's two 32-bit offsets a word): fpq[Q] holds
     * the offsets from fps[0] of the four records 4 Q + 1 .. 4 Q + 4, in
     * 8-byte units, as 16-bit fields, records 4 Q + 3 and 4 Q + 4 in bits 0-15 and 16-31
     * (the quad's first pair in the code), 4 Q + 1 and 4 Q + 2 in bits
     * 32-47 and 48-63, for the quads up to record 64 that the walk's entry
     * runs (4 Q + 4 <= nchk; rcgc_unwind_u3_quad); a memo with a key has
     * every record 1 .. nchk a multiple of 8 bytes and less than 2^19
     * bytes above fps[0] (rcgc_unwind_u3_fits; rcgc_unwind_walk gives no
     * key to another walk), so a quad takes its four addresses from one
     * load, as the caller's frame pointer (checked equal to fps[0]) plus
     * 8 times each offset (an indexed address's scale).  entw is the offsets word the
     * entry pair starts with (rcgc_unwind_u3_entw): the check loads it
     * before its jump, since a walk may enter a quad at its second pair.
     * rcgc_validate checks both. */
    uint64_t fpq[RCGC_UNWIND_MEMO / 8];
#endif
    /* words[2k], words[2k+1]: the two words read from frame k (at fps[k]):
     * the saved frame pointer (fps[k+1], or what ended the walk) and the
     * return address (pcs[k]). */
    _Alignas(16) uintptr_t words[2 * RCGC_UNWIND_MEMO];
    uintptr_t fps[RCGC_UNWIND_MEMO];
    uintptr_t pcs[RCGC_UNWIND_MEMO];
} rcgc_unwind_memo;

/* rcgc_unwind_fp with skip + max <= RCGC_UNWIND_MEMO, recording the walk
 * in *m (m->n = 0 when the chain was too long to record).  The return
 * addresses after the skipped frames are m->pcs[skip ..]: returns how many
 * of them (<= max) and their full count in *depth (up to 65535). */
int rcgc_unwind_walk(uintptr_t fp, int skip, int max, int *depth, rcgc_unwind_memo *m);

/* A key no stack top equals (the top of a thread's stack lies below the
 * address space's end): rcgc_unwind_same_key never matches it. */
#define RCGC_UNWIND_NO_KEY UINTPTR_MAX

/* The calling thread's stack bounds [lo, hi) as the walks use them (0
 * until the first walk; hi == 1 when unknown).  Initial-exec TLS: read
 * inline by rcgc_unwind_same without a call. */
#if defined(__GNUC__) || defined(__clang__)
#define RCGC_UNWIND_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define RCGC_UNWIND_TLS _Thread_local
#endif
extern RCGC_UNWIND_TLS uintptr_t rcgc_unwind_stack_lo, rcgc_unwind_stack_hi;

/* x86-64 with GCC or clang: where the CPU has AVX2 (rcgc_unwind_avx2,
 * set at load time; tests clear it to run the SSE2 loop), the check
 * compares the records two to a 32-byte register, in a few lines of
 * assembly (AVX2 intrinsics would need a function compiled for AVX2, and
 * GCC realigns the stack of one with 32-byte values and a frame
 * pointer). */
#if defined(RCGC_UNWIND_HAVE_AVX2)
extern __attribute__((visibility("hidden"))) int rcgc_unwind_avx2;
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RCGC_UNWIND_INLINE static inline __attribute__((always_inline))
#else
#define RCGC_UNWIND_INLINE static inline
#endif
/* Records 1 .. m->nchk (SSE2 on x86-64) or 1 .. m->n - 1 compared with
 * their recorded words, d0 the difference already found in record 0:
 * non-zero when all are the same.  The tail of rcgc_unwind_same. */
RCGC_UNWIND_INLINE int rcgc_unwind_same_rest(uintptr_t d0, const rcgc_unwind_memo *m)
{
    const uintptr_t *w = m->words;
#if defined(__SSE2__) && defined(__x86_64__)
    /* Four records a round, one accumulator that starts with record 0's
     * difference (one test at the end); the loop runs on pointers to the
     * end of the recorded addresses (no round count to derive first). */
    __m128i acc = _mm_cvtsi64_si128((long long)d0);
    const uintptr_t *f = &m->fps[1], *fe = f + m->nchk;
    const __m128i *wr = (const __m128i *)&w[2];
#define RCGC_UNWIND_REC(j)                                                 \
    _mm_xor_si128(_mm_loadu_si128((const __m128i *)f[j]), _mm_load_si128(&wr[j]))
    for (; f != fe; f += 4, wr += 4)
        acc = _mm_or_si128(acc, _mm_or_si128(_mm_or_si128(RCGC_UNWIND_REC(0), RCGC_UNWIND_REC(1)),
                                             _mm_or_si128(RCGC_UNWIND_REC(2),
                                                          RCGC_UNWIND_REC(3))));
#undef RCGC_UNWIND_REC
    return _mm_movemask_epi8(_mm_cmpeq_epi8(acc, _mm_setzero_si128())) == 0xffff;
#else
    for (int k = 1; k < m->n; k++) {
        const uintptr_t *f = (const uintptr_t *)m->fps[k];
        d0 |= (f[0] ^ w[2 * k]) | (f[1] ^ w[2 * k + 1]);
    }
    return d0 == 0;
#endif
}

#if defined(RCGC_UNWIND_HAVE_AVX2)
/* The AVX2 loop of rcgc_unwind_same_avx2 and rcgc_unwind_same_key, after
 * the accumulator (ymm2) got record 0's difference: it compares records
 * m->nchk .. 1 and ends in vptest (zero flag set when all are the same)
 * and vzeroupper. */
#define RCGC_UNWIND_FO_ (offsetof(rcgc_unwind_memo, fps) + 8 - 32)
#define RCGC_UNWIND_WO_ (offsetof(rcgc_unwind_memo, words) + 16 - 64)
/* Four records (a half round) at byte index i + o (o = 0 or -32). */
#define RCGC_UNWIND_HALF_(o)                                                \
    "mov %c[f0]" o "(%[m],%[i]), %[t]\n\t"                                  \
    "vmovdqu (%[t]), %%xmm0\n\t"                                            \
    "mov %c[f1]" o "(%[m],%[i]), %[t]\n\t"                                  \
    "vinserti128 $1, (%[t]), %%ymm0, %%ymm0\n\t"                            \
    "vpxor %c[w0]" o o "(%[m],%[i],2), %%ymm0, %%ymm0\n\t"                  \
    "mov %c[f2]" o "(%[m],%[i]), %[t]\n\t"                                  \
    "vmovdqu (%[t]), %%xmm1\n\t"                                            \
    "mov %c[f3]" o "(%[m],%[i]), %[t]\n\t"                                  \
    "vinserti128 $1, (%[t]), %%ymm1, %%ymm1\n\t"                            \
    "vpxor %c[w2]" o o "(%[m],%[i],2), %%ymm1, %%ymm1\n\t"                  \
    "vpor %%ymm1, %%ymm0, %%ymm0\n\t"                                       \
    "vpor %%ymm0, %%ymm2, %%ymm2\n\t"
/* Eight records a round (two halves, i down by 64); an odd number of
 * halves (bit 5 of i = 8 nchk) does its last half alone first. */
#define RCGC_UNWIND_AVX2_LOOP_                                              \
    "test $32, %[i]\n\t"                                                    \
    "jz 2f\n\t"                                                             \
    RCGC_UNWIND_HALF_("")                                                   \
    "sub $32, %[i]\n\t"                                                     \
    "jz 3f\n"                                                               \
    "2:\n\t"                                                                \
    RCGC_UNWIND_HALF_("")                                                   \
    RCGC_UNWIND_HALF_("-32")                                                \
    "sub $64, %[i]\n\t"                                                     \
    "jne 2b\n"                                                              \
    "3:\n\t"                                                                \
    "vptest %%ymm2, %%ymm2\n\t"                                             \
    "vzeroupper"
#define RCGC_UNWIND_AVX2_ARGS_                                              \
    [f0] "i"(RCGC_UNWIND_FO_), [f1] "i"(RCGC_UNWIND_FO_ + 8),                \
        [f2] "i"(RCGC_UNWIND_FO_ + 16), [f3] "i"(RCGC_UNWIND_FO_ + 24),      \
        [w0] "i"(RCGC_UNWIND_WO_), [w2] "i"(RCGC_UNWIND_WO_ + 32)
#endif

#if defined(RCGC_UNWIND_HAVE_AVX2)
/* Records 1 .. m->nchk compared with their recorded words by the AVX2
 * loop (only where the CPU has AVX2), d0 the difference already found in
 * record 0: non-zero when all are the same. */
RCGC_UNWIND_INLINE int rcgc_unwind_same_avx2(uintptr_t d0, const rcgc_unwind_memo *m)
{
    /* Eight records a round, in two halves of four: each record's two
     * words loaded as 16 bytes from its frame, two records joined in a
     * 32-byte register and compared with their recorded words (adjacent
     * in words[]) at once; the accumulator starts with record 0's
     * difference.  The halves go from the last records down to record 1,
     * on one byte index i = 8 nchk, 8 (nchk - 4), ..., 32 into fps[] (2 i
     * into words[]), both arrays addressed from m itself: no pointer to
     * set up or advance, and the round's subtraction sets the loop's zero
     * flag (no compare).  There is always a half (nchk >= 4); an odd
     * number of halves runs its last half alone before the rounds. */
    uintptr_t i = m->chk_bytes, t;
    int same;
    __asm__("vmovq %[d0], %%xmm2\n" RCGC_UNWIND_AVX2_LOOP_
            : [i] "+r"(i), [t] "=&r"(t), "=@ccz"(same)
            : [m] "r"(m), [d0] "r"(d0), RCGC_UNWIND_AVX2_ARGS_
            : "xmm0", "xmm1", "xmm2", "memory");
    return same;
}
#endif

/* Non-zero when walking from fp with `skip` would repeat the walk recorded
 * in *m exactly (same frames, same return addresses, same end).  With
 * skip > 0, fp must be the frame of the calling function: its record was
 * just written by the call, its return address is not part of the walk
 * (a skipped frame) and never 0, so of that record only the saved frame
 * pointer is compared, loaded as the one word its store wrote (a 16-byte
 * load spanning the two stores of the call would wait for both to reach
 * the cache instead of being forwarded).  Never faults: it reads only
 * where the recorded walk read (each recorded frame, the one that ended
 * the walk on a zero return address included, lay in the same stack
 * bounds and had both its words read), on this thread's stack.  Every
 * record's address is known, so the loads run in parallel; each record's
 * two words are compared at once where the CPU can. */
RCGC_UNWIND_INLINE int rcgc_unwind_same(uintptr_t fp, int skip, const rcgc_unwind_memo *m)
{
    /* The stack's top decides: every record lies in [fp, hi) (frames go
     * up from fp, fp == fps[0] lies in this thread's stack, so at or
     * above its bottom), and a walk's bounds tests read the bottom only
     * for frames below fp; the same top and fp are the same reads. */
    if (fp != m->fps[0] || skip != m->skip || rcgc_unwind_stack_hi != m->hi)
        return 0;
    const uintptr_t *w = m->words;
    const uintptr_t *f0 = (const uintptr_t *)fp;
    uintptr_t d0 = f0[0] ^ w[0];
    if (skip == 0)
        d0 |= f0[1] ^ w[1];
#if defined(RCGC_UNWIND_HAVE_AVX2)
    if (__builtin_expect(!rcgc_unwind_avx2, 0))
        return rcgc_unwind_same_rest(d0, m);
    return rcgc_unwind_same_avx2(d0, m);
#else
    return rcgc_unwind_same_rest(d0, m);
#endif
}

#if defined(RCGC_UNWIND_HAVE_U1)
/* U1, the unrolled pairs of rcgc_unwind_same_key: RCGC_UNWIND_UNROLL
 * pairs of records, one after the other in the code, the first comparing
 * records 2 U - 1 and 2 U, the last records 1 and 2, every memo word a
 * fixed displacement from the memo (no index, no loop counter); a pair's
 * records are read at the caller's frame pointer (record 0's address)
 * plus two 16-bit offsets of the pair's quad's fpq word (U3), held in rcx
 * (the pairs run by quads, each quad loading its word once).  A walk enters
 * at the pair of its last records (m->ent bytes after the first; its
 * records past n - 1 repeat record n - 1, as for the loops) and runs to
 * the end: one indirect jump instead of the loop's entry test, peeled
 * half and round branches, and at most one padded record instead of
 * three.  A walk of more than 2 U records after record 0 enters a loop
 * over the records past them first (m->deep_bytes; the AVX2 loop's
 * halves of four, nchk being a multiple of four), placed just before the
 * first quad, into which it falls.  Every quad is RCGC_UNWIND_QUAD_BYTES
 * bytes, its load RCGC_UNWIND_QLOAD_BYTES and its first pair
 * RCGC_UNWIND_HI_BYTES (fixed registers: the memo in rax, the offsets
 * word in rcx (r9 before perf-tm23), the deep loop's record address
 * and a pair's second offset in r11, the deep loop's index and a pair's
 * first offset in r10; every displacement 32-bit) and the deep loop
 * RCGC_UNWIND_DEEP_BYTES: the
 * assembler checks them all, so the offsets of rcgc_unwind_u1_entry
 * match the code. */
#define RCGC_UNWIND_UNROLL 32
#define RCGC_UNWIND_QLOAD_BYTES 7   /* a quad's load of its offsets word */
#define RCGC_UNWIND_HI_BYTES 48     /* the quad's first pair (J = 2 Q + 1) */
#define RCGC_UNWIND_QUAD_BYTES 96   /* the load and both pairs */
#define RCGC_UNWIND_DEEP_BYTES 99
#define RCGC_UNWIND_STR2_(x) #x
#define RCGC_UNWIND_STR_(x) RCGC_UNWIND_STR2_(x)
/* The four records of quad Q = .Lrcgc_unwind_q (U3): its offsets word
 * (fpq[Q]) into rcx (w), then the pair J = 2 Q + 1 (records 4 Q + 3 and
 * 4 Q + 4, bits 0-15 and 16-31: into r10 and r11, then w shifted down by
 * 32, which is where a walk that enters at the second pair starts) and
 * the pair J = 2 Q (the low 16 bits of w into r10, w shifted by 16 is
 * the other offset).  Each pair loads its two records' 16 bytes at fp
 * plus each offset and XORs them with their recorded words.  Every
 * displacement 32-bit, so the size does not depend on fp's register. */
#define RCGC_UNWIND_PAIR_VEC_(x)                                            \
    "%{disp32%} vmovdqu 0(%[fp],%[i],8), %%xmm0\n\t"                        \
    "%{disp32%} vinserti128 $1, 0(%[fp]," x ",8), %%ymm0, %%ymm0\n\t"       \
    "%{disp32%} vpxor %c[wo]+32*.Lrcgc_unwind_j+16(%[m]), %%ymm0, %%ymm0\n\t" \
    "vpor %%ymm0, %%ymm2, %%ymm2\n\t"
#define RCGC_UNWIND_FIXED_QUAD_                                             \
    "2:\n\t"                                                                \
    "%{disp32%} mov %c[po]+8*.Lrcgc_unwind_q(%[m]), %[w]\n"                 \
    "3:\n\t"                                                                \
    ".set .Lrcgc_unwind_j, 2*.Lrcgc_unwind_q+1\n\t"                         \
    "movzwl %w[w], %k[i]\n\t"                                              \
    "mov %k[w], %k[t]\n\t"                                                 \
    "shr $16, %k[t]\n\t"                                                   \
    "shr $32, %[w]\n\t" RCGC_UNWIND_PAIR_VEC_("%[t]")                      \
    "4:\n\t"                                                                \
    ".set .Lrcgc_unwind_j, 2*.Lrcgc_unwind_q\n\t"                           \
    "movzwl %w[w], %k[i]\n\t"                                              \
    "shr $16, %[w]\n\t" RCGC_UNWIND_PAIR_VEC_("%[w]")                      \
    ".if (3b - 2b) - " RCGC_UNWIND_STR_(RCGC_UNWIND_QLOAD_BYTES) "\n\t"     \
    ".error \"unwind.h: RCGC_UNWIND_QLOAD_BYTES is not a quad's load\"\n\t" \
    ".endif\n\t"                                                            \
    ".if (4b - 3b) - " RCGC_UNWIND_STR_(RCGC_UNWIND_HI_BYTES) "\n\t"        \
    ".error \"unwind.h: RCGC_UNWIND_HI_BYTES is not a quad's first pair\"\n\t" \
    ".endif\n\t"

/* U1's entry for a walk of n records (record 0 included, n >= 1) whose
 * records 1 .. nchk are filled (rcgc_unwind_walk): *ent and *deep as
 * rcgc_unwind_same_key takes them. */
static inline void rcgc_unwind_u1_entry(int n, int nchk, intptr_t *ent, uintptr_t *deep)
{
    if (n - 1 <= 2 * RCGC_UNWIND_UNROLL) {
        int pairs = n / 2 > 0 ? n / 2 : 1;   /* records 1 .. 2 pairs >= n - 1 */
        int j = pairs - 1, q = j / 2;         /* the entry pair and its quad */
        *ent = (intptr_t)(RCGC_UNWIND_UNROLL / 2 - 1 - q) * RCGC_UNWIND_QUAD_BYTES +
               RCGC_UNWIND_QLOAD_BYTES + (j % 2 ? 0 : RCGC_UNWIND_HI_BYTES);
        *deep = 0;
    } else {
        *ent = -(intptr_t)RCGC_UNWIND_DEEP_BYTES;
        *deep = (uintptr_t)(nchk - 2 * RCGC_UNWIND_UNROLL) * sizeof(uintptr_t);
    }
}

/* U3: the offsets word of quad q of a walk recorded in *m (records
 * 4 q + 1 .. 4 q + 4 filled), as fpq[q] holds it when every offset is
 * below 2^16. */
static inline uint64_t rcgc_unwind_u3_quad(const rcgc_unwind_memo *m, int q)
{
    uintptr_t b = m->fps[0];
    return (uint64_t)((m->fps[4 * q + 3] - b) >> 3) | (uint64_t)((m->fps[4 * q + 4] - b) >> 3) << 16 |
           (uint64_t)((m->fps[4 * q + 1] - b) >> 3) << 32 |
           (uint64_t)((m->fps[4 * q + 2] - b) >> 3) << 48;
}

/* U3: whether records 1 .. nchk of *m lie at multiples of 8 bytes from
 * record 0, below 2^19 bytes from it (their offsets in 8-byte units fit
 * 16 bits); a walk that fails this gets no key. */
static inline int rcgc_unwind_u3_fits(const rcgc_unwind_memo *m, int nchk)
{
    for (int k = 1; k <= nchk; k++) {
        uintptr_t d = m->fps[k] - m->fps[0];
        if ((d & 7) != 0 || (d >> 3) > UINT16_MAX)
            return 0;
    }
    return 1;
}

/* U3: the word the keyed check holds in w when it jumps to the entry of a
 * walk of n records (rcgc_unwind_u1_entry): the entry quad's offsets
 * word, shifted by 32 when the entry is the quad's second pair; 0 for a
 * walk that enters the deep loop (which falls into the first quad's
 * load). */
static inline uint64_t rcgc_unwind_u3_entw(const rcgc_unwind_memo *m, int n)
{
    if (n - 1 > 2 * RCGC_UNWIND_UNROLL)
        return 0;
    int pairs = n / 2 > 0 ? n / 2 : 1;
    int j = pairs - 1;
    uint64_t w = rcgc_unwind_u3_quad(m, j / 2);
    return j % 2 ? w : w >> 32;
}
#endif

/* rcgc_unwind_same for a caller that checks with one fixed skip >= 1 and
 * has cleared the key of every walk taken with another (m->key): the
 * walk's key stands for the skip, the stack top and, where the AVX2 loop
 * exists, for the CPU having it (a walk recorded while rcgc_unwind_avx2
 * was clear has no key), so none of the three is tested apart.  The
 * caller's frame and its record as for rcgc_unwind_same.  Besides, the
 * walk's tag (m->w0tag[1]) must be `tag`: compared in the vector with
 * record 0, it costs the caller's own test of what it stands for (the
 * tracer's call site).  Never faults, never runs AVX2 code on a CPU
 * without it. */
RCGC_UNWIND_INLINE int rcgc_unwind_same_key(uintptr_t fp, const rcgc_unwind_memo *m,
                                            uintptr_t tag)
{
#if defined(RCGC_UNWIND_HAVE_U1)
    /* K1: {fp, the stack top} and {record 0's saved frame pointer (loaded
     * alone, 8 bytes, forwarded from its push), the tag} in one 32-byte
     * register, XORed with the memo's head at once; the low half (the
     * frame and the stack top) is tested before any record is read (a
     * record lies in the stack the walk was taken on only when both are
     * the same), the high half starts the accumulator: 3 loads where the
     * compares took 5.  Then U1's entry (m->ent) and the entry's offsets
     * word (m->entw, U3), the deep loop when the walk has one, the pairs.
     * (ent and entw as one 16-byte load, split by vmovq and vpextrq: 1
     * load fewer, 2 instructions more, no faster; docs/tracemalloc.md,
     * perf-tm23.)  The offsets word is in rcx, the register of the
     * caller's line, which the caller compares before
     * (rcgc_trace_malloc_native's arguments stay where they came, and it
     * saves no register). */
    register const rcgc_unwind_memo *mr __asm__("rax") = m;
    register uintptr_t t __asm__("r11");
    register uintptr_t i __asm__("r10");
    register uint64_t w __asm__("rcx") = rcgc_unwind_stack_hi;   /* the top until the gate */
    int same;
    __asm__("vmovq %[fp], %%xmm2\n\t"
            "vpinsrq $1, %[w], %%xmm2, %%xmm2\n\t"
            "vmovq (%[fp]), %%xmm0\n\t"
            "vpinsrq $1, %[tag], %%xmm0, %%xmm0\n\t"
            "vinserti128 $1, %%xmm0, %%ymm2, %%ymm2\n\t"
            "vpxor %c[hd](%[m]), %%ymm2, %%ymm2\n\t"
            "vptest %%xmm2, %%xmm2\n\t"
            "jnz 6f\n\t"
            "lea 1f(%%rip), %[t]\n\t"
            "add %c[ent](%[m]), %[t]\n\t"
            "%{disp32%} mov %c[ew](%[m]), %[w]\n\t"
            "notrack jmp *%[t]\n"
            "8:\n\t"
            "%{disp32%} mov %c[db](%[m]), %[i]\n"
            "9:\n\t" RCGC_UNWIND_HALF_("")
            "sub $32, %[i]\n\t"
            /* jne 9b with a 32-bit displacement, as bytes: a fixed size
             * for the assembler's check below. */
            ".byte 0x0f, 0x85\n\t"
            ".long 9b - . - 4\n"
            "1:\n\t"
            ".set .Lrcgc_unwind_q, " RCGC_UNWIND_STR_(RCGC_UNWIND_UNROLL) " / 2 - 1\n\t"
            ".rept " RCGC_UNWIND_STR_(RCGC_UNWIND_UNROLL) " / 2\n\t"
            RCGC_UNWIND_FIXED_QUAD_
            ".set .Lrcgc_unwind_q, .Lrcgc_unwind_q - 1\n\t"
            ".endr\n"
            "7:\n\t"
            ".if (7b - 1b) - " RCGC_UNWIND_STR_(RCGC_UNWIND_UNROLL) " / 2 * "
            RCGC_UNWIND_STR_(RCGC_UNWIND_QUAD_BYTES) "\n\t"
            ".error \"unwind.h: RCGC_UNWIND_QUAD_BYTES is not the size of a quad\"\n\t"
            ".endif\n\t"

            ".if (1b - 8b) - " RCGC_UNWIND_STR_(RCGC_UNWIND_DEEP_BYTES) "\n\t"
            ".error \"unwind.h: RCGC_UNWIND_DEEP_BYTES is not the size of the deep loop\"\n\t"
            ".endif\n\t"
            "vptest %%ymm2, %%ymm2\n"
            "6:\n\t"
            "vzeroupper"
            : [i] "=&r"(i), [t] "=&r"(t), [w] "+&r"(w), "=@ccz"(same)
            : [m] "r"(mr), [fp] "r"(fp), [tag] "r"(tag),
              [hd] "i"(offsetof(rcgc_unwind_memo, head)),
              [ent] "i"(offsetof(rcgc_unwind_memo, ent)),
              [ew] "i"(offsetof(rcgc_unwind_memo, entw)),
              [db] "i"(offsetof(rcgc_unwind_memo, deep_bytes)),
              [fo] "i"(offsetof(rcgc_unwind_memo, fps)),
              [wo] "i"(offsetof(rcgc_unwind_memo, words)),
              [po] "i"(offsetof(rcgc_unwind_memo, fpq)),
              [f0] "i"(RCGC_UNWIND_FO_ + 16 * RCGC_UNWIND_UNROLL),
              [f1] "i"(RCGC_UNWIND_FO_ + 16 * RCGC_UNWIND_UNROLL + 8),
              [f2] "i"(RCGC_UNWIND_FO_ + 16 * RCGC_UNWIND_UNROLL + 16),
              [f3] "i"(RCGC_UNWIND_FO_ + 16 * RCGC_UNWIND_UNROLL + 24),
              [w0] "i"(RCGC_UNWIND_WO_ + 32 * RCGC_UNWIND_UNROLL),
              [w2] "i"(RCGC_UNWIND_WO_ + 32 * RCGC_UNWIND_UNROLL + 32)
            : "xmm0", "xmm1", "xmm2", "memory");
    return same;
#elif defined(RCGC_UNWIND_HAVE_AVX2)
    /* Record 0's saved frame pointer and the tag against {words[0], tag}
     * as the accumulator's start, then the AVX2 loop. */
    if (fp != m->fps[0] || rcgc_unwind_stack_hi != m->key)
        return 0;
    uintptr_t i = m->chk_bytes, t;
    int same;
    __asm__("vmovq (%[fp]), %%xmm2\n\t"
            "vpinsrq $1, %[tag], %%xmm2, %%xmm2\n\t"
            "vpxor %c[wz](%[m]), %%xmm2, %%xmm2\n" RCGC_UNWIND_AVX2_LOOP_
            : [i] "+r"(i), [t] "=&r"(t), "=@ccz"(same)
            : [m] "r"(m), [fp] "r"(fp), [tag] "r"(tag),
              [wz] "i"(offsetof(rcgc_unwind_memo, w0tag)), RCGC_UNWIND_AVX2_ARGS_
            : "xmm0", "xmm1", "xmm2", "memory");
    return same;
#else
    if (fp != m->fps[0] || rcgc_unwind_stack_hi != m->key)
        return 0;
    return rcgc_unwind_same_rest((*(const uintptr_t *)fp ^ m->words[0]) | (tag ^ m->w0tag[1]),
                                 m);
#endif
}
#if defined(RCGC_UNWIND_HAVE_AVX2)
#undef RCGC_UNWIND_FO_
#undef RCGC_UNWIND_WO_
#undef RCGC_UNWIND_AVX2_LOOP_
#undef RCGC_UNWIND_HALF_
#undef RCGC_UNWIND_AVX2_ARGS_
#endif
#if defined(RCGC_UNWIND_HAVE_U1)
#undef RCGC_UNWIND_FIXED_QUAD_
#undef RCGC_UNWIND_PAIR_VEC_
#undef RCGC_UNWIND_STR_
#undef RCGC_UNWIND_STR2_
#endif

/* The index of the frame whose frame pointer is `target` in the chain that
 * starts at fp (0 = fp itself), or -1 when the chain does not reach it
 * within 256 frames. */
int rcgc_unwind_find(uintptr_t fp, uintptr_t target);

/* The offset from fp of the highest stack word in [fp, target) that holds
 * the value `target`, or -1.  Used to find where code built without frame
 * pointers saved its caller's frame pointer (see tracemalloc.c,
 * "calibration"). */
long rcgc_unwind_find_slot(uintptr_t fp, uintptr_t target);

/* The word at fp + off when that address lies in this thread's stack,
 * else 0. */
uintptr_t rcgc_unwind_load(uintptr_t fp, long off);

/* Built-in symbolization (dladdr): the module holding pc and pc's offset
 * in it written as "<module+0x1234>" into buf; 0 when unknown.  function
 * receives the nearest exported symbol or NULL. */
int rcgc_unwind_dladdr(uintptr_t pc, char *buf, size_t cap, const char **function);

#endif
