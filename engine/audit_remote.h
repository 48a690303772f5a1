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

#include <cjson/cJSON.h>

/* Fetches origin and integrates it (fast-forward, or replay of the local
 * commits on top). A missing or unreachable remote is a warning, not an
 * error. */
int audit_sync(audit *a);

/* Pushes the branch to origin, integrating the remote when it moved; a few
 * tries with backoff. Failure is reported as a warning and returns 0. */
int audit_push(audit *a);

/* The target lock on origin, for operators on other clones: the ref
 * refs/drctl/locks/<hash of key> names a commit whose message is the
 * holder ({"key","run_id","operator","host","since","expires_at"}). It is
 * taken by pushing a first commit (refused when the ref exists), renewed
 * or taken over by pushing a child of the commit origin has (a fast
 * forward, refused when someone else moved it first): a compare-and-swap
 * that needs nothing but git. A lock whose expires_at has passed may be
 * taken over; one of the same run is renewed.
 * holder is the new holder's description (expires_at included).
 * Returns 0 when held (*previous: the expired holder taken over, or
 * NULL), DR_ELOCKED when another run holds it (*previous: that holder),
 * DR_EFAIL when origin cannot be reached (message says why). */
int audit_remote_lock(cJSON **previous, audit *a, const char *key, const cJSON *holder);

/* Deletes the lock on origin when run_id still holds it (best effort). */
void audit_remote_unlock(audit *a, const char *key, const char *run_id);

#endif
