/* The error paths of the audit trail, its verify, the team's settings, the
 * journal and a run's resume: hostile or broken files (a bare or blocked
 * repository, a HEAD that names no commit, a tampered commit, a journal
 * whose chain breaks, a config of the wrong types), each refused with an
 * error that names what failed, and nothing half-written. The tests named
 * fault_injection_ need the test build's I/O fault points. */
#include "test.h"

#include "audit.h"
#include "audit_remote.h"
#include "buf.h"
#include "checkpoint.h"
#include "cli.h"
#include "cmd_config.h"
#include "config.h"
#include "drmod.h"
#include "err.h"
#include "filesmod.h"
#include "fsio.h"
#include "journal.h"
#include "jsonfield.h"
#include "runbook.h"
#include "runner.h"
#include "runpath.h"
#include "sandbox.h"
#include "term.h"
#include "testhook.h"
#include "verify.h"

#include <git2.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The same in the trail sub under parent. */
static char *run_path_in(const char *parent, const char *sub, const char *run_id, const char *name)
{
    char *dir = xasprintf("%s/%s", parent, sub);
    char *path = run_file_path(dir, run_id, name);
    free(dir);
    return path;
}

#define OPERATOR "Ann Op <ann@example.org>"

static char *text_of(const char *path)
{
    char *text = NULL;
    if (fsio_read_file(&text, NULL, path) != 0)
        return NULL;
    return text;
}

static int write_text(const char *path, const char *text)
{
    char *dir = fsio_dirname(path);
    int rc = fsio_mkdirs(dir, 0755);
    free(dir);
    return rc ? rc : fsio_write_durable(path, text, strlen(text));
}

/* A new trail at TMP/name, opened (NULL when it cannot be made). */
static audit *new_trail(const char *name, char **dir_out)
{
    char *dir = xasprintf("%s/%s", test_tmpdir(), name);
    audit *a = NULL;
    if (fsio_mkdirs(dir, 0755) != 0 || audit_open(&a, dir, 1) != 0) {
        free(dir);
        return NULL;
    }
    *dir_out = dir;
    return a;
}

/* HEAD's commit id as hex, "" when none. */
static void head_id(char out[GIT_OID_HEXSZ + 1], const char *dir)
{
    git_repository *repo = NULL;
    git_oid oid;
    out[0] = '\0';
    if (git_repository_open(&repo, dir) == 0 && git_reference_name_to_id(&oid, repo, "HEAD") == 0)
        git_oid_tostr(out, GIT_OID_HEXSZ + 1, &oid);
    git_repository_free(repo);
}

/* ---- opening a trail ------------------------------------------------------------ */

static void cov_faults_a_bare_repository_is_refused_as_an_audit_trail(void)
{
    char *dir = xasprintf("%s/bare.git", test_tmpdir());
    git_repository *repo = NULL;
    CHECK(git_repository_init(&repo, dir, 1) == 0);
    git_repository_free(repo);
    audit *a = NULL;
    int rc = audit_open(&a, dir, 1);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    free(dir);
    CHECK(rc == DR_EUSAGE && a == NULL);
    CHECK_CONTAINS(message, "is bare");
}

static void cov_faults_an_audit_folder_under_a_file_cannot_be_created_and_says_so(void)
{
    const char *file = test_write_file("plain-file", "x\n");
    char *dir = xasprintf("%s/trail", file);
    audit *a = NULL;
    int rc = audit_open(&a, dir, 1);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    free(dir);
    CHECK(rc == DR_EUSAGE && a == NULL);
    CHECK_CONTAINS(message, "cannot create the audit repository");
}

static void cov_faults_a_repository_whose_drctl_folder_is_a_file_cannot_be_used(void)
{
    char *dir = NULL;
    audit *a = new_trail("drctl-file", &dir);
    CHECK(a);
    audit_free(a);
    char *drctl = xasprintf("%s/.git/drctl", dir);
    char *locks = xasprintf("%s/.git/drctl/locks", dir);
    int removed = rmdir(locks) == 0 && rmdir(drctl) == 0 && write_text(drctl, "not a folder\n") == 0;
    int rc = audit_open(&a, dir, 0);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    free(locks);
    free(drctl);
    free(dir);
    CHECK(removed);
    CHECK(rc == DR_EUSAGE && a == NULL);
    CHECK_CONTAINS(message, "cannot be used");
}

static void cov_faults_a_missing_trail_is_refused_when_it_may_not_be_made(void)
{
    char *dir = xasprintf("%s/no-such-trail", test_tmpdir());
    audit *a = NULL;
    int rc = audit_open(&a, dir, 0);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    CHECK(rc == DR_EUSAGE && !a);
    CHECK_CONTAINS(message, dir);
    CHECK(!fsio_exists(dir));
    free(dir);
}

/* ---- commits ------------------------------------------------------------------------ */

/* runs/<id>/ with a run.json, a journal of one line and a state.json. */
static int write_run(const char *dir, const char *run_id, const char *jtext)
{
    char *info = xasprintf("%s/runs/%s/run.json", dir, run_id);
    char *jpath = xasprintf("%s/runs/%s/journal.jsonl", dir, run_id);
    char *state = xasprintf("%s/runs/%s/state.json", dir, run_id);
    char *info_text = xasprintf("{\"run_id\":\"%s\"}\n", run_id);
    int rc = write_text(info, info_text) || write_text(jpath, jtext) || write_text(state, "{}\n");
    free(info_text);
    free(state);
    free(jpath);
    free(info);
    return rc;
}

/* A folder at RELPATH (inside the trail) where drctl writes a file: the
 * commit of run r1 fails with a message holding EXPECTED, and nothing is
 * committed. */
/* A run's first commit with something in the way at relpath: a folder,
 * or a symbolic link to link_to when it is given. */
static void run_commit_blocked_by(const char *name, const char *relpath, const char *link_to, const char *expected)
{
    char *dir = NULL;
    audit *a = new_trail(name, &dir);
    CHECK(a);
    CHECK(write_run(dir, "r1", "{}\n") == 0);
    char *blocker = xasprintf("%s/%s", dir, relpath);
    CHECK(link_to ? symlink(link_to, blocker) == 0 : fsio_mkdirs(blocker, 0755) == 0);
    int rc = audit_commit_run(a, "r1", "r1: run started", OPERATOR);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    char head[GIT_OID_HEXSZ + 1];
    head_id(head, dir);
    audit_free(a);
    free(blocker);
    free(dir);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(message, expected);
    CHECK_STR(head, "");
}

static void run_commit_blocked_by_a_folder(const char *name, const char *relpath, const char *expected)
{
    run_commit_blocked_by(name, relpath, NULL, expected);
}

static void cov_faults_a_commit_whose_lock_cannot_be_opened_names_the_lock_and_commits_nothing(void)
{
    run_commit_blocked_by_a_folder("lock-dir", ".git/drctl/commit.lock", "cannot open the audit repository's lock");
}

static void cov_faults_an_operator_without_an_email_commits_as_login_at_host(void)
{
    char *dir = NULL;
    audit *a = new_trail("no-email", &dir);
    CHECK(a);
    CHECK(write_run(dir, "r1", "{}\n") == 0);
    CHECK(audit_commit_run(a, "r1", "r1: run started", "ann op  ") == 0);
    /* nothing changed: no second commit */
    char first[GIT_OID_HEXSZ + 1], second[GIT_OID_HEXSZ + 1];
    head_id(first, dir);
    CHECK(audit_commit_run(a, "r1", "r1: run started", "ann op") == 0);
    head_id(second, dir);
    audit_free(a);
    git_repository *repo = NULL;
    git_commit *commit = NULL;
    git_oid oid;
    char name[128] = "", email[256] = "";
    if (git_repository_open(&repo, dir) == 0 && git_oid_fromstr(&oid, first) == 0 &&
        git_commit_lookup(&commit, repo, &oid) == 0) {
        snprintf(name, sizeof name, "%s", git_commit_author(commit)->name);
        snprintf(email, sizeof email, "%s", git_commit_author(commit)->email);
    }
    git_commit_free(commit);
    git_repository_free(repo);
    free(dir);
    CHECK(first[0]);
    CHECK_STR(second, first);
    CHECK_STR(name, "ann op");
    CHECK(strncmp(email, "ann.op..@", 9) == 0);
}

/* Points the branch at what is not a commit (a blob), or at garbage. */
static void commit_over_a_broken_head(const char *name, int garbage, char *message, size_t size, int *rc)
{
    char *dir = NULL;
    audit *a = new_trail(name, &dir);
    *rc = 0;
    if (!a) {
        snprintf(message, size, "no trail");
        return;
    }
    write_run(dir, "r1", "{}\n");
    audit_commit_run(a, "r1", "r1: run started", OPERATOR);
    char *ref = xasprintf("%s/.git/refs/heads/main", dir);
    if (garbage) {
        write_text(ref, "not an object id\n");
    } else {
        git_repository *repo = NULL;
        git_oid blob;
        char hex[GIT_OID_HEXSZ + 2];
        git_repository_open(&repo, dir);
        git_blob_create_from_buffer(&blob, repo, "x", 1);
        git_oid_tostr(hex, GIT_OID_HEXSZ + 1, &blob);
        strcat(hex, "\n");
        write_text(ref, hex);
        git_repository_free(repo);
    }
    char *jtext = run_file_path(dir, "r1", "journal.jsonl");
    write_text(jtext, "{}\n{}\n");
    *rc = audit_commit_run(a, "r1", "r1: step a started", OPERATOR);
    snprintf(message, size, "%s", err_last());
    free(jtext);
    free(ref);
    audit_free(a);
    free(dir);
}

static void cov_faults_a_commit_over_a_head_that_names_no_commit_fails_cleanly(void)
{
    char message[512];
    int rc;
    commit_over_a_broken_head("head-blob", 0, message, sizeof message, &rc);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(message, "cannot read HEAD of the audit repository");
    commit_over_a_broken_head("head-garbage", 1, message, sizeof message, &rc);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(message, "cannot read HEAD of the audit repository");
}

static void cov_faults_a_run_file_that_is_a_folder_cannot_be_stored_and_nothing_is_committed(void)
{
    run_commit_blocked_by_a_folder("file-folder", "runs/r1/report.md", "cannot store a file in the audit repository");
}

/* A run's file that is a symbolic link (to a file another user wants in the
 * trail, say) is never followed into the commit. */
static void cov_faults_a_run_file_that_is_a_symlink_is_not_followed_and_nothing_is_committed(void)
{
    run_commit_blocked_by("file-symlink", "runs/r1/report.md", "/etc/passwd",
                          "cannot store a file in the audit repository");
}

static void cov_faults_a_notification_outside_its_folder_is_refused(void)
{
    char *dir = NULL;
    audit *a = new_trail("notify-outside", &dir);
    CHECK(a);
    int nested = audit_commit_notification(a, "notifications/a/b.json", "notify: x", OPERATOR);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    int outside = audit_commit_notification(a, "runs/x.json", "notify: x", OPERATOR);
    CHECK_STR(audit_locks_dir(a) + strlen(audit_locks_dir(a)) - 11, "drctl/locks");
    audit_free(a);
    free(dir);
    CHECK(nested == DR_EFAIL && outside == DR_EFAIL);
    CHECK_CONTAINS(message, "is not a file of notifications/");
}

/* The index is a folder: a settings commit checks it can update it
 * first, so nothing is committed, and a settle cannot read it. */
static void cov_faults_an_unreadable_index_fails_a_config_commit_and_a_settle_naming_the_index(void)
{
    char *dir = NULL;
    audit *a = new_trail("index-folder", &dir);
    CHECK(a);
    char *cfg_path = xasprintf("%s/config.json", dir);
    char *index = xasprintf("%s/.git/index", dir);
    CHECK(write_text(cfg_path, "{\"contact\":\"ops\"}\n") == 0);
    unlink(index);
    CHECK(fsio_mkdirs(index, 0755) == 0);
    int commit_rc = audit_commit_config(a, "config: set contact", OPERATOR);
    char commit_message[512];
    snprintf(commit_message, sizeof commit_message, "%s", err_last());
    int settle_rc = audit_settle(a, NULL);
    char settle_message[512];
    snprintf(settle_message, sizeof settle_message, "%s", err_last());
    char head[GIT_OID_HEXSZ + 1];
    head_id(head, dir);
    audit_free(a);
    free(index);
    free(cfg_path);
    free(dir);
    CHECK_STR(head, "");
    CHECK(commit_rc == DR_EFAIL);
    CHECK_CONTAINS(commit_message, "cannot read the audit repository's index (nothing was committed)");
    CHECK(settle_rc == DR_EFAIL);
    CHECK_CONTAINS(settle_message, "cannot read the audit repository's index");
}

/* index.lock is a folder that the stale-lock cleanup cannot unlink: the
 * commit is made, the index cannot follow it, and says so. */
static void cov_faults_an_index_that_cannot_be_written_fails_a_config_commit_and_a_settle(void)
{
    char *dir = NULL;
    audit *a = new_trail("index-lock", &dir);
    CHECK(a);
    CHECK(write_run(dir, "r1", "{}\n") == 0);
    CHECK(audit_commit_run(a, "r1", "r1: run started", OPERATOR) == 0);
    char *lock = xasprintf("%s/.git/index.lock", dir);
    CHECK(fsio_mkdirs(lock, 0755) == 0);
    char *cfg_path = xasprintf("%s/config.json", dir);
    CHECK(write_text(cfg_path, "{\"contact\":\"ops\"}\n") == 0);
    char before[GIT_OID_HEXSZ + 1], after[GIT_OID_HEXSZ + 1];
    head_id(before, dir);
    int commit_rc = audit_commit_config(a, "config: set contact", OPERATOR);
    char commit_message[512];
    snprintf(commit_message, sizeof commit_message, "%s", err_last());
    head_id(after, dir);
    int rc = audit_settle(a, "r1");
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    rmdir(lock);
    free(cfg_path);
    free(lock);
    audit_free(a);
    free(dir);
    CHECK(strcmp(before, after) != 0);
    CHECK(commit_rc == DR_EFAIL);
    CHECK_CONTAINS(commit_message, "cannot update the audit repository's index");
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(message, "the audit repository's index");
}

static void cov_faults_a_stray_file_in_runs_and_a_deleted_run_file_are_refused_by_name(void)
{
    char *dir = NULL;
    audit *a = new_trail("dirty", &dir);
    CHECK(a);
    CHECK(write_run(dir, "r1", "{}\n") == 0);
    CHECK(audit_commit_run(a, "r1", "r1: run started", OPERATOR) == 0);
    CHECK(audit_settle(a, "r1") == 0);
    CHECK(audit_check_clean(a) == 0);
    char *stray = xasprintf("%s/runs/stray", dir);
    CHECK(write_text(stray, "x\n") == 0);
    int stray_rc = audit_check_clean(a);
    char stray_message[512];
    snprintf(stray_message, sizeof stray_message, "%s", err_last());
    unlink(stray);
    char *state = run_file_path(dir, "r1", "state.json");
    CHECK(unlink(state) == 0);
    int deleted_rc = audit_check_clean(a);
    char deleted_message[512];
    snprintf(deleted_message, sizeof deleted_message, "%s", err_last());
    int uncommitted = audit_run_uncommitted(a, "r1");
    free(state);
    free(stray);
    audit_free(a);
    free(dir);
    CHECK(stray_rc == DR_EUSAGE);
    CHECK_CONTAINS(stray_message, "runs/stray is not part of any run");
    CHECK(deleted_rc == DR_EUSAGE);
    CHECK_CONTAINS(deleted_message, "runs/r1/state.json was deleted outside drctl");
    CHECK(uncommitted == 1);
}

/* ---- the remote: origin on this machine ---------------------------------------------- */

/* stderr into path until stderr_back (audit_sync and audit_push report
 * their failures as warnings). */
static int stderr_to(const char *path)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (saved < 0 || fd < 0)
        return -1;
    dup2(fd, 2);
    close(fd);
    return saved;
}

static char *stderr_back(int saved, const char *path)
{
    fflush(stderr);
    if (saved >= 0) {
        dup2(saved, 2);
        close(saved);
    }
    return text_of(path);
}

static int set_origin(const char *dir, const char *url, const char *push_url)
{
    git_repository *repo = NULL;
    git_remote *remote = NULL;
    int rc = git_repository_open(&repo, dir);
    if (rc == 0 && git_remote_lookup(&remote, repo, "origin") != 0)
        rc = git_remote_create(&remote, repo, "origin", url);
    if (rc == 0 && push_url)
        rc = git_remote_set_pushurl(repo, "origin", push_url);
    git_remote_free(remote);
    git_repository_free(repo);
    return rc;
}

/* A bare origin at TMP/name.git holding one commit of run r1 on main, and
 * the trail that pushed it (*first, at TMP/name-first). */
static char *origin_with_one_run(const char *name, audit **first, char **first_dir)
{
    char *url = xasprintf("%s/%s.git", test_tmpdir(), name);
    char *trail_name = xasprintf("%s-first", name);
    git_repository *bare = NULL;
    int ok = git_repository_init(&bare, url, 1) == 0 && git_repository_set_head(bare, "refs/heads/main") == 0;
    git_repository_free(bare);
    audit *a = ok ? new_trail(trail_name, first_dir) : NULL;
    free(trail_name);
    ok = a && write_run(*first_dir, "r1", "{}\n") == 0 && audit_commit_run(a, "r1", "r1: run started", OPERATOR) == 0;
    audit_free(a);
    a = NULL;
    ok = ok && set_origin(*first_dir, url, NULL) == 0 && audit_open(&a, *first_dir, 0) == 0 && audit_has_remote(a);
    if (ok)
        audit_push(a);
    *first = a;
    if (!ok) {
        free(url);
        return NULL;
    }
    return url;
}

/* A clone of url at TMP/name, opened as a trail. */
static audit *clone_trail(const char *url, const char *name, char **dir_out)
{
    char *dir = xasprintf("%s/%s", test_tmpdir(), name);
    git_repository *repo = NULL;
    audit *a = NULL;
    if (git_clone(&repo, url, dir, NULL) == 0)
        audit_open(&a, dir, 0);
    git_repository_free(repo);
    if (!a) {
        free(dir);
        return NULL;
    }
    *dir_out = dir;
    return a;
}

static void cov_faults_a_local_commit_that_is_not_drctls_is_not_replayed_over_origin(void)
{
    audit *first = NULL, *second = NULL;
    char *first_dir = NULL, *second_dir = NULL;
    char *url = origin_with_one_run("origin-replay", &first, &first_dir);
    CHECK(url);
    second = clone_trail(url, "replay-second", &second_dir);
    CHECK(second);
    /* origin moves on, then the second clone commits something by hand */
    CHECK(write_run(first_dir, "r2", "{}\n") == 0);
    CHECK(audit_commit_run(first, "r2", "r2: run started", OPERATOR) == 0);
    char *log = xasprintf("%s/replay.log", test_tmpdir());
    CHECK(write_run(second_dir, "r3", "{}\n") == 0);
    int saved = stderr_to(log);
    int commit_rc = audit_commit_run(second, "r3", "an edit by hand", OPERATOR);
    int sync_rc = audit_sync(second);
    char *warned = stderr_back(saved, log);
    char origin_head[GIT_OID_HEXSZ + 1], first_head[GIT_OID_HEXSZ + 1];
    head_id(origin_head, url);
    head_id(first_head, first_dir);
    audit_free(second);
    audit_free(first);
    free(log);
    free(second_dir);
    free(first_dir);
    free(url);
    CHECK(commit_rc == 0 && sync_rc == 0); /* the commit is safe locally; the push is what failed */
    CHECK_CONTAINS(warned, "is not a drctl commit; cannot replay it");
    CHECK_STR(origin_head, first_head); /* origin got nothing of it */
    free(warned);
}

static void cov_faults_a_trail_and_an_origin_of_unrelated_histories_are_not_merged(void)
{
    audit *first = NULL;
    char *first_dir = NULL, *dir = NULL;
    char *url = origin_with_one_run("origin-unrelated", &first, &first_dir);
    CHECK(url);
    audit *other = new_trail("unrelated", &dir);
    CHECK(other);
    CHECK(write_run(dir, "r9", "{}\n") == 0);
    CHECK(audit_commit_run(other, "r9", "r9: run started", OPERATOR) == 0);
    audit_free(other);
    CHECK(set_origin(dir, url, NULL) == 0);
    CHECK(audit_open(&other, dir, 0) == 0);
    char before[GIT_OID_HEXSZ + 1], after[GIT_OID_HEXSZ + 1];
    head_id(before, dir);
    char *log = xasprintf("%s/unrelated.log", test_tmpdir());
    int saved = stderr_to(log);
    int rc = audit_sync(other);
    char *warned = stderr_back(saved, log);
    head_id(after, dir);
    audit_free(other);
    audit_free(first);
    free(log);
    free(dir);
    free(first_dir);
    free(url);
    CHECK(rc == 0);
    CHECK_CONTAINS(warned, "unrelated histories");
    CHECK_STR(after, before);
    free(warned);
}

/* Pushes go to a folder that is no repository: the commits stay local,
 * the trail is ahead of origin, and a sync leaves it so. */
static void cov_faults_a_trail_whose_pushes_fail_keeps_its_commits_and_stays_ahead(void)
{
    audit *first = NULL;
    char *first_dir = NULL, *dir = NULL;
    char *url = origin_with_one_run("origin-ahead", &first, &first_dir);
    CHECK(url);
    audit *ahead = clone_trail(url, "ahead", &dir);
    CHECK(ahead);
    audit_free(ahead);
    char *nowhere = xasprintf("%s/nowhere.git", test_tmpdir());
    CHECK(set_origin(dir, url, nowhere) == 0);
    CHECK(audit_open(&ahead, dir, 0) == 0);
    CHECK(write_run(dir, "r4", "{}\n") == 0);
    char *log = xasprintf("%s/ahead.log", test_tmpdir());
    int saved = stderr_to(log);
    int commit_rc = audit_commit_run(ahead, "r4", "r4: run started", OPERATOR);
    int sync_rc = audit_sync(ahead);
    int settle_rc = audit_settle(ahead, "r4");
    char *warned = stderr_back(saved, log);
    char local[GIT_OID_HEXSZ + 1], origin[GIT_OID_HEXSZ + 1], first_head[GIT_OID_HEXSZ + 1];
    head_id(local, dir);
    head_id(origin, url);
    head_id(first_head, first_dir);
    audit_free(ahead);
    audit_free(first);
    free(log);
    free(nowhere);
    free(dir);
    free(first_dir);
    free(url);
    CHECK(commit_rc == 0 && sync_rc == 0 && settle_rc == 0);
    CHECK_CONTAINS(warned, "The commits are safe in");
    CHECK(strcmp(local, origin) != 0);
    CHECK_STR(origin, first_head);
    free(warned);
}

static cJSON *lock_holder(const char *run_id, const char *expires_at)
{
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "key", "target-1");
    cJSON_AddStringToObject(h, "run_id", run_id);
    cJSON_AddStringToObject(h, "operator", OPERATOR);
    cJSON_AddStringToObject(h, "expires_at", expires_at);
    return h;
}

static void cov_faults_the_target_lock_on_origin_is_refused_to_another_run_and_released_only_by_its_holder(void)
{
    audit *first = NULL;
    char *first_dir = NULL, *dir = NULL;
    char *url = origin_with_one_run("origin-lock", &first, &first_dir);
    CHECK(url);
    audit *second = clone_trail(url, "lock-second", &dir);
    CHECK(second);
    cJSON *mine = lock_holder("r1", "2999-01-01T00:00:00Z"), *theirs = lock_holder("r2", "2999-01-01T00:00:00Z");
    cJSON *previous = NULL, *previous2 = NULL, *previous3 = NULL;
    int taken = audit_remote_lock(&previous, first, "target-1", mine);
    int refused = audit_remote_lock(&previous2, second, "target-1", theirs);
    const char *holder = json_text(previous2, "run_id", "");
    int named = strcmp(holder, "r1") == 0;
    audit_remote_unlock(second, "target-1", "r2"); /* not its lock: nothing released */
    cJSON_Delete(previous2);
    previous2 = NULL;
    int still = audit_remote_lock(&previous2, second, "target-1", theirs);
    audit_remote_unlock(first, "target-1", "r1");
    int after_release = audit_remote_lock(&previous3, second, "target-1", theirs);
    cJSON_Delete(previous);
    cJSON_Delete(previous2);
    cJSON_Delete(previous3);
    cJSON_Delete(mine);
    cJSON_Delete(theirs);
    audit_free(second);
    audit_free(first);
    free(dir);
    free(first_dir);
    free(url);
    CHECK(taken == 0);
    CHECK(refused == DR_ELOCKED && named);
    CHECK(still == DR_ELOCKED);
    CHECK(after_release == 0);
}

static void cov_faults_the_target_lock_fails_cleanly_on_an_unreachable_origin_and_a_blocked_local_lock(void)
{
    char *dir = NULL;
    audit *a = new_trail("lock-unreachable", &dir);
    CHECK(a);
    CHECK(write_run(dir, "r1", "{}\n") == 0);
    CHECK(audit_commit_run(a, "r1", "r1: run started", OPERATOR) == 0);
    cJSON *h = lock_holder("r1", "2999-01-01T00:00:00Z"), *previous = NULL;
    int without_remote = audit_remote_lock(&previous, a, "target-1", h);
    audit_remote_unlock(a, "target-1", "r1");
    audit_free(a);
    char *nowhere = xasprintf("%s/nowhere.git", test_tmpdir());
    CHECK(set_origin(dir, nowhere, NULL) == 0);
    CHECK(audit_open(&a, dir, 0) == 0);
    int unreachable = audit_remote_lock(&previous, a, "target-1", h);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    char *lock = xasprintf("%s/.git/drctl/commit.lock", dir);
    audit_free(a); /* its lock file closed, then made a folder */
    unlink(lock);
    CHECK(fsio_mkdirs(lock, 0755) == 0);
    CHECK(audit_open(&a, dir, 0) == 0);
    int blocked = audit_remote_lock(&previous, a, "target-1", h);
    char blocked_message[512];
    snprintf(blocked_message, sizeof blocked_message, "%s", err_last());
    audit_remote_unlock(a, "target-1", "r1"); /* cannot lock: returns quietly */
    int sync_blocked = audit_sync(a);
    audit_free(a);
    cJSON_Delete(previous);
    cJSON_Delete(h);
    free(lock);
    free(nowhere);
    free(dir);
    CHECK(without_remote == 0);
    CHECK(unreachable == DR_EFAIL);
    CHECK_CONTAINS(message, "cannot reach origin for the target lock");
    CHECK(blocked == DR_EFAIL && sync_blocked == DR_EFAIL);
    CHECK_CONTAINS(blocked_message, "cannot open the audit repository's lock");
}

/* ---- verify over a tampered trail ------------------------------------------------------- */

static const char two_steps[] =
    "return runbook {\n"
    "  name = 'tamper', version = '1', summary = 's',\n"
    "  steps = {\n"
    "    { name = 'a', run = function() return { id = 1 } end },\n"
    "    { name = 'b', run = function() return { n = 2 } end },\n"
    "  },\n"
    "}\n";

typedef struct trail_run {
    sandbox *sb;
    runbook *rb;
    audit *trail;
    char *dir;
} trail_run;

static void trail_run_close(trail_run *t)
{
    audit_free(t->trail);
    runbook_free(t->rb);
    sandbox_free(t->sb);
    free(t->dir);
}

static int trail_run_open(trail_run *t, const char *name, const char *runbook_text)
{
    memset(t, 0, sizeof *t);
    const char *path = test_write_file("runbooks/tamper.lua", runbook_text); /* named as the runbook */
    t->dir = xasprintf("%s/%s", test_tmpdir(), name);
    if (sandbox_new(&t->sb, 64u << 20) != 0 || runbook_load(&t->rb, t->sb, path) != 0 ||
        fsio_mkdirs(t->dir, 0755) != 0 || audit_open(&t->trail, t->dir, 1) != 0)
        return -1;
    return 0;
}

/* A trail at TMP/name holding run r1 of two_steps, done. */
static int done_run(trail_run *t, const char *name)
{
    if (trail_run_open(t, name, two_steps) != 0)
        return -1;
    runner_options opts = { .audit_dir = t->dir, .run_id = "r1", .audit = t->trail };
    cJSON *params = cJSON_CreateObject();
    char *run_id = NULL;
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    int rc = runner_start(&run_id, t->rb, params, &opts);
    term_set_verbosity(was);
    cJSON_Delete(params);
    free(run_id);
    return rc;
}

/* Every problem verify finds, as one JSON text ("ERROR: ..." when it cannot check). */
static char *verify_text(const char *dir, long *count)
{
    verify_result result = { 0 };
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    int rc = verify_audit(&result, dir, NULL);
    term_set_verbosity(was);
    if (rc != 0) {
        *count = -1;
        cJSON_Delete(result.problems);
        return xasprintf("ERROR: %s", err_last());
    }
    *count = cJSON_GetArraySize(result.problems);
    char *text = cJSON_PrintUnformatted(result.problems);
    cJSON_Delete(result.problems);
    return text;
}

#define CHECK_VERIFY_FINDS(dir, needle)                        \
    do {                                                       \
        long count_;                                           \
        char *text_ = verify_text(dir, &count_);               \
        int found_ = strstr(text_, needle) != NULL;            \
        if (!found_)                                           \
            test_fail(__FILE__, __LINE__, "verify finds " needle, text_); \
        free(text_);                                           \
        if (!found_)                                           \
            return;                                            \
    } while (0)

/* Rewrites a file of run r1 and commits it the way drctl would. */
static int tamper(trail_run *t, const char *name, const char *text, const char *message)
{
    char *path = run_file_path(t->dir, "r1", name);
    int rc = write_text(path, text);
    free(path);
    return rc ? rc : audit_commit_run(t->trail, "r1", message, OPERATOR);
}

static char *run_file(trail_run *t, const char *name)
{
    char *path = run_file_path(t->dir, "r1", name);
    char *text = text_of(path);
    free(path);
    return text;
}

static void cov_faults_verify_of_a_sound_run_finds_nothing_then_names_a_run_json_of_another_run(void)
{
    trail_run t;
    CHECK(done_run(&t, "tamper-info") == 0);
    long count;
    char *text = verify_text(t.dir, &count);
    int clean = count == 0;
    free(text);
    int rc = tamper(&t, "run.json", "{\"run_id\":\"someone-else\"}\n", "r1: run done");
    trail_run_close(&t);
    CHECK(clean);
    CHECK(rc == 0);
    char *dir = xasprintf("%s/tamper-info", test_tmpdir());
    long after;
    text = verify_text(dir, &after);
    int named = strstr(text, "names another run") != NULL;
    free(text);
    free(dir);
    CHECK(named);
}

static void cov_faults_verify_names_a_state_json_that_is_not_json_or_lists_other_steps(void)
{
    trail_run t;
    CHECK(done_run(&t, "tamper-state") == 0);
    int rc = tamper(&t, "state.json", "{ torn", "r1: run done");
    if (rc == 0)
        CHECK_VERIFY_FINDS(t.dir, "state.json is missing or not JSON");
    char *state = run_file(&t, "state.json");
    int rc2 = tamper(&t, "state.json", "{\"status\":\"done\",\"steps\":[]}\n", "r1: run done");
    free(state);
    if (rc2 == 0)
        CHECK_VERIFY_FINDS(t.dir, "state.json lists other steps than the journal");
    trail_run_close(&t);
    CHECK(rc == 0 && rc2 == 0);
}

/* The seq the next event of a journal takes. */
static long next_seq(const char *jtext)
{
    long lines = 0;
    for (const char *p = jtext; *p; p++)
        lines += *p == '\n';
    return lines + 1;
}

/* The journal's last line, changed: its time, or its bytes. */
static char *journal_with_last_line(const char *jtext, const char *last)
{
    size_t len = strlen(jtext);
    size_t cut = len >= 2 ? len - 2 : 0;
    while (cut > 0 && jtext[cut - 1] != '\n')
        cut--;
    return xasprintf("%.*s%s", (int)cut, jtext, last);
}

static void cov_faults_verify_names_a_journal_with_a_bad_time_an_earlier_time_a_torn_line_and_a_broken_chain(void)
{
    trail_run t;
    CHECK(done_run(&t, "tamper-journal") == 0);
    char *jtext = run_file(&t, "journal.jsonl");
    CHECK(jtext);
    /* appended events only, so that history stays append-only */
    long seq = next_seq(jtext);
    char *bad_time = xasprintf("%s{\"seq\":%ld,\"time\":\"yesterday\",\"kind\":\"log\",\"step\":null,\"data\":{}}\n",
                               jtext, seq);
    char *earlier = xasprintf("%s{\"seq\":%ld,\"time\":\"2000-01-01T00:00:00.000Z\",\"kind\":\"log\",\"step\":null,"
                              "\"data\":{}}\n", bad_time, seq + 1);
    char *only_earlier = xasprintf("%s{\"seq\":%ld,\"time\":\"2000-01-01T00:00:00.000Z\",\"kind\":\"log\","
                                   "\"step\":null,\"data\":{}}\n", jtext, seq);
    char *torn = xasprintf("%s{\"seq\":%ld,", earlier, seq + 2);
    int rc = tamper(&t, "journal.jsonl", bad_time, "r1: log");
    if (rc == 0)
        CHECK_VERIFY_FINDS(t.dir, "has no valid time");
    int rc2 = tamper(&t, "journal.jsonl", earlier, "r1: log");
    int rc3 = tamper(&t, "journal.jsonl", torn, "r1: log");
    if (rc3 == 0) {
        CHECK_VERIFY_FINDS(t.dir, "the journal ends with an incomplete line");
        CHECK_VERIFY_FINDS(t.dir, "the hash chain breaks at");
    }
    /* an edit of an old line: the history is no longer append-only */
    char *edited = journal_with_last_line(jtext, "{\"seq\":1,\"kind\":\"run-started\"}\n");
    int rc4 = tamper(&t, "journal.jsonl", edited, "r1: run done");
    if (rc4 == 0)
        CHECK_VERIFY_FINDS(t.dir, "not append-only");
    trail_run_close(&t);
    /* verify stops at the first bad time: an earlier time, on a trail of its own */
    trail_run other;
    int rc5 = done_run(&other, "tamper-times");
    if (rc5 == 0)
        rc5 = tamper(&other, "journal.jsonl", only_earlier, "r1: log");
    if (rc5 == 0)
        CHECK_VERIFY_FINDS(other.dir, "is not later than the event before it");
    trail_run_close(&other);
    free(only_earlier);
    free(edited);
    free(torn);
    free(earlier);
    free(bad_time);
    free(jtext);
    CHECK(rc == 0 && rc2 == 0 && rc3 == 0 && rc4 == 0 && rc5 == 0);
}

static void cov_faults_verify_names_a_journal_that_is_not_json_or_cannot_be_replayed(void)
{
    trail_run t;
    CHECK(done_run(&t, "tamper-replay") == 0);
    char *jtext = run_file(&t, "journal.jsonl");
    CHECK(jtext);
    char *unknown_step = xasprintf("%s{\"seq\":%ld,\"time\":\"2099-01-01T00:00:00.000Z\",\"kind\":\"step-done\","
                                   "\"step\":\"nope\",\"data\":{}}\n", jtext, next_seq(jtext));
    int rc = tamper(&t, "journal.jsonl", unknown_step, "r1: step nope done");
    if (rc == 0)
        CHECK_VERIFY_FINDS(t.dir, "the journal cannot be replayed");
    char *garbage = xasprintf("%snot json at all\n", unknown_step);
    int rc2 = tamper(&t, "journal.jsonl", garbage, "r1: log");
    long count;
    char *text = rc2 == 0 ? verify_text(t.dir, &count) : NULL;
    free(garbage);
    free(unknown_step);
    free(jtext);
    trail_run_close(&t);
    CHECK(rc == 0 && rc2 == 0);
    CHECK(count > 0);
    CHECK_CONTAINS(text, "journal.jsonl");
    free(text);
}

static void cov_faults_verify_names_a_commit_that_is_not_drctls_and_one_without_a_journal(void)
{
    trail_run t;
    CHECK(done_run(&t, "tamper-message") == 0);
    int rc = tamper(&t, "report.md", "# edited\n", "an edit by hand");
    if (rc == 0)
        CHECK_VERIFY_FINDS(t.dir, "not a drctl commit");
    /* a commit naming a run whose folder holds no journal */
    char *other = run_file_path(t.dir, "r2", "run.json");
    int rc2 = write_text(other, "{\"run_id\":\"r2\"}\n");
    if (rc2 == 0)
        rc2 = audit_commit_run(t.trail, "r2", "r2: run started", OPERATOR);
    if (rc2 == 0) {
        CHECK_VERIFY_FINDS(t.dir, "the commit has no journal for run r2");
        CHECK_VERIFY_FINDS(t.dir, "the journal is missing");
    }
    free(other);
    trail_run_close(&t);
    CHECK(rc == 0 && rc2 == 0);
}

static void cov_faults_verify_names_a_committed_config_of_the_wrong_type_and_a_record_that_is_not_json(void)
{
    trail_run t;
    CHECK(done_run(&t, "tamper-config") == 0);
    char *cfg_path = xasprintf("%s/config.json", t.dir);
    int rc = write_text(cfg_path, "{\"contact\": 5}\n");
    if (rc == 0)
        rc = audit_commit_config(t.trail, "config: set contact", OPERATOR);
    if (rc == 0)
        CHECK_VERIFY_FINDS(t.dir, "contact: expected a string");
    char *record = xasprintf("%s/notifications/sent.txt", t.dir);
    int rc2 = write_text(record, "plain text\n");
    if (rc2 == 0)
        rc2 = audit_commit_notification(t.trail, "notifications/sent.txt", "notify: sent", OPERATOR);
    if (rc2 == 0)
        CHECK_VERIFY_FINDS(t.dir, "is not a notification record");
    /* a "notify:" commit that changes a run instead */
    int rc3 = tamper(&t, "report.md", "# changed\n", "notify: sent");
    if (rc3 == 0)
        CHECK_VERIFY_FINDS(t.dir, "the notification commit changes more than one new file");
    free(record);
    free(cfg_path);
    trail_run_close(&t);
    CHECK(rc == 0 && rc2 == 0 && rc3 == 0);
}

/* 1 when list ("a, b, c" or "a, b...") names the first runs of the trail
 * dir in the order drctl lists them (by id), none skipped. */
static int lists_a_prefix_in_run_order(const char *list, const char *dir)
{
    runpath_entry *runs;
    size_t count;
    runpath_list(&runs, &count, dir);
    const char *p = list;
    int ok = 1;
    for (size_t i = 0; ok && *p && strcmp(p, "...") && i < count; i++) {
        const char *id = runs[i].run_id;
        if (!strcmp(id, "r0"))
            continue;
        size_t n = strlen(id);
        ok = strncmp(p, id, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == '.');
        p += n;
        if (ok && strncmp(p, ", ", 2) == 0)
            p += 2;
    }
    runpath_list_free(runs, count);
    return ok;
}

/* Runs ahead of their last commit are named in a list of bounded size: one
 * that does not fit ends it with "...", and no shorter id after it may
 * overwrite the mark (once, runs were then left out in between). */
static void cov_faults_verify_marks_a_list_of_uncommitted_runs_cut_short(void)
{
    char *dir = NULL;
    audit *a = new_trail("many-uncommitted", &dir);
    CHECK(a);
    CHECK(write_run(dir, "r0", "{}\n") == 0);
    CHECK(audit_commit_run(a, "r0", "r0: run started", OPERATOR) == 0);
    audit_free(a);
    int made = 1;
    char id[160];
    for (int i = 0; i < 15; i++) { /* long and short ids, interleaved: more than the list holds */
        if (i % 3 == 0)
            snprintf(id, sizeof id, "long-%02d-%0112d", i, 0);
        else
            snprintf(id, sizeof id, "s%02d", i);
        char *info = xasprintf("%s/runs/%s/run.json", dir, id);
        made = made && write_text(info, "{}\n") == 0;
        free(info);
    }
    verify_result result = { 0 };
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    int rc = verify_audit(&result, dir, NULL);
    term_set_verbosity(was);
    cJSON_Delete(result.problems);
    int prefix = lists_a_prefix_in_run_order(result.uncommitted_runs, dir);
    free(dir);
    size_t len = strlen(result.uncommitted_runs);
    int marked = len >= 3 && strcmp(result.uncommitted_runs + len - 3, "...") == 0;
    CHECK(made && rc == 0);
    CHECK(result.uncommitted == 15);
    CHECK(prefix && marked); /* 630 characters of ids do not fit in 512 */
}

/* A commit on top of HEAD made by hand with libgit2: path set to a blob of
 * text, or removed when text is NULL; a path ending in "/" gets a folder
 * holding one file "x" instead. */
static int commit_by_hand(const char *dir, const char *path, const char *text, const char *message)
{
    git_repository *repo = NULL;
    git_commit *head = NULL;
    git_tree *base = NULL, *tree = NULL;
    git_signature *sig = NULL;
    git_oid blob = { { 0 } }, head_oid, tree_oid, commit_oid;
    int rc = git_repository_open(&repo, dir);
    if (rc == 0)
        rc = git_reference_name_to_id(&head_oid, repo, "HEAD");
    if (rc == 0)
        rc = git_commit_lookup(&head, repo, &head_oid);
    if (rc == 0)
        rc = git_commit_tree(&base, head);
    char *leaf = NULL;
    if (rc == 0 && text) {
        size_t n = strlen(path);
        leaf = path[n - 1] == '/' ? xasprintf("%sx", path) : xstrdup(path);
        rc = git_blob_create_from_buffer(&blob, repo, text, strlen(text));
    }
    git_tree_update update = { text ? GIT_TREE_UPDATE_UPSERT : GIT_TREE_UPDATE_REMOVE, blob, GIT_FILEMODE_BLOB,
                               text ? leaf : path };
    if (rc == 0)
        rc = git_tree_create_updated(&tree_oid, repo, base, 1, &update);
    if (rc == 0)
        rc = git_tree_lookup(&tree, repo, &tree_oid);
    if (rc == 0)
        rc = git_signature_now(&sig, "Ann Op", "ann@example.org");
    const git_commit *parents[1] = { head };
    if (rc == 0)
        rc = git_commit_create(&commit_oid, repo, "HEAD", sig, sig, NULL, message, tree, 1, parents);
    free(leaf);
    git_signature_free(sig);
    git_tree_free(tree);
    git_tree_free(base);
    git_commit_free(head);
    git_repository_free(repo);
    return rc;
}

static void cov_faults_verify_names_hand_made_settings_and_notification_commits_of_the_wrong_shape(void)
{
    trail_run t;
    CHECK(done_run(&t, "hand-made") == 0);
    char *record = xasprintf("%s/notifications/sent.json", t.dir);
    char *second = xasprintf("%s/notifications/second.json", t.dir);
    int rc = write_text(record, "{\"sent\":true}\n");
    if (rc == 0)
        rc = audit_commit_notification(t.trail, "notifications/sent.json", "notify: sent", OPERATOR);
    if (rc == 0)
        rc = write_text(second, "{\"sent\":2}\n");
    if (rc == 0)
        rc = audit_commit_notification(t.trail, "notifications/second.json", "notify: sent again", OPERATOR);
    free(second);
    char *dir = xstrdup(t.dir);
    trail_run_close(&t);
    free(record);
    CHECK(rc == 0);
    /* config.json a folder; a notification commit that only removes */
    int a = commit_by_hand(dir, "config.json/", "{}", "config: set contact");
    if (a == 0)
        CHECK_VERIFY_FINDS(dir, "config.json cannot be read");
    int b = commit_by_hand(dir, "notifications/sent.json", NULL, "notify: taken back");
    if (b == 0)
        CHECK_VERIFY_FINDS(dir, "the notification commit adds no record");
    free(dir);
    CHECK(a == 0 && b == 0);
}

static void cov_faults_verify_of_a_folder_that_is_no_repository_is_an_error_and_an_empty_trail_is_clean(void)
{
    char *plain = xasprintf("%s/plain", test_tmpdir());
    CHECK(fsio_mkdirs(plain, 0755) == 0);
    long count;
    char *text = verify_text(plain, &count);
    int refused = count == -1 && strstr(text, "no audit repository") != NULL;
    free(text);
    char *dir = NULL;
    audit *a = new_trail("empty-trail", &dir);
    audit_free(a);
    text = a ? verify_text(dir, &count) : NULL;
    free(dir);
    free(plain);
    CHECK(refused);
    CHECK(text && count == 0);
    free(text);
}

/* ---- resume over hostile files ------------------------------------------------------------ */

static const char one_pause[] =
    "return runbook {\n"
    "  name = 'tamper', version = '1', summary = 's',\n"
    "  steps = {\n"
    "    { name = 'a', run = function() return { id = 1 } end },\n"
    "    { name = 'b', run = function() error('b fails') end },\n"
    "  },\n"
    "}\n";

/* A trail at TMP/name with run r1 failed at step b (resumable). */
static int failed_run(trail_run *t, const char *name)
{
    if (trail_run_open(t, name, one_pause) != 0)
        return -1;
    runner_options opts = { .audit_dir = t->dir, .run_id = "r1", .audit = t->trail };
    cJSON *params = cJSON_CreateObject();
    char *run_id = NULL;
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    int rc = runner_start(&run_id, t->rb, params, &opts);
    term_set_verbosity(was);
    cJSON_Delete(params);
    free(run_id);
    return rc == DR_EFAIL ? 0 : -1;
}

static int resume_quietly(trail_run *t)
{
    runner_options opts = { .audit_dir = t->dir, .audit = t->trail };
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    int rc = runner_resume(t->rb, "r1", NULL, 0, &opts);
    term_set_verbosity(was);
    return rc;
}

/* Writes a file of r1 without committing it, keeping the old text. */
static char *replace_file(trail_run *t, const char *name, const char *text)
{
    char *old = run_file(t, name);
    char *path = run_file_path(t->dir, "r1", name);
    write_text(path, text);
    free(path);
    return old;
}

static void restore_file(trail_run *t, const char *name, char *old)
{
    char *path = run_file_path(t->dir, "r1", name);
    if (old)
        write_text(path, old);
    free(path);
    free(old);
}

static void cov_faults_a_resume_over_a_journal_whose_chain_breaks_changes_nothing(void)
{
    trail_run t;
    CHECK(failed_run(&t, "resume-chain") == 0);
    char *jtext = run_file(&t, "journal.jsonl");
    CHECK(jtext);
    /* step a's outputs edited in place: the hash of the next line no longer holds */
    char *edited = xstrdup(jtext);
    char *at = strstr(edited, "\"id\":1");
    if (at)
        at[5] = '7';
    char *old = replace_file(&t, "journal.jsonl", edited);
    int rc = resume_quietly(&t);
    char message[1024];
    snprintf(message, sizeof message, "%s", err_last());
    char *after = run_file(&t, "journal.jsonl");
    int unchanged = after && strcmp(after, edited) == 0;
    free(after);
    restore_file(&t, "journal.jsonl", old);
    free(edited);
    free(jtext);
    trail_run_close(&t);
    CHECK(at);
    CHECK(rc == DR_EUSAGE);
    CHECK_CONTAINS(message, "nothing was changed");
    CHECK_CONTAINS(message, "journal.jsonl");
    CHECK(unchanged);
}

static void cov_faults_a_resume_of_a_run_made_by_another_runbook_or_with_a_corrupt_run_json_is_refused(void)
{
    trail_run t;
    CHECK(failed_run(&t, "resume-info") == 0);
    char *info = run_file(&t, "run.json");
    CHECK(info);
    cJSON *parsed = cJSON_Parse(info);
    cJSON *rb = cJSON_GetObjectItemCaseSensitive(parsed, "runbook");
    cJSON_ReplaceItemInObjectCaseSensitive(rb, "name", cJSON_CreateString("other-book"));
    char *other = cJSON_PrintUnformatted(parsed);
    cJSON_Delete(parsed);
    char *old = replace_file(&t, "run.json", other);
    int rc = resume_quietly(&t);
    char message[1024];
    snprintf(message, sizeof message, "%s", err_last());
    restore_file(&t, "run.json", old);
    old = replace_file(&t, "run.json", "{ not json");
    int rc2 = resume_quietly(&t);
    char message2[1024];
    snprintf(message2, sizeof message2, "%s", err_last());
    restore_file(&t, "run.json", old);
    /* a journal that does not begin with run-started */
    old = replace_file(&t, "journal.jsonl", "{\"seq\":1,\"time\":\"t\",\"kind\":\"log\",\"step\":null,\"data\":{}}\n");
    int rc3 = resume_quietly(&t);
    char message3[1024];
    snprintf(message3, sizeof message3, "%s", err_last());
    restore_file(&t, "journal.jsonl", old);
    free(other);
    free(info);
    trail_run_close(&t);
    CHECK(rc == DR_EUSAGE);
    CHECK_CONTAINS(message, "was made by runbook 'other-book'");
    CHECK(rc2 != 0);
    CHECK_CONTAINS(message2, "run.json");
    CHECK(rc3 != 0);
    CHECK_CONTAINS(message3, "does not begin with run-started");
}

static void cov_faults_a_run_id_that_is_not_valid_is_refused_before_anything_is_written(void)
{
    trail_run t;
    CHECK(trail_run_open(&t, "bad-id", two_steps) == 0);
    runner_options opts = { .audit_dir = t.dir, .run_id = "bad id/..", .audit = t.trail };
    cJSON *params = cJSON_CreateObject();
    char *run_id = NULL;
    int rc = runner_start(&run_id, t.rb, params, &opts);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    char *runs = xasprintf("%s/runs", t.dir);
    int wrote = fsio_exists(runs);
    free(runs);
    cJSON_Delete(params);
    free(run_id);
    trail_run_close(&t);
    CHECK(rc == DR_EUSAGE);
    CHECK_CONTAINS(message, "must be 1 to 128 letters");
    CHECK(!wrote);
}

static void cov_faults_an_abort_of_a_done_run_is_refused(void)
{
    trail_run t;
    CHECK(done_run(&t, "abort-done") == 0);
    runner_options opts = { .audit_dir = t.dir, .audit = t.trail };
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    int rc = runner_abort(t.rb, "r1", NULL, 0, &opts);
    int rc2 = runner_resume(t.rb, "r1", NULL, 0, &opts);
    term_set_verbosity(was);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    trail_run_close(&t);
    CHECK(rc == DR_EUSAGE);
    CHECK(rc2 == DR_EUSAGE);
    CHECK_CONTAINS(message, "is already done");
}

/* ---- hostile calls from a runbook's step ---------------------------------------------------- */

static const char probe_runbook[] =
    "local dr = require 'dr'\n"
    "local files = require 'files'\n"
    "local function err(f, ...)\n"
    "  local ok, e = pcall(f, ...)\n"
    "  if ok then return 'no error' end\n"
    "  if type(e) == 'table' then return 'table ' .. tostring(e.message) end\n"
    "  return tostring(e)\n"
    "end\n"
    "return runbook {\n"
    "  name = 'probe', version = '1', summary = 's',\n"
    "  steps = { { name = 'probe', run = function()\n"
    "    local folder = files.run_folder()\n"
    "    dr.log('before\\0after')\n"
    "    return {\n"
    "      negative = err(dr.duration, -1),\n"
    "      soon = err(dr.duration, 'soon'),\n"
    "      far = err(dr.format_time, 1e300),\n"
    "      figure = err(dr.figure, 'f', function() end),\n"
    "      fail = err(dr.fail, { message = 'as a table' }),\n"
    "      confirm = err(dr.confirm, { summary = '' }),\n"
    "      exec_empty = err(dr.exec, {}),\n"
    "      exec_argv = err(dr.exec, { {} }),\n"
    "      exec_env = err(dr.exec, { 'true' }, { env = { ['bad name'] = 'x' } }),\n"
    "      past_run = err(dr.run, 'no-such-run'),\n"
    "      missing = err(files.read_text, folder .. '/none.txt'),\n"
    "      folder = err(files.read_text, folder .. '/sub'),\n"
    "      big = err(files.read_text, folder .. '/big.bin'),\n"
    "      sha = err(files.sha256, folder .. '/none.bin'),\n"
    "      outside = err(files.read_text, '/etc/hostname'),\n"
    "    }\n"
    "  end } },\n"
    "}\n";

static void cov_faults_hostile_calls_from_a_step_are_clean_lua_errors_that_name_the_call(void)
{
    char *cwd = getcwd(NULL, 0);
    CHECK(cwd);
    CHECK(chdir(test_tmpdir()) == 0); /* the run's folder is under the working directory */
    /* the run's folder made beforehand, with a folder and a file too big to read */
    int made = fsio_mkdirs(".drctl/runs/probe-run/sub", 0700) == 0;
    FILE *big = fopen(".drctl/runs/probe-run/big.bin", "w");
    made = made && big && ftruncate(fileno(big), (17 << 20)) == 0;
    if (big)
        fclose(big);
    dr_host host = { 0 };
    sandbox *sb = NULL;
    runbook *rb = NULL;
    char *audit_dir = xasprintf("%s/probe-audit", test_tmpdir());
    host.audit_dir = audit_dir;
    const char *path = test_write_file("runbooks/probe.lua", probe_runbook);
    int loaded = sandbox_new(&sb, 64u << 20) == 0;
    if (loaded) {
        drmod_register(sb, &host);
        filesmod_register(sb, &host);
        loaded = runbook_load(&rb, sb, path) == 0;
    }
    runner_options opts = { .audit_dir = audit_dir, .run_id = "probe-run", .host = &host };
    cJSON *params = cJSON_CreateObject();
    char *run_id = NULL;
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    int rc = loaded ? runner_start(&run_id, rb, params, &opts) : -1;
    term_set_verbosity(was);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    int folder_left = fsio_exists(".drctl/runs/probe-run");
    int back = chdir(cwd) == 0;
    char *state_path = run_file_path(audit_dir, "probe-run", "state.json");
    char *state_text = text_of(state_path);
    cJSON *state = state_text ? cJSON_Parse(state_text) : NULL;
    cJSON *outputs = cJSON_Duplicate(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(state, "steps"), 0),
                                         "outputs"), 1);
    cJSON_Delete(state);
    free(state_text);
    free(state_path);
    cJSON_Delete(params);
    free(run_id);
    runbook_free(rb);
    sandbox_free(sb);
    free(audit_dir);
    free(cwd);
    CHECK(back && made && loaded);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "the probe run ends done", message);
    CHECK(rc == 0);
    CHECK(!folder_left); /* a done run's folder is removed */
    static const struct {
        const char *key, *says;
    } expected[] = {
        { "negative", "must be a positive number of seconds" },
        { "soon", "dr.duration" },
        { "far", "is not a time RFC 3339 can write" },
        { "figure", "dr.figure" },
        { "fail", "table as a table" },
        { "confirm", "dr.confirm needs" },
        { "exec_empty", "dr.exec needs argv" },
        { "exec_argv", "every argv element must be a string" },
        { "exec_env", "env must map NAMES" },
        { "past_run", "no-such-run" },
        { "missing", "none.txt" },
        { "folder", "is not a file" },
        { "big", "more than the 16 MiB" },
        { "sha", "none.bin" },
        { "outside", "/etc/hostname" },
    };
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++) {
        const char *got = json_text(outputs, expected[i].key, NULL);
        if (!got || !strstr(got, expected[i].says)) {
            char detail[600];
            snprintf(detail, sizeof detail, "%s: %s", expected[i].key, got ? got : "(none)");
            test_fail(__FILE__, __LINE__, expected[i].says, detail);
            break;
        }
    }
    cJSON_Delete(outputs);
}

/* Starts runbook_text (named 'tamper') as run r1 in TMP/name; the error in message. */
static int start_quietly(trail_run *t, const char *name, const char *runbook_text, char *message, size_t size)
{
    if (trail_run_open(t, name, runbook_text) != 0) {
        snprintf(message, size, "cannot set up: %s", err_last());
        return -1;
    }
    runner_options opts = { .audit_dir = t->dir, .run_id = "r1", .audit = t->trail };
    cJSON *params = cJSON_CreateObject();
    char *run_id = NULL;
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    int rc = runner_start(&run_id, t->rb, params, &opts);
    term_set_verbosity(was);
    snprintf(message, size, "%s", err_last());
    cJSON_Delete(params);
    free(run_id);
    return rc;
}

static void cov_faults_a_lock_function_that_fails_or_returns_nothing_stops_the_run_before_it_starts(void)
{
    static const char failing[] = "return runbook { name = 'tamper', version = '1', summary = 's',\n"
                                  "  lock = function() error('no target known') end,\n"
                                  "  steps = { { name = 'a', run = function() end } } }\n";
    static const char empty[] = "return runbook { name = 'tamper', version = '1', summary = 's',\n"
                                "  lock = function() return '' end,\n"
                                "  steps = { { name = 'a', run = function() end } } }\n";
    trail_run t;
    char message[1024], message2[1024];
    int rc = start_quietly(&t, "lock-fails", failing, message, sizeof message);
    trail_run_close(&t);
    int rc2 = start_quietly(&t, "lock-empty", empty, message2, sizeof message2);
    trail_run_close(&t);
    CHECK(rc == DR_EUSAGE);
    CHECK_CONTAINS(message, "the lock function failed");
    CHECK_CONTAINS(message, "no target known");
    CHECK(rc2 == DR_EUSAGE);
    CHECK_CONTAINS(message2, "must return a non-empty string");
}

static const char confirming[] = "local dr = require 'dr'\n"
                                 "return runbook { name = 'tamper', version = '1', summary = 's',\n"
                                 "  steps = { { name = 'drop', run = function()\n"
                                 "    dr.confirm { summary = 'drops the branch', challenge = 'main' }\n"
                                 "  end } } }\n";

/* In a child without a controlling terminal (the gate asks on /dev/tty):
 * runs `confirming` as r1 in TMP/confirm-refused; TMP/confirm.log gets
 * "refused: " and the message when the run is refused at its
 * confirmation, else the message alone. The outcome is read from the
 * file, not the exit status, which a leak checker may change. */
static void confirm_without_a_terminal(void)
{
    setsid();
    trail_run t;
    memset(&t, 0, sizeof t);
    dr_host host = { 0 };
    /* the dr module over this host, so that dr.confirm reaches the gate */
    t.trail = new_trail("confirm-refused", &t.dir);
    int rc = t.trail ? sandbox_new(&t.sb, 64u << 20) : -1;
    if (rc == 0) {
        drmod_register(t.sb, &host);
        rc = runbook_load(&t.rb, t.sb, test_write_file("runbooks/tamper.lua", confirming));
    }
    runner_options opts = { .audit_dir = t.dir, .run_id = "r1", .audit = t.trail, .host = &host };
    cJSON *params = cJSON_CreateObject();
    char *run_id = NULL;
    term_set_verbosity(TERM_QUIET);
    if (rc == 0)
        rc = runner_start(&run_id, t.rb, params, &opts);
    char *log = xasprintf("%s/confirm.log", test_tmpdir());
    int refused = rc == DR_EREFUSED && strstr(err_last(), "was refused at a confirmation");
    char *outcome = xasprintf("%s%s", refused ? "refused: " : "", err_last());
    write_text(log, outcome);
    free(outcome);
    free(log);
    cJSON_Delete(params);
    free(run_id);
    trail_run_close(&t);
    exit(refused ? 0 : 1);
}

static void cov_faults_a_confirmation_nobody_approves_pauses_the_run_and_its_step(void)
{
    (void)test_tmpdir(); /* made before the child, who shares it */
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        confirm_without_a_terminal();
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    char *log = xasprintf("%s/confirm.log", test_tmpdir());
    char *message = text_of(log);
    char *state_path = run_path_in(test_tmpdir(), "confirm-refused", "r1", "state.json");
    char *state = text_of(state_path);
    cJSON *parsed = state ? cJSON_Parse(state) : NULL;
    const char *run_status_text = json_text(parsed, "status", "?");
    const char *drop_state = json_text(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(parsed, "steps"), 0),
                                       "state", "?");
    int paused = !strcmp(run_status_text, "paused") && !strcmp(drop_state, "paused");
    cJSON_Delete(parsed);
    free(state);
    free(state_path);
    free(log);
    int refused = WIFEXITED(status) && message && strncmp(message, "refused: ", 9) == 0;
    if (!refused)
        test_fail(__FILE__, __LINE__, "the confirmation is refused", message);
    free(message);
    CHECK(refused);
    CHECK(paused);
}

static void cov_faults_a_resume_of_a_run_that_is_not_there_or_a_trail_that_is_a_file_is_refused(void)
{
    trail_run t;
    CHECK(trail_run_open(&t, "no-run", two_steps) == 0);
    int rc = resume_quietly(&t);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    const char *file = test_write_file("audit-file", "x\n");
    runner_options opts = { .audit_dir = file, .run_id = "r1" };
    cJSON *params = cJSON_CreateObject();
    char *run_id = NULL;
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    int rc2 = runner_start(&run_id, t.rb, params, &opts);
    term_set_verbosity(was);
    char message2[512];
    snprintf(message2, sizeof message2, "%s", err_last());
    cJSON_Delete(params);
    free(run_id);
    trail_run_close(&t);
    CHECK(rc == DR_EUSAGE);
    CHECK_CONTAINS(message, "there is no run r1");
    CHECK(rc2 == DR_EUSAGE);
    CHECK_CONTAINS(message2, "cannot be used");
}

/* Moves the branch back to its commit's parent, the working tree kept. */
static int branch_back_one(const char *dir)
{
    git_repository *repo = NULL;
    git_commit *head = NULL;
    git_reference *ref = NULL, *moved = NULL;
    int rc = git_repository_open(&repo, dir);
    if (rc == 0)
        rc = git_repository_head(&ref, repo);
    if (rc == 0)
        rc = git_commit_lookup(&head, repo, git_reference_target(ref));
    if (rc == 0)
        rc = git_reference_set_target(&moved, ref, git_commit_parent_id(head, 0), "test: a commit lost");
    git_reference_free(moved);
    git_reference_free(ref);
    git_commit_free(head);
    git_repository_free(repo);
    return rc;
}

/* A crash after the run's last line but before its commit leaves the end
 * unrecorded: a resume makes state.json and report.md again and commits
 * them, with nothing left to run. */
static void cov_faults_a_resume_of_a_done_run_whose_end_was_not_committed_commits_it(void)
{
    trail_run t;
    CHECK(done_run(&t, "settle-end") == 0);
    char before[GIT_OID_HEXSZ + 1], after[GIT_OID_HEXSZ + 1];
    CHECK(branch_back_one(t.dir) == 0); /* the run-done commit never made */
    head_id(before, t.dir);
    char *report = replace_file(&t, "report.md", "(cut short by a crash)\n");
    char *state = replace_file(&t, "state.json", "{\"status\":\"running\"}\n");
    int rc = resume_quietly(&t);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    head_id(after, t.dir);
    char *report_now = run_file(&t, "report.md");
    char *state_now = run_file(&t, "state.json");
    int restored = report && report_now && strcmp(report, report_now) == 0 && state_now && strstr(state_now, "\"done\"");
    int uncommitted = audit_run_uncommitted(t.trail, "r1");
    free(report_now);
    free(state_now);
    free(report);
    free(state);
    long problems = 0;
    char *found = verify_text(t.dir, &problems);
    trail_run_close(&t);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "the resume settles the run", message);
    CHECK(rc == 0);
    CHECK(strcmp(before, after) != 0);
    CHECK(restored);
    CHECK(uncommitted == 0);
    if (problems != 0)
        test_fail(__FILE__, __LINE__, "verify finds nothing wrong", found);
    free(found);
}

/* ---- the journal and the checkpoint alone ------------------------------------------------- */

static void cov_faults_a_journal_that_exists_is_not_created_again_and_a_missing_one_cannot_be_read(void)
{
    char *run_dir = xasprintf("%s/jr/r1", test_tmpdir());
    CHECK(fsio_mkdirs(run_dir, 0755) == 0);
    journal *j = NULL;
    CHECK(journal_create(&j, run_dir) == 0);
    journal_free(j);
    j = NULL;
    int rc = journal_create(&j, run_dir);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    char *missing = xasprintf("%s/none.jsonl", run_dir);
    cJSON *events = NULL;
    int rc2 = journal_read(&events, NULL, missing);
    free(missing);
    free(run_dir);
    CHECK(rc == DR_EFAIL && !j);
    CHECK_CONTAINS(message, "cannot create");
    CHECK_CONTAINS(message, "File exists");
    CHECK(rc2 == DR_EUSAGE && !events);
}

static void cov_faults_a_journal_broken_twice_is_refused_at_its_first_break(void)
{
    char *run_dir = xasprintf("%s/jb/r1", test_tmpdir());
    CHECK(fsio_mkdirs(run_dir, 0755) == 0);
    journal *j = NULL;
    CHECK(journal_create(&j, run_dir) == 0);
    cJSON *steps = cJSON_CreateObject();
    cJSON_AddItemToObject(steps, "steps", cJSON_CreateStringArray((const char *[]){ "a" }, 1));
    CHECK(journal_append(j, "run-started", NULL, steps) == 0);
    for (int i = 0; i < 3; i++) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "message", "line");
        CHECK(journal_append(j, "log", "a", data) == 0);
    }
    journal_free(j);
    char *path = xasprintf("%s/journal.jsonl", run_dir);
    char *text = text_of(path);
    CHECK(text);
    for (char *p = text; (p = strstr(p, "\"line\""));) /* every log line edited */
        p[1] = 'L', p++;
    CHECK(fsio_write_durable(path, text, strlen(text)) == 0);
    cJSON *events = NULL;
    long repaired = 0;
    j = NULL;
    int rc = journal_open(&j, &events, &repaired, run_dir);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    char *after = text_of(path);
    int unchanged = after && strcmp(after, text) == 0;
    free(after);
    free(text);
    free(path);
    free(run_dir);
    CHECK(rc == DR_EUSAGE && !j && !events);
    CHECK_CONTAINS(message, "line 3:");
    CHECK_CONTAINS(message, "nothing was changed");
    CHECK(unchanged);
}

static void cov_faults_a_rebase_over_another_base_or_of_a_line_that_is_no_event_is_refused(void)
{
    char *out = NULL;
    int rc = journal_rebase(&out, "r1", "", "base\n", "other\n");
    char message[256];
    snprintf(message, sizeof message, "%s", err_last());
    int rc2 = journal_rebase(&out, "r1", "", "base\n", "base\nnot an event\n");
    char message2[256];
    snprintf(message2, sizeof message2, "%s", err_last());
    CHECK(rc == DR_EFAIL && rc2 == DR_EFAIL && !out);
    CHECK_CONTAINS(message, "is not the one it was appended to");
    CHECK_CONTAINS(message2, "a local journal line is not an event");
}

static void cov_faults_a_checkpoint_names_an_event_without_a_kind_and_keeps_a_paused_step(void)
{
    cJSON *events = cJSON_Parse("[{\"seq\":1,\"time\":\"t1\",\"kind\":\"run-started\",\"data\":{\"steps\":[\"a\"]}},"
                                "{\"seq\":2,\"time\":\"t2\",\"kind\":\"step-paused\",\"step\":\"a\"},"
                                "{\"seq\":3,\"time\":\"t3\",\"kind\":\"run-paused\",\"data\":{\"reason\":\"r\"}}]");
    checkpoint *cp = NULL;
    CHECK(checkpoint_replay(&cp, "r1", events) == 0);
    cJSON_Delete(events);
    step_state state = cp->steps[0].state;
    run_status status = cp->status;
    cJSON *kindless = cJSON_Parse("{\"seq\":4}");
    int rc = checkpoint_apply(cp, kindless);
    char message[256];
    snprintf(message, sizeof message, "%s", err_last());
    cJSON_Delete(kindless);
    checkpoint_free(cp);
    run_status named = RUN_RUNNING;
    CHECK(state == STEP_PAUSED && status == RUN_PAUSED);
    CHECK(rc == DR_EUSAGE);
    CHECK_CONTAINS(message, "an event without a kind");
    CHECK(checkpoint_run_status_from_name(&named, "paused") == 0 && named == RUN_PAUSED);
    CHECK(checkpoint_run_status_from_name(&named, "sleeping") == -1);
}

/* ---- the team's settings ------------------------------------------------------------------- */

static void cov_faults_config_of_the_wrong_types_or_values_is_refused_naming_the_key(void)
{
    static const struct {
        const char *text, *says;
    } cases[] = {
        { "{\"notify.webhook\":[5]}", "every entry of the list must be a string" },
        { "{\"notify.webhook\":\"https://x.example/\"}", "expected a list of URLs" },
        { "{\"contact\":\"a\",\"contact\":\"b\"}", "contact is given twice" },
        { "{\"notify.webhook\":[\"https://hooks.slack.com/services/T/B/X\"]}", "its path is its token" },
        { "{\"notify.webhook\":[\"https://x.example/a b\"]}", "without spaces or quotes" },
        { "{\"notify.timeout\":\"90s\"}", "from 1s to 60s" },
        { "{\"contact\":\"\"}", "a text of 1 to 500 characters" },
        { "{\"nope\":\"x\"}", "'nope' is not a setting" },
        { "[1]", "is not a JSON object of settings" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        config *c = NULL;
        int rc = config_parse(&c, cases[i].text, "config.json");
        CHECK(rc == DR_EUSAGE && !c);
        CHECK_CONTAINS(err_last(), cases[i].says);
        CHECK_CONTAINS(err_last(), "config.json");
    }
    char *long_url = xasprintf("https://x.example/%0*d", 2100, 0);
    int rc = config_validate("notify.webhook", long_url);
    free(long_url);
    CHECK(rc == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "notify.webhook: 'https://x.example/");
    /* the value is quoted cut short, so that the reason still shows */
    CHECK_CONTAINS(err_last(), "... (cut) is not valid: expected ");
}

static void cov_faults_config_changes_that_change_nothing_or_name_no_entry_say_so(void)
{
    config *c = NULL;
    CHECK(config_parse(&c, "{\"contact\":\"ops\",\"notify.webhook\":[\"https://a.example/h\"]}", "config.json") == 0);
    int changed = -1;
    int same = config_set(c, "contact", "ops", &changed);
    int same_changed = changed;
    int unknown = config_unset(c, "nope", NULL, &changed);
    int no_entry = config_unset(c, "notify.webhook", "https://b.example/h", &changed);
    int last = config_unset(c, "notify.webhook", "https://a.example/h", &changed);
    int last_changed = changed;
    int still = config_is_set(c, "notify.webhook");
    config_free(c);
    CHECK(same == 0 && same_changed == 0);
    CHECK(unknown == DR_EUSAGE);
    CHECK(no_entry == DR_EUSAGE);
    CHECK(last == 0 && last_changed == 1 && !still);
}

static void cov_faults_a_webhook_from_an_environment_variable_that_is_no_url_is_refused(void)
{
    setenv("COV_FAULTS_HOOK", "ftp://x.example/", 1);
    char *url = config_resolve_url("slack:env:COV_FAULTS_HOOK");
    char message[256];
    snprintf(message, sizeof message, "%s", err_last());
    unsetenv("COV_FAULTS_HOOK");
    CHECK(!url);
    CHECK_CONTAINS(message, "does not hold an http(s) URL");
}

static void cov_faults_a_policy_in_a_config_that_is_not_json_or_not_readable_stops_the_run(void)
{
    char *dir = xasprintf("%s/policy", test_tmpdir());
    char *file = xasprintf("%s/config.json", dir);
    CHECK(write_text(file, "{\n  \"approvals\": [\n  oops\n}\n") == 0);
    int rc = config_check_policy(dir);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    unlink(file);
    CHECK(fsio_mkdirs(file, 0755) == 0); /* a folder: it cannot be read */
    int rc2 = config_check_policy(dir);
    char message2[512];
    snprintf(message2, sizeof message2, "%s", err_last());
    config *c = NULL;
    int rc3 = config_load(&c, dir);
    free(file);
    free(dir);
    CHECK(rc == DR_EUSAGE);
    CHECK_CONTAINS(message, "config.json:3: not JSON");
    CHECK(rc2 == DR_EUSAGE);
    CHECK_CONTAINS(message2, "cannot read");
    CHECK(rc3 == DR_EUSAGE && !c);
}

static int config_command(const char *dir, char **args, size_t count)
{
    cli c = { .command = "config", .audit_dir = dir, .args = args, .arg_count = count };
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    int rc = cmd_config(&c);
    term_set_verbosity(was);
    return rc;
}

static void cov_faults_the_config_command_refuses_an_unknown_subcommand_and_records_no_empty_change(void)
{
    char *dir = xasprintf("%s/cfg-cmd", test_tmpdir());
    CHECK(fsio_mkdirs(dir, 0755) == 0);
    char *set[] = { "set", "contact", "ops team" };
    char *show[] = { "show" };
    char *bad[] = { "frobnicate" };
    CHECK(config_command(dir, set, 3) == 0);
    char first[GIT_OID_HEXSZ + 1], second[GIT_OID_HEXSZ + 1];
    head_id(first, dir);
    int again = config_command(dir, set, 3);
    head_id(second, dir);
    int shown = config_command(dir, show, 1);
    int unknown = config_command(dir, bad, 1);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    free(dir);
    CHECK(first[0]);
    CHECK(again == 0);
    CHECK_STR(second, first);
    CHECK(shown == 0);
    CHECK(unknown == DR_EUSAGE);
    CHECK_CONTAINS(message, "frobnicate");
}

#ifdef DRCTL_TEST_HOOKS

#include "faultinject.h"

/* ---- I/O faults ---------------------------------------------------------------------------- */

/* drctl config set with its nth durable I/O call failing: refused with
 * the cause, the trail as it was. With one transient error the old
 * config.json is put back; on a disk that stays full, putting it back may
 * fail too (restore_config is best effort), so the file is old or new. */
static void config_set_at_each_fault(const char *name, int err, int once, long *points, long *left_new)
{
    char *dir = xasprintf("%s/%s", test_tmpdir(), name);
    char *file = xasprintf("%s/config.json", dir);
    CHECK(fsio_mkdirs(dir, 0755) == 0);
    char *first[] = { "set", "contact", "first" };
    CHECK(config_command(dir, first, 3) == 0);
    char *old = text_of(file);
    CHECK(old);
    char *second[] = { "set", "contact", "second" };
    for (long n = 1; n < 40; n++) {
        char before[GIT_OID_HEXSZ + 1], after[GIT_OID_HEXSZ + 1];
        head_id(before, dir);
        once ? testhook_set_io_fault_once(n, err) : testhook_set_io_fault(n, err);
        int rc = config_command(dir, second, 3);
        long calls = testhook_io_calls();
        testhook_set_io_fault(0, 0);
        head_id(after, dir);
        char *now = text_of(file);
        int kept = now && strcmp(now, old) == 0, new = now && strstr(now, "second");
        free(now);
        if (rc == 0 && calls < n)
            break;
        (*points)++;
        CHECK(rc == DR_EFAIL);
        CHECK_CONTAINS(err_last(), strerror(err));
        CHECK_STR(after, before);
        CHECK(kept || (!once && new));
        if (!kept) { /* left by the failed restore: put back by hand, as the message of the next command says */
            (*left_new)++;
            CHECK(fsio_write_durable(file, old, strlen(old)) == 0);
        }
    }
    char *now = text_of(file);
    int updated = now && strstr(now, "second");
    free(now);
    free(old);
    free(file);
    free(dir);
    CHECK(updated);
}

static void fault_injection_cov_faults_a_config_set_that_meets_an_io_error_keeps_the_trail_as_it_was(void)
{
    long points = 0, left_new = 0;
    config_set_at_each_fault("cfg-eio-once", EIO, 1, &points, &left_new);
    CHECK(left_new == 0);
    config_set_at_each_fault("cfg-enospc", ENOSPC, 0, &points, &left_new);
    printf("    drctl config set (EIO once, ENOSPC): %ld fault points, %ld left the new file uncommitted\n", points,
           left_new);
    CHECK(points >= 2);
}

/* One transient EIO at the nth durable I/O call of a run with a trail:
 * the run fails naming the cause, resumes (or starts again) to done, and
 * verify then finds nothing wrong. */
static void fault_injection_cov_faults_one_transient_io_error_in_a_run_leaves_it_resumable_and_its_trail_sound(void)
{
    long points = 0;
    for (long n = 1; n < 200; n++) {
        trail_run t;
        char name[64];
        snprintf(name, sizeof name, "eio-%ld", n);
        CHECK(trail_run_open(&t, name, two_steps) == 0);
        runner_options opts = { .audit_dir = t.dir, .run_id = "r1", .audit = t.trail };
        cJSON *params = cJSON_CreateObject();
        char *run_id = NULL;
        int was = term_verbosity();
        term_set_verbosity(TERM_QUIET);
        testhook_set_io_fault_once(n, EIO);
        int rc = runner_start(&run_id, t.rb, params, &opts);
        long calls = testhook_io_calls();
        testhook_set_io_fault(0, 0);
        char message[1024];
        snprintf(message, sizeof message, "%s", err_last());
        int next = rc;
        char *jpath = run_file_path(t.dir, "r1", "journal.jsonl");
        char *jtext = rc ? text_of(jpath) : NULL;
        int begun = jtext && strchr(jtext, '\n');
        free(jtext);
        free(jpath);
        if (rc != 0 && begun) {
            runner_options again = { .audit_dir = t.dir, .audit = t.trail };
            char *approve[] = { "a", "b" };
            next = runner_resume(t.rb, "r1", NULL, 0, &again);
            if (next == DR_EREFUSED) {
                again.approvals = approve;
                again.approval_count = 2;
                next = runner_resume(t.rb, "r1", NULL, 0, &again);
            }
        } else if (rc != 0) {
            opts.run_id = "r2";
            next = runner_start(&run_id, t.rb, params, &opts);
        }
        term_set_verbosity(was);
        char resume_message[1024];
        snprintf(resume_message, sizeof resume_message, "%s", err_last());
        cJSON_Delete(params);
        free(run_id);
        long problems = 0;
        char *found = verify_text(t.dir, &problems);
        trail_run_close(&t);
        int done = rc == 0 && calls < n;
        if (!done) {
            points++;
            if (rc == 0)
                test_fail(__FILE__, __LINE__, "a run that met an I/O error fails", message);
            else if (!strstr(message, "Input/output error"))
                test_fail(__FILE__, __LINE__, "the error names the cause", message);
            else if (next != 0)
                test_fail(__FILE__, __LINE__, "the run resumes to done", resume_message);
            else if (problems != 0)
                test_fail(__FILE__, __LINE__, "verify finds nothing wrong", found);
        }
        free(found);
        if (test_failed_now()) {
            printf("    at I/O call %ld\n", n);
            return;
        }
        if (done)
            break;
    }
    printf("    runner_start with one EIO: %ld fault points\n", points);
    CHECK(points > 5);
}

/* A resume of a failed run whose nth durable I/O call and every later one
 * fail (a full disk): refused naming the cause, then resumed with room
 * again, it ends done, its trail sound. The failing step is made to pass
 * by a marker file the runbook reads. */
static const char fails_until_fixed[] =
    "local files = require 'files'\n"
    "return runbook {\n"
    "  name = 'tamper', version = '1', summary = 's',\n"
    "  params = { fixed = { type = 'path', required = true, doc = 'a file that says the cause is fixed' } },\n"
    "  steps = {\n"
    "    { name = 'a', run = function() return { id = 1 } end },\n"
    "    { name = 'b', idempotent = true, run = function(ctx)\n"
    "        if files.read_text(ctx.params.fixed) ~= 'fixed\\n' then error('not fixed yet') end\n"
    "        return { n = 2 }\n"
    "      end },\n"
    "  },\n"
    "}\n";

static int resume_with_full_disk_at(long n, long *calls, char *problem, size_t size)
{
    problem[0] = '\0';
    char name[64];
    snprintf(name, sizeof name, "resume-disk-%ld", n);
    char *marker_name = xasprintf("%s-fixed.txt", name);
    char *marker = xstrdup(test_write_file(marker_name, "broken\n"));
    free(marker_name);
    trail_run t;
    memset(&t, 0, sizeof t);
    dr_host host = { 0 };
    t.trail = new_trail(name, &t.dir);
    int rc = t.trail ? sandbox_new(&t.sb, 64u << 20) : -1;
    if (rc == 0) {
        filesmod_register(t.sb, &host);
        rc = runbook_load(&t.rb, t.sb, test_write_file("runbooks/tamper.lua", fails_until_fixed));
    }
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "fixed", marker);
    runner_options opts = { .audit_dir = t.dir, .run_id = "r1", .audit = t.trail, .host = &host };
    char *run_id = NULL;
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    if (rc == 0 && runner_start(&run_id, t.rb, params, &opts) != DR_EFAIL)
        snprintf(problem, size, "the first run does not fail at step b: %s", err_last());
    write_text(marker, "fixed\n");
    runner_options again = { .audit_dir = t.dir, .audit = t.trail, .host = &host };
    if (rc == 0 && !problem[0]) {
        testhook_set_io_fault(n, ENOSPC);
        int resumed = runner_resume(t.rb, "r1", NULL, 0, &again);
        *calls = testhook_io_calls();
        testhook_set_io_fault(0, 0);
        int hit = n > 0 && *calls >= n;
        if (hit && resumed == 0)
            snprintf(problem, size, "the resume met a full disk and succeeded");
        else if (hit && !strstr(err_last(), "No space left on device"))
            snprintf(problem, size, "the error does not name the full disk: %s", err_last());
        else if (!hit && resumed != 0)
            snprintf(problem, size, "the resume failed: %s", err_last());
        else if (hit && runner_resume(t.rb, "r1", NULL, 0, &again) != 0)
            snprintf(problem, size, "the resume with room again failed: %s", err_last());
    }
    term_set_verbosity(was);
    if (rc != 0)
        snprintf(problem, size, "cannot set up: %s", err_last());
    char *state = problem[0] ? NULL : run_file(&t, "state.json");
    cJSON *parsed = state ? cJSON_Parse(state) : NULL;
    if (!problem[0] && strcmp(json_text(parsed, "status", "?"), "done") != 0)
        snprintf(problem, size, "the run ends %s", json_text(parsed, "status", "?"));
    cJSON_Delete(parsed);
    free(state);
    long problems = 0;
    char *found = problem[0] ? NULL : verify_text(t.dir, &problems);
    if (found && problems != 0)
        snprintf(problem, size, "audit verify: %s", found);
    free(found);
    cJSON_Delete(params);
    free(run_id);
    free(marker);
    trail_run_close(&t);
    return problem[0] ? -1 : 0;
}

static void fault_injection_cov_faults_a_resume_that_fills_the_disk_resumes_again_to_done(void)
{
    long total = 0, calls = 0;
    char problem[1200];
    if (resume_with_full_disk_at(0, &total, problem, sizeof problem) != 0)
        test_fail(__FILE__, __LINE__, "the resume without a fault", problem);
    CHECK(!problem[0] && total > 0);
    for (long n = 1; n <= total; n++) {
        if (resume_with_full_disk_at(n, &calls, problem, sizeof problem) != 0) {
            char where[1300];
            snprintf(where, sizeof where, "full disk at durable write %ld of %ld: %s", n, total, problem);
            test_fail(__FILE__, __LINE__, "a resume on a full disk resumes again to done", where);
            return;
        }
    }
    printf("    runner_resume on a full disk: %ld fault points\n", total);
}

/* audit verify over a trail with a tampered run, cJSON's nth allocation
 * failing: a clean error, or the problem found; never a crash.
 *
 * A verdict without the problem would let a tampered trail pass (once,
 * a problem cJSON could not allocate was dropped, and verify said ok). */
enum { VERIFY_UNREPORTED = 4 };

static int verify_with_cjson_fault(void *arg)
{
    long nth = *(long *)arg;
    char *dir = xasprintf("%s/verify-oom", test_tmpdir());
    verify_result result = { 0 };
    term_set_verbosity(TERM_QUIET);
    err_clear();
    fi_cjson_fail_at(nth);
    int rc = verify_audit(&result, dir, NULL);
    long calls = fi_cjson_calls();
    fi_cjson_off();
    int found = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, result.problems)
        found |= strstr(json_text(p, "problem", ""), "names another run") != NULL;
    cJSON_Delete(result.problems);
    free(dir);
    if (rc != 0)
        return err_last()[0] ? 1 : 3;
    if (!found)
        return VERIFY_UNREPORTED;
    return calls < nth ? 0 : 1;
}

static void fault_injection_cov_faults_cjson_allocation_failures_in_verify_are_never_a_crash(void)
{
    trail_run t;
    CHECK(done_run(&t, "verify-oom") == 0);
    int rc = tamper(&t, "run.json", "{\"run_id\":\"someone-else\"}\n", "r1: run done");
    trail_run_close(&t);
    CHECK(rc == 0);
    long points = 0, unreported = 0, first_unreported = 0;
    char how[128];
    for (long nth = 1; nth < 5000; nth++) {
        int end = fi_in_child(verify_with_cjson_fault, &nth, how, sizeof how);
        if (end == FI_CHILD_OK) {
            printf("    verify_audit with cJSON allocations failing: %ld fault points, %ld verdicts without the "
                   "problem (the first at allocation %ld)\n", points, unreported, first_unreported);
            CHECK(points > 3);
            CHECK(unreported == 0);
            return;
        }
        points++;
        if (end == FI_CHILD_DIED && strcmp(how, "exit 4") == 0) {
            if (!unreported++)
                first_unreported = nth;
            continue;
        }
        if (end == FI_CHILD_DIED) {
            char detail[256];
            snprintf(detail, sizeof detail, "cJSON allocation %ld failing: %s", nth, how);
            test_fail(__FILE__, __LINE__, "a failed allocation in verify is a clean error", detail);
            return;
        }
    }
    test_fail(__FILE__, __LINE__, "verify ends within 5000 allocations", NULL);
}

#else

static void fault_injection_cov_faults_need_the_test_build(void)
{
    printf("    skipped: fault injection needs the test build (make faults: bin-hooks/unit-tests)\n");
}

#endif

TEST_SUITE(cov_faults)
{
    REGISTER(cov_faults_a_bare_repository_is_refused_as_an_audit_trail);
    REGISTER(cov_faults_an_audit_folder_under_a_file_cannot_be_created_and_says_so);
    REGISTER(cov_faults_a_repository_whose_drctl_folder_is_a_file_cannot_be_used);
    REGISTER(cov_faults_a_missing_trail_is_refused_when_it_may_not_be_made);
    REGISTER(cov_faults_a_commit_whose_lock_cannot_be_opened_names_the_lock_and_commits_nothing);
    REGISTER(cov_faults_an_operator_without_an_email_commits_as_login_at_host);
    REGISTER(cov_faults_a_commit_over_a_head_that_names_no_commit_fails_cleanly);
    REGISTER(cov_faults_a_run_file_that_is_a_folder_cannot_be_stored_and_nothing_is_committed);
    REGISTER(cov_faults_a_run_file_that_is_a_symlink_is_not_followed_and_nothing_is_committed);
    REGISTER(cov_faults_a_notification_outside_its_folder_is_refused);
    REGISTER(cov_faults_an_unreadable_index_fails_a_config_commit_and_a_settle_naming_the_index);
    REGISTER(cov_faults_an_index_that_cannot_be_written_fails_a_config_commit_and_a_settle);
    REGISTER(cov_faults_a_stray_file_in_runs_and_a_deleted_run_file_are_refused_by_name);
    REGISTER(cov_faults_a_local_commit_that_is_not_drctls_is_not_replayed_over_origin);
    REGISTER(cov_faults_a_trail_and_an_origin_of_unrelated_histories_are_not_merged);
    REGISTER(cov_faults_a_trail_whose_pushes_fail_keeps_its_commits_and_stays_ahead);
    REGISTER(cov_faults_the_target_lock_on_origin_is_refused_to_another_run_and_released_only_by_its_holder);
    REGISTER(cov_faults_the_target_lock_fails_cleanly_on_an_unreachable_origin_and_a_blocked_local_lock);
    REGISTER(cov_faults_verify_of_a_sound_run_finds_nothing_then_names_a_run_json_of_another_run);
    REGISTER(cov_faults_verify_names_a_state_json_that_is_not_json_or_lists_other_steps);
    REGISTER(cov_faults_verify_names_a_journal_with_a_bad_time_an_earlier_time_a_torn_line_and_a_broken_chain);
    REGISTER(cov_faults_verify_names_a_journal_that_is_not_json_or_cannot_be_replayed);
    REGISTER(cov_faults_verify_names_a_commit_that_is_not_drctls_and_one_without_a_journal);
    REGISTER(cov_faults_verify_names_a_committed_config_of_the_wrong_type_and_a_record_that_is_not_json);
    REGISTER(cov_faults_verify_marks_a_list_of_uncommitted_runs_cut_short);
    REGISTER(cov_faults_verify_names_hand_made_settings_and_notification_commits_of_the_wrong_shape);
    REGISTER(cov_faults_verify_of_a_folder_that_is_no_repository_is_an_error_and_an_empty_trail_is_clean);
    REGISTER(cov_faults_a_resume_over_a_journal_whose_chain_breaks_changes_nothing);
    REGISTER(cov_faults_a_resume_of_a_run_made_by_another_runbook_or_with_a_corrupt_run_json_is_refused);
    REGISTER(cov_faults_a_run_id_that_is_not_valid_is_refused_before_anything_is_written);
    REGISTER(cov_faults_an_abort_of_a_done_run_is_refused);
    REGISTER(cov_faults_hostile_calls_from_a_step_are_clean_lua_errors_that_name_the_call);
    REGISTER(cov_faults_a_lock_function_that_fails_or_returns_nothing_stops_the_run_before_it_starts);
    REGISTER(cov_faults_a_confirmation_nobody_approves_pauses_the_run_and_its_step);
    REGISTER(cov_faults_a_resume_of_a_run_that_is_not_there_or_a_trail_that_is_a_file_is_refused);
    REGISTER(cov_faults_a_resume_of_a_done_run_whose_end_was_not_committed_commits_it);
    REGISTER(cov_faults_a_journal_that_exists_is_not_created_again_and_a_missing_one_cannot_be_read);
    REGISTER(cov_faults_a_journal_broken_twice_is_refused_at_its_first_break);
    REGISTER(cov_faults_a_rebase_over_another_base_or_of_a_line_that_is_no_event_is_refused);
    REGISTER(cov_faults_a_checkpoint_names_an_event_without_a_kind_and_keeps_a_paused_step);
    REGISTER(cov_faults_config_of_the_wrong_types_or_values_is_refused_naming_the_key);
    REGISTER(cov_faults_config_changes_that_change_nothing_or_name_no_entry_say_so);
    REGISTER(cov_faults_a_webhook_from_an_environment_variable_that_is_no_url_is_refused);
    REGISTER(cov_faults_a_policy_in_a_config_that_is_not_json_or_not_readable_stops_the_run);
    REGISTER(cov_faults_the_config_command_refuses_an_unknown_subcommand_and_records_no_empty_change);
#ifdef DRCTL_TEST_HOOKS
    REGISTER(fault_injection_cov_faults_a_config_set_that_meets_an_io_error_keeps_the_trail_as_it_was);
    REGISTER(fault_injection_cov_faults_one_transient_io_error_in_a_run_leaves_it_resumable_and_its_trail_sound);
    REGISTER(fault_injection_cov_faults_a_resume_that_fills_the_disk_resumes_again_to_done);
    REGISTER(fault_injection_cov_faults_cjson_allocation_failures_in_verify_are_never_a_crash);
#else
    REGISTER(fault_injection_cov_faults_need_the_test_build);
#endif
}
