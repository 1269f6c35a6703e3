#include "attention.h"

#include <cblas.h>
#include <math.h>

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (long)b * T * C3 + h * hs;
            const float *k = q + C, *v = q + 2 * C;
            float *p = att + ((long)b * NH + h) * T * T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q, C3, k, C3,
                        0.0f, p, T);
            for (int t = 0; t < T; t++) {
                float *row = p + (long)t * T;
                float mx = row[0];
                for (int u = 1; u <= t; u++)
                    mx = row[u] > mx ? row[u] : mx;
                float sum = 0.0f;
                for (int u = 0; u <= t; u++) {
                    row[u] = expf(row[u] - mx);
                    sum += row[u];
                }
                float inv = 1.0f / sum;
                for (int u = 0; u <= t; u++)
                    row[u] *= inv;
                for (int u = t + 1; u < T; u++)
                    row[u] = 0.0f; /* the future: exactly nothing */
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, p, T, v, C3,
                        0.0f, out + (long)b * T * C + h * hs, C);
        }
}

void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const long qo = (long)b * T * C3 + h * hs;
            const float *q = qkv + qo, *k = q + C, *v = q + 2 * C;
            float *dq = dqkv + qo, *dk = dq + C, *dv = dq + 2 * C;
            const float *p = att + ((long)b * NH + h) * T * T;
            const float *dy = dout + (long)b * T * C + h * hs;
            float *ds = scratch;
            /* dP = dY V^T, dV += P^T dY */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, dy, C, v, C3,
                        0.0f, ds, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, p, T, dy, C,
                        1.0f, dv, C3);
            /* softmax backward, row by row, inside the causal mask */
            for (int t = 0; t < T; t++) {
                const float *pr = p + (long)t * T;
                float *dr = ds + (long)t * T;
                float dot = 0.0f;
                for (int u = 0; u <= t; u++)
                    dot += pr[u] * dr[u];
                for (int u = 0; u <= t; u++)
                    dr[u] = pr[u] * (dr[u] - dot);
                for (int u = t + 1; u < T; u++)
                    dr[u] = 0.0f;
            }
            /* S = scale * Q K^T: dQ += scale dS K, dK += scale dS^T Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, scale, ds, T, k, C3,
                        1.0f, dq, C3);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, scale, ds, T, q, C3,
                        1.0f, dk, C3);
        }
}
