/* The plot command: the training and validation loss of one or several runs
 * on shared axes, from their metrics.jsonl files, drawn by gnuplot (Debian's
 * gnuplot-nox; the README says why gnuplot) into a PNG. */
#include "train.h"

#include "config.h"
#include "util.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* A number after "key": in one of metrics_write's lines; 0 when absent. */
static int number_after(const char *line, const char *key, double *v)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    if (!p || !strncmp(p + strlen(pat), "null", 4))
        return 0;
    *v = strtod(p + strlen(pat), NULL);
    return 1;
}

/* RUN_DIR/metrics.jsonl into two data files: step and training loss,
 * step and validation loss. Returns how many points, or -1 after a line. */
static int extract(const char *run_dir, const char *train, const char *eval)
{
    char path[CFG_PATH + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(stderr, "trainer: %s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    FILE *ft = fopen(train, "w"), *fe = fopen(eval, "w");
    char *line = NULL;
    size_t cap = 0;
    int points = 0;
    while (ft && fe && getline(&line, &cap, in) > 0) {
        double step, v;
        if (!number_after(line, "step", &step))
            continue;
        if (strstr(line, "\"kind\": \"train\"") && number_after(line, "loss", &v))
            fprintf(ft, "%.0f %.10g\n", step, v), points++;
        else if (number_after(line, "eval_loss", &v))
            fprintf(fe, "%.0f %.10g\n", step, v), points++;
    }
    free(line);
    fclose(in);
    int ok = ft && fe;
    ok &= ft && fclose(ft) == 0;
    ok &= fe && fclose(fe) == 0;
    if (!ok) {
        fprintf(stderr, "trainer: plot: cannot write its data files\n");
        return -1;
    }
    return points;
}

static int run_gnuplot(const char *script)
{
    char *args[] = {"gnuplot", (char *)script, NULL};
    pid_t pid;
    int status = 0;
    if (posix_spawnp(&pid, "gnuplot", NULL, NULL, args, environ) != 0) {
        fprintf(stderr, "trainer: plot needs gnuplot (apt-get install gnuplot-nox)\n");
        return -1;
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "trainer: plot: gnuplot failed (status %d)\n", status);
        return -1;
    }
    return 0;
}

static void usage(void)
{
    printf("usage: trainer plot RUN_DIR [RUN_DIR ...] --out FILE.png [--title TEXT]\n\n"
           "The training loss (lines) and validation loss (points) of the runs, from their\n"
           "metrics.jsonl, on shared axes; the legend names the runs. Needs gnuplot.\n");
}

/* The gnuplot script: one line and one set of points per run. */
static int write_script(const char *script, const char *dir, char **runs, int nruns,
                        const char *out, const char *title)
{
    FILE *f = fopen(script, "w");
    if (!f)
        return -1;
    fprintf(f, "set terminal pngcairo size 1000,600 font ',11'\nset output '%s'\n", out);
    fprintf(f, "set title '%s'\nset xlabel 'step'\nset ylabel 'loss, nats per loss unit'\n",
            title);
    fprintf(f, "set grid\nset key top right\nset logscale y\nplot ");
    for (int i = 0; i < nruns; i++)
        fprintf(f,
                "%s'%s/t%d' using 1:2 with lines lw 2 lc %d title '%s (train)', "
                "'%s/e%d' using 1:2 with linespoints pt 7 ps 1.2 lc %d dt 2 title '%s (validation)'",
                i ? ", " : "", dir, i, i + 1, runs[i], dir, i, i + 1, runs[i]);
    fprintf(f, "\n");
    return fclose(f) == 0 ? 0 : -1;
}

int cmd_plot(int argc, char **argv)
{
    const char *out = NULL, *title = "trainer runs";
    char *runs[64];
    int nruns = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return EXIT_DONE;
        } else if ((!strcmp(argv[i], "--out") || !strcmp(argv[i], "--title")) && i + 1 < argc) {
            *(argv[i][2] == 'o' ? &out : &title) = argv[i + 1];
            i++;
        } else if (argv[i][0] == '-' || nruns == 64) {
            fprintf(stderr, "trainer: plot: unexpected \"%s\" (see trainer plot --help)\n", argv[i]);
            return EXIT_BAD_INPUT;
        } else {
            runs[nruns++] = argv[i];
        }
    }
    if (!out || nruns == 0 || strchr(out, '\'') || strchr(title, '\'')) {
        fprintf(stderr, "trainer: plot: give run folders and --out FILE.png (no quotes in names)\n");
        return EXIT_BAD_INPUT;
    }
    char dir[] = "/tmp/trainer-plot-XXXXXX", script[64], t[64], e[64];
    if (!mkdtemp(dir)) {
        fprintf(stderr, "trainer: plot: cannot make a scratch folder: %s\n", strerror(errno));
        return EXIT_INTERNAL;
    }
    int status = EXIT_DONE;
    for (int i = 0; i < nruns && status == EXIT_DONE; i++) {
        snprintf(t, sizeof t, "%s/t%d", dir, i);
        snprintf(e, sizeof e, "%s/e%d", dir, i);
        int points = strchr(runs[i], '\'') ? -2 : extract(runs[i], t, e);
        if (points == -2)
            fprintf(stderr, "trainer: plot: %s: no quotes in run names\n", runs[i]);
        else if (points == 0)
            fprintf(stderr, "trainer: %s/metrics.jsonl: no losses to plot\n", runs[i]);
        if (points <= 0)
            status = EXIT_BAD_INPUT;
    }
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    if (status == EXIT_DONE &&
        (write_script(script, dir, runs, nruns, out, title) != 0 || run_gnuplot(script) != 0))
        status = EXIT_INTERNAL;
    if (status == EXIT_DONE)
        printf("plot: %d run(s) -> %s\n", nruns, out);
    for (int i = 0; i < nruns; i++) {
        snprintf(t, sizeof t, "%s/t%d", dir, i);
        snprintf(e, sizeof e, "%s/e%d", dir, i);
        remove(t);
        remove(e);
    }
    remove(script);
    rmdir(dir);
    return status;
}
