/* Stop signals: SIGTERM, SIGUSR1 and SIGINT only set a flag, which the
 * training step reads at its boundary (and shares with every rank). The
 * handlers stay after a run: a late signal while the run winds down changes
 * nothing. */
#ifndef TRAINER_SIGNALS_H
#define TRAINER_SIGNALS_H

/* Installs the handlers (with SA_RESTART, so that an interrupted write or
 * read goes on) and clears any earlier request. */
void signals_install(void);
/* Past the file size limit (ulimit -f) a write then fails with EFBIG
 * instead of killing the process: a checkpoint write fails cleanly, with a
 * line. Called first thing in main. */
void signals_ignore_file_limit(void);
/* The signal that asked to stop, or 0. */
int stop_requested(void);

#endif
