#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static char last_message[2048];

int err_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
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
