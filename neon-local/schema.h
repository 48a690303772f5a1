/* schema: a branch database's schema and its comparison with another
 * branch's, as Neon serves them.
 *
 * GET .../branches/{id}/schema?db_name=D answers {"sql": ...}, the output
 * of `pg_dump --schema-only` of D on the branch's server, without the lines
 * that change from one dump to the next (the "Dumped from/by" version
 * comments, psql's \restrict and \unrestrict keys), so two dumps of the
 * same schema are the same text; format=json answers {"json": {"tables":
 * [...]}} instead, read from the catalog.
 *
 * GET .../branches/{id}/compare_schema?db_name=D[&base_branch_id=B]
 * answers {"diff": ...}: a unified diff (3 lines of context) from the base
 * branch's schema ("-", the branch's parent when B is not given, as Neon
 * does) to the branch's ("+"); "" when they are the same.
 *
 * lsn or timestamp (base_lsn or base_timestamp for the base) reads the
 * schema at that point of the branch's past, checked as a branch made at
 * that point would be (branchtime.h): the branch's base backup is replayed
 * from its WAL archive on a scratch server of its own, in
 * DATA_DIR/scratch, which is read, stopped and removed before the answer
 * (what a killed neon-local left there is removed by the next such read).
 * It takes seconds, as making a branch in the past does.
 *
 * A branch whose server is stopped (it has no endpoint, as a data-only
 * backup a restore preserved, or its endpoint is suspended) is read at its
 * head as Neon reads it: from a copy of its data folder served by a scratch
 * server the same way, the branch and its endpoint left as they were. Its
 * past (lsn or timestamp) needs its endpoint running (400 says so): a
 * stopped server's last WAL is not in its archive.
 *
 * The slow part (pg_dump, the catalog query, a replay) runs with the API's lock
 * released, so that other requests and the worker go on meanwhile: what it
 * needs is copied out of the state first, and nothing of the state is read
 * again until the lock is taken back. A branch that a job changes
 * meanwhile makes the read fail, answered 423 as a busy branch is. */
#ifndef DRCTL_NL_SCHEMA_H
#define DRCTL_NL_SCHEMA_H

#include "api_internal.h"
#include "routes.h"

#include <stddef.h>

nl_response nl_branch_schema_get(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branch_schema_compare(nl_api *api, const nl_request *req, const nl_path_ids *ids);

/* A unified diff from old_text to new_text (lines of context around each
 * change), each side's header line given ("--- old_label", "+++
 * new_label"); "" when the texts are the same. Caller frees. */
char *nl_schema_unified_diff(const char *old_text, const char *new_text, const char *old_label,
                             const char *new_label, size_t context);

/* A pg_dump output without the lines that differ between two dumps of the
 * same schema. Caller frees. */
char *nl_schema_stable_dump(const char *dump);

#endif
