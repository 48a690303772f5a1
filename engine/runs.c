#include "runs.h"

#include "buf.h"
#include "checkpoint.h"
#include "err.h"
#include "fsio.h"
#include "journal.h"
#include "jsonfield.h"
#include "lock.h"
#include "runindex.h"
#include "runpath.h"
#include "timefmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- run ids and paths ----------------------------------------------------- */

static int is_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
}

/* A run id becomes a folder and a file name: no '/', no "..", no hidden
 * name, nothing a shell or git would read specially. */
int runs_valid_id(const char *run_id)
{
    size_t len = strlen(run_id);
    if (len == 0 || len > 128 || run_id[0] == '.' || run_id[0] == '-') /* '-': an option to any program */
        return 0;
    for (const char *p = run_id; *p; p++)
        if (!is_id_char(*p))
            return 0;
    return 1;
}

/* The time first, so that ids sort as the runs started; the random part
 * keeps two runs started in the same second apart. */
char *runs_new_id(const char *runbook_name)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    unsigned random_part = 0;
    FILE *urandom = fopen("/dev/urandom", "rb");
    if (!urandom || fread(&random_part, sizeof random_part, 1, urandom) != 1)
        random_part = (unsigned)getpid() ^ (unsigned)now;
    if (urandom)
        fclose(urandom);
    return xasprintf("%s-%s-%04x", stamp, runbook_name, random_part & 0xffff);
}

/* Under .git, so that the lock files are never part of the trail. */
char *runs_lock_path(const char *audit_dir, const char *run_id)
{
    return xasprintf("%s/.git/drctl/locks/run-%s.lock", audit_dir, run_id);
}

char *runs_journal_path(const char *audit_dir, const char *run_id)
{
    char *folder = runpath_abs(audit_dir, run_id);
    char *path = xasprintf("%s/journal.jsonl", folder);
    free(folder);
    return path;
}

/* ---- run.json ---------------------------------------------------------------- */

/* The record parsed, or DR_EUSAGE naming the file: a corrupt record is
 * bad input, and nothing is changed because of it. */
static int parse_run_info(cJSON **info, const char *path)
{
    char *text;
    if (fsio_read_file(&text, NULL, path) != 0)
        return DR_EUSAGE;
    *info = cJSON_Parse(text);
    free(text);
    if (cJSON_IsObject(*info))
        return 0;
    cJSON_Delete(*info);
    *info = NULL;
    return err_set(DR_EUSAGE, "%s is not valid JSON (corrupt run record); nothing was changed", path);
}

int runs_read_info(cJSON **info, const char *audit_dir, const char *run_id)
{
    *info = NULL;
    if (!runs_valid_id(run_id))
        return err_set(DR_EUSAGE, "'%s' is not a run id (drctl status lists the runs)", run_id);
    char *folder = runpath_find(audit_dir, run_id);
    char *path = folder ? xasprintf("%s/%s/run.json", audit_dir, folder) : NULL;
    int rc;
    if (path && fsio_exists(path))
        rc = parse_run_info(info, path);
    else
        rc = err_set(DR_EUSAGE, "there is no run %s in %s (drctl status lists the runs)", run_id, audit_dir);
    free(path);
    free(folder);
    return rc;
}

/* ---- state, replayed ---------------------------------------------------------- */

/* The time from the first event to the last, in seconds to the
 * millisecond; -1 when either has no readable time. */
static int elapsed_seconds(double *out, const cJSON *events)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(events, 0), "time");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(events, cJSON_GetArraySize(events) - 1),
                                                      "time");
    double first = 0, last = 0;
    if (!cJSON_IsString(a) || !cJSON_IsString(b) || timefmt_parse_timestamp(&first, a->valuestring) != 0 ||
        timefmt_parse_timestamp(&last, b->valuestring) != 0)
        return -1;
    *out = round((last - first) * 1000) / 1000;
    return 0;
}

static cJSON *corrupt_state(void)
{
    cJSON *state = cJSON_CreateObject();
    cJSON_AddStringToObject(state, "status", "corrupt");
    cJSON_AddStringToObject(state, "detail", err_last());
    return state;
}

/* Replayed from the journal, not read from state.json: state.json may lag
 * the journal by the one event a crash interrupted. */
cJSON *runs_state(int *live, const char *audit_dir, const char *run_id)
{
    char *journal_path = runs_journal_path(audit_dir, run_id);
    char *lock_path = runs_lock_path(audit_dir, run_id);
    cJSON *events = NULL, *state = NULL;
    checkpoint *cp = NULL;
    *live = lock_is_held(lock_path);
    if (journal_read(&events, NULL, journal_path) != 0 || checkpoint_replay(&cp, run_id, events) != 0) {
        state = corrupt_state();
        goto cleanup;
    }
    state = checkpoint_to_json(cp);
    double elapsed;
    if (elapsed_seconds(&elapsed, events) == 0)
        cJSON_AddNumberToObject(state, "elapsed_seconds", elapsed);
cleanup:
    checkpoint_free(cp);
    cJSON_Delete(events);
    free(journal_path);
    free(lock_path);
    return state;
}

const char *runs_shown_status(const cJSON *state, int live)
{
    const char *status = json_text(state, "status", "?");
    if (strcmp(status, "running") == 0 && !live)
        return "dead (the process stopped mid-run; resume it)";
    return status;
}

/* ---- every run ------------------------------------------------------------------ */

/* The runs of the trail, sorted (oldest first, as run ids begin with
 * their start time); none when there is no runs/ yet. */
static void list_run_ids(char ***ids, size_t *count, const char *audit_dir)
{
    runpath_entry *entries;
    runpath_list(&entries, count, audit_dir);
    *ids = xcalloc(*count ? *count : 1, sizeof **ids);
    for (size_t i = 0; i < *count; i++) {
        (*ids)[i] = entries[i].run_id;
        entries[i].run_id = NULL;
    }
    runpath_list_free(entries, *count);
}

static cJSON *run_row(const char *run_id, const cJSON *info, const cJSON *state, int live)
{
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(info, "runbook");
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "run_id", run_id);
    cJSON_AddStringToObject(row, "runbook", json_text(rb, "name", "?"));
    cJSON_AddStringToObject(row, "version", json_text(rb, "version", "?"));
    cJSON_AddStringToObject(row, "status", json_text(state, "status", "?"));
    cJSON_AddStringToObject(row, "shown_status", runs_shown_status(state, live));
    cJSON_AddBoolToObject(row, "live", live);
    cJSON_AddStringToObject(row, "started_at", json_text(info, "started_at", "?"));
    cJSON_AddStringToObject(row, "operator", json_text(info, "operator", "?"));
    cJSON_AddNumberToObject(row, "duration_seconds", json_number(state, "elapsed_seconds", 0));
    return row;
}

cJSON *runs_collect(const char *audit_dir)
{
    char **ids;
    size_t count;
    list_run_ids(&ids, &count, audit_dir);
    cJSON *rows = cJSON_CreateArray();
    for (size_t i = count; i-- > 0;) {
        cJSON *info = NULL;
        if (runs_read_info(&info, audit_dir, ids[i]) != 0)
            continue;
        int live;
        cJSON *state = runs_state(&live, audit_dir, ids[i]);
        cJSON_AddItemToArray(rows, run_row(ids[i], info, state, live));
        cJSON_Delete(state);
        cJSON_Delete(info);
    }
    for (size_t i = 0; i < count; i++)
        free(ids[i]);
    free(ids);
    return rows;
}

/* ---- the runs a filter picks ------------------------------------------------------ */

int runs_known_status(const char *status)
{
    static const char *const known[] = { "running", "paused", "failed", "interrupted", "done",
                                         "aborted", "dead",    "corrupt", NULL };
    for (const char *const *k = known; *k; k++)
        if (!strcmp(status, *k))
            return 1;
    return 0;
}

static int has_filter(const runs_filter *f)
{
    return f->since >= 0 || f->runbook || f->status;
}

/* What run.json alone tells: the runbook and the start. */
static int info_matches(const cJSON *info, const runs_filter *f)
{
    const char *runbook = json_text(cJSON_GetObjectItemCaseSensitive(info, "runbook"), "name", "");
    if (f->runbook && strcmp(runbook, f->runbook) != 0)
        return 0;
    double started;
    if (f->since >= 0 && (timefmt_parse_timestamp(&started, json_text(info, "started_at", "")) != 0 ||
                          started < f->since))
        return 0;
    return 1;
}

static int status_matches(const cJSON *row, const runs_filter *f)
{
    if (!f->status)
        return 1;
    const char *status = json_text(row, "status", "");
    int dead = !strcmp(status, "running") && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "live"));
    return strcmp(f->status, dead ? "dead" : status) == 0;
}

typedef struct keyed_row {
    double started; /* epoch; a start that does not read sorts last */
    cJSON *row;
} keyed_row;

/* Newest first by start time; two runs started in the same microsecond by
 * id. */
static int compare_rows(const void *a, const void *b)
{
    const keyed_row *x = a, *y = b;
    if (x->started != y->started)
        return x->started < y->started ? 1 : -1;
    return strcmp(json_text(y->row, "run_id", ""), json_text(x->row, "run_id", ""));
}

static cJSON *sorted_rows(cJSON **rows, size_t n)
{
    keyed_row *keyed = xcalloc(n ? n : 1, sizeof *keyed);
    for (size_t i = 0; i < n; i++) {
        keyed[i].row = rows[i];
        if (timefmt_parse_timestamp(&keyed[i].started, json_text(rows[i], "started_at", "")) != 0)
            keyed[i].started = -1e300;
    }
    if (n > 1)
        qsort(keyed, n, sizeof *keyed, compare_rows);
    cJSON *out = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(out, keyed[i].row);
    free(keyed);
    free(rows);
    err_clear();
    return out;
}

/* The row of a listed run, when the filter keeps it; its journal is
 * replayed only when run.json passes. */
static cJSON *picked_row(const runpath_entry *e, const char *audit_dir, const runs_filter *f)
{
    cJSON *info = NULL, *row = NULL;
    if (runs_read_info(&info, audit_dir, e->run_id) != 0 || !info_matches(info, f)) {
        cJSON_Delete(info);
        return NULL;
    }
    int live;
    cJSON *state = runs_state(&live, audit_dir, e->run_id);
    row = run_row(e->run_id, info, state, live);
    if (!status_matches(row, f)) {
        cJSON_Delete(row);
        row = NULL;
    }
    cJSON_Delete(state);
    cJSON_Delete(info);
    return row;
}

/* "YYYY/MM/DD" of the day before since's: the earliest a run started
 * since then can be filed under. */
static void since_day_of(char day[11], double since)
{
    time_t t = (time_t)since - 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, 11, "%Y/%m/%d", &tm);
}

/* Every run the filters may pick (they are checked on each row). */
static size_t select_filtered(cJSON **rows, const runpath_entry *runs, size_t count, const char *audit_dir,
                              const runs_filter *filter)
{
    size_t n = 0;
    char since_day[11] = "";
    if (filter->since >= 0)
        since_day_of(since_day, filter->since);
    for (size_t i = count; i-- > 0;) {
        /* Runs are filed under the day they started (their id's, a day
         * apart at most: runpath.h); older days are passed over. */
        if (*since_day && *runs[i].day && strcmp(runs[i].day, since_day) < 0)
            continue;
        cJSON *row = picked_row(&runs[i], audit_dir, filter);
        if (row)
            rows[n++] = row;
    }
    err_clear(); /* a run whose record does not read is left out */
    return n;
}

typedef struct candidate {
    const runpath_entry *entry;
    double started;
} candidate;

static int compare_candidates(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->started != y->started)
        return x->started < y->started ? 1 : -1;
    return strcmp(y->entry->run_id, x->entry->run_id);
}

/* The `recent` runs started last. Runs are filed under the day they
 * started, so they are among the newest days' runs: whole days are taken
 * until there are enough, then ordered by their start (run.json alone). */
static size_t most_recent(const runpath_entry **out, const runpath_entry *runs, size_t count, const char *audit_dir,
                          size_t recent)
{
    candidate *c = xcalloc(count ? count : 1, sizeof *c);
    size_t n = 0;
    char last_day[11] = "";
    for (size_t i = count; i-- > 0;) {
        char day[11];
        runpath_filed_day(day, &runs[i]);
        if (n >= recent && strcmp(day, last_day) != 0)
            break;
        snprintf(last_day, sizeof last_day, "%s", day);
        cJSON *info = NULL;
        double started;
        if (runs_read_info(&info, audit_dir, runs[i].run_id) == 0) {
            if (timefmt_parse_timestamp(&started, json_text(info, "started_at", "")) != 0)
                started = -1e300;
            c[n++] = (candidate){ &runs[i], started };
        }
        cJSON_Delete(info);
    }
    if (n > 1)
        qsort(c, n, sizeof *c, compare_candidates);
    size_t kept = n < recent ? n : recent;
    for (size_t i = 0; i < kept; i++)
        out[i] = c[i].entry;
    free(c);
    err_clear();
    return kept;
}

/* The runs not ended and the most recent, each once. */
static size_t select_default(cJSON **rows, const runpath_entry *runs, size_t count, const char *audit_dir,
                             const runs_filter *filter)
{
    const runpath_entry **recent = xcalloc(filter->recent ? filter->recent : 1, sizeof *recent);
    size_t r = most_recent(recent, runs, count, audit_dir, filter->recent), n = 0;
    str_list open = { 0 }, picked = { 0 };
    runindex_open_runs(&open, audit_dir);
    for (size_t i = 0; i < r; i++)
        str_list_push(&picked, recent[i]->run_id);
    for (size_t i = 0; i < count; i++)
        if (str_list_has(&open, runs[i].run_id) && !str_list_has(&picked, runs[i].run_id))
            str_list_push(&picked, runs[i].run_id);
    for (size_t i = 0; i < count; i++) {
        if (!str_list_has(&picked, runs[i].run_id))
            continue;
        cJSON *row = picked_row(&runs[i], audit_dir, filter);
        if (row)
            rows[n++] = row;
    }
    str_list_dispose(&picked);
    str_list_dispose(&open);
    free(recent);
    return n;
}

cJSON *runs_select(size_t *total, const char *audit_dir, const runs_filter *filter)
{
    runpath_entry *runs;
    size_t count;
    runpath_list(&runs, &count, audit_dir);
    *total = count;
    cJSON **rows = xcalloc(count ? count : 1, sizeof *rows);
    size_t n = filter->all || has_filter(filter) ? select_filtered(rows, runs, count, audit_dir, filter)
                                                 : select_default(rows, runs, count, audit_dir, filter);
    runpath_list_free(runs, count);
    return sorted_rows(rows, n);
}

/* ---- undo links ------------------------------------------------------------------ */

cJSON *runs_undone_by(const char *audit_dir, const char *run_id)
{
    char **ids;
    size_t count;
    list_run_ids(&ids, &count, audit_dir);
    cJSON *undos = cJSON_CreateArray();
    for (size_t i = 0; i < count; i++) {
        cJSON *info = NULL;
        /* run.json alone says which runs are undos of which: only those
         * have their journals replayed. */
        if (runs_read_info(&info, audit_dir, ids[i]) == 0 &&
            !strcmp(json_text(cJSON_GetObjectItemCaseSensitive(info, "runbook"), "name", ""), RUNS_UNDO_RUNBOOK) &&
            !strcmp(json_text(cJSON_GetObjectItemCaseSensitive(info, "params"), "run", ""), run_id)) {
            int live;
            cJSON *state = runs_state(&live, audit_dir, ids[i]);
            cJSON *row = cJSON_CreateObject();
            cJSON_AddStringToObject(row, "run_id", ids[i]);
            cJSON_AddStringToObject(row, "status", json_text(state, "status", "?"));
            cJSON_AddBoolToObject(row, "live", live);
            cJSON_AddItemToArray(undos, row);
            cJSON_Delete(state);
        }
        cJSON_Delete(info);
        free(ids[i]);
    }
    free(ids);
    return undos;
}

/* ---- a past run, as a runbook reads it ---------------------------------------------- */

static cJSON *outputs_by_step(const cJSON *state)
{
    cJSON *outputs = cJSON_CreateObject();
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(state, "steps")) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(s, "outputs");
        if (o && !cJSON_IsNull(o))
            cJSON_AddItemToObject(outputs, json_text(s, "name", "?"), cJSON_Duplicate(o, 1));
    }
    return outputs;
}

static void copy_field(cJSON *to, const cJSON *from, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, name);
    cJSON_AddItemToObject(to, name, v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
}

int runs_record(cJSON **out, const char *audit_dir, const char *run_id)
{
    cJSON *info = NULL;
    *out = NULL;
    int rc = runs_read_info(&info, audit_dir, run_id);
    if (rc)
        return rc;
    int live;
    cJSON *state = runs_state(&live, audit_dir, run_id);
    cJSON *record = cJSON_CreateObject();
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(info, "runbook");
    cJSON_AddStringToObject(record, "run_id", run_id);
    cJSON_AddStringToObject(record, "runbook", json_text(rb, "name", "?"));
    cJSON_AddStringToObject(record, "version", json_text(rb, "version", "?"));
    cJSON_AddStringToObject(record, "status", json_text(state, "status", "?"));
    cJSON_AddBoolToObject(record, "live", live);
    copy_field(record, info, "params");
    copy_field(record, info, "target");
    copy_field(record, info, "started_at");
    copy_field(record, info, "operator");
    copy_field(record, state, "updated_at");
    cJSON_AddItemToObject(record, "outputs", outputs_by_step(state));
    cJSON_AddItemToObject(record, "undone_by", runs_undone_by(audit_dir, run_id));
    cJSON_Delete(state);
    cJSON_Delete(info);
    *out = record;
    return 0;
}
