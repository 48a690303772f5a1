#include "verify.h"

#include "audit.h"
#include "buf.h"
#include "checkpoint.h"
#include "err.h"
#include "journal.h"
#include "timefmt.h"

#include <git2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void problem(verify_result *r, const char *run, const char *file, const git_oid *commit,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void problem(verify_result *r, const char *run, const char *file, const git_oid *commit,
                    const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "run", run ? run : "");
    cJSON_AddStringToObject(p, "file", file ? file : "");
    if (commit) {
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof hex, commit);
        cJSON_AddStringToObject(p, "commit", hex);
    }
    cJSON_AddStringToObject(p, "problem", text);
    cJSON_AddItemToArray(r->problems, p);
}

/* The content of path in tree, or NULL. */
static char *blob_text(git_repository *repo, git_tree *tree, const char *path, size_t *len)
{
    git_tree_entry *entry = NULL;
    git_blob *blob = NULL;
    char *text = NULL;
    if (tree && git_tree_entry_bypath(&entry, tree, path) == 0 &&
        git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) == 0) {
        *len = (size_t)git_blob_rawsize(blob);
        text = xstrndup(git_blob_rawcontent(blob), *len);
    }
    git_blob_free(blob);
    git_tree_entry_free(entry);
    return text;
}

/* ---- each run at HEAD -------------------------------------------------- */

static void check_times(verify_result *r, const char *run_id, const char *file, const cJSON *events)
{
    double previous = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        const cJSON *time = cJSON_GetObjectItemCaseSensitive(e, "time");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "seq");
        double t;
        if (!cJSON_IsString(time) || timefmt_parse_timestamp(time->valuestring, &t) != 0) {
            problem(r, run_id, file, NULL, "event %d has no valid time", seq ? seq->valueint : -1);
            return;
        }
        if (t <= previous) {
            problem(r, run_id, file, NULL, "event %d is not later than the event before it (%s)",
                    seq ? seq->valueint : -1, time->valuestring);
            return;
        }
        previous = t;
    }
}

static void check_state(verify_result *r, const char *run_id, const char *file, const cJSON *events,
                        const char *state_text)
{
    checkpoint *cp = NULL;
    if (checkpoint_replay(&cp, run_id, events) != 0) {
        problem(r, run_id, file, NULL, "the journal cannot be replayed: %s", err_last());
        return;
    }
    cJSON *replayed = checkpoint_to_json(cp);
    checkpoint_free(cp);
    cJSON *stored = state_text ? cJSON_Parse(state_text) : NULL;
    char *state_file = xasprintf("runs/%s/state.json", run_id);
    if (!stored) {
        problem(r, run_id, state_file, NULL, "state.json is missing or not JSON");
    } else if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(replayed, "status"),
                              cJSON_GetObjectItemCaseSensitive(stored, "status"), 1)) {
        problem(r, run_id, state_file, NULL, "the status in state.json disagrees with the journal");
    } else {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(replayed, "steps");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(stored, "steps");
        int n = cJSON_GetArraySize(a);
        if (n != cJSON_GetArraySize(b))
            problem(r, run_id, state_file, NULL, "state.json lists other steps than the journal");
        for (int i = 0; i < n; i++) {
            const cJSON *sa = cJSON_GetArrayItem(a, i), *sb = cJSON_GetArrayItem(b, i);
            if (!cJSON_Compare(sa, sb, 1)) {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(sa, "name");
                problem(r, run_id, state_file, NULL, "step '%s' in state.json disagrees with the journal "
                        "(state, outputs or error edited)", cJSON_IsString(name) ? name->valuestring : "?");
                break;
            }
        }
    }
    cJSON_Delete(stored);
    cJSON_Delete(replayed);
    free(state_file);
}

static void check_run(git_repository *repo, git_tree *head, const char *run_id, verify_result *r)
{
    char *journal_file = xasprintf("runs/%s/journal.jsonl", run_id);
    char *state_path = xasprintf("runs/%s/state.json", run_id);
    char *info_path = xasprintf("runs/%s/run.json", run_id);
    size_t len = 0, state_len, info_len;
    char *journal_text = blob_text(repo, head, journal_file, &len);
    char *state_text = blob_text(repo, head, state_path, &state_len);
    char *info_text = blob_text(repo, head, info_path, &info_len);
    cJSON *events = NULL, *info = info_text ? cJSON_Parse(info_text) : NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(info, "run_id");
    long torn = 0;
    if (!info || !cJSON_IsString(id) || strcmp(id->valuestring, run_id) != 0)
        problem(r, run_id, info_path, NULL, "run.json is missing, not JSON, or names another run");
    if (!journal_text)
        problem(r, run_id, journal_file, NULL, "the journal is missing");
    else if (journal_parse(journal_file, journal_text, len, &events, &torn) != 0)
        problem(r, run_id, journal_file, NULL, "%s", err_last());
    else if (torn)
        problem(r, run_id, journal_file, NULL, "the journal ends with an incomplete line");
    if (events) {
        check_times(r, run_id, journal_file, events);
        check_state(r, run_id, journal_file, events, state_text);
    }
    cJSON_Delete(events);
    cJSON_Delete(info);
    free(journal_text);
    free(state_text);
    free(info_text);
    free(journal_file);
    free(state_path);
    free(info_path);
    r->runs++;
}

/* ---- history ------------------------------------------------------------------ */

static int ends_after_crash(const char *kind)
{
    return !strcmp(kind, "lock-takeover") || !strcmp(kind, "journal-repaired") || !strcmp(kind, "run-resumed") ||
           !strcmp(kind, "abort-requested");
}

/* The events the commit added to the run's journal, checked against its
 * message. */
static void check_added_events(verify_result *r, const char *run_id, const char *file, const git_oid *oid,
                               const char *message, const char *added, size_t added_len)
{
    cJSON *last = NULL;
    int transitions = 0;
    const char *p = added, *end = added + added_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t line_len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        cJSON *event = cJSON_ParseWithLength(p, line_len);
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(event, "kind");
        if (cJSON_IsString(kind) && journal_is_transition(kind->valuestring)) {
            transitions++;
            cJSON_Delete(last);
            last = event;
        } else {
            cJSON_Delete(event);
        }
        p += line_len + 1;
    }
    if (!last) {
        problem(r, run_id, file, oid, "the commit adds no transition to the journal");
        return;
    }
    const char *kind = cJSON_GetObjectItemCaseSensitive(last, "kind")->valuestring;
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(last, "step");
    char *expected = journal_transition_message(run_id, kind, cJSON_IsString(step) ? step->valuestring : NULL);
    size_t mlen = strlen(message);
    while (mlen && message[mlen - 1] == '\n')
        mlen--;
    if (strlen(expected) != mlen || strncmp(expected, message, mlen) != 0)
        problem(r, run_id, file, oid, "the commit says '%.*s' but its last event is '%s'", (int)mlen, message, expected);
    else if (transitions > 1 && !ends_after_crash(kind))
        problem(r, run_id, file, oid, "the commit adds %d transitions where drctl commits one (a commit was "
                "removed or squashed)", transitions);
    free(expected);
    cJSON_Delete(last);
}

static void check_commit(git_repository *repo, git_commit *commit, verify_result *r)
{
    const git_oid *oid = git_commit_id(commit);
    r->commits++;
    if (git_commit_parentcount(commit) > 1)
        problem(r, NULL, NULL, oid, "history is not linear: this is a merge commit");
    const char *message = git_commit_message(commit);
    const char *colon = strchr(message, ':');
    if (!colon) {
        problem(r, NULL, NULL, oid, "not a drctl commit (its message does not start with a run id)");
        return;
    }
    char *run_id = xstrndup(message, (size_t)(colon - message));
    char *prefix = xasprintf("runs/%s/", run_id);
    char *journal_file = xasprintf("runs/%s/journal.jsonl", run_id);
    git_commit *parent = NULL;
    git_tree *tree = NULL, *parent_tree = NULL;
    git_diff *diff = NULL;
    if (git_commit_parentcount(commit) > 0 && (git_commit_parent(&parent, commit, 0) != 0 ||
                                               git_commit_tree(&parent_tree, parent) != 0))
        problem(r, run_id, NULL, oid, "the parent commit cannot be read");
    if (git_commit_tree(&tree, commit) != 0 || git_diff_tree_to_tree(&diff, repo, parent_tree, tree, NULL) != 0) {
        problem(r, run_id, NULL, oid, "the commit cannot be read");
        goto cleanup;
    }
    for (size_t i = 0; i < git_diff_num_deltas(diff); i++) {
        const git_diff_delta *d = git_diff_get_delta(diff, i);
        const char *path = d->new_file.path ? d->new_file.path : d->old_file.path;
        if (strncmp(path, prefix, strlen(prefix)) != 0) {
            problem(r, run_id, path, oid, "the commit of run %s also changes %s, outside its folder", run_id, path);
            break;
        }
        if (d->status == GIT_DELTA_DELETED)
            problem(r, run_id, path, oid, "the commit deletes %s", path);
    }
    size_t old_len = 0, new_len = 0;
    char *old_journal = blob_text(repo, parent_tree, journal_file, &old_len);
    char *new_journal = blob_text(repo, tree, journal_file, &new_len);
    if (!new_journal)
        problem(r, run_id, journal_file, oid, "the commit has no journal for run %s", run_id);
    else if (old_journal && (new_len < old_len || memcmp(old_journal, new_journal, old_len) != 0))
        problem(r, run_id, journal_file, oid, "events were removed or edited: the journal is not append-only");
    else
        check_added_events(r, run_id, journal_file, oid, message, new_journal + old_len, new_len - old_len);
    free(old_journal);
    free(new_journal);
cleanup:
    git_diff_free(diff);
    git_tree_free(tree);
    git_tree_free(parent_tree);
    git_commit_free(parent);
    free(journal_file);
    free(prefix);
    free(run_id);
}

static void check_history(git_repository *repo, verify_result *r)
{
    git_revwalk *walk = NULL;
    if (git_revwalk_new(&walk, repo) != 0 || git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE) ||
        git_revwalk_push_head(walk) != 0) {
        git_revwalk_free(walk);
        return;
    }
    git_oid oid;
    while (git_revwalk_next(&oid, walk) == 0) {
        git_commit *commit = NULL;
        if (git_commit_lookup(&commit, repo, &oid) == 0)
            check_commit(repo, commit, r);
        git_commit_free(commit);
    }
    git_revwalk_free(walk);
}

int verify_audit(const char *dir, verify_result *result)
{
    memset(result, 0, sizeof *result);
    result->problems = cJSON_CreateArray();
    audit *a = NULL;
    git_repository *repo = NULL;
    git_object *head = NULL;
    git_tree *tree = NULL, *runs = NULL;
    git_tree_entry *runs_entry = NULL;
    int rc = audit_open(&a, dir, 0);
    if (rc)
        return rc;
    if (git_repository_open_ext(&repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) != 0) {
        rc = err_set(DR_EUSAGE, "cannot open the audit repository %s", dir);
        goto cleanup;
    }
    if (audit_check_clean(a) != 0)
        problem(result, NULL, NULL, NULL, "%s", err_last());
    if (git_revparse_single(&head, repo, "HEAD^{tree}") != 0)
        goto cleanup; /* no commit yet: nothing to check */
    tree = (git_tree *)head;
    head = NULL;
    if (git_tree_entry_bypath(&runs_entry, tree, "runs") == 0 &&
        git_tree_lookup(&runs, repo, git_tree_entry_id(runs_entry)) == 0) {
        for (size_t i = 0; i < git_tree_entrycount(runs); i++)
            check_run(repo, tree, git_tree_entry_name(git_tree_entry_byindex(runs, i)), result);
    }
    check_history(repo, result);
cleanup:
    git_tree_free(runs);
    git_tree_entry_free(runs_entry);
    git_tree_free(tree);
    git_object_free(head);
    git_repository_free(repo);
    audit_free(a);
    return rc;
}
