#include "debris.h"

#include "buf.h"
#include "checkpoint.h"
#include "err.h"
#include "journal.h"
#include "runpath.h"
#include "report.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RUN_JSON, JOURNAL, STATE, REPORT };

static int same_text(const char *x, const char *y)
{
    return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

static int edited(const char *dir, const char *run_id, const char *file, const char *what)
{
    char *folder = runpath_of(dir, run_id);
    int rc = err_set(DR_EUSAGE, "%s/%s/%s was changed outside drctl: %s; nothing was done. See git -C %s "
                     "diff, then restore it (git -C %s checkout HEAD -- %s) or commit the change knowingly",
                     dir, folder, file, what, dir, dir, folder);
    free(folder);
    return rc;
}

/* The events past the committed journal: complete lines, each an event,
 * at most one transition and only as the last. The chain and the seq of
 * the whole journal are checked by parsing it (journal_parse). */
static int check_added_lines(const char *dir, const char *run_id, const char *old, const char *now)
{
    size_t from = old ? strlen(old) : 0, len = strlen(now);
    long line = 1;
    for (size_t i = 0; i < from; i++)
        line += old[i] == '\n';
    long transition_line = 0, last_line = 0;
    char transition[64] = "";
    for (size_t pos = from; pos < len; line++) {
        const char *nl = memchr(now + pos, '\n', len - pos);
        if (!nl)
            break; /* the line being written: cut off by the next open */
        cJSON *event = cJSON_ParseWithLength(now + pos, (size_t)(nl - (now + pos)));
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(event, "kind");
        if (cJSON_IsString(kind) && journal_is_transition(kind->valuestring)) {
            if (transition_line) {
                char *what = xasprintf("lines %ld (%s) and %ld (%s) are both transitions past the last commit, "
                                       "where a crash leaves at most one", transition_line, transition, line,
                                       kind->valuestring);
                cJSON_Delete(event);
                int rc = edited(dir, run_id, "journal.jsonl", what);
                free(what);
                return rc;
            }
            transition_line = line;
            snprintf(transition, sizeof transition, "%s", kind->valuestring);
        }
        cJSON_Delete(event);
        last_line = line;
        pos = (size_t)(nl - now) + 1;
    }
    if (transition_line && transition_line != last_line) {
        char *what = xasprintf("line %ld (%s) is followed by lines up to %ld past the last commit, where a "
                               "crash stops right after the transition it was committing", transition_line,
                               transition, last_line);
        int rc = edited(dir, run_id, "journal.jsonl", what);
        free(what);
        return rc;
    }
    return 0;
}

/* The journal now: it parses, its seq is gapless and its chain holds. */
static int parse_current(cJSON **events, const char *dir, const char *run_id, const char *text)
{
    char *folder = runpath_abs(dir, run_id);
    char *path = xasprintf("%s/journal.jsonl", folder);
    free(folder);
    long torn = 0;
    int rc = journal_parse(events, &torn, path, text, strlen(text));
    journal_chain chain;
    journal_chain_check(&chain, run_id, text, strlen(text));
    if (rc == 0 && chain.broken_line) {
        char *what = xasprintf("its hash chain breaks at %s", chain.why);
        rc = edited(dir, run_id, "journal.jsonl", what);
        free(what);
        cJSON_Delete(*events);
        *events = NULL;
    }
    journal_chain_dispose(&chain);
    free(path);
    return rc;
}

/* status and steps, as verify compares them. */
static int same_state(const cJSON *replayed, const cJSON *stored)
{
    return stored && cJSON_Compare(cJSON_GetObjectItemCaseSensitive(replayed, "status"),
                                   cJSON_GetObjectItemCaseSensitive(stored, "status"), 1) &&
           cJSON_Compare(cJSON_GetObjectItemCaseSensitive(replayed, "steps"),
                         cJSON_GetObjectItemCaseSensitive(stored, "steps"), 1);
}

/* Whether state_text is the replay of the first count events. */
static int state_of_first(const char *run_id, const cJSON *events, int count, const char *state_text)
{
    if (count < 1)
        return 0;
    cJSON *first = cJSON_CreateArray();
    for (int i = 0; i < count; i++)
        cJSON_AddItemToArray(first, cJSON_Duplicate(cJSON_GetArrayItem(events, i), 1));
    checkpoint *cp = NULL;
    int same = 0;
    if (checkpoint_replay(&cp, run_id, first) == 0) {
        cJSON *replayed = checkpoint_to_json(cp), *stored = cJSON_Parse(state_text);
        same = same_state(replayed, stored);
        cJSON_Delete(stored);
        cJSON_Delete(replayed);
    }
    checkpoint_free(cp);
    cJSON_Delete(first);
    return same;
}

static int check_state_and_report(const char *dir, const char *run_id, const run_versions *v, const cJSON *events)
{
    const char *state = v->current[STATE], *report = v->current[REPORT];
    int n = cJSON_GetArraySize(events);
    if (!same_text(state, v->committed[STATE]) &&
        !(state && (state_of_first(run_id, events, n, state) || state_of_first(run_id, events, n - 1, state))))
        return edited(dir, run_id, "state.json", "it is not what the journal replays to");
    if (same_text(report, v->committed[REPORT]))
        return 0;
    cJSON *info = v->current[RUN_JSON] ? cJSON_Parse(v->current[RUN_JSON]) : NULL;
    journal_chain chain;
    journal_chain_check(&chain, run_id, v->current[JOURNAL], strlen(v->current[JOURNAL]));
    char *rendered = info && report ? report_render(info, events, chain.head) : NULL;
    int same = rendered && strcmp(rendered, report) == 0;
    free(rendered);
    journal_chain_dispose(&chain);
    cJSON_Delete(info);
    return same ? 0 : edited(dir, run_id, "report.md", "it is not the report of the journal");
}

int debris_check(const char *dir, const char *run_id, const run_versions *v)
{
    int all_equal = 1;
    for (int i = 0; i < 4; i++)
        all_equal &= same_text(v->committed[i], v->current[i]);
    if (all_equal)
        return 0; /* only the index is stale */
    const char *old = v->committed[JOURNAL], *now = v->current[JOURNAL];
    if (!now)
        return edited(dir, run_id, "journal.jsonl", "it is missing");
    if (old && (strlen(now) < strlen(old) || strncmp(now, old, strlen(old)) != 0))
        return edited(dir, run_id, "journal.jsonl", "it is not the committed journal with events added");
    if (v->committed[RUN_JSON] && !same_text(v->committed[RUN_JSON], v->current[RUN_JSON]))
        return edited(dir, run_id, "run.json", "drctl never rewrites it");
    cJSON *events = NULL;
    int rc = parse_current(&events, dir, run_id, now);
    if (rc == 0)
        rc = check_added_lines(dir, run_id, old, now);
    if (rc == 0)
        rc = check_state_and_report(dir, run_id, v, events);
    cJSON_Delete(events);
    return rc;
}
