/* Fixed-order matrix products (see gemm.h for what is fixed and why).
 *
 * The work is cut into tiles of TM rows and TN columns of C. A tile's
 * kernel keeps all TM x TN sums in registers and runs k from 0 to K - 1:
 * for each k it loads one row of B (TN values) and multiplies it by each of
 * the TM values A(i, k), fused with the add. Rows past M read row 0 of the
 * tile again and columns past N are masked to zero; both are thrown away,
 * and neither changes a kept element, whose chain only ever sees its own
 * row and column. The three kernels below are that one loop at three
 * vector widths. */
#include "gemm.h"

#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TM 8
#define TN 32
#define MAX_LEVELS 24

/* A tile's sums over nseg segments of K rows of B each (segment s starts
 * at k = s * K), added in the tree of gemm_fixed_tree, into out[TM * TN].
 * stack holds MAX_LEVELS + 1 tiles of scratch. */
typedef void tile_fn(int K, int nseg, const float *const *ap, long aks, const float *b, long ldb,
                     int nj, float *stack, float *out);

/* 8 rows x 2 vectors of 16: 16 accumulators of the 32 registers. */
/* The first n (clamped to 0..16) lanes of a 16-float vector. */
static inline __mmask16 lanes16(int n)
{
    return n >= 16 ? (__mmask16)0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : (__mmask16)0;
}

/* One k of an AVX-512 tile's row i: A(i, k) times the two vectors of B's
 * row k (b0, b1), fused into the row's two accumulators. */
#define ROW512(i)                                                                                 \
    do {                                                                                          \
        const __m512 av = _mm512_set1_ps(a##i[o]);                                                \
        c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0);                                               \
        c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1);                                               \
    } while (0)

__attribute__((target("avx512f"))) static void tile_avx512(int K, int nseg,
                                                            const float *const *ap, long aks,
                                                            const float *b, long ldb, int nj,
                                                            float *stack, float *out)
{
    const __mmask16 m0 = lanes16(nj), m1 = lanes16(nj - 16);
    for (int s = 0; s < nseg; s++) {
    const long k0 = (long)s * K;
    const float *a0 = ap[0] + k0 * aks, *a1 = ap[1] + k0 * aks, *a2 = ap[2] + k0 * aks;
    const float *a3 = ap[3] + k0 * aks, *a4 = ap[4] + k0 * aks, *a5 = ap[5] + k0 * aks;
    const float *a6 = ap[6] + k0 * aks, *a7 = ap[7] + k0 * aks;
    const float *bs = b + k0 * ldb;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00;
#pragma GCC unroll 4
    for (long k = 0; k < K; k++) {
        const float *bk = bs + k * ldb;
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, bk), b1 = _mm512_maskz_loadu_ps(m1, bk + 16);
        const long o = k * aks;
        ROW512(0);
        ROW512(1);
        ROW512(2);
        ROW512(3);
        ROW512(4);
        ROW512(5);
        ROW512(6);
        ROW512(7);
    }
    /* the left sibling first, as in merge() */
    int l = 0;
    for (int t = s; t & 1; t >>= 1, l++) {
        const float *left = stack + l * TM * TN;
#define ADD(i)                                                                                    \
    do {                                                                                          \
        c##i##0 = _mm512_add_ps(_mm512_loadu_ps(left + (i) * TN), c##i##0);                      \
        c##i##1 = _mm512_add_ps(_mm512_loadu_ps(left + (i) * TN + 16), c##i##1);                  \
    } while (0)
        ADD(0);
        ADD(1);
        ADD(2);
        ADD(3);
        ADD(4);
        ADD(5);
        ADD(6);
        ADD(7);
#undef ADD
    }
    float *dst = s == nseg - 1 ? out : stack + l * TM * TN;
#define PUT(i)                                                                                    \
    do {                                                                                          \
        _mm512_storeu_ps(dst + (i) * TN, c##i##0);                                                \
        _mm512_storeu_ps(dst + (i) * TN + 16, c##i##1);                                           \
    } while (0)
    PUT(0);
    PUT(1);
    PUT(2);
    PUT(3);
    PUT(4);
    PUT(5);
    PUT(6);
    PUT(7);
#undef PUT
    }
}

/* 16 registers: the tile in four quarters of 4 rows x 16 columns. */
__attribute__((target("avx2,fma"))) static void quarter_avx2(int K, const float *const *ap,
                                                              long aks, const float *b, long ldb,
                                                              int nj, float *out)
{
    int lanes[16];
    for (int j = 0; j < 16; j++)
        lanes[j] = j < nj ? -1 : 0;
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)lanes);
    const __m256i m1 = _mm256_loadu_si256((const __m256i *)(lanes + 8));
    const float *a0 = ap[0], *a1 = ap[1], *a2 = ap[2], *a3 = ap[3];
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00;
    __m256 c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (long k = 0; k < K; k++) {
        const float *bk = b + k * ldb;
        const __m256 b0 = _mm256_maskload_ps(bk, m0), b1 = _mm256_maskload_ps(bk + 8, m1);
        const long o = k * aks;
#define ROW(i)                                                                                    \
    do {                                                                                          \
        const __m256 av = _mm256_set1_ps(a##i[o]);                                                \
        c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);                                               \
        c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1);                                               \
    } while (0)
        ROW(0);
        ROW(1);
        ROW(2);
        ROW(3);
#undef ROW
    }
#define PUT(i)                                                                                    \
    do {                                                                                          \
        _mm256_storeu_ps(out + (i) * TN, c##i##0);                                                \
        _mm256_storeu_ps(out + (i) * TN + 8, c##i##1);                                            \
    } while (0)
    PUT(0);
    PUT(1);
    PUT(2);
    PUT(3);
#undef PUT
}

/* One segment's sums, without the tree. */
typedef void leaf_fn(int K, const float *const *ap, long aks, const float *b, long ldb, int nj,
                     float *out);

static void leaf_avx2(int K, const float *const *ap, long aks, const float *b, long ldb, int nj,
                      float *out)
{
    for (int h = 0; h < 2; h++)
        for (int q = 0; q < 2; q++) {
            int n = nj - 16 * q;
            if (n <= 0)
                continue;
            quarter_avx2(K, ap + 4 * h, aks, b + 16 * q, ldb, n > 16 ? 16 : n,
                         out + 4 * h * TN + 16 * q);
        }
}

/* fmaf is exact (one rounding) on every CPU; without FMA hardware it is a
 * library routine, and this path is slow. */
static void leaf_scalar(int K, const float *const *ap, long aks, const float *b, long ldb, int nj,
                        float *out)
{
    memset(out, 0, TM * TN * sizeof *out);
    for (int i = 0; i < TM; i++)
        for (int j = 0; j < nj; j++) {
            float acc = 0.0f;
            for (long k = 0; k < K; k++)
                acc = fmaf(ap[i][k * aks], b[k * ldb + j], acc);
            out[i * TN + j] = acc;
        }
}

/* The segments and the tree around a leaf function: the same operations
 * as tile_avx512's, in memory. */
static void tree_of(leaf_fn *leaf, int K, int nseg, const float *const *ap, long aks,
                    const float *b, long ldb, int nj, float *stack, float *out)
{
    float cur[TM * TN] __attribute__((aligned(64)));
    const float *as[TM];
    for (int s = 0; s < nseg; s++) {
        const long k0 = (long)s * K;
        for (int i = 0; i < TM; i++)
            as[i] = ap[i] + k0 * aks;
        leaf(K, as, aks, b + k0 * ldb, ldb, nj, cur);
        int l = 0;
        for (int t = s; t & 1; t >>= 1, l++)
            for (int e = 0; e < TM * TN; e++)
                cur[e] = stack[l * TM * TN + e] + cur[e];
        memcpy(s == nseg - 1 ? out : stack + l * TM * TN, cur, sizeof cur);
    }
}

static void tile_avx2(int K, int nseg, const float *const *ap, long aks, const float *b, long ldb,
                      int nj, float *stack, float *out)
{
    tree_of(leaf_avx2, K, nseg, ap, aks, b, ldb, nj, stack, out);
}

static void tile_scalar(int K, int nseg, const float *const *ap, long aks, const float *b,
                        long ldb, int nj, float *stack, float *out)
{
    tree_of(leaf_scalar, K, nseg, ap, aks, b, ldb, nj, stack, out);
}

static const struct {
    const char *name;
    tile_fn *fn;
} PATHS[] = {{"avx512", tile_avx512}, {"avx2", tile_avx2}, {"scalar", tile_scalar}};

static int path_ok(int p)
{
    if (p == 0)
        return __builtin_cpu_supports("avx512f");
    if (p == 1)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return 1;
}

static pthread_once_t picked = PTHREAD_ONCE_INIT;
static int path = 2;

/* The best path the CPU runs; TRAINER_GEMM=avx2 or scalar picks a narrower
 * one, for checking that the bits do not change (tests/repro.sh). */
static void pick(void)
{
    __builtin_cpu_init();
    for (path = 0; !path_ok(path); path++)
        ;
    const char *want = getenv("TRAINER_GEMM");
    for (int p = 0; want && p < 3; p++)
        if (!strcmp(PATHS[p].name, want) && path_ok(p))
            path = p;
}

static tile_fn *tile(void)
{
    pthread_once(&picked, pick);
    return PATHS[path].fn;
}

const char *gemm_path(void)
{
    pthread_once(&picked, pick);
    return PATHS[path].name;
}

int gemm_force(const char *name)
{
    pthread_once(&picked, pick);
    for (int p = 0; p < 3; p++)
        if (!strcmp(PATHS[p].name, name)) {
            if (!path_ok(p))
                return -1;
            path = p;
            return 0;
        }
    return -1;
}

/* The tile's mi x nj sums written or added into C. */
__attribute__((target("avx512f"))) static void put_avx512(const float *out, float *c, long ldc,
                                                           int mi, int nj, int accumulate)
{
    const __mmask16 m0 = lanes16(nj), m1 = lanes16(nj - 16);
    for (int i = 0; i < mi; i++) {
        float *ci = c + (long)i * ldc;
        __m512 v0 = _mm512_loadu_ps(out + i * TN), v1 = _mm512_loadu_ps(out + i * TN + 16);
        if (accumulate) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), v1);
        }
        _mm512_mask_storeu_ps(ci, m0, v0);
        _mm512_mask_storeu_ps(ci + 16, m1, v1);
    }
}

/* Up to 4 rows of C, 32 columns: for the few rows of a sampling call with
 * guesses, where the 8-row tile would do twice the arithmetic. Each element
 * is the same chain as in the 8 x 32 tile. */
__attribute__((target("avx512f"))) static void rows4_avx512(int K, const float *const *ap,
                                                             long aks, const float *b, long ldb,
                                                             int nj, float *out)
{
    const __mmask16 m0 = lanes16(nj), m1 = lanes16(nj - 16);
    const float *a0 = ap[0], *a1 = ap[1], *a2 = ap[2], *a3 = ap[3];
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00;
#pragma GCC unroll 4
    for (long k = 0; k < K; k++) {
        const float *bk = b + k * ldb;
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, bk), b1 = _mm512_maskz_loadu_ps(m1, bk + 16);
        const long o = k * aks;
        ROW512(0);
        ROW512(1);
        ROW512(2);
        ROW512(3);
    }
    _mm512_storeu_ps(out, c00);
    _mm512_storeu_ps(out + 16, c01);
    _mm512_storeu_ps(out + TN, c10);
    _mm512_storeu_ps(out + TN + 16, c11);
    _mm512_storeu_ps(out + 2 * TN, c20);
    _mm512_storeu_ps(out + 2 * TN + 16, c21);
    _mm512_storeu_ps(out + 3 * TN, c30);
    _mm512_storeu_ps(out + 3 * TN + 16, c31);
}

/* One row of C, 128 columns at a time (a matrix-vector product: sampling
 * one token). Each element is the same chain as in an 8 x 32 tile. */
__attribute__((target("avx512f"))) static void row_avx512(int N, int K, const float *a, long aks,
                                                           const float *b, long ldb, float *c,
                                                           int accumulate)
{
    for (int j0 = 0; j0 < N; j0 += 128) {
        __mmask16 m[8];
        for (int v = 0; v < 8; v++) {
            int n = N - j0 - 16 * v;
            m[v] = n >= 16 ? 0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
        }
        __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
               c7 = c0;
        const float *bj = b + j0;
#pragma GCC unroll 2
        for (long k = 0; k < K; k++) {
            const __m512 av = _mm512_set1_ps(a[k * aks]);
            const float *bk = bj + k * ldb;
            c0 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m[0], bk), c0);
            c1 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m[1], bk + 16), c1);
            c2 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m[2], bk + 32), c2);
            c3 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m[3], bk + 48), c3);
            c4 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m[4], bk + 64), c4);
            c5 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m[5], bk + 80), c5);
            c6 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m[6], bk + 96), c6);
            c7 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m[7], bk + 112), c7);
        }
        __m512 acc[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
        for (int v = 0; v < 8; v++) {
            float *cv = c + j0 + 16 * v;
            if (accumulate)
                acc[v] = _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], cv), acc[v]);
            _mm512_mask_storeu_ps(cv, m[v], acc[v]);
        }
    }
}

/* Row pointers of the tile at row i0 with mi rows in use. */
static void rows_of(const float **ap, const float *a, long ars, int i0, int mi)
{
    for (int i = 0; i < TM; i++)
        ap[i] = a + (long)(i0 + (i < mi ? i : 0)) * ars;
}

/* Every tile of C: written (mode 0), added to (1), or added to after the
 * tree over nseg segments (2, nseg > 1). */
static void tiles(int M, int N, int K, int nseg, const float *a, long ars, long aks,
                  const float *b, long ldb, float *c, long ldc, int accumulate)
{
    tile_fn *fn = tile();
    if (M == 1 && nseg == 1 && fn == tile_avx512) {
        row_avx512(N, K, a, aks, b, ldb, c, accumulate);
        return;
    }
    float out[TM * TN] __attribute__((aligned(64)));
    float stack[(MAX_LEVELS + 1) * TM * TN] __attribute__((aligned(64)));
    const float *ap[TM];
    /* the larger operand in the outer loop, read once from memory; the
     * inner one is read again from the cache */
    const int rows_outer = M > N;
    const int nti = (M + TM - 1) / TM, ntj = (N + TN - 1) / TN;
    for (int t = 0; t < nti * ntj; t++) {
        const int i0 = TM * (rows_outer ? t / ntj : t % nti);
        const int j0 = TN * (rows_outer ? t % ntj : t / nti);
        const int nj = N - j0 < TN ? N - j0 : TN;
        {
            const int mi = M - i0 < TM ? M - i0 : TM;
            rows_of(ap, a, ars, i0, mi);
            if (fn == tile_avx512 && mi <= 4 && nseg == 1)
                rows4_avx512(K, ap, aks, b + j0, ldb, nj, out);
            else
                fn(K / nseg, nseg, ap, aks, b + j0, ldb, nj, stack, out);
            if (fn == tile_avx512) {
                put_avx512(out, c + (long)i0 * ldc + j0, ldc, mi, nj, accumulate);
                continue;
            }
            for (int i = 0; i < mi; i++) {
                float *restrict ci = c + (long)(i0 + i) * ldc + j0;
                const float *restrict oi = out + i * TN;
                if (accumulate)
                    for (int j = 0; j < nj; j++)
                        ci[j] += oi[j];
                else
                    for (int j = 0; j < nj; j++)
                        ci[j] = oi[j];
            }
        }
    }
}

void gemm_fixed(int M, int N, int K, const float *a, long ars, long aks, const float *b, long ldb,
                float *c, long ldc, int accumulate)
{
    tiles(M, N, K, 1, a, ars, aks, b, ldb, c, ldc, accumulate);
}

void gemm_fixed_tree(int M, int N, int K, int nseg, const float *a, long ars, long aks,
                     const float *b, long ldb, float *c, long ldc, int accumulate)
{
    tiles(M, N, K, nseg, a, ars, aks, b, ldb, c, ldc, accumulate);
}
