/* Glow's layers and the whole flow: gradients against finite differences
 * (tests/fd.h), inverses, the log-determinant against the Jacobian's, and
 * the lane tree's sums. */
#include "trainer/models/glow.h"
#include "trainer/nn/flow.h"
#include "trainer/philox.h"

#include "tests/fd.h"
#include "tests/suite.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* log|det A| of an n x n matrix, by LU with partial pivoting in double. */
static double log_abs_det(double *a, int n)
{
    double s = 0.0;
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int r = k + 1; r < n; r++)
            if (fabs(a[r * n + k]) > fabs(a[p * n + k]))
                p = r;
        for (int j = 0; j < n; j++) {
            const double t = a[k * n + j];
            a[k * n + j] = a[p * n + j];
            a[p * n + j] = t;
        }
        s += log(fabs(a[k * n + k]));
        for (int r = k + 1; r < n; r++) {
            const double m = a[r * n + k] / a[k * n + k];
            for (int j = k; j < n; j++)
                a[r * n + j] -= m * a[k * n + j];
        }
    }
    return s;
}

START_TEST(squeeze_moves_blocks)
{
    enum { SB = 2, SH = 4, SW = 6, SC = 3, N = SB * SH * SW * SC };
    float x[N], s[N], back[N];
    randu(x, N, 1, -1, 1);
    squeeze(s, x, SB, SH, SW, SC);
    /* image 1, block (1, 2), position (dy, dx) = (1, 0), channel 2 */
    const int b = 1, i = 1, j = 2, dy = 1, dx = 0, c = 2;
    ck_assert(s[(((b * (SH / 2) + i) * (SW / 2) + j) * 4 + 2 * dy + dx) * SC + c] ==
              x[((b * SH + 2 * i + dy) * SW + 2 * j + dx) * SC + c]);
    unsqueeze(back, s, SB, SH, SW, SC);
    ck_assert_int_eq(memcmp(back, x, sizeof x), 0);
}
END_TEST

/* Actnorm: f = sum(r * y) + LAMBDA * (log-determinant of all pixels). */
#define LAMBDA 0.7f
enum { AN = 12, AC = 3 };
static float an_x[AN * AC], an_bias[AC], an_logs[AC], an_r[AN * AC];

static double actnorm_f(void)
{
    float y[AN * AC];
    actnorm_forward(y, an_x, an_bias, an_logs, AN, AC);
    double f = 0.0;
    for (int i = 0; i < AN * AC; i++)
        f += (double)an_r[i] * y[i];
    for (int c = 0; c < AC; c++)
        f += LAMBDA * AN * (double)an_logs[c];
    return f;
}

START_TEST(actnorm_layer)
{
    float scratch[AN * AC];
    const linear_fixed fixed = {2, scratch, 0};
    randu(an_x, AN * AC, 2, -2, 3);
    randu(an_r, AN * AC, 3, -1, 1);
    for (int pass = 0; pass < 2; pass++) {
        randu(an_bias, AC, 4, -1, 1);
        randu(an_logs, AC, 5, -1, 1);
        float y[AN * AC], dx[AN * AC] = {0}, db[AC] = {0}, dl[AC] = {0}, tmp[AN * AC];
        actnorm_forward(y, an_x, an_bias, an_logs, AN, AC);
        actnorm_backward(pass ? &fixed : NULL, dx, db, dl, tmp, an_r, y, an_logs, AN, AC, LAMBDA);
        check_fd(an_x, dx, AN * AC, actnorm_f, "actnorm dx");
        check_fd(an_bias, db, AC, actnorm_f, "actnorm dbias");
        check_fd(an_logs, dl, AC, actnorm_f, "actnorm dlogs");
        float back[AN * AC];
        actnorm_inverse(back, y, an_bias, an_logs, AN, AC);
        for (int i = 0; i < AN * AC; i++)
            ck_assert_float_eq_tol(back[i], an_x[i], 1e-5);
    }
    /* the data-dependent start: zero mean and unit variance per channel */
    float y[AN * AC];
    actnorm_init(an_bias, an_logs, an_x, AN, AC);
    actnorm_forward(y, an_x, an_bias, an_logs, AN, AC);
    for (int c = 0; c < AC; c++) {
        double m = 0.0, v = 0.0;
        for (int p = 0; p < AN; p++)
            m += y[p * AC + c] / (double)AN;
        for (int p = 0; p < AN; p++)
            v += (y[p * AC + c] - m) * (y[p * AC + c] - m) / AN;
        ck_assert_double_eq_tol(m, 0.0, 1e-6);
        ck_assert_double_eq_tol(v, 1.0, 1e-5);
    }
}
END_TEST

/* The 1 x 1 convolution: f = sum(r * W x) + LAMBDA * N * sum(logs). */
enum { IN = 12, IC = 4 };
static float ic_x[IN * IC], ic_lower[IC * IC], ic_upper[IC * IC], ic_logs[IC], ic_fixed[2 * IC];
static float ic_r[IN * IC];

static double invconv_f(void)
{
    float w[IC * IC], y[IN * IC];
    invconv_weight(w, ic_lower, ic_upper, ic_logs, ic_fixed, IC);
    linear_forward(y, ic_x, w, NULL, IN, IC, IC);
    double f = 0.0;
    for (int i = 0; i < IN * IC; i++)
        f += (double)ic_r[i] * y[i];
    for (int c = 0; c < IC; c++)
        f += LAMBDA * IN * (double)ic_logs[c];
    return f;
}

START_TEST(invconv_layer)
{
    float w[IC * IC], winv[IC * IC];
    invconv_init(ic_lower, ic_upper, ic_logs, ic_fixed, IC, 7, RNG_STREAM_GLOBAL, 0);
    invconv_weight(w, ic_lower, ic_upper, ic_logs, ic_fixed, IC);
    /* a rotation at first: W W^T = I */
    for (int i = 0; i < IC; i++)
        for (int j = 0; j < IC; j++) {
            double d = 0.0;
            for (int k = 0; k < IC; k++)
                d += (double)w[i * IC + k] * w[j * IC + k];
            ck_assert_double_eq_tol(d, i == j, 1e-6);
        }
    /* away from it, so that every entry matters */
    float noise[IC * IC];
    randu(noise, IC * IC, 8, -0.3f, 0.3f);
    for (int i = 0; i < IC * IC; i++) {
        ic_lower[i] += noise[i];
        ic_upper[i] -= noise[i];
    }
    randu(ic_logs, IC, 9, -0.5f, 0.5f);
    randu(ic_x, IN * IC, 10, -1, 1);
    randu(ic_r, IN * IC, 11, -1, 1);
    invconv_weight(w, ic_lower, ic_upper, ic_logs, ic_fixed, IC);
    double a[IC * IC], sum_logs = 0.0;
    for (int i = 0; i < IC * IC; i++)
        a[i] = w[i];
    for (int c = 0; c < IC; c++)
        sum_logs += ic_logs[c];
    ck_assert_double_eq_tol(log_abs_det(a, IC), sum_logs, 1e-5);
    invconv_inverse_weight(winv, ic_lower, ic_upper, ic_logs, ic_fixed, IC);
    for (int i = 0; i < IC; i++)
        for (int j = 0; j < IC; j++) {
            double d = 0.0;
            for (int k = 0; k < IC; k++)
                d += (double)winv[i * IC + k] * w[k * IC + j];
            ck_assert_double_eq_tol(d, i == j, 1e-5);
        }
    float scratch[3 * IN * IC];
    const linear_fixed fixed = {2, scratch, 0};
    for (int pass = 0; pass < 2; pass++) {
        float dx[IN * IC] = {0}, dlo[IC * IC] = {0}, dup[IC * IC] = {0}, dl[IC] = {0};
        float dfix[2 * IC] = {0}, tmp[3 * IN * IC];
        invconv_backward(pass ? &fixed : NULL, dx, dlo, dup, dl, dfix, tmp, ic_r, ic_x, w,
                         ic_lower, ic_upper, ic_logs, ic_fixed, IN, IC, LAMBDA);
        check_fd(ic_x, dx, IN * IC, invconv_f, "invconv dx");
        check_fd(ic_lower, dlo, IC * IC, invconv_f, "invconv dlower");
        check_fd(ic_upper, dup, IC * IC, invconv_f, "invconv dupper");
        check_fd(ic_logs, dl, IC, invconv_f, "invconv dlogs");
        for (int i = 0; i < 2 * IC; i++)
            ck_assert(dfix[i] == 0.0f);
    }
}
END_TEST

/* The coupling: f = sum(r * y) + LAMBDA * sum of the images' log-determinants. */
enum { CB = 2, CH = 3, CW = 2, CC = 4, CHID = 5, CN = CB * CH * CW };
static float cp_x[CN * CC], cp_r[CN * CC];
static float cp_w1[CHID * 9 * CC / 2], cp_b1[CHID], cp_w2[CHID * CHID], cp_b2[CHID];
static float cp_w3[CC * 9 * CHID], cp_b3[CC];
static float cp_cols[CN * 9 * CHID], cp_dcols[CN * 9 * CHID], cp_tmp[CN * (2 * CHID + 2 * CC)];
static float cp_scratch[CN * 10 * CHID];
static float cp_xa[CN * CC / 2], cp_h1[CN * CHID], cp_h2[CN * CHID], cp_o[CN * CC];
static linear_fixed cp_fixed = {CB, cp_scratch, 0};
static const linear_fixed *cp_f;

static double coupling_f(void)
{
    const flow_work wk = {cp_f, cp_cols, cp_dcols, cp_tmp};
    coupling_acts a = {cp_xa, cp_h1, cp_h2, cp_o};
    const coupling_params p = {cp_w1, cp_b1, cp_w2, cp_b2, cp_w3, cp_b3};
    float y[CN * CC];
    double ld[CB], f = 0.0;
    coupling_forward(&wk, &a, y, ld, cp_x, &p, CB, CH, CW, CC, CHID);
    for (int i = 0; i < CN * CC; i++)
        f += (double)cp_r[i] * y[i];
    for (int b = 0; b < CB; b++)
        f += LAMBDA * ld[b];
    return f;
}

START_TEST(coupling_layer)
{
    randu(cp_x, CN * CC, 20, -1, 1);
    randu(cp_r, CN * CC, 21, -1, 1);
    randu(cp_w1, sizeof cp_w1 / sizeof *cp_w1, 22, -0.5f, 0.5f);
    randu(cp_b1, CHID, 23, -0.5f, 0.5f);
    randu(cp_w2, CHID * CHID, 24, -0.5f, 0.5f);
    randu(cp_b2, CHID, 25, -0.5f, 0.5f);
    randu(cp_w3, sizeof cp_w3 / sizeof *cp_w3, 26, -0.5f, 0.5f);
    randu(cp_b3, CC, 27, -0.5f, 0.5f);
    for (int pass = 0; pass < 2; pass++) {
        cp_f = pass ? &cp_fixed : NULL;
        const flow_work wk = {cp_f, cp_cols, cp_dcols, cp_tmp};
        coupling_acts a = {cp_xa, cp_h1, cp_h2, cp_o};
        const coupling_params p = {cp_w1, cp_b1, cp_w2, cp_b2, cp_w3, cp_b3};
        float y[CN * CC], back[CN * CC], dx[CN * CC] = {0};
        float g1[sizeof cp_w1 / sizeof *cp_w1] = {0}, gb1[CHID] = {0}, g2[CHID * CHID] = {0};
        float gb2[CHID] = {0}, g3[sizeof cp_w3 / sizeof *cp_w3] = {0}, gb3[CC] = {0};
        const coupling_grads g = {g1, gb1, g2, gb2, g3, gb3};
        double ld[CB];
        coupling_forward(&wk, &a, y, ld, cp_x, &p, CB, CH, CW, CC, CHID);
        coupling_backward(&wk, &a, dx, &g, cp_r, cp_x, &p, CB, CH, CW, CC, CHID, LAMBDA);
        check_fd(cp_x, dx, CN * CC, coupling_f, "coupling dx");
        check_fd(cp_w1, g1, sizeof g1 / sizeof *g1, coupling_f, "coupling dw1");
        check_fd(cp_b1, gb1, CHID, coupling_f, "coupling db1");
        check_fd(cp_w2, g2, CHID * CHID, coupling_f, "coupling dw2");
        check_fd(cp_b2, gb2, CHID, coupling_f, "coupling db2");
        check_fd(cp_w3, g3, sizeof g3 / sizeof *g3, coupling_f, "coupling dw3");
        check_fd(cp_b3, gb3, CC, coupling_f, "coupling db3");
        coupling_inverse(&wk, &a, back, y, &p, CB, CH, CW, CC, CHID);
        for (int i = 0; i < CN * CC; i++)
            ck_assert_float_eq_tol(back[i], cp_x[i], 1e-5);
    }
    cp_f = NULL;
}
END_TEST

/* A tiny Glow: 4 x 4 images, 2 levels of 2 steps, width 4, its parameters
 * moved off their start (the zero convolutions and priors too) so that
 * every tensor matters; the fixed permutations and signs stay. */
enum { GS = 4, GK = 2, GWIDTH = 4, GR = 2 };
static model *tiny;
static float *gp;
static batch gb;

static int is_fixed(const param_view *v) { return strstr(v->name, "invconv.fixed") != NULL; }

static void tiny_glow(int rows, int side, int K, int width)
{
    tiny = glow_new(side, side, 2, K, width, rows);
    ck_assert_ptr_nonnull(tiny);
    const param_table *t = &tiny->params;
    gp = calloc(t->total, sizeof *gp);
    tiny->type->init(tiny, gp, 5);
    for (int i = 0; i < t->n; i++) {
        if (is_fixed(&t->v[i]))
            continue;
        float *noise = malloc(t->v[i].numel * sizeof *noise);
        randu(noise, t->v[i].numel, 100 + (uint32_t)i, -0.2f, 0.2f);
        for (size_t j = 0; j < t->v[i].numel; j++)
            gp[t->v[i].offset + j] += noise[j];
        free(noise);
    }
    batch_alloc(&gb, rows, (size_t)side * side, 0);
    gb.rows = rows;
    gb.seed = 3;
    gb.purpose = RNG_EPS;
    gb.nseg = 1;
    float *u = malloc((size_t)rows * side * side * sizeof *u);
    randu(u, (size_t)rows * side * side, 30, 0, 1);
    for (int i = 0; i < rows * side * side; i++) /* pixels k / 255 */
        gb.x[i] = floorf(u[i] * 256.0f) / 255.0f;
    free(u);
    for (int r = 0; r < rows; r++)
        gb.key[r] = (rng_key){(uint32_t)r, 0, (uint32_t)r};
}

static void tiny_free(void)
{
    tiny->type->destroy(tiny);
    free(gp);
    batch_free(&gb);
}

static double tiny_loss(void)
{
    double loss[GR], f = 0.0;
    tiny->type->forward(tiny, gp, &gb, loss);
    for (int r = 0; r < gb.rows; r++)
        f += 0.5 * loss[r];
    return f;
}

START_TEST(glow_whole_model)
{
    tiny_glow(GR, GS, GK, GWIDTH);
    const param_table *t = &tiny->params;
    float *grad = calloc(t->total, sizeof *grad), *tree = calloc(t->total, sizeof *tree);
    tiny_loss();
    tiny->type->backward(tiny, gp, grad, &gb, 0.5f);
    for (int i = 0; i < t->n; i++) {
        const param_view *v = &t->v[i];
        if (!is_fixed(v))
            check_fd(gp + v->offset, grad + v->offset, v->numel, tiny_loss, v->name);
        else
            for (size_t j = 0; j < v->numel; j++)
                ck_assert(grad[v->offset + j] == 0.0f);
    }
    /* a tree call over the two images as two lanes: the same gradient up
     * to rounding, and bitwise the sum of each image's alone */
    gb.tree = 1;
    gb.nseg = GR;
    memset(tree, 0xff, t->total * sizeof *tree); /* written whole: no NaN may stay */
    tiny_loss();
    tiny->type->backward(tiny, gp, tree, &gb, 0.5f);
    for (size_t j = 0; j < t->total; j++)
        ck_assert_msg(fabsf(tree[j] - grad[j]) <= 1e-4f + 1e-4f * fabsf(grad[j]),
                      "tree gradient %zu: %g vs %g", j, tree[j], grad[j]);
    float *one[GR];
    double both_loss[GR];
    tiny->type->forward(tiny, gp, &gb, both_loss);
    for (int r = 0; r < GR; r++) {
        one[r] = calloc(t->total, sizeof *one[r]);
        batch alone = gb;
        alone.rows = 1;
        alone.nseg = 1;
        alone.x = gb.x + (size_t)r * GS * GS;
        alone.key = gb.key + r;
        double loss;
        tiny->type->forward(tiny, gp, &alone, &loss);
        ck_assert(loss == both_loss[r]);
        tiny->type->backward(tiny, gp, one[r], &alone, 0.5f);
    }
    for (size_t j = 0; j < t->total; j++)
        ck_assert_msg(tree[j] == one[0][j] + one[1][j], "tree sum %zu", j);
    for (int r = 0; r < GR; r++)
        free(one[r]);
    free(grad);
    free(tree);
    tiny_free();
}
END_TEST

/* log|det dz/dy| of a 4 x 4 x 1 flow against the log-determinant of its
 * Jacobian by central differences (16 x 16, in double from float passes). */
START_TEST(glow_logdet_is_jacobian)
{
    enum { D = GS * GS };
    tiny_glow(1, GS, GK, GWIDTH);
    float y[D], z[D], zp[D], zm[D];
    double ld, ignore, jac[D * D];
    randu(y, D, 40, -2, 2);
    glow_to_z(tiny, gp, y, 1, z, &ld);
    const float h = 1e-2f;
    for (int j = 0; j < D; j++) {
        const float keep = y[j];
        y[j] = keep + h;
        glow_to_z(tiny, gp, y, 1, zp, &ignore);
        y[j] = keep - h;
        glow_to_z(tiny, gp, y, 1, zm, &ignore);
        y[j] = keep;
        for (int i = 0; i < D; i++)
            jac[i * D + j] = ((double)zp[i] - zm[i]) / (2.0 * h);
    }
    const double fd = log_abs_det(jac, D);
    ck_assert_msg(fabs(fd - ld) < 2e-3 * (1.0 + fabs(ld)), "log|det|: flow %.6f, Jacobian %.6f",
                  ld, fd);
    tiny_free();
}
END_TEST

/* y -> z -> y for a flow with 4 steps per level on 8 x 8 images. */
START_TEST(glow_inverts)
{
    enum { S = 8, R = 3, D = S * S };
    tiny_glow(R, S, 4, 8);
    float y[R * D], z[R * D], back[R * D];
    double ld[R];
    randu(y, R * D, 41, -3, 3);
    glow_to_z(tiny, gp, y, R, z, ld);
    glow_from_z(tiny, gp, z, R, back);
    for (int i = 0; i < R * D; i++)
        ck_assert_msg(fabsf(back[i] - y[i]) <= 1e-5f * 3.0f, "y[%d] = %g came back %g", i, y[i],
                      back[i]);
    tiny_free();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flows");
    TCase *tc = tcase_create("glow");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, squeeze_moves_blocks);
    tcase_add_test(tc, actnorm_layer);
    tcase_add_test(tc, invconv_layer);
    tcase_add_test(tc, coupling_layer);
    tcase_add_test(tc, glow_whole_model);
    tcase_add_test(tc, glow_logdet_is_jacobian);
    tcase_add_test(tc, glow_inverts);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
