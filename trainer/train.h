/* Subcommands. Each returns the process exit status, the same on every rank. */
#ifndef TRAINER_TRAIN_H
#define TRAINER_TRAIN_H

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_prepare(int argc, char **argv);

#endif
