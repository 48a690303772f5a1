#include "gate.h"

#include "buf.h"
#include "err.h"
#include "redact.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int gate_is_preapproved(const gate *g, const char *step)
{
    for (size_t i = 0; i < g->approved_count; i++)
        if (strcmp(g->approved[i], step) == 0)
            return 1;
    return 0;
}

static int emit(const gate *g, const char *kind, const char *reason, const char *answer)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "operator", g->operator);
    cJSON_AddStringToObject(data, "reason", reason);
    if (answer)
        cJSON_AddStringToObject(data, "answer", answer);
    return g->on_event(g->ud, kind, data);
}

static int write_all(int fd, const char *text)
{
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            return -1;
        if (n <= 0)
            return -1;
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one line from the terminal. Returns 0, -1 on end of input, or
 * DR_EINTR when a signal came while waiting. */
static int read_line(buf *line, int fd)
{
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            return DR_EINTR;
        if (n <= 0)
            return line->len ? 0 : -1;
        if (c == '\n')
            return 0;
        if (c != '\r')
            buf_putc(line, c);
        if (line->len > 4096)
            return 0;
    }
}

char *gate_prompt(const char *step, const char *reason, const char *summary, const char *challenge)
{
    char *clean_summary = redact_text(summary);
    char *prompt = xasprintf("\n==== confirmation needed: step '%s' (%s) ====\n%s\n\n"
                             "Type '%s' to proceed (anything else refuses): ",
                             step, strcmp(reason, "rerun") == 0 ? "re-run of an unfinished step" : "destructive",
                             clean_summary, challenge);
    free(clean_summary);
    return prompt;
}

int gate_answer_matches(const char *answer, const char *challenge)
{
    return strcmp(answer, challenge) == 0;
}

int gate_ask(const gate *g, int tty, const char *step, const char *reason, const char *summary,
             const char *challenge)
{
    char *prompt = gate_prompt(step, reason, summary, challenge);
    int written = write_all(tty, prompt);
    free(prompt);
    if (written != 0)
        return DR_EINTR;
    buf answer = BUF_INIT;
    int rc = read_line(&answer, tty);
    if (rc == DR_EINTR) {
        buf_dispose(&answer);
        return DR_EINTR;
    }
    if (rc == 0 && gate_answer_matches(buf_cstr(&answer), challenge)) {
        write_all(tty, "confirmed.\n");
        emit(g, "confirmation-given", reason, buf_cstr(&answer));
        buf_dispose(&answer);
        return 0;
    }
    write_all(tty, "refused: the answer did not match; nothing was changed.\n");
    emit(g, "confirmation-refused", reason, rc == 0 ? buf_cstr(&answer) : "(end of input)");
    buf_dispose(&answer);
    return err_set(DR_EREFUSED, "step '%s' was refused at the confirmation; the run is paused. "
                   "To go on later: %s", step, g->resume_hint);
}

int gate_confirm(const gate *g, const char *step, const char *reason, const char *summary,
                 const char *challenge)
{
    cJSON *asked = cJSON_CreateObject();
    cJSON_AddStringToObject(asked, "reason", reason);
    cJSON_AddStringToObject(asked, "summary", summary);
    cJSON_AddStringToObject(asked, "challenge", challenge);
    g->on_event(g->ud, "confirmation-asked", asked);
    if (gate_is_preapproved(g, step)) {
        emit(g, "confirmation-preapproved", reason, NULL);
        return 0;
    }
    int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (tty < 0) {
        emit(g, "confirmation-missing", reason, NULL);
        return err_set(DR_EREFUSED, "step '%s' needs a confirmation and there is no terminal to ask "
                       "on; nothing was changed. What it would do: %s Approve it explicitly, once you "
                       "agree: %s --approve %s", step, summary, g->resume_hint, step);
    }
    int rc = gate_ask(g, tty, step, reason, summary, challenge);
    close(tty);
    return rc;
}
