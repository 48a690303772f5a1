#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One slot per thread: neon-local serves each connection on a thread of
 * its own beside a worker, and one thread's message must not overwrite
 * or tear another's. */
static _Thread_local char last_message[2048];

int err_set(int code, const char *fmt, ...)
{
    /* Formatted aside first: the arguments may include err_last() itself,
     * as when a caller wraps a lower level's message. */
    char message[sizeof last_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    memcpy(last_message, message, sizeof message);
    return code;
}

const char *err_last(void)
{
    return last_message;
}

void err_clear(void)
{
    last_message[0] = '\0';
}

int err_exit_status(int code)
{
    return code >= 0 ? 0 : -code;
}
