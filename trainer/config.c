#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { T_INT, T_LONG, T_DOUBLE, T_STR, T_BOOL };

#define RUN (CMD_TRAIN | CMD_EVAL | CMD_SAMPLE)
#define TR CMD_TRAIN

typedef struct {
    const char *name; /* flag --name; file key name or name_with_underscores */
    enum opt_type type;
    size_t offset;
    size_t size; /* for strings */
    const char *def;
    unsigned commands;
    double min, max; /* for numbers */
    const char *help;
} opt_spec;

#define O(f) offsetof(config, f), sizeof(((config *)0)->f)
static const opt_spec OPTS[] = {
    {"model", T_STR, O(model), "vae", TR, 0, 0, "vae or gpt"},
    {"data", T_STR, O(data), "data/fmnist", TR | CMD_EVAL, 0, 0,
     "folder of shard files (gpt default data/kjv)"},
    {"run-dir", T_STR, O(run_dir), "runs/default", TR, 0, 0,
     "folder for checkpoint.h5 and the run's outputs"},
    {"resume", T_STR, O(resume), "", TR, 0, 0,
     "checkpoint to resume from; 'auto' = RUN_DIR/checkpoint.h5 if it exists"},
    {"checkpoint", T_STR, O(checkpoint), "", CMD_EVAL | CMD_SAMPLE, 0, 0,
     "checkpoint to evaluate or sample from"},
    {"steps", T_LONG, O(steps), "0", TR, 0, 1e12,
     "optimizer steps in all (0: use --epochs; gpt default 600)"},
    {"stop-at", T_LONG, O(stop_at), "0", TR, 0, 1e12,
     "stop after this step as if signalled: checkpoint, exit 75 (0: run to the end)"},
    {"epochs", T_DOUBLE, O(epochs), "10", TR, 0, 1e6, "passes over the training set"},
    {"batch", T_INT, O(batch), "128", TR, 1, 1 << 20,
     "global batch: samples, or sequences (gpt default 32)"},
    {"lanes", T_INT, O(lanes), "8", TR, 1, 4096,
     "fixed split of the global batch; -np must divide it"},
    {"micro-steps", T_INT, O(micro_steps), "1", TR, 1, 4096,
     "gradient accumulation: passes per optimizer step"},
    {"lr", T_DOUBLE, O(lr), "1e-3", TR, 1e-12, 10, "peak learning rate"},
    {"beta1", T_DOUBLE, O(beta1), "0.9", TR, 0, 0.999999, "Adam beta1"},
    {"beta2", T_DOUBLE, O(beta2), "0.999", TR, 0, 0.99999999, "Adam beta2 (gpt default 0.95)"},
    {"adam-eps", T_DOUBLE, O(adam_eps), "1e-8", TR, 1e-30, 1, "Adam epsilon"},
    {"weight-decay", T_DOUBLE, O(weight_decay), "0", TR, 0, 10,
     "AdamW decoupled weight decay, matrices only (gpt default 0.1)"},
    {"grad-clip", T_DOUBLE, O(grad_clip), "0", TR, 0, 1e9,
     "clip the global gradient norm to this, 0: off (gpt default 1)"},
    {"warmup", T_INT, O(warmup), "0", TR, 0, 1e9,
     "linear warmup steps, then cosine decay (gpt default 100)"},
    {"min-lr-frac", T_DOUBLE, O(min_lr_frac), "1", TR, 0, 1,
     "cosine decay ends at this fraction of lr, 1: constant (gpt default 0.1)"},
    {"seed", T_LONG, O(seed), "1", RUN, 0, 4294967295.0, "run seed (0 to 2^32-1)"},
    {"hidden", T_STR, O(hidden), "512,256", TR, 0, 0, "VAE encoder widths (decoder mirrors)"},
    {"latent", T_INT, O(latent), "32", TR, 1, 65536, "VAE latent size"},
    {"likelihood", T_STR, O(likelihood), "bernoulli", TR, 0, 0, "VAE: bernoulli or gaussian"},
    {"kl-weight", T_DOUBLE, O(kl_weight), "1", TR, 0, 1e6, "VAE: weight of the KL term"},
    {"autoencoder", T_BOOL, O(autoencoder), "0", TR, 0, 1,
     "VAE: plain deterministic autoencoder (eps = 0, no KL)"},
    {"layers", T_INT, O(layers), "4", TR, 1, 256, "GPT: blocks"},
    {"heads", T_INT, O(heads), "4", TR, 1, 256, "GPT: attention heads"},
    {"dim", T_INT, O(dim), "256", TR, 1, 65536, "GPT: model width"},
    {"ctx", T_INT, O(ctx), "128", TR, 2, 65536, "GPT: context length in bytes"},
    {"dropout", T_DOUBLE, O(dropout), "0", TR, 0, 0.95, "GPT: dropout probability"},
    {"val-windows", T_INT, O(val_windows), "64", TR, 1, 1e7, "GPT: validation windows"},
    {"sample-every", T_INT, O(sample_every), "0", TR, 0, 1e9, "GPT: print a sample every N steps"},
    {"prompt", T_STR, O(prompt), "", CMD_SAMPLE | TR, 0, 0, "sample: text to continue"},
    {"length", T_INT, O(length), "200", CMD_SAMPLE | TR, 1, 1e7, "sample: bytes to generate"},
    {"temperature", T_DOUBLE, O(temperature), "1", CMD_SAMPLE | TR, 1e-6, 100,
     "sample: softmax temperature"},
    {"top-k", T_INT, O(top_k), "0", CMD_SAMPLE | TR, 0, 1 << 20, "sample: keep the k likeliest (0: all)"},
    {"log-every", T_INT, O(log_every), "50", TR, 1, 1e9, "progress line every N steps"},
    {"eval-every", T_INT, O(eval_every), "0", TR, 0, 1e9,
     "evaluate every N steps (0: only at the end)"},
    {"checkpoint-every", T_INT, O(checkpoint_every), "1000", TR, 0, 1e9,
     "checkpoint every N steps (0: only at the end)"},
    {"reduce", T_STR, O(reduce), "exact", TR, 0, 0,
     "exact (bitwise reproducible for any -np) or fast"},
    {"threads", T_INT, O(threads), "0", RUN, 0, 1024,
     "threads per rank: lanes at once (exact) or BLAS threads (fast); 0: the rank's cores"},
    {"source", T_STR, O(source), "fashion-mnist", CMD_PREPARE, 0, 0, "fashion-mnist or text"},
    {"input", T_STR, O(input), "/usr/share/datasets/fashion-mnist", CMD_PREPARE, 0, 0,
     "IDX folder (fashion-mnist) or a file (text)"},
    {"out", T_STR, O(out), "data/fmnist", CMD_PREPARE, 0, 0, "folder for the shard files"},
    {"shards", T_INT, O(shards), "8", CMD_PREPARE, 1, 4096, "train shards (and test shards)"},
};
#undef O
#define NOPTS ((int)(sizeof OPTS / sizeof OPTS[0]))

static void normalize(char *key)
{
    for (char *p = key; *p; p++)
        if (*p == '_')
            *p = '-';
}

static const opt_spec *find_opt(const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "%s", key);
    normalize(k);
    for (int i = 0; i < NOPTS; i++)
        if (strcmp(OPTS[i].name, k) == 0)
            return &OPTS[i];
    return NULL;
}

int cfg_list_set(cfg_list *l, const char *key, const char *value)
{
    char k[64];
    snprintf(k, sizeof k, "%s", key);
    normalize(k);
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->e[i].key, k) == 0) {
            snprintf(l->e[i].value, sizeof l->e[i].value, "%s", value);
            return 0;
        }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        cfg_entry *e = realloc(l->e, (size_t)cap * sizeof *e);
        if (!e)
            return -1;
        l->e = e;
        l->cap = cap;
    }
    snprintf(l->e[l->n].key, sizeof l->e[l->n].key, "%s", k);
    snprintf(l->e[l->n].value, sizeof l->e[l->n].value, "%s", value);
    l->n++;
    return 0;
}

void cfg_list_free(cfg_list *l)
{
    free(l->e);
    memset(l, 0, sizeof *l);
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
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            if (loud)
                fprintf(stderr, "trainer: %s:%d: expected key = value, got \"%s\"\n", path, lineno, s);
            fclose(f);
            return -1;
        }
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        const opt_spec *o = find_opt(key);
        if (!o || !(o->commands & cmd)) {
            if (loud)
                fprintf(stderr, "trainer: %s:%d: unknown key \"%s\"\n", path, lineno, key);
            fclose(f);
            return -1;
        }
        cfg_list_set(out, key, value);
    }
    fclose(f);
    return 0;
}

static const char *command_name(enum command cmd)
{
    switch (cmd) {
    case CMD_PREPARE: return "prepare";
    case CMD_TRAIN: return "train";
    case CMD_EVAL: return "eval";
    case CMD_SAMPLE: return "sample";
    }
    return "?";
}

void config_usage(enum command cmd, const char *prog)
{
    printf("usage: %s %s [--config FILE] [--KEY VALUE ...]\n\n", prog, command_name(cmd));
    printf("Every option can also be set in a config file as `key = value`; flags override it.\n\n");
    for (int i = 0; i < NOPTS; i++) {
        const opt_spec *o = &OPTS[i];
        if (!(o->commands & cmd))
            continue;
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->name, o->type == T_BOOL ? "" : " V");
        printf("  %-22s %s (default: %s)\n", left, o->help, *o->def ? o->def : "none");
    }
    printf("  %-22s %s\n", "--config FILE", "read key = value settings from FILE");
    printf("  %-22s %s\n", "--help", "this text");
}

int config_parse_args(enum command cmd, int argc, char **argv, cfg_list *given, int loud)
{
    struct option longopts[NOPTS + 3];
    int n = 0;
    for (int i = 0; i < NOPTS; i++) {
        if (!(OPTS[i].commands & cmd))
            continue;
        longopts[n].name = OPTS[i].name;
        longopts[n].has_arg = OPTS[i].type == T_BOOL ? optional_argument : required_argument;
        longopts[n].flag = NULL;
        longopts[n].val = 1000 + i;
        n++;
    }
    longopts[n++] = (struct option){"config", required_argument, NULL, 'c'};
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n] = (struct option){NULL, 0, NULL, 0};

    cfg_list flags = {0};
    const char *config_file = NULL;
    optind = 1;
    opterr = 0;
    int ch, rc = 0;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (ch == 'h') {
            if (loud)
                config_usage(cmd, "trainer");
            rc = 1;
            goto out;
        } else if (ch == 'c') {
            config_file = optarg;
        } else if (ch >= 1000) {
            const opt_spec *o = &OPTS[ch - 1000];
            cfg_list_set(&flags, o->name, optarg ? optarg : "1");
        } else if (ch == ':') {
            if (loud)
                fprintf(stderr, "trainer: %s: %s needs a value\n", command_name(cmd), argv[optind - 1]);
            rc = -1;
            goto out;
        } else {
            if (loud)
                fprintf(stderr, "trainer: %s: unknown option %s (see trainer %s --help)\n",
                        command_name(cmd), argv[optind - 1], command_name(cmd));
            rc = -1;
            goto out;
        }
    }
    if (optind < argc) {
        if (loud)
            fprintf(stderr, "trainer: %s: unexpected argument \"%s\" (options are --key value)\n",
                    command_name(cmd), argv[optind]);
        rc = -1;
        goto out;
    }
    if (config_file && read_config_file(config_file, cmd, given, loud) != 0) {
        rc = -1;
        goto out;
    }
    for (int i = 0; i < flags.n; i++)
        cfg_list_set(given, flags.e[i].key, flags.e[i].value);
out:
    cfg_list_free(&flags);
    return rc;
}

static int set_value(config *c, const opt_spec *o, const char *value, int loud)
{
    char *p = (char *)c + o->offset;
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case T_STR:
        if (strlen(value) >= o->size) {
            if (loud)
                fprintf(stderr, "trainer: --%s: value longer than %zu characters\n", o->name, o->size - 1);
            return -1;
        }
        memcpy(p, value, strlen(value) + 1);
        return 0;
    case T_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) {
            *(int *)p = 1;
            return 0;
        }
        if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no")) {
            *(int *)p = 0;
            return 0;
        }
        if (loud)
            fprintf(stderr, "trainer: --%s: \"%s\" is not a boolean (1/0, true/false)\n", o->name, value);
        return -1;
    default:
        break;
    }
    double v = strtod(value, &end);
    if (end == value || *trim(end) != 0 || errno != 0 || !isfinite(v)) {
        if (loud)
            fprintf(stderr, "trainer: --%s: \"%s\" is not a number\n", o->name, value);
        return -1;
    }
    if ((o->type == T_INT || o->type == T_LONG) && v != floor(v)) {
        if (loud)
            fprintf(stderr, "trainer: --%s: \"%s\" is not a whole number\n", o->name, value);
        return -1;
    }
    if (v < o->min || v > o->max) {
        if (loud)
            fprintf(stderr, "trainer: --%s: %s is out of range, expected %g to %g\n", o->name, value,
                    o->min, o->max);
        return -1;
    }
    if (o->type == T_INT)
        *(int *)p = (int)v;
    else if (o->type == T_LONG)
        *(long *)p = (long)v;
    else
        *(double *)p = v;
    return 0;
}

static int parse_hidden(config *c, int loud)
{
    c->nhidden = 0;
    const char *s = c->hidden;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 65536 || c->nhidden == CFG_MAX_HIDDEN ||
            (*end && *end != ',')) {
            if (loud)
                fprintf(stderr,
                        "trainer: --hidden: \"%s\" is not a list of 1 to %d widths like 512,256\n",
                        c->hidden, CFG_MAX_HIDDEN);
            return -1;
        }
        c->hidden_sizes[c->nhidden++] = (int)v;
        s = *end ? end + 1 : end;
    }
    if (c->nhidden == 0) {
        if (loud)
            fprintf(stderr, "trainer: --hidden: empty list\n");
        return -1;
    }
    return 0;
}

static int one_of(const char *name, const char *v, const char *a, const char *b, int loud)
{
    if (!strcmp(v, a) || !strcmp(v, b))
        return 0;
    if (loud)
        fprintf(stderr, "trainer: --%s: \"%s\", expected %s or %s\n", name, v, a, b);
    return -1;
}

/* Defaults that differ for the language model (the gpt-kjv recipe). */
static const char *const GPT_DEFAULTS[][2] = {
    {"data", "data/kjv"}, {"batch", "32"},         {"steps", "600"},
    {"beta2", "0.95"},    {"weight-decay", "0.1"}, {"grad-clip", "1"},
    {"warmup", "100"},    {"min-lr-frac", "0.1"},  {"log-every", "25"},
    {"eval-every", "100"},
};

int config_build(config *c, enum command cmd, const cfg_list *const *layers, int nlayers,
                 int loud)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < NOPTS; i++)
        if (set_value(c, &OPTS[i], OPTS[i].def, loud) != 0)
            return -1;
    const char *model = "vae";
    for (int l = 0; l < nlayers; l++)
        for (int i = 0; i < layers[l]->n; i++)
            if (!strcmp(layers[l]->e[i].key, "model"))
                model = layers[l]->e[i].value;
    if (!strcmp(model, "gpt"))
        for (size_t i = 0; i < sizeof GPT_DEFAULTS / sizeof GPT_DEFAULTS[0]; i++)
            if (set_value(c, find_opt(GPT_DEFAULTS[i][0]), GPT_DEFAULTS[i][1], loud) != 0)
                return -1;
    for (int l = 0; l < nlayers; l++)
        for (int i = 0; i < layers[l]->n; i++) {
            const opt_spec *o = find_opt(layers[l]->e[i].key);
            if (!o)
                continue; /* a key from a checkpoint of a newer program: ignored */
            if (set_value(c, o, layers[l]->e[i].value, loud) != 0)
                return -1;
        }
    if (parse_hidden(c, loud) || one_of("model", c->model, "vae", "gpt", loud) ||
        one_of("likelihood", c->likelihood, "bernoulli", "gaussian", loud) ||
        one_of("reduce", c->reduce, "exact", "fast", loud))
        return -1;
    if (cmd == CMD_PREPARE)
        return one_of("source", c->source, "fashion-mnist", "text", loud);
    if (cmd == CMD_TRAIN) {
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
                        "trainer: --micro-steps %d does not divide the per-lane batch %d (batch %d / lanes %d)\n",
                        c->micro_steps, c->batch / c->lanes, c->batch, c->lanes);
            return -1;
        }
        if (!strcmp(c->model, "vae") && c->micro_steps != 1) {
            if (loud)
                fprintf(stderr, "trainer: --micro-steps %d: the vae takes its whole batch at once (1)\n",
                        c->micro_steps);
            return -1;
        }
        if (!strcmp(c->model, "gpt") && c->dim % c->heads != 0) {
            if (loud)
                fprintf(stderr, "trainer: --dim %d is not divisible by --heads %d\n", c->dim, c->heads);
            return -1;
        }
    }
    return 0;
}

static int is_vae_key(const char *k)
{
    return !strcmp(k, "hidden") || !strcmp(k, "latent") || !strcmp(k, "likelihood") ||
           !strcmp(k, "kl-weight") || !strcmp(k, "autoencoder");
}

static int is_gpt_key(const char *k)
{
    return !strcmp(k, "layers") || !strcmp(k, "heads") || !strcmp(k, "dim") || !strcmp(k, "ctx") ||
           !strcmp(k, "dropout") || !strcmp(k, "val-windows") || !strcmp(k, "sample-every") ||
           !strcmp(k, "prompt") || !strcmp(k, "length") || !strcmp(k, "temperature") ||
           !strcmp(k, "top-k");
}

static void format_value(const config *c, const opt_spec *o, char *buf, size_t size)
{
    const char *p = (const char *)c + o->offset;
    switch (o->type) {
    case T_STR: snprintf(buf, size, "%s", p); break;
    case T_BOOL:
    case T_INT: snprintf(buf, size, "%d", *(const int *)p); break;
    case T_LONG: snprintf(buf, size, "%ld", *(const long *)p); break;
    case T_DOUBLE: snprintf(buf, size, "%.17g", *(const double *)p); break;
    }
}

int config_to_list(const config *c, cfg_list *out)
{
    int gpt = !strcmp(c->model, "gpt");
    for (int i = 0; i < NOPTS; i++) {
        const opt_spec *o = &OPTS[i];
        /* what this run does with the run, not what the run is */
        if (!(o->commands & CMD_TRAIN) || !strcmp(o->name, "resume") || !strcmp(o->name, "stop-at"))
            continue;
        if ((gpt && is_vae_key(o->name)) || (!gpt && is_gpt_key(o->name)))
            continue;
        char v[CFG_PATH];
        format_value(c, o, v, sizeof v);
        if (cfg_list_set(out, o->name, v) != 0)
            return -1;
    }
    return 0;
}

void config_print(const config *c, const char *prefix)
{
    cfg_list l = {0};
    config_to_list(c, &l);
    for (int i = 0; i < l.n; i++)
        printf("%s%s = %s\n", prefix, l.e[i].key, l.e[i].value);
    cfg_list_free(&l);
}
