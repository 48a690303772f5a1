/* signals: SIGINT/SIGTERM become a flag that long work polls, so that the
 * current step's state can be saved before the process exits 130. */
#ifndef DRCTL_SIGNALS_H
#define DRCTL_SIGNALS_H

/* Installs the handlers (without SA_RESTART, so a blocking read on the
 * terminal returns EINTR). */
void signals_install(void);

/* The signal received, or 0. */
int signals_pending(void);

#endif
