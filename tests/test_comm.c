/* MPI pieces, run by tests/mpi.sh under mpirun -np 1, 2 and 4. Every rank
 * runs the same tests in the same order (Check without fork), and rank 0
 * prints the summary. */
#include "comm/comm.h"
#include "trainer/philox.h"

#include "tests/suite.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NLANES = 8, N = 1000 };
static const size_t off[3] = {0, 600, N};

/* Lane l's gradient; every rank can compute every lane's. */
static void lane_values(int l, float *g, int dyadic, float gain)
{
    float u[N];
    rng_uniforms(17, (uint32_t)l, RNG_INIT, 0, 0, u, N);
    for (int i = 0; i < N; i++) {
        if (dyadic) /* multiples of 2^-10 below 2^10: the quanta hold them */
            g[i] = (float)((int)(u[i] * 2097152.0f) - 1048576) / 1024.0f;
        else /* 20 binades of range, both signs */
            g[i] = (u[i] - 0.5f) * ldexpf(1.0f, (int)(i % 21) - 10);
        g[i] *= gain;
    }
}

static lane_sum sum;
static int32_t exps[2];

/* One step of the reduction over this rank's lanes; returns the passes. */
static int reduce_step(float *out, int dyadic, const float *gain)
{
    int np = comm_size(), rank = comm_rank(), passes = 0;
    float g[N];
    do {
        passes++;
        lane_sum_begin(&sum);
        for (int l = rank, k = 0; l < NLANES; l += np, k++) {
            lane_values(l, g, dyadic, gain[l]);
            lane_sum_add(&sum, k % sum.nslots, g); /* as threads would */
        }
    } while (lane_sum_end(&sum, out) == LANE_SUM_AGAIN);
    return passes;
}

static void exact_reference(double *ref, int dyadic, const float *gain)
{
    float g[N];
    memset(ref, 0, sizeof(double) * N);
    for (int l = 0; l < NLANES; l++) {
        lane_values(l, g, dyadic, gain[l]);
        for (int i = 0; i < N; i++)
            ref[i] += g[i]; /* exact in double: 8 floats within 29 binades */
    }
}

static void assert_exact(const float *out, const double *ref)
{
    for (int i = 0; i < N; i++)
        ck_assert_msg(out[i] == (float)ref[i], "element %d: %.9g, exact %.9g", i, out[i], ref[i]);
}

START_TEST(lane_sum_is_exact_for_representable_values)
{
    float ones[NLANES], big[NLANES], out[N];
    double ref[N];
    for (int l = 0; l < NLANES; l++) {
        ones[l] = 1.0f;
        big[l] = l == 5 ? 1024.0f : 1.0f; /* beyond the 2^6 of headroom */
    }
    ck_assert_int_eq(lane_sum_init(&sum, NLANES, off, 2, 1, exps), 0);
    /* first step: no scales yet, so it measures and goes again */
    ck_assert_int_eq(reduce_step(out, 1, ones), 2);
    exact_reference(ref, 1, ones);
    assert_exact(out, ref);
    /* next step: the carried scales fit, one pass */
    ck_assert_int_eq(reduce_step(out, 1, ones), 1);
    assert_exact(out, ref);
    /* a lane 1024 times larger does not fit: caught, computed again */
    ck_assert_int_eq(reduce_step(out, 1, big), 2);
    exact_reference(ref, 1, big);
    assert_exact(out, ref);
    lane_sum_free(&sum);
}
END_TEST

START_TEST(lane_sum_is_within_its_quantum)
{
    float ones[NLANES], out[N];
    double ref[N];
    for (int l = 0; l < NLANES; l++)
        ones[l] = 1.0f;
    /* two slots, as two threads of a rank would use: the same bits */
    ck_assert_int_eq(lane_sum_init(&sum, NLANES, off, 2, 2, exps), 0);
    reduce_step(out, 0, ones);
    ck_assert_int_eq(reduce_step(out, 0, ones), 1);
    exact_reference(ref, 0, ones);
    for (int b = 0; b < 2; b++) {
        double m = 0;
        for (int l = 0; l < NLANES; l++) {
            float g[N];
            lane_values(l, g, 0, 1.0f);
            for (size_t i = off[b]; i < off[b + 1]; i++)
                m = fmax(m, fabs(g[i]));
        }
        int e;
        frexp(m, &e);
        double quantum = ldexp(1.0, e - (51 - 3 - 6)); /* 8 lanes, 6 bits of headroom */
        for (size_t i = off[b]; i < off[b + 1]; i++) {
            double err = fabs(out[i] - ref[i]);
            double bound = NLANES * quantum / 2 + fabs(ref[i]) * ldexp(1.0, -24);
            ck_assert_msg(err <= bound, "element %zu: error %g > %g", i, err, bound);
        }
    }
    /* the bits, for tests/mpi.sh to compare across -np */
    unsigned long long h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)out;
    for (size_t i = 0; i < sizeof out; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    if (comm_rank() == 0)
        printf("lane-sum fnv1a64: %016llx\n", h);
    lane_sum_free(&sum);
}
END_TEST

START_TEST(plain_sums_and_max)
{
    int np = comm_size(), rank = comm_rank();
    double d[2] = {rank + 1.0, 0.5};
    comm_sum_double(d, 2);
    ck_assert_double_eq(d[0], np * (np + 1) / 2.0);
    ck_assert_double_eq(d[1], 0.5 * np);
    float f[1] = {(float)rank};
    comm_sum_float(f, 1);
    ck_assert_float_eq(f[0], (float)(np * (np - 1) / 2));
    float mx[1] = {(float)(rank * 3)};
    comm_max_float(mx, 1);
    ck_assert_float_eq(mx[0], (float)(3 * (np - 1)));
    ck_assert_int_eq(comm_max_int(rank == np - 1 ? 7 : 0), 7);
    ck_assert_int_eq(comm_max_int(0), 0);
    char word[8] = "";
    if (rank == 0)
        strcpy(word, "philox");
    comm_bcast_bytes(word, sizeof word, 0);
    ck_assert_str_eq(word, "philox");
}
END_TEST

int main(int argc, char **argv)
{
    comm_init(&argc, &argv);
    Suite *s = suite_create(comm_size() == 1 ? "comm -np 1" : comm_size() == 2 ? "comm -np 2" : "comm -np 4+");
    TCase *tc = tcase_create("allreduce");
    tcase_add_test(tc, lane_sum_is_exact_for_representable_values);
    tcase_add_test(tc, lane_sum_is_within_its_quantum);
    tcase_add_test(tc, plain_sums_and_max);
    suite_add_tcase(s, tc);
    int status = run_mpi_suite(s);
    comm_finalize();
    return status;
}
