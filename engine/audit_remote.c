#include "audit_remote.h"

#include "audit_internal.h"
#include "buf.h"
#include "checkpoint.h"
#include "journal.h"
#include "jsontext.h"
#include "report.h"
#include "runpath.h"
#include "err.h"
#include "jsonfield.h"
#include "timefmt.h"
#include "term.h"

#include <cjson/cJSON.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PUSH_TRIES 4

/* ---- talking to origin ---------------------------------------------------------- */

typedef struct remote_state {
    int credential_tries;
    char rejection[256];
} remote_state;

static int credentials(git_credential **out, const char *url, const char *user_from_url, unsigned int allowed,
                       void *payload)
{
    remote_state *state = payload;
    (void)url;
    if (state->credential_tries++ >= 2)
        return GIT_EUSER;
    if (allowed & GIT_CREDENTIAL_SSH_KEY)
        return git_credential_ssh_key_from_agent(out, user_from_url ? user_from_url : "git");
    const char *token = getenv("DRCTL_GIT_TOKEN");
    if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && token && *token) {
        const char *user = getenv("DRCTL_GIT_USER");
        return git_credential_userpass_plaintext_new(out, user && *user ? user : "x-access-token", token);
    }
    return GIT_PASSTHROUGH;
}

static int push_status(const char *refname, const char *status, void *payload)
{
    remote_state *state = payload;
    if (status)
        snprintf(state->rejection, sizeof state->rejection, "%s: %s", refname, status);
    return 0;
}

static void remote_callbacks(git_remote_callbacks *cb, remote_state *state)
{
    cb->credentials = credentials;
    cb->push_update_reference = push_status;
    cb->payload = state;
}

static int fetch_origin(audit *a)
{
    git_remote *origin = NULL;
    remote_state state = { 0 };
    git_fetch_options opts;
    git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
    remote_callbacks(&opts.callbacks, &state);
    int rc = 0;
    if (git_remote_lookup(&origin, a->repo, "origin") != 0 || git_remote_fetch(origin, NULL, &opts, NULL) != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot fetch the audit trail from origin");
    git_remote_free(origin);
    return rc;
}

/* Moves the branch (and the working tree and index) from `from` to `to`,
 * touching only what differs between the two. */
static int move_branch(audit *a, git_commit *from, const git_oid *to)
{
    git_commit *target = NULL;
    git_tree *target_tree = NULL, *baseline = NULL;
    git_reference *ref = NULL;
    int rc = 0;
    if (git_commit_lookup(&target, a->repo, to) != 0 || git_commit_tree(&target_tree, target) != 0 ||
        (from && git_commit_tree(&baseline, from) != 0)) {
        rc = audit_git_fail(DR_EFAIL, "cannot read the fetched audit trail");
        goto cleanup;
    }
    git_checkout_options opts;
    git_checkout_options_init(&opts, GIT_CHECKOUT_OPTIONS_VERSION);
    opts.checkout_strategy = GIT_CHECKOUT_SAFE;
    opts.baseline = baseline;
    if (git_checkout_tree(a->repo, (git_object *)target_tree, &opts) != 0) {
        rc = audit_git_fail(DR_EFAIL, "cannot bring the fetched runs into the audit folder");
        goto cleanup;
    }
    char *refname = xasprintf("refs/heads/%s", a->branch);
    if (git_reference_create(&ref, a->repo, refname, to, 1, "drctl: integrate origin") != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot move the audit branch");
    free(refname);
cleanup:
    git_reference_free(ref);
    git_tree_free(baseline);
    git_tree_free(target_tree);
    git_commit_free(target);
    return rc;
}

/* The tree of `onto` with the run folder of `commit` (named by its
 * message, "<run-id>: ...") as it is in that commit. */
/* config.json in a tree, parsed; an empty object when it has none (or it
 * does not parse: the replay then keeps what the other side has). */
static cJSON *config_in(audit *a, git_tree *tree)
{
    git_tree_entry *entry = NULL;
    git_blob *blob = NULL;
    cJSON *config = NULL;
    if (tree && git_tree_entry_bypath(&entry, tree, AUDIT_CONFIG_FILE) == 0 &&
        git_blob_lookup(&blob, a->repo, git_tree_entry_id(entry)) == 0)
        config = cJSON_ParseWithLength(git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
    git_blob_free(blob);
    git_tree_entry_free(entry);
    if (!cJSON_IsObject(config)) {
        cJSON_Delete(config);
        config = cJSON_CreateObject();
    }
    return config;
}

/* What a settings commit changed (against its parent) applied onto what
 * `onto` holds, key by key: two operators who set different keys while
 * apart both keep theirs; on the same key the replayed commit, the later
 * one, wins. */
static void apply_config_change(cJSON *onto, const cJSON *before, const cJSON *after)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, before)
        if (!cJSON_GetObjectItemCaseSensitive(after, item->string))
            cJSON_DeleteItemFromObjectCaseSensitive(onto, item->string);
    cJSON_ArrayForEach(item, after) {
        const cJSON *was = cJSON_GetObjectItemCaseSensitive(before, item->string);
        if (was && cJSON_Compare(was, item, 1))
            continue;
        cJSON_DeleteItemFromObjectCaseSensitive(onto, item->string);
        cJSON_AddItemToObject(onto, item->string, cJSON_Duplicate(item, 1));
    }
}

static int replayed_config_tree(git_oid *out, audit *a, git_commit *commit, git_tree *onto)
{
    git_tree *tree = NULL, *parent_tree = NULL;
    git_commit *parent = NULL;
    int rc = 0;
    if (git_commit_tree(&tree, commit) != 0 ||
        (git_commit_parentcount(commit) > 0 &&
         (git_commit_parent(&parent, commit, 0) != 0 || git_commit_tree(&parent_tree, parent) != 0)))
        return audit_git_fail(DR_EFAIL, "cannot read a local settings commit to replay it");
    cJSON *before = config_in(a, parent_tree), *after = config_in(a, tree), *merged = config_in(a, onto);
    apply_config_change(merged, before, after);
    char *text = cJSON_Print(merged);
    buf file = BUF_INIT;
    buf_append(&file, text, strlen(text));
    buf_append(&file, "\n", 1);
    git_oid blob_id;
    git_tree_update update = { GIT_TREE_UPDATE_UPSERT, { { 0 } }, GIT_FILEMODE_BLOB, AUDIT_CONFIG_FILE };
    if (git_blob_create_from_buffer(&blob_id, a->repo, file.data, file.len) != 0 ||
        (update.id = blob_id, git_tree_create_updated(out, a->repo, onto, 1, &update)) != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot replay a local settings commit");
    buf_dispose(&file);
    free(text);
    cJSON_Delete(before);
    cJSON_Delete(after);
    cJSON_Delete(merged);
    git_tree_free(parent_tree);
    git_commit_free(parent);
    git_tree_free(tree);
    return rc;
}

/* A notification commit adds its own new file under notifications/ and
 * nothing else: replayed, it adds that file to what `onto` holds. */
static int replayed_notification_tree(git_oid *out, audit *a, git_commit *commit, git_tree *onto)
{
    git_tree *tree = NULL, *parent_tree = NULL;
    git_commit *parent = NULL;
    git_diff *diff = NULL;
    git_tree_update *updates = NULL;
    int rc = 0;
    git_diff_options opts;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    char *pathspec[] = { AUDIT_NOTIFICATIONS_DIR "/" };
    opts.pathspec.strings = pathspec;
    opts.pathspec.count = 1;
    if (git_commit_tree(&tree, commit) != 0 ||
        (git_commit_parentcount(commit) > 0 &&
         (git_commit_parent(&parent, commit, 0) != 0 || git_commit_tree(&parent_tree, parent) != 0)) ||
        git_diff_tree_to_tree(&diff, a->repo, parent_tree, tree, &opts) != 0) {
        rc = audit_git_fail(DR_EFAIL, "cannot read a local notification commit to replay it");
        goto cleanup;
    }
    size_t count = git_diff_num_deltas(diff);
    updates = xcalloc(count ? count : 1, sizeof *updates);
    for (size_t i = 0; i < count; i++) {
        const git_diff_delta *d = git_diff_get_delta(diff, i);
        updates[i] = d->status == GIT_DELTA_DELETED
                         ? (git_tree_update){ GIT_TREE_UPDATE_REMOVE, { { 0 } }, GIT_FILEMODE_BLOB, d->old_file.path }
                         : (git_tree_update){ GIT_TREE_UPDATE_UPSERT, d->new_file.id, GIT_FILEMODE_BLOB, d->new_file.path };
    }
    if (git_tree_create_updated(out, a->repo, onto, count, updates) != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot replay a local notification commit");
cleanup:
    free(updates);
    git_diff_free(diff);
    git_tree_free(parent_tree);
    git_commit_free(parent);
    git_tree_free(tree);
    return rc;
}

/* The text of the file name of run_id's folder in tree, or NULL. */
static char *run_file_text(audit *a, git_tree *tree, const char *run_id, const char *name)
{
    char *folder = tree ? runpath_in_tree(a->repo, tree, run_id) : NULL;
    char *path = folder ? xasprintf("%s/%s", folder, name) : NULL;
    git_tree_entry *entry = NULL;
    git_blob *blob = NULL;
    char *text = NULL;
    free(folder);
    if (path && git_tree_entry_bypath(&entry, tree, path) == 0 &&
        git_blob_lookup(&blob, a->repo, git_tree_entry_id(entry)) == 0)
        text = xstrndup(git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
    git_blob_free(blob);
    git_tree_entry_free(entry);
    free(path);
    return text;
}

static int put_file(git_tree_update *u, char **path, audit *a, const char *folder, const char *name, const char *text)
{
    *path = xasprintf("%s/%s", folder, name);
    git_oid blob;
    if (git_blob_create_from_buffer(&blob, a->repo, text, strlen(text)) != 0)
        return audit_git_fail(DR_EFAIL, "cannot store a replayed file");
    *u = (git_tree_update){ GIT_TREE_UPDATE_UPSERT, blob, GIT_FILEMODE_BLOB, *path };
    return 0;
}

/* Both clones wrote to this run since they parted (an approval given on
 * one while the other resumed): origin's journal is kept, and the events
 * this commit added go after it, with the state and report they make. */
static int merged_run_tree(git_oid *out, audit *a, const char *run_id, const char *onto_journal,
                           const char *base_journal, const char *local_journal, git_tree *onto, int has_report)
{
    char *merged_text = NULL, *state = NULL, *report = NULL, *info_text = run_file_text(a, onto, run_id, "run.json");
    cJSON *events = NULL, *info = info_text ? cJSON_Parse(info_text) : NULL;
    checkpoint *cp = NULL;
    long torn = 0;
    int rc = journal_rebase(&merged_text, run_id, onto_journal, base_journal, local_journal);
    if (rc == 0 && (rc = journal_parse(&events, &torn, run_id, merged_text, strlen(merged_text))) == 0 &&
        (rc = checkpoint_replay(&cp, run_id, events)) == 0) {
        cJSON *json = checkpoint_to_json(cp);
        char *text = json_print_exact(json, 1);
        state = xasprintf("%s\n", text);
        free(text);
        cJSON_Delete(json);
        if (has_report && info) {
            journal_chain chain;
            journal_chain_check(&chain, run_id, merged_text, strlen(merged_text));
            report = report_render(info, events, chain.head);
            journal_chain_dispose(&chain);
        }
    }
    git_tree_update updates[3];
    char *paths[3] = { NULL, NULL, NULL };
    size_t n = 0;
    char *folder = runpath_in_tree(a->repo, onto, run_id);
    if (rc == 0 && !folder)
        rc = err_set(DR_EFAIL, "cannot find run %s in origin's trail to replay a local commit", run_id);
    if (rc == 0 && (rc = put_file(&updates[n], &paths[n], a, folder, "journal.jsonl", merged_text)) == 0 && ++n &&
        (rc = put_file(&updates[n], &paths[n], a, folder, "state.json", state)) == 0 && ++n && report &&
        (rc = put_file(&updates[n], &paths[n], a, folder, "report.md", report)) == 0)
        n++;
    free(folder);
    if (rc == 0 && git_tree_create_updated(out, a->repo, onto, n, updates) != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot replay a local commit");
    for (size_t i = 0; i < 3; i++)
        free(paths[i]);
    checkpoint_free(cp);
    cJSON_Delete(events);
    cJSON_Delete(info);
    free(info_text);
    free(merged_text);
    free(state);
    free(report);
    return rc;
}

/* Whether origin's journal of the run moved since the commit's parent:
 * then the commit's events are merged after origin's instead of its
 * folder replacing origin's. */
static int replay_merging(int *merged, git_oid *out, audit *a, git_commit *commit, git_tree *onto, const char *run_id)
{
    *merged = 0;
    git_commit *parent = NULL;
    git_tree *parent_tree = NULL, *tree = NULL;
    if (git_commit_parentcount(commit) > 0 && git_commit_parent(&parent, commit, 0) == 0)
        git_commit_tree(&parent_tree, parent);
    git_commit_tree(&tree, commit);
    char *onto_journal = run_file_text(a, onto, run_id, "journal.jsonl");
    char *base = run_file_text(a, parent_tree, run_id, "journal.jsonl");
    char *local = run_file_text(a, tree, run_id, "journal.jsonl");
    char *report = run_file_text(a, tree, run_id, "report.md");
    int rc = 0;
    if (onto_journal && base && local && strcmp(onto_journal, base) != 0) {
        *merged = 1;
        rc = merged_run_tree(out, a, run_id, onto_journal, base, local, onto, report != NULL);
    }
    free(onto_journal);
    free(base);
    free(local);
    free(report);
    git_tree_free(tree);
    git_tree_free(parent_tree);
    git_commit_free(parent);
    return rc;
}

static int replayed_tree(git_oid *out, audit *a, git_commit *commit, git_tree *onto)
{
    const char *message = git_commit_message(commit);
    if (!strncmp(message, "config: ", 8))
        return replayed_config_tree(out, a, commit, onto);
    if (!strncmp(message, "notify: ", 8))
        return replayed_notification_tree(out, a, commit, onto);
    const char *colon = strchr(message, ':');
    if (!colon)
        return err_set(DR_EFAIL, "commit %.12s is not a drctl commit; cannot replay it",
                       git_oid_tostr_s(git_commit_id(commit)));
    char *run_id = xstrndup(message, (size_t)(colon - message));
    git_tree *tree = NULL, *folder = NULL;
    git_tree_entry *entry = NULL;
    char *folder_path = NULL;
    git_tree_update *updates = NULL;
    char **paths = NULL;
    size_t count = 0;
    int merged = 0;
    int rc = replay_merging(&merged, out, a, commit, onto, run_id);
    if (rc || merged)
        goto cleanup;
    if (git_commit_tree(&tree, commit) != 0 || !(folder_path = runpath_in_tree(a->repo, tree, run_id)) ||
        git_tree_entry_bypath(&entry, tree, folder_path) != 0 ||
        git_tree_lookup(&folder, a->repo, git_tree_entry_id(entry)) != 0) {
        rc = audit_git_fail(DR_EFAIL, "cannot read a local commit to replay it");
        goto cleanup;
    }
    count = git_tree_entrycount(folder);
    updates = xcalloc(count, sizeof *updates);
    paths = xcalloc(count, sizeof *paths);
    for (size_t i = 0; i < count; i++) {
        const git_tree_entry *file = git_tree_entry_byindex(folder, i);
        paths[i] = xasprintf("%s/%s", folder_path, git_tree_entry_name(file));
        updates[i] = (git_tree_update){ GIT_TREE_UPDATE_UPSERT, *git_tree_entry_id(file), GIT_FILEMODE_BLOB, paths[i] };
    }
    if (git_tree_create_updated(out, a->repo, onto, count, updates) != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot replay a local commit");
cleanup:
    for (size_t i = 0; i < count; i++)
        free(paths[i]);
    free(paths);
    free(updates);
    git_tree_free(folder);
    git_tree_entry_free(entry);
    git_tree_free(tree);
    free(folder_path);
    free(run_id);
    return rc;
}

/* Replays the commits in upstream..head onto upstream, in order. */
static int replay_onto(git_oid *new_tip, audit *a, git_commit *head, const git_oid *upstream)
{
    git_revwalk *walk = NULL;
    git_commit *tip = NULL;
    int rc = 0;
    if (git_revwalk_new(&walk, a->repo) != 0 || git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE) ||
        git_revwalk_push(walk, git_commit_id(head)) || git_revwalk_hide(walk, upstream) ||
        git_commit_lookup(&tip, a->repo, upstream) != 0) {
        rc = audit_git_fail(DR_EFAIL, "cannot list the local audit commits");
        goto cleanup;
    }
    git_oid oid;
    while (rc == 0 && git_revwalk_next(&oid, walk) == 0) {
        git_commit *c = NULL;
        git_tree *onto = NULL, *tree = NULL;
        git_oid tree_oid, made;
        if (git_commit_lookup(&c, a->repo, &oid) != 0 || git_commit_tree(&onto, tip) != 0) {
            rc = audit_git_fail(DR_EFAIL, "cannot read a local audit commit");
        } else if ((rc = replayed_tree(&tree_oid, a, c, onto)) == 0) {
            const git_commit *parents[1] = { tip };
            if (git_tree_lookup(&tree, a->repo, &tree_oid) != 0) {
                rc = audit_git_fail(DR_EFAIL, "cannot replay a local audit commit");
            } else if ((rc = audit_create_commit(&made, a, 0, git_commit_author(c), git_commit_committer(c),
                                                 git_commit_message(c), tree, 1, parents)) == 0) {
                /* signed again when the trail signs: a replayed commit is a new object */
                git_commit_free(tip);
                tip = NULL;
                if (git_commit_lookup(&tip, a->repo, &made) != 0)
                    rc = audit_git_fail(DR_EFAIL, "cannot read a replayed commit");
            }
        }
        git_tree_free(tree);
        git_tree_free(onto);
        git_commit_free(c);
    }
    if (rc == 0)
        git_oid_cpy(new_tip, git_commit_id(tip));
cleanup:
    git_commit_free(tip);
    git_revwalk_free(walk);
    return rc;
}

/* Brings origin's branch into ours: nothing, fast-forward or replay. */
static int integrate(audit *a)
{
    char *upstream_ref = xasprintf("refs/remotes/origin/%s", a->branch);
    git_oid upstream;
    int found = git_reference_name_to_id(&upstream, a->repo, upstream_ref);
    free(upstream_ref);
    if (found != 0)
        return 0; /* the remote has no such branch yet */
    git_commit *head = NULL;
    int rc = audit_head_commit(&head, a->repo);
    if (rc)
        return rc;
    git_oid base, new_tip;
    if (!head) {
        rc = move_branch(a, NULL, &upstream);
    } else if (git_oid_equal(git_commit_id(head), &upstream)) {
        rc = 0;
    } else if (git_merge_base(&base, a->repo, git_commit_id(head), &upstream) != 0) {
        rc = err_set(DR_EFAIL, "the audit repository and origin have unrelated histories");
    } else if (git_oid_equal(&base, &upstream)) {
        rc = 0; /* we are ahead */
    } else if (git_oid_equal(&base, git_commit_id(head))) {
        rc = move_branch(a, head, &upstream);
    } else if ((rc = replay_onto(&new_tip, a, head, &upstream)) == 0) {
        rc = move_branch(a, head, &new_tip);
    }
    git_commit_free(head);
    return rc;
}

int audit_sync(audit *a)
{
    if (!a->has_remote)
        return 0;
    int rc = audit_lock(a);
    if (rc)
        return rc;
    rc = fetch_origin(a);
    if (rc == 0)
        rc = integrate(a);
    audit_unlock(a);
    if (rc)
        term_warn("%s; going on with the local audit trail", err_last());
    return 0;
}

static int push_once(audit *a, remote_state *state)
{
    git_remote *origin = NULL;
    git_push_options opts;
    git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
    remote_callbacks(&opts.callbacks, state);
    char *spec = xasprintf("refs/heads/%s:refs/heads/%s", a->branch, a->branch);
    char *specs[] = { spec };
    git_strarray refspecs = { specs, 1 };
    int rc = 0;
    if (git_remote_lookup(&origin, a->repo, "origin") != 0 || git_remote_push(origin, &refspecs, &opts) != 0)
        rc = audit_git_fail(DR_EFAIL, "push to origin failed");
    else if (state->rejection[0])
        rc = err_set(DR_EFAIL, "origin refused the push (%s)", state->rejection);
    free(spec);
    git_remote_free(origin);
    return rc;
}

int audit_push(audit *a)
{
    if (!a->has_remote)
        return 0;
    int rc = 0;
    for (int attempt = 0; attempt < PUSH_TRIES; attempt++) {
        if ((rc = audit_lock(a)) != 0)
            break;
        remote_state state = { 0 };
        rc = push_once(a, &state);
        if (rc != 0 && fetch_origin(a) == 0) {
            /* Most often another operator pushed first: take their runs,
             * replay ours on top, and try again at once. */
            if (integrate(a) == 0) {
                remote_state again = { 0 };
                rc = push_once(a, &again);
            }
        }
        audit_unlock(a);
        if (rc == 0) {
            a->pending = 0;
            return 0;
        }
        struct timespec pause = { 0, (long)(100000000L << attempt) };
        nanosleep(&pause, NULL);
    }
    a->push_broken = 1;
    term_warn("%s. The commits are safe in %s; the next drctl command that records something (run, resume, abort, approve, config set) pushes "
              "them", err_last(), a->dir);
    return 0;
}

/* ---- the target lock on origin ---------------------------------------------------- */

/* refs/drctl/locks/<first 24 hex of SHA-256(key)>, and where a fetch of it
 * lands locally. */
static void lock_refs(char name[80], char fetched[80], const char *key)
{
    unsigned char digest[32];
    EVP_Digest(key, strlen(key), digest, NULL, EVP_sha256(), NULL);
    char hex[25];
    for (int i = 0; i < 12; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    snprintf(name, 80, "refs/drctl/locks/%s", hex);
    snprintf(fetched, 80, "refs/drctl/origin-locks/%s", hex);
}

/* Origin's lock commit into *current (NULL: no lock there). DR_EFAIL when
 * origin cannot be reached. */
static int fetch_lock(git_commit **current, audit *a, const char *name, const char *fetched)
{
    *current = NULL;
    git_reference *stale = NULL;
    if (git_reference_lookup(&stale, a->repo, fetched) == 0)
        git_reference_delete(stale);
    git_reference_free(stale);
    git_remote *origin = NULL;
    remote_state state = { 0 };
    git_fetch_options opts;
    git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
    remote_callbacks(&opts.callbacks, &state);
    opts.update_fetchhead = 0;
    char *spec = xasprintf("+%s:%s", name, fetched);
    char *specs[] = { spec };
    git_strarray refspecs = { specs, 1 };
    int rc = 0;
    if (git_remote_lookup(&origin, a->repo, "origin") != 0 || git_remote_fetch(origin, &refspecs, &opts, NULL) != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot reach origin for the target lock");
    free(spec);
    git_remote_free(origin);
    git_oid oid;
    if (rc == 0 && git_reference_name_to_id(&oid, a->repo, fetched) == 0 &&
        git_commit_lookup(current, a->repo, &oid) != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot read the target lock fetched from origin");
    return rc;
}

static int push_ref(audit *a, const char *spec_text, char rejection[256])
{
    git_remote *origin = NULL;
    remote_state state = { 0 };
    git_push_options opts;
    git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
    remote_callbacks(&opts.callbacks, &state);
    char *specs[] = { (char *)spec_text };
    git_strarray refspecs = { specs, 1 };
    int rc = 0;
    if (git_remote_lookup(&origin, a->repo, "origin") != 0 || git_remote_push(origin, &refspecs, &opts) != 0) {
        /* a ref origin refuses to move is a refusal, not an outage */
        const git_error *e = git_error_last();
        snprintf(rejection, 256, "%s", e && e->message ? e->message : "push failed");
        rc = strstr(rejection, "fast-forward") || strstr(rejection, "rejected") || strstr(rejection, "exists")
                 ? DR_ELOCKED
                 : audit_git_fail(DR_EFAIL, "cannot reach origin for the target lock");
    } else if (state.rejection[0]) {
        snprintf(rejection, 256, "%s", state.rejection);
        rc = DR_ELOCKED;
    }
    git_remote_free(origin);
    return rc;
}

static cJSON *holder_of(const git_commit *c)
{
    return c ? cJSON_Parse(git_commit_message(c)) : NULL;
}

/* A new lock commit saying holder, on top of parent (NULL: the first). */
static int lock_commit(git_oid *out, audit *a, const cJSON *holder, git_commit *parent)
{
    git_treebuilder *tb = NULL;
    git_oid tree_oid;
    git_tree *tree = NULL;
    git_signature *sig = NULL;
    int rc = 0;
    if (git_treebuilder_new(&tb, a->repo, NULL) != 0 || git_treebuilder_write(&tree_oid, tb) != 0 ||
        git_tree_lookup(&tree, a->repo, &tree_oid) != 0 ||
        git_signature_now(&sig, "drctl target lock", "drctl-lock@localhost") != 0) {
        rc = audit_git_fail(DR_EFAIL, "cannot write the target lock");
    } else {
        char *text = cJSON_PrintUnformatted(holder);
        const git_commit *parents[1] = { parent };
        rc = audit_create_commit(out, a, 0, sig, sig, text, tree, parent ? 1 : 0, parents);
        free(text);
    }
    git_signature_free(sig);
    git_tree_free(tree);
    git_treebuilder_free(tb);
    return rc;
}

/* One try: read origin's lock, then push ours over it (or refuse). */
static int try_lock(cJSON **previous, audit *a, const cJSON *holder, const char *name, const char *fetched)
{
    git_commit *current = NULL;
    int rc = fetch_lock(&current, a, name, fetched);
    if (rc)
        return rc;
    cJSON *held = holder_of(current);
    double expires = 0;
    timefmt_parse_timestamp(&expires, json_text(held, "expires_at", ""));
    int ours = held && !strcmp(json_text(held, "run_id", ""), json_text(holder, "run_id", "?"));
    if (current && !ours && expires > timefmt_now()) {
        *previous = held;
        git_commit_free(current);
        return DR_ELOCKED;
    }
    git_oid made;
    if ((rc = lock_commit(&made, a, holder, current)) == 0) {
        git_reference *ref = NULL;
        if (git_reference_create(&ref, a->repo, name, &made, 1, "drctl: target lock") != 0)
            rc = audit_git_fail(DR_EFAIL, "cannot write the target lock");
        git_reference_free(ref);
    }
    if (rc == 0) {
        char *spec = xasprintf("%s:%s", name, name);
        char rejection[256] = "";
        rc = push_ref(a, spec, rejection);
        free(spec);
    }
    git_commit_free(current);
    if (rc == 0 && held && !ours)
        *previous = held; /* an expired holder, taken over */
    else
        cJSON_Delete(held);
    return rc;
}

int audit_remote_lock(cJSON **previous, audit *a, const char *key, const cJSON *holder)
{
    *previous = NULL;
    if (!a->has_remote)
        return 0;
    char name[80], fetched[80];
    lock_refs(name, fetched, key);
    int rc = audit_lock(a);
    if (rc)
        return rc;
    /* refused once: someone moved it between our read and our push; read
     * again to name them, or take it if they have let it go */
    for (int attempt = 0; attempt < 2; attempt++) {
        cJSON_Delete(*previous);
        *previous = NULL;
        rc = try_lock(previous, a, holder, name, fetched);
        if (rc != DR_ELOCKED || *previous)
            break;
    }
    audit_unlock(a);
    if (rc == DR_ELOCKED && !*previous)
        rc = err_set(DR_ELOCKED, "another operator took the target lock on origin at the same moment; try again");
    return rc;
}

void audit_remote_unlock(audit *a, const char *key, const char *run_id)
{
    if (!a->has_remote)
        return;
    char name[80], fetched[80];
    lock_refs(name, fetched, key);
    if (audit_lock(a) != 0)
        return;
    git_commit *current = NULL;
    if (fetch_lock(&current, a, name, fetched) == 0 && current) {
        cJSON *held = holder_of(current);
        if (!strcmp(json_text(held, "run_id", ""), run_id)) {
            char *spec = xasprintf(":%s", name);
            char rejection[256] = "";
            if (push_ref(a, spec, rejection) != 0)
                term_warn("the target lock on origin could not be released (%s); it expires at %s", err_last(),
                          json_text(held, "expires_at", "?"));
            free(spec);
        }
        cJSON_Delete(held);
    }
    git_commit_free(current);
    git_reference *mine = NULL;
    if (git_reference_lookup(&mine, a->repo, name) == 0)
        git_reference_delete(mine);
    git_reference_free(mine);
    audit_unlock(a);
}
