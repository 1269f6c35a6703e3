#include "embedding.h"

#include <stddef.h>
#include <string.h>

void embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                       int B, int T, int C)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *x = out + ((size_t)b * T + t) * C;
            const float *te = wte + (size_t)tokens[b * T + t] * C, *pe = wpe + (size_t)t * C;
            for (int i = 0; i < C; i++)
                x[i] = te[i] + pe[i];
        }
}

void embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int B,
                        int T, int C)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *te = dwte + (size_t)tokens[b * T + t] * C, *pe = dwpe + (size_t)t * C;
            for (int i = 0; i < C; i++) {
                te[i] += d[i];
                pe[i] += d[i];
            }
        }
}

void lookup_forward(float *out, const int32_t *tokens, const float *wte, int N, int C)
{
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, wte + (size_t)tokens[n] * C, (size_t)C * sizeof(float));
}

void lookup_backward(float *dwte, const float *dout, const int32_t *tokens, int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C;
        float *te = dwte + (size_t)tokens[n] * C;
        for (int i = 0; i < C; i++)
            te[i] += d[i];
    }
}
