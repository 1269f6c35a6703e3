#include "chrf.h"

#include <stdlib.h>
#include <string.h>

/* The code points of s, spaces and other ASCII whitespace left out, into
 * cp (room for n); returns how many. */
static size_t code_points(const uint8_t *s, size_t n, uint32_t *cp)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        const uint8_t c = s[i];
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        if (i + (size_t)len > n)
            len = 1;
        for (int j = 1; j < len; j++)
            if ((s[i + (size_t)j] & 0xc0) != 0x80)
                len = 1; /* not a sequence: the byte alone */
        uint32_t v = c;
        for (int j = 1; j < len; j++)
            v = v << 8 | s[i + (size_t)j];
        i += (size_t)len;
        if (len == 1 && (c == ' ' || c == '\t' || c == '\n' || c == '\r'))
            continue;
        cp[k++] = v;
    }
    return k;
}

static int by_value(const void *a, const void *b)
{
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sorted 64-bit hashes of the order-n n-grams of cp[0, k). */
static size_t ngrams(const uint32_t *cp, size_t k, int n, uint64_t *out)
{
    if (k < (size_t)n)
        return 0;
    const size_t m = k - (size_t)n + 1;
    for (size_t i = 0; i < m; i++) {
        uint64_t h = 0xcbf29ce484222325ull;
        for (int j = 0; j < n; j++)
            h = (h ^ cp[i + (size_t)j]) * 0x100000001b3ull;
        out[i] = h;
    }
    qsort(out, m, sizeof *out, by_value);
    return m;
}

void chrf_add(chrf_stats *s, const uint8_t *hyp, size_t nh, const uint8_t *ref, size_t nr)
{
    uint32_t *ch = malloc((nh + 1) * sizeof *ch), *cr = malloc((nr + 1) * sizeof *cr);
    uint64_t *gh = malloc((nh + 1) * sizeof *gh), *gr = malloc((nr + 1) * sizeof *gr);
    if (!ch || !cr || !gh || !gr) {
        free(ch), free(cr), free(gh), free(gr);
        return;
    }
    const size_t kh = code_points(hyp, nh, ch), kr = code_points(ref, nr, cr);
    for (int n = 1; n <= CHRF_ORDER; n++) {
        const size_t a = ngrams(ch, kh, n, gh), b = ngrams(cr, kr, n, gr);
        size_t i = 0, j = 0, match = 0;
        while (i < a && j < b) { /* sorted: equal hashes pair off */
            if (gh[i] == gr[j])
                match++, i++, j++;
            else if (gh[i] < gr[j])
                i++;
            else
                j++;
        }
        s->match[n - 1] += (double)match;
        s->hyp[n - 1] += (double)a;
        s->ref[n - 1] += (double)b;
    }
    free(ch), free(cr), free(gh), free(gr);
}

double chrf_score(const chrf_stats *s)
{
    double p = 0.0, r = 0.0;
    for (int n = 0; n < CHRF_ORDER; n++) {
        p += s->hyp[n] > 0 ? s->match[n] / s->hyp[n] : 0.0;
        r += s->ref[n] > 0 ? s->match[n] / s->ref[n] : 0.0;
    }
    p /= CHRF_ORDER;
    r /= CHRF_ORDER;
    const double b2 = 4.0; /* beta 2 */
    return p + r > 0 ? 100.0 * (1.0 + b2) * p * r / (b2 * p + r) : 0.0;
}
