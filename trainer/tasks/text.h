/* The text task: language modelling on shards of bytes.
 *
 * A row is a window of ctx + 1 consecutive bytes of a lane's text (inputs and
 * next-byte targets); window offsets are drawn from the lane's stream at
 * (RNG_WINDOW, step, row). Evaluation is a fixed set of val-windows windows of
 * the validation split (drawn once from the global stream), spread over the
 * ranks. Its models generate text token by token (model.h's gen_* hooks). */
#ifndef TRAINER_TASKS_TEXT_H
#define TRAINER_TASKS_TEXT_H

#include "trainer/config.h"

typedef struct {
    int ctx;
    int val_windows;
    int sample_every;
    char prompt[CFG_PATH];
    int length;
    double temperature;
    int top_k;
    int lookahead;
} text_opts;

#endif
