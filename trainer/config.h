/* The program's configuration.
 *
 * Three groups of options make it: the common ones (this struct's fields,
 * table in config.c), the options of the model's task (task_opts) and those
 * of the model (model_opts), each described by its owner's table (see
 * options.h, task.h, model.h). An option belongs to one owner: a GPT option
 * given to the VAE is refused with a line saying whose it is.
 *
 * Precedence, lowest first: the defaults (common, then those the task and
 * the model change), the config file, the checkpoint being resumed or read,
 * the flags. A resumed run is the run in its checkpoint, whatever the file
 * now says; a flag is a deliberate change. */
#ifndef TRAINER_CONFIG_H
#define TRAINER_CONFIG_H

#include "options.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_PATH 1024

struct model_type;

typedef struct config {
    const struct model_type *mt; /* the model named by `model` */
    char model[32];
    char data[CFG_PATH];
    char run_dir[CFG_PATH];
    char resume[CFG_PATH];
    char checkpoint[CFG_PATH];
    /* schedule */
    long steps;
    long stop_at;
    double epochs;
    int batch;
    int lanes;
    int micro_steps;
    /* optimizer */
    double lr;
    double beta1, beta2, adam_eps, weight_decay, grad_clip;
    int warmup;
    double min_lr_frac;
    /* randomness */
    long seed;
    /* reporting and mechanics */
    int log_every;
    int eval_every;
    int checkpoint_every;
    char reduce[8];
    char on_nonfinite[8];
    int threads;
    int bucket_kb;
    /* prepare */
    char source[32];
    char input[CFG_PATH];
    char target[CFG_PATH];
    int max_tokens;
    char out[CFG_PATH];
    /* score */
    char images[CFG_PATH];
    char classifier[CFG_PATH];
    int shards;
    char tokens[8];
    int vocab;
    /* the task's and the model's own options, laid out by their tables;
     * allocated by config_build, freed by config_free */
    void *task_opts, *model_opts;
} config;

/* prepare --source parallel (parallel.c). */
int prepare_parallel(const config *c);

/* Parses argv (after the subcommand): the --config file's settings go to
 * *file, the flags to *flags. Every key must be an option of some model or
 * task or a common one, taken by cmd. Returns 0, 1 after printing help
 * (when loud), or -1 after one error line (when loud). */
int config_parse_args(enum command cmd, int argc, char **argv, cfg_list *file, cfg_list *flags,
                      int loud);

/* Fills c from the defaults, then each list in order (later wins), then
 * checks every value. The model is the last `model` setting of the lists
 * (default vae). Returns 0, or -1 after one line (when loud); in both cases
 * config_free(c) releases it. */
int config_build(config *c, enum command cmd, const cfg_list *const *layers, int nlayers,
                 int loud);
void config_free(config *c);

/* A common string option's value as the lists would set it (the last list
 * that has it, else its default), before any configuration is built. */
const char *config_lookup(const cfg_list *const *layers, int nlayers, const char *key);

/* The effective configuration as key/value pairs, for printing and for
 * checkpoints: every option a training run takes, of the common group, the
 * model's task and the model, except those that steer this run only
 * (resume, stop-at). Returns -1 (one line) when it cannot be built whole. */
int config_to_list(const config *c, cfg_list *out);
void config_print(const config *c, const char *prefix);

/* "train", "eval", ... */
const char *config_command_name(enum command cmd);

/* trainer COMMAND --help (usage.c) */
void config_usage(enum command cmd);
/* The manual page, trainer(1), from the option tables: every option of
 * every group. */
void config_man(FILE *f);
/* The table of the common options. */
const opt_group *config_common_options(void);

#endif
