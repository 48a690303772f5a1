#include "verify.h"

#include "audit.h"
#include "buf.h"
#include "checkpoint.h"
#include "config.h"
#include "err.h"
#include "journal.h"
#include "runpath.h"
#include "runs.h"
#include "term.h"
#include "timefmt.h"
#include "verifysig.h"

#include <git2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void verify_problem(verify_result *r, const char *run, const char *file, const git_oid *commit,
                    const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cJSON *p = cJSON_CreateObject();
    int whole = p && r->problems && cJSON_AddStringToObject(p, "run", run ? run : "") &&
                cJSON_AddStringToObject(p, "file", file ? file : "");
    if (whole && commit) {
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof hex, commit);
        whole = cJSON_AddStringToObject(p, "commit", hex) != NULL;
    }
    whole = whole && cJSON_AddStringToObject(p, "problem", text) && cJSON_AddItemToArray(r->problems, p);
    if (!whole) {
        /* A problem dropped would let a tampered trail pass: the whole
         * result is marked as proving nothing. */
        cJSON_Delete(p);
        r->incomplete = 1;
    }
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
        if (!cJSON_IsString(time) || timefmt_parse_timestamp(&t, time->valuestring) != 0) {
            verify_problem(r, run_id, file, NULL, "event %d has no valid time", seq ? seq->valueint : -1);
            return;
        }
        if (t <= previous && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "rebased"))) {
            verify_problem(r, run_id, file, NULL, "event %d is not later than the event before it (%s)",
                    seq ? seq->valueint : -1, time->valuestring);
            return;
        }
        previous = t;
    }
}

static void check_state(verify_result *r, const char *run_id, const char *folder, const char *file,
                        const cJSON *events, const char *state_text)
{
    checkpoint *cp = NULL;
    if (checkpoint_replay(&cp, run_id, events) != 0) {
        verify_problem(r, run_id, file, NULL, "the journal cannot be replayed: %s", err_last());
        return;
    }
    cJSON *replayed = checkpoint_to_json(cp);
    checkpoint_free(cp);
    cJSON *stored = state_text ? cJSON_Parse(state_text) : NULL;
    char *state_file = xasprintf("%s/state.json", folder);
    if (!stored) {
        verify_problem(r, run_id, state_file, NULL, "state.json is missing or not JSON");
    } else if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(replayed, "status"),
                              cJSON_GetObjectItemCaseSensitive(stored, "status"), 1)) {
        verify_problem(r, run_id, state_file, NULL, "the status in state.json disagrees with the journal");
    } else {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(replayed, "steps");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(stored, "steps");
        int n = cJSON_GetArraySize(a);
        if (n != cJSON_GetArraySize(b))
            verify_problem(r, run_id, state_file, NULL, "state.json lists other steps than the journal");
        for (int i = 0; i < n; i++) {
            const cJSON *sa = cJSON_GetArrayItem(a, i), *sb = cJSON_GetArrayItem(b, i);
            if (!cJSON_Compare(sa, sb, 1)) {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(sa, "name");
                verify_problem(r, run_id, state_file, NULL, "step '%s' in state.json disagrees with the journal "
                        "(state, outputs or error edited)", cJSON_IsString(name) ? name->valuestring : "?");
                break;
            }
        }
    }
    cJSON_Delete(stored);
    cJSON_Delete(replayed);
    free(state_file);
}

/* The journal's hash chain holds from the run id to its last line; a
 * journal begun before chains is counted, not refused. */
static void check_chain(verify_result *r, const char *run_id, const char *file, const char *text, size_t len)
{
    journal_chain chain;
    journal_chain_check(&chain, run_id, text, len);
    if (chain.broken_line)
        verify_problem(r, run_id, file, NULL, "the hash chain breaks at %s", chain.why);
    else if (chain.unchained == chain.events)
        r->unchained++;
    else if (chain.unchained)
        r->partly_chained++;
    journal_chain_dispose(&chain);
}

/* The content of a file of a run folder, or NULL. */
static char *file_text(size_t *len, git_repository *repo, git_tree *folder, const char *name)
{
    const git_tree_entry *entry = folder ? git_tree_entry_byname(folder, name) : NULL;
    git_blob *blob = NULL;
    char *text = NULL;
    if (entry && git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) == 0) {
        *len = (size_t)git_blob_rawsize(blob);
        text = xstrndup(git_blob_rawcontent(blob), *len);
    }
    git_blob_free(blob);
    return text;
}

/* The run whose folder is run_entry, at folder (relative to the root). */
static void check_run(verify_result *r, git_repository *repo, const git_tree_entry *run_entry, const char *folder)
{
    const char *run_id = git_tree_entry_name(run_entry);
    git_tree *files = NULL;
    git_tree_lookup(&files, repo, git_tree_entry_id(run_entry));
    char *journal_file = xasprintf("%s/journal.jsonl", folder);
    char *info_path = xasprintf("%s/run.json", folder);
    char day[11];
    if (runpath_day_of_id(day, run_id) == 0 && strchr(folder + strlen(RUNPATH_TOP) + 1, '/')) {
        char *filed = xasprintf("%s/%s/%s", RUNPATH_TOP, day, run_id);
        if (strcmp(folder, filed) != 0)
            verify_problem(r, run_id, folder, NULL, "the run is filed under another day than its id's (%s): drctl "
                    "never finds it there", filed);
        free(filed);
    }
    size_t len = 0, state_len, info_len;
    char *journal_text = file_text(&len, repo, files, "journal.jsonl");
    char *state_text = file_text(&state_len, repo, files, "state.json");
    char *info_text = file_text(&info_len, repo, files, "run.json");
    cJSON *events = NULL, *info = info_text ? cJSON_Parse(info_text) : NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(info, "run_id");
    long torn = 0;
    if (!info || !cJSON_IsString(id) || strcmp(id->valuestring, run_id) != 0)
        verify_problem(r, run_id, info_path, NULL, "run.json is missing, not JSON, or names another run");
    if (!journal_text)
        verify_problem(r, run_id, journal_file, NULL, "the journal is missing");
    else if (journal_parse(&events, &torn, journal_file, journal_text, len) != 0)
        verify_problem(r, run_id, journal_file, NULL, "%s", err_last());
    else if (torn)
        verify_problem(r, run_id, journal_file, NULL, "the journal ends with an incomplete line");
    if (events) {
        check_times(r, run_id, journal_file, events);
        check_state(r, run_id, folder, journal_file, events, state_text);
        check_chain(r, run_id, journal_file, journal_text, len);
    }
    cJSON_Delete(events);
    cJSON_Delete(info);
    free(journal_text);
    free(state_text);
    free(info_text);
    free(journal_file);
    free(info_path);
    git_tree_free(files);
    r->runs++;
}

/* A tree of runs/ that holds a run's files: a run folder of the old
 * layout, even when its id looks like a year. */
static int holds_run_files(git_tree *tree)
{
    return git_tree_entry_byname(tree, "run.json") || git_tree_entry_byname(tree, "journal.jsonl");
}

static int is_digits(const char *name, size_t n)
{
    return strlen(name) == n && strspn(name, "0123456789") == n;
}

/* Every run of HEAD's runs/ (tree at folder), in both layouts: at depth
 * 0, runs/<id> or a year; then months, days, and the runs of each day. */
static void check_runs_under(verify_result *r, git_repository *repo, git_tree *tree, const char *folder, int depth)
{
    static const size_t digits[] = { 4, 2, 2 };
    for (size_t i = 0; i < git_tree_entrycount(tree); i++) {
        const git_tree_entry *e = git_tree_entry_byindex(tree, i);
        const char *name = git_tree_entry_name(e);
        char *path = xasprintf("%s/%s", folder, name);
        git_tree *sub = NULL;
        if (depth < 3 && is_digits(name, digits[depth]) && git_tree_entry_type(e) == GIT_OBJECT_TREE &&
            git_tree_lookup(&sub, repo, git_tree_entry_id(e)) == 0 && !(depth == 0 && holds_run_files(sub)))
            check_runs_under(r, repo, sub, path, depth + 1);
        else if (depth == 0 || depth == 3)
            check_run(r, repo, e, path);
        else
            verify_problem(r, NULL, path, NULL, "%s is neither a month nor a day folder of runs/", path);
        git_tree_free(sub);
        free(path);
    }
}

/* ---- history ------------------------------------------------------------------ */

/* The first transition a command records on a run another process left:
 * its commit may carry the one transition a crash left uncommitted. */
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
        verify_problem(r, run_id, file, oid, "the commit adds no transition to the journal");
        return;
    }
    const char *kind = cJSON_GetObjectItemCaseSensitive(last, "kind")->valuestring;
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(last, "step");
    char *expected = journal_transition_message(run_id, kind, cJSON_IsString(step) ? step->valuestring : NULL);
    size_t mlen = strlen(message);
    while (mlen && message[mlen - 1] == '\n')
        mlen--;
    if (strlen(expected) != mlen || strncmp(expected, message, mlen) != 0)
        verify_problem(r, run_id, file, oid, "the commit says '%.*s' but its last event is '%s'", (int)mlen, message, expected);
    else if (transitions > 1 && !ends_after_crash(kind))
        verify_problem(r, run_id, file, oid, "the commit adds %d transitions where drctl commits one (a commit was "
                "removed or squashed)", transitions);
    else if (transitions > 2)
        verify_problem(r, run_id, file, oid, "the commit adds %d transitions, ending with %s: what a crash leaves is "
                "at most the one transition being committed, then the event that resumes the run (commits "
                "were removed or squashed, or events added by hand)", transitions, kind);
    free(expected);
    cJSON_Delete(last);
}

/* A raw tree object is a list of "<mode> <name>\0<20-byte id>" entries.
 * Finds the entry called name: its offset and length, and its id. */
typedef struct raw_entry {
    size_t offset;
    size_t length;
    git_oid id;
} raw_entry;

/* Git orders tree entries by name, a directory's name compared as if it
 * ended with '/'; run folders are directories. */
static int compare_as_directories(const unsigned char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    /* the settings file is the one entry drctl writes that is not a
     * directory: it sorts without the '/' */
    int b_is_file = blen == strlen(CONFIG_FILE) && memcmp(b, CONFIG_FILE, blen) == 0;
    unsigned char ca = n < alen ? a[n] : b_is_file && alen == blen ? '\0' : '/';
    unsigned char cb = n < blen ? (unsigned char)b[n] : b_is_file ? '\0' : '/';
    return (int)ca - (int)cb;
}

static int raw_tree_find(raw_entry *out, const unsigned char *data, size_t size, const char *name)
{
    size_t name_len = strlen(name), off = 0;
    while (off < size) {
        const unsigned char *p = data + off;
        while (p < data + size && *p != ' ')
            p++;
        const unsigned char *entry_name = p + 1;
        const unsigned char *nul = entry_name < data + size ? memchr(entry_name, '\0', size - (size_t)(entry_name - data))
                                                            : NULL;
        if (!nul || (size_t)(nul - data) + 1 + GIT_OID_RAWSZ > size)
            return -1;
        size_t length = (size_t)(nul - (data + off)) + 1 + GIT_OID_RAWSZ;
        int order = compare_as_directories(entry_name, (size_t)(nul - entry_name), name, name_len);
        if (order == 0) {
            out->offset = off;
            out->length = length;
            git_oid_fromraw(&out->id, nul + 1);
            return 1;
        }
        if (order > 0)
            break; /* sorted: it is not there */
        off += length;
    }
    out->offset = off;
    out->length = 0;
    return 0;
}

/* True when `after` is `before` with at most the entry `name` added or
 * changed (before NULL: after holds that entry alone). Compares bytes, so
 * it costs a memcmp however many runs the tree lists. */
static int only_entry_changed(raw_entry *entry_after, raw_entry *entry_before, int *found_before,
                              git_odb_object *before, git_odb_object *after, const char *name)
{
    const unsigned char *a = git_odb_object_data(after);
    size_t asize = git_odb_object_size(after);
    *found_before = 0;
    if (raw_tree_find(entry_after, a, asize, name) != 1)
        return 0;
    if (!before)
        return entry_after->offset == 0 && entry_after->length == asize;
    const unsigned char *b = git_odb_object_data(before);
    size_t bsize = git_odb_object_size(before);
    int found = raw_tree_find(entry_before, b, bsize, name);
    if (found < 0)
        return 0;
    *found_before = found;
    size_t skip = found ? entry_before->length : 0;
    size_t off = entry_after->offset;
    if (entry_before->offset != off)
        return 0;
    return bsize - skip == asize - entry_after->length && memcmp(a, b, off) == 0 &&
           memcmp(a + off + entry_after->length, b + off + skip, bsize - off - skip) == 0;
}

/* The slow path, for naming what a bad commit changed outside its run. */
static void name_foreign_change(verify_result *r, git_repository *repo, git_commit *commit, const char *run_id)
{
    git_commit *parent = NULL;
    git_tree *tree = NULL, *parent_tree = NULL;
    git_diff *diff = NULL;
    char *prefix = NULL;
    if (git_commit_parentcount(commit) > 0 && git_commit_parent(&parent, commit, 0) == 0)
        git_commit_tree(&parent_tree, parent);
    if (git_commit_tree(&tree, commit) == 0) {
        char *folder = runpath_in_tree(repo, tree, run_id);
        prefix = folder ? xasprintf("%s/", folder) : xasprintf("%s/%s/", RUNPATH_TOP, run_id);
        free(folder);
    }
    if (prefix && git_diff_tree_to_tree(&diff, repo, parent_tree, tree, NULL) == 0) {
        for (size_t i = 0; i < git_diff_num_deltas(diff); i++) {
            const git_diff_delta *d = git_diff_get_delta(diff, i);
            const char *path = d->new_file.path ? d->new_file.path : d->old_file.path;
            if (strncmp(path, prefix, strlen(prefix)) != 0) {
                verify_problem(r, run_id, path, git_commit_id(commit), "the commit of run %s also changes %s, outside "
                        "its folder", run_id, path);
                break;
            }
        }
    }
    git_diff_free(diff);
    git_tree_free(tree);
    git_tree_free(parent_tree);
    git_commit_free(parent);
    free(prefix);
}

/* The trees on the way from the root to a run's folder: runs, the year,
 * the month, the day, the run (or runs and the run, in the old layout). */
#define WALK_DEPTH 5

/* The state carried from one commit to the next while walking history:
 * the raw trees of the previous commit, read once. The trees its check
 * read on the way to its run are kept: most commits follow one of the
 * same run, whose trees before are exactly those. */
typedef struct walk_state {
    git_odb *odb;
    git_oid root;
    git_odb_object *root_raw;
    git_odb_object *kept[WALK_DEPTH];
} walk_state;

static void forget_kept(walk_state *w)
{
    for (size_t i = 0; i < WALK_DEPTH; i++) {
        git_odb_object_free(w->kept[i]);
        w->kept[i] = NULL;
    }
}

/* The raw tree id, from the previous commit's trees when it is one. */
static git_odb_object *read_raw(walk_state *w, const git_oid *id)
{
    git_odb_object *o = NULL;
    for (size_t i = 0; i < WALK_DEPTH; i++)
        if (w->kept[i] && git_oid_equal(git_odb_object_id(w->kept[i]), id)) {
            git_odb_object_dup(&o, w->kept[i]);
            return o;
        }
    return git_odb_read(&o, w->odb, id) == 0 ? o : NULL;
}

/* The names from runs/ down to run_id's folder in the commit's tree, whose
 * raw runs tree is runs (parts[0] is RUNPATH_TOP); 0 when the tree holds
 * no such run. */
static size_t run_parts(char parts[WALK_DEPTH][129], git_repository *repo, git_commit *commit,
                        git_odb_object *runs, const char *run_id)
{
    raw_entry e;
    char day[11];
    snprintf(parts[0], sizeof parts[0], "%s", RUNPATH_TOP);
    if (runpath_day_of_id(day, run_id) == 0 &&
        raw_tree_find(&e, git_odb_object_data(runs), git_odb_object_size(runs), run_id) != 1) {
        snprintf(parts[1], 5, "%.4s", day);
        snprintf(parts[2], 3, "%.2s", day + 5);
        snprintf(parts[3], 3, "%.2s", day + 8);
        snprintf(parts[4], sizeof parts[4], "%s", run_id);
        return 5;
    }
    if (raw_tree_find(&e, git_odb_object_data(runs), git_odb_object_size(runs), run_id) == 1 &&
        strspn(run_id, "0123456789") != 4) {
        snprintf(parts[1], sizeof parts[1], "%s", run_id);
        return 2;
    }
    /* An id chosen by hand: the day it was filed under is looked up. */
    git_tree *tree = NULL;
    char *folder = git_commit_tree(&tree, commit) == 0 ? runpath_in_tree(repo, tree, run_id) : NULL;
    git_tree_free(tree);
    size_t n = 0;
    for (char *part = folder ? strtok(folder, "/") : NULL; part && n < WALK_DEPTH; part = strtok(NULL, "/"))
        snprintf(parts[n++], sizeof parts[0], "%s", part);
    free(folder);
    return n;
}

/* The journal of the folder at parts, to name in a problem. */
static char *journal_path_of(char parts[WALK_DEPTH][129], size_t n, const char *run_id)
{
    buf b = BUF_INIT;
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s/", parts[i]);
    if (n == 0)
        buf_printf(&b, "%s/%s/", RUNPATH_TOP, run_id);
    buf_printf(&b, "journal.jsonl");
    return buf_detach(&b);
}

/* Whether the commit, of tree root_raw, changed nothing but the folder at
 * parts below the root since the commit before (w->root_raw, or nothing
 * when has_parent is 0). *leaf and *leaf_before are the folder's entries
 * after and before, *had whether it was there before. The trees read on
 * the way are kept for the next commit. */
static int only_folder_changed(raw_entry *leaf, raw_entry *leaf_before, int *had, walk_state *w,
                               git_odb_object *root_raw, git_odb_object *runs_raw, int has_parent,
                               char parts[WALK_DEPTH][129], size_t n)
{
    git_odb_object *after_levels[WALK_DEPTH] = { runs_raw }, *before_levels[WALK_DEPTH] = { 0 };
    git_odb_object *after = root_raw, *before = has_parent ? w->root_raw : NULL;
    int ok = n > 0;
    for (size_t i = 0; ok && i < n; i++) {
        ok = after && only_entry_changed(leaf, leaf_before, had, before, after, parts[i]);
        if (!ok || i == n - 1)
            break;
        if (i > 0)
            after_levels[i] = read_raw(w, &leaf->id);
        after = after_levels[i];
        before = before_levels[i] = before && *had ? read_raw(w, &leaf_before->id) : NULL;
    }
    forget_kept(w);
    for (size_t i = 0; i < WALK_DEPTH; i++) {
        w->kept[i] = after_levels[i];
        git_odb_object_free(before_levels[i]);
    }
    return ok;
}

static char *journal_of_folder(size_t *len, git_repository *repo, const git_oid *folder_id)
{
    git_tree *folder = NULL;
    char *text = NULL;
    *len = 0;
    if (git_tree_lookup(&folder, repo, folder_id) == 0)
        text = file_text(len, repo, folder, "journal.jsonl");
    git_tree_free(folder);
    return text;
}

/* A settings commit ("config: ...") changes config.json alone, at the
 * root, and leaves a file drctl config would accept. */
static void check_config_commit(verify_result *r, git_repository *repo, git_commit *commit, const walk_state *w,
                                git_odb_object *root_raw)
{
    const git_oid *oid = git_commit_id(commit);
    raw_entry after, before;
    int had = 0;
    int has_parent = git_commit_parentcount(commit) > 0;
    if (!root_raw ||
        !only_entry_changed(&after, &before, &had, has_parent ? w->root_raw : NULL, root_raw, CONFIG_FILE)) {
        verify_problem(r, NULL, CONFIG_FILE, oid, "the settings commit changes more than %s", CONFIG_FILE);
        return;
    }
    git_blob *blob = NULL;
    config *parsed = NULL;
    if (git_blob_lookup(&blob, repo, &after.id) != 0) {
        verify_problem(r, NULL, CONFIG_FILE, oid, "%s cannot be read", CONFIG_FILE);
        return;
    }
    char *text = xstrndup(git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
    if (config_parse(&parsed, text, CONFIG_FILE) != 0)
        verify_problem(r, NULL, CONFIG_FILE, oid, "%s", err_last());
    config_free(parsed);
    free(text);
    git_blob_free(blob);
}

/* The one file a notification commit added under notifications/, or NULL
 * (and a problem) when it did anything else: a record is written once and
 * never changed. before may be NULL (the folder is new). */
static const git_tree_entry *added_record(verify_result *r, const git_oid *oid, git_tree *before, git_tree *after)
{
    size_t had = before ? git_tree_entrycount(before) : 0, has = git_tree_entrycount(after);
    const git_tree_entry *added = NULL;
    for (size_t i = 0; i < has; i++) {
        const git_tree_entry *e = git_tree_entry_byindex(after, i);
        const git_tree_entry *was = before ? git_tree_entry_byname(before, git_tree_entry_name(e)) : NULL;
        if (was && git_oid_equal(git_tree_entry_id(was), git_tree_entry_id(e)))
            continue;
        if (was || added) {
            verify_problem(r, NULL, AUDIT_NOTIFICATIONS_DIR, oid, "the notification commit changes %s/%s, which was "
                    "already recorded, or adds more than one record", AUDIT_NOTIFICATIONS_DIR, git_tree_entry_name(e));
            return NULL;
        }
        added = e;
    }
    if (!added || has != had + 1) {
        verify_problem(r, NULL, AUDIT_NOTIFICATIONS_DIR, oid, "the notification commit %s", added ? "also removes a record"
                                                                                          : "adds no record");
        return NULL;
    }
    return added;
}

/* A notification commit ("notify: ...") adds exactly one new file under
 * notifications/, a JSON object, and changes nothing else. */
static void check_notify_commit(verify_result *r, git_repository *repo, git_commit *commit, const walk_state *w,
                                git_odb_object *root_raw)
{
    const git_oid *oid = git_commit_id(commit);
    raw_entry after, before;
    int had = 0;
    int has_parent = git_commit_parentcount(commit) > 0;
    if (!root_raw || !only_entry_changed(&after, &before, &had, has_parent ? w->root_raw : NULL, root_raw,
                                         AUDIT_NOTIFICATIONS_DIR)) {
        verify_problem(r, NULL, AUDIT_NOTIFICATIONS_DIR, oid, "the notification commit changes more than one new file "
                "of %s/", AUDIT_NOTIFICATIONS_DIR);
        return;
    }
    git_tree *after_tree = NULL, *before_tree = NULL;
    git_blob *blob = NULL;
    if (git_tree_lookup(&after_tree, repo, &after.id) != 0 ||
        (had && git_tree_lookup(&before_tree, repo, &before.id) != 0)) {
        verify_problem(r, NULL, AUDIT_NOTIFICATIONS_DIR, oid, "%s/ is not a folder or cannot be read",
                AUDIT_NOTIFICATIONS_DIR);
        goto cleanup;
    }
    const git_tree_entry *record = added_record(r, oid, before_tree, after_tree);
    if (!record)
        goto cleanup;
    const char *name = git_tree_entry_name(record);
    size_t len = strlen(name);
    cJSON *doc = NULL;
    if (git_tree_entry_type(record) == GIT_OBJECT_BLOB && git_blob_lookup(&blob, repo, git_tree_entry_id(record)) == 0)
        doc = cJSON_ParseWithLength(git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
    if (len <= 5 || strcmp(name + len - 5, ".json") != 0 || !cJSON_IsObject(doc))
        verify_problem(r, NULL, AUDIT_NOTIFICATIONS_DIR, oid, "%s/%s is not a notification record (a .json object)",
                AUDIT_NOTIFICATIONS_DIR, name);
    cJSON_Delete(doc);
cleanup:
    git_blob_free(blob);
    git_tree_free(before_tree);
    git_tree_free(after_tree);
}

static void check_commit(verify_result *r, git_repository *repo, git_commit *commit, walk_state *w)
{
    const git_oid *oid = git_commit_id(commit);
    r->commits++;
    if (git_commit_parentcount(commit) > 1)
        verify_problem(r, NULL, NULL, oid, "history is not linear: this is a merge commit");
    const char *message = git_commit_message(commit);
    const char *colon = strchr(message, ':');
    git_odb_object *root_raw = NULL;
    if (git_odb_read(&root_raw, w->odb, git_commit_tree_id(commit)) != 0)
        root_raw = NULL;
    /* The parent is the previous commit of the walk, unless history forks. */
    int parent_known = git_commit_parentcount(commit) == 0 ||
                       (w->root_raw && git_oid_equal(git_commit_parent_id(commit, 0), &w->root));
    if (strncmp(message, "config: ", 8) == 0) {
        if (parent_known)
            check_config_commit(r, repo, commit, w, root_raw);
    } else if (strncmp(message, "notify: ", 8) == 0) {
        if (parent_known)
            check_notify_commit(r, repo, commit, w, root_raw);
    } else if (!colon) {
        verify_problem(r, NULL, NULL, oid, "not a drctl commit (its message does not start with a run id)");
    } else if (parent_known) {
        char *run_id = xstrndup(message, (size_t)(colon - message));
        if (!runs_valid_id(run_id)) {
            verify_problem(r, NULL, NULL, oid, "not a drctl commit (its message does not start with a run id)");
            free(run_id);
            goto next;
        }
        raw_entry runs_entry, run_entry, run_before;
        char parts[WALK_DEPTH][129];
        size_t n = 0;
        int had_run = 0;
        int has_parent = git_commit_parentcount(commit) > 0;
        git_odb_object *runs_raw = NULL;
        if (root_raw && raw_tree_find(&runs_entry, git_odb_object_data(root_raw), git_odb_object_size(root_raw),
                                      RUNPATH_TOP) == 1 &&
            (runs_raw = read_raw(w, &runs_entry.id)))
            n = run_parts(parts, repo, commit, runs_raw, run_id);
        int ok = n > 0 && only_folder_changed(&run_entry, &run_before, &had_run, w, root_raw, runs_raw, has_parent,
                                              parts, n);
        if (n == 0)
            git_odb_object_free(runs_raw);
        char *journal_file = journal_path_of(parts, n, run_id);
        if (!ok)
            name_foreign_change(r, repo, commit, run_id);
        size_t old_len = 0, new_len = 0;
        char *old_journal = ok && had_run ? journal_of_folder(&old_len, repo, &run_before.id) : NULL;
        char *new_journal = ok ? journal_of_folder(&new_len, repo, &run_entry.id) : NULL;
        if (!ok)
            ; /* named above */
        else if (!new_journal)
            verify_problem(r, run_id, journal_file, oid, "the commit has no journal for run %s", run_id);
        else if (old_journal && (new_len < old_len || memcmp(old_journal, new_journal, old_len) != 0))
            verify_problem(r, run_id, journal_file, oid, "events were removed or edited: the journal is not append-only");
        else
            check_added_events(r, run_id, journal_file, oid, message, new_journal + old_len, new_len - old_len);
        free(old_journal);
        free(new_journal);
        free(journal_file);
        free(run_id);
    }
next:
    /* This commit is the next one's parent. */
    git_odb_object_free(w->root_raw);
    w->root_raw = root_raw;
    git_oid_cpy(&w->root, oid);
}

/* One share of the history, checked by one thread with its own
 * repository handle (libgit2 objects are not shared between threads). */
typedef struct history_chunk {
    const char *gitdir;
    const git_oid *commits;
    size_t first;         /* index of the chunk's first commit */
    size_t count;
    verify_result result;
} history_chunk;

static void *check_chunk(void *arg)
{
    history_chunk *chunk = arg;
    git_repository *repo = NULL;
    walk_state w = { 0 };
    chunk->result.problems = cJSON_CreateArray();
    if (git_repository_open_ext(&repo, chunk->gitdir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) != 0 ||
        git_repository_odb(&w.odb, repo) != 0)
        goto cleanup;
    if (chunk->first > 0) {
        /* Start from the raw trees of the commit before the chunk. */
        git_commit *before = NULL;
        const git_oid *oid = &chunk->commits[chunk->first - 1];
        if (git_commit_lookup(&before, repo, oid) == 0 && git_odb_read(&w.root_raw, w.odb, git_commit_tree_id(before)) == 0)
            git_oid_cpy(&w.root, oid);
        git_commit_free(before);
    }
    for (size_t i = chunk->first; i < chunk->first + chunk->count; i++) {
        git_commit *commit = NULL;
        if (git_commit_lookup(&commit, repo, &chunk->commits[i]) == 0)
            check_commit(&chunk->result, repo, commit, &w);
        git_commit_free(commit);
    }
cleanup:
    git_odb_object_free(w.root_raw);
    forget_kept(&w);
    git_odb_free(w.odb);
    git_repository_free(repo);
    return NULL;
}

/* The history being checked: every commit, oldest first, in as many
 * shares as there are processors, each on its own thread (each check
 * needs only its commit and the one before). */
typedef struct history_check {
    git_oid *commits;
    size_t shares;
    history_chunk chunks[8];
    pthread_t threads[8];
    int started[8];
} history_check;

/* Lists the commits and starts their check; history_finish waits for it.
 * The checks of the working tree and of HEAD run meanwhile, on the
 * caller's thread: they share no libgit2 object with the shares. */
static void history_start(history_check *h, git_repository *repo)
{
    memset(h, 0, sizeof *h);
    git_revwalk *walk = NULL;
    size_t count = 0, cap = 0;
    int listed = git_revwalk_new(&walk, repo) == 0 &&
                 git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE) == 0 &&
                 git_revwalk_push_head(walk) == 0;
    git_oid oid;
    while (listed && git_revwalk_next(&oid, walk) == 0) {
        if (count == cap)
            h->commits = xrealloc(h->commits, (cap = cap ? cap * 2 : 1024) * sizeof *h->commits);
        git_oid_cpy(&h->commits[count++], &oid);
    }
    git_revwalk_free(walk);
    if (!listed)
        return;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    h->shares = count < 256 ? 1 : (size_t)(cpus < 1 ? 1 : cpus > 8 ? 8 : cpus);
    for (size_t i = 0; i < h->shares; i++) {
        size_t first = count * i / h->shares, last = count * (i + 1) / h->shares;
        h->chunks[i] = (history_chunk){ git_repository_path(repo), h->commits, first, last - first, { 0 } };
        h->started[i] = h->shares > 1 && pthread_create(&h->threads[i], NULL, check_chunk, &h->chunks[i]) == 0;
    }
}

/* The shares' problems, in history order, after the caller's. */
static void history_finish(verify_result *r, history_check *h)
{
    for (size_t i = 0; i < h->shares; i++) {
        if (h->started[i])
            pthread_join(h->threads[i], NULL);
        else
            check_chunk(&h->chunks[i]);
        r->commits += h->chunks[i].result.commits;
        r->incomplete |= h->chunks[i].result.incomplete || !h->chunks[i].result.problems;
        cJSON *p;
        while ((p = cJSON_DetachItemFromArray(h->chunks[i].result.problems, 0)))
            if (!r->problems || !cJSON_AddItemToArray(r->problems, p)) {
                cJSON_Delete(p);
                r->incomplete = 1;
            }
        cJSON_Delete(h->chunks[i].result.problems);
    }
    free(h->commits);
}

/* A recorded notification is never changed or removed in the working
 * tree either; a new file not yet committed is what a crash between the
 * write and the commit leaves, and is allowed. */
static void check_records_unchanged(verify_result *r, git_repository *repo, git_tree *head)
{
    git_diff *diff = NULL;
    git_diff_options opts;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    char *pathspec[] = { AUDIT_NOTIFICATIONS_DIR "/" };
    opts.pathspec.strings = pathspec;
    opts.pathspec.count = 1;
    if (git_diff_tree_to_workdir_with_index(&diff, repo, head, &opts) != 0)
        return;
    for (size_t i = 0; i < git_diff_num_deltas(diff); i++) {
        const git_diff_delta *d = git_diff_get_delta(diff, i);
        if (d->status == GIT_DELTA_UNTRACKED || d->status == GIT_DELTA_ADDED)
            continue;
        const char *path = d->old_file.path ? d->old_file.path : d->new_file.path;
        verify_problem(r, NULL, path, NULL, "the notification record %s was %s outside drctl; restore it with git "
                "checkout HEAD -- %s", path, d->status == GIT_DELTA_DELETED ? "deleted" : "changed", path);
    }
    git_diff_free(diff);
}

/* The relative folder drctl docs writes into the trail (docs.dir), or NULL. */
static char *docs_folder(const char *dir)
{
    config *cfg = NULL;
    char *folder = NULL;
    if (config_load(&cfg, dir) == 0) {
        const char *d = config_text(cfg, "docs.dir");
        if (d && d[0] != '/') {
            folder = xstrdup(d);
            size_t n = strlen(folder);
            while (n > 1 && folder[n - 1] == '/')
                folder[--n] = '\0';
        }
    }
    config_free(cfg);
    return folder;
}

static int starts_with_folder(const char *path, const char *folder)
{
    size_t n = folder ? strlen(folder) : 0;
    return n && strncmp(path, folder, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* At the top of the trail drctl writes runs/, notifications/ and
 * config.json (and the pages of docs.dir, when it is inside): anything
 * else untracked, ignored files included, was put there by someone else.
 * runs/ is checked file by file by audit_check_clean. */
static void check_untracked(verify_result *r, git_repository *repo, const char *dir)
{
    git_status_options opts;
    git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
    opts.show = GIT_STATUS_SHOW_WORKDIR_ONLY;
    opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_INCLUDE_IGNORED;
    git_status_list *list = NULL;
    if (git_status_list_new(&list, repo, &opts) != 0)
        return;
    char *docs = docs_folder(dir);
    for (size_t i = 0; i < git_status_list_entrycount(list); i++) {
        const git_status_entry *e = git_status_byindex(list, i);
        if (!(e->status & (GIT_STATUS_WT_NEW | GIT_STATUS_IGNORED)) || !e->index_to_workdir)
            continue;
        const char *path = e->index_to_workdir->new_file.path;
        if (starts_with_folder(path, "runs") || starts_with_folder(path, AUDIT_NOTIFICATIONS_DIR) ||
            starts_with_folder(path, docs))
            continue;
        verify_problem(r, NULL, path, NULL, "%s is not tracked (%s): drctl writes only runs/, %s/ and %s at the top of "
                "the trail; remove it, or commit it knowingly", path,
                e->status & GIT_STATUS_IGNORED ? "ignored" : "untracked", AUDIT_NOTIFICATIONS_DIR, CONFIG_FILE);
    }
    free(docs);
    git_status_list_free(list);
}

/* Runs whose folder is ahead of the last commit are not a problem (a run
 * under way writes its module events before its next commit; a crash
 * leaves its last transition so), but the trail does not hold them yet:
 * they are named, for drctl resume to commit. */
/* Every run of the working tree, in listing order. */
static void all_runs(str_list *ids, const char *dir)
{
    runpath_entry *runs;
    size_t count;
    str_list_dispose(ids);
    runpath_list(&runs, &count, dir);
    for (size_t i = 0; i < count; i++)
        str_list_push(ids, runs[i].run_id);
    runpath_list_free(runs, count);
}

static void note_uncommitted_runs(verify_result *r, audit *a, const str_list *dirty)
{
    size_t used = 0;
    int cut = 0;
    for (size_t i = 0; i < dirty->count; i++) {
        const char *id = dirty->items[i];
        if (!runs_valid_id(id) || audit_run_uncommitted(a, id) != 1)
            continue;
        r->uncommitted++;
        if (cut)
            continue; /* once cut short, a shorter id after it would hide the ones left out */
        size_t room = sizeof r->uncommitted_runs - used;
        int n = snprintf(r->uncommitted_runs + used, room, "%s%s", used ? ", " : "", id);
        if (n > 0 && (size_t)n < room - 5) {
            used += (size_t)n;
        } else {
            snprintf(r->uncommitted_runs + used, room, "%s...", used ? ", " : "");
            cut = 1;
        }
    }
    err_clear();
}

int verify_audit(verify_result *result, const char *dir, const char *allowed_signers_path)
{
    memset(result, 0, sizeof *result);
    result->problems = cJSON_CreateArray();
    allowed_signers *signers = NULL;
    if (allowed_signers_path && allowed_signers_load(&signers, allowed_signers_path) != 0)
        return DR_EUSAGE;
    audit *a = NULL;
    git_repository *repo = NULL;
    git_object *head = NULL;
    git_tree *tree = NULL, *runs = NULL;
    git_tree_entry *runs_entry = NULL;
    int rc = audit_open(&a, dir, 0);
    if (rc) {
        allowed_signers_free(signers);
        return rc;
    }
    if (git_repository_open_ext(&repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) != 0) {
        rc = err_set(DR_EUSAGE, "cannot open the audit repository %s", dir);
        goto cleanup;
    }
    double t0 = timefmt_monotonic(), started = t0;
    /* Each version of the runs tree is read once and kept by the walk
     * itself; libgit2's cache would only churn on them. */
    git_libgit2_opts(GIT_OPT_ENABLE_CACHING, 0);
    history_check history;
    history_start(&history, repo);
    str_list dirty = { 0 };
    if (audit_check_clean_listing(a, &dirty) != 0) {
        verify_problem(result, NULL, NULL, NULL, "%s", err_last());
        all_runs(&dirty, dir); /* the listing stopped at the problem */
    }
    if (audit_check_config_clean(a) != 0)
        verify_problem(result, NULL, CONFIG_FILE, NULL, "%s", err_last());
    check_untracked(result, repo, dir);
    note_uncommitted_runs(result, a, &dirty);
    str_list_dispose(&dirty);
    term_debug("working tree checked in %.2fs", timefmt_monotonic() - t0);
    t0 = timefmt_monotonic();
    /* no commit yet: nothing to check */
    if (git_revparse_single(&head, repo, "HEAD^{tree}") == 0) {
        tree = (git_tree *)head;
        head = NULL;
        check_records_unchanged(result, repo, tree);
        if (git_tree_entry_bypath(&runs_entry, tree, RUNPATH_TOP) == 0 &&
            git_tree_lookup(&runs, repo, git_tree_entry_id(runs_entry)) == 0) {
            check_runs_under(result, repo, runs, RUNPATH_TOP, 0);
        }
        term_debug("%ld runs checked at HEAD in %.2fs", result->runs, timefmt_monotonic() - t0);
    }
    history_finish(result, &history);
    git_libgit2_opts(GIT_OPT_ENABLE_CACHING, 1);
    term_debug("%ld commits checked in %.2fs (from the start, alongside the rest)", result->commits,
               timefmt_monotonic() - started);
    if (signers && tree) {
        t0 = timefmt_monotonic();
        verify_signatures(result, repo, signers);
        term_debug("%ld signatures checked in %.2fs", result->signed_commits, timefmt_monotonic() - t0);
    }
cleanup:
    if (rc == 0 && (result->incomplete || !result->problems))
        rc = err_set(DR_EFAIL, "audit verify ran out of memory: a problem it found could not be recorded, so its "
                     "result proves nothing; run it again");
    allowed_signers_free(signers);
    git_tree_free(runs);
    git_tree_entry_free(runs_entry);
    git_tree_free(tree);
    git_object_free(head);
    git_repository_free(repo);
    audit_free(a);
    return rc;
}
