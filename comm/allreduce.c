/* Order-free sum of lane gradients.
 *
 * Floating-point addition is not associative, so a plain MPI_SUM of floats
 * gives results that depend on how many ranks there are and how MPI orders
 * the reduction. Here every lane's gradient is first rounded to an integer
 * multiple of a power-of-two quantum shared by all lanes (one quantum per
 * bucket, from the largest |g| of that bucket over all lanes). The integers
 * are held in doubles and kept below 2^51 in magnitude, sums included, so
 * every partial sum is exact and the result is the same whatever the order:
 * a fixed-point sum, carried by MPI_SUM on MPI_DOUBLE.
 *
 * Precision: each lane value keeps 51 - ceil(log2(lanes)) bits relative to the
 * bucket's largest value, so a float within about 24 binades of that largest
 * value (for 8 lanes) is converted without any rounding at all. */
#include "comm.h"

#include <math.h>
#include <string.h>

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

/* The largest |g| as the bit pattern of a float: for non-negative floats the
 * patterns order like the values, with inf at 0x7f800000 and NaNs above it.
 * Integer max vectorizes where a float max with NaN checks would not. */
static int32_t abs_max_bits(const float *restrict g, size_t n)
{
    const int32_t *restrict bits = (const int32_t *)g;
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t a = bits[i] & 0x7fffffff;
        m = a > m ? a : m;
    }
    return m;
}

static void add_quantized(double *restrict acc, const float *restrict g, size_t n,
                          double scale)
{
    for (size_t i = 0; i < n; i++)
        acc[i] += ((double)g[i] * scale + ROUNDER) - ROUNDER;
}

static void dequantize(float *restrict out, const double *restrict acc, size_t n,
                       double inv_scale)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(acc[i] * inv_scale);
}

/* The exponent e with m < 2^e (0 for m = 0). */
static int exponent_above(float m)
{
    int e = 0;
    if (m > 0.0f)
        frexpf(m, &e);
    return e;
}

/* Elements per block: a block of acc stays in cache while every local lane
 * adds into it. */
#define BLOCK 4096

void allreduce_lanes_exact(float *out, float *const *lane_grads, int nlocal, int nlanes,
                           const size_t *off, int nbuckets, double *acc, float *bucket_max)
{
    for (int b = 0; b < nbuckets; b++) {
        int32_t m = 0;
        for (int l = 0; l < nlocal; l++) {
            int32_t ml = abs_max_bits(lane_grads[l] + off[b], off[b + 1] - off[b]);
            m = ml > m ? ml : m;
        }
        memcpy(&bucket_max[b], &m, sizeof m);
    }
    comm_max_float(bucket_max, (size_t)nbuckets); /* non-negative: float order = bit order */

    const int headroom = ceil_log2(nlanes);
    for (int b = 0; b < nbuckets; b++) {
        size_t lo = off[b], hi = off[b + 1];
        float m = bucket_max[b];
        if (!isfinite(m)) {
            for (size_t i = lo; i < hi; i++)
                acc[i] = NAN; /* the loss shows it too, and training stops */
            continue;
        }
        const double scale = ldexp(1.0, 51 - headroom - exponent_above(m));
        for (size_t i0 = lo; i0 < hi; i0 += BLOCK) {
            size_t n = hi - i0 < BLOCK ? hi - i0 : BLOCK;
            memset(acc + i0, 0, n * sizeof *acc);
            for (int l = 0; l < nlocal; l++)
                add_quantized(acc + i0, lane_grads[l] + i0, n, scale);
        }
    }
    comm_sum_double(acc, off[nbuckets]);
    for (int b = 0; b < nbuckets; b++) {
        float m = bucket_max[b];
        int e = isfinite(m) ? exponent_above(m) : 0;
        dequantize(out + off[b], acc + off[b], off[b + 1] - off[b], ldexp(1.0, -(51 - headroom - e)));
    }
}
