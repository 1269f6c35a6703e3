/* The option engine: typed options described by tables, values set from
 * strings, and lists of key = value settings.
 *
 * An option table describes the fields of one struct: the program's common
 * options describe `config` itself, a task's and a model's own options their
 * own structs (see config.h). The same table serves the flags (--name value),
 * the config file (name = value or name_with_underscores = value), the
 * checkpoint's /config attributes and the help text. */
#ifndef TRAINER_OPTIONS_H
#define TRAINER_OPTIONS_H

#include <stddef.h>

enum command { CMD_PREPARE = 1, CMD_TRAIN = 2, CMD_EVAL = 4, CMD_SAMPLE = 8, CMD_SCORE = 16 };
#define CMD_RUN (CMD_TRAIN | CMD_EVAL | CMD_SAMPLE | CMD_SCORE)

enum opt_type { OPT_INT, OPT_LONG, OPT_DOUBLE, OPT_STR, OPT_BOOL };

typedef struct {
    const char *name; /* --name; in files also name_with_underscores */
    enum opt_type type;
    size_t offset, size; /* of the field in its struct; size matters for strings */
    const char *def;
    unsigned commands; /* the commands that take it */
    double min, max;   /* numbers */
    const char *help;
} opt_spec;

/* A table and the size of the struct its offsets point into. */
typedef struct {
    const opt_spec *v;
    int n;
    size_t size;
} opt_group;

/* One table entry: OPT(my_opts, field, "name", OPT_INT, "8", CMD_TRAIN, 1, 64, "help") */
#define OPT(type, field, name, kind, def, cmds, min, max, help)                                   \
    {name, kind, offsetof(type, field), sizeof(((type *)0)->field), def, cmds, min, max, help}
#define OPT_GROUP(table, type) {table, (int)(sizeof table / sizeof table[0]), sizeof(type)}

/* Sets the field of o in base from a string, checking type and range.
 * Returns 0, or -1 after one line on stderr (when loud). */
int opt_set(void *base, const opt_spec *o, const char *value, int loud);
/* The field's value as a string that opt_set reads back to the same bits. */
void opt_format(const void *base, const opt_spec *o, char *buf, size_t size);
/* The group's entry called name (dashes or underscores), or NULL. */
const opt_spec *opt_find(const opt_group *g, const char *name);
/* Help lines for the group's options that cmd takes; returns how many. */
int opt_usage(const opt_group *g, unsigned cmd);

/* Explicit settings, in the order given; a later value of a key replaces
 * the earlier one. Keys are stored with dashes. */
typedef struct {
    char key[64];
    char value[1024];
} cfg_entry;

typedef struct {
    cfg_entry *e;
    int n, cap;
} cfg_list;

/* Returns 0, or -1 (one line) when the key or value does not fit or memory
 * runs out: a setting is never dropped silently. */
int cfg_list_set(cfg_list *l, const char *key, const char *value);
const char *cfg_list_get(const cfg_list *l, const char *key);
void cfg_list_free(cfg_list *l);

/* "max_lr" -> "max-lr" */
void opt_normalize(char *key);

#endif
