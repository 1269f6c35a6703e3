#include "lstm.h"

#include "activation.h"
#include "linear.h"

#include <cblas.h>
#include <stddef.h>
#include <string.h>

/* The gates of one row from their pre-activations, and the new state. */
static void cell(float *restrict g, float *restrict c, float *restrict tc, float *restrict h,
                 const float *restrict cprev, int H)
{
    float *gi = g, *gf = g + H, *gg = g + 2 * H, *go = g + 3 * H;
    for (int j = 0; j < H; j++) {
        gi[j] = sigmoid_poly(gi[j]);
        gf[j] = sigmoid_poly(gf[j]);
        gg[j] = tanh_poly(gg[j]);
        go[j] = sigmoid_poly(go[j]);
        c[j] = gf[j] * (cprev ? cprev[j] : 0.0f) + gi[j] * gg[j];
        tc[j] = tanh_poly(c[j]);
        h[j] = go[j] * tc[j];
    }
}

void lstm_layer_forward(float *h, float *c, float *tc, float *gates, const float *x, const float *Wih,
                  const float *Whh, const float *bias, int B, int T, int In, int H)
{
    const int G = 4 * H;
    linear_forward(gates, x, Wih, bias, B * T, In, G);
    for (int t = 0; t < T; t++) {
        if (t > 0) /* rows b * T + t of gates += h[b * T + t - 1] . Whh^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, G, H, 1.0f,
                        h + (size_t)(t - 1) * H, T * H, Whh, H, 1.0f, gates + (size_t)t * G,
                        T * G);
        for (int b = 0; b < B; b++) {
            const size_t row = (size_t)b * T + t;
            cell(gates + row * G, c + row * H, tc + row * H, h + row * H,
                 t > 0 ? c + (row - 1) * H : NULL, H);
        }
    }
}

/* tests/lstm_fault.c compiles this file again with a wrong forget-gate
 * gradient, to show that the finite-difference checks catch such a fault;
 * here the factor is 1 (an exact no-op). */
#ifndef LSTM_PLANTED_FAULT
#define LSTM_PLANTED_FAULT 1.0f
#endif

/* Row `row` of the gates' pre-activation gradient, given dh of the row
 * (recurrence included) and dc carried from the step after. */
static void cell_backward(float *restrict dg, float *restrict dc, const float *restrict dh,
                          const float *restrict g, const float *restrict tc,
                          const float *restrict cprev, int H)
{
    const float *gi = g, *gf = g + H, *gg = g + 2 * H, *go = g + 3 * H;
    for (int j = 0; j < H; j++) {
        float d_c = dc[j] + dh[j] * go[j] * (1.0f - tc[j] * tc[j]);
        float cp = cprev ? cprev[j] : 0.0f;
        dg[j] = d_c * gg[j] * gi[j] * (1.0f - gi[j]);
        dg[H + j] = LSTM_PLANTED_FAULT * d_c * cp * gf[j] * (1.0f - gf[j]);
        dg[2 * H + j] = d_c * gi[j] * (1.0f - gg[j] * gg[j]);
        dg[3 * H + j] = dh[j] * tc[j] * go[j] * (1.0f - go[j]);
        dc[j] = d_c * gf[j];
    }
}

void lstm_layer_backward(float *dx, float *dWih, float *dWhh, float *dbias, float *dh, float *dgates,
                   float *hprev, float *dc, const float *x, const float *h, const float *c,
                   const float *tc, const float *gates, const float *Wih, const float *Whh, int B,
                   int T, int In, int H)
{
    const int G = 4 * H;
    memset(dc, 0, (size_t)B * H * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        for (int b = 0; b < B; b++) {
            const size_t row = (size_t)b * T + t;
            cell_backward(dgates + row * G, dc + (size_t)b * H, dh + row * H, gates + row * G,
                          tc + row * H, t > 0 ? c + (row - 1) * H : NULL, H);
        }
        if (t > 0) /* dh[b * T + t - 1] += dgates[b * T + t] . Whh */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, G, 1.0f,
                        dgates + (size_t)t * G, T * G, Whh, H, 1.0f, dh + (size_t)(t - 1) * H,
                        T * H);
    }
    /* the recurrent weights see h shifted by one step: one sgemm for all */
    for (int b = 0; b < B; b++) {
        float *dst = hprev + (size_t)b * T * H;
        memset(dst, 0, (size_t)H * sizeof(float));
        memcpy(dst + H, h + (size_t)b * T * H, (size_t)(T - 1) * H * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, B * T, 1.0f, dgates, G, hprev, H,
                1.0f, dWhh, H);
    linear_backward_params(dWih, dbias, dgates, x, B * T, In, G, 1);
    if (dx)
        linear_backward_input(dx, dgates, Wih, B * T, In, G);
}

void lstm_layer_step(float *h, float *c, float *gates, const float *x, const float *Wih,
               const float *Whh, const float *bias, int In, int H)
{
    const int G = 4 * H;
    memcpy(gates, bias, (size_t)G * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasNoTrans, G, In, 1.0f, Wih, In, x, 1, 1.0f, gates, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, G, H, 1.0f, Whh, H, h, 1, 1.0f, gates, 1);
    float *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
    for (int j = 0; j < H; j++) {
        float i = sigmoid_poly(gi[j]), f = sigmoid_poly(gf[j]), g = tanh_poly(gg[j]);
        float o = sigmoid_poly(go[j]);
        c[j] = f * c[j] + i * g;
        h[j] = o * tanh_poly(c[j]);
    }
}
