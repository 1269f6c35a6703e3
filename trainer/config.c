#include "config.h"

#include "model.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TR CMD_TRAIN
#define C(field, name, kind, def, cmds, min, max, help)                                           \
    OPT(config, field, name, kind, def, cmds, min, max, help)
static const opt_spec COMMON[] = {
    C(model, "model", OPT_STR, "vae", TR, 0, 0, "the model to train (trainer --help lists them)"),
    C(data, "data", OPT_STR, "data/fmnist", TR | CMD_EVAL | CMD_SAMPLE | CMD_SCORE, 0, 0,
      "folder of shard files"),
    C(run_dir, "run-dir", OPT_STR, "runs/default", TR, 0, 0,
      "folder for checkpoint.h5 and the run's outputs"),
    C(resume, "resume", OPT_STR, "", TR, 0, 0,
      "checkpoint to resume from; 'auto' = RUN_DIR/checkpoint.h5 if it exists"),
    C(checkpoint, "checkpoint", OPT_STR, "", CMD_EVAL | CMD_SAMPLE, 0, 0,
      "checkpoint to evaluate or sample from"),
    C(steps, "steps", OPT_LONG, "0", TR, 0, 1e12, "optimizer steps in all (0: use --epochs)"),
    C(stop_at, "stop-at", OPT_LONG, "0", TR, 0, 1e12,
      "stop after this step as if signalled: checkpoint, exit 75 (0: run to the end)"),
    C(epochs, "epochs", OPT_DOUBLE, "10", TR, 0, 1e6, "passes over the training set"),
    C(batch, "batch", OPT_INT, "128", TR, 1, 1 << 20, "global batch: images, or sequences"),
    C(lanes, "lanes", OPT_INT, "8", TR, 1, 4096,
      "fixed split of the global batch; -np must divide it"),
    C(micro_steps, "micro-steps", OPT_INT, "1", TR, 1, 4096,
      "gradient accumulation: passes per optimizer step"),
    C(lr, "lr", OPT_DOUBLE, "1e-3", TR, 1e-12, 10, "peak learning rate"),
    C(beta1, "beta1", OPT_DOUBLE, "0.9", TR, 0, 0.999999, "Adam beta1"),
    C(beta2, "beta2", OPT_DOUBLE, "0.999", TR, 0, 0.99999999, "Adam beta2"),
    C(adam_eps, "adam-eps", OPT_DOUBLE, "1e-8", TR, 1e-30, 1, "Adam epsilon"),
    C(weight_decay, "weight-decay", OPT_DOUBLE, "0", TR, 0, 10,
      "AdamW decoupled weight decay, matrices only"),
    C(grad_clip, "grad-clip", OPT_DOUBLE, "0", TR, 0, 1e9,
      "clip the global gradient norm to this, 0: off"),
    C(warmup, "warmup", OPT_INT, "0", TR, 0, 1e9, "linear warmup steps, then cosine decay"),
    C(min_lr_frac, "min-lr-frac", OPT_DOUBLE, "1", TR, 0, 1,
      "cosine decay ends at this fraction of lr, 1: constant"),
    C(seed, "seed", OPT_LONG, "1", CMD_RUN, 0, 4294967295.0, "run seed (0 to 2^32-1)"),
    C(log_every, "log-every", OPT_INT, "50", TR, 1, 1e9, "progress line every N steps"),
    C(eval_every, "eval-every", OPT_INT, "0", TR, 0, 1e9,
      "evaluate every N steps (0: only at the end)"),
    C(checkpoint_every, "checkpoint-every", OPT_INT, "1000", TR, 0, 1e9,
      "checkpoint every N steps (0: only at the end)"),
    C(reduce, "reduce", OPT_STR, "exact", TR, 0, 0,
      "exact (bitwise reproducible for any -np) or fast"),
    C(on_nonfinite, "on-nonfinite", OPT_STR, "stop", TR, 0, 0,
      "a NaN or infinite gradient or loss: stop (exit 1, the last checkpoint kept) or skip the "
      "step's update"),
    C(threads, "threads", OPT_INT, "0", CMD_RUN, 0, 1024,
      "threads per rank: lanes at once (exact) or BLAS threads (fast); 0: the rank's cores"),
    C(bucket_kb, "bucket-kb", OPT_INT, "-1", CMD_RUN, -1, 1048576,
      "exact, lane tree, several ranks: the gradient's sum over ranks goes in buckets of about "
      "this many KiB, each started as soon as the backward pass has finished it (the same bits "
      "for any size); 0: one sum after the pass; -1: 64 when the ranks span several nodes, "
      "else 0"),
    C(source, "source", OPT_STR, "fashion-mnist", CMD_PREPARE, 0, 0,
      "fashion-mnist, text, or parallel (verse pairs of two Bibles as diatheke prints them)"),
    C(input, "input", OPT_STR, "/usr/share/datasets/fashion-mnist", CMD_PREPARE, 0, 0,
      "IDX folder (fashion-mnist) or a file (text; parallel: the source language's)"),
    C(target, "target", OPT_STR, "", CMD_PREPARE, 0, 0,
      "parallel: the target language's text, paired with --input verse by verse"),
    C(max_tokens, "max-tokens", OPT_INT, "128", CMD_PREPARE, 2, 65535,
      "parallel: pairs longer than this many tokens a side (end token included) are left out"),
    C(out, "out", OPT_STR, "", CMD_PREPARE | CMD_SAMPLE, 0, 0,
      "prepare: folder for the shard files (data/fmnist or data/kjv...); sample: an .h5 file "
      "of generated images"),
    C(images, "images", OPT_STR, "", CMD_SCORE, 0, 0, "shard-format file of images to score"),
    C(classifier, "classifier", OPT_STR, "", CMD_SCORE, 0, 0,
      "checkpoint of a classifier: its features are the score's space"),
    C(shards, "shards", OPT_INT, "8", CMD_PREPARE, 1, 4096, "train shards (and test shards)"),
    C(tokens, "tokens", OPT_STR, "bytes", CMD_PREPARE, 0, 0,
      "text: bytes, or words (a vocabulary of the most frequent words, the rest <unk>)"),
    C(vocab, "vocab", OPT_INT, "10000", CMD_PREPARE, 2, 65535,
      "text with --tokens words: vocabulary size, <unk> included; parallel: the BPE's, bytes "
      "and specials included"),
};
#undef C
static const opt_group COMMON_GROUP = OPT_GROUP(COMMON, config);

const opt_group *config_common_options(void) { return &COMMON_GROUP; }

const char *config_command_name(enum command cmd)
{
    switch (cmd) {
    case CMD_PREPARE: return "prepare";
    case CMD_TRAIN: return "train";
    case CMD_EVAL: return "eval";
    case CMD_SAMPLE: return "sample";
    case CMD_SCORE: return "score";
    }
    return "?";
}

/* Every group of options there is: the common one, each task's (once), each
 * model's. Returns the count; out holds at most max. */
static int all_groups(const opt_group **out, int max)
{
    int n = 0;
    out[n++] = &COMMON_GROUP;
    for (int i = 0; i < model_count() && n + 2 <= max; i++) {
        if (model_first_of_task(i))
            out[n++] = &model_at(i)->task->opts;
        out[n++] = &model_at(i)->opts;
    }
    return n;
}

#define MAX_GROUPS 64

/* The option called key in any group that cmd takes, or NULL. */
static const opt_spec *find_any(const char *key, unsigned cmd)
{
    const opt_group *g[MAX_GROUPS];
    int ng = all_groups(g, MAX_GROUPS);
    for (int i = 0; i < ng; i++) {
        const opt_spec *o = opt_find(g[i], key);
        if (o && (o->commands & cmd))
            return o;
    }
    return NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = 0;
    return s;
}

static int read_config_file(const char *path, enum command cmd, cfg_list *out, int loud)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (loud)
            fprintf(stderr, "trainer: %s: cannot open config file: %s\n", path, strerror(errno));
        return -1;
    }
    char line[2048];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line), *eq = strchr(s, '=');
        if (!*s)
            continue;
        if (!eq) {
            if (loud)
                fprintf(stderr, "trainer: %s:%d: expected key = value, got \"%s\"\n", path, lineno,
                        s);
            rc = -1;
            break;
        }
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        if (!find_any(key, cmd)) {
            if (loud)
                fprintf(stderr, "trainer: %s:%d: unknown key \"%s\"\n", path, lineno, key);
            rc = -1;
        } else if (cfg_list_set(out, key, value) != 0) {
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        if (loud)
            fprintf(stderr, "trainer: %s: read error\n", path);
        rc = -1;
    }
    fclose(f);
    return rc;
}

/* getopt's table: every option cmd takes, each name once. */
static struct option *long_options(enum command cmd, const opt_spec ***specs)
{
    const opt_group *g[MAX_GROUPS];
    int ng = all_groups(g, MAX_GROUPS), total = 0;
    for (int i = 0; i < ng; i++)
        total += g[i]->n;
    struct option *lo = calloc((size_t)total + 3, sizeof *lo);
    *specs = calloc((size_t)total + 1, sizeof **specs);
    if (!lo || !*specs) {
        free(lo);
        free(*specs);
        return NULL;
    }
    int n = 0;
    for (int i = 0; i < ng; i++)
        for (int j = 0; j < g[i]->n; j++) {
            const opt_spec *o = &g[i]->v[j];
            int dup = 0;
            for (int k = 0; k < n; k++)
                dup |= !strcmp(lo[k].name, o->name);
            if (dup || !(o->commands & cmd))
                continue;
            (*specs)[n] = o;
            lo[n] = (struct option){o->name, o->type == OPT_BOOL ? optional_argument
                                                                 : required_argument,
                                    NULL, 1000 + n};
            n++;
        }
    lo[n++] = (struct option){"config", required_argument, NULL, 'c'};
    lo[n++] = (struct option){"help", no_argument, NULL, 'h'};
    return lo;
}

int config_parse_args(enum command cmd, int argc, char **argv, cfg_list *file, cfg_list *flags,
                      int loud)
{
    const opt_spec **specs = NULL;
    struct option *lo = long_options(cmd, &specs);
    if (!lo) {
        fprintf(stderr, "trainer: out of memory for the option table\n");
        return -1;
    }
    const char *config_file = NULL, *name = config_command_name(cmd);
    optind = 1;
    opterr = 0;
    int ch, rc = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (ch == 'h') {
            if (loud)
                config_usage(cmd);
            rc = 1;
        } else if (ch == 'c') {
            config_file = optarg;
        } else if (ch >= 1000) {
            rc = cfg_list_set(flags, specs[ch - 1000]->name, optarg ? optarg : "1");
        } else if (ch == ':') {
            if (loud)
                fprintf(stderr, "trainer: %s: %s needs a value\n", name, argv[optind - 1]);
            rc = -1;
        } else {
            if (loud)
                fprintf(stderr, "trainer: %s: unknown option %s (see trainer %s --help)\n", name,
                        argv[optind - 1], name);
            rc = -1;
        }
    }
    if (rc == 0 && optind < argc) {
        if (loud)
            fprintf(stderr, "trainer: %s: unexpected argument \"%s\" (options are --key value)\n",
                    name, argv[optind]);
        rc = -1;
    }
    if (rc == 0 && config_file)
        rc = read_config_file(config_file, cmd, file, loud);
    free(lo);
    free(specs);
    return rc;
}

static int set_defaults(void *base, const opt_group *g, int loud)
{
    for (int i = 0; i < g->n; i++)
        if (opt_set(base, &g->v[i], g->v[i].def, loud) != 0)
            return -1;
    return 0;
}

static int set_overrides(config *c, const char *const (*d)[2], int n, int loud)
{
    const model_type *mt = c->mt;
    const opt_group *g[3] = {&COMMON_GROUP, &mt->task->opts, &mt->opts};
    void *base[3] = {c, c->task_opts, c->model_opts};
    for (int i = 0; i < n; i++) {
        int done = 0;
        for (int k = 0; k < 3 && !done; k++) {
            const opt_spec *o = opt_find(g[k], d[i][0]);
            if (o && opt_set(base[k], o, d[i][1], loud) != 0)
                return -1;
            done = o != NULL;
        }
        if (!done) {
            fprintf(stderr, "trainer: %s: default for unknown option %s\n", mt->name, d[i][0]);
            return -1;
        }
    }
    return 0;
}

/* Why key is not an option of this run's model: whose it is (every model
 * that has it, or the task that does). */
static void explain_owner(const config *c, const char *key)
{
    char owners[256] = "";
    int n = 0, total = 0;
    for (int i = 0; i < model_count(); i++)
        total += opt_find(&model_at(i)->opts, key) != NULL;
    for (int i = 0; i < model_count(); i++) { /* "a", "a and b", "a, b and c" */
        const model_type *t = model_at(i);
        if (opt_find(&t->opts, key)) {
            snprintf(owners + strlen(owners), sizeof owners - strlen(owners), "%s%s",
                     n == 0 ? "" : n == total - 1 ? " and " : ", ", t->name);
            n++;
        }
    }
    if (n) {
        fprintf(stderr, "trainer: --%s is an option of the %s model%s, not of %s\n", key, owners,
                n > 1 ? "s" : "", c->mt->name);
        return;
    }
    for (int i = 0; i < model_count(); i++) {
        const model_type *t = model_at(i);
        if (opt_find(&t->task->opts, key)) {
            fprintf(stderr, "trainer: --%s is an option of the %s task (models like %s), not of %s\n",
                    key, t->task->name, t->name, c->mt->name);
            return;
        }
    }
}

static int apply_layer(config *c, const cfg_list *l, int loud)
{
    const opt_group *g[3] = {&COMMON_GROUP, &c->mt->task->opts, &c->mt->opts};
    void *base[3] = {c, c->task_opts, c->model_opts};
    for (int i = 0; i < l->n; i++) {
        const char *key = l->e[i].key;
        int k = 0;
        const opt_spec *o = NULL;
        for (; k < 3 && !o; k++)
            o = opt_find(g[k], key);
        if (!o) {
            if (!find_any(key, CMD_RUN | CMD_PREPARE))
                continue; /* a key from a checkpoint of a newer program */
            if (loud)
                explain_owner(c, key);
            return -1;
        }
        if (opt_set(base[k - 1], o, l->e[i].value, loud) != 0)
            return -1;
    }
    return 0;
}

/* v is a or b (or c, when c is not NULL). */
static int one_of3(const char *name, const char *v, const char *a, const char *b, const char *c,
                   int loud)
{
    if (!strcmp(v, a) || !strcmp(v, b) || (c && !strcmp(v, c)))
        return 0;
    if (loud && c)
        fprintf(stderr, "trainer: --%s: \"%s\", expected %s, %s or %s\n", name, v, a, b, c);
    else if (loud)
        fprintf(stderr, "trainer: --%s: \"%s\", expected %s or %s\n", name, v, a, b);
    return -1;
}

static int one_of(const char *name, const char *v, const char *a, const char *b, int loud)
{
    return one_of3(name, v, a, b, NULL, loud);
}

static int check_common(config *c, enum command cmd, int loud)
{
    if (one_of("reduce", c->reduce, "exact", "fast", loud) ||
        one_of("on-nonfinite", c->on_nonfinite, "stop", "skip", loud))
        return -1;
    if (cmd == CMD_PREPARE) {
        if (!c->out[0])
            snprintf(c->out, sizeof c->out, "%s",
                     !strcmp(c->source, "text")       ? "data/text"
                     : !strcmp(c->source, "parallel") ? "data/pairs"
                                                      : "data/fmnist");
        return one_of3("source", c->source, "fashion-mnist", "text", "parallel", loud) ||
               one_of("tokens", c->tokens, "bytes", "words", loud);
    }
    if (cmd != CMD_TRAIN)
        return 0;
    if (c->steps == 0 && c->epochs <= 0) {
        if (loud)
            fprintf(stderr, "trainer: --epochs: must be positive when --steps is 0\n");
        return -1;
    }
    if (c->batch % c->lanes != 0) {
        if (loud)
            fprintf(stderr, "trainer: --batch %d is not divisible by --lanes %d\n", c->batch,
                    c->lanes);
        return -1;
    }
    if ((c->batch / c->lanes) % c->micro_steps != 0) {
        if (loud)
            fprintf(stderr,
                    "trainer: --micro-steps %d does not divide the per-lane batch %d (batch %d / "
                    "lanes %d)\n",
                    c->micro_steps, c->batch / c->lanes, c->batch, c->lanes);
        return -1;
    }
    return 0;
}

const char *config_lookup(const cfg_list *const *layers, int nlayers, const char *key)
{
    const char *value = NULL;
    for (int l = 0; l < nlayers; l++) {
        const char *v = cfg_list_get(layers[l], key);
        value = v ? v : value;
    }
    const opt_spec *o = opt_find(&COMMON_GROUP, key);
    return value ? value : o ? o->def : "";
}

static void print_model_names(FILE *f)
{
    for (int i = 0; i < model_count(); i++)
        fprintf(f, "%s%s", i ? ", " : "", model_at(i)->name);
}

int config_build(config *c, enum command cmd, const cfg_list *const *layers, int nlayers,
                 int loud)
{
    memset(c, 0, sizeof *c);
    if (set_defaults(c, &COMMON_GROUP, loud) != 0)
        return -1;
    snprintf(c->model, sizeof c->model, "%s", config_lookup(layers, nlayers, "model"));
    c->mt = model_find(c->model);
    if (!c->mt) {
        if (loud) {
            fprintf(stderr, "trainer: --model: \"%s\" is not a model (", c->model);
            print_model_names(stderr);
            fprintf(stderr, ")\n");
        }
        return -1;
    }
    const model_type *mt = c->mt;
    c->task_opts = calloc(1, mt->task->opts.size + 1);
    c->model_opts = calloc(1, mt->opts.size + 1);
    if (!c->task_opts || !c->model_opts) {
        fprintf(stderr, "trainer: out of memory for the configuration\n");
        return -1;
    }
    if (set_defaults(c->task_opts, &mt->task->opts, loud) ||
        set_defaults(c->model_opts, &mt->opts, loud) ||
        set_overrides(c, mt->task->defaults, mt->task->ndefaults, loud) ||
        set_overrides(c, mt->defaults, mt->ndefaults, loud))
        return -1;
    for (int l = 0; l < nlayers; l++)
        if (apply_layer(c, layers[l], loud) != 0)
            return -1;
    if (check_common(c, cmd, loud) != 0)
        return -1;
    if (mt->task->check && mt->task->check(c, loud) != 0)
        return -1;
    return mt->check ? mt->check(c, loud) : 0;
}

void config_free(config *c)
{
    free(c->task_opts);
    free(c->model_opts);
    c->task_opts = c->model_opts = NULL;
}

static int list_group(const opt_group *g, const void *base, cfg_list *out)
{
    for (int i = 0; i < g->n; i++) {
        const opt_spec *o = &g->v[i];
        /* what this run does with the run, not what the run is */
        if (!(o->commands & CMD_TRAIN) || !strcmp(o->name, "resume") ||
            !strcmp(o->name, "stop-at"))
            continue;
        char v[CFG_PATH];
        opt_format(base, o, v, sizeof v);
        if (cfg_list_set(out, o->name, v) != 0)
            return -1;
    }
    return 0;
}

int config_to_list(const config *c, cfg_list *out)
{
    if (list_group(&COMMON_GROUP, c, out) || list_group(&c->mt->task->opts, c->task_opts, out) ||
        list_group(&c->mt->opts, c->model_opts, out))
        return -1;
    return 0;
}

void config_print(const config *c, const char *prefix)
{
    cfg_list l = {0};
    if (config_to_list(c, &l) == 0)
        for (int i = 0; i < l.n; i++)
            printf("%s%s = %s\n", prefix, l.e[i].key, l.e[i].value);
    cfg_list_free(&l);
}
