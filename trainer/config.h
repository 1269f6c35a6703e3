/* The program's configuration: one table of options shared by the flags
 * (--name value), the config file (name = value) and the checkpoint's
 * /config attributes. Precedence, lowest first: defaults, the checkpoint
 * being resumed, the config file, the flags. */
#ifndef TRAINER_CONFIG_H
#define TRAINER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CFG_PATH 1024
#define CFG_MAX_HIDDEN 8

enum command { CMD_PREPARE = 1, CMD_TRAIN = 2, CMD_EVAL = 4, CMD_SAMPLE = 8 };

typedef struct {
    /* what and where */
    char model[16];
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
    /* VAE */
    char hidden[64];
    int hidden_sizes[CFG_MAX_HIDDEN];
    int nhidden;
    int latent;
    char likelihood[16];
    double kl_weight;
    int autoencoder;
    /* GPT */
    int layers, heads, dim, ctx;
    double dropout;
    int val_windows;
    int sample_every;
    /* sampling */
    char prompt[CFG_PATH];
    int length;
    double temperature;
    int top_k;
    /* reporting and mechanics */
    int log_every;
    int eval_every;
    int checkpoint_every;
    char reduce[8];
    int threads;
    /* prepare */
    char source[32];
    char input[CFG_PATH];
    char out[CFG_PATH];
    int shards;
} config;

typedef struct {
    char key[64];
    char value[CFG_PATH];
} cfg_entry;

typedef struct {
    cfg_entry *e;
    int n, cap;
} cfg_list;

/* Parses argv (after the subcommand) and any --config file into the list of
 * explicitly given settings. Returns 0, 1 after printing help (rank 0 only),
 * or -1 after printing one error line (when loud). */
int config_parse_args(enum command cmd, int argc, char **argv, cfg_list *given, int loud);

/* Fills c from the defaults, then each list in order (later wins), then
 * checks every value. Returns 0, or -1 after printing one line (when loud). */
int config_build(config *c, enum command cmd, const cfg_list *const *layers, int nlayers,
                 int loud);

/* Appends key = value, replacing an earlier value of the same key. */
int cfg_list_set(cfg_list *l, const char *key, const char *value);
void cfg_list_free(cfg_list *l);

/* The effective configuration as key/value pairs, in table order, for
 * printing and for checkpoints. Only keys that matter for cmd's model. */
int config_to_list(const config *c, cfg_list *out);
void config_print(const config *c, const char *prefix);

void config_usage(enum command cmd, const char *prog);

#endif
