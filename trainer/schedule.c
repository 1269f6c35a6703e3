#include "schedule.h"

#include "nn/exactmath.h"

#include <math.h>

double lr_at(double lr, int warmup, double min_lr_frac, long step, long total)
{
    double t = (double)step + 1.0;
    if (warmup > 0 && t <= warmup)
        return lr * t / warmup;
    double span = (double)(total - warmup);
    double progress = span > 0 ? (t - warmup) / span : 1.0;
    progress = progress > 1.0 ? 1.0 : progress;
    double lo = lr * min_lr_frac;
    double sine, cosine; /* of pi progress: half a turn at the end */
    sincos_turns_d(0.5 * progress, &sine, &cosine);
    return lo + 0.5 * (1.0 + cosine) * (lr - lo);
}

long total_steps(long steps, double epochs, double n_units, int batch, int units_per_row)
{
    if (steps)
        return steps;
    return (long)ceil(epochs * n_units / ((double)batch * units_per_row));
}
