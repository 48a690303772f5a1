/* audit_remote: the audit trail's remote, named origin (the audit trail
 * contract, docs/design.md).
 *
 * With a remote named origin, each commit is pushed; when the remote moved,
 * drctl fetches, replays its own commits on top (runs never share a folder)
 * and pushes again. A push that fails never loses the local commit and
 * never blocks a recovery: it is reported and retried by the next command. */
#ifndef DRCTL_AUDIT_REMOTE_H
#define DRCTL_AUDIT_REMOTE_H

#include "audit.h"

/* Fetches origin and integrates it (fast-forward, or replay of the local
 * commits on top). A missing or unreachable remote is a warning, not an
 * error. */
int audit_sync(audit *a);

/* Pushes the branch to origin, integrating the remote when it moved; a few
 * tries with backoff. Failure is reported as a warning and returns 0. */
int audit_push(audit *a);

#endif
