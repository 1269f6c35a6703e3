/* Matrix products with one fixed order of operations per output element.
 *
 * OpenBLAS picks its blocking, its kernels and its summation order from
 * the shapes, the thread count and the CPU, so a row's result changes with
 * the number of rows in the call: exact training could only run lanes one
 * by one through it. Here every output element is one chain of fused
 * multiply-adds over k in increasing order, starting from zero, and nothing
 * else: the vector registers run across rows and columns, never across k.
 * An element's bits therefore depend on its own row of A and column of B
 * only: not on M or N, not on the tile it falls in, not on the thread, and
 * not on the CPU (AVX-512, AVX2 and the scalar path give the same bits; the
 * scalar path is for CPUs without FMA, and slow).
 *
 * Shapes: C[M, N] = A[M, K] . B[K, N]. B is row-major with row stride ldb
 * (ldb 0: every row is the same row). A's element (i, k) is
 * a[i * ars + k * aks], so A may be read transposed without a copy. */
#ifndef TRAINER_GEMM_H
#define TRAINER_GEMM_H

/* C = A . B, or C += A . B with accumulate (the product first, then
 * added). */
void gemm_fixed(int M, int N, int K, const float *a, long ars, long aks, const float *b, long ldb,
                float *c, long ldc, int accumulate);

/* C = (or with accumulate, C +=) the sum over nseg segments of k (each
 * K / nseg long, in order) of A_s . B_s, the segments' products added in a
 * fixed binary tree: the positions 2j and 2j+1 first, then pairs of pairs,
 * and so on. nseg must be a power of two dividing K. A rank that holds a
 * subtree of the positions computes that subtree's sum with the same bits
 * as a rank holding all. */
void gemm_fixed_tree(int M, int N, int K, int nseg, const float *a, long ars, long aks,
                     const float *b, long ldb, float *c, long ldc, int accumulate);

/* Which code path runs: "avx512", "avx2" or "scalar". gemm_force selects
 * one (for the test that they agree); it returns -1 when the CPU cannot run
 * it. */
const char *gemm_path(void);
int gemm_force(const char *name);

#endif
