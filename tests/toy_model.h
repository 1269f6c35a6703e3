/* A model that lives only in the tests: softmax regression of the image
 * task's labels, registered at run time. It shows that a model is one file
 * and one registration, with options of its own. */
#ifndef TRAINER_TESTS_TOY_MODEL_H
#define TRAINER_TESTS_TOY_MODEL_H

#include "trainer/model.h"

typedef struct {
    int classes;
    double label_smoothing_unused; /* an option only so that ownership can be tested */
} toy_opts;

extern const model_type toy_model;

#endif
