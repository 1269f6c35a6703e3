/* Softmax cross-entropy over rows of V logits.
 *   forward: turns logits into probabilities in place and returns, per
 *            sequence of T rows, the summed -log p(target) in nats;
 *   backward: dlogits += scale * (p - onehot(target)).
 * A target below 0 (padding) has no loss and no gradient. */
#ifndef TRAINER_CROSSENTROPY_H
#define TRAINER_CROSSENTROPY_H

#include <stdint.h>

void crossentropy_forward(float *logits, double *seq_loss, const int32_t *targets, int B, int T,
                          int V);
void crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, int N,
                           int V, float scale);

#endif
