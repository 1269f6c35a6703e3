#include "params.h"

#include "philox.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

size_t params_add(param_table *t, const char *name, int ndim, size_t s0, size_t s1, int decay)
{
    if (t->n == PARAMS_MAX) {
        fprintf(stderr, "trainer: more than %d parameter tensors\n", PARAMS_MAX);
        return (size_t)-1;
    }
    param_view *v = &t->v[t->n++];
    snprintf(v->name, sizeof v->name, "%s", name);
    v->ndim = ndim;
    v->shape[0] = s0;
    v->shape[1] = ndim > 1 ? s1 : 1;
    v->numel = s0 * (ndim > 1 ? s1 : 1);
    v->offset = t->total;
    v->decay = decay;
    t->total += v->numel;
    return v->offset;
}

void params_add_linear(param_table *t, const char *name, int in, int out, int *w, int *b)
{
    char n[48];
    snprintf(n, sizeof n, "%s.weight", name);
    params_add(t, n, 2, (size_t)out, (size_t)in, 1);
    *w = t->n - 1;
    snprintf(n, sizeof n, "%s.bias", name);
    params_add(t, n, 1, (size_t)out, 0, 0);
    *b = t->n - 1;
}

void params_init_linear(const param_table *t, float *params, uint32_t seed)
{
    for (int i = 0; i < t->n; i++) {
        const param_view *v = &t->v[i];
        /* fan_in of a bias is that of its weight, the tensor just before it */
        size_t fan_in = v->ndim == 2 ? v->shape[1] : t->v[i - 1].shape[1];
        float bound = 1.0f / sqrtf((float)fan_in);
        float *p = params + v->offset;
        rng_uniforms(seed, RNG_STREAM_GLOBAL, RNG_INIT, (uint32_t)i, 0, p, v->numel);
        for (size_t j = 0; j < v->numel; j++)
            p[j] = (2.0f * p[j] - 1.0f) * bound;
    }
}

void params_bucket_offsets(const param_table *t, size_t *off)
{
    for (int i = 0; i < t->n; i++)
        off[i] = t->v[i].offset;
    off[t->n] = t->total;
}
