/* verifysig: the audit trail's commit signatures checked against git's
 * allowed-signers file (the audit trail contract, docs/design.md), with
 * the verdicts `git verify-commit` gives with gpg.ssh.allowedSignersFile:
 * each commit must carry an SSH signature (gpgsig, namespace "git") that
 * matches it, made by a key the file allows for the commit's author e-mail
 * at the commit's time. */
#ifndef DRCTL_VERIFYSIG_H
#define DRCTL_VERIFYSIG_H

#include "allowed_signers.h"
#include "verify.h"

#include <git2.h>

/* Checks every commit reachable from HEAD, naming each that fails. */
void verify_signatures(verify_result *r, git_repository *repo, const allowed_signers *signers);

#endif
