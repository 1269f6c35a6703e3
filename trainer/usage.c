/* What trainer COMMAND --help and trainer(1) say: both made from the option
 * tables (the common one, then each task's and each model's), so that they
 * list every option and cannot drift from it. */
#include "config.h"

#include "model.h"

#include <stdio.h>
#include <string.h>

static void usage_defaults(const char *const (*d)[2], int n)
{
    if (n == 0)
        return;
    printf("    defaults:");
    for (int i = 0; i < n; i++)
        printf(" %s %s%s", d[i][0], d[i][1], i + 1 < n ? "," : "\n");
}

static int takes_any(const opt_group *g, unsigned cmd)
{
    for (int i = 0; i < g->n; i++)
        if (g->v[i].commands & cmd)
            return 1;
    return 0;
}

/* A task's section, once for all its models; a model's section (for train
 * every model's, to list them). */
static void usage_sections(enum command cmd)
{
    for (int i = 0; i < model_count(); i++) {
        const model_type *t = model_at(i);
        if (model_first_of_task(i) && takes_any(&t->task->opts, cmd)) {
            printf("\n%s task (the data side of the models that read it):\n", t->task->name);
            opt_usage(&t->task->opts, cmd);
            if (cmd == CMD_TRAIN)
                usage_defaults(t->task->defaults, t->task->ndefaults);
        }
        if (cmd != CMD_TRAIN && !takes_any(&t->opts, cmd))
            continue;
        printf("\n--model %s: %s (%s task)\n", t->name, t->summary, t->task->name);
        opt_usage(&t->opts, cmd);
        if (cmd == CMD_TRAIN)
            usage_defaults(t->defaults, t->ndefaults);
    }
}

void config_usage(enum command cmd)
{
    printf("usage: trainer %s [--config FILE] [--KEY VALUE ...]\n\n", config_command_name(cmd));
    printf("Every option can also be set in a config file as `key = value`; flags override it.\n\n");
    opt_usage(config_common_options(), cmd);
    printf("  %-22s %s\n", "--config FILE", "read key = value settings from FILE");
    printf("  %-22s %s\n", "--help", "this text");
    if (cmd != CMD_PREPARE)
        usage_sections(cmd);
}

/* roff escapes: a dash is \-, a backslash \e */
static void roff(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '-')
            fputs("\\-", f);
        else if (*s == '\\')
            fputs("\\e", f);
        else
            fputc(*s, f);
    }
}

static void man_options(FILE *f, const opt_group *g)
{
    static const char *const cmds[5] = {"prepare", "train", "eval", "sample", "score"};
    for (int i = 0; i < g->n; i++) {
        const opt_spec *o = &g->v[i];
        fputs(".TP\n\\fB", f);
        roff(f, "--");
        roff(f, o->name);
        fputs(o->type == OPT_BOOL ? "\\fR\n" : "\\fR \\fIV\\fR\n", f);
        roff(f, o->help);
        fputs(" (default: ", f);
        roff(f, *o->def ? o->def : "none");
        fputs("; ", f);
        for (int k = 0, n = 0; k < 5; k++)
            if (o->commands & (1u << k))
                fprintf(f, "%s%s", n++ ? ", " : "", cmds[k]);
        fputs(")\n", f);
    }
}

void config_man(FILE *f)
{
    fprintf(f, ".TH TRAINER 1 \"\" \"trainer %s\" \"User Commands\"\n", PACKAGE_VERSION);
    fputs(".SH NAME\ntrainer \\- data\\-parallel training of generative models with MPI\n"
          ".SH SYNOPSIS\n.B trainer\n\\fICOMMAND\\fR [\\fB\\-\\-config\\fR \\fIFILE\\fR] "
          "[\\fB\\-\\-\\fR\\fIKEY V\\fR ...]\n.br\nmpirun \\-np \\fIN\\fR "
          "trainer train ...\n"
          ".SH COMMANDS\n"
          ".TP\n\\fBprepare\\fR\nFashion\\-MNIST IDX files, a text file, or two Bibles' "
          "verses (translation pairs) into HDF5 shards.\n"
          ".TP\n\\fBtrain\\fR\nTrain a model data\\-parallel (under mpirun).\n"
          ".TP\n\\fBeval\\fR\nEvaluate a checkpoint on its task's evaluation split.\n"
          ".TP\n\\fBsample\\fR\nGenerate text, or images (.h5 and PNG), from a checkpoint.\n"
          ".TP\n\\fBtranslate\\fR [\\fISENTENCE\\fR]\nTranslate with a seq2seq checkpoint: a "
          "sentence, or \\fB\\-\\-lines\\fR \\fIFILE\\fR; greedy or \\fB\\-\\-beam\\fR "
          "\\fIN\\fR (the sample command's options).\n"
          ".TP\n\\fBscore\\fR\nThe Frechet distance of a file of images to the test split.\n"
          ".TP\n\\fBinspect\\fR \\fICHECKPOINT\\fR|\\fIPAIR_SHARD\\fR\nModel, step, "
          "configuration, tensors and checksums of a checkpoint; or a pair shard's first pairs.\n"
          ".TP\n\\fBplot\\fR \\fIRUN_DIR\\fR... \\fB\\-\\-out\\fR \\fIFILE.png\\fR\n"
          "Loss curves of runs from their metrics.jsonl (needs gnuplot).\n"
          ".SH OPTIONS\nEvery option is also a \\fIkey = value\\fR line of a config file "
          "(\\-\\-config). Precedence, lowest first: defaults, the config file, the "
          "checkpoint being resumed or read, the flags.\n",
          f);
    man_options(f, config_common_options());
    for (int i = 0; i < model_count(); i++) {
        const model_type *t = model_at(i);
        if (model_first_of_task(i)) {
            fprintf(f, ".SS The %s task\n", t->task->name);
            man_options(f, &t->task->opts);
        }
        fprintf(f, ".SS \\-\\-model %s\n", t->name);
        roff(f, t->summary);
        fputs(".\n", f);
        man_options(f, &t->opts);
    }
    fputs(".SH EXIT STATUS\n0 done; 1 internal failure (a checkpoint could not be written, a "
          "non\\-finite gradient or loss); 2 bad input, one line on stderr says what; 75 stopped "
          "by a signal after writing a checkpoint (resume to go on).\n"
          ".SH FILES\n\\fIRUN_DIR\\fR/checkpoint.h5, \\fIRUN_DIR\\fR/metrics.jsonl\n"
          ".SH SEE ALSO\nmpirun(1), sbatch(1), h5dump(1)\n",
          f);
}
