#include "audit.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "redact.h"
#include "term.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define PUSH_TRIES 4

struct audit {
    git_repository *repo;
    char *dir;
    char *locks_dir;
    char *branch;           /* the branch HEAD names, e.g. "main" */
    int has_remote;
    int push_broken;        /* a push failed in this process: retry at settle only */
    int pending;            /* commits made since the last successful push */
    int lock_fd;            /* serialises commits of processes sharing this clone */
};

static const char *const run_files[] = { "run.json", "journal.jsonl", "state.json", "report.md", NULL };

static int git_fail(int code, const char *what)
{
    const git_error *e = git_error_last();
    return err_set(code, "%s: %s", what, e && e->message ? e->message : "unknown libgit2 error");
}

const char *audit_dir(const audit *a)
{
    return a->dir;
}

const char *audit_locks_dir(const audit *a)
{
    return a->locks_dir;
}

int audit_has_remote(const audit *a)
{
    return a->has_remote;
}

/* ---- opening ------------------------------------------------------------ */

static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 1;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    closedir(d);
    return empty;
}

static int init_repository(git_repository **repo, const char *dir)
{
    git_repository_init_options opts;
    git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    opts.flags = GIT_REPOSITORY_INIT_MKPATH;
    opts.initial_head = "main";
    if (git_repository_init_ext(repo, dir, &opts) != 0)
        return git_fail(DR_EUSAGE, "cannot create the audit repository");
    term_info("created the audit repository %s (git, branch main)", dir);
    return 0;
}

static char *current_branch(git_repository *repo)
{
    git_reference *head = NULL;
    char *name = NULL;
    if (git_reference_lookup(&head, repo, "HEAD") == 0 && git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
        const char *target = git_reference_symbolic_target(head);
        if (strncmp(target, "refs/heads/", 11) == 0)
            name = xstrdup(target + 11);
    }
    git_reference_free(head);
    return name ? name : xstrdup("main");
}

int audit_open(audit **out, const char *dir, int create)
{
    *out = NULL;
    git_repository *repo = NULL;
    if (git_repository_open_ext(&repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) != 0) {
        if (!create)
            return err_set(DR_EUSAGE, "there is no audit repository at %s", dir);
        if (fsio_exists(dir) && !fsio_is_dir(dir))
            return err_set(DR_EUSAGE, "the audit directory %s cannot be used: it is a file; choose another "
                           "with --audit DIR", dir);
        if (!dir_is_empty(dir))
            return err_set(DR_EUSAGE, "the audit directory %s is not a git repository and not empty; drctl "
                           "will not take it over. Choose an empty or new folder with --audit DIR, or "
                           "make it a repository (git init) if it is meant to be one", dir);
        int rc = init_repository(&repo, dir);
        if (rc)
            return rc;
    }
    if (git_repository_is_bare(repo)) {
        git_repository_free(repo);
        return err_set(DR_EUSAGE, "the audit repository %s is bare; drctl needs a working tree (clone it)", dir);
    }
    audit *a = xcalloc(1, sizeof *a);
    a->repo = repo;
    a->dir = xstrdup(dir);
    a->lock_fd = -1;
    a->locks_dir = xasprintf("%s/drctl/locks", git_repository_path(repo));
    int rc = fsio_mkdirs(a->locks_dir, 0755);
    if (rc) {
        audit_free(a);
        return err_set(DR_EUSAGE, "the audit repository %s cannot be used: %s", dir, err_last());
    }
    a->branch = current_branch(repo);
    git_remote *origin = NULL;
    a->has_remote = git_remote_lookup(&origin, repo, "origin") == 0;
    git_remote_free(origin);
    *out = a;
    return 0;
}

void audit_free(audit *a)
{
    if (!a)
        return;
    if (a->lock_fd >= 0)
        close(a->lock_fd);
    git_repository_free(a->repo);
    free(a->dir);
    free(a->locks_dir);
    free(a->branch);
    free(a);
}

/* ---- the repository lock -------------------------------------------------- */

static int repo_lock(audit *a)
{
    if (a->lock_fd < 0) {
        char *path = xasprintf("%s/drctl/commit.lock", git_repository_path(a->repo));
        a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        free(path);
        if (a->lock_fd < 0)
            return err_set(DR_EFAIL, "cannot open the audit repository's lock: %s", strerror(errno));
    }
    while (flock(a->lock_fd, LOCK_EX) != 0)
        if (errno != EINTR)
            return err_set(DR_EFAIL, "cannot lock the audit repository: %s", strerror(errno));
    return 0;
}

static void repo_unlock(audit *a)
{
    flock(a->lock_fd, LOCK_UN);
}

/* ---- commits ------------------------------------------------------------------ */

/* "Name <email>" -> a signature; without an email, login@host stands in. */
static int operator_signature(git_signature **out, const char *operator)
{
    const char *lt = strchr(operator, '<');
    const char *gt = lt ? strchr(lt, '>') : NULL;
    char *name, *email;
    if (lt && gt) {
        name = xstrndup(operator, (size_t)(lt - operator));
        email = xstrndup(lt + 1, (size_t)(gt - lt - 1));
    } else {
        name = xstrdup(operator);
        char host[128] = "localhost";
        gethostname(host, sizeof host - 1);
        email = xasprintf("%s@%s", operator, host);
        for (char *p = email; *p; p++)
            if (*p == ' ' || *p == '<' || *p == '>')
                *p = '.';
    }
    size_t n = strlen(name);
    while (n > 0 && name[n - 1] == ' ')
        name[--n] = '\0';
    int rc = git_signature_now(out, n ? name : "unknown", *email ? email : "unknown@localhost");
    free(name);
    free(email);
    return rc ? git_fail(DR_EFAIL, "cannot make a git signature") : 0;
}

static int empty_tree(git_repository *repo, git_tree **out)
{
    git_treebuilder *builder = NULL;
    git_oid oid;
    int rc = git_treebuilder_new(&builder, repo, NULL);
    if (rc == 0)
        rc = git_treebuilder_write(&oid, builder);
    git_treebuilder_free(builder);
    if (rc == 0)
        rc = git_tree_lookup(out, repo, &oid);
    return rc;
}

/* HEAD's commit, or NULL when the branch is unborn. */
static int head_commit(git_repository *repo, git_commit **out)
{
    *out = NULL;
    git_oid oid;
    int rc = git_reference_name_to_id(&oid, repo, "HEAD");
    if (rc == GIT_ENOTFOUND || rc == GIT_EUNBORNBRANCH)
        return 0;
    if (rc)
        return git_fail(DR_EFAIL, "cannot read HEAD of the audit repository");
    if (git_commit_lookup(out, repo, &oid) != 0)
        return git_fail(DR_EFAIL, "cannot read HEAD of the audit repository");
    return 0;
}

int audit_commit_run(audit *a, const char *run_id, const char *message, const char *operator)
{
    int rc = repo_lock(a);
    if (rc)
        return rc;
    git_commit *parent = NULL;
    git_tree *baseline = NULL, *tree = NULL;
    git_signature *sig = NULL;
    git_tree_update updates[4];
    char *paths[4] = { 0 };
    size_t count = 0;
    if ((rc = head_commit(a->repo, &parent)) != 0)
        goto cleanup;
    if (parent ? git_commit_tree(&baseline, parent) : empty_tree(a->repo, &baseline)) {
        rc = git_fail(DR_EFAIL, "cannot read the audit repository's tree");
        goto cleanup;
    }
    for (const char *const *name = run_files; *name; name++) {
        char *file = xasprintf("%s/runs/%s/%s", a->dir, run_id, *name);
        if (fsio_exists(file)) {
            git_oid blob;
            if (git_blob_create_from_disk(&blob, a->repo, file) != 0) {
                free(file);
                rc = git_fail(DR_EFAIL, "cannot store a file in the audit repository");
                goto cleanup;
            }
            paths[count] = xasprintf("runs/%s/%s", run_id, *name);
            updates[count] = (git_tree_update){ GIT_TREE_UPDATE_UPSERT, blob, GIT_FILEMODE_BLOB, paths[count] };
            count++;
        }
        free(file);
    }
    git_oid tree_oid, commit_oid;
    if (git_tree_create_updated(&tree_oid, a->repo, baseline, count, updates) != 0 ||
        git_tree_lookup(&tree, a->repo, &tree_oid) != 0) {
        rc = git_fail(DR_EFAIL, "cannot build the audit commit");
        goto cleanup;
    }
    if (git_oid_equal(&tree_oid, git_tree_id(baseline)))
        goto cleanup; /* nothing changed */
    if ((rc = operator_signature(&sig, operator)) != 0)
        goto cleanup;
    char *clean = redact_text(message);
    const git_commit *parents[1] = { parent };
    int made = git_commit_create(&commit_oid, a->repo, "HEAD", sig, sig, NULL, clean, tree, parent ? 1 : 0, parents);
    free(clean);
    if (made != 0) {
        rc = git_fail(DR_EFAIL, "cannot commit to the audit repository");
        goto cleanup;
    }
    a->pending++;
cleanup:
    for (size_t i = 0; i < count; i++)
        free(paths[i]);
    git_signature_free(sig);
    git_tree_free(tree);
    git_tree_free(baseline);
    git_commit_free(parent);
    repo_unlock(a);
    if (rc == 0 && a->pending && a->has_remote && !a->push_broken)
        audit_push(a);
    return rc;
}

int audit_settle(audit *a, const char *run_id)
{
    int rc = repo_lock(a);
    if (rc)
        return rc;
    git_index *index = NULL;
    if (git_repository_index(&index, a->repo) != 0 || git_index_read(index, 0) != 0) {
        rc = git_fail(DR_EFAIL, "cannot read the audit repository's index");
        goto cleanup;
    }
    for (const char *const *name = run_files; run_id && *name; name++) {
        char *file = xasprintf("%s/runs/%s/%s", a->dir, run_id, *name);
        char *path = xasprintf("runs/%s/%s", run_id, *name);
        if (fsio_exists(file) && git_index_add_bypath(index, path) != 0)
            rc = git_fail(DR_EFAIL, "cannot update the audit repository's index");
        free(file);
        free(path);
    }
    if (rc == 0 && git_index_write(index) != 0)
        rc = git_fail(DR_EFAIL, "cannot write the audit repository's index");
cleanup:
    git_index_free(index);
    repo_unlock(a);
    if (a->has_remote && a->pending) {
        a->push_broken = 0;
        audit_push(a);
    }
    return rc;
}

/* ---- refusing edits made outside drctl ---------------------------------------- */

static char *head_blob_text(git_repository *repo, git_tree *tree, const char *path)
{
    git_tree_entry *entry = NULL;
    git_blob *blob = NULL;
    char *text = NULL;
    if (tree && git_tree_entry_bypath(&entry, tree, path) == 0 &&
        git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) == 0)
        text = xstrndup(git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
    git_blob_free(blob);
    git_tree_entry_free(entry);
    return text;
}

/* The committed and current text of one file of a run (NULL when absent). */
static void both_versions(audit *a, git_tree *head, const char *run_id, const char *name, char **committed,
                          char **current)
{
    char *path = xasprintf("runs/%s/%s", run_id, name);
    char *file = xasprintf("%s/%s", a->dir, path);
    *committed = head_blob_text(a->repo, head, path);
    *current = NULL;
    if (fsio_exists(file))
        fsio_read_file(current, NULL, file);
    free(file);
    free(path);
}

static int same_text(const char *x, const char *y)
{
    return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

/* A run folder differs from HEAD in the index or the working tree. Is it
 * what drctl leaves when killed? drctl only appends to the journal, writes
 * state.json and report.md after an append, and never rewrites run.json.
 * So either every file still equals the last commit (only the index is
 * stale), or the journal grew past the committed one with run.json
 * unchanged. Anything else was edited by hand. */
static int check_dirty_run(audit *a, git_tree *head, const char *run_id, const char *changed_path)
{
    char *committed[4], *current[4];
    int all_equal = 1;
    for (int i = 0; run_files[i]; i++) {
        both_versions(a, head, run_id, run_files[i], &committed[i], &current[i]);
        all_equal &= same_text(committed[i], current[i]);
    }
    const char *old_journal = committed[1], *new_journal = current[1];
    int grew = new_journal && (!old_journal || (strlen(new_journal) > strlen(old_journal) &&
                                                strncmp(new_journal, old_journal, strlen(old_journal)) == 0));
    int ok = all_equal || (grew && (!committed[0] || same_text(committed[0], current[0])));
    for (int i = 0; run_files[i]; i++) {
        free(committed[i]);
        free(current[i]);
    }
    if (ok)
        return 0;
    return err_set(DR_EUSAGE, "%s/%s was changed outside drctl (it differs from the last commit and the "
                   "journal did not just grow); nothing was done. See git -C %s status, then restore it "
                   "(git -C %s checkout HEAD -- runs/%s) or commit the change knowingly",
                   a->dir, changed_path, a->dir, a->dir, run_id);
}

int audit_check_clean(audit *a)
{
    git_commit *head = NULL;
    git_tree *tree = NULL;
    git_diff *diff = NULL;
    int rc = head_commit(a->repo, &head);
    if (rc || (head && git_commit_tree(&tree, head) != 0)) {
        rc = rc ? rc : git_fail(DR_EFAIL, "cannot read the audit repository");
        goto cleanup;
    }
    git_diff_options opts;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    char *pathspec[] = { "runs/" };
    opts.pathspec.strings = pathspec;
    opts.pathspec.count = 1;
    opts.flags = GIT_DIFF_INCLUDE_UNTRACKED | GIT_DIFF_RECURSE_UNTRACKED_DIRS;
    if (git_diff_tree_to_workdir_with_index(&diff, a->repo, tree, &opts) != 0) {
        rc = git_fail(DR_EFAIL, "cannot compare the audit repository with its last commit");
        goto cleanup;
    }
    char last_run[256] = "";
    for (size_t i = 0; rc == 0 && i < git_diff_num_deltas(diff); i++) {
        const git_diff_delta *d = git_diff_get_delta(diff, i);
        const char *path = d->new_file.path ? d->new_file.path : d->old_file.path;
        const char *id = path + 5; /* after "runs/" */
        const char *slash = strchr(id, '/');
        if (!slash || (size_t)(slash - id) >= sizeof last_run) {
            rc = err_set(DR_EUSAGE, "%s/%s is not part of any run; drctl keeps only run folders in runs/. "
                         "Remove it or commit it knowingly", a->dir, path);
            break;
        }
        if (strncmp(last_run, id, (size_t)(slash - id)) == 0 && last_run[slash - id] == '\0')
            continue;
        snprintf(last_run, sizeof last_run, "%.*s", (int)(slash - id), id);
        char *file = xasprintf("%s/%s", a->dir, path);
        int gone = d->status == GIT_DELTA_DELETED && !fsio_exists(file);
        free(file);
        if (gone) /* and not merely missing from a stale index */
            rc = err_set(DR_EUSAGE, "%s/%s was deleted outside drctl; nothing was done. Restore it with "
                         "git -C %s checkout HEAD -- %s", a->dir, path, a->dir, path);
        else
            rc = check_dirty_run(a, tree, last_run, path);
    }
cleanup:
    git_diff_free(diff);
    git_tree_free(tree);
    git_commit_free(head);
    return rc;
}

/* ---- remote --------------------------------------------------------------------- */

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
        rc = git_fail(DR_EFAIL, "cannot fetch the audit trail from origin");
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
        rc = git_fail(DR_EFAIL, "cannot read the fetched audit trail");
        goto cleanup;
    }
    git_checkout_options opts;
    git_checkout_options_init(&opts, GIT_CHECKOUT_OPTIONS_VERSION);
    opts.checkout_strategy = GIT_CHECKOUT_SAFE;
    opts.baseline = baseline;
    if (git_checkout_tree(a->repo, (git_object *)target_tree, &opts) != 0) {
        rc = git_fail(DR_EFAIL, "cannot bring the fetched runs into the audit folder");
        goto cleanup;
    }
    char *refname = xasprintf("refs/heads/%s", a->branch);
    if (git_reference_create(&ref, a->repo, refname, to, 1, "drctl: integrate origin") != 0)
        rc = git_fail(DR_EFAIL, "cannot move the audit branch");
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
static int replayed_tree(audit *a, git_commit *commit, git_tree *onto, git_oid *out)
{
    const char *message = git_commit_message(commit);
    const char *colon = strchr(message, ':');
    if (!colon)
        return err_set(DR_EFAIL, "commit %.12s is not a drctl commit; cannot replay it",
                       git_oid_tostr_s(git_commit_id(commit)));
    char *run_id = xstrndup(message, (size_t)(colon - message));
    git_tree *tree = NULL, *folder = NULL;
    git_tree_entry *entry = NULL;
    char *folder_path = xasprintf("runs/%s", run_id);
    int rc = 0;
    if (git_commit_tree(&tree, commit) != 0 || git_tree_entry_bypath(&entry, tree, folder_path) != 0 ||
        git_tree_lookup(&folder, a->repo, git_tree_entry_id(entry)) != 0) {
        rc = git_fail(DR_EFAIL, "cannot read a local commit to replay it");
        goto cleanup;
    }
    size_t count = git_tree_entrycount(folder);
    git_tree_update *updates = xcalloc(count, sizeof *updates);
    char **paths = xcalloc(count, sizeof *paths);
    for (size_t i = 0; i < count; i++) {
        const git_tree_entry *file = git_tree_entry_byindex(folder, i);
        paths[i] = xasprintf("%s/%s", folder_path, git_tree_entry_name(file));
        updates[i] = (git_tree_update){ GIT_TREE_UPDATE_UPSERT, *git_tree_entry_id(file), GIT_FILEMODE_BLOB, paths[i] };
    }
    if (git_tree_create_updated(out, a->repo, onto, count, updates) != 0)
        rc = git_fail(DR_EFAIL, "cannot replay a local commit");
    for (size_t i = 0; i < count; i++)
        free(paths[i]);
    free(paths);
    free(updates);
cleanup:
    git_tree_free(folder);
    git_tree_entry_free(entry);
    git_tree_free(tree);
    free(folder_path);
    free(run_id);
    return rc;
}

/* Replays the commits in upstream..head onto upstream, in order. */
static int replay_onto(audit *a, git_commit *head, const git_oid *upstream, git_oid *new_tip)
{
    git_revwalk *walk = NULL;
    git_commit *tip = NULL;
    int rc = 0;
    if (git_revwalk_new(&walk, a->repo) != 0 || git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE) ||
        git_revwalk_push(walk, git_commit_id(head)) || git_revwalk_hide(walk, upstream) ||
        git_commit_lookup(&tip, a->repo, upstream) != 0) {
        rc = git_fail(DR_EFAIL, "cannot list the local audit commits");
        goto cleanup;
    }
    git_oid oid;
    while (rc == 0 && git_revwalk_next(&oid, walk) == 0) {
        git_commit *c = NULL;
        git_tree *onto = NULL, *tree = NULL;
        git_oid tree_oid, made;
        if (git_commit_lookup(&c, a->repo, &oid) != 0 || git_commit_tree(&onto, tip) != 0) {
            rc = git_fail(DR_EFAIL, "cannot read a local audit commit");
        } else if ((rc = replayed_tree(a, c, onto, &tree_oid)) == 0) {
            const git_commit *parents[1] = { tip };
            if (git_tree_lookup(&tree, a->repo, &tree_oid) != 0 ||
                git_commit_create(&made, a->repo, NULL, git_commit_author(c), git_commit_committer(c), NULL,
                                  git_commit_message(c), tree, 1, parents) != 0) {
                rc = git_fail(DR_EFAIL, "cannot replay a local audit commit");
            } else {
                git_commit_free(tip);
                tip = NULL;
                if (git_commit_lookup(&tip, a->repo, &made) != 0)
                    rc = git_fail(DR_EFAIL, "cannot read a replayed commit");
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
    int rc = head_commit(a->repo, &head);
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
    } else if ((rc = replay_onto(a, head, &upstream, &new_tip)) == 0) {
        rc = move_branch(a, head, &new_tip);
    }
    git_commit_free(head);
    return rc;
}

int audit_sync(audit *a)
{
    if (!a->has_remote)
        return 0;
    int rc = repo_lock(a);
    if (rc)
        return rc;
    rc = fetch_origin(a);
    if (rc == 0)
        rc = integrate(a);
    repo_unlock(a);
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
        rc = git_fail(DR_EFAIL, "push to origin failed");
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
        if ((rc = repo_lock(a)) != 0)
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
        repo_unlock(a);
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
