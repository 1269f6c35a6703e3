#include "lstm.h"

#include "activation.h"
#include "linear.h"

#include <stddef.h>
#include <string.h>

/* The recurrent products have a handful of rows (a lane's sequences) and a
 * large weight: sgemm spends most of its time packing the weight for each
 * of them. These two loops read the weight as it lies instead, one row of it
 * at a time for all the sequences, and sum in a fixed order, so a row's
 * result does not depend on how many rows there are. */

/* Compiled for AVX-512, AVX2 and plain x86-64, the best picked at run time:
 * the same sums in the same order in each (16 running sums are 16 lanes,
 * whatever the vector width; no fused multiply-add), so the same bits. */
#if defined(LSTM_NO_CLONES) || defined(__SANITIZE_THREAD__)
/* plain x86-64 only: for checking that claim, and under ThreadSanitizer,
 * whose runtime is not up yet when the loader runs the clones' resolver */
#define VECTOR_CLONES
#else
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

/* 16 floats, one vector register under AVX-512, four under plain x86-64:
 * each lane's arithmetic is the same whatever the width. A v16 is never
 * passed to or returned from a function (whose ABI would then depend on
 * the target): LOAD16 is a macro, finish takes a pointer. */
typedef float v16 __attribute__((vector_size(64)));
#define LOAD16(v, p) memcpy(&(v), (p), sizeof(v16))

/* A dot product's 16 running sums, then a fixed tree, then the tail that
 * did not fill 16: the order every output of times_wt is summed in. */
static inline float finish(const v16 *acc, const float *x, const float *y, int k, int K)
{
    float a[16], tail = 0.0f;
    memcpy(a, acc, sizeof a);
    for (int s = 8; s > 0; s >>= 1)
        for (int j = 0; j < s; j++)
            a[j] += a[j + s];
    for (; k < K; k++)
        tail += x[k] * y[k];
    return a[0] + tail;
}

/* out[m, n] += a[m, :] . W[n, :] for m < M, n < N; rows of a, out strided.
 * Blocks of 4 rows of a by 4 rows of W share their loads. */
VECTOR_CLONES static void times_wt_clones(float *out, int ldo, const float *a, int lda,
                                          const float *W, int M, int N, int K)
{
    const int K16 = K / 16 * 16;
    for (int n0 = 0; n0 < N; n0 += 4) {
        const int nb = N - n0 < 4 ? N - n0 : 4;
        const float *w[4];
        for (int j = 0; j < 4; j++)
            w[j] = W + (size_t)(n0 + (j < nb ? j : 0)) * K;
        for (int m0 = 0; m0 < M; m0 += 4) {
            const int mb = M - m0 < 4 ? M - m0 : 4;
            const float *x[4];
            for (int i = 0; i < 4; i++)
                x[i] = a + (size_t)(m0 + (i < mb ? i : 0)) * lda;
            v16 acc[4][4] = {{{0}}};
            for (int k = 0; k < K16; k += 16) {
                v16 w0, w1, w2, w3;
                LOAD16(w0, w[0] + k);
                LOAD16(w1, w[1] + k);
                LOAD16(w2, w[2] + k);
                LOAD16(w3, w[3] + k);
                for (int i = 0; i < 4; i++) {
                    v16 xi;
                    LOAD16(xi, x[i] + k);
                    acc[i][0] += xi * w0;
                    acc[i][1] += xi * w1;
                    acc[i][2] += xi * w2;
                    acc[i][3] += xi * w3;
                }
            }
            for (int i = 0; i < mb; i++)
                for (int j = 0; j < nb; j++)
                    out[(size_t)(m0 + i) * ldo + n0 + j] += finish(&acc[i][j], x[i], w[j], K16, K);
        }
    }
}

/* The clones are static: clang 14 does not link target_clones on a function
 * other files call. */
void times_wt(float *out, int ldo, const float *a, int lda, const float *W, int M, int N, int K)
{
    times_wt_clones(out, ldo, a, lda, W, M, N, K);
}

/* out[m, :] += sum over n of d[m, n] W[n, :], n in order: each output is
 * added to one term at a time, whatever the blocking (4 rows of W at a
 * time, held while they serve every row). */
VECTOR_CLONES static void times_w(float *out, int ldo, const float *d, int ldd, const float *W,
                                  int M, int N, int K)
{
    const int K16 = K / 16 * 16;
    for (int n0 = 0; n0 < N; n0 += 4) {
        const int nb = N - n0 < 4 ? N - n0 : 4;
        for (int m = 0; m < M; m++) {
            const float *g = d + (size_t)m * ldd + n0;
            float *o = out + (size_t)m * ldo;
            for (int k = 0; k < K16; k += 16) {
                v16 acc, wj;
                LOAD16(acc, o + k);
                for (int j = 0; j < nb; j++) {
                    LOAD16(wj, W + (size_t)(n0 + j) * K + k);
                    acc += g[j] * wj;
                }
                memcpy(o + k, &acc, sizeof acc);
            }
            for (int k = K16; k < K; k++)
                for (int j = 0; j < nb; j++)
                    o[k] += g[j] * W[(size_t)(n0 + j) * K + k];
        }
    }
}

/* Unit j of a row: the gates from their pre-activations, the new state from
 * the previous cell value cp (0 at the first step). */
static inline void cell_unit(float *restrict g, float *restrict c, float *restrict tc,
                             float *restrict h, float cp, int H, int j)
{
    float *gi = g, *gf = g + H, *gg = g + 2 * H, *go = g + 3 * H;
    gi[j] = sigmoid_poly(gi[j]);
    gf[j] = sigmoid_poly(gf[j]);
    gg[j] = tanh_poly(gg[j]);
    go[j] = sigmoid_poly(go[j]);
    c[j] = gf[j] * cp + gi[j] * gg[j];
    tc[j] = tanh_poly(c[j]);
    h[j] = go[j] * tc[j];
}

/* A row's units, in two loops without a branch inside, so that they
 * vectorize (element by element: the same bits at every width). */
VECTOR_CLONES static void cell(float *restrict g, float *restrict c, float *restrict tc,
                               float *restrict h, const float *restrict cprev, int H)
{
    if (cprev)
        for (int j = 0; j < H; j++)
            cell_unit(g, c, tc, h, cprev[j], H, j);
    else
        for (int j = 0; j < H; j++)
            cell_unit(g, c, tc, h, 0.0f, H, j);
}

void lstm_layer_forward(float *h, float *c, float *tc, float *gates, const float *x,
                        const float *Wih, const float *Whh, const float *bias, int B, int nseg,
                        int T, int In, int H, const linear_fixed *f)
{
    const int G = 4 * H, rows = B / nseg * T;
    for (int s = 0; s < nseg; s++)
        linear_forward_by(f, gates + (size_t)s * rows * G, x + (size_t)s * rows * In, Wih, bias,
                          rows, In, G);
    for (int t = 0; t < T; t++) {
        if (t > 0) /* rows b * T + t of gates += h[b * T + t - 1] . Whh^T */
            times_wt(gates + (size_t)t * G, T * G, h + (size_t)(t - 1) * H, T * H, Whh, B, G, H);
        for (int b = 0; b < B; b++) {
            const size_t row = (size_t)b * T + t;
            cell(gates + row * G, c + row * H, tc + row * H, h + row * H,
                 t > 0 ? c + (row - 1) * H : NULL, H);
        }
    }
}

/* tests/lstm_fault.c compiles this file again with a wrong forget-gate
 * gradient, to show that the finite-difference checks catch such a fault;
 * here the factor is 1 (an exact no-op). */
#ifndef LSTM_PLANTED_FAULT
#define LSTM_PLANTED_FAULT 1.0f
#endif

/* Unit j of a row's gates' pre-activation gradient, given dh of the row
 * (recurrence included), dc carried from the step after and the previous
 * cell value cp. */
static inline void cell_unit_backward(float *restrict dg, float *restrict dc,
                                      const float *restrict dh, const float *restrict g,
                                      const float *restrict tc, float cp, int H, int j)
{
    const float *gi = g, *gf = g + H, *gg = g + 2 * H, *go = g + 3 * H;
    float d_c = dc[j] + dh[j] * go[j] * (1.0f - tc[j] * tc[j]);
    dg[j] = d_c * gg[j] * gi[j] * (1.0f - gi[j]);
    dg[H + j] = LSTM_PLANTED_FAULT * d_c * cp * gf[j] * (1.0f - gf[j]);
    dg[2 * H + j] = d_c * gi[j] * (1.0f - gg[j] * gg[j]);
    dg[3 * H + j] = dh[j] * tc[j] * go[j] * (1.0f - go[j]);
    dc[j] = d_c * gf[j];
}

VECTOR_CLONES static void cell_backward(float *restrict dg, float *restrict dc,
                                        const float *restrict dh, const float *restrict g,
                                        const float *restrict tc, const float *restrict cprev,
                                        int H)
{
    if (cprev)
        for (int j = 0; j < H; j++)
            cell_unit_backward(dg, dc, dh, g, tc, cprev[j], H, j);
    else
        for (int j = 0; j < H; j++)
            cell_unit_backward(dg, dc, dh, g, tc, 0.0f, H, j);
}

void lstm_layer_backward(float *dx, float *const *dWih, float *const *dWhh, float *const *dbias,
                         float *dh, float *dgates, float *hprev, float *dc, const float *x,
                         const float *h, const float *c, const float *tc, const float *gates,
                         const float *Wih, const float *Whh, int B, int nseg, int T, int In,
                         int H, const linear_fixed *f)
{
    const int G = 4 * H, rows = B / nseg * T;
    memset(dc, 0, (size_t)B * H * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        for (int b = 0; b < B; b++) {
            const size_t row = (size_t)b * T + t;
            cell_backward(dgates + row * G, dc + (size_t)b * H, dh + row * H, gates + row * G,
                          tc + row * H, t > 0 ? c + (row - 1) * H : NULL, H);
        }
        if (t > 0) /* dh[b * T + t - 1] += dgates[b * T + t] . Whh */
            times_w(dh + (size_t)(t - 1) * H, T * H, dgates + (size_t)t * G, T * G, Whh, B, G, H);
    }
    /* the recurrent weights see h shifted by one step: one product for all */
    for (int b = 0; b < B; b++) {
        float *dst = hprev + (size_t)b * T * H;
        memset(dst, 0, (size_t)H * sizeof(float));
        memcpy(dst + H, h + (size_t)b * T * H, (size_t)(T - 1) * H * sizeof(float));
    }
    for (int s = 0; s < nseg; s++) {
        const size_t r0 = (size_t)s * rows;
        linear_backward_params_by(f, dWhh[s], NULL, dgates + r0 * G, hprev + r0 * H, rows, H, G);
        linear_backward_params_by(f, dWih[s], dbias[s], dgates + r0 * G, x + r0 * In, rows, In, G);
        if (dx)
            linear_backward_input_by(f, dx + r0 * In, dgates + r0 * G, Wih, rows, In, G);
    }
}

void lstm_layer_step(float *h, float *c, float *gates, const float *x, const float *Wih,
               const float *Whh, const float *bias, int In, int H)
{
    const int G = 4 * H;
    memcpy(gates, bias, (size_t)G * sizeof(float));
    times_wt(gates, G, x, In, Wih, 1, G, In);
    times_wt(gates, G, h, H, Whh, 1, G, H);
    float *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
    for (int j = 0; j < H; j++) {
        float i = sigmoid_poly(gi[j]), f = sigmoid_poly(gf[j]), g = tanh_poly(gg[j]);
        float o = sigmoid_poly(go[j]);
        c[j] = f * c[j] + i * g;
        h[j] = o * tanh_poly(c[j]);
    }
}
