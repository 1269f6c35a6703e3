/* The CPU's peak: what MFU divides by.
 *
 * A core's peak for float arithmetic is its FMA width x 2 x the FMA units x
 * the clock. The width comes from the CPU's features, but the number of
 * FMA units and the clock (turbo, a virtual machine's share) do not, so the
 * peak is measured: one thread runs independent fused multiply-adds in
 * registers (more of them than the FMA latency times the units, so that
 * nothing waits), nothing else, at the widest width the CPU has. No code
 * does more float arithmetic per second on that core, sgemm included: MFU
 * against it cannot exceed 100%.
 *
 * A core that is busy with something else at that moment measures low, and
 * MFU would then read high. The best figure ever measured on this CPU is
 * kept in a small cache file ($XDG_CACHE_HOME/trainer/peak, or
 * ~/.cache/trainer/peak: one line per CPU model and width), and the larger
 * of it and today's is used. */
#include "peak.h"

#include "util.h"

#include <errno.h>
#include <immintrin.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROUNDS 3
#define SECONDS 0.01

/* FLOPs done by `iters` rounds of 24 vector FMAs of 16 floats. */
__attribute__((target("avx512f"), noinline)) static double fma_avx512(long iters)
{
    __m512 a[24], x = _mm512_set1_ps(1.0f + 1e-7f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 24; i++)
        a[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < iters; n++)
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) /* unrolled: 24 chains in registers */
            a[i] = _mm512_fmadd_ps(a[i], x, y);
    float sink = 0.0f;
    for (int i = 0; i < 24; i++)
        sink += _mm512_reduce_add_ps(a[i]);
    __asm__ volatile("" : : "x"(sink));
    return (double)iters * 24 * 16 * 2;
}

/* 12 chains of 8: the 16 AVX2 registers. */
__attribute__((target("avx2,fma"), noinline)) static double fma_avx2(long iters)
{
    __m256 a[12], x = _mm256_set1_ps(1.0f + 1e-7f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < iters; n++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], x, y);
    float s[8], sink = 0.0f;
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(s, a[i]);
        sink += s[0];
    }
    __asm__ volatile("" : : "x"(sink));
    return (double)iters * 12 * 8 * 2;
}

/* Without FMA: separate multiplies and adds of 4 floats (SSE2), 2 FLOPs per
 * lane per pair. */
static double mul_add_sse(long iters)
{
    __m128 a[8], x = _mm_set1_ps(1.0f + 1e-7f), y = _mm_set1_ps(1e-7f);
    for (int i = 0; i < 8; i++)
        a[i] = _mm_set1_ps((float)i);
    for (long n = 0; n < iters; n++)
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            a[i] = _mm_add_ps(_mm_mul_ps(a[i], x), y);
    float s[4], sink = 0.0f;
    for (int i = 0; i < 8; i++) {
        _mm_storeu_ps(s, a[i]);
        sink += s[0];
    }
    __asm__ volatile("" : : "x"(sink));
    return (double)iters * 8 * 4 * 2;
}

static double (*loop_for_cpu(const char **width))(long)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *width = "AVX-512 FMA";
        return fma_avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *width = "AVX2 FMA";
        return fma_avx2;
    }
    *width = "SSE";
    return mul_add_sse;
}

/* The best of ROUNDS runs of about SECONDS each, in FLOP/s. */
static double measure(double (*loop)(long))
{
    long iters = 1000;
    double best = 0.0;
    for (int r = 0; r < ROUNDS; r++) {
        double t0, t, flops;
        do {
            t0 = now_seconds();
            flops = loop(iters);
            t = now_seconds() - t0;
            if (t < SECONDS / 4)
                iters *= 4;
        } while (t < SECONDS / 4);
        best = flops / t > best ? flops / t : best;
    }
    return best;
}

static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            const char *v = strchr(line, ':') + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(out, size, "%s", v);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    fclose(f);
}

static int cache_path(char *out, size_t size, int make)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[PATH_MAX];
    if (xdg && xdg[0])
        snprintf(dir, sizeof dir, "%s/trainer", xdg);
    else if (home && home[0])
        snprintf(dir, sizeof dir, "%s/.cache/trainer", home);
    else
        return -1;
    if (make && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", dir);
        *strrchr(parent, '/') = 0;
        if (mkdir(parent, 0755) != 0 && errno != EEXIST)
            return -1;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -1;
    }
    return snprintf(out, size, "%s/peak", dir) < (int)size ? 0 : -1;
}

/* The cached figure for key, in FLOP/s, or 0. */
static double cached(const char *key)
{
    char path[PATH_MAX], line[1024];
    double best = 0.0;
    FILE *f = cache_path(path, sizeof path, 0) == 0 ? fopen(path, "r") : NULL;
    while (f && fgets(line, sizeof line, f)) {
        char *tab = strrchr(line, '\t');
        if (!tab)
            continue;
        *tab = 0;
        double v = strtod(tab + 1, NULL);
        if (!strcmp(line, key) && v > best && v < 1e14)
            best = v;
    }
    if (f)
        fclose(f);
    return best;
}

/* Keeps value for key: the file is written whole under another name and
 * renamed, so a reader never sees half of it. A cache that cannot be
 * written is no error: the peak is then today's. */
static void remember(const char *key, double value)
{
    char path[PATH_MAX], tmp[PATH_MAX + 32], line[1024];
    if (cache_path(path, sizeof path, 1) != 0)
        return;
    snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out)
        return;
    FILE *in = fopen(path, "r");
    while (in && fgets(line, sizeof line, in)) {
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", line);
        char *tab = strrchr(copy, '\t');
        if (tab && (*tab = 0, strcmp(copy, key) != 0))
            fputs(line, out);
    }
    if (in)
        fclose(in);
    fprintf(out, "%s\t%.0f\n", key, value);
    if (fclose(out) != 0 || rename(tmp, path) != 0)
        remove(tmp);
}

double peak_per_core(char *how, size_t size)
{
    const char *width;
    double (*loop)(long) = loop_for_cpu(&width);
    char model[256], key[320];
    cpu_model(model, sizeof model);
    snprintf(key, sizeof key, "%s, %s", model, width);
    const double now = measure(loop), before = cached(key);
    if (now > before)
        remember(key, now);
    const double best = now > before ? now : before;
    snprintf(how, size, "%.1f GFLOP/s a core (%s loop%s)", best / 1e9, width,
             now > before ? "" : ", the best measured here");
    return best;
}
