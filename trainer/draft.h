/* A byte n-gram table for guessing what a language model will write next.
 *
 * For every context of 1 to DRAFT_ORDER bytes seen in a text, the byte that
 * most often followed it (the smallest on a tie). Sampling guesses several
 * bytes ahead from the longest context the table knows and lets the model
 * check them all in one call (model.h's gen_lookahead): the text sampled is
 * the same with or without the table, only faster. Built from training
 * text, stored in checkpoints (/draft) as a blob:
 *   "TRDRAFT1", then DRAFT_ORDER uint32 counts (little-endian), then for
 *   each order its entries as uint64 (context bytes << 8 | next byte),
 *   sorted. */
#ifndef TRAINER_DRAFT_H
#define TRAINER_DRAFT_H

#include <stddef.h>
#include <stdint.h>

#define DRAFT_ORDER 5

/* The table of text[0, n) as a malloc'ed blob; NULL when out of memory. */
uint8_t *draft_build(const uint8_t *text, size_t n, size_t *bytes);

/* Whether blob holds a well-formed table (sizes that add up). */
int draft_valid(const uint8_t *blob, size_t bytes);

/* Up to k guessed bytes after ctx[0, len) into out; returns how many. */
int draft_guess(const uint8_t *blob, const int32_t *ctx, int len, int32_t *out, int k);

#endif
