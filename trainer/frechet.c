#include "frechet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK's symmetric eigensolver (Fortran calling convention, with the
 * hidden lengths of the two character arguments). */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

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

/* Eigenvalues w and vectors (rows of v) of the symmetric a; -1 on failure. */
static int eigen(const double *a, int d, double *v, double *w)
{
    memcpy(v, a, (size_t)d * d * sizeof(double));
    int lwork = -1, info = 0;
    double query;
    dsyev_("V", "U", &d, v, &d, w, &query, &lwork, &info, 1, 1);
    lwork = info == 0 ? (int)query : 0;
    double *work = lwork > 0 ? malloc((size_t)lwork * sizeof(double)) : NULL;
    if (work)
        dsyev_("V", "U", &d, v, &d, w, work, &lwork, &info, 1, 1);
    free(work);
    if (!work || info != 0) {
        fprintf(stderr, "trainer: the eigensolver (dsyev) failed (info %d)\n", info);
        return -1;
    }
    return 0;
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
