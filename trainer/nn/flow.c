#include "flow.h"

#include "activation.h"
#include "conv2d.h"
#include "exactmath.h"
#include "gemm.h"
#include "trainer/philox.h"

#include <math.h>
#include <string.h>

enum { FLOW_MAX_C = 64 }; /* the 1 x 1 convolution's channels, for stack arrays */

void sum_rows_by(const linear_fixed *f, float *out, const float *v, int N, int n)
{
    static const float one = 1.0f;
    if (f) { /* a column of ones: each sum a chain of adds, segments in the tree */
        gemm_fixed_tree(n, 1, N, f->nseg, v, 1, n, &one, 0, out, 1, 0);
        return;
    }
    for (int r = 0; r < N; r++)
        for (int j = 0; j < n; j++)
            out[j] += v[(size_t)r * n + j];
}

void squeeze(float *out, const float *in, int B, int H, int W, int C)
{
    const int h = H / 2, w = W / 2;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                for (int q = 0; q < 4; q++)
                    memcpy(out + ((((size_t)b * h + i) * w + j) * 4 + q) * C,
                           in + (((size_t)b * H + 2 * i + q / 2) * W + 2 * j + q % 2) * C,
                           (size_t)C * sizeof *out);
}

void unsqueeze(float *out, const float *in, int B, int H, int W, int C)
{
    const int h = H / 2, w = W / 2;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                for (int q = 0; q < 4; q++)
                    memcpy(out + (((size_t)b * H + 2 * i + q / 2) * W + 2 * j + q % 2) * C,
                           in + ((((size_t)b * h + i) * w + j) * 4 + q) * C,
                           (size_t)C * sizeof *out);
}

/* Actnorm. */

void actnorm_forward(float *y, const float *x, const float *bias, const float *logs, int N, int C)
{
    float s[FLOW_MAX_C];
    for (int c = 0; c < C; c++)
        s[c] = exp_f(logs[c]);
    for (size_t p = 0; p < (size_t)N; p++)
        for (int c = 0; c < C; c++)
            y[p * C + c] = (x[p * C + c] + bias[c]) * s[c];
}

void actnorm_inverse(float *x, const float *y, const float *bias, const float *logs, int N, int C)
{
    float s[FLOW_MAX_C];
    for (int c = 0; c < C; c++)
        s[c] = exp_f(logs[c]);
    for (size_t p = 0; p < (size_t)N; p++)
        for (int c = 0; c < C; c++)
            x[p * C + c] = y[p * C + c] / s[c] - bias[c];
}

/* d/dbias = dy s, which is also dx; d/dlogs = dy y per pixel, and the
 * log-determinant's ld per pixel (its H W logs per image). */
void actnorm_backward(const linear_fixed *f, float *dx, float *dbias, float *dlogs, float *tmp,
                      const float *dy, const float *y, const float *logs, int N, int C, float ld)
{
    float s[FLOW_MAX_C];
    for (int c = 0; c < C; c++)
        s[c] = exp_f(logs[c]);
    const size_t n = (size_t)N * C;
    for (size_t i = 0; i < n; i++) {
        tmp[i] = dy[i] * s[i % C];
        dx[i] += tmp[i];
    }
    sum_rows_by(f, dbias, tmp, N, C);
    for (size_t i = 0; i < n; i++)
        tmp[i] = dy[i] * y[i] + ld;
    sum_rows_by(f, dlogs, tmp, N, C);
}

void actnorm_init(float *bias, float *logs, const float *x, int N, int C)
{
    for (int c = 0; c < C; c++) {
        double sum = 0.0, sq = 0.0;
        for (size_t p = 0; p < (size_t)N; p++)
            sum += x[p * C + c];
        const double mean = sum / N;
        for (size_t p = 0; p < (size_t)N; p++) {
            const double d = x[p * C + c] - mean;
            sq += d * d;
        }
        bias[c] = (float)-mean;
        logs[c] = (float)-log_d(sqrt(sq / N) + 1e-6);
    }
}

/* The invertible 1 x 1 convolution. */

/* The diagonal of U + diag(sign exp(logs)). */
static void invconv_diag(float *d, const float *logs, const float *fixed, int C)
{
    for (int k = 0; k < C; k++)
        d[k] = fixed[C + k] * exp_f(logs[k]);
}

/* M = L (U + diag), in double. */
static void invconv_m(double *m, const float *lower, const float *upper, const float *logs,
                      const float *fixed, int C)
{
    float d[FLOW_MAX_C];
    invconv_diag(d, logs, fixed, C);
    for (int r = 0; r < C; r++)
        for (int j = 0; j < C; j++) {
            double acc = 0.0;
            for (int k = 0; k <= (r < j ? r : j); k++) {
                const double l = k == r ? 1.0 : lower[r * C + k];
                const double u = k == j ? d[k] : upper[k * C + j];
                acc += l * u;
            }
            m[r * C + j] = acc;
        }
}

void invconv_weight(float *w, const float *lower, const float *upper, const float *logs,
                    const float *fixed, int C)
{
    double m[FLOW_MAX_C * FLOW_MAX_C];
    invconv_m(m, lower, upper, logs, fixed, C);
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++)
            w[i * C + j] = (float)m[(int)fixed[i] * C + j];
}

/* The inverse of the float W the forward pass uses (not of the double
 * product it was rounded from): the two directions then differ by the
 * products' rounding only. */
void invconv_inverse_weight(float *winv, const float *lower, const float *upper,
                            const float *logs, const float *fixed, int C)
{
    float w[FLOW_MAX_C * FLOW_MAX_C];
    double a[FLOW_MAX_C * FLOW_MAX_C], inv[FLOW_MAX_C * FLOW_MAX_C];
    invconv_weight(w, lower, upper, logs, fixed, C);
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) {
            a[i * C + j] = w[i * C + j];
            inv[i * C + j] = i == j;
        }
    /* Gauss-Jordan with partial pivoting: W is invertible by construction */
    for (int k = 0; k < C; k++) {
        int piv = k;
        for (int r = k + 1; r < C; r++)
            if (fabs(a[r * C + k]) > fabs(a[piv * C + k]))
                piv = r;
        for (int j = 0; j < C; j++) {
            double t = a[k * C + j];
            a[k * C + j] = a[piv * C + j];
            a[piv * C + j] = t;
            t = inv[k * C + j];
            inv[k * C + j] = inv[piv * C + j];
            inv[piv * C + j] = t;
        }
        const double p = a[k * C + k];
        for (int j = 0; j < C; j++) {
            a[k * C + j] /= p;
            inv[k * C + j] /= p;
        }
        for (int r = 0; r < C; r++) {
            const double e = a[r * C + k];
            if (r == k || e == 0.0)
                continue;
            for (int j = 0; j < C; j++) {
                a[r * C + j] -= e * a[k * C + j];
                inv[r * C + j] -= e * inv[k * C + j];
            }
        }
    }
    for (int i = 0; i < C * C; i++)
        winv[i] = (float)inv[i];
}

void invconv_init(float *lower, float *upper, float *logs, float *fixed, int C, uint32_t seed,
                  uint32_t stream, uint32_t a)
{
    float g[FLOW_MAX_C * FLOW_MAX_C];
    double q[FLOW_MAX_C * FLOW_MAX_C];
    int piv[FLOW_MAX_C];
    rng_normals(seed, stream, RNG_INIT, a, 0, g, (size_t)C * C);
    /* Q's columns: modified Gram-Schmidt on the Gaussian's columns */
    for (int j = 0; j < C; j++) {
        for (int i = 0; i < C; i++)
            q[i * C + j] = g[i * C + j];
        for (int k = 0; k < j; k++) {
            double dot = 0.0;
            for (int i = 0; i < C; i++)
                dot += q[i * C + k] * q[i * C + j];
            for (int i = 0; i < C; i++)
                q[i * C + j] -= dot * q[i * C + k];
        }
        double norm = 0.0;
        for (int i = 0; i < C; i++)
            norm += q[i * C + j] * q[i * C + j];
        norm = sqrt(norm);
        for (int i = 0; i < C; i++)
            q[i * C + j] /= norm;
    }
    /* Doolittle with row swaps: row r of the result is row piv[r] of Q, and
     * below the diagonal the multipliers (L), on and above it U */
    for (int i = 0; i < C; i++)
        piv[i] = i;
    for (int k = 0; k < C; k++) {
        int p = k;
        for (int r = k + 1; r < C; r++)
            if (fabs(q[r * C + k]) > fabs(q[p * C + k]))
                p = r;
        for (int j = 0; j < C; j++) {
            const double t = q[k * C + j];
            q[k * C + j] = q[p * C + j];
            q[p * C + j] = t;
        }
        const int t = piv[k];
        piv[k] = piv[p];
        piv[p] = t;
        for (int r = k + 1; r < C; r++) {
            q[r * C + k] /= q[k * C + k];
            for (int j = k + 1; j < C; j++)
                q[r * C + j] -= q[r * C + k] * q[k * C + j];
        }
    }
    for (int r = 0; r < C; r++)
        for (int j = 0; j < C; j++) {
            lower[r * C + j] = j < r ? (float)q[r * C + j] : 0.0f;
            upper[r * C + j] = j > r ? (float)q[r * C + j] : 0.0f;
        }
    for (int k = 0; k < C; k++) {
        logs[k] = (float)log_d(fabs(q[k * C + k]));
        fixed[C + k] = q[k * C + k] < 0.0 ? -1.0f : 1.0f;
        fixed[piv[k]] = (float)k; /* W's row piv[k] is row k of L U */
    }
}

/* W = P M, M = L U'. Per pixel, with a = P^T dy (a[fixed[i]] = dy[i]),
 * b = U' x and c = L^T a: dL = a b^T below the diagonal, dU' = c x^T on
 * and above it, dlogs = diag(dU') sign exp(logs) plus ld per pixel. */
void invconv_backward(const linear_fixed *f, float *dx, float *dlower, float *dupper, float *dlogs,
                      float *dfixed, float *tmp, const float *dy, const float *x, const float *w,
                      const float *lower, const float *upper, const float *logs,
                      const float *fixed, int N, int C, float ld)
{
    float d[FLOW_MAX_C];
    invconv_diag(d, logs, fixed, C);
    const size_t n = (size_t)N * C;
    float *a = tmp, *b = tmp + n, *c = tmp + 2 * n;
    for (size_t p = 0; p < (size_t)N; p++) {
        const float *xp = x + p * C, *dyp = dy + p * C;
        float *ap = a + p * C, *bp = b + p * C, *cp = c + p * C;
        for (int i = 0; i < C; i++)
            ap[(int)fixed[i]] = dyp[i];
        for (int k = 0; k < C; k++) {
            float s = d[k] * xp[k];
            for (int j = k + 1; j < C; j++)
                s += upper[k * C + j] * xp[j];
            bp[k] = s;
            float t = ap[k];
            for (int r = k + 1; r < C; r++)
                t += lower[r * C + k] * ap[r];
            cp[k] = t;
        }
    }
    linear_backward_input_by(f, dx, dy, w, N, C, C);
    linear_backward_params_by(f, dlower, NULL, a, b, N, C, C);
    linear_backward_params_by(f, dupper, NULL, c, x, N, C, C);
    for (int r = 0; r < C; r++)
        for (int j = 0; j < C; j++) {
            if (j >= r)
                dlower[r * C + j] = 0.0f;
            if (j <= r)
                dupper[r * C + j] = 0.0f;
        }
    for (size_t p = 0; p < (size_t)N; p++)
        for (int k = 0; k < C; k++)
            a[p * C + k] = c[p * C + k] * x[p * C + k] * d[k] + ld;
    sum_rows_by(f, dlogs, a, N, C);
    if (f)
        memset(dfixed, 0, 2 * (size_t)C * sizeof *dfixed);
}

/* The affine coupling. */

/* scale = sigmoid(t) and log(scale), without overflow for any t. */
static inline float coupling_scale(float t, float *log_scale)
{
    if (t >= 0.0f) {
        const float e = exp_f(-t);
        *log_scale = -log1pf(e);
        return 1.0f / (1.0f + e);
    }
    const float e = exp_f(t);
    *log_scale = t - log1pf(e);
    return e / (1.0f + e);
}

/* h1, h2 and o from a->xa. */
static void coupling_net(const flow_work *wk, coupling_acts *a, const coupling_params *p, int B,
                         int H, int W, int C, int hidden)
{
    const size_t N = (size_t)B * H * W;
    conv2d_forward(wk->f, a->h1, wk->cols, a->xa, p->w1, p->b1, B, H, W, C / 2, hidden, 3);
    relu_forward(a->h1, a->h1, N * hidden);
    linear_forward_by(wk->f, a->h2, a->h1, p->w2, p->b2, (int)N, hidden, hidden);
    relu_forward(a->h2, a->h2, N * hidden);
    conv2d_forward(wk->f, a->o, wk->cols, a->h2, p->w3, p->b3, B, H, W, hidden, C, 3);
}

static void take_first_half(float *xa, const float *x, size_t N, int C)
{
    for (size_t q = 0; q < N; q++)
        memcpy(xa + q * (C / 2), x + q * C, (size_t)(C / 2) * sizeof *xa);
}

void coupling_forward(const flow_work *wk, coupling_acts *a, float *y, double *logdet,
                      const float *x, const coupling_params *p, int B, int H, int W, int C,
                      int hidden)
{
    const int h = C / 2, HW = H * W;
    take_first_half(a->xa, x, (size_t)B * HW, C);
    coupling_net(wk, a, p, B, H, W, C, hidden);
    for (int b = 0; b < B; b++) {
        double ld = 0.0;
        for (size_t q = (size_t)b * HW; q < (size_t)(b + 1) * HW; q++) {
            const float *xq = x + q * C, *oq = a->o + q * C;
            float *yq = y + q * C;
            for (int j = 0; j < h; j++) {
                float log_scale;
                const float scale = coupling_scale(oq[h + j] + 2.0f, &log_scale);
                yq[j] = xq[j];
                yq[h + j] = (xq[h + j] + oq[j]) * scale;
                ld += log_scale;
            }
        }
        logdet[b] = ld;
    }
}

void coupling_inverse(const flow_work *wk, coupling_acts *a, float *x, const float *y,
                      const coupling_params *p, int B, int H, int W, int C, int hidden)
{
    const int h = C / 2;
    const size_t N = (size_t)B * H * W;
    take_first_half(a->xa, y, N, C);
    coupling_net(wk, a, p, B, H, W, C, hidden);
    for (size_t q = 0; q < N; q++) {
        const float *yq = y + q * C, *oq = a->o + q * C;
        float *xq = x + q * C;
        for (int j = 0; j < h; j++) {
            float log_scale;
            const float scale = coupling_scale(oq[h + j] + 2.0f, &log_scale);
            xq[j] = yq[j];
            xq[h + j] = yq[h + j] / scale - oq[j];
        }
    }
}

/* yb = (xb + shift) s, s = sigmoid(t), t = raw + 2: dxb = dshift = dyb s,
 * dt = (dyb (xb + shift) s + ld) (1 - s) (d log s / dt = 1 - s). */
void coupling_backward(const flow_work *wk, const coupling_acts *a, float *dx,
                       const coupling_grads *g, const float *dy, const float *x,
                       const coupling_params *p, int B, int H, int W, int C, int hidden, float ld)
{
    const int h = C / 2;
    const size_t N = (size_t)B * H * W;
    float *dout = wk->tmp, *dh2 = dout + N * C, *dh1 = dh2 + N * hidden, *dxa = dh1 + N * hidden;
    for (size_t q = 0; q < N; q++) {
        const float *xq = x + q * C, *oq = a->o + q * C, *dyq = dy + q * C;
        float *dxq = dx + q * C, *doq = dout + q * C;
        for (int j = 0; j < h; j++) {
            float log_scale;
            const float s = coupling_scale(oq[h + j] + 2.0f, &log_scale);
            const float dyb = dyq[h + j];
            dxq[j] += dyq[j];
            dxq[h + j] += dyb * s;
            doq[j] = dyb * s;
            doq[h + j] = (dyb * (xq[h + j] + oq[j]) * s + ld) * (1.0f - s);
        }
    }
    memset(dh2, 0, N * hidden * sizeof *dh2);
    conv2d_backward(wk->f, dh2, g->w3, g->b3, wk->cols, wk->dcols, dout, a->h2, p->w3, B, H, W,
                    hidden, C, 3);
    relu_mask(dh2, a->h2, N * hidden);
    linear_backward_params_by(wk->f, g->w2, g->b2, dh2, a->h1, (int)N, hidden, hidden);
    memset(dh1, 0, N * hidden * sizeof *dh1);
    linear_backward_input_by(wk->f, dh1, dh2, p->w2, (int)N, hidden, hidden);
    relu_mask(dh1, a->h1, N * hidden);
    memset(dxa, 0, N * h * sizeof *dxa);
    conv2d_backward(wk->f, dxa, g->w1, g->b1, wk->cols, wk->dcols, dh1, a->xa, p->w1, B, H, W, h,
                    hidden, 3);
    for (size_t q = 0; q < N; q++)
        for (int j = 0; j < h; j++)
            dx[q * C + j] += dxa[q * h + j];
}
