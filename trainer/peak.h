/* The CPU's peak float rate, measured (peak.c): what MFU divides by. */
#ifndef TRAINER_PEAK_H
#define TRAINER_PEAK_H

#include <stddef.h>

/* FLOP/s of one core at its widest FMA (the best of today's measurement and
 * the cached best for this CPU), and a few words of how, into how. */
double peak_per_core(char *how, size_t size);

#endif
