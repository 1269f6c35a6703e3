/* The train command: set a run up, resume it if asked, step until the end
 * or a stop, checkpoint, evaluate. The model and its task are reached only
 * through their interfaces (model.h, task.h); the step is step.c's. */
#include "train.h"

#include "metrics.h"
#include "report.h"
#include "run.h"
#include "schedule.h"
#include "signals.h"
#include "trainer/nn/exactmath.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The loop's running figures: a window of steps between progress lines. */
typedef struct {
    double t0, train_time, window_time, window_loss[MAX_PHASES], window_fig[MAX_FIGURES];
    long window_steps, steps_this_run, skipped;
    train_stats st;
    metrics met;     /* rank 0 */
    int tty;         /* rank 0's stderr is a terminal: the progress bar */
    double bar_time; /* when the bar was last drawn */
} loop_state;

static void clear_bar(const loop_state *ls)
{
    if (ls->tty)
        fputs("\r\033[K", stderr);
}

/* A logged window into the metrics file: its mean losses (each phase's),
 * figures, learning rate, norm, throughput and the time so far. */
static void record_window(const run *r, loop_state *ls, const step_result *s, const double *loss,
                          const double *fig, double per_s)
{
    metric v[6 + MAX_PHASES + MAX_FIGURES];
    char names[MAX_PHASES][16];
    int n = 0;
    const double units = (double)r->cfg.batch * r->units_per_row;
    v[n++] = (metric){"epoch", (double)r->step * units / (double)r->data.n_train};
    v[n++] = (metric){"loss", loss[0]};
    for (int p = 0; r->phases > 1 && p < r->phases; p++) {
        snprintf(names[p], sizeof names[p], "loss_%s", r->mt->phase_names[p]);
        v[n++] = (metric){names[p], loss[p]};
    }
    for (int i = 0; i < r->mt->nfigures; i++)
        v[n++] = (metric){r->mt->figure_names[i], fig[i]};
    v[n++] = (metric){"lr", s->lr};
    v[n++] = (metric){"grad_norm", s->norm >= 0 ? s->norm : NAN};
    v[n++] = (metric){r->task->rate_unit[0] == 't' ? "tokens_per_s" : "samples_per_s", per_s};
    v[n++] = (metric){"elapsed_s", now_seconds() - ls->t0};
    metrics_write(&ls->met, "train", r->step, v, n);
}

/* An evaluation into the metrics file. */
static void record_eval(const run *r, loop_state *ls, const char *kind, const eval_result *e)
{
    metric v[6];
    int n = 0;
    v[n++] = (metric){"eval_loss", e->loss};
    if (e->text_bytes > 0)
        v[n++] = (metric){"eval_bits_per_byte", e->nats / e->text_bytes / M_LN2};
    if (e->text_bytes > 0 && e->units != e->text_bytes) {
        v[n++] = (metric){"eval_perplexity", exp_d(e->loss)};
        v[n++] = (metric){"eval_unknown", e->unknown / e->units};
    }
    if (e->accuracy >= 0)
        v[n++] = (metric){"eval_accuracy", e->accuracy};
    if (r->dims_per_unit > 0)
        v[n++] = (metric){"eval_bits_per_dim", e->loss / r->dims_per_unit / M_LN2};
    v[n++] = (metric){"elapsed_s", now_seconds() - ls->t0};
    metrics_write(&ls->met, kind, r->step, v, n);
}

static int set_up(run *r, int argc, char **argv, char *resume, size_t size, ckpt_meta *meta,
                  int *status)
{
    if (run_configure(r, CMD_TRAIN, argc, argv, resume, size, meta, status) != 0)
        return -1;
    *status = EXIT_BAD_INPUT;
    const config *c = &r->cfg;
    if (run_setup_lanes(r) != 0 || run_load_data(r, 1) != 0 ||
        (resume[0] && run_read_vocab(r, resume) != 0) || run_build_model(r) != 0 ||
        (!resume[0] && run_init_from_data(r) != 0))
        return -1;
    if (resume[0] && run_read_checkpoint(r, resume, meta) != 0)
        return -1;
    r->total_steps = total_steps(c->steps, c->epochs, (double)r->data.n_train, c->batch,
                                 r->units_per_row);
    if (agree(r->loud && make_dirs(c->run_dir) != 0))
        return -1;
    if (r->exact && agree(lane_pool_start(&r->pool, r->nworkers, step_lanes, r) != 0)) {
        *status = EXIT_INTERNAL;
        return -1;
    }
    if (r->flops_per_unit > 0)
        r->peak_flops = measure_peak(r);
    if (r->loud)
        print_banner(r, resume[0] ? resume : NULL, meta);
    return 0;
}

/* A step whose gradient or loss was not finite: one line, and the end of
 * the run (EXIT_INTERNAL, nothing written) unless it was skipped (-1). */
static int nonfinite(run *r, loop_state *ls, const step_result *s)
{
    char what[160];
    if (s->bad_tensor >= 0)
        snprintf(what, sizeof what, "the gradient of %s", r->pt->v[s->bad_tensor].name);
    else
        snprintf(what, sizeof what, "the loss (%g)", s->loss);
    if (!s->skipped) {
        if (r->loud)
            fprintf(stderr,
                    "trainer: step %ld: %s is not finite: training diverged (lower --lr?); "
                    "stopped without writing, the last checkpoint is kept\n",
                    r->step + 1, what);
        return EXIT_INTERNAL;
    }
    ls->skipped++;
    if (r->loud)
        printf("step %ld: %s is not finite: update skipped (--on-nonfinite skip)\n", r->step,
               what);
    return -1;
}

/* Progress, evaluation, samples and checkpoints after a step. Returns the
 * exit status when the run ends here, -1 to go on. */
static int after_step(run *r, loop_state *ls, const step_result *s)
{
    const config *c = &r->cfg;
    if ((s->bad_tensor >= 0 || !isfinite(s->loss)) && nonfinite(r, ls, s) >= 0)
        return EXIT_INTERNAL;
    const int last = r->step == r->total_steps;
    if ((r->step % c->log_every == 0 || last || s->stop) && ls->window_steps > 0) {
        double mean[MAX_PHASES], fig[MAX_FIGURES];
        for (int p = 0; p < r->phases; p++) {
            mean[p] = ls->window_loss[p] / ls->window_steps;
            ls->window_loss[p] = 0.0;
        }
        for (int i = 0; i < r->mt->nfigures; i++) {
            fig[i] = ls->window_fig[i] / ls->window_steps;
            ls->window_fig[i] = 0.0;
        }
        ls->st.last_loss = mean[0];
        if (isnan(ls->st.first_loss))
            ls->st.first_loss = ls->st.last_loss;
        const double per_s = (double)ls->window_steps * c->batch * r->units_per_row / ls->window_time;
        if (r->loud) {
            clear_bar(ls);
            print_progress(r, s, mean, ls->window_time, ls->window_steps, now_seconds() - ls->t0,
                           ls->train_time, ls->steps_this_run);
            record_window(r, ls, s, mean, fig, per_s);
        }
        ls->window_time = 0.0;
        ls->window_steps = 0;
    }
    if (c->eval_every && r->step % c->eval_every == 0 && !last) {
        eval_result e = evaluate(r);
        char what[64];
        snprintf(what, sizeof what, "eval step %ld", r->step);
        if (r->loud) {
            print_eval(r, what, &e);
            record_eval(r, ls, "eval", &e);
        }
    }
    if (r->loud && r->task->show && !last)
        r->task->show(c, &r->data, r->work[0].m, r->params, r->step, 0);
    const int asked = c->stop_at && r->step >= c->stop_at && !last; /* configuration: all ranks */
    const int stop = s->stop || asked;
    if ((stop || (c->checkpoint_every && r->step % c->checkpoint_every == 0)) && !last) {
        if (run_write_checkpoint(r) != 0)
            return EXIT_INTERNAL;
        if (r->loud)
            printf("checkpoint: %s/checkpoint.h5 at step %ld\n", c->run_dir, r->step);
    }
    if (!stop)
        return -1;
    if (r->loud)
        printf("stopped %s at step %ld; resume with --resume auto\n",
               asked ? "as asked (--stop-at)" : "by a signal", r->step);
    return EXIT_STOPPED;
}

/* The end of a run that reached its last step. */
static int finish(run *r, loop_state *ls)
{
    if (run_write_checkpoint(r) != 0)
        return EXIT_INTERNAL;
    eval_result e = evaluate(r);
    const double units = (double)r->cfg.batch * r->units_per_row;
    ls->st.test_loss = e.loss;
    ls->st.samples_per_s =
        ls->train_time > 0 ? (double)ls->steps_this_run * r->cfg.batch / ls->train_time : 0;
    if (r->loud) {
        record_eval(r, ls, "final", &e);
        printf("checkpoint: %s/checkpoint.h5 at step %ld\n", r->cfg.run_dir, r->step);
        print_final(r, &e, ls->steps_this_run * units / (ls->train_time > 0 ? ls->train_time : 1),
                    ls->train_time);
        if (ls->skipped)
            printf("%ld step(s) of this run skipped their update: non-finite gradient or loss\n",
                   ls->skipped);
        if (r->task->show)
            r->task->show(&r->cfg, &r->data, r->work[0].m, r->params, r->step, 1);
    }
    return EXIT_DONE;
}

/* On a terminal, a bar on stderr redrawn at most five times a second; the
 * plain progress lines on stdout stay as they are (Slurm files, pipes). */
static void draw_bar(const run *r, loop_state *ls, const step_result *s)
{
    const double now = now_seconds();
    if (!r->loud || !ls->tty || (now - ls->bar_time < 0.2 && r->step < r->total_steps))
        return;
    ls->bar_time = now;
    char bar[31];
    const double done = (double)r->step / (double)r->total_steps;
    for (int i = 0; i < 30; i++)
        bar[i] = i < (int)(done * 30.0) ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r[%s] %5.1f%% step %ld/%ld loss %.4f ", bar, 100.0 * done, r->step,
            r->total_steps, s->loss);
    fflush(stderr);
}


static int train_loop(run *r, loop_state *ls)
{
    ls->tty = r->loud && isatty(STDERR_FILENO);
    signals_install();
    ls->t0 = now_seconds();
    int status = -1;
    while (status < 0 && r->step < r->total_steps) {
        const int log_next =
            (r->step + 1) % r->cfg.log_every == 0 || r->step + 1 == r->total_steps;
        double ts = now_seconds();
        step_result s = train_step(r, log_next);
        double dt = now_seconds() - ts;
        ls->train_time += dt;
        ls->steps_this_run++;
        r->steps_timed++;
        if (!s.skipped) {
            ls->window_time += dt;
            for (int p = 0; p < r->phases; p++)
                ls->window_loss[p] += s.phase_loss[p];
            for (int i = 0; i < r->mt->nfigures; i++)
                ls->window_fig[i] += s.figures[i];
            ls->window_steps++;
        }
        status = after_step(r, ls, &s);
        if (status < 0)
            draw_bar(r, ls, &s);
    }
    clear_bar(ls);
    return status < 0 ? finish(r, ls) : status;
}

int cmd_train(int argc, char **argv) { return train_run(argc, argv, NULL); }

int train_run(int argc, char **argv, train_stats *stats)
{
    loop_state ls = {0};
    ls.st.first_loss = NAN;
    run r;
    run_begin(&r);
    io_quiet_hdf5();
    char resume[CFG_PATH + 32];
    ckpt_meta meta = {0};
    int status = EXIT_BAD_INPUT;
    if (set_up(&r, argc, argv, resume, sizeof resume, &meta, &status) == 0 &&
        !agree(r.loud && metrics_open(&ls.met, r.cfg.run_dir, resume[0] ? r.step : -1) != 0)) {
        status = train_loop(&r, &ls);
        fflush(stdout);
        ls.st.step = r.step;
        ls.st.params_fnv1a64 = fnv1a64(r.params, r.pt->total * sizeof(float));
        if (stats)
            *stats = ls.st;
    }
    metrics_close(&ls.met);
    run_end(&r);
    return status;
}
