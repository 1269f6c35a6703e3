/* Variational autoencoder with MLP encoder and decoder.
 *
 * Encoder: in -> hidden[0] -> ... -> hidden[n-1] (ReLU), then two heads
 * mu and logvar of size latent. z = mu + exp(logvar / 2) * eps.
 * Decoder mirrors the encoder: latent -> hidden[n-1] -> ... -> hidden[0]
 * (ReLU) -> in outputs (Bernoulli logits, or Gaussian means).
 * Loss per sample, in nats: recon + kl_weight * KL(q(z|x) || N(0, I)).
 *
 * Shapes: R rows (samples) per call; x is [R, in] with values in [0, 1]. */
#ifndef TRAINER_VAE_H
#define TRAINER_VAE_H

#include "trainer/model.h"
#include "trainer/nn/linear.h"

#include <stdint.h>

#define VAE_MAX_HIDDEN 8

enum likelihood { LIK_BERNOULLI, LIK_GAUSSIAN };

/* The VAE's options (config.model_opts). */
typedef struct {
    char hidden[64]; /* "512,256" */
    int hidden_sizes[VAE_MAX_HIDDEN];
    int nhidden;
    int latent;
    char likelihood[16];
    double kl_weight;
    int autoencoder;
} vae_opts;

extern const model_type vae_model;

typedef struct {
    model base;
    int in, latent, nhidden;
    int hidden[VAE_MAX_HIDDEN];
    enum likelihood lik;
    float kl_weight;
    int autoencoder; /* eps = 0, no KL */
    int max_rows;
    /* per-layer views: enc[i], mu, logvar, dec[i], out */
    int enc_w[VAE_MAX_HIDDEN], enc_b[VAE_MAX_HIDDEN], dec_w[VAE_MAX_HIDDEN], dec_b[VAE_MAX_HIDDEN];
    int mu_w, mu_b, lv_w, lv_b, out_w, out_b;
    /* activations [max_rows, width], allocated once */
    float *acts, *dacts;
    size_t acts_size;
    float *enc_h[VAE_MAX_HIDDEN], *mu, *logvar, *z, *dec_h[VAE_MAX_HIDDEN], *logits;
    float *denc_h[VAE_MAX_HIDDEN], *dmu, *dlogvar, *dz, *ddec_h[VAE_MAX_HIDDEN], *dlogits;
    float *eps; /* [max_rows, latent]: the draws of the rows of a batch */
    /* products through gemm.h's fixed order (exact training, several lanes
     * in one call: batch.h's tree) rather than OpenBLAS */
    int use_fixed;
    linear_fixed fixed;
    float *bce; /* [in]: a row's per-pixel losses */
    const batch *call; /* the batch of the backward pass running, for its grad_ready; or NULL */
    double sum_recon, sum_kl; /* of the last forward's rows, nats (KL unweighted) */
} vae;

/* Fills m for nhidden <= VAE_MAX_HIDDEN widths; -1 after a line on failure. */
int vae_build(vae *m, int in, const int *hidden, int nhidden, int latent, enum likelihood lik,
              float kl_weight, int autoencoder, int max_rows);
void vae_free(vae *m);

/* Weight init: PyTorch's nn.Linear default, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * for weights and biases, drawn from the (seed, RNG_INIT) stream. */
void vae_init(const vae *m, float *params, uint32_t seed);

/* Forward pass over R rows; eps is [R, latent] (ignored for autoencoders).
 * row_loss[r] receives the loss of each row in nats. */
void vae_forward(vae *m, const float *params, const float *x, const float *eps, int R,
                 double *row_loss);

/* The encoder: m->mu and m->logvar of R rows of x. */
void vae_encode(vae *m, const float *params, const float *x, int R);
/* The decoder from m->z ([R, latent]) into m->logits ([R, in]). */
void vae_decode(vae *m, const float *params, int R);

/* Backward pass right after vae_forward over the same rows, for the loss
 * scale * (sum of row losses); adds into grads. */
void vae_backward(vae *m, const float *params, float *grads, const float *x, const float *eps,
                  int R, float scale);

#endif
