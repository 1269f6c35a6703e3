#include "signals.h"

#include <signal.h>
#include <stddef.h>

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

static const int STOP_SIGNALS[] = {SIGTERM, SIGUSR1, SIGINT};
#define NSTOP ((int)(sizeof STOP_SIGNALS / sizeof STOP_SIGNALS[0]))

void signals_install(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    for (int i = 0; i < NSTOP; i++)
        sigaction(STOP_SIGNALS[i], &sa, NULL);
}

void signals_ignore_file_limit(void) { signal(SIGXFSZ, SIG_IGN); }

int stop_requested(void) { return stop_signal; }
