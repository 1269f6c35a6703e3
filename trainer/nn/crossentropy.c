#include "crossentropy.h"

#include "exactmath.h"

#include <math.h>
#include <stddef.h>

void crossentropy_forward(float *logits, double *seq_loss, const int32_t *targets, int B, int T,
                          int V)
{
    for (int b = 0; b < B; b++) {
        double loss = 0.0;
        for (int t = 0; t < T; t++) {
            float *row = logits + ((size_t)b * T + t) * V;
            float mx = row[0];
            for (int v = 1; v < V; v++)
                mx = row[v] > mx ? row[v] : mx;
            float sum = 0.0f;
            for (int v = 0; v < V; v++) {
                row[v] = exp_f(row[v] - mx);
                sum += row[v];
            }
            const float inv = 1.0f / sum;
            for (int v = 0; v < V; v++)
                row[v] *= inv;
            if (targets[b * T + t] >= 0) /* below 0: padding, no loss */
                loss -= log_d((double)row[targets[b * T + t]]);
        }
        seq_loss[b] = loss;
    }
}

void crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, int N,
                           int V, float scale)
{
    for (int r = 0; r < N; r++) {
        if (targets[r] < 0)
            continue;
        const float *p = probs + (size_t)r * V;
        float *d = dlogits + (size_t)r * V;
        for (int v = 0; v < V; v++)
            d[v] += scale * p[v];
        d[targets[r]] -= scale;
    }
}
