/* How long a run is and how fast it learns at each step. */
#ifndef TRAINER_SCHEDULE_H
#define TRAINER_SCHEDULE_H

/* The learning rate of the update that ends step `step` (0-based) of
 * `total`: linear warmup over `warmup` steps up to lr, then a cosine from lr
 * down to min_lr_frac * lr at the last step (constant when min_lr_frac is
 * 1). */
double lr_at(double lr, int warmup, double min_lr_frac, long step, long total);

/* Steps of a run: `steps` when it is set, else enough whole steps to pass
 * `epochs` times over n_units loss units (images, bytes) at batch rows of
 * units_per_row units a step. */
long total_steps(long steps, double epochs, double n_units, int batch, int units_per_row);

#endif
