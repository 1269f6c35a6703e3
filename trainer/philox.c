#include "philox.h"

#include "nn/exactmath.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void philox_round(uint32_t x[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * x[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * x[2];
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k[0];
    uint32_t y1 = (uint32_t)p1;
    uint32_t y2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k[1];
    uint32_t y3 = (uint32_t)p0;
    x[0] = y0;
    x[1] = y1;
    x[2] = y2;
    x[3] = y3;
}

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(x, k);
    }
    for (int i = 0; i < 4; i++)
        out[i] = x[i];
}

void rng_block(uint32_t seed, uint32_t stream, uint32_t purpose, uint32_t a, uint32_t b,
               uint32_t c, uint32_t out[4])
{
    const uint32_t ctr[4] = {purpose, a, b, c};
    const uint32_t key[2] = {seed, stream};
    philox4x32_10(ctr, key, out);
}

/* (0, 1]: never zero, so the logarithm in Box-Muller is finite. */
static inline double open_unit(uint32_t w)
{
    return ((double)w + 1.0) * (1.0 / 4294967296.0);
}

void rng_normals(uint32_t seed, uint32_t stream, uint32_t purpose, uint32_t a, uint32_t b,
                 float *out, size_t n)
{
    uint32_t w[4];
    for (size_t i = 0; i < n; i += 4) {
        rng_block(seed, stream, purpose, a, b, (uint32_t)(i / 4), w);
        double r0 = sqrt(-2.0 * log_d(open_unit(w[0])));
        double r1 = sqrt(-2.0 * log_d(open_unit(w[2])));
        double s0, c0, s1, c1; /* of the angles 2 pi u, u = open_unit(w[1]), (w[3]) */
        sincos_turns_d(open_unit(w[1]), &s0, &c0);
        sincos_turns_d(open_unit(w[3]), &s1, &c1);
        double z[4] = {r0 * c0, r0 * s0, r1 * c1, r1 * s1};
        for (size_t j = 0; j < 4 && i + j < n; j++)
            out[i + j] = (float)z[j];
    }
}

void rng_uniforms(uint32_t seed, uint32_t stream, uint32_t purpose, uint32_t a, uint32_t b,
                  float *out, size_t n)
{
    uint32_t w[4];
    for (size_t i = 0; i < n; i += 4) {
        rng_block(seed, stream, purpose, a, b, (uint32_t)(i / 4), w);
        for (size_t j = 0; j < 4 && i + j < n; j++)
            out[i + j] = (float)(w[j] >> 8) * (1.0f / 16777216.0f);
    }
}

void rng_permutation(uint32_t seed, uint32_t stream, uint32_t epoch, uint32_t *perm, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    uint32_t w[4];
    for (uint32_t i = n; i > 1; i--) {
        uint32_t k = n - i; /* one draw per swap, counter = swap index */
        if (k % 4 == 0)
            rng_block(seed, stream, RNG_ORDER, epoch, k / 4, 0, w);
        uint32_t j = rng_below(w[k % 4], i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
