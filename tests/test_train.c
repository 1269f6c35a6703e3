/* Whole training runs through train_run, under mpirun -np 1 and 2 (see
 * tests/mpi.sh), on the small synthetic shards in $TRAINER_TEST_DATA
 * (images) and $TRAINER_TEST_TEXT (text). */
#include "comm/comm.h"
#include "tests/toy_model.h"
#include "trainer/train.h"

#include "tests/suite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *data_dir(void)
{
    const char *d = getenv("TRAINER_TEST_DATA");
    ck_assert_msg(d != NULL, "TRAINER_TEST_DATA is not set");
    return d;
}

/* the tests below run the VAE, then a tiny GPT, then the test-only model */
enum { VAE, GPT, TOY, LSTM };
static int mode;

/* extra: "auto" resumes; a number stops there (--stop-at). */
static int train(train_stats *st, const char *run_dir, const char *steps, const char *extra)
{
    char *argv[48];
    int argc = 0;
    argv[argc++] = "train";
    if (mode == GPT || mode == LSTM) {
        const char *d = getenv("TRAINER_TEST_TEXT");
        ck_assert_msg(d != NULL, "TRAINER_TEST_TEXT is not set");
        char *lm_args[] = {"--data", (char *)d, "--layers", "2", "--dim", "32", "--ctx", "32",
                           "--batch", "16", "--lr", "3e-3", "--warmup", "5", "--val-windows", "32",
                           "--eval-every", "0", "--run-dir", (char *)run_dir, "--steps",
                           (char *)steps, "--log-every", "5", "--dropout", "0.1",
                           "--micro-steps", "2"};
        char *gpt_args[] = {"--model", "gpt", "--heads", "2"};
        char *lstm_args[] = {"--model", "lstm", "--embed", "16", "--lr", "1e-2"};
        for (size_t i = 0; i < sizeof lm_args / sizeof *lm_args; i++)
            argv[argc++] = lm_args[i];
        char **own = mode == GPT ? gpt_args : lstm_args;
        int nown = mode == GPT ? 4 : 6;
        for (int i = 0; i < nown; i++)
            argv[argc++] = own[i];
        if (extra) {
            argv[argc++] = strcmp(extra, "auto") ? "--stop-at" : "--resume";
            argv[argc++] = (char *)extra;
        }
        argv[argc] = NULL;
        return train_run(argc, argv, st);
    }
    if (mode == TOY) {
        argv[argc++] = "--model";
        argv[argc++] = "toy";
        argv[argc++] = "--lr";
        argv[argc++] = "0.01";
    } else {
        argv[argc++] = "--hidden";
        argv[argc++] = "64,32";
        argv[argc++] = "--micro-steps";
        argv[argc++] = "2";
    }
    argv[argc++] = "--data";
    argv[argc++] = (char *)data_dir();
    argv[argc++] = "--run-dir";
    argv[argc++] = (char *)run_dir;
    argv[argc++] = "--steps";
    argv[argc++] = (char *)steps;
    argv[argc++] = "--batch";
    argv[argc++] = "32";
    argv[argc++] = "--log-every";
    argv[argc++] = "5";
    if (extra) {
        argv[argc++] = strcmp(extra, "auto") ? "--stop-at" : "--resume";
        argv[argc++] = (char *)extra;
    }
    argv[argc] = NULL;
    return train_run(argc, argv, st);
}

static char runs[512];

static const char *run_path(const char *name)
{
    static char buf[600];
    static const char *const names[] = {"vae", "gpt", "toy", "lstm"};
    snprintf(buf, sizeof buf, "%s/np%d-%s-%s", runs, comm_size(), names[mode], name);
    return buf;
}

START_TEST(thirty_steps_lower_the_loss)
{
    mode = _i;
    train_stats st;
    ck_assert_int_eq(train(&st, run_path("loss"), "30", NULL), 0);
    ck_assert_int_eq(st.step, 30);
    ck_assert_msg(st.last_loss < 0.8 * st.first_loss, "loss went from %g to %g", st.first_loss,
                  st.last_loss);
    /* the held-out loss (test ELBO, or validation nats/byte) ends below the
     * training loss of the first steps */
    ck_assert_double_lt(st.test_loss, st.first_loss);
}
END_TEST

START_TEST(resume_is_bit_exact)
{
    mode = _i;
    train_stats straight, half, resumed;
    ck_assert_int_eq(train(&straight, run_path("straight"), "20", NULL), 0);
    /* stopped at step 10 of 20, so the learning-rate schedule is the same */
    ck_assert_int_eq(train(&half, run_path("halves"), "20", "10"), 75);
    ck_assert_int_eq(half.step, 10);
    ck_assert_int_eq(train(&resumed, run_path("halves"), "20", "auto"), 0);
    ck_assert_int_eq(resumed.step, 20);
    ck_assert_msg(half.params_fnv1a64 != straight.params_fnv1a64, "10 steps changed nothing");
    ck_assert_msg(resumed.params_fnv1a64 == straight.params_fnv1a64,
                  "20 straight %016llx, 10 + 10 resumed %016llx", straight.params_fnv1a64,
                  resumed.params_fnv1a64);
    /* for tests/mpi.sh, which compares them across -np */
    static const char *const names[] = {"vae", "gpt", "toy", "lstm"};
    if (comm_rank() == 0)
        printf("%s 20-step fnv1a64: %llu\n", names[mode], straight.params_fnv1a64);
}
END_TEST

/* A NaN in one gradient (the test model's --toy-nan-step): by default the
 * run stops before that step counts, with one line naming the step and the
 * tensor, and keeps its last checkpoint; with --on-nonfinite skip it goes on
 * without that update and ends with finite parameters. */
START_TEST(nonfinite_gradient)
{
    char *base[] = {"train", "--model", "toy", "--data", (char *)data_dir(), "--batch", "32",
                    "--lr", "0.01", "--steps", "10", "--checkpoint-every", "3", "--toy-nan-step",
                    "5", "--log-every", "100", "--run-dir"};
    const int nb = (int)(sizeof base / sizeof base[0]);
    char *argv[32];
    for (int i = 0; i < nb; i++)
        argv[i] = base[i];
    argv[nb] = (char *)run_path("nan-stop");
    argv[nb + 1] = NULL;
    mode = TOY;
    train_stats st;
    capture_begin();
    int status = train_run(nb + 1, argv, &st);
    const char *err = capture_end();
    ck_assert_int_eq(status, 1);
    ck_assert_int_eq(st.step, 4);
    if (comm_rank() == 0)
        ck_assert_msg(strstr(err, "trainer: step 5: the gradient of fc.bias is not finite") &&
                          strchr(err, '\n') == err + strlen(err) - 1,
                      "got \"%s\"", err);
    argv[nb] = (char *)run_path("nan-skip");
    argv[nb + 1] = "--on-nonfinite";
    argv[nb + 2] = "skip";
    argv[nb + 3] = NULL;
    ck_assert_int_eq(train_run(nb + 3, argv, &st), 0);
    ck_assert_int_eq(st.step, 10);
    ck_assert_msg(st.test_loss == st.test_loss && st.test_loss < 3.0, "test loss %g", st.test_loss);
}
END_TEST

int main(int argc, char **argv)
{
    comm_init(&argc, &argv);
    if (model_register(&toy_model) != 0)
        return 1;
    const char *r = getenv("TRAINER_TEST_RUNS");
    snprintf(runs, sizeof runs, "%s", r ? r : "/tmp/trainer-test-runs");
    Suite *s = suite_create(comm_size() == 1 ? "train -np 1" : "train -np 2+");
    TCase *tc = tcase_create("training");
    /* loop index 0: the VAE with 2 micro-steps; 1: a tiny GPT with dropout
     * and 2 micro-steps; 2: a model registered by this program; 3: a tiny
     * LSTM with dropout and 2 micro-steps */
    tcase_add_loop_test(tc, thirty_steps_lower_the_loss, VAE, LSTM + 1);
    tcase_add_loop_test(tc, resume_is_bit_exact, VAE, LSTM + 1);
    tcase_add_test(tc, nonfinite_gradient);
    suite_add_tcase(s, tc);
    int status = run_mpi_suite(s);
    comm_finalize();
    return status;
}
