/* Backward passes against central finite differences (tests/fd.h). */
#include "trainer/frechet.h"
#include "trainer/models/classifier.h"
#include "trainer/models/gan.h"
#include "trainer/models/gpt.h"
#include "trainer/models/lstm.h"
#include "trainer/models/seq2seq.h"
#include "trainer/models/vae.h"
#include "trainer/nn/activation.h"
#include "trainer/nn/attention.h"
#include "trainer/nn/conv2d.h"
#include "trainer/nn/crossentropy.h"
#include "trainer/nn/embedding.h"
#include "trainer/nn/layernorm.h"
#include "trainer/nn/linear.h"
#include "trainer/nn/lstm.h"
#include "trainer/philox.h"
#include "trainer/tasks/text.h"

#include "tests/fd.h"
#include "tests/suite.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* f = sum(r * linear(x)) for fixed random r, so dout = r */
enum { B = 3, C = 5, OC = 4 };
static float lx[B * C], lw[OC * C], lb[OC], lr[B * OC];

static double linear_f(void)
{
    float out[B * OC];
    linear_forward(out, lx, lw, lb, B, C, OC);
    double f = 0;
    for (int i = 0; i < B * OC; i++)
        f += (double)lr[i] * out[i];
    return f;
}

/* How many entries of grad miss the finite difference: for checks that must
 * fail (a planted fault). */
static int count_fd_misses(float *p, const float *grad, size_t n, double (*f)(void))
{
    int misses = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        p[i] = keep + H;
        double fp = f();
        p[i] = keep - H;
        double fm = f();
        p[i] = keep;
        double numeric = (fp - fm) / (2.0 * H);
        misses += fabs(grad[i] - numeric) > ATOL + RTOL * fabs(numeric);
    }
    return misses;
}

START_TEST(linear_layer)
{
    randu(lx, B * C, 1, -1, 1);
    randu(lw, OC * C, 2, -1, 1);
    randu(lb, OC, 3, -1, 1);
    randu(lr, B * OC, 4, -1, 1);
    float dx[B * C] = {0}, dw[OC * C] = {0}, db[OC] = {0};
    linear_backward_input(dx, lr, lw, B, C, OC);
    linear_backward_params(dw, db, lr, lx, B, C, OC, 0);
    check_fd(lx, dx, B * C, linear_f, "dinp");
    check_fd(lw, dw, OC * C, linear_f, "dweight");
    check_fd(lb, db, OC, linear_f, "dbias");
    /* accumulate adds to what is there; otherwise it is overwritten */
    float dw2[OC * C], db2[OC];
    memcpy(dw2, dw, sizeof dw);
    memcpy(db2, db, sizeof db);
    linear_backward_params(dw2, db2, lr, lx, B, C, OC, 1);
    for (int i = 0; i < OC * C; i++)
        ck_assert_float_eq_tol(dw2[i], 2 * dw[i], 1e-6);
    for (int i = 0; i < OC; i++)
        ck_assert_float_eq_tol(db2[i], 2 * db[i], 1e-6);
    linear_backward_params(dw2, db2, lr, lx, B, C, OC, 0);
    ck_assert_int_eq(memcmp(dw2, dw, sizeof dw), 0);
    ck_assert_int_eq(memcmp(db2, db, sizeof db), 0);
}
END_TEST

/* Convolution: f = sum(r * conv(x)), for a 3 x 3 and a 1 x 1 window,
 * through OpenBLAS and through the fixed order with the parameter
 * gradients summed over the two images in the tree. */
enum { VB = 2, VH = 4, VW = 3, VC = 2, VOC = 3, VK = 3 };
static float conv_x[VB * VH * VW * VC], conv_w[VOC * VK * VK * VC], conv_b[VOC];
static float conv_r[VB * VH * VW * VOC], conv_cols[VB * VH * VW * VK * VK * VC];
static float conv_scratch[VB * VH * VW * (VK * VK * VC + VOC)];
static int conv_k = 3;
static const linear_fixed *conv_fixed;

static double conv_loss(void)
{
    float out[VB * VH * VW * VOC];
    conv2d_forward(conv_fixed, out, conv_cols, conv_x, conv_w, conv_b, VB, VH, VW, VC, VOC, conv_k);
    double f = 0;
    for (int i = 0; i < VB * VH * VW * VOC; i++)
        f += (double)conv_r[i] * out[i];
    return f;
}

START_TEST(conv2d_layer)
{
    float dcols[VB * VH * VW * VK * VK * VC];
    linear_fixed fixed = {VB, conv_scratch, 0};
    for (int pass = 0; pass < 4; pass++) {
        conv_k = pass % 2 ? 1 : 3;
        conv_fixed = pass >= 2 ? &fixed : NULL;
        randu(conv_x, sizeof conv_x / sizeof *conv_x, 11, -1, 1);
        randu(conv_w, sizeof conv_w / sizeof *conv_w, 12, -1, 1);
        randu(conv_b, VOC, 13, -1, 1);
        randu(conv_r, sizeof conv_r / sizeof *conv_r, 14, -1, 1);
        const size_t nw = (size_t)VOC * conv_k * conv_k * VC;
        float dx[VB * VH * VW * VC] = {0}, dw[VOC * VK * VK * VC] = {0}, db[VOC] = {0};
        conv_loss();
        conv2d_backward(conv_fixed, dx, dw, db, conv_cols, dcols, conv_r, conv_x, conv_w, VB, VH,
                        VW, VC, VOC, conv_k);
        check_fd(conv_x, dx, sizeof conv_x / sizeof *conv_x, conv_loss, "conv dinp");
        check_fd(conv_w, dw, nw, conv_loss, "conv dweight");
        check_fd(conv_b, db, VOC, conv_loss, "conv dbias");
    }
    /* fixed order: each image alone gives the bits of both together, and the
     * weight gradient of both is the tree (image 0 + image 1) of each alone */
    conv_k = 3;
    const size_t img = (size_t)VH * VW, nx = img * VC, no = img * VOC;
    const size_t nw = (size_t)VOC * VK * VK * VC;
    float both[VB * VH * VW * VOC], one[VH * VW * VOC], dw_both[VOC * VK * VK * VC];
    float dw_one[2][VOC * VK * VK * VC], db_both[VOC], db_one[2][VOC], dx[VB * VH * VW * VC];
    linear_fixed alone = {1, conv_scratch, 0};
    conv2d_forward(&fixed, both, conv_cols, conv_x, conv_w, conv_b, VB, VH, VW, VC, VOC, VK);
    conv2d_backward(&fixed, dx, dw_both, db_both, conv_cols, dcols, conv_r, conv_x, conv_w, VB, VH,
                    VW, VC, VOC, VK);
    for (int b = 0; b < VB; b++) {
        conv2d_forward(&alone, one, conv_cols, conv_x + b * nx, conv_w, conv_b, 1, VH, VW, VC, VOC,
                       VK);
        ck_assert_int_eq(memcmp(one, both + b * no, no * sizeof(float)), 0);
        conv2d_backward(&alone, dx, dw_one[b], db_one[b], conv_cols, dcols, conv_r + b * no,
                        conv_x + b * nx, conv_w,
                        1, VH, VW, VC, VOC, VK);
    }
    for (size_t i = 0; i < nw; i++)
        ck_assert(dw_both[i] == dw_one[0][i] + dw_one[1][i]);
    for (int i = 0; i < VOC; i++)
        ck_assert(db_both[i] == db_one[0][i] + db_one[1][i]);
    conv_fixed = NULL;
}
END_TEST

enum { NA = 64 };
static float ax[NA], ar[NA];
static int act_kind; /* 0 relu, 1 gelu */

static double act_f(void)
{
    float out[NA];
    if (act_kind == 0)
        relu_forward(out, ax, NA);
    else
        gelu_forward(out, ax, NA);
    double f = 0;
    for (int i = 0; i < NA; i++)
        f += (double)ar[i] * out[i];
    return f;
}

START_TEST(activations)
{
    randu(ax, NA, 5, -3, 3);
    randu(ar, NA, 6, -1, 1);
    for (int i = 0; i < NA; i++)
        if (fabsf(ax[i]) < 0.05f)
            ax[i] = 0.5f; /* ReLU has no derivative at 0 */
    for (act_kind = 0; act_kind < 2; act_kind++) {
        float d[NA] = {0}, out[NA];
        if (act_kind == 0) {
            relu_forward(out, ax, NA);
            memcpy(d, ar, sizeof d);
            relu_mask(d, out, NA); /* in place, from the forward output */
        } else {
            gelu_backward(d, ax, ar, NA);
        }
        check_fd(ax, d, NA, act_f, act_kind ? "gelu" : "relu");
    }
}
END_TEST

/* The whole VAE loss: mean over rows of the per-row negative ELBO. */
enum { VIN = 10, VR = 4, VLAT = 3 };
static vae vm;
static float *vparams, vx[VR * VIN], veps[VR * VLAT];

static double vae_f(void)
{
    double loss[VR], f = 0;
    vae_forward(&vm, vparams, vx, veps, VR, loss);
    for (int r = 0; r < VR; r++)
        f += loss[r];
    return f / VR;
}

static void check_vae(enum likelihood lik, float kl_weight, int autoencoder)
{
    const int hidden[2] = {7, 5};
    ck_assert_int_eq(vae_build(&vm, VIN, hidden, 2, VLAT, lik, kl_weight, autoencoder, VR), 0);
    size_t P = vm.base.params.total;
    vparams = calloc(P, sizeof(float));
    float *grad = calloc(P, sizeof(float));
    vae_init(&vm, vparams, 3);
    randu(vx, VR * VIN, 7, 0, 1);
    rng_normals(3, 0, RNG_EPS, 0, 0, veps, VR * VLAT);
    double loss[VR];
    vae_forward(&vm, vparams, vx, veps, VR, loss);
    vae_backward(&vm, vparams, grad, vx, veps, VR, 1.0f / VR);
    for (int t = 0; t < vm.base.params.n; t++) {
        const param_view *v = &vm.base.params.v[t];
        if (autoencoder && strstr(v->name, "logvar")) {
            for (size_t i = 0; i < v->numel; i++)
                ck_assert_float_eq(grad[v->offset + i], 0.0f);
            continue;
        }
        check_fd(vparams + v->offset, grad + v->offset, v->numel, vae_f, v->name);
    }
    free(grad);
    free(vparams);
    vae_free(&vm);
}

START_TEST(vae_bernoulli) { check_vae(LIK_BERNOULLI, 1.0f, 0); }
END_TEST
START_TEST(vae_gaussian_kl_weight) { check_vae(LIK_GAUSSIAN, 0.5f, 0); }
END_TEST
START_TEST(vae_autoencoder) { check_vae(LIK_BERNOULLI, 1.0f, 1); }
END_TEST

/* The loss itself, by hand, for one row of a model whose weights are zero:
 * logits 0 give ln 2 nats a pixel; mu = logvar = 0 give KL = 0. */
START_TEST(vae_loss_known_value)
{
    const int hidden[1] = {4};
    ck_assert_int_eq(vae_build(&vm, VIN, hidden, 1, VLAT, LIK_BERNOULLI, 1.0f, 0, 1), 0);
    float *p = calloc(vm.base.params.total, sizeof(float));
    double loss;
    vae_forward(&vm, p, vx, veps, 1, &loss);
    ck_assert_double_eq_tol(loss, VIN * log(2.0), 1e-5);
    free(p);
    vae_free(&vm);
}
END_TEST

/* The GELU's tanh against libm's over the range that matters. */
START_TEST(tanh_accuracy)
{
    double worst = 0;
    for (int i = -200000; i <= 200000; i++) {
        float u = (float)i * 1e-4f;
        worst = fmax(worst, fabs((double)tanh_poly(u) - tanh((double)u)));
    }
    ck_assert_msg(worst < 2.5e-7, "tanh_poly is off by %g", worst);
    ck_assert_float_eq(tanh_poly(100.0f), 1.0f);
    ck_assert_float_eq(tanh_poly(-100.0f), -1.0f);
}
END_TEST

/* LayerNorm: f = sum(r * LN(x)) */
enum { LN_N = 3, LN_C = 7 };
static float nx[LN_N * LN_C], nw[LN_C], nb[LN_C], nr[LN_N * LN_C];

static double layernorm_f(void)
{
    float out[LN_N * LN_C], mean[LN_N], rstd[LN_N];
    layernorm_forward(out, mean, rstd, nx, nw, nb, LN_N, LN_C);
    double f = 0;
    for (int i = 0; i < LN_N * LN_C; i++)
        f += (double)nr[i] * out[i];
    return f;
}

START_TEST(layernorm)
{
    randu(nx, LN_N * LN_C, 11, -2, 2);
    randu(nw, LN_C, 12, 0.5f, 1.5f);
    randu(nb, LN_C, 13, -1, 1);
    randu(nr, LN_N * LN_C, 14, -1, 1);
    float out[LN_N * LN_C], mean[LN_N], rstd[LN_N];
    float dx[LN_N * LN_C] = {0}, dw[LN_C] = {0}, db[LN_C] = {0};
    layernorm_forward(out, mean, rstd, nx, nw, nb, LN_N, LN_C);
    for (int n = 0; n < LN_N; n++) { /* zero mean, unit variance before the gain */
        double s = 0, s2 = 0;
        for (int i = 0; i < LN_C; i++) {
            double y = (out[n * LN_C + i] - nb[i]) / nw[i];
            s += y;
            s2 += y * y;
        }
        ck_assert_double_lt(fabs(s / LN_C), 1e-5);
        ck_assert_double_lt(fabs(s2 / LN_C - 1), 1e-3);
    }
    layernorm_backward(dx, dw, db, nr, nx, nw, mean, rstd, LN_N, LN_C);
    check_fd(nx, dx, LN_N * LN_C, layernorm_f, "ln dinp");
    check_fd(nw, dw, LN_C, layernorm_f, "ln dweight");
    check_fd(nb, db, LN_C, layernorm_f, "ln dbias");
}
END_TEST

/* Attention's products in the fixed order, as exact training runs them:
 * room for a head's keys or values transposed (hs * Tk floats). */
static float head_t[1024];

/* Causal attention: f = sum(r * attention(qkv)) */
enum { AB = 2, AT = 5, AC = 6, ANH = 2 };
static float aqkv[AB * AT * 3 * AC], ar2[AB * AT * AC];

static double attention_f(void)
{
    float out[AB * AT * AC], att[AB * ANH * AT * AT];
    attention_forward(out, att, aqkv, AB, AT, AC, ANH, head_t);
    double f = 0;
    for (int i = 0; i < AB * AT * AC; i++)
        f += (double)ar2[i] * out[i];
    return f;
}

START_TEST(causal_attention)
{
    randu(aqkv, sizeof aqkv / sizeof *aqkv, 15, -1.5f, 1.5f);
    randu(ar2, sizeof ar2 / sizeof *ar2, 16, -1, 1);
    float out[AB * AT * AC], att[AB * ANH * AT * AT], scratch[AT * AT];
    float dqkv[AB * AT * 3 * AC] = {0};
    attention_forward(out, att, aqkv, AB, AT, AC, ANH, head_t);
    for (int r = 0; r < AB * ANH * AT; r++) { /* rows sum to 1, nothing above the diagonal */
        int t = r % AT;
        double s = 0;
        for (int u = 0; u < AT; u++) {
            if (u > t)
                ck_assert_float_eq(att[r * AT + u], 0.0f);
            s += att[r * AT + u];
        }
        ck_assert_double_lt(fabs(s - 1), 1e-6);
    }
    attention_backward(dqkv, scratch, ar2, aqkv, att, AB, AT, AC, ANH, head_t);
    check_fd(aqkv, dqkv, sizeof aqkv / sizeof *aqkv, attention_f, "attention dqkv");
}
END_TEST

/* Cross-attention: 3 decoder queries over 5 encoder keys per sequence, the
 * sources 5 and 3 long (2 keys of padding), queries at stride 2C inside a
 * wider buffer; and causal self-attention over 5 positions. */
enum { CAB = 2, CATQ = 3, CATK = 5, CAC = 4, CANH = 2 };
static float xq[CAB * CATK * 2 * CAC], xk[CAB * CATK * CAC], xv[CAB * CATK * CAC], xr[CAB * CATK * CAC];
static const int xlen[CAB] = {5, 3};
static int x_causal, x_tq = CATQ;

static double cross_f(void)
{
    float out[CAB * CATK * CAC], att[CAB * CANH * CATK * CATK];
    mha_forward(out, att, xq, 2 * CAC, xk, CAC, xv, CAC, x_causal ? NULL : xlen, x_causal, CAB, x_tq,
                CATK, CAC, CANH, head_t);
    double f = 0;
    for (int i = 0; i < CAB * x_tq * CAC; i++)
        f += (double)xr[i] * out[i];
    return f;
}

START_TEST(cross_attention)
{
    randu(xq, sizeof xq / sizeof *xq, 40, -1.5f, 1.5f);
    randu(xk, sizeof xk / sizeof *xk, 41, -1.5f, 1.5f);
    randu(xv, sizeof xv / sizeof *xv, 42, -1.5f, 1.5f);
    randu(xr, sizeof xr / sizeof *xr, 43, -1, 1);
    for (x_causal = 0; x_causal < 2; x_causal++) {
        x_tq = x_causal ? CATK : CATQ; /* self-attention: as many queries as keys */
        float out[CAB * CATK * CAC], att[CAB * CANH * CATK * CATK], scratch[CATK * CATK];
        float dq[CAB * CATK * 2 * CAC] = {0}, dk[CAB * CATK * CAC] = {0}, dv[CAB * CATK * CAC] = {0};
        const int *klen = x_causal ? NULL : xlen;
        mha_forward(out, att, xq, 2 * CAC, xk, CAC, xv, CAC, klen, x_causal, CAB, x_tq, CATK, CAC,
                    CANH, head_t);
        for (int b = 0; b < CAB; b++) /* rows sum to 1; padding and the future get exactly 0 */
            for (int r = 0; r < CANH * x_tq; r++) {
                const int t = r % x_tq;
                double sum = 0;
                for (int u = 0; u < CATK; u++) {
                    const float a = att[((size_t)b * CANH * x_tq + r) * CATK + u];
                    if ((klen && u >= klen[b]) || (x_causal && u > t))
                        ck_assert_float_eq(a, 0.0f);
                    sum += a;
                }
                ck_assert_double_lt(fabs(sum - 1), 1e-6);
            }
        mha_backward(dq, dk, dv, scratch, xr, xq, 2 * CAC, xk, CAC, xv, CAC, att, klen, x_causal, CAB,
                     x_tq, CATK, CAC, CANH, head_t);
        check_fd(xq, dq, (size_t)CAB * x_tq * 2 * CAC, cross_f, "mha dq");
        check_fd(xk, dk, sizeof xk / sizeof *xk, cross_f, "mha dk");
        check_fd(xv, dv, sizeof xv / sizeof *xv, cross_f, "mha dv");
        /* a padded key or value changes nothing, and has no gradient */
        if (!x_causal) {
            float before[CAB * CATK * CAC];
            memcpy(before, out, sizeof out);
            const size_t pad = ((size_t)1 * CATK + 4) * CAC; /* sequence 1, key 4 */
            xk[pad] += 3.0f;
            xv[pad + 1] -= 2.0f;
            mha_forward(out, att, xq, 2 * CAC, xk, CAC, xv, CAC, klen, 0, CAB, CATQ, CATK, CAC,
                        CANH, head_t);
            ck_assert_int_eq(memcmp(before, out, sizeof(float) * CAB * CATQ * CAC), 0);
            ck_assert(dk[pad] == 0.0f && dv[pad + 1] == 0.0f);
        }
    }
}
END_TEST

/* Embedding: f = sum(r * embed(tokens)), with a repeated token so that a
 * row of wte collects two positions. */
enum { EB = 2, ET = 3, EC = 4, EV = 5 };
static float ewte[EV * EC], ewpe[ET * EC], er[EB * ET * EC];
static const int32_t etok[EB * ET] = {1, 3, 1, 4, 0, 3};

static double embedding_f(void)
{
    float out[EB * ET * EC];
    embedding_forward(out, etok, ewte, ewpe, EB, ET, EC);
    double f = 0;
    for (int i = 0; i < EB * ET * EC; i++)
        f += (double)er[i] * out[i];
    return f;
}

START_TEST(embedding)
{
    randu(ewte, EV * EC, 18, -1, 1);
    randu(ewpe, ET * EC, 19, -1, 1);
    randu(er, EB * ET * EC, 20, -1, 1);
    float dwte[EV * EC] = {0}, dwpe[ET * EC] = {0};
    embedding_backward(dwte, dwpe, er, etok, EB, ET, EC);
    check_fd(ewte, dwte, EV * EC, embedding_f, "dwte");
    check_fd(ewpe, dwpe, ET * EC, embedding_f, "dwpe");
    for (int i = 0; i < EC; i++) /* token 2 never appears */
        ck_assert_float_eq(dwte[2 * EC + i], 0.0f);
}
END_TEST

/* Softmax cross-entropy: f = mean over rows of -log softmax(z)[target]. */
enum { XB = 2, XT = 3, XV = 7 };
static float xz[XB * XT * XV];
static const int32_t xtgt[XB * XT] = {0, 6, 3, 3, 1, 5};

static double crossentropy_f(void)
{
    float z[XB * XT * XV];
    double loss[XB];
    memcpy(z, xz, sizeof z);
    crossentropy_forward(z, loss, xtgt, XB, XT, XV);
    return (loss[0] + loss[1]) / (XB * XT);
}

START_TEST(softmax_crossentropy)
{
    randu(xz, XB * XT * XV, 21, -3, 3);
    float p[XB * XT * XV], d[XB * XT * XV] = {0};
    double loss[XB];
    memcpy(p, xz, sizeof p);
    crossentropy_forward(p, loss, xtgt, XB, XT, XV);
    for (int r = 0; r < XB * XT; r++) { /* probabilities */
        double s = 0;
        for (int v = 0; v < XV; v++)
            s += p[r * XV + v];
        ck_assert_double_lt(fabs(s - 1), 1e-6);
    }
    crossentropy_backward(d, p, xtgt, XB * XT, XV, 1.0f / (XB * XT));
    check_fd(xz, d, XB * XT * XV, crossentropy_f, "dlogits");
    /* equal logits: ln V nats a position */
    float flat[XV] = {0};
    crossentropy_forward(flat, loss, xtgt, 1, 1, XV);
    ck_assert_double_eq_tol(loss[0], log((double)XV), 1e-6);
}
END_TEST

/* The whole GPT on a tiny configuration: mean cross-entropy per position,
 * which also checks the embeddings (tied), the softmax cross-entropy, the
 * MLP with GELU and every LayerNorm in place. */
enum { GV = 16, GT = 5, GC = 8, GL = 2, GNH = 2, GB = 2 };
static gpt gm;
static float *gparams;
static int32_t gtok[GB * GT], gtgt[GB * GT];

static double gpt_f(void)
{
    double loss[GB];
    gpt_forward(&gm, gparams, gtok, gtgt, GB, GT, NULL, loss);
    return (loss[0] + loss[1]) / (GB * GT);
}

START_TEST(gpt_whole_model)
{
    ck_assert_int_eq(gpt_build(&gm, GV, GT, GC, GL, GNH, 0.0f, GB), 0);
    size_t P = gm.base.params.total;
    gparams = calloc(P, sizeof(float));
    float *grad = calloc(P, sizeof(float));
    gpt_init(&gm, gparams, 5);
    /* larger weights than GPT-2's init, so that every path carries signal:
     * with sharp attention the query and key gradients are not small */
    for (int t = 0; t < gm.base.params.n; t++) {
        const param_view *v = &gm.base.params.v[t];
        float amp = strstr(v->name, "qkv.weight") ? 1.0f : 0.3f;
        float *noise = malloc(sizeof(float) * v->numel);
        randu(noise, v->numel, 17 + (uint32_t)t, -amp, amp);
        for (size_t j = 0; j < v->numel; j++)
            gparams[v->offset + j] += noise[j];
        free(noise);
    }
    for (int i = 0; i < GB * GT; i++) {
        gtok[i] = (i * 7 + 3) % GV;
        gtgt[i] = (i * 5 + 1) % GV;
    }
    double loss[GB];
    gpt_forward(&gm, gparams, gtok, gtgt, GB, GT, NULL, loss);
    gpt_backward(&gm, gparams, grad, gtok, gtgt, GB, GT, 1.0f / (GB * GT));
    for (int t = 0; t < gm.base.params.n; t++) {
        const param_view *v = &gm.base.params.v[t];
        check_fd(gparams + v->offset, grad + v->offset, v->numel, gpt_f, v->name);
    }
    free(grad);
    free(gparams);
    gpt_free(&gm);
}
END_TEST

/* Changing a later byte never changes an earlier position's logits. */
START_TEST(gpt_is_causal)
{
    const int V = 256, T = 16, C = 32, B = 1;
    ck_assert_int_eq(gpt_build(&gm, V, T, C, 2, 4, 0.0f, B), 0);
    float *p = calloc(gm.base.params.total, sizeof(float));
    gpt_init(&gm, p, 9);
    int32_t tok[16];
    for (int i = 0; i < T; i++)
        tok[i] = (uint8_t)"In the beginning"[i];
    float *before = malloc(sizeof(float) * T * V);
    gpt_forward(&gm, p, tok, NULL, B, T, NULL, NULL);
    memcpy(before, gm.logits, sizeof(float) * T * V);
    for (int changed = T - 1; changed > 0; changed -= 5) {
        int32_t tok2[16];
        memcpy(tok2, tok, sizeof tok);
        tok2[changed] ^= 0x5a;
        gpt_forward(&gm, p, tok2, NULL, B, T, NULL, NULL);
        ck_assert_int_eq(memcmp(before, gm.logits, sizeof(float) * changed * V), 0);
        ck_assert_int_ne(memcmp(before + changed * V, gm.logits + changed * V, sizeof(float) * V), 0);
    }
    free(before);
    free(p);
    gpt_free(&gm);
}
END_TEST

/* Generation with the key/value cache: each position's scores agree with
 * the training forward pass (OpenBLAS) within float rounding; the same bits
 * whether the context came one token at a time, all at once, or with a
 * guessed continuation (lookahead); and past the context (which then slides)
 * the same bits as a fresh start on the last maxT tokens. */
START_TEST(gpt_generation_cache)
{
    const int V = 256, T = 16, C = 32;
    ck_assert_int_eq(gpt_build(&gm, V, T, C, 2, 4, 0.0f, 1), 0);
    float *p = calloc(gm.base.params.total, sizeof(float));
    gpt_init(&gm, p, 9);
    int32_t tok[24];
    for (int i = 0; i < 24; i++)
        tok[i] = (uint8_t)"In the beginning God cre"[i];
    gpt_forward(&gm, p, tok, NULL, 1, T, NULL, NULL);
    float *full = malloc(sizeof(float) * T * V), *one = malloc(sizeof(float) * T * V);
    memcpy(full, gm.logits, sizeof(float) * T * V);
    gpt_model.gen_reset(&gm.base);
    for (int t = 0; t < T; t++) {
        gpt_model.gen_push(&gm.base, p, tok[t]);
        memcpy(one + t * V, gpt_model.gen_logits(&gm.base, p), sizeof(float) * V);
        for (int v = 0; v < V; v++)
            ck_assert_msg(fabsf(one[t * V + v] - full[t * V + v]) < 1e-4f, "position %d: %g vs %g",
                          t, one[t * V + v], full[t * V + v]);
    }
    gpt_model.gen_reset(&gm.base);
    for (int t = 0; t < T; t++)
        gpt_model.gen_push(&gm.base, p, tok[t]);
    ck_assert_int_eq(memcmp(gpt_model.gen_logits(&gm.base, p), one + (T - 1) * V,
                            sizeof(float) * V), 0);
    /* a guess of 5 tokens after 6: rows 5 .. 10 of the one-at-a-time run */
    gpt_model.gen_reset(&gm.base);
    for (int t = 0; t < 6; t++)
        gpt_model.gen_push(&gm.base, p, tok[t]);
    const float *rows;
    ck_assert_int_eq(gpt_model.gen_lookahead(&gm.base, p, tok + 6, 5, &rows), 5);
    ck_assert_int_eq(memcmp(rows, one + 5 * V, sizeof(float) * 6 * V), 0);
    /* past the context: the window slides */
    gpt_model.gen_reset(&gm.base);
    for (int t = 0; t < 24; t++)
        gpt_model.gen_push(&gm.base, p, tok[t]);
    float *slid = malloc(sizeof(float) * V);
    memcpy(slid, gpt_model.gen_logits(&gm.base, p), sizeof(float) * V);
    gpt_model.gen_reset(&gm.base);
    for (int t = 24 - T; t < 24; t++)
        gpt_model.gen_push(&gm.base, p, tok[t]);
    ck_assert_int_eq(memcmp(gpt_model.gen_logits(&gm.base, p), slid, sizeof(float) * V), 0);
    free(slid);
    free(full);
    free(one);
    free(p);
    gpt_free(&gm);
}
END_TEST

/* The gradient contract (model.h): a backward pass adds into the gradient
 * buffer (run on a buffer of ones, it gives 1 + the gradient), except a
 * lane-tree model's in a fixed-order call (every call but fast training's),
 * which writes it (on ones, the gradient itself). */
static void check_adds_or_writes(model *m, const float *p, const batch *b, int writes)
{
    const size_t P = m->params.total;
    float *g = calloc(P, sizeof(float)), *g1 = malloc(P * sizeof(float));
    double loss[4];
    m->type->forward(m, p, b, loss);
    m->type->backward(m, p, g, b, 0.5f);
    for (size_t i = 0; i < P; i++)
        g1[i] = 1.0f;
    m->type->forward(m, p, b, loss);
    m->type->backward(m, p, g1, b, 0.5f);
    int nonzero = 0;
    for (size_t i = 0; i < P; i++) {
        const float want = writes ? g[i] : 1.0f + g[i];
        ck_assert_msg(fabsf(g1[i] - want) <= 1e-6f * (1.0f + fabsf(g[i])),
                      "%s: gradient %zu: %g on ones, %g on zeros (%s)", m->type->name, i, g1[i],
                      g[i], writes ? "writes" : "adds");
        nonzero += g[i] != 0.0f;
    }
    ck_assert_int_gt(nonzero, (int)(P / 4));
    free(g);
    free(g1);
}

START_TEST(backward_adds)
{
    vae v;
    const int hidden[2] = {7, 5};
    ck_assert_int_eq(vae_build(&v, VIN, hidden, 2, VLAT, LIK_BERNOULLI, 1.0f, 0, 4), 0);
    float *p = calloc(v.base.params.total, sizeof(float));
    vae_init(&v, p, 3);
    batch b;
    batch_alloc(&b, 4, VIN, 0);
    b.rows = 4;
    b.purpose = RNG_EPS;
    randu(b.x, 4 * VIN, 7, 0, 1);
    b.fast = 1;
    check_adds_or_writes(&v.base, p, &b, 0);
    b.fast = 0;
    check_adds_or_writes(&v.base, p, &b, 1);
    batch_free(&b);
    free(p);
    vae_free(&v);

    gpt g;
    ck_assert_int_eq(gpt_build(&g, GV, GT, GC, GL, GNH, 0.1f, 2), 0);
    p = calloc(g.base.params.total, sizeof(float));
    gpt_init(&g, p, 5);
    batch_alloc(&b, 2, 0, GT);
    b.rows = 2;
    b.train = 1; /* with dropout: the same masks in both passes */
    for (int i = 0; i < 2 * GT; i++) {
        b.tokens[i] = (i * 7 + 3) % GV;
        b.targets[i] = (i * 5 + 1) % GV;
    }
    check_adds_or_writes(&g.base, p, &b, 0);
    b.fast = 1;
    check_adds_or_writes(&g.base, p, &b, 0);
    batch_free(&b);
    free(p);
    gpt_free(&g);
}
END_TEST

/* One LSTM layer: f = sum(r * h) over every step's output, so that the
 * gradient flows through the whole recurrence (T steps). */
enum { LB = 2, LT = 4, LI = 3, LH = 5 };
static float sx[LB * LT * LI], swih[4 * LH * LI], swhh[4 * LH * LH], sbias[4 * LH],
    sr2[LB * LT * LH];
static int use_fault;

void faulty_lstm_layer_forward(float *h, float *c, float *tc, float *gates, const float *x,
                               const float *Wih, const float *Whh, const float *bias, int B,
                               int nseg, int T, int In, int Hd, const linear_fixed *f);
void faulty_lstm_layer_backward(float *dx, float *const *dWih, float *const *dWhh,
                                float *const *dbias, float *dh, float *dgates, float *hprev,
                                float *dc, const float *x, const float *h, const float *c,
                                const float *tc, const float *gates, const float *Wih,
                                const float *Whh, int B, int nseg, int T, int In, int Hd,
                                const linear_fixed *f);

/* The layer's products in the fixed order, as exact training runs them. */
static float lstm_scratch[LB * LT * (LI + LH + 4 * LH)];
static const linear_fixed lstm_fixed = {.nseg = 1, .scratch = lstm_scratch, .accumulate = 1};

static double lstm_layer_f(void)
{
    float h[LB * LT * LH], c[LB * LT * LH], tc[LB * LT * LH], g[LB * LT * 4 * LH];
    lstm_layer_forward(h, c, tc, g, sx, swih, swhh, sbias, LB, 1, LT, LI, LH, &lstm_fixed);
    double f = 0;
    for (int i = 0; i < LB * LT * LH; i++)
        f += (double)sr2[i] * h[i];
    return f;
}

/* The analytic gradient of lstm_layer_f, by the true or the faulty layer. */
static void lstm_layer_grads(float *dx, float *dwih, float *dwhh, float *dbias)
{
    float h[LB * LT * LH], c[LB * LT * LH], tc[LB * LT * LH], g[LB * LT * 4 * LH];
    float dh[LB * LT * LH], dg[LB * LT * 4 * LH], hprev[LB * LT * LH], dc[LB * LH];
    memcpy(dh, sr2, sizeof dh);
    if (use_fault) {
        faulty_lstm_layer_forward(h, c, tc, g, sx, swih, swhh, sbias, LB, 1, LT, LI, LH,
                                  &lstm_fixed);
        faulty_lstm_layer_backward(dx, &dwih, &dwhh, &dbias, dh, dg, hprev, dc, sx, h, c, tc, g,
                                   swih, swhh, LB, 1, LT, LI, LH, &lstm_fixed);
    } else {
        lstm_layer_forward(h, c, tc, g, sx, swih, swhh, sbias, LB, 1, LT, LI, LH, &lstm_fixed);
        lstm_layer_backward(dx, &dwih, &dwhh, &dbias, dh, dg, hprev, dc, sx, h, c, tc, g, swih,
                            swhh, LB, 1, LT, LI, LH, &lstm_fixed);
    }
}

START_TEST(lstm_layer)
{
    randu(sx, sizeof sx / sizeof *sx, 30, -1, 1);
    randu(swih, sizeof swih / sizeof *swih, 31, -0.8f, 0.8f);
    randu(swhh, sizeof swhh / sizeof *swhh, 32, -0.8f, 0.8f);
    randu(sbias, sizeof sbias / sizeof *sbias, 33, -0.5f, 0.5f);
    randu(sr2, sizeof sr2 / sizeof *sr2, 34, -4, 4);
    float dx[LB * LT * LI] = {0}, dwih[4 * LH * LI] = {0}, dwhh[4 * LH * LH] = {0},
          dbias[4 * LH] = {0};
    use_fault = 0;
    lstm_layer_grads(dx, dwih, dwhh, dbias);
    check_fd(sx, dx, sizeof sx / sizeof *sx, lstm_layer_f, "lstm dx");
    check_fd(swih, dwih, sizeof swih / sizeof *swih, lstm_layer_f, "lstm dWih");
    check_fd(swhh, dwhh, sizeof swhh / sizeof *swhh, lstm_layer_f, "lstm dWhh");
    check_fd(sbias, dbias, sizeof sbias / sizeof *sbias, lstm_layer_f, "lstm dbias");
    /* the same checks on a layer whose forget-gate gradient is 10% off: the
     * forget gate's rows of every weight are caught, the other gates' not */
    float fx[LB * LT * LI] = {0}, fwih[4 * LH * LI] = {0}, fwhh[4 * LH * LH] = {0},
          fbias[4 * LH] = {0};
    use_fault = 1;
    lstm_layer_grads(fx, fwih, fwhh, fbias);
    use_fault = 0;
    int in_f = count_fd_misses(sbias + LH, fbias + LH, LH, lstm_layer_f);
    int in_i = count_fd_misses(sbias, fbias, LH, lstm_layer_f);
    int in_w = count_fd_misses(swhh + LH * LH, fwhh + LH * LH, LH * LH, lstm_layer_f);
    ck_assert_msg(in_f >= LH - 1 && in_w > 0 && in_i == 0,
                  "planted forget-gate fault: %d of %d forget biases, %d forget Whh entries, %d "
                  "input biases caught",
                  in_f, LH, in_w, in_i);
}
END_TEST

/* The whole LSTM model: two layers with dropout between them (fixed masks),
 * untied output layer, softmax cross-entropy, several steps. */
enum { MV = 11, ME = 4, MH = 5, ML = 2, MB = 2, MT = 4 };
static lstm lm;
static float *lparams;
static int32_t ltok[MB * MT], ltgt[MB * MT];
static const uint32_t lstreams[2] = {7, 8};
static const lstm_noise lnoise = {3, 11, lstreams};

static double lstm_model_f(void)
{
    double loss[MB];
    lstm_forward(&lm, lparams, ltok, ltgt, MB, 1, MT, &lnoise, loss);
    return (loss[0] + loss[1]) / (MB * MT);
}

START_TEST(lstm_whole_model)
{
    ck_assert_int_eq(lstm_build(&lm, MV, MT, ME, MH, ML, 0.25f, MB), 0);
    const size_t P = lm.base.params.total;
    lparams = calloc(P, sizeof(float));
    float *grad = calloc(P, sizeof(float));
    lstm_init(&lm, lparams, 5);
    for (size_t i = 0; i < P; i++) /* more signal than at init */
        lparams[i] *= 2.0f;
    for (int i = 0; i < MB * MT; i++) {
        ltok[i] = (i * 7 + 3) % MV;
        ltgt[i] = (i * 5 + 1) % MV;
    }
    double loss[MB];
    lstm_forward(&lm, lparams, ltok, ltgt, MB, 1, MT, &lnoise, loss);
    lstm_backward(&lm, lparams, &grad, ltok, ltgt, MB, 1, MT, 1.0f / (MB * MT));
    int dropped = 0;
    for (int i = 0; i < MB * MT * MH; i++)
        dropped += lm.mask[1][i] == 0.0f;
    ck_assert_int_gt(dropped, 0); /* the dropout is really there */
    for (int t = 0; t < lm.base.params.n; t++) {
        const param_view *v = &lm.base.params.v[t];
        check_fd(lparams + v->offset, grad + v->offset, v->numel, lstm_model_f, v->name);
    }
    free(grad);
    free(lparams);
    lstm_free(&lm);
}
END_TEST

/* Generation carries the state: the scores after pushing tokens one by one
 * equal the training forward's at every position. */
START_TEST(lstm_generation_state)
{
    lstm g;
    ck_assert_int_eq(lstm_build(&g, MV, 8, ME, MH, ML, 0.0f, 1), 0);
    float *p = calloc(g.base.params.total, sizeof(float));
    lstm_init(&g, p, 9);
    int32_t tok[8] = {1, 4, 4, 9, 0, 10, 3, 2};
    lstm_forward(&g, p, tok, NULL, 1, 1, 8, NULL, NULL);
    float *logits = malloc(sizeof(float) * 8 * MV);
    memcpy(logits, g.logits, sizeof(float) * 8 * MV);
    lstm_model.gen_reset(&g.base);
    for (int t = 0; t < 8; t++) {
        lstm_model.gen_push(&g.base, p, tok[t]);
        const float *s = lstm_model.gen_logits(&g.base, p);
        for (int v = 0; v < MV; v++)
            ck_assert_msg(fabsf(s[v] - logits[t * MV + v]) < 1e-5f, "position %d token %d: %g vs %g",
                          t, v, s[v], logits[t * MV + v]);
    }
    free(logits);
    free(p);
    lstm_free(&g);
}
END_TEST

/* Two lanes in one call (segments) give bitwise what two calls give: the
 * contract that lets the exact path batch a thread's lanes. */
START_TEST(lstm_segments_are_lanes)
{
    lstm one, two;
    ck_assert_int_eq(lstm_build(&one, MV, MT, ME, MH, ML, 0.25f, 3), 0);
    ck_assert_int_eq(lstm_build(&two, MV, MT, ME, MH, ML, 0.25f, 6), 0);
    const size_t P = one.base.params.total;
    float *p = calloc(P, sizeof(float)), *g[2], *h[2];
    lstm_init(&one, p, 8);
    for (int s = 0; s < 2; s++) {
        g[s] = calloc(P, sizeof(float));
        h[s] = calloc(P, sizeof(float));
    }
    int32_t tok[6 * MT], tgt[6 * MT];
    for (int i = 0; i < 6 * MT; i++) {
        tok[i] = (i * 5 + 2) % MV;
        tgt[i] = (i * 3 + 1) % MV;
    }
    const uint32_t streams[2] = {4, 9};
    double both[6], alone[6];
    lstm_noise n2 = {3, 11, streams};
    lstm_forward(&two, p, tok, tgt, 6, 2, MT, &n2, both);
    lstm_backward(&two, p, g, tok, tgt, 6, 2, MT, 0.1f);
    for (int s = 0; s < 2; s++) {
        lstm_noise n1 = {3, 11, streams + s};
        lstm_forward(&one, p, tok + 3 * s * MT, tgt + 3 * s * MT, 3, 1, MT, &n1, alone + 3 * s);
        lstm_backward(&one, p, &h[s], tok + 3 * s * MT, tgt + 3 * s * MT, 3, 1, MT, 0.1f);
    }
    ck_assert_int_eq(memcmp(both, alone, sizeof both), 0);
    ck_assert_int_eq(memcmp(g[0], h[0], P * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(g[1], h[1], P * sizeof(float)), 0);
    ck_assert_int_ne(memcmp(g[0], g[1], P * sizeof(float)), 0);
    for (int s = 0; s < 2; s++) {
        free(g[s]);
        free(h[s]);
    }
    free(p);
    lstm_free(&one);
    lstm_free(&two);
}
END_TEST

/* LeakyReLU and the sigmoid: f = sum(r * act(x)). */
enum { KN = 12 };
static float kx[KN], kr[KN];
static int kwhich;

static double kact_f(void)
{
    float out[KN];
    if (kwhich == 0)
        leaky_relu_forward(out, kx, 0.2f, KN);
    else
        sigmoid_forward(out, kx, KN);
    double f = 0;
    for (int i = 0; i < KN; i++)
        f += (double)kr[i] * out[i];
    return f;
}

START_TEST(leaky_relu_and_sigmoid)
{
    randu(kx, KN, 40, -3, 3);
    randu(kr, KN, 41, -1, 1);
    for (int i = 0; i < KN; i++) /* away from the kink, where differences lie */
        if (fabsf(kx[i]) < 0.01f)
            kx[i] = 0.5f;
    for (kwhich = 0; kwhich < 2; kwhich++) {
        float out[KN], dx[KN] = {0};
        if (kwhich == 0)
            leaky_relu_forward(out, kx, 0.2f, KN);
        else
            sigmoid_forward(out, kx, KN);
        if (kwhich == 0)
            leaky_relu_backward(dx, out, kr, 0.2f, KN);
        else
            sigmoid_backward(dx, out, kr, KN);
        check_fd(kx, dx, KN, kact_f, kwhich ? "sigmoid" : "leaky relu");
    }
    float big[2] = {-100.0f, 100.0f}, out[2];
    sigmoid_forward(out, big, 2);
    ck_assert(out[0] >= 0.0f && out[0] < 1e-30f && out[1] == 1.0f);
}
END_TEST

/* The GAN's two losses: the discriminator's, whose gradient reaches only
 * the discriminator; and the generator's, through a frozen discriminator,
 * whose gradient reaches only the generator. */
enum { GIN = 6, GZ = 3, GR = 3 };
static gan qm;
static float *qparams, qx[GR * GIN];
static float qz[GR * GZ];
static int qphase;

static double gan_f(void)
{
    double loss[GR];
    memcpy(qm.z, qz, sizeof qz);
    gan_forward(&qm, qparams, qx, GR, qphase, loss);
    return (loss[0] + loss[1] + loss[2]) / GR;
}

START_TEST(gan_losses)
{
    const int widths[4] = {5, 4, 4, 3};
    ck_assert_int_eq(gan_build(&qm, GIN, GZ, 0.2f, widths, GR), 0);
    const size_t P = qm.base.params.total;
    qparams = calloc(P, sizeof(float));
    params_init_linear(&qm.base.params, qparams, 6);
    for (size_t i = 0; i < P; i++)
        qparams[i] *= 3.0f; /* enough signal through every layer */
    randu(qx, GR * GIN, 42, 0, 1);
    rng_normals(7, 0, RNG_EPS, 0, 0, qz, GR * GZ);
    for (qphase = 0; qphase < 2; qphase++) {
        float *grad = calloc(P, sizeof(float));
        double loss[GR];
        memcpy(qm.z, qz, sizeof qz);
        gan_forward(&qm, qparams, qx, GR, qphase, loss);
        gan_backward(&qm, qparams, grad, GR, qphase, 1.0f / GR);
        for (int t = 0; t < qm.base.params.n; t++) {
            const param_view *v = &qm.base.params.v[t];
            const int mine = qphase == 0 ? t >= qm.d1w : t < qm.d1w;
            if (mine) {
                check_fd(qparams + v->offset, grad + v->offset, v->numel, gan_f, v->name);
                continue;
            }
            for (size_t i = 0; i < v->numel; i++) /* the other network: untouched */
                ck_assert_float_eq(grad[v->offset + i], 0.0f);
        }
        free(grad);
    }
    free(qparams);
    gan_free(&qm);
}
END_TEST

/* The classifier's softmax cross-entropy on labels. */
enum { CIN = 7, CR = 4, CK = 3 };
static classifier cm;
static float *cparams, cx[CR * CIN];
static const uint8_t clab[CR] = {0, 2, 1, 2};

static double classifier_f(void)
{
    double loss[CR];
    classifier_forward(&cm, cparams, cx, clab, CR, loss);
    return (loss[0] + loss[1] + loss[2] + loss[3]) / CR;
}

START_TEST(classifier_loss)
{
    ck_assert_int_eq(classifier_build(&cm, CIN, CK, 6, 5, CR), 0);
    const size_t P = cm.base.params.total;
    cparams = calloc(P, sizeof(float));
    float *grad = calloc(P, sizeof(float));
    params_init_linear(&cm.base.params, cparams, 8);
    randu(cx, CR * CIN, 43, 0, 1);
    double loss[CR];
    classifier_forward(&cm, cparams, cx, clab, CR, loss);
    classifier_backward(&cm, cparams, grad, cx, CR, 1.0f / CR);
    for (int t = 0; t < cm.base.params.n; t++) {
        const param_view *v = &cm.base.params.v[t];
        check_fd(cparams + v->offset, grad + v->offset, v->numel, classifier_f, v->name);
    }
    free(grad);
    free(cparams);
    classifier_free(&cm);
}
END_TEST

/* The Frechet distance: 0 between a set and itself, and the closed form
 * between known Gaussians (diagonal, and one that needs the matrix root). */
START_TEST(frechet)
{
    enum { D = 4, N = 200 };
    float rows[N * D];
    rng_normals(11, 0, RNG_EVAL, 0, 0, rows, N * D);
    for (int i = 0; i < N * D; i++)
        rows[i] = rows[i] * (1.0f + (float)(i % D)) + (float)(i % 3);
    feature_stats st;
    ck_assert_int_eq(stats_init(&st, D), 0);
    stats_add(&st, rows, N);
    double mu[D], cov[D * D];
    stats_finish(&st, mu, cov);
    stats_free(&st);
    ck_assert_double_lt(fabs(frechet_distance(mu, cov, mu, cov, D)), 1e-9);
    /* diag(1, 4) vs diag(9, 1), means 1 and 2 apart: 5 + (1 + 9 - 6) + (4 + 1 - 4) */
    const double m1[2] = {0, 0}, m2[2] = {1, 2}, c1[4] = {1, 0, 0, 4}, c2[4] = {9, 0, 0, 1};
    ck_assert_double_eq_tol(frechet_distance(m1, c1, m2, c2, 2), 10.0, 1e-9);
    /* [[2, 1], [1, 2]] vs I: 4 + 2 - 2 (sqrt 3 + 1) */
    const double c3[4] = {2, 1, 1, 2}, id[4] = {1, 0, 0, 1};
    ck_assert_double_eq_tol(frechet_distance(m1, c3, m1, id, 2), 6.0 - 2.0 * (sqrt(3.0) + 1.0),
                            1e-9);
}
END_TEST

/* A configuration built the way the program builds it: defaults, then
 * these settings. */
static void build_config(config *c, const char *const (*kv)[2], int n)
{
    cfg_list l = {0};
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(cfg_list_set(&l, kv[i][0], kv[i][1]), 0);
    const cfg_list *layers[1] = {&l};
    ck_assert_int_eq(config_build(c, CMD_SAMPLE, layers, 1, 1), 0);
    cfg_list_free(&l);
}

/* The text task's sampling through the model interface: n tokens after the
 * prompt into buf (NUL-terminated). */
static long sample_text(model *m, const float *p, const char *seed, const char *top_k, char *buf,
                        size_t size)
{
    const char *const kv[][2] = {{"model", "gpt"}, {"ctx", "16"},   {"dim", "32"},
                                 {"layers", "2"},  {"heads", "4"},  {"prompt", "And God"},
                                 {"length", "40"}, {"seed", seed}, {"top-k", top_k}};
    config c;
    build_config(&c, kv, (int)(sizeof kv / sizeof kv[0]));
    FILE *f = fmemopen(buf, size, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(text_task.sample(&c, NULL, m, p, f), 0);
    long n = ftell(f);
    fclose(f);
    config_free(&c);
    return n;
}

/* Sampling: the same seed, the same text; another seed, another text;
 * top-k 1 is greedy, so the seed no longer matters. */
START_TEST(gpt_sampling_is_deterministic)
{
    const char *const kv[][2] = {{"model", "gpt"}, {"ctx", "16"}, {"dim", "32"},
                                 {"layers", "2"}, {"heads", "4"}};
    config c;
    build_config(&c, kv, 5);
    const data_shape shape = text_task.shape(NULL, &c);
    model *m = gpt_model.create(&c, &shape, 1);
    ck_assert_ptr_nonnull(m);
    float *p = calloc(m->params.total, sizeof(float));
    gpt_model.init(m, p, 4);
    for (size_t i = 0; i < m->params.total; i++)
        p[i] *= 20.0f; /* sharper than at init, so top-k matters */
    char a[128] = "", b[128] = "", d[128] = "";
    ck_assert_int_eq(sample_text(m, p, "7", "0", a, sizeof a), 7 + 40 + 1); /* and a newline */
    ck_assert_int_eq(memcmp(a, "And God", 7), 0);
    sample_text(m, p, "7", "0", b, sizeof b);
    ck_assert_int_eq(memcmp(a, b, 48), 0);
    sample_text(m, p, "8", "0", d, sizeof d);
    ck_assert_int_ne(memcmp(a, d, 48), 0);
    sample_text(m, p, "1", "1", b, sizeof b);
    sample_text(m, p, "2", "1", d, sizeof d);
    ck_assert_int_eq(memcmp(b, d, 48), 0);
    free(p);
    gpt_model.destroy(m);
    config_free(&c);
}
END_TEST


/* A tiny encoder-decoder (12 tokens: 9 plain, begin 9, end 10, pad 11; 6
 * positions a side, width 8, 2 heads, a block each side) on two padded
 * pairs in the pairs task's layout: finite differences for every tensor;
 * a padded source token changes nothing; a later decoder input changes no
 * earlier position's loss. */
enum { SV = 12, SL = 6, SBOS = 9, SEND = 10, SPAD = 11 };
static model *sm;
static float *sp;
static batch sb;

static double s2s_f(void)
{
    double loss[2];
    sm->type->forward(sm, sp, &sb, loss);
    return loss[0] + loss[1];
}

static void s2s_row(int row, const int *src, const int *tgt)
{
    int32_t *tok = sb.tokens + row * 2 * SL, *out = sb.targets + row * 2 * SL;
    for (int t = 0; t < SL; t++) {
        tok[t] = src[t];
        out[t] = -1;
        tok[SL + t] = t == 0 ? SBOS : (tgt[t - 1] >= SEND ? SPAD : tgt[t - 1]);
        out[SL + t] = tgt[t] == SPAD ? -1 : tgt[t];
    }
}

START_TEST(seq2seq_whole_model)
{
    sm = seq2seq_new(SV, SL, 8, 1, 2, 0.0f, 2);
    ck_assert_ptr_nonnull(sm);
    const param_table *t = &sm->params;
    sp = calloc(t->total, sizeof *sp);
    float *grad = calloc(t->total, sizeof *grad);
    sm->type->init(sm, sp, 3);
    for (int i = 0; i < t->n; i++) { /* off the start: biases and gains matter too */
        float *noise = malloc(t->v[i].numel * sizeof *noise);
        randu(noise, t->v[i].numel, 200 + (uint32_t)i, -0.3f, 0.3f);
        for (size_t j = 0; j < t->v[i].numel; j++)
            sp[t->v[i].offset + j] += noise[j];
        free(noise);
    }
    batch_alloc(&sb, 2, 0, 2 * SL);
    sb.rows = 2;
    sb.train = 0;
    const int src0[SL] = {3, 5, 7, SEND, SPAD, SPAD}, tgt0[SL] = {4, 6, SEND, SPAD, SPAD, SPAD};
    const int src1[SL] = {2, SEND, SPAD, SPAD, SPAD, SPAD}, tgt1[SL] = {8, 0, 3, 1, SEND, SPAD};
    s2s_row(0, src0, tgt0);
    s2s_row(1, src1, tgt1);
    const double before = s2s_f();
    sm->type->backward(sm, sp, grad, &sb, 1.0f);
    for (int i = 0; i < t->n; i++)
        check_fd(sp + t->v[i].offset, grad + t->v[i].offset, t->v[i].numel, s2s_f, t->v[i].name);
    /* padding: a token after a source's first pad */
    sb.tokens[1 * 2 * SL + 4] = 5;
    ck_assert(s2s_f() == before);
    sb.tokens[1 * 2 * SL + 4] = SPAD;
    /* causality: with only row 1's position 1 scored, its decoder inputs
     * at positions 2 and later change nothing */
    for (int k = 0; k < 2 * 2 * SL; k++)
        if (k != 1 * 2 * SL + SL + 1)
            sb.targets[k] = -1;
    const double one = s2s_f();
    ck_assert(one > 0.0);
    sb.tokens[1 * 2 * SL + SL + 3] = 7;
    sb.tokens[1 * 2 * SL + SL + 4] = 2;
    ck_assert(s2s_f() == one);
    sb.tokens[1 * 2 * SL + SL + 1] = 7; /* while its own input does */
    ck_assert(s2s_f() != one);
    /* greedy translation with the key/value caches: each token the argmax
     * of the whole decoder's logits for the prefix so far */
    const int32_t src[3] = {3, 5, 7};
    int32_t got[SL], prefix[SL];
    const int n = sm->type->translate(sm, sp, src, 3, 1, got, SL);
    float lg[SV];
    for (int t = 0; t <= n && t < SL; t++) {
        seq2seq_next_logits(sm, sp, src, 3, prefix, t, lg);
        int best = 0;
        for (int v = 1; v < SV; v++)
            if (v != SBOS && v != SPAD && (best == SBOS || lg[v] > lg[best]))
                best = v;
        if (t == n) { /* it stopped: the end token, or no room left */
            ck_assert(best == SEND || n == SL);
            break;
        }
        ck_assert_int_eq(got[t], best);
        prefix[t] = got[t];
    }
    sm->type->destroy(sm);
    batch_free(&sb);
    free(sp);
    free(grad);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gradients");
    TCase *tc = tcase_create("finite differences");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, linear_layer);
    tcase_add_test(tc, conv2d_layer);
    tcase_add_test(tc, activations);
    tcase_add_test(tc, vae_bernoulli);
    tcase_add_test(tc, vae_gaussian_kl_weight);
    tcase_add_test(tc, vae_autoencoder);
    tcase_add_test(tc, vae_loss_known_value);
    tcase_add_test(tc, tanh_accuracy);
    tcase_add_test(tc, layernorm);
    tcase_add_test(tc, causal_attention);
    tcase_add_test(tc, cross_attention);
    tcase_add_test(tc, seq2seq_whole_model);
    tcase_add_test(tc, embedding);
    tcase_add_test(tc, softmax_crossentropy);
    tcase_add_test(tc, gpt_whole_model);
    tcase_add_test(tc, gpt_is_causal);
    tcase_add_test(tc, gpt_sampling_is_deterministic);
    tcase_add_test(tc, gpt_generation_cache);
    tcase_add_test(tc, backward_adds);
    tcase_add_test(tc, lstm_layer);
    tcase_add_test(tc, lstm_whole_model);
    tcase_add_test(tc, lstm_generation_state);
    tcase_add_test(tc, lstm_segments_are_lanes);
    tcase_add_test(tc, leaky_relu_and_sigmoid);
    tcase_add_test(tc, gan_losses);
    tcase_add_test(tc, classifier_loss);
    tcase_add_test(tc, frechet);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
