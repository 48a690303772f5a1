/* audit: the audit trail, a git repository written with libgit2
 * (the audit trail contract, docs/design.md).
 *
 * Each run lives in runs/<run-id>/ and every transition is one commit that
 * touches only that folder, authored by the operator, with the message
 * "<run-id>: <step> <state>". Commits are built from trees directly (no
 * index rewrite per commit, which would cost O(all runs)); the index is
 * brought up to date once per command so `git status` stays clean. What
 * concerns the remote (fetch, replay, push) is in audit_remote.h. */
#ifndef DRCTL_AUDIT_H
#define DRCTL_AUDIT_H

#include "buf.h"

typedef struct audit audit;

/* Opens the repository at dir; with create, makes it (git init, branch main)
 * when dir is missing or empty. A non-empty folder that is not a repository
 * is DR_EUSAGE. */
int audit_open(audit **out, const char *dir, int create);
void audit_free(audit *a);

const char *audit_dir(const audit *a);
/* The fingerprint of the key signing this trail's commits (signing.h), or
 * NULL when they are not signed. */
const char *audit_signing_key(const audit *a);
/* Where lock files live: inside .git, so they are never committed. */
const char *audit_locks_dir(const audit *a);
int audit_has_remote(const audit *a);

/* Refuses (DR_EUSAGE, naming the file) when runs/ holds changes that drctl
 * did not make. What a crash leaves (a journal that grew past the last
 * commit, with the files drctl writes after it) is drctl's and allowed. */
int audit_check_clean(audit *a);

/* The same, and the ids of the runs whose folder differs from the last
 * commit into *dirty (all of them when the check passes). */
int audit_check_clean_listing(audit *a, str_list *dirty);

/* Commits the current files of runs/<run_id>/ as operator. */
int audit_commit_run(audit *a, const char *run_id, const char *message, const char *operator);

/* The team's settings file at the repository's root (config.h). */
#define AUDIT_CONFIG_FILE "config.json"

/* 1 when a run's files differ from the last commit (what a crash between
 * the journal's last line and its commit leaves), 0 when they are all
 * committed, < 0 when the repository cannot be read. */
int audit_run_uncommitted(audit *a, const char *run_id);

/* Commits the current config.json as operator (one commit per change,
 * message "config: ..."), and brings the index up to date for it. */
int audit_commit_config(audit *a, const char *message, const char *operator);

/* Refuses (DR_EUSAGE, naming the file) when config.json differs from the
 * last commit: settings change only through drctl config, validated. */
int audit_check_config_clean(audit *a);

/* Where notifications sent outside a run are recorded (notify.h). */
#define AUDIT_NOTIFICATIONS_DIR "notifications"

/* Commits one new file, relpath under notifications/, as operator (one
 * commit per notification, message "notify: ..."), and brings the index
 * up to date for it. */
int audit_commit_notification(audit *a, const char *relpath, const char *message, const char *operator);

/* End of a command: the index gets the run's files, pending commits are
 * pushed (best effort, reported). */
int audit_settle(audit *a, const char *run_id);

#endif
