#include "term.h"

#include "redact.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int verbosity = TERM_NORMAL;

void term_set_verbosity(int level)
{
    verbosity = level;
}

int term_verbosity(void)
{
    return verbosity;
}

static void emit(FILE *stream, const char *prefix, const char *fmt, va_list ap)
{
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        return;
    char *clean = redact_text(text);
    fprintf(stream, "%s%s\n", prefix, clean);
    fflush(stream);
    free(clean);
    free(text);
}

void term_info(const char *fmt, ...)
{
    if (verbosity < TERM_NORMAL)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(stderr, "", fmt, ap);
    va_end(ap);
}

void term_debug(const char *fmt, ...)
{
    if (verbosity < TERM_VERBOSE)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(stderr, "  . ", fmt, ap);
    va_end(ap);
}

void term_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(stderr, "drctl: ", fmt, ap);
    va_end(ap);
}

void term_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(stderr, "drctl: warning: ", fmt, ap);
    va_end(ap);
}

void term_out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(stdout, "", fmt, ap);
    va_end(ap);
}
