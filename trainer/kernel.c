#include "kernel.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Marks a process that this program already ran again: the kernel it
 * replaced, and a guard against doing it twice. */
#define REEXEC_VAR "TRAINER_KERNEL_UPGRADED_FROM"

/* OpenBLAS 0.3.21's x86-64 kernels by what they need, best first. */
static const struct {
    const char *name;
    int rank;
} KERNELS[] = {
    {"SapphireRapids", 5}, {"Cooperlake", 5}, {"SkylakeX", 4}, {"Zen", 3},  {"Haswell", 3},
    {"Sandybridge", 2},    {"Nehalem", 1},    {"Core2", 1},    {"Penryn", 1}, {"Prescott", 0},
};

static int rank_of(const char *name)
{
    for (size_t i = 0; i < sizeof KERNELS / sizeof KERNELS[0]; i++)
        if (!strcasecmp(KERNELS[i].name, name))
            return KERNELS[i].rank;
    return -1; /* unknown: never "upgraded" */
}

const char *kernel_best_for_cpu(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
    if (__builtin_cpu_supports("avx"))
        return "Sandybridge";
    if (__builtin_cpu_supports("sse4.2"))
        return "Nehalem";
    return "Prescott";
}

const char *kernel_name(void)
{
    const char *fake = getenv("TRAINER_FAKE_KERNEL");
    return fake && *fake ? fake : openblas_get_corename();
}

void kernel_upgrade(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv(REEXEC_VAR))
        return;
    const char *now = kernel_name(), *best = kernel_best_for_cpu();
    if (rank_of(now) < 0 || rank_of(now) >= rank_of(best))
        return;
    if (setenv("OPENBLAS_CORETYPE", best, 1) != 0 || setenv(REEXEC_VAR, now, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* could not run itself again: go on with the kernel there is */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(REEXEC_VAR);
}

const char *kernel_story(void)
{
    static char story[160];
    const char *from = getenv(REEXEC_VAR), *set = getenv("OPENBLAS_CORETYPE");
    if (from)
        snprintf(story, sizeof story,
                 "%s (OpenBLAS chose %s for this CPU; run again with OPENBLAS_CORETYPE=%s)",
                 kernel_name(), from, set ? set : "?");
    else if (set)
        snprintf(story, sizeof story, "%s (OPENBLAS_CORETYPE=%s set by the environment)",
                 kernel_name(), set);
    else
        snprintf(story, sizeof story, "%s", kernel_name());
    return story;
}
