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

/* Each entry point: the least verbosity it shows at, its stream, its prefix. */
#define TERM_FUNCTION(name, min_level, stream, prefix)  \
    void name(const char *fmt, ...)                     \
    {                                                   \
        if (verbosity < (min_level))                    \
            return;                                     \
        va_list ap;                                     \
        va_start(ap, fmt);                              \
        emit(stream, prefix, fmt, ap);                  \
        va_end(ap);                                     \
    }

TERM_FUNCTION(term_info, TERM_NORMAL, stderr, "")
TERM_FUNCTION(term_debug, TERM_VERBOSE, stderr, "  . ")
TERM_FUNCTION(term_error, TERM_QUIET, stderr, "drctl: ")
TERM_FUNCTION(term_warn, TERM_QUIET, stderr, "drctl: warning: ")
TERM_FUNCTION(term_out, TERM_QUIET, stdout, "")
