/* chrF (Popovic, 2015): the character n-gram F-score of translations
 * against references, n = 1 .. 6, beta = 2, as sacreBLEU computes it at
 * the corpus level: each order's n-gram matches (the smaller count of each
 * n-gram) and n-gram counts summed over the sentences, precision and recall
 * averaged over the orders, then F_beta, in percent. Characters are UTF-8
 * code points (an invalid byte counts as one), spaces left out. */
#ifndef TRAINER_CHRF_H
#define TRAINER_CHRF_H

#include <stddef.h>
#include <stdint.h>

#define CHRF_ORDER 6

typedef struct {
    double match[CHRF_ORDER], hyp[CHRF_ORDER], ref[CHRF_ORDER];
} chrf_stats;

/* Adds one sentence pair's counts. */
void chrf_add(chrf_stats *s, const uint8_t *hyp, size_t nh, const uint8_t *ref, size_t nr);
/* 0 to 100; an order without n-grams on a side counts 0 there. */
double chrf_score(const chrf_stats *s);

#endif
