/* The registry of models. A new model is a file in models/ and a line here. */
#include "model.h"

#include "models/classifier.h"
#include "models/gan.h"
#include "models/glow.h"
#include "models/gpt.h"
#include "models/lstm.h"
#include "models/seq2seq.h"
#include "models/vae.h"

#include <stdio.h>
#include <string.h>

static const model_type *const BUILT_IN[] = {
    &vae_model,
    &gpt_model,
    &lstm_model,
    &gan_model,
    &classifier_model,
    &glow_model,
    &seq2seq_model,
};

#define MAX_MODELS 32
#define NBUILT_IN ((int)(sizeof BUILT_IN / sizeof BUILT_IN[0]))

static const model_type *added[MAX_MODELS - NBUILT_IN];
static int nadded;

int model_count(void) { return NBUILT_IN + nadded; }

const model_type *model_at(int i) { return i < NBUILT_IN ? BUILT_IN[i] : added[i - NBUILT_IN]; }

int model_first_of_task(int i)
{
    for (int j = 0; j < i; j++)
        if (model_at(j)->task == model_at(i)->task)
            return 0;
    return 1;
}

const model_type *model_find(const char *name)
{
    for (int i = 0; i < model_count(); i++)
        if (!strcmp(model_at(i)->name, name))
            return model_at(i);
    return NULL;
}

/* An option name means one thing to the flag parser: the same type in every
 * table that has it. */
static int clashes(const opt_group *g, const opt_group *h, const char *who)
{
    for (int i = 0; i < g->n; i++) {
        const opt_spec *o = opt_find(h, g->v[i].name);
        if (o && o != &g->v[i] && o->type != g->v[i].type) {
            fprintf(stderr, "trainer: model %s: option --%s has another type elsewhere\n", who,
                    o->name);
            return 1;
        }
    }
    return 0;
}

int model_register(const model_type *t)
{
    if (!t->name || !t->task || !t->create || !t->destroy || !t->init || !t->forward ||
        !t->backward || !t->loss_name) {
        fprintf(stderr, "trainer: model %s lacks a required function\n", t->name ? t->name : "?");
        return -1;
    }
    if (t->nfigures < 0 || t->nfigures > MAX_FIGURES || (t->nfigures && !t->figures)) {
        fprintf(stderr, "trainer: model %s: %d figures, at most %d\n", t->name, t->nfigures,
                MAX_FIGURES);
        return -1;
    }
    if (t->phases < 0 || t->phases > MAX_PHASES || (t->phases > 1 && !t->phase_tensors)) {
        fprintf(stderr, "trainer: model %s: %d phases, at most %d, each with its tensors\n",
                t->name, t->phases, MAX_PHASES);
        return -1;
    }
    if (model_find(t->name) || model_count() == MAX_MODELS) {
        fprintf(stderr, "trainer: model %s: name taken, or more than %d models\n", t->name,
                MAX_MODELS);
        return -1;
    }
    for (int i = 0; i < model_count(); i++) {
        const model_type *u = model_at(i);
        if (clashes(&t->opts, &u->opts, t->name) || clashes(&t->opts, &u->task->opts, t->name) ||
            clashes(&t->task->opts, &u->opts, t->name))
            return -1;
    }
    added[nadded++] = t;
    return 0;
}
