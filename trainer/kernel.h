/* The OpenBLAS kernel: which one runs, which one this CPU could run, and
 * getting the better one.
 *
 * OpenBLAS picks its kernel when the library loads; an OpenBLAS older than
 * the CPU (Debian 12's 0.3.21 on a Sapphire Rapids Xeon) falls back to its
 * generic Prescott kernel, several times slower. The program then runs
 * itself again, before MPI_Init, with OPENBLAS_CORETYPE set to the best
 * kernel the CPU's features allow, and says so. An OPENBLAS_CORETYPE that
 * the user or the site set is never changed, only reported. Every rank must
 * run the same kernel for the exact reduction's promise (the kernel rounds
 * the matrix products); train checks that at start. */
#ifndef TRAINER_KERNEL_H
#define TRAINER_KERNEL_H

/* Called first in main, before MPI_Init: re-executes the program with a
 * better kernel when OpenBLAS chose a weaker one than the CPU can run and
 * OPENBLAS_CORETYPE is not set. Returns only when it does not re-execute. */
void kernel_upgrade(char **argv);

/* The kernel OpenBLAS runs (TRAINER_FAKE_KERNEL, for tests, pretends
 * another), and a line of how it came to be: "SkylakeX",
 * "SkylakeX (OPENBLAS_CORETYPE set by the environment)", "SkylakeX
 * (OpenBLAS chose Prescott for this CPU; run again with
 * OPENBLAS_CORETYPE=SkylakeX)". */
const char *kernel_name(void);
const char *kernel_story(void);

/* The best kernel of Debian's OpenBLAS 0.3.21 that this CPU's features
 * allow. */
const char *kernel_best_for_cpu(void);

/* The CPU's model name, as /proc/cpuinfo gives it ("unknown" without it):
 * for the figures a program prints. */
const char *kernel_cpu_model(void);

#endif
