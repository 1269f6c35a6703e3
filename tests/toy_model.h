/* A model that lives only in the tests: softmax regression of the image
 * task's labels, registered at run time. It shows that a model is one file
 * and one registration, with options of its own. */
#ifndef TRAINER_TESTS_TOY_MODEL_H
#define TRAINER_TESTS_TOY_MODEL_H

#include "trainer/model.h"

typedef struct {
    int classes;
    int nan_step; /* a NaN in the gradient of fc.bias at this step (1-based; 0: never) */
} toy_opts;

extern const model_type toy_model;

#endif
