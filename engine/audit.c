#include "audit.h"

#include "audit_internal.h"
#include "audit_remote.h"
#include "buf.h"
#include "debris.h"
#include "err.h"
#include "fsio.h"
#include "redact.h"
#include "runpath.h"
#include "signing.h"
#include "term.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define run_files runpath_files

/* A file as it was when it was last stored: a file whose inode, size and
 * modification time are the same is not read and hashed again (run.json
 * is written once per run; state.json is replaced by a rename, so its
 * inode changes each time; the journal grows). */
struct stored_file {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    git_oid blob;
};


int audit_git_fail(int code, const char *what)
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
        return audit_git_fail(DR_EUSAGE, "cannot create the audit repository");
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

/* The repository at dir, made when create allows it and dir has nothing
 * of anyone else's. */
static int open_or_create_repository(git_repository **out, const char *dir, int create)
{
    if (git_repository_open_ext(out, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0)
        return 0;
    *out = NULL;
    if (!create)
        return err_set(DR_EUSAGE, "there is no audit repository at %s", dir);
    if (fsio_exists(dir) && !fsio_is_dir(dir))
        return err_set(DR_EUSAGE, "the audit directory %s cannot be used: it is a file; choose another "
                       "with --audit DIR", dir);
    if (!dir_is_empty(dir))
        return err_set(DR_EUSAGE, "the audit directory %s is not a git repository and not empty; drctl "
                       "will not take it over. Choose an empty or new folder with --audit DIR, or "
                       "make it a repository (git init) if it is meant to be one", dir);
    return init_repository(out, dir);
}

int audit_open(audit **out, const char *dir, int create)
{
    *out = NULL;
    audit *a = xcalloc(1, sizeof *a);
    a->lock_fd = -1;
    a->dir = xstrdup(dir);
    git_remote *origin = NULL;
    /* the key first: a trail that asked for signatures gets no commit
     * without one, not even the one that creates it */
    int rc = signer_from_env(&a->signer);
    if (rc == 0)
        rc = open_or_create_repository(&a->repo, dir, create);
    if (rc)
        goto cleanup;
    if (git_repository_is_bare(a->repo)) {
        rc = err_set(DR_EUSAGE, "the audit repository %s is bare; drctl needs a working tree (clone it)", dir);
        goto cleanup;
    }
    a->locks_dir = xasprintf("%s/drctl/locks", git_repository_path(a->repo));
    if (fsio_mkdirs(a->locks_dir, 0755) != 0) {
        rc = err_set(DR_EUSAGE, "the audit repository %s cannot be used: %s", dir, err_last());
        goto cleanup;
    }
    a->branch = current_branch(a->repo);
    a->has_remote = git_remote_lookup(&origin, a->repo, "origin") == 0;
    *out = a;
    a = NULL;
cleanup:
    git_remote_free(origin);
    audit_free(a);
    return rc;
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
    signer_free(a->signer);
    free(a->folder_run);
    free(a->folder);
    for (size_t i = 0; i < a->stored_count; i++)
        free(a->stored[i].path);
    free(a->stored);
    free(a);
}

const char *audit_signing_key(const audit *a)
{
    return a->signer ? signer_fingerprint(a->signer) : NULL;
}

int audit_create_commit(git_oid *out, audit *a, int update_head, const git_signature *author,
                        const git_signature *committer, const char *message, const git_tree *tree,
                        size_t parent_count, const git_commit **parents)
{
    if (!a->signer)
        return git_commit_create(out, a->repo, update_head ? "HEAD" : NULL, author, committer, NULL, message, tree,
                                 parent_count, parents) == 0
                   ? 0
                   : audit_git_fail(DR_EFAIL, "cannot commit to the audit repository");
    git_buf text = GIT_BUF_INIT;
    char *signature = NULL;
    int rc = 0;
    if (git_commit_create_buffer(&text, a->repo, author, committer, NULL, message, tree, parent_count, parents) != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot build the audit commit");
    else if ((rc = signer_sign(&signature, a->signer, text.ptr, text.size)) != 0)
        rc = err_set(DR_EFAIL, "cannot sign the audit commit (nothing was committed): %s", err_last());
    else if (git_commit_create_with_signature(out, a->repo, text.ptr, signature, "gpgsig") != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot commit to the audit repository");
    if (rc == 0 && update_head) {
        char *branch = xasprintf("refs/heads/%s", a->branch ? a->branch : "main");
        git_reference *ref = NULL;
        if (git_reference_create(&ref, a->repo, branch, out, 1, message) != 0)
            rc = audit_git_fail(DR_EFAIL, "cannot move the audit branch to its new commit");
        git_reference_free(ref);
        free(branch);
    }
    free(signature);
    git_buf_dispose(&text);
    return rc;
}

/* ---- the repository lock -------------------------------------------------- */

/* A drctl killed inside a commit leaves git's own lock files behind, and
 * every later commit would fail on them. Whoever holds commit.lock is the
 * only drctl writing, so such a file was left by a dead one (or belongs to
 * a git command run by hand in the trail at this very instant, which then
 * fails and can be run again). */
static void remove_stale_git_locks(audit *a)
{
    static const char *const names[] = { "refs/heads/main.lock", "index.lock", "HEAD.lock", NULL };
    for (const char *const *n = names; *n; n++) {
        char *path = xasprintf("%s%s", git_repository_path(a->repo), *n);
        if (unlink(path) == 0)
            term_warn("removed %s, left by a drctl that was killed while it committed", path);
        free(path);
    }
}

int audit_lock(audit *a)
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
    remove_stale_git_locks(a);
    return 0;
}

void audit_unlock(audit *a)
{
    flock(a->lock_fd, LOCK_UN);
}

/* ---- commits ------------------------------------------------------------------ */

static char *head_blob_text(git_repository *repo, git_tree *tree, const char *path);
static int same_text(const char *x, const char *y);

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
    return rc ? audit_git_fail(DR_EFAIL, "cannot make a git signature") : 0;
}

static int empty_tree(git_tree **out, git_repository *repo)
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

int audit_head_commit(git_commit **out, git_repository *repo)
{
    *out = NULL;
    git_oid oid;
    int rc = git_reference_name_to_id(&oid, repo, "HEAD");
    if (rc == GIT_ENOTFOUND || rc == GIT_EUNBORNBRANCH)
        return 0;
    if (rc)
        return audit_git_fail(DR_EFAIL, "cannot read HEAD of the audit repository");
    if (git_commit_lookup(out, repo, &oid) != 0)
        return audit_git_fail(DR_EFAIL, "cannot read HEAD of the audit repository");
    return 0;
}

static struct stored_file *stored_entry(audit *a, const char *path)
{
    for (size_t i = 0; i < a->stored_count; i++)
        if (strcmp(a->stored[i].path, path) == 0)
            return &a->stored[i];
    if (a->stored_count == 8) { /* the files of the runs of one command: few */
        free(a->stored[0].path);
        memmove(a->stored, a->stored + 1, --a->stored_count * sizeof *a->stored);
    }
    a->stored = xrealloc(a->stored, (a->stored_count + 1) * sizeof *a->stored);
    struct stored_file *e = &a->stored[a->stored_count++];
    *e = (struct stored_file){ .path = xstrdup(path) };
    return e;
}

/* The blob of the file at relpath: *present 0 when there is no such file.
 * Read as bytes, never through git's filters (a trail is stored exactly). */
static int store_file(git_oid *blob, int *present, audit *a, const char *relpath)
{
    char *file = xasprintf("%s/%s", a->dir, relpath);
    struct stat st;
    int rc = 0;
    *present = lstat(file, &st) == 0 && S_ISREG(st.st_mode);
    struct stored_file *e = *present ? stored_entry(a, relpath) : NULL;
    if (e && e->dev == st.st_dev && e->ino == st.st_ino && e->size == st.st_size &&
        e->mtime.tv_sec == st.st_mtim.tv_sec && e->mtime.tv_nsec == st.st_mtim.tv_nsec && !git_oid_is_zero(&e->blob)) {
        git_oid_cpy(blob, &e->blob);
    } else if (e) {
        char *text = NULL;
        size_t len = 0;
        if (fsio_read_file(&text, &len, file) != 0 || git_blob_create_from_buffer(blob, a->repo, text, len) != 0) {
            rc = audit_git_fail(DR_EFAIL, "cannot store a file in the audit repository");
            memset(&e->blob, 0, sizeof e->blob);
        } else {
            *e = (struct stored_file){ e->path, st.st_dev, st.st_ino, st.st_size, st.st_mtim, *blob };
        }
        free(text);
    } else if (fsio_exists(file)) {
        rc = audit_git_fail(DR_EFAIL, "cannot store a file in the audit repository"); /* not a plain file */
    }
    free(file);
    return rc;
}

/* The folder of run_id relative to the root, looked up once per run. */
static const char *run_folder(audit *a, const char *run_id)
{
    if (!a->folder_run || strcmp(a->folder_run, run_id) != 0) {
        free(a->folder_run);
        free(a->folder);
        a->folder_run = xstrdup(run_id);
        a->folder = runpath_of(a->dir, run_id);
    }
    return a->folder;
}

/* One commit of the given files (paths relative to the repository's root)
 * as they are on disk, on top of HEAD; a file that is absent is left as
 * HEAD has it. Nothing is committed when nothing changed. */
static int commit_files(audit *a, char *const *paths, size_t path_count, const char *message, const char *operator)
{
    int rc = audit_lock(a);
    if (rc)
        return rc;
    git_commit *parent = NULL;
    git_tree *baseline = NULL, *tree = NULL;
    git_signature *sig = NULL;
    git_tree_update *updates = xcalloc(path_count ? path_count : 1, sizeof *updates);
    size_t count = 0;
    if ((rc = audit_head_commit(&parent, a->repo)) != 0)
        goto cleanup;
    if (parent ? git_commit_tree(&baseline, parent) : empty_tree(&baseline, a->repo)) {
        rc = audit_git_fail(DR_EFAIL, "cannot read the audit repository's tree");
        goto cleanup;
    }
    for (size_t i = 0; i < path_count; i++) {
        git_oid blob;
        int present;
        if ((rc = store_file(&blob, &present, a, paths[i])) != 0)
            goto cleanup;
        if (present)
            updates[count++] = (git_tree_update){ GIT_TREE_UPDATE_UPSERT, blob, GIT_FILEMODE_BLOB, paths[i] };
    }
    git_oid tree_oid, commit_oid;
    if (git_tree_create_updated(&tree_oid, a->repo, baseline, count, updates) != 0 ||
        git_tree_lookup(&tree, a->repo, &tree_oid) != 0) {
        rc = audit_git_fail(DR_EFAIL, "cannot build the audit commit");
        goto cleanup;
    }
    if (git_oid_equal(&tree_oid, git_tree_id(baseline)))
        goto cleanup; /* nothing changed */
    if ((rc = operator_signature(&sig, operator)) != 0)
        goto cleanup;
    char *clean = redact_text(message);
    const git_commit *parents[1] = { parent };
    rc = audit_create_commit(&commit_oid, a, 1, sig, sig, clean, tree, parent ? 1 : 0, parents);
    free(clean);
    if (rc)
        goto cleanup;
    a->pending++;
cleanup:
    free(updates);
    git_signature_free(sig);
    git_tree_free(tree);
    git_tree_free(baseline);
    git_commit_free(parent);
    audit_unlock(a);
    if (rc == 0 && a->pending && a->has_remote && !a->push_broken)
        audit_push(a);
    return rc;
}

int audit_commit_run(audit *a, const char *run_id, const char *message, const char *operator)
{
    char *paths[4] = { NULL };
    size_t count = 0;
    const char *folder = run_folder(a, run_id);
    for (const char *const *name = run_files; *name && count < 4; name++)
        paths[count++] = xasprintf("%s/%s", folder, *name);
    int rc = commit_files(a, paths, count, message, operator);
    for (size_t i = 0; i < count; i++)
        free(paths[i]);
    return rc;
}

/* Commits one file at path, then gives the index the committed file, so
 * git status stays clean. */
static int commit_one_file(audit *a, const char *path, const char *message, const char *operator)
{
    char *paths[1] = { (char *)path };
    git_index *index = NULL;
    /* An index that cannot be read fails the change before its commit:
     * the caller puts its file back, and nothing is committed. */
    if (git_repository_index(&index, a->repo) != 0 || git_index_read(index, 0) != 0) {
        git_index_free(index);
        return audit_git_fail(DR_EFAIL, "cannot read the audit repository's index (nothing was committed)");
    }
    int rc = commit_files(a, paths, 1, message, operator);
    if (rc == 0)
        rc = audit_lock(a);
    if (rc) {
        git_index_free(index);
        return rc;
    }
    if (git_index_read(index, 0) != 0 || git_index_add_bypath(index, path) != 0 || git_index_write(index) != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot update the audit repository's index");
    git_index_free(index);
    audit_unlock(a);
    return rc;
}

int audit_commit_config(audit *a, const char *message, const char *operator)
{
    return commit_one_file(a, AUDIT_CONFIG_FILE, message, operator);
}

int audit_commit_notification(audit *a, const char *relpath, const char *message, const char *operator)
{
    size_t dir_len = strlen(AUDIT_NOTIFICATIONS_DIR);
    if (strncmp(relpath, AUDIT_NOTIFICATIONS_DIR "/", dir_len + 1) != 0 || strchr(relpath + dir_len + 1, '/'))
        return err_set(DR_EFAIL, "%s is not a file of %s/", relpath, AUDIT_NOTIFICATIONS_DIR);
    return commit_one_file(a, relpath, message, operator);
}

/* HEAD and its tree (both NULL before the first commit). */
static int head_tree(git_commit **head, git_tree **tree, audit *a)
{
    int rc = audit_head_commit(head, a->repo);
    if (rc == 0 && *head && git_commit_tree(tree, *head) != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot read the audit repository");
    return rc;
}

int audit_check_config_clean(audit *a)
{
    git_commit *head = NULL;
    git_tree *tree = NULL;
    int rc = head_tree(&head, &tree, a);
    if (rc)
        goto cleanup;
    char *committed = head_blob_text(a->repo, tree, AUDIT_CONFIG_FILE);
    char *file = xasprintf("%s/%s", a->dir, AUDIT_CONFIG_FILE);
    char *current = NULL;
    if (fsio_exists(file))
        fsio_read_file(&current, NULL, file);
    if (!same_text(committed, current))
        rc = err_set(DR_EUSAGE, "%s was changed outside drctl (it differs from the last commit); see git -C %s "
                     "diff, then restore it (git -C %s checkout HEAD -- %s) and change settings with drctl "
                     "config set, which validates and records them", file, a->dir, a->dir, AUDIT_CONFIG_FILE);
    free(committed);
    free(current);
    free(file);
cleanup:
    git_tree_free(tree);
    git_commit_free(head);
    return rc;
}

int audit_settle(audit *a, const char *run_id)
{
    int rc = audit_lock(a);
    if (rc)
        return rc;
    git_index *index = NULL;
    if (git_repository_index(&index, a->repo) != 0 || git_index_read(index, 0) != 0) {
        rc = audit_git_fail(DR_EFAIL, "cannot read the audit repository's index");
        goto cleanup;
    }
    const char *folder = run_id ? run_folder(a, run_id) : NULL;
    for (const char *const *name = run_files; run_id && *name; name++) {
        char *path = xasprintf("%s/%s", folder, *name);
        char *file = xasprintf("%s/%s", a->dir, path);
        if (fsio_exists(file) && git_index_add_bypath(index, path) != 0)
            rc = audit_git_fail(DR_EFAIL, "cannot update the audit repository's index");
        free(file);
        free(path);
    }
    if (rc == 0 && git_index_write(index) != 0)
        rc = audit_git_fail(DR_EFAIL, "cannot write the audit repository's index");
cleanup:
    git_index_free(index);
    audit_unlock(a);
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
static void both_versions(char **committed, char **current, audit *a, git_tree *head, const char *run_id,
                          const char *name)
{
    char *path = xasprintf("%s/%s", run_folder(a, run_id), name);
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

/* A run folder differs from HEAD in the index or the working tree: is it
 * what drctl leaves when killed (debris.h)? */
static int check_dirty_run(audit *a, git_tree *head, const char *run_id)
{
    char *committed[4], *current[4];
    run_versions v;
    for (int i = 0; run_files[i]; i++) {
        both_versions(&committed[i], &current[i], a, head, run_id, run_files[i]);
        v.committed[i] = committed[i];
        v.current[i] = current[i];
    }
    int rc = debris_check(a->dir, run_id, &v);
    for (int i = 0; run_files[i]; i++) {
        free(committed[i]);
        free(current[i]);
    }
    return rc;
}

int audit_run_uncommitted(audit *a, const char *run_id)
{
    git_commit *head = NULL;
    git_tree *tree = NULL;
    int rc = head_tree(&head, &tree, a);
    if (rc)
        goto cleanup;
    for (int i = 0; run_files[i] && rc == 0; i++) {
        char *committed, *current;
        both_versions(&committed, &current, a, tree, run_id, run_files[i]);
        rc = !same_text(committed, current);
        free(committed);
        free(current);
    }
cleanup:
    git_tree_free(tree);
    git_commit_free(head);
    return rc;
}

int audit_check_clean(audit *a)
{
    return audit_check_clean_listing(a, NULL);
}

int audit_check_clean_listing(audit *a, str_list *dirty)
{
    git_commit *head = NULL;
    git_tree *tree = NULL;
    git_diff *diff = NULL;
    int rc = head_tree(&head, &tree, a);
    if (rc)
        goto cleanup;
    git_diff_options opts;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    char *pathspec[] = { "runs/" };
    opts.pathspec.strings = pathspec;
    opts.pathspec.count = 1;
    /* ignored files too: a .gitignore must not hide a file in a run's folder */
    opts.flags = GIT_DIFF_INCLUDE_UNTRACKED | GIT_DIFF_RECURSE_UNTRACKED_DIRS | GIT_DIFF_INCLUDE_IGNORED |
                 GIT_DIFF_RECURSE_IGNORED_DIRS;
    if (git_diff_tree_to_workdir_with_index(&diff, a->repo, tree, &opts) != 0) {
        rc = audit_git_fail(DR_EFAIL, "cannot compare the audit repository with its last commit");
        goto cleanup;
    }
    char last_run[256] = "";
    for (size_t i = 0; rc == 0 && i < git_diff_num_deltas(diff); i++) {
        const git_diff_delta *d = git_diff_get_delta(diff, i);
        const char *path = d->new_file.path ? d->new_file.path : d->old_file.path;
        const char *id, *name;
        size_t id_len;
        if (runpath_split(path, &id, &id_len, &name) != 0 || !*name || id_len >= sizeof last_run) {
            rc = err_set(DR_EUSAGE, "%s/%s is not part of any run; drctl keeps only run folders in runs/. "
                         "Remove it or commit it knowingly", a->dir, path);
            break;
        }
        if (!runpath_is_run_file(name)) {
            rc = err_set(DR_EUSAGE, "%s/%s is not a file drctl writes in a run's folder (%s, %s, %s, %s); "
                         "nothing was done. Remove it or commit it knowingly", a->dir, path, run_files[0],
                         run_files[1], run_files[2], run_files[3]);
            break;
        }
        if (strncmp(last_run, id, id_len) == 0 && last_run[id_len] == '\0')
            continue;
        snprintf(last_run, sizeof last_run, "%.*s", (int)id_len, id);
        if (dirty)
            str_list_push(dirty, last_run);
        char *file = xasprintf("%s/%s", a->dir, path);
        int gone = d->status == GIT_DELTA_DELETED && !fsio_exists(file);
        free(file);
        if (gone) /* and not merely missing from a stale index */
            rc = err_set(DR_EUSAGE, "%s/%s was deleted outside drctl; nothing was done. Restore it with "
                         "git -C %s checkout HEAD -- %s", a->dir, path, a->dir, path);
        else
            rc = check_dirty_run(a, tree, last_run);
    }
cleanup:
    git_diff_free(diff);
    git_tree_free(tree);
    git_commit_free(head);
    return rc;
}
