/* The fixed-order products of trainer/nn/gemm.h: what exact training relies
 * on. A row's results do not depend on how many rows or columns the call
 * has; the vector paths and the scalar one give the same bits; the tree
 * over segments is the tree it says, and a subtree computed alone is the
 * same bits as inside the whole; and the numbers are right. */
#include "trainer/nn/gemm.h"
#include "trainer/nn/linear.h"

#include "tests/suite.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *random_floats(size_t n, unsigned seed)
{
    float *v = malloc(n * sizeof *v);
    srand(seed);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    return v;
}

static int same_bits(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* The paths this CPU runs, the best first. */
static int paths(const char **out)
{
    static const char *all[] = {"avx512", "avx2", "scalar"};
    int n = 0;
    for (int p = 0; p < 3; p++)
        if (gemm_force(all[p]) == 0)
            out[n++] = all[p];
    gemm_force(out[0]);
    return n;
}

/* 37 x 45 from 53: every tile edge; then each block of rows (and of
 * columns) alone, from every offset: the same bits. */
START_TEST(rows_and_columns_do_not_matter)
{
    const int M = 37, N = 45, K = 53;
    float *a = random_floats((size_t)M * K, 1), *b = random_floats((size_t)K * N, 2);
    float *whole = calloc((size_t)M * N, sizeof(float)), *part = calloc((size_t)M * N, sizeof(float));
    gemm_fixed(M, N, K, a, K, 1, b, N, whole, N, 0);
    for (int rows = 1; rows <= M; rows += (rows == 1 ? 1 : 5))
        for (int r0 = 0; r0 + rows <= M; r0 += 7) {
            gemm_fixed(rows, N, K, a + (size_t)r0 * K, K, 1, b, N, part, N, 0);
            ck_assert_msg(same_bits(part, whole + (size_t)r0 * N, (size_t)rows * N),
                          "rows %d..%d alone differ", r0, r0 + rows - 1);
        }
    for (int cols = 1; cols <= N; cols += 4) {
        gemm_fixed(M, cols, K, a, K, 1, b + (N - cols), N, part, cols, 0);
        for (int i = 0; i < M; i++)
            ck_assert(same_bits(part + (size_t)i * cols, whole + (size_t)i * N + (N - cols),
                                (size_t)cols));
    }
    free(a), free(b), free(whole), free(part);
}
END_TEST

/* Against sums in double: each element within a few float roundings. */
START_TEST(products_are_right)
{
    const int M = 19, N = 70, K = 300;
    float *a = random_floats((size_t)M * K, 3), *b = random_floats((size_t)K * N, 4);
    float *c = random_floats((size_t)M * N, 5), *c0 = malloc((size_t)M * N * sizeof(float));
    memcpy(c0, c, (size_t)M * N * sizeof(float));
    /* A read transposed (ars 1, aks M), accumulated into c */
    float *at = malloc((size_t)M * K * sizeof(float));
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++)
            at[(size_t)k * M + i] = a[(size_t)i * K + k];
    gemm_fixed(M, N, K, at, 1, M, b, N, c, N, 1);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++)
                s += (double)a[(size_t)i * K + k] * b[(size_t)k * N + j];
            s += c0[(size_t)i * N + j];
            ck_assert_msg(fabs(c[(size_t)i * N + j] - s) < 1e-4, "(%d, %d): %g vs %g", i, j,
                          c[(size_t)i * N + j], s);
        }
    free(a), free(b), free(c), free(c0), free(at);
}
END_TEST

/* Every path the CPU runs gives the same bits, for plain products and
 * trees, at several shapes (the scalar path uses fmaf: one rounding, as
 * the vector FMA). */
START_TEST(paths_agree)
{
    const char *p[3];
    const int np = paths(p);
    static const int shapes[][4] = {{8, 32, 16, 1}, {13, 50, 64, 4}, {64, 17, 96, 8},
                                    {3, 1, 32, 2},  {1, 300, 70, 1}, {1, 7, 5, 1},
                                    {12, 45, 37, 1}, {3, 33, 20, 1}};
    for (int s = 0; s < 8; s++) {
        const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], nseg = shapes[s][3];
        float *a = random_floats((size_t)M * K, 10 + s), *b = random_floats((size_t)K * N, 20 + s);
        float *ref = NULL;
        for (int q = 0; q < np; q++) {
            ck_assert_int_eq(gemm_force(p[q]), 0);
            float *c = calloc((size_t)2 * M * N, sizeof(float));
            gemm_fixed(M, N, K, a, K, 1, b, N, c, N, 0);
            gemm_fixed_tree(M, N, K, nseg, a, K, 1, b, N, c + (size_t)M * N, N, 1);
            if (!ref)
                ref = c;
            else {
                ck_assert_msg(same_bits(c, ref, (size_t)2 * M * N), "%s differs from %s", p[q],
                              p[0]);
                free(c);
            }
        }
        free(ref), free(a), free(b);
    }
    gemm_force(p[0]);
}
END_TEST

/* gemm_fixed_tree over 8 segments is ((s0 + s1) + (s2 + s3)) + ((s4 + s5) +
 * (s6 + s7)) of the segments' own products, added to C; and the two halves
 * computed alone (as two ranks would) and then added give the same bits. */
START_TEST(tree_is_the_tree)
{
    const int M = 21, N = 40, seg = 5, nseg = 8, K = seg * nseg;
    float *a = random_floats((size_t)M * K, 6), *b = random_floats((size_t)K * N, 7);
    const size_t n = (size_t)M * N;
    float *leaf[8], *c = calloc(n, sizeof(float)), *want = calloc(n, sizeof(float));
    for (int s = 0; s < nseg; s++) {
        leaf[s] = calloc(n, sizeof(float));
        gemm_fixed(M, N, seg, a + s * seg, K, 1, b + (size_t)s * seg * N, N, leaf[s], N, 0);
    }
    for (size_t e = 0; e < n; e++)
        want[e] = ((leaf[0][e] + leaf[1][e]) + (leaf[2][e] + leaf[3][e])) +
                  ((leaf[4][e] + leaf[5][e]) + (leaf[6][e] + leaf[7][e]));
    gemm_fixed_tree(M, N, K, nseg, a, K, 1, b, N, c, N, 1);
    ck_assert(same_bits(c, want, n));
    /* written rather than added: the same sums */
    float *w = malloc(n * sizeof(float));
    for (size_t e = 0; e < n; e++)
        w[e] = 1e30f;
    gemm_fixed_tree(M, N, K, nseg, a, K, 1, b, N, w, N, 0);
    ck_assert(same_bits(w, want, n));
    free(w);
    float *lo = calloc(n, sizeof(float)), *hi = calloc(n, sizeof(float));
    gemm_fixed_tree(M, N, K / 2, nseg / 2, a, K, 1, b, N, lo, N, 1);
    gemm_fixed_tree(M, N, K / 2, nseg / 2, a + K / 2, K, 1, b + (size_t)(K / 2) * N, N, hi, N, 1);
    for (size_t e = 0; e < n; e++)
        lo[e] = lo[e] + hi[e];
    ck_assert(same_bits(lo, want, n));
    for (int s = 0; s < nseg; s++)
        free(leaf[s]);
    free(a), free(b), free(c), free(want), free(lo), free(hi);
}
END_TEST

/* The fixed-order linear layer against the OpenBLAS one: the same numbers
 * within float rounding, forward and backward, with the parameter gradients
 * summed over 4 segments. */
START_TEST(linear_fixed_matches_blas)
{
    const int B = 24, C = 37, OC = 29;
    float *x = random_floats((size_t)B * C, 8), *w = random_floats((size_t)OC * C, 9);
    float *bias = random_floats((size_t)OC, 10), *dy = random_floats((size_t)B * OC, 11);
    float scratch[24 * (37 + 29)];
    linear_fixed f = {4, scratch, 0};
    float y1[24 * 29], y2[24 * 29];
    linear_forward(y1, x, w, bias, B, C, OC);
    linear_forward_fixed(&f, y2, x, w, bias, B, C, OC);
    for (int i = 0; i < B * OC; i++)
        ck_assert(fabsf(y1[i] - y2[i]) < 1e-5f);
    float dx1[24 * 37] = {0}, dx2[24 * 37] = {0};
    linear_backward_input(dx1, dy, w, B, C, OC);
    linear_backward_input_fixed(dx2, dy, w, B, C, OC);
    for (int i = 0; i < B * C; i++)
        ck_assert(fabsf(dx1[i] - dx2[i]) < 1e-5f);
    float dw1[29 * 37] = {0}, dw2[29 * 37] = {0}, db1[29] = {0}, db2[29] = {0};
    linear_backward_params(dw1, db1, dy, x, B, C, OC, 1);
    linear_backward_params_fixed(&f, dw2, db2, dy, x, B, C, OC, 0);
    for (int i = 0; i < OC * C; i++)
        ck_assert(fabsf(dw1[i] - dw2[i]) < 1e-5f);
    for (int i = 0; i < OC; i++)
        ck_assert(fabsf(db1[i] - db2[i]) < 1e-5f);
    free(x), free(w), free(bias), free(dy);
}
END_TEST

/* Many rows and 16 or more outputs run with the weight transposed, one row
 * with the activations transposed: the same chain per output, the same
 * bits. */
START_TEST(linear_orientations_agree)
{
    enum { B = 40, C = 37, OC = 20 };
    float *x = random_floats((size_t)B * C, 12), *w = random_floats((size_t)OC * C, 13);
    float *bias = random_floats((size_t)OC, 14);
    static float scratch[B * (C + OC)], all[B * OC], one[OC];
    linear_fixed f = {1, scratch, 0};
    linear_forward_fixed(&f, all, x, w, bias, B, C, OC);
    for (int b = 0; b < B; b++) {
        linear_forward_fixed(&f, one, x + (size_t)b * C, w, bias, 1, C, OC);
        ck_assert_int_eq(memcmp(one, all + (size_t)b * OC, sizeof one), 0);
    }
    free(x), free(w), free(bias);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rows_and_columns_do_not_matter);
    tcase_add_test(tc, products_are_right);
    tcase_add_test(tc, paths_agree);
    tcase_add_test(tc, tree_is_the_tree);
    tcase_add_test(tc, linear_fixed_matches_blas);
    tcase_add_test(tc, linear_orientations_agree);
    suite_add_tcase(s, tc);
    printf("gemm: paths on this CPU: best %s\n", gemm_path());
    return run_suite(s);
}
