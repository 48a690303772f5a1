#include "checkpoint.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "jsontext.h"
#include "jsonfield.h"

#include <stdlib.h>
#include <string.h>

static const char *const step_state_names[] = {
    "pending", "started", "done", "failed", "interrupted", "paused",
};
static const char *const run_status_names[] = {
    "running", "paused", "failed", "interrupted", "done", "aborted",
};

const char *checkpoint_step_state_name(step_state state)
{
    return step_state_names[state];
}

const char *checkpoint_run_status_name(run_status status)
{
    return run_status_names[status];
}

int checkpoint_run_status_from_name(run_status *out, const char *name)
{
    for (size_t i = 0; i < sizeof run_status_names / sizeof *run_status_names; i++) {
        if (strcmp(run_status_names[i], name) == 0) {
            *out = (run_status)i;
            return 0;
        }
    }
    return -1;
}

int checkpoint_step_index(const checkpoint *cp, const char *name)
{
    for (size_t i = 0; i < cp->step_count; i++)
        if (cp->steps[i].name && strcmp(cp->steps[i].name, name) == 0) /* NULL: moved by set_steps */
            return (int)i;
    return -1;
}

static void set_text(char **slot, const char *value)
{
    char *copy = value ? xstrdup(value) : NULL; /* value may be *slot itself */
    free(*slot);
    *slot = copy;
}

static void record_dispose(step_record *r)
{
    free(r->name);
    cJSON_Delete(r->outputs);
    free(r->error);
    free(r->started_at);
    free(r->ended_at);
}

/* (Re)sets the list of steps from a JSON array of names, keeping the
 * records of steps that keep their name (a runbook change allowed on
 * resume may add or remove steps). */
static void set_steps(checkpoint *cp, const cJSON *names)
{
    size_t count = (size_t)cJSON_GetArraySize(names);
    step_record *steps = xcalloc(count, sizeof *steps);
    size_t i = 0;
    const cJSON *name;
    cJSON_ArrayForEach(name, names) {
        int old = cJSON_IsString(name) ? checkpoint_step_index(cp, name->valuestring) : -1;
        if (old >= 0) {
            steps[i] = cp->steps[old];
            cp->steps[old].name = NULL;
            cp->steps[old].outputs = NULL;
            cp->steps[old].error = cp->steps[old].started_at = cp->steps[old].ended_at = NULL;
        } else {
            steps[i].name = xstrdup(cJSON_IsString(name) ? name->valuestring : "?");
        }
        i++;
    }
    for (size_t k = 0; k < cp->step_count; k++)
        record_dispose(&cp->steps[k]);
    free(cp->steps);
    cp->steps = steps;
    cp->step_count = count;
}

static int apply_step_event(checkpoint *cp, const char *kind, step_record *r, const cJSON *data,
                            const char *time)
{
    if (strcmp(kind, "step-started") == 0) {
        const cJSON *attempt = cJSON_GetObjectItemCaseSensitive(data, "attempt");
        r->state = STEP_STARTED;
        r->attempts = cJSON_IsNumber(attempt) ? attempt->valueint : r->attempts + 1;
        set_text(&r->started_at, time);
        set_text(&r->ended_at, NULL);
        set_text(&r->error, NULL);
        cp->status = RUN_RUNNING;
        set_text(&cp->status_detail, NULL);
    } else if (strcmp(kind, "step-done") == 0) {
        r->state = STEP_DONE;
        cJSON_Delete(r->outputs);
        const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(data, "outputs");
        r->outputs = outputs ? cJSON_Duplicate(outputs, 1) : cJSON_CreateNull();
        set_text(&r->ended_at, time);
    } else if (strcmp(kind, "step-failed") == 0) {
        r->state = STEP_FAILED;
        set_text(&r->error, json_text(data, "error", NULL));
        set_text(&r->ended_at, time);
    } else if (strcmp(kind, "step-interrupted") == 0) {
        r->state = STEP_INTERRUPTED;
        set_text(&r->error, json_text(data, "error", NULL));
        set_text(&r->ended_at, time);
    } else if (strcmp(kind, "step-paused") == 0) {
        r->state = STEP_PAUSED;
        set_text(&r->ended_at, time);
    } else if (strcmp(kind, "step-reset") == 0) {
        r->state = STEP_PENDING;
        cJSON_Delete(r->outputs);
        r->outputs = NULL;
        set_text(&r->error, NULL);
    } else {
        return 0;
    }
    return 1;
}

static int apply_run_event(checkpoint *cp, const char *kind, const cJSON *data)
{
    static const struct {
        const char *kind;
        run_status status;
    } transitions[] = {
        { "run-resumed", RUN_RUNNING }, { "run-paused", RUN_PAUSED },
        { "run-failed", RUN_FAILED },   { "run-interrupted", RUN_INTERRUPTED },
        { "run-done", RUN_DONE },       { "run-aborted", RUN_ABORTED },
    };
    for (size_t i = 0; i < sizeof transitions / sizeof *transitions; i++) {
        if (strcmp(kind, transitions[i].kind) == 0) {
            cp->status = transitions[i].status;
            set_text(&cp->status_detail, json_text(data, "reason", NULL));
            return 1;
        }
    }
    if (strcmp(kind, "runbook-changed") == 0) {
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(data, "steps");
        if (cJSON_IsArray(steps))
            set_steps(cp, steps);
        return 1;
    }
    return 0;
}

int checkpoint_apply(checkpoint *cp, const cJSON *event)
{
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(event, "seq");
    const char *kind = json_text(event, "kind", NULL);
    const char *step = json_text(event, "step", NULL);
    const char *time = json_text(event, "time", NULL);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(event, "data");
    if (!kind)
        return err_set(DR_EUSAGE, "an event without a kind");
    int changed;
    if (strncmp(kind, "step-", 5) == 0) {
        int i = step ? checkpoint_step_index(cp, step) : -1;
        if (i < 0)
            return err_set(DR_EUSAGE, "event %ld (%s) names step '%s', which this run does not have",
                           cJSON_IsNumber(seq) ? (long)seq->valuedouble : -1L, kind, step ? step : "(none)");
        changed = apply_step_event(cp, kind, &cp->steps[i], data, time);
    } else {
        changed = apply_run_event(cp, kind, data);
    }
    if (cJSON_IsNumber(seq))
        cp->seq = (long)seq->valuedouble;
    if (changed)
        set_text(&cp->updated_at, time);
    return changed;
}

int checkpoint_replay(checkpoint **out, const char *run_id, const cJSON *events)
{
    *out = NULL;
    const cJSON *first = cJSON_GetArrayItem(events, 0);
    const char *kind = json_text(first, "kind", NULL);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(first, "data");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(data, "steps");
    if (!kind || strcmp(kind, "run-started") != 0 || !cJSON_IsArray(steps))
        return err_set(DR_EUSAGE, "run %s: the journal does not begin with run-started "
                       "(corrupt checkpoint)", run_id);
    checkpoint *cp = xcalloc(1, sizeof *cp);
    cp->run_id = xstrdup(run_id);
    cp->status = RUN_RUNNING;
    set_steps(cp, steps);
    const cJSON *event;
    cJSON_ArrayForEach(event, events) {
        int rc = checkpoint_apply(cp, event);
        if (rc < 0) {
            checkpoint_free(cp);
            return rc;
        }
    }
    if (!cp->updated_at)
        set_text(&cp->updated_at, json_text(first, "time", NULL));
    *out = cp;
    return 0;
}

cJSON *checkpoint_to_json(const checkpoint *cp)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "run_id", cp->run_id);
    cJSON_AddStringToObject(root, "status", checkpoint_run_status_name(cp->status));
    if (cp->status_detail)
        cJSON_AddStringToObject(root, "detail", cp->status_detail);
    cJSON_AddNumberToObject(root, "journal_seq", (double)cp->seq);
    if (cp->updated_at)
        cJSON_AddStringToObject(root, "updated_at", cp->updated_at);
    cJSON *steps = cJSON_AddArrayToObject(root, "steps");
    for (size_t i = 0; i < cp->step_count; i++) {
        const step_record *r = &cp->steps[i];
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "name", r->name);
        cJSON_AddStringToObject(s, "state", checkpoint_step_state_name(r->state));
        cJSON_AddNumberToObject(s, "attempts", r->attempts);
        if (r->started_at)
            cJSON_AddStringToObject(s, "started_at", r->started_at);
        if (r->ended_at)
            cJSON_AddStringToObject(s, "ended_at", r->ended_at);
        if (r->outputs)
            cJSON_AddItemToObject(s, "outputs", cJSON_Duplicate(r->outputs, 1));
        if (r->error)
            cJSON_AddStringToObject(s, "error", r->error);
        cJSON_AddItemToArray(steps, s);
    }
    return root;
}

int checkpoint_write(const checkpoint *cp, const char *path)
{
    cJSON *json = checkpoint_to_json(cp);
    char *text = json_print_exact(json, 1);
    cJSON_Delete(json);
    size_t len = strlen(text);
    text = xrealloc(text, len + 2);
    text[len] = '\n';
    int rc = fsio_write_durable(path, text, len + 1);
    free(text);
    return rc;
}

void checkpoint_free(checkpoint *cp)
{
    if (!cp)
        return;
    for (size_t i = 0; i < cp->step_count; i++)
        record_dispose(&cp->steps[i]);
    free(cp->steps);
    free(cp->run_id);
    free(cp->status_detail);
    free(cp->updated_at);
    free(cp);
}
