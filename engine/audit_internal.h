/* audit_internal: what the two halves of the audit trail share, the local
 * repository (audit.c) and its origin (audit_remote.c). Only those two
 * files include it; everyone else sees the opaque audit of audit.h. */
#ifndef DRCTL_AUDIT_INTERNAL_H
#define DRCTL_AUDIT_INTERNAL_H

#include "audit.h"

#include <git2.h>

struct audit {
    git_repository *repo;
    char *dir;
    char *locks_dir;
    char *branch;           /* the branch HEAD names, e.g. "main" */
    int has_remote;
    int push_broken;        /* a push failed in this process: retry at settle only */
    int pending;            /* commits made since the last successful push */
    int lock_fd;            /* serialises commits of processes sharing this clone */
    struct signer *signer;  /* signs every commit (signing.h), or NULL */
    char *folder_run;       /* the run whose folder was looked up last, */
    char *folder;           /* and its folder (relative): found once per run */
    struct stored_file *stored; /* the files committed last, to skip the ones unchanged since */
    size_t stored_count;
};

/* Creates a commit, signed when the trail has a signer; with update_head,
 * the branch HEAD names moves to it. */
int audit_create_commit(git_oid *out, audit *a, int update_head, const git_signature *author,
                        const git_signature *committer, const char *message, const git_tree *tree,
                        size_t parent_count, const git_commit **parents);

/* Sets the message "what: <libgit2's last error>" and returns code. */
int audit_git_fail(int code, const char *what);

/* The lock that serialises the processes sharing this clone: every change
 * of the branch, local or from origin, is made holding it. */
int audit_lock(audit *a);
void audit_unlock(audit *a);

/* HEAD's commit in *out, or NULL when the branch is unborn. */
int audit_head_commit(git_commit **out, git_repository *repo);

#endif
