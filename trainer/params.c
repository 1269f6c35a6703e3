#include "params.h"

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

void params_bucket_offsets(const param_table *t, size_t *off)
{
    for (int i = 0; i < t->n; i++)
        off[i] = t->v[i].offset;
    off[t->n] = t->total;
}
