/* The configuration, the schedule, the model registry and the stop
 * signals, without MPI: the learning-rate schedule, the total-steps
 * arithmetic, option precedence (defaults < file < checkpoint < flags),
 * option ownership, a model registered from outside the program
 * (tests/toy_model.c), and the signal handlers. */
#include "trainer/config.h"
#include "trainer/model.h"
#include "trainer/schedule.h"
#include "trainer/signals.h"
#include "tests/toy_model.h"

#include "tests/suite.h"

#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void set(cfg_list *l, const char *k, const char *v)
{
    ck_assert_int_eq(cfg_list_set(l, k, v), 0);
}

START_TEST(lr_warmup_cosine_floor)
{
    const double lr = 1e-3;
    /* warmup 10 of 110 steps, cosine to 10% */
    ck_assert_double_eq_tol(lr_at(lr, 10, 0.1, 0, 110), lr / 10, 1e-15);
    ck_assert_double_eq_tol(lr_at(lr, 10, 0.1, 4, 110), lr / 2, 1e-15);
    ck_assert_double_eq_tol(lr_at(lr, 10, 0.1, 9, 110), lr, 1e-15);
    /* halfway through the cosine: the mean of peak and floor */
    ck_assert_double_eq_tol(lr_at(lr, 10, 0.1, 59, 110), 0.55 * lr, 1e-12);
    /* the last update is at the floor, and it stays there */
    ck_assert_double_eq_tol(lr_at(lr, 10, 0.1, 109, 110), 0.1 * lr, 1e-15);
    ck_assert_double_eq_tol(lr_at(lr, 10, 0.1, 200, 110), 0.1 * lr, 1e-15);
    /* monotone after the warmup */
    for (long s = 10; s < 110; s++)
        ck_assert_double_le(lr_at(lr, 10, 0.1, s, 110), lr_at(lr, 10, 0.1, s - 1, 110));
    /* min-lr-frac 1: constant; no warmup: the peak from the first step */
    ck_assert_double_eq(lr_at(lr, 0, 1.0, 0, 50), lr);
    ck_assert_double_eq(lr_at(lr, 0, 1.0, 49, 50), lr);
    /* warmup longer than the run: still linear */
    ck_assert_double_eq_tol(lr_at(lr, 100, 0.1, 49, 50), lr / 2, 1e-15);
}
END_TEST

START_TEST(total_steps_arithmetic)
{
    ck_assert_int_eq(total_steps(40, 10, 60000, 128, 1), 40);          /* --steps wins */
    ck_assert_int_eq(total_steps(0, 1, 60000, 128, 1), 469);           /* ceil(468.75) */
    ck_assert_int_eq(total_steps(0, 10, 60000, 128, 1), 4688);         /* ceil(4687.5) */
    ck_assert_int_eq(total_steps(0, 1, 60000, 120, 1), 500);           /* exact division */
    ck_assert_int_eq(total_steps(0, 1, 3868416, 32, 128), 945);        /* bytes / (32 * 128) */
    ck_assert_int_eq(total_steps(0, 0.5, 1000, 10, 1), 50);
}
END_TEST

/* defaults < model defaults < file < checkpoint < flags */
START_TEST(precedence)
{
    cfg_list file = {0}, ckpt = {0}, flags = {0};
    set(&file, "model", "gpt");
    set(&file, "lr", "0.1");
    set(&file, "batch", "64");
    set(&file, "warmup", "5");
    set(&file, "dim", "64");
    set(&ckpt, "model", "gpt");
    set(&ckpt, "lr", "0.2");
    set(&ckpt, "batch", "96");
    set(&ckpt, "dim", "128");
    set(&flags, "lr", "0.3");
    set(&flags, "heads", "8");
    const cfg_list *layers[3] = {&file, &ckpt, &flags};
    config c;
    ck_assert_int_eq(config_build(&c, CMD_TRAIN, layers, 3, 1), 0);
    ck_assert_str_eq(c.model, "gpt");
    ck_assert_ptr_eq(c.mt, model_find("gpt"));
    ck_assert_double_eq(c.lr, 0.3);      /* flag */
    ck_assert_int_eq(c.batch, 96);       /* checkpoint over file */
    ck_assert_int_eq(c.warmup, 5);       /* file over the model's default 100 */
    ck_assert_int_eq(c.log_every, 25);   /* the model's default over the common 50 */
    ck_assert_int_eq(c.micro_steps, 1);  /* common default */
    ck_assert_str_eq(c.data, "data/kjv"); /* the task's default */
    char v[64];
    const opt_spec *dim = opt_find(&c.mt->opts, "dim"), *heads = opt_find(&c.mt->opts, "heads");
    opt_format(c.model_opts, dim, v, sizeof v);
    ck_assert_str_eq(v, "128"); /* a model option: checkpoint over file */
    opt_format(c.model_opts, heads, v, sizeof v);
    ck_assert_str_eq(v, "8");
    config_free(&c);
    cfg_list_free(&file);
    cfg_list_free(&ckpt);
    cfg_list_free(&flags);
}
END_TEST

/* The flags and the --config file land in separate lists. */
START_TEST(parse_file_and_flags)
{
    char path[] = "/tmp/trainer-config-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char text[] = "# a comment\nlr = 0.01   # trailing\nkl_weight = 0.5\n\nbatch=64\n";
    ck_assert_int_eq(write(fd, text, sizeof text - 1), (int)(sizeof text - 1));
    close(fd);
    char *argv[] = {"train", "--config", path, "--lr", "0.3", "--autoencoder", NULL};
    cfg_list file = {0}, flags = {0};
    ck_assert_int_eq(config_parse_args(CMD_TRAIN, 6, argv, &file, &flags, 1), 0);
    unlink(path);
    ck_assert_int_eq(file.n, 3);
    ck_assert_str_eq(cfg_list_get(&file, "lr"), "0.01");
    ck_assert_str_eq(cfg_list_get(&file, "kl-weight"), "0.5");
    ck_assert_str_eq(cfg_list_get(&file, "batch"), "64");
    ck_assert_int_eq(flags.n, 2);
    ck_assert_str_eq(cfg_list_get(&flags, "lr"), "0.3");
    ck_assert_str_eq(cfg_list_get(&flags, "autoencoder"), "1");
    cfg_list_free(&file);
    cfg_list_free(&flags);
}
END_TEST

/* Building a configuration that must fail: the one line it prints. */
static const char *refusal(const char *model, const char *key, const char *value)
{
    cfg_list l = {0};
    set(&l, "model", model);
    set(&l, key, value);
    const cfg_list *layers[1] = {&l};
    config c;
    capture_begin();
    int rc = config_build(&c, CMD_TRAIN, layers, 1, 1);
    const char *err = capture_end();
    config_free(&c);
    cfg_list_free(&l);
    ck_assert_int_eq(rc, -1);
    const char *nl = strchr(err, '\n');
    ck_assert_msg(nl && nl[1] == 0, "expected one line, got \"%s\"", err);
    return err;
}

START_TEST(ownership)
{
    ck_assert_str_eq(refusal("vae", "heads", "4"),
                     "trainer: --heads is an option of the gpt and seq2seq models, not of vae\n");
    ck_assert_str_eq(refusal("gpt", "latent", "8"),
                     "trainer: --latent is an option of the vae and gan models, not of gpt\n");
    ck_assert_str_eq(refusal("vae", "dim", "64"),
                     "trainer: --dim is an option of the gpt, lstm and seq2seq models, not of vae\n");
    ck_assert_str_eq(refusal("lstm", "heads", "2"),
                     "trainer: --heads is an option of the gpt and seq2seq models, not of lstm\n");
    ck_assert_str_eq(refusal("vae", "ctx", "64"),
                     "trainer: --ctx is an option of the text task (models like gpt), not of vae\n");
    ck_assert_str_eq(refusal("gpt", "toy-nan-step", "5"),
                     "trainer: --toy-nan-step is an option of the toy model, not of gpt\n");
    ck_assert_str_eq(refusal("bogus", "lr", "1"),
                     "trainer: --model: \"bogus\" is not a model (vae, gpt, lstm, gan, classifier, glow, seq2seq, toy)\n");
    ck_assert_str_eq(refusal("gpt", "dim", "30"),
                     "trainer: --dim 30 is not divisible by --heads 4\n");
    /* and the owner's own options are fine */
    cfg_list l = {0};
    set(&l, "model", "toy");
    set(&l, "toy-classes", "4");
    const cfg_list *layers[1] = {&l};
    config c;
    ck_assert_int_eq(config_build(&c, CMD_TRAIN, layers, 1, 1), 0);
    ck_assert_int_eq(MODEL_OPTS(&c, toy_opts)->classes, 4);
    config_free(&c);
    cfg_list_free(&l);
}
END_TEST

/* A checkpoint's /config holds what the run is: the model's options and its
 * task's, none of another model's, and not what steers one run (resume,
 * stop-at). */
START_TEST(config_list_has_the_models_options)
{
    cfg_list l = {0}, out = {0};
    set(&l, "model", "gpt");
    set(&l, "stop-at", "5");
    const cfg_list *layers[1] = {&l};
    config c;
    ck_assert_int_eq(config_build(&c, CMD_TRAIN, layers, 1, 1), 0);
    ck_assert_int_eq(config_to_list(&c, &out), 0);
    ck_assert_str_eq(cfg_list_get(&out, "model"), "gpt");
    ck_assert_str_eq(cfg_list_get(&out, "heads"), "4");
    ck_assert_str_eq(cfg_list_get(&out, "ctx"), "128");
    ck_assert_ptr_null(cfg_list_get(&out, "latent"));
    ck_assert_ptr_null(cfg_list_get(&out, "stop-at"));
    ck_assert_ptr_null(cfg_list_get(&out, "resume"));
    /* and it reads back to the same configuration */
    const cfg_list *again[1] = {&out};
    config d;
    ck_assert_int_eq(config_build(&d, CMD_TRAIN, again, 1, 1), 0);
    cfg_list out2 = {0};
    ck_assert_int_eq(config_to_list(&d, &out2), 0);
    ck_assert_int_eq(out.n, out2.n);
    for (int i = 0; i < out.n; i++)
        ck_assert_str_eq(out.e[i].value, out2.e[i].value);
    config_free(&c);
    config_free(&d);
    cfg_list_free(&l);
    cfg_list_free(&out);
    cfg_list_free(&out2);
}
END_TEST

START_TEST(registry)
{
    ck_assert_ptr_eq(model_find("toy"), &toy_model);
    ck_assert_ptr_null(model_find("nope"));
    capture_begin();
    int again = model_register(&toy_model);
    const char *err = capture_end();
    ck_assert_int_eq(again, -1);
    ck_assert_ptr_nonnull(strstr(err, "name taken"));
    /* a model whose option has the type another model's has not */
    static const opt_spec clash[] = {
        OPT(toy_opts, classes, "dim", OPT_DOUBLE, "1", CMD_TRAIN, 0, 9, "clashes with gpt's"),
    };
    model_type bad = toy_model;
    bad.name = "clash";
    bad.opts = (opt_group)OPT_GROUP(clash, toy_opts);
    capture_begin();
    int rc = model_register(&bad);
    capture_end();
    ck_assert_int_eq(rc, -1);
    /* --help has a section for every model, the registered one too */
    char buf[16384] = "";
    fflush(stdout);
    FILE *f = tmpfile();
    int saved = dup(1);
    dup2(fileno(f), 1);
    config_usage(CMD_TRAIN);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    rewind(f);
    buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "--model vae:"));
    ck_assert_ptr_nonnull(strstr(buf, "--model gpt:"));
    ck_assert_ptr_nonnull(strstr(buf, "--model toy: softmax regression"));
    ck_assert_ptr_nonnull(strstr(buf, "--toy-classes V"));
    ck_assert_msg(strstr(buf, "--lr V") < strstr(buf, "--model vae:"), "common options first");
}
END_TEST

/* A stop request is seen, is forgotten by the next run's install, and the
 * handlers restart interrupted calls. */
START_TEST(stop_signals)
{
    signals_install();
    ck_assert_int_eq(stop_requested(), 0);
    raise(SIGUSR1);
    ck_assert_int_eq(stop_requested(), SIGUSR1);
    signals_install(); /* the next run in this process */
    ck_assert_int_eq(stop_requested(), 0);
    raise(SIGTERM);
    ck_assert_int_eq(stop_requested(), SIGTERM);
    const int sigs[3] = {SIGTERM, SIGUSR1, SIGINT};
    for (int i = 0; i < 3; i++) {
        struct sigaction sa;
        ck_assert_int_eq(sigaction(sigs[i], NULL, &sa), 0);
        ck_assert_msg(sa.sa_flags & SA_RESTART, "signal %d without SA_RESTART", sigs[i]);
    }
    signals_ignore_file_limit();
    struct sigaction sa;
    ck_assert_int_eq(sigaction(SIGXFSZ, NULL, &sa), 0);
    ck_assert_ptr_eq((void *)sa.sa_handler, (void *)SIG_IGN);
}
END_TEST

/* The manual page has every option of every table (it is made from them). */
START_TEST(manual_lists_every_option)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    config_man(f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, ".TH TRAINER 1"));
    int checked = 0;
    for (int i = 0; i < model_count(); i++) {
        const opt_group *g[3] = {&model_at(i)->opts, &model_at(i)->task->opts,
                                 config_common_options()};
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < g[k]->n; j++) {
                char want[96] = "\\fB\\-\\-";
                for (const char *p = g[k]->v[j].name; *p; p++)
                    strcat(want, *p == '-' ? "\\-" : (char[]){*p, 0});
                ck_assert_msg(strstr(text, want), "%s missing from the manual", want);
                checked++;
            }
    }
    ck_assert_int_gt(checked, 60);
    free(text);
}
END_TEST

int main(void)
{
    if (model_register(&toy_model) != 0)
        return 1;
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, lr_warmup_cosine_floor);
    tcase_add_test(tc, total_steps_arithmetic);
    tcase_add_test(tc, precedence);
    tcase_add_test(tc, parse_file_and_flags);
    tcase_add_test(tc, ownership);
    tcase_add_test(tc, config_list_has_the_models_options);
    tcase_add_test(tc, registry);
    tcase_add_test(tc, stop_signals);
    tcase_add_test(tc, manual_lists_every_option);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
