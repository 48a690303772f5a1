/* gate: the typed human confirmation in front of destructive work
 * (the confirmation contract, docs/design.md).
 *
 * The operator reads what will happen, to what and what is lost, then types
 * the challenge (the name of what changes) on the controlling terminal,
 * never on stdin, so a pipe or a script cannot answer by accident. Without
 * a terminal, only an explicit --approve STEP lets the step go. Nothing is
 * approved by default, and every question, answer, pre-approval and refusal
 * becomes an event with the operator's identity. */
#ifndef DRCTL_GATE_H
#define DRCTL_GATE_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Receives each event (kind, data). data is owned by the callee. */
typedef int (*gate_event_fn)(void *ud, const char *kind, cJSON *data);

typedef struct gate {
    char *const *approved;      /* step names given with --approve */
    size_t approved_count;
    const char *operator;
    const char *resume_hint;    /* "drctl resume RUN_ID", for messages */
    gate_event_fn on_event;
    void *ud;
} gate;

/* Asks to confirm step. reason is "destructive" or "rerun". Returns 0 when
 * approved, DR_EREFUSED when refused or when no terminal can ask (message
 * naming --approve), DR_EINTR on a signal. */
int gate_confirm(const gate *g, const char *step, const char *reason, const char *summary,
                 const char *challenge);

/* 1 when step was pre-approved with --approve. */
int gate_is_preapproved(const gate *g, const char *step);

/* The question put to the operator: the step, why it is asked, the
 * summary (secrets redacted) and the challenge to type. Caller frees. */
char *gate_prompt(const char *step, const char *reason, const char *summary, const char *challenge);

/* 1 when the typed answer (its line ending removed) is the challenge
 * exactly: case, spaces and every byte count. */
int gate_answer_matches(const char *answer, const char *challenge);

/* The question and its answer on an open terminal fd (gate_confirm opens
 * /dev/tty and calls this): writes the prompt, reads one line, returns 0
 * on the challenge, DR_EREFUSED on anything else or end of input, and
 * records the answer (confirmation-given or -refused) through on_event. */
int gate_ask(const gate *g, int tty, const char *step, const char *reason, const char *summary,
             const char *challenge);

#endif
