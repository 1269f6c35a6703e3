/* Token plus position embedding: out[b, t] = wte[tokens[b, t]] + wpe[t].
 * The backward pass accumulates into the rows of dwte and dwpe, visiting
 * positions in a fixed order so that the sums are deterministic. */
#ifndef TRAINER_EMBEDDING_H
#define TRAINER_EMBEDDING_H

#include <stdint.h>

void embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                       int B, int T, int C);
void embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int B,
                        int T, int C);

/* Token embedding alone: out[n] = wte[tokens[n]] for N rows. */
void lookup_forward(float *out, const int32_t *tokens, const float *wte, int N, int C);
void lookup_backward(float *dwte, const float *dout, const int32_t *tokens, int N, int C);

#endif
