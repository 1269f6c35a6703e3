/* The eval and sample commands: a model and its parameters from a
 * checkpoint, then the task's evaluation or sampling. */
#include "train.h"

#include "report.h"
#include "run.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load(run *r, enum command cmd, int argc, char **argv, int *status)
{
    char path[CFG_PATH + 32];
    ckpt_meta meta = {0};
    if (run_configure(r, cmd, argc, argv, path, sizeof path, &meta, status) != 0)
        return -1;
    *status = EXIT_BAD_INPUT;
    if (cmd == CMD_SAMPLE && !r->task->sample) {
        if (r->loud)
            fprintf(stderr, "trainer: %s: the %s model has no sample command yet\n", path,
                    r->mt->name);
        return -1;
    }
    run_setup_inference(r, r->task->infer_rows);
    const int need_data = cmd == CMD_EVAL || (cmd == CMD_SAMPLE && r->task->sample_needs_data);
    if ((need_data && run_load_data(r, 0) != 0) || run_read_vocab(r, path) != 0)
        return -1;
    if (run_build_model(r) != 0 || run_read_checkpoint(r, path, &meta) != 0)
        return -1;
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    run r;
    run_begin(&r);
    io_quiet_hdf5();
    int status;
    if (load(&r, CMD_EVAL, argc, argv, &status) == 0) {
        eval_result e = evaluate(&r);
        char what[CFG_PATH + 64];
        snprintf(what, sizeof what, "%s at step %ld", r.cfg.checkpoint, r.step);
        if (r.loud)
            print_eval(&r, what, &e);
        if (r.mt->translate && r.task->show && r.loud) /* chrF of translations */
            r.task->show(&r.cfg, &r.data, r.work[0].m, r.params, r.step, 1);
        if (r.mt->roundtrip) {
            const roundtrip_result t = evaluate_roundtrip(&r);
            if (r.loud)
                printf("invertibility: x -> z -> x over %.0f %s images, error relative to an "
                       "image's largest value: median below %.2g, 99.9%% below %.2g, largest "
                       "%.3g; %.0f above 1e-4\n",
                       t.rows, r.task->eval_name, t.median_below, t.p999_below, t.largest,
                       t.above_1e4);
        }
        status = EXIT_DONE;
    }
    run_end(&r);
    return status;
}

static int sample_run(int argc, char **argv, int translate)
{
    run r;
    run_begin(&r);
    io_quiet_hdf5();
    int status;
    if (load(&r, CMD_SAMPLE, argc, argv, &status) == 0) {
        if (translate && !r.mt->translate) {
            if (r.loud)
                fprintf(stderr, "trainer: translate: %s holds a %s model, which does not "
                                "translate (train --model seq2seq)\n",
                        r.cfg.checkpoint, r.mt->name);
            status = EXIT_BAD_INPUT;
        } else {
            int failed =
                r.loud && r.task->sample(&r.cfg, &r.data, r.work[0].m, r.params, stdout) != 0;
            status = agree(failed) ? EXIT_BAD_INPUT : EXIT_DONE;
        }
    }
    run_end(&r);
    return status;
}

int cmd_sample(int argc, char **argv) { return sample_run(argc, argv, 0); }

/* translate: sample for translation models, with a sentence given as an
 * argument of its own (not after an option) taken as --text. */
int cmd_translate(int argc, char **argv)
{
    char **args = xcalloc((size_t)argc * 2 + 1, sizeof *args, "arguments");
    int n = 0;
    args[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--", 2)) {
            args[n++] = argv[i];
            if (!strchr(argv[i], '=') && i + 1 < argc && strncmp(argv[i + 1], "--", 2) &&
                strcmp(argv[i], "--help"))
                args[n++] = argv[++i];
            continue;
        }
        args[n++] = "--text";
        args[n++] = argv[i];
    }
    const int status = sample_run(n, args, 1);
    free(args);
    return status;
}
