#include "kernel.h"

#include <cblas.h>
#include <cpuid.h>
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

/* CPUID leaf 7's feature bits, read directly: the compilers' builtins
 * (GCC's, clang 14's) do not all know AVX512_BF16 and AMX. */
static int cpuid7(unsigned sub, int reg, int bit)
{
    unsigned r[4] = {0, 0, 0, 0};
    if (!__get_cpuid_count(7, sub, &r[0], &r[1], &r[2], &r[3]))
        return 0;
    return (int)((r[reg] >> bit) & 1u);
}

/* What OpenBLAS 0.3.21's own choice (driver/others/dynamic.c) would be on
 * a CPU it knows: AVX512_BF16 takes Cooperlake (Intel's Cooper Lake, AMD's
 * Zen 4 and 5), with AMX-BF16 too Sapphire Rapids (a Debian build without
 * that kernel loads Cooperlake for the name); the AVX-512 foundation takes
 * SkylakeX; AVX2 with FMA takes Zen on AMD and Haswell elsewhere. */
const char *kernel_best_for_cpu(void)
{
    enum { EAX, EBX, ECX, EDX };
    __builtin_cpu_init();
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                       __builtin_cpu_supports("avx512cd");
    if (avx512 && cpuid7(1, EAX, 5)) /* AVX512_BF16 */
        return cpuid7(0, EDX, 22) ? "SapphireRapids" : "Cooperlake"; /* AMX-BF16 */
    if (avx512)
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return __builtin_cpu_is("amd") ? "Zen" : "Haswell";
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

/* The value of /proc/cpuinfo's first line named key, or "". */
static void cpuinfo(FILE *f, const char *key, char *out, size_t size)
{
    char line[512];
    out[0] = 0;
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (!colon || strncmp(line, key, strlen(key)) != 0 || !strchr(" \t", line[strlen(key)]))
            continue;
        snprintf(out, size, "%s", colon[1] == ' ' ? colon + 2 : colon + 1);
        out[strcspn(out, "\n")] = 0;
        return;
    }
}

const char *kernel_cpu_model(void)
{
    static char model[200] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return model;
    char name[128], family[16], number[16];
    cpuinfo(f, "model name", name, sizeof name);
    cpuinfo(f, "cpu family", family, sizeof family);
    cpuinfo(f, "model", number, sizeof number);
    fclose(f);
    snprintf(model, sizeof model, "%s (family %s model %s)", name[0] ? name : "unknown",
             family[0] ? family : "?", number[0] ? number : "?");
    return model;
}
