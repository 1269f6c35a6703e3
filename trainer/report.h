/* What a training run prints: the banner, a progress line every --log-every
 * steps, evaluation lines, the final line, and the peak that MFU is
 * measured against (peak.c). Rank 0 prints; measure_peak is collective. */
#ifndef TRAINER_REPORT_H
#define TRAINER_REPORT_H

#include "run.h"

void print_banner(const run *r, const char *resumed_from, const ckpt_meta *meta);
/* loss: each phase's mean over the window */
void print_progress(const run *r, const step_result *s, const double *loss, double window_time,
                    long window_steps, double elapsed, double run_time, long steps_this_run);
/* "<what>: test negative ELBO 261.1862 nats/image (...) over 10000 images" */
void print_eval(const run *r, const char *what, const eval_result *e);
void print_final(const run *r, const eval_result *e, double units_per_s, double train_time);

/* The sgemm rate of all ranks at once, in FLOP/s: every thread that trains
 * (lane threads, or BLAS's own) multiplies matrices as large as the model's
 * calls, all at the same time; the best of three rounds. */
double measure_peak(run *r);

#endif
