#include "metrics.h"

#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The step of a line written by metrics_write, or -1. */
static long line_step(const char *line)
{
    const char *p = strstr(line, "\"step\": ");
    return p ? strtol(p + 8, NULL, 10) : -1;
}

/* Keeps the lines of steps <= last: through PATH.tmp, renamed over PATH. */
static int cut_back(const char *path, long last)
{
    FILE *in = fopen(path, "r");
    if (!in)
        return errno == ENOENT ? 0 : -1;
    char tmp[CFG_PATH + 48];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) > 0) {
        long s = line_step(line);
        if (s >= 0 && s <= last && strchr(line, '\n')) /* a whole line of a step kept */
            fputs(line, out);
    }
    free(line);
    int bad = ferror(in) != 0;
    fclose(in);
    bad |= fclose(out) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

int metrics_open(metrics *m, const char *run_dir, long resumed_step)
{
    char path[CFG_PATH + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    m->f = NULL;
    if (resumed_step >= 0 && cut_back(path, resumed_step) != 0) {
        fprintf(stderr, "trainer: %s: cannot cut back to step %ld: %s\n", path, resumed_step,
                strerror(errno));
        return -1;
    }
    m->f = fopen(path, resumed_step >= 0 ? "a" : "w");
    if (!m->f) {
        fprintf(stderr, "trainer: %s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

void metrics_close(metrics *m)
{
    if (m->f)
        fclose(m->f);
    m->f = NULL;
}

void metrics_write(metrics *m, const char *kind, long step, const metric *v, int n)
{
    if (!m->f)
        return;
    fprintf(m->f, "{\"kind\": \"%s\", \"step\": %ld", kind, step);
    for (int i = 0; i < n; i++) {
        if (isfinite(v[i].value))
            fprintf(m->f, ", \"%s\": %.10g", v[i].key, v[i].value);
        else
            fprintf(m->f, ", \"%s\": null", v[i].key);
    }
    fputs("}\n", m->f);
    fflush(m->f);
}
