/* The Frechet distance between two sets of feature vectors, each taken as a
 * Gaussian (mean mu, covariance S):
 *   |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)
 * the matrix square roots through a symmetric eigensolver of our own
 * (cyclic Jacobi in a fixed order: the same bits on every CPU). With a
 * classifier's features: the FID-like score of image generators
 * (score.c). */
#ifndef TRAINER_FRECHET_H
#define TRAINER_FRECHET_H

#include <stddef.h>

typedef struct {
    int d;
    double n;
    double *sum;   /* d */
    double *outer; /* d x d: the sum of x x^T */
    double *row;   /* d: scratch */
} feature_stats;

int stats_init(feature_stats *s, int d);
void stats_free(feature_stats *s);
/* R rows of d features. */
void stats_add(feature_stats *s, const float *rows, int R);
/* Mean and covariance (divided by n - 1); mu d, cov d x d. */
void stats_finish(const feature_stats *s, double *mu, double *cov);
/* Returns the distance, or -1 after a line when the eigensolver fails. */
double frechet_distance(const double *mu1, const double *cov1, const double *mu2,
                        const double *cov2, int d);

#endif
