/* Philox4x32-10 known answers (Random123's kat_vectors), stream separation,
 * and the derived draws. */
#include "trainer/philox.h"

#include "tests/suite.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(known_answers)
{
    static const uint32_t cases[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int c = 0; c < 3; c++) {
        uint32_t out[4];
        philox4x32_10(cases[c], cases[c] + 4, out);
        for (int i = 0; i < 4; i++)
            ck_assert_uint_eq(out[i], cases[c][6 + i]);
    }
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* 8 streams x 8192 blocks: no 64-bit prefix of any block appears twice, so
 * no stream replays another's numbers (a shared block would share it). */
START_TEST(streams_do_not_overlap)
{
    const int streams = 8, blocks = 8192;
    uint64_t *all = malloc(sizeof(uint64_t) * streams * blocks);
    for (int s = 0; s < streams; s++)
        for (int b = 0; b < blocks; b++) {
            uint32_t w[4];
            rng_block(42, (uint32_t)s, RNG_EPS, 0, (uint32_t)b, 0, w);
            all[s * blocks + b] = ((uint64_t)w[0] << 32) | w[1];
        }
    qsort(all, (size_t)streams * blocks, sizeof *all, cmp_u64);
    for (int i = 1; i < streams * blocks; i++)
        ck_assert_msg(all[i] != all[i - 1], "repeated block at %d", i);
    free(all);
}
END_TEST

START_TEST(draws_are_recomputable)
{
    float a[37], b[37];
    rng_normals(7, 3, RNG_EPS, 11, 5, a, 37);
    rng_normals(7, 3, RNG_EPS, 11, 5, b, 37);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    /* any other coordinate gives other numbers */
    rng_normals(7, 4, RNG_EPS, 11, 5, b, 37);
    ck_assert_int_ne(memcmp(a, b, sizeof a), 0);
    rng_normals(7, 3, RNG_DROPOUT, 11, 5, b, 37);
    ck_assert_int_ne(memcmp(a, b, sizeof a), 0);
    rng_normals(8, 3, RNG_EPS, 11, 5, b, 37);
    ck_assert_int_ne(memcmp(a, b, sizeof a), 0);
}
END_TEST

START_TEST(normals_have_unit_moments)
{
    const int n = 200000;
    float *z = malloc(sizeof(float) * n);
    rng_normals(1, 0, RNG_EPS, 0, 0, z, (size_t)n);
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        ck_assert(isfinite(z[i]));
        s += z[i];
        s2 += (double)z[i] * z[i];
    }
    double mean = s / n, var = s2 / n - mean * mean;
    /* standard errors: 0.0022 for the mean, 0.0032 for the variance */
    ck_assert_double_lt(fabs(mean), 0.011);
    ck_assert_double_lt(fabs(var - 1.0), 0.016);
    free(z);
}
END_TEST

START_TEST(uniforms_in_unit_interval)
{
    float u[4096];
    rng_uniforms(5, 1, RNG_INIT, 0, 0, u, 4096);
    double s = 0;
    for (int i = 0; i < 4096; i++) {
        ck_assert(u[i] >= 0.0f && u[i] < 1.0f);
        s += u[i];
    }
    ck_assert_double_lt(fabs(s / 4096 - 0.5), 0.02);
}
END_TEST

START_TEST(permutation_is_a_permutation)
{
    const uint32_t n = 1000;
    uint32_t p[1000], q[1000];
    rng_permutation(3, 2, 0, p, n);
    char seen[1000] = {0};
    for (uint32_t i = 0; i < n; i++) {
        ck_assert_uint_lt(p[i], n);
        ck_assert(!seen[p[i]]);
        seen[p[i]] = 1;
    }
    rng_permutation(3, 2, 0, q, n);
    ck_assert_int_eq(memcmp(p, q, sizeof p), 0);
    rng_permutation(3, 2, 1, q, n); /* the next epoch is another order */
    ck_assert_int_ne(memcmp(p, q, sizeof p), 0);
    int fixed = 0;
    for (uint32_t i = 0; i < n; i++)
        fixed += p[i] == i;
    ck_assert_int_lt(fixed, 10); /* a random permutation fixes ~1 point */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("philox");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, known_answers);
    tcase_add_test(tc, streams_do_not_overlap);
    tcase_add_test(tc, draws_are_recomputable);
    tcase_add_test(tc, normals_have_unit_moments);
    tcase_add_test(tc, uniforms_in_unit_interval);
    tcase_add_test(tc, permutation_is_a_permutation);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
