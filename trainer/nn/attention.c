#include "attention.h"

#include "exactmath.h"
#include "gemm.h"

#include <cblas.h>
#include <math.h>

/* dst[hs, T] = the head's columns of src's T rows (stride ld) transposed:
 * the right-hand side of a fixed-order product against keys or values. */
static void transpose_head(float *restrict dst, const float *restrict src, int ld, int T, int hs)
{
    for (int u = 0; u < T; u++)
        for (int d = 0; d < hs; d++)
            dst[(long)d * T + u] = src[(long)u * ld + d];
}

/* The keys query t of sequence b sees: [0, visible). */
static int visible(const int *klen, int causal, int b, int t, int Tk)
{
    int n = klen ? klen[b] : Tk;
    if (causal && t + 1 < n)
        n = t + 1;
    return n;
}

void mha_forward(float *out, float *att, const float *q, int qs, const float *k, int ks,
                 const float *v, int vs, const int *klen, int causal, int B, int Tq, int Tk,
                 int C, int NH, float *fixed)
{
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *qb = q + (long)b * Tq * qs + h * hs;
            const float *kb = k + (long)b * Tk * ks + h * hs, *vb = v + (long)b * Tk * vs + h * hs;
            float *p = att + ((long)b * NH + h) * Tq * Tk;
            if (fixed) { /* S = Q K^T, then the scale */
                transpose_head(fixed, kb, ks, Tk, hs);
                gemm_fixed(Tq, Tk, hs, qb, qs, 1, fixed, Tk, p, Tk, 0);
                for (long i = 0; i < (long)Tq * Tk; i++)
                    p[i] *= scale;
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, Tk, hs, scale, qb, qs,
                            kb, ks, 0.0f, p, Tk);
            }
            for (int t = 0; t < Tq; t++) {
                float *row = p + (long)t * Tk;
                const int n = visible(klen, causal, b, t, Tk);
                float mx = row[0];
                for (int u = 1; u < n; u++)
                    mx = row[u] > mx ? row[u] : mx;
                float sum = 0.0f;
                for (int u = 0; u < n; u++) {
                    row[u] = exp_f(row[u] - mx);
                    sum += row[u];
                }
                float inv = 1.0f / sum;
                for (int u = 0; u < n; u++)
                    row[u] *= inv;
                for (int u = n; u < Tk; u++)
                    row[u] = 0.0f; /* the future, or padding: exactly nothing */
            }
            if (fixed)
                gemm_fixed(Tq, hs, Tk, p, Tk, 1, vb, vs, out + (long)b * Tq * C + h * hs, C, 0);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, hs, Tk, 1.0f, p, Tk, vb,
                            vs, 0.0f, out + (long)b * Tq * C + h * hs, C);
        }
}

void mha_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                  const float *q, int qs, const float *k, int ks, const float *v, int vs,
                  const float *att, const int *klen, int causal, int B, int Tq, int Tk, int C,
                  int NH, float *fixed)
{
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const long qo = (long)b * Tq * qs + h * hs, ko = (long)b * Tk * ks + h * hs;
            const long vo = (long)b * Tk * vs + h * hs;
            const float *p = att + ((long)b * NH + h) * Tq * Tk;
            const float *dy = dout + (long)b * Tq * C + h * hs;
            float *ds = scratch;
            /* dP = dY V^T, dV += P^T dY */
            if (fixed) {
                transpose_head(fixed, v + vo, vs, Tk, hs);
                gemm_fixed(Tq, Tk, hs, dy, C, 1, fixed, Tk, ds, Tk, 0);
                gemm_fixed(Tk, hs, Tq, p, 1, Tk, dy, C, dv + vo, vs, 1);
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, Tk, hs, 1.0f, dy, C,
                            v + vo, vs, 0.0f, ds, Tk);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hs, Tq, 1.0f, p, Tk, dy,
                            C, 1.0f, dv + vo, vs);
            }
            /* softmax backward, row by row, over the keys the query sees */
            for (int t = 0; t < Tq; t++) {
                const float *pr = p + (long)t * Tk;
                float *dr = ds + (long)t * Tk;
                const int n = visible(klen, causal, b, t, Tk);
                float dot = 0.0f;
                for (int u = 0; u < n; u++)
                    dot += pr[u] * dr[u];
                for (int u = 0; u < n; u++)
                    dr[u] = pr[u] * (dr[u] - dot);
                for (int u = n; u < Tk; u++)
                    dr[u] = 0.0f;
            }
            /* S = scale * Q K^T: dQ += scale dS K, dK += scale dS^T Q */
            if (fixed) { /* the scale first, then the products */
                for (long i = 0; i < (long)Tq * Tk; i++)
                    ds[i] *= scale;
                gemm_fixed(Tq, hs, Tk, ds, Tk, 1, k + ko, ks, dq + qo, qs, 1);
                gemm_fixed(Tk, hs, Tq, ds, 1, Tk, q + qo, qs, dk + ko, ks, 1);
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, hs, Tk, scale, ds, Tk,
                            k + ko, ks, 1.0f, dq + qo, qs);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hs, Tq, scale, ds, Tk,
                            q + qo, qs, 1.0f, dk + ko, ks);
            }
        }
}

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                       float *fixed)
{
    mha_forward(out, att, qkv, 3 * C, qkv + C, 3 * C, qkv + 2 * C, 3 * C, NULL, 1, B, T, T, C,
                NH, fixed);
}

void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int NH, float *fixed)
{
    mha_backward(dqkv, dqkv + C, dqkv + 2 * C, scratch, dout, qkv, 3 * C, qkv + C, 3 * C,
                 qkv + 2 * C, 3 * C, att, NULL, 1, B, T, T, C, NH, fixed);
}
