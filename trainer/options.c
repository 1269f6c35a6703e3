#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void opt_normalize(char *key)
{
    for (char *p = key; *p; p++)
        if (*p == '_')
            *p = '-';
}

const opt_spec *opt_find(const opt_group *g, const char *name)
{
    char k[64];
    if (strlen(name) >= sizeof k)
        return NULL;
    snprintf(k, sizeof k, "%s", name);
    opt_normalize(k);
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->v[i].name, k) == 0)
            return &g->v[i];
    return NULL;
}

static int only_space(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return *s == 0;
}

static int set_bool(int *p, const opt_spec *o, const char *value, int loud)
{
    if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) {
        *p = 1;
        return 0;
    }
    if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no")) {
        *p = 0;
        return 0;
    }
    if (loud)
        fprintf(stderr, "trainer: --%s: \"%s\" is not a boolean (1/0, true/false)\n", o->name,
                value);
    return -1;
}

int opt_set(void *base, const opt_spec *o, const char *value, int loud)
{
    char *p = (char *)base + o->offset;
    if (o->type == OPT_STR) {
        size_t len = strlen(value);
        if (len >= o->size) {
            if (loud)
                fprintf(stderr, "trainer: --%s: value longer than %zu characters\n", o->name,
                        o->size - 1);
            return -1;
        }
        memcpy(p, value, len + 1);
        return 0;
    }
    if (o->type == OPT_BOOL)
        return set_bool((int *)p, o, value, loud);
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (end == value || !only_space(end) || errno != 0 || !isfinite(v)) {
        if (loud)
            fprintf(stderr, "trainer: --%s: \"%s\" is not a number\n", o->name, value);
        return -1;
    }
    if ((o->type == OPT_INT || o->type == OPT_LONG) && v != floor(v)) {
        if (loud)
            fprintf(stderr, "trainer: --%s: \"%s\" is not a whole number\n", o->name, value);
        return -1;
    }
    if (v < o->min || v > o->max) {
        if (loud)
            fprintf(stderr, "trainer: --%s: %s is out of range, expected %g to %g\n", o->name,
                    value, o->min, o->max);
        return -1;
    }
    if (o->type == OPT_INT)
        *(int *)p = (int)v;
    else if (o->type == OPT_LONG)
        *(long *)p = (long)v;
    else
        *(double *)p = v;
    return 0;
}

void opt_format(const void *base, const opt_spec *o, char *buf, size_t size)
{
    const char *p = (const char *)base + o->offset;
    switch (o->type) {
    case OPT_STR: snprintf(buf, size, "%s", p); break;
    case OPT_BOOL:
    case OPT_INT: snprintf(buf, size, "%d", *(const int *)p); break;
    case OPT_LONG: snprintf(buf, size, "%ld", *(const long *)p); break;
    case OPT_DOUBLE: snprintf(buf, size, "%.17g", *(const double *)p); break;
    }
}

int opt_usage(const opt_group *g, unsigned cmd)
{
    int n = 0;
    for (int i = 0; i < g->n; i++) {
        const opt_spec *o = &g->v[i];
        if (!(o->commands & cmd))
            continue;
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->name, o->type == OPT_BOOL ? "" : " V");
        printf("  %-22s %s (default: %s)\n", left, o->help, *o->def ? o->def : "none");
        n++;
    }
    return n;
}

int cfg_list_set(cfg_list *l, const char *key, const char *value)
{
    cfg_entry e;
    if (strlen(key) >= sizeof e.key || strlen(value) >= sizeof e.value) {
        fprintf(stderr, "trainer: setting \"%.40s\" is too long (key %zu, value %zu characters)\n",
                key, strlen(key), strlen(value));
        return -1;
    }
    snprintf(e.key, sizeof e.key, "%s", key);
    opt_normalize(e.key);
    snprintf(e.value, sizeof e.value, "%s", value);
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->e[i].key, e.key) == 0) {
            l->e[i] = e;
            return 0;
        }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        cfg_entry *grown = realloc(l->e, (size_t)cap * sizeof *grown);
        if (!grown) {
            fprintf(stderr, "trainer: out of memory for settings\n");
            return -1;
        }
        l->e = grown;
        l->cap = cap;
    }
    l->e[l->n++] = e;
    return 0;
}

const char *cfg_list_get(const cfg_list *l, const char *key)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->e[i].key, key) == 0)
            return l->e[i].value;
    return NULL;
}

void cfg_list_free(cfg_list *l)
{
    free(l->e);
    memset(l, 0, sizeof *l);
}
