#include "term.h"

#include "redact.h"

#include "timefmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int verbosity = TERM_NORMAL;

void term_set_verbosity(int level)
{
    verbosity = level;
}

int term_verbosity(void)
{
    return verbosity;
}

/* ---- the progress line -------------------------------------------------- */

/* On a terminal, one line rewritten in place; elsewhere (a log, a pipe,
 * TERM=dumb, which cannot erase), a line every PROGRESS_LOG_SECONDS. */
#define PROGRESS_LOG_SECONDS 5.0

static int progress_shown;        /* a progress line is on the terminal now */
static double progress_since;     /* when this wait's first progress came; 0: none yet */
static double progress_logged_at; /* when the last one went to the log */

static int progress_rewrites(void)
{
    const char *term = getenv("TERM");
    return isatty(STDERR_FILENO) && term && *term && strcmp(term, "dumb") != 0;
}

static void progress_clear(void)
{
    if (progress_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        progress_shown = 0;
    }
}

void term_progress(const char *fmt, ...)
{
    if (verbosity < TERM_NORMAL)
        return;
    int rewrite = progress_rewrites();
    double now = timefmt_monotonic();
    if (progress_since == 0)
        progress_since = now;
    /* in a log, a wait shorter than the interval says nothing */
    double last = progress_logged_at > 0 ? progress_logged_at : progress_since;
    if (!rewrite && now - last < PROGRESS_LOG_SECONDS)
        return;
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *clean = redact_text(text);
    if (rewrite) {
        fprintf(stderr, "\r\033[K    %s", clean);
        progress_shown = 1;
    } else {
        fprintf(stderr, "    %s\n", clean);
        progress_logged_at = now;
    }
    fflush(stderr);
    free(clean);
    free(text);
}

void term_progress_end(void)
{
    progress_clear();
    progress_since = progress_logged_at = 0;
}

static void emit(FILE *stream, const char *prefix, const char *fmt, va_list ap)
{
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        return;
    progress_clear(); /* a message takes the progress line's place */
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
