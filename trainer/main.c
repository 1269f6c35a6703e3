/* trainer: one program, subcommands prepare, train, eval, sample. */
#include "comm/comm.h"
#include "config.h"
#include "kernel.h"
#include "model.h"
#include "nn/gemm.h"
#include "signals.h"
#include "train.h"
#include "util.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trainer COMMAND [--help] [options]\n"
            "\n"
            "commands:\n"
            "  prepare   turn Fashion-MNIST IDX files, a text file or two Bibles into HDF5 shards\n"
            "  train     train a model data-parallel (run under mpirun)\n"
            "  eval      evaluate a checkpoint on its task's evaluation split\n"
            "  sample    generate from a checkpoint: text, or images (.h5 and PNG)\n"
            "  translate translate with a seq2seq checkpoint: a sentence, or --lines FILE\n"
            "  score     the Frechet distance of a file of images to the test split, in a\n"
            "            classifier's features\n"
            "  inspect   what a checkpoint holds (model, step, configuration, tensors, checksums),\n"
            "            or a pair shard's first pairs\n"
            "  plot      loss curves of runs into a PNG (gnuplot)\n"
            "\n"
            "models (trainer train --model NAME):\n");
    for (int i = 0; i < model_count(); i++)
        fprintf(f, "  %-9s %s (%s task)\n", model_at(i)->name, model_at(i)->summary,
                model_at(i)->task->name);
    fprintf(f, "\n"
               "  trainer COMMAND --help   lists the command's options, common and per model\n"
               "  trainer --version        prints the version and the OpenBLAS kernel\n"
               "  trainer --man            prints the manual page, trainer(1)\n");
}

int main(int argc, char **argv)
{
    kernel_upgrade(argv);
    signals_ignore_file_limit();
    if (argc < 2) {
        usage(stderr);
        return EXIT_BAD_INPUT;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_DONE;
    }
    if (!strcmp(cmd, "--version")) {
        printf("trainer %s, OpenBLAS kernel %s\n", PACKAGE_VERSION, kernel_story());
        printf("CPU %s: OpenBLAS's best for it %s, exact products %s\n", kernel_cpu_model(),
               kernel_best_for_cpu(), gemm_path());
        return EXIT_DONE;
    }
    if (!strcmp(cmd, "--man")) {
        config_man(stdout);
        return EXIT_DONE;
    }
    if (!strcmp(cmd, "prepare"))
        return cmd_prepare(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect"))
        return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "plot"))
        return cmd_plot(argc - 1, argv + 1);
    int (*run)(int, char **) = NULL;
    if (!strcmp(cmd, "train"))
        run = cmd_train;
    else if (!strcmp(cmd, "eval"))
        run = cmd_eval;
    else if (!strcmp(cmd, "sample"))
        run = cmd_sample;
    else if (!strcmp(cmd, "translate"))
        run = cmd_translate;
    else if (!strcmp(cmd, "score"))
        run = cmd_score;
    else if (!strcmp(cmd, "bench-comm"))
        run = cmd_bench_comm;
    if (!run) {
        fprintf(stderr, "trainer: unknown command \"%s\" (try trainer --help)\n", cmd);
        return EXIT_BAD_INPUT;
    }
    comm_init(&argc, &argv);
    int status = run(argc - 1, argv + 1);
    comm_finalize();
    return status;
}
