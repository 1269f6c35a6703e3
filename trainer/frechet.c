#include "frechet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int stats_init(feature_stats *s, int d)
{
    memset(s, 0, sizeof *s);
    s->d = d;
    s->sum = calloc((size_t)d, sizeof(double));
    s->outer = calloc((size_t)d * d, sizeof(double));
    s->row = calloc((size_t)d, sizeof(double));
    if (!s->sum || !s->outer || !s->row) {
        stats_free(s);
        fprintf(stderr, "trainer: out of memory for %d features' statistics\n", d);
        return -1;
    }
    return 0;
}

void stats_free(feature_stats *s)
{
    free(s->sum);
    free(s->outer);
    free(s->row);
    memset(s, 0, sizeof *s);
}

void stats_add(feature_stats *s, const float *rows, int R)
{
    const int d = s->d;
    for (int r = 0; r < R; r++) {
        for (int i = 0; i < d; i++)
            s->row[i] = rows[(size_t)r * d + i];
        for (int i = 0; i < d; i++) {
            s->sum[i] += s->row[i];
            double *o = s->outer + (size_t)i * d;
            for (int j = 0; j < d; j++)
                o[j] += s->row[i] * s->row[j];
        }
    }
    s->n += R;
}

void stats_finish(const feature_stats *s, double *mu, double *cov)
{
    const int d = s->d;
    for (int i = 0; i < d; i++)
        mu[i] = s->sum[i] / s->n;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            cov[(size_t)i * d + j] =
                (s->outer[(size_t)i * d + j] - s->n * mu[i] * mu[j]) / (s->n - 1.0);
}

/* Eigenvalues w and vectors (rows of v) of the symmetric a, by cyclic
 * Jacobi rotations (Golub and Van Loan, Algorithm 8.5.3) in a fixed order:
 * plain double arithmetic and square roots, so the same bits on every CPU
 * and with any LAPACK (OpenBLAS's dsyev, used before, rounds by its
 * kernel). Reads the upper triangle, as dsyev's "U". Sweeps until the
 * off-diagonal part is below 1e-14 of the diagonal's size, at most 60; -1
 * when it does not get there. */
static int eigen(const double *a0, int d, double *v, double *w)
{
    const size_t n = (size_t)d;
    double *a = malloc(n * n * sizeof(double)), *q = calloc(n * n, sizeof(double));
    int done = 0;
    if (!a || !q) {
        fprintf(stderr, "trainer: out of memory for a %d x %d eigensolver\n", d, d);
        free(a);
        free(q);
        return -1;
    }
    memcpy(a, a0, n * n * sizeof(double));
    for (size_t i = 0; i < n; i++) { /* the upper triangle is the matrix */
        q[i * n + i] = 1.0;
        for (size_t j = i + 1; j < n; j++)
            a[j * n + i] = a[i * n + j];
    }
    for (int sweep = 0; sweep < 60 && !done; sweep++) {
        double off = 0.0, diag = 0.0;
        for (size_t i = 0; i < n; i++) {
            diag += a[i * n + i] * a[i * n + i];
            for (size_t j = i + 1; j < n; j++)
                off += a[i * n + j] * a[i * n + j];
        }
        if (off <= 1e-28 * diag || off == 0.0) {
            done = 1;
            break;
        }
        for (size_t p = 0; p < n; p++)
            for (size_t r = p + 1; r < n; r++) {
                const double apr = a[p * n + r], app = a[p * n + p], arr = a[r * n + r];
                /* past the first sweeps, an element below both diagonal
                 * entries' last bits is taken as zero (Numerical Recipes'
                 * jacobi): rounding could keep it from ever reaching it */
                if (sweep > 3 && fabs(app) + 1e2 * fabs(apr) == fabs(app) &&
                    fabs(arr) + 1e2 * fabs(apr) == fabs(arr)) {
                    a[p * n + r] = a[r * n + p] = 0.0;
                    continue;
                }
                if (apr == 0.0)
                    continue;
                /* the rotation J (c at pp and rr, s at pr, -s at rp) that
                 * zeroes a[p, r] in J^T A J */
                const double tau = (arr - app) / (2.0 * apr);
                const double t = fabs(tau) > 1e150 ? 0.5 / tau
                                                    : (tau >= 0.0 ? 1.0 : -1.0) /
                                                          (fabs(tau) + sqrt(tau * tau + 1.0));
                const double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (size_t k = 0; k < n; k++) { /* columns p and r */
                    const double kp = a[k * n + p], kr = a[k * n + r];
                    a[k * n + p] = c * kp - s * kr;
                    a[k * n + r] = s * kp + c * kr;
                }
                for (size_t k = 0; k < n; k++) { /* rows p and r */
                    const double pk = a[p * n + k], rk = a[r * n + k];
                    a[p * n + k] = c * pk - s * rk;
                    a[r * n + k] = s * pk + c * rk;
                }
                for (size_t k = 0; k < n; k++) { /* Q J */
                    const double kp = q[k * n + p], kr = q[k * n + r];
                    q[k * n + p] = c * kp - s * kr;
                    q[k * n + r] = s * kp + c * kr;
                }
            }
    }
    for (size_t j = 0; j < n; j++) { /* eigenvector j is column j of Q */
        w[j] = a[j * n + j];
        for (size_t i = 0; i < n; i++)
            v[j * n + i] = q[i * n + j];
    }
    free(a);
    free(q);
    if (!done)
        fprintf(stderr, "trainer: the eigensolver did not converge in 60 sweeps\n");
    return done ? 0 : -1;
}

double frechet_distance(const double *mu1, const double *cov1, const double *mu2,
                        const double *cov2, int d)
{
    const size_t dd = (size_t)d * d;
    double *v = malloc(dd * sizeof(double)), *w = malloc((size_t)d * sizeof(double));
    double *root = calloc(dd, sizeof(double)), *m = calloc(dd, sizeof(double));
    double *t = calloc(dd, sizeof(double)), result = -1.0;
    if (!v || !w || !root || !m || !t || eigen(cov1, d, v, w) != 0)
        goto out;
    /* root = S1^1/2 = V diag(sqrt w) V^T (eigenvector j is row j of v) */
    for (int j = 0; j < d; j++) {
        const double s = sqrt(fmax(w[j], 0.0));
        for (int i = 0; i < d; i++)
            for (int k = 0; k < d; k++)
                root[(size_t)i * d + k] += v[(size_t)j * d + i] * s * v[(size_t)j * d + k];
    }
    /* m = root S2 root */
    for (int i = 0; i < d; i++)
        for (int k = 0; k < d; k++)
            for (int j = 0; j < d; j++)
                t[(size_t)i * d + j] += root[(size_t)i * d + k] * cov2[(size_t)k * d + j];
    for (int i = 0; i < d; i++)
        for (int k = 0; k < d; k++)
            for (int j = 0; j < d; j++)
                m[(size_t)i * d + j] += t[(size_t)i * d + k] * root[(size_t)k * d + j];
    if (eigen(m, d, v, w) != 0)
        goto out;
    double tr = 0.0, mean = 0.0;
    for (int i = 0; i < d; i++) {
        tr += cov1[(size_t)i * d + i] + cov2[(size_t)i * d + i] - 2.0 * sqrt(fmax(w[i], 0.0));
        mean += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
    }
    result = mean + tr;
out:
    free(v);
    free(w);
    free(root);
    free(m);
    free(t);
    return result;
}
