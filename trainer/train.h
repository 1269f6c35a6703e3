/* Subcommands. Each returns the process exit status, the same on every rank. */
#ifndef TRAINER_TRAIN_H
#define TRAINER_TRAIN_H

/* What a training run saw, for tests and benchmarks. */
typedef struct {
    double first_loss; /* mean loss of the first logged window */
    double last_loss;  /* mean loss of the last logged window */
    double test_loss;  /* final evaluation */
    double samples_per_s;
    long step;
    unsigned long long params_fnv1a64;
} train_stats;

int cmd_train(int argc, char **argv);
/* cmd_train that also fills *stats (may be NULL). */
int train_run(int argc, char **argv, train_stats *stats);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_translate(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_score(int argc, char **argv);
/* The reductions over ranks timed alone (benchcomm.c). */
int cmd_bench_comm(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_plot(int argc, char **argv);

#endif
