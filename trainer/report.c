#include "report.h"

#include "kernel.h"
#include "peak.h"
#include "trainer/nn/exactmath.h"
#include "util.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void print_banner(const run *r, const char *resumed_from, const ckpt_meta *meta)
{
    const config *c = &r->cfg;
    const task_type *t = r->task;
    const char *unit = task_unit(t, &r->data);
    printf("trainer %s: train %s on %d rank(s), %d lanes of %d rows, reduce %s, "
           "%d lane thread(s) x %d BLAS thread(s) per rank, OpenBLAS kernel %s\n",
           PACKAGE_VERSION, c->model, r->np, r->nlanes, r->lane_rows,
           r->tree ? "exact (lane tree)" : r->exact ? "exact (fixed point)" : c->reduce, r->nworkers,
           openblas_get_num_threads(), kernel_story());
    const char *sample = t->sample_name ? t->sample_name : unit;
    printf("data: %zu train %ss, %zu %s %ss; model: %zu parameters", r->data.n_train, sample,
           r->data.n_eval, t->eval_name, sample, r->pt->total);
    if (r->flops_per_unit > 0)
        printf(", %.3g FLOPs/%s; peak %.0f GFLOP/s (%s)", r->flops_per_unit, unit,
               r->peak_flops / 1e9, r->peak_how);
    printf("\n");
    if (resumed_from)
        printf("resumed from %s at step %ld (written by -np %d)\n", resumed_from, r->step,
               meta->world_size);
    if (resumed_from && !r->exact && meta->blas_kernel[0] &&
        strcmp(meta->blas_kernel, kernel_name()) != 0)
        printf("note: the checkpoint was computed with the OpenBLAS kernel %s, this run uses %s: "
               "fast mode's bits will differ from a run that was never interrupted\n",
               meta->blas_kernel, kernel_name());
    config_print(c, "config: ");
    fflush(stdout);
}

static double mfu(const run *r, double units_per_s)
{
    return r->peak_flops > 0 ? 100.0 * units_per_s * r->flops_per_unit / r->peak_flops : 0.0;
}

/* "1.2345", or for a step in phases "D 1.2345 G 0.6789" */
static void loss_text(const run *r, const double *loss, char *buf, size_t size)
{
    buf[0] = 0;
    for (int p = 0; p < r->phases; p++) {
        size_t used = strlen(buf);
        if (r->phases > 1)
            snprintf(buf + used, size - used, "%s%s %.4f", p ? " " : "", r->mt->phase_names[p],
                     loss[p]);
        else
            snprintf(buf + used, size - used, "%8.4f", loss[p]);
    }
}

void print_progress(const run *r, const step_result *s, const double *loss, double window_time,
                    long window_steps, double elapsed, double run_time, long steps_this_run)
{
    char el[32], eta[32];
    format_duration(el, sizeof el, elapsed);
    double per_step = steps_this_run > 0 ? run_time / steps_this_run : 0;
    format_duration(eta, sizeof eta, per_step * (double)(r->total_steps - r->step));
    const double units = (double)r->cfg.batch * r->units_per_row;
    const double per_s = (double)window_steps * units / window_time;
    char norm[32] = "      -";
    if (s->norm >= 0)
        snprintf(norm, sizeof norm, "%7.3f", s->norm);
    char losses[128];
    loss_text(r, loss, losses, sizeof losses);
    char dims[48] = "";
    if (r->dims_per_unit > 0)
        snprintf(dims, sizeof dims, " (%.4f bits/dim)", loss[0] / r->dims_per_unit / M_LN2);
    printf("step %6ld/%ld | epoch %6.2f | loss %s nats/%s%s | lr %.2e | norm %s | %8.0f %s/s",
           r->step, r->total_steps, (double)r->step * units / (double)r->data.n_train, losses,
           task_unit(r->task, &r->data), dims, s->lr, norm, per_s, r->task->rate_unit);
    if (r->flops_per_unit > 0)
        printf(" | MFU %4.1f%% %4.0f GFLOP/s", mfu(r, per_s), per_s * r->flops_per_unit / 1e9);
    printf(" | elapsed %s | eta %s\n", el, eta);
    fflush(stdout);
}

/* "validation loss 1.5780 nats/byte (2.2766 bits/byte) over ...", and for
 * word tokens the perplexity, bits per byte of the text the targets stand
 * for, and the share of unknown targets. */
static void eval_phrase(const run *r, const eval_result *e, char *buf, size_t size)
{
    char over[128], also[128];
    r->task->eval_describe(&r->cfg, &r->data, over, sizeof over);
    const char *u = task_unit(r->task, &r->data);
    if (e->text_bytes > 0 && strcmp(u, "byte") != 0)
        snprintf(also, sizeof also, "perplexity %.2f, %.4f bits/byte, %.2f%% unknown",
                 exp_d(e->loss), e->nats / e->text_bytes / M_LN2, 100.0 * e->unknown / e->units);
    else if (e->accuracy >= 0)
        snprintf(also, sizeof also, "accuracy %.2f%%", 100.0 * e->accuracy);
    else if (r->dims_per_unit > 0)
        snprintf(also, sizeof also, "%.4f bits/dim", e->loss / r->dims_per_unit / M_LN2);
    else
        snprintf(also, sizeof also, "%.4f bits/%s", e->loss / M_LN2, u);
    snprintf(buf, size, "%s %s %.4f nats/%s (%s) over %s", r->task->eval_name, r->mt->loss_name,
             e->loss, u, also, over);
}

void print_eval(const run *r, const char *what, const eval_result *e)
{
    char phrase[384];
    eval_phrase(r, e, phrase, sizeof phrase);
    printf("%s: %s\n", what, phrase);
    fflush(stdout);
}

void print_final(const run *r, const eval_result *e, double units_per_s, double train_time)
{
    char phrase[384];
    eval_phrase(r, e, phrase, sizeof phrase);
    printf("final: step %ld, %s, train %.0f %s/s", r->step, phrase, units_per_s,
           r->task->rate_unit);
    if (r->flops_per_unit > 0)
        printf(", MFU %.1f%% (%.1f GFLOP/s of a %.0f GFLOP/s peak)", mfu(r, units_per_s),
               units_per_s * r->flops_per_unit / 1e9, r->peak_flops / 1e9);
    printf(" (%.1f s training)\n", train_time);
    if (r->np > 1 && r->steps_timed > 0) {
        printf("communication: rank 0 waited %.2f ms a step for the sums over ranks (%.1f%% of "
               "its step)", 1e3 * r->wait_time / r->steps_timed, 100.0 * r->wait_time / train_time);
        if (r->buckets_all > 0 && r->bucket_kb > 0)
            printf("; %.1f of %.1f gradient buckets of %d KiB a step started during the "
                   "backward pass", (double)r->buckets_early / r->steps_timed,
                   (double)r->buckets_all / r->steps_timed, r->bucket_kb);
        printf("\n");
    }
    fflush(stdout);
}

/* The peak of the cores the run computes on: each rank's threads (lane
 * threads in exact mode, BLAS threads in fast mode), at most the cores the
 * rank may use, times one core's measured peak (peak.c). */
double measure_peak(run *r)
{
    char how[128];
    const double core = peak_per_core(how, sizeof how);
    const int threads = r->exact ? r->nworkers : openblas_get_num_threads();
    const double cores = rank_cores() < threads ? rank_cores() : threads;
    double sum[2] = {core * cores, cores};
    comm_sum_double(sum, 2);
    snprintf(r->peak_how, sizeof r->peak_how, "%.4g cores x %s", sum[1], how);
    return sum[0];
}
