/* Order-free sum of lane gradients.
 *
 * Floating-point addition is not associative, so a plain MPI_SUM of floats
 * gives results that depend on how many ranks there are and on how MPI
 * orders the reduction. Here every lane's gradient is rounded to integer
 * multiples of a power-of-two quantum shared by all lanes (one quantum per
 * bucket), the integers are held in doubles and kept below 2^51 in magnitude,
 * sums included, so every partial sum is exact: the result is the same
 * whatever the order, a fixed-point sum carried by MPI_SUM on MPI_DOUBLE.
 *
 * The quantum of a bucket comes from the largest |g| of that bucket over all
 * lanes in the previous step, with HEADROOM_BITS to spare, so each lane can
 * be added as soon as its backward pass is done (while it is still in cache)
 * and no lane gradient is kept. A lane larger than the room allows is caught
 * while adding; then every rank learns it from the same small MPI_MAX that
 * carries the new maxima, and the step is computed again with quanta from
 * this step's maxima. Both decisions depend only on the lane gradients, so
 * they are the same for any -np. The first step has no previous maxima and
 * always takes the second pass.
 *
 * Threads of one rank add their lanes into their own slots, which are summed
 * (exactly) before MPI, so neither the thread that ran a lane nor the order
 * of the lanes matters either.
 *
 * Precision: a lane value keeps 51 - ceil(log2(lanes)) - HEADROOM_BITS bits
 * relative to the previous step's largest value of its bucket (42 bits for 8
 * lanes): every float within 18 binades of that value is added exactly. */
#include "comm.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEADROOM_BITS 6
#define UNKNOWN_EXP INT32_MIN

/* Adding and subtracting 1.5 * 2^52 rounds |x| < 2^51 to the nearest
 * integer (ties to even) in plain SSE2 arithmetic, so the loop vectorizes. */
static const double ROUNDER = 6755399441055744.0;

static int ceil_log2(int n)
{
    int h = 0;
    while ((1 << h) < n)
        h++;
    return h;
}

/* The exponent e with m < 2^e (0 for m = 0). */
static int exponent_above(float m)
{
    int e = 0;
    if (m > 0.0f)
        frexpf(m, &e);
    return e;
}

int lane_sum_init(lane_sum *s, int nlanes, const size_t *bucket_off, int nbuckets, int nslots,
                  int32_t *exps)
{
    memset(s, 0, sizeof *s);
    s->nlanes = nlanes;
    s->off = bucket_off;
    s->nbuckets = nbuckets;
    s->nslots = nslots;
    s->exps = exps;
    s->headroom = ceil_log2(nlanes);
    for (int b = 0; b < nbuckets; b++)
        exps[b] = UNKNOWN_EXP;
    if (nslots == 0)
        return 0; /* only the exponents: for a checkpoint of a run that sums otherwise */
    s->slot = calloc((size_t)nslots, sizeof *s->slot);
    if (!s->slot)
        return -1;
    for (int k = 0; k < nslots; k++) {
        s->slot[k].acc = calloc(bucket_off[nbuckets] + 1, sizeof(double));
        s->slot[k].bucket_max = calloc((size_t)nbuckets + 1, sizeof(float));
        if (!s->slot[k].acc || !s->slot[k].bucket_max)
            return -1;
    }
    return 0;
}

void lane_sum_free(lane_sum *s)
{
    for (int k = 0; s->slot && k < s->nslots; k++) {
        free(s->slot[k].acc);
        free(s->slot[k].bucket_max);
    }
    free(s->slot);
    s->slot = NULL;
}

void lane_sum_begin(lane_sum *s)
{
    for (int k = 0; k < s->nslots; k++) {
        memset(s->slot[k].acc + s->off[0], 0, (s->off[s->nbuckets] - s->off[0]) * sizeof(double));
        memset(s->slot[k].bucket_max, 0, (size_t)(s->nbuckets + 1) * sizeof(float));
    }
}

/* The bits of |f|: memcpy, not a pointer cast, so that no aliasing rule is
 * broken (it compiles to the same vector loads). */
static inline int32_t abs_bits(float f)
{
    int32_t b;
    memcpy(&b, &f, sizeof b);
    return b & 0x7fffffff;
}

/* Adds g * scale, rounded to integers, into acc, and returns the largest |g|
 * as a float bit pattern (see max_bits): one pass over the lane gradient. */
static int32_t add_scaled(double *restrict acc, const float *restrict g, size_t n, double scale)
{
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t a = abs_bits(g[i]);
        m = a > m ? a : m;
        acc[i] += ((double)g[i] * scale + ROUNDER) - ROUNDER;
    }
    return m;
}

/* The largest |g| as a float bit pattern: for non-negative floats integer
 * order is float order (inf above the finite values, NaN above inf), and the
 * integer max vectorizes where a float max with NaN care does not. */
static int32_t max_bits(const float *restrict g, size_t n)
{
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t a = abs_bits(g[i]);
        m = a > m ? a : m;
    }
    return m;
}

void lane_sum_add(lane_sum *s, int slot, const float *grad)
{
    const double limit = ldexp(1.0, 51 - s->headroom);
    double *acc = s->slot[slot].acc;
    float *bucket_max = s->slot[slot].bucket_max;
    int over = bucket_max[s->nbuckets] > 0.0f;
    for (int b = 0; b < s->nbuckets; b++) {
        size_t lo = s->off[b], n = s->off[b + 1] - lo;
        /* with a scale, add while finding the largest value; the sums are
         * thrown away if that value did not fit, since the step goes again */
        int32_t m = s->exps[b] == UNKNOWN_EXP || over
                        ? max_bits(grad + lo, n)
                        : add_scaled(acc + lo, grad + lo, n, ldexp(1.0, (int)s->exps[b]));
        float mf;
        memcpy(&mf, &m, sizeof mf);
        if (s->exps[b] == UNKNOWN_EXP || !isfinite(mf) ||
            (double)mf * ldexp(1.0, (int)s->exps[b]) >= limit)
            over = 1;
        if (!(mf <= bucket_max[b])) /* also lets inf and NaN through */
            bucket_max[b] = mf;
    }
    if (over)
        bucket_max[s->nbuckets] = 1.0f;
}

/* The scale exponent for a bucket whose largest value is m, leaving `spare`
 * bits of room for growth. */
static int32_t scale_exp(const lane_sum *s, float m, int spare)
{
    return (int32_t)(51 - s->headroom - spare - exponent_above(m));
}

/* Slot k's sums into slot 0: exact, since they are integers below 2^51. */
static void merge_slots(lane_sum *s)
{
    lane_sum_slot *s0 = &s->slot[0];
    const size_t lo = s->off[0], n = s->off[s->nbuckets] - lo;
    for (int k = 1; k < s->nslots; k++) {
        const double *restrict a = s->slot[k].acc + lo;
        double *restrict acc = s0->acc + lo;
        for (size_t i = 0; i < n; i++)
            acc[i] += a[i];
        for (int b = 0; b <= s->nbuckets; b++) {
            float m = s->slot[k].bucket_max[b];
            if (!(m <= s0->bucket_max[b]))
                s0->bucket_max[b] = m;
        }
    }
}

int lane_sum_end(lane_sum *s, float *out)
{
    merge_slots(s);
    float *bucket_max = s->slot[0].bucket_max;
    double *acc_all = s->slot[0].acc;
    comm_max_float(bucket_max, (size_t)s->nbuckets + 1);
    int finite = 1;
    for (int b = 0; b < s->nbuckets; b++)
        finite &= isfinite(bucket_max[b]) != 0;
    if (!finite) {
        /* no sum: NaN where some lane had a NaN or an infinity, 0 elsewhere,
         * so that the caller can tell which tensor it was */
        for (int b = 0; b < s->nbuckets; b++)
            for (size_t i = s->off[b]; i < s->off[b + 1]; i++)
                out[i] = isfinite(bucket_max[b]) ? 0.0f : NAN;
        return LANE_SUM_DONE;
    }
    if (bucket_max[s->nbuckets] > 0.0f) {
        /* some lane did not fit: quanta from this step's maxima, again */
        for (int b = 0; b < s->nbuckets; b++)
            s->exps[b] = scale_exp(s, bucket_max[b], 0);
        return LANE_SUM_AGAIN;
    }
    /* The integers' sum, each rank its block (exact in any order), turned
     * into floats there, and the floats handed round: 8 bytes a parameter
     * on the way up, 4 on the way back, instead of 8 and 8. */
    const size_t base = s->off[0], n = s->off[s->nbuckets] - base;
    const int scatter = n < (size_t)INT_MAX; /* MPI's counts; else all of it everywhere */
    size_t lo = 0, hi = n;
    if (scatter) {
        comm_reduce_scatter_double(acc_all + base, n);
        comm_block(n, comm_rank(), &lo, &hi);
    } else {
        comm_sum_double(acc_all + base, n);
    }
    lo += base;
    hi += base;
    for (int b = 0; b < s->nbuckets; b++) {
        const double inv = ldexp(1.0, -(int)s->exps[b]);
        const double *restrict acc = acc_all;
        const size_t a = s->off[b] > lo ? s->off[b] : lo;
        const size_t z = s->off[b + 1] < hi ? s->off[b + 1] : hi;
        for (size_t i = a; i < z; i++)
            out[i] = (float)(acc[i] * inv);
        s->exps[b] = scale_exp(s, bucket_max[b], HEADROOM_BITS);
    }
    if (scatter)
        comm_allgather_float(out + base, n);
    return LANE_SUM_DONE;
}
