/* Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11).
 *
 * A draw is a pure function of (key, counter). The key is (run seed, stream
 * id); the counter is (purpose, a, b, c). Every use of randomness has its own
 * purpose, so adding a new use never shifts the draws of an old one, and any
 * draw can be recomputed from its coordinates alone: a checkpoint only has to
 * store the step. */
#ifndef TRAINER_PHILOX_H
#define TRAINER_PHILOX_H

#include <stddef.h>
#include <stdint.h>

enum rng_purpose {
    RNG_INIT = 1,    /* weight initialisation: a = tensor index, b = block */
    RNG_ORDER = 2,   /* data order: a = epoch, b = position */
    RNG_EPS = 3,     /* VAE eps: a = step, b = row within the lane */
    RNG_DROPOUT = 4, /* dropout masks: a = step, b = row, c = site */
    RNG_SAMPLE = 5,  /* text sampling: a = position */
    RNG_EVAL = 6,    /* evaluation eps: a = shard, b = sample */
    RNG_WINDOW = 7,  /* language-model window offsets: a = step, b = row */
};

/* Stream ids at or above this value are not lanes. */
#define RNG_STREAM_GLOBAL 0xffff0000u

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* One block of four 32-bit words at the given coordinates. */
void rng_block(uint32_t seed, uint32_t stream, uint32_t purpose, uint32_t a, uint32_t b,
               uint32_t c, uint32_t out[4]);

/* n standard normals (Box-Muller, both outputs used, in order) taken from
 * the blocks c = 0, 1, ... at (seed, stream, purpose, a, b). */
void rng_normals(uint32_t seed, uint32_t stream, uint32_t purpose, uint32_t a, uint32_t b,
                 float *out, size_t n);

/* n uniforms in [0, 1) from the blocks c = 0, 1, ... */
void rng_uniforms(uint32_t seed, uint32_t stream, uint32_t purpose, uint32_t a, uint32_t b,
                  float *out, size_t n);

/* An integer in [0, n) from one 32-bit word (bias below n / 2^32). */
static inline uint32_t rng_below(uint32_t word, uint32_t n)
{
    return (uint32_t)(((uint64_t)word * n) >> 32);
}

/* Fisher-Yates permutation of 0..n-1 for (seed, stream, RNG_ORDER, epoch). */
void rng_permutation(uint32_t seed, uint32_t stream, uint32_t epoch, uint32_t *perm, uint32_t n);

#endif
