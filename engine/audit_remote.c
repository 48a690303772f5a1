#include "audit_remote.h"

#include "audit_internal.h"
#include "buf.h"
#include "err.h"
#include "term.h"

#include <cjson/cJSON.h>

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
    char *folder_path = xasprintf("runs/%s", run_id);
    git_tree_update *updates = NULL;
    char **paths = NULL;
    size_t count = 0;
    int rc = 0;
    if (git_commit_tree(&tree, commit) != 0 || git_tree_entry_bypath(&entry, tree, folder_path) != 0 ||
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
    term_warn("%s. The commits are safe in %s; the next drctl command pushes them", err_last(), a->dir);
    return 0;
}
