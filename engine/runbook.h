/* runbook: loading and validating a runbook file (the runbook format
 * contract, docs/design.md; every field: docs/runbooks.md).
 *
 * A runbook is a Lua file returning `runbook { ... }`. The `runbook` global
 * checks the description as it is built and raises with the file and line
 * of the mistake (unknown field, step without run, destructive step without
 * confirm, duplicate or malformed step name, bad param type or default), so
 * authors learn of a mistake when they write it, not at 3 a.m. */
#ifndef DRCTL_RUNBOOK_H
#define DRCTL_RUNBOOK_H

#include "buf.h"
#include "params.h"
#include "sandbox.h"

#include <stddef.h>

/* How long a runbook's top-level code may run while it is loaded. */
#define RUNBOOK_LOAD_TIMEOUT_SECONDS 10.0

/* Who must approve a destructive step before it runs (four eyes): count
 * distinct operators, each in from when from is not empty, each approval
 * younger than valid_for seconds. The operator who confirms at the run is
 * the first. */
typedef struct approval_rule {
    int count;              /* 1: the operator's own confirmation is enough */
    str_list from;          /* e-mail addresses (or whole identities); empty: anyone */
    double valid_for;       /* seconds */
} approval_rule;

#define APPROVAL_DEFAULT_VALIDITY 3600.0

typedef struct step_spec {
    char *name;
    int run_ref;            /* registry references; LUA_NOREF when absent */
    int plan_ref;
    int confirm_ref;
    int destructive;
    int idempotent;
    int always;
    double timeout;         /* seconds; 0: none */
    int retry_attempts;     /* attempts in all, at least 1 */
    double retry_backoff;   /* seconds before the second attempt; doubles after */
    approval_rule approvers; /* how many must approve a destructive step, and who */
} step_spec;

typedef struct runbook {
    sandbox *sb;            /* borrowed: the state holding the functions */
    char *path;
    char *name;
    char *version;
    char *summary;
    char *description;      /* may be NULL */
    char blob_id[41];       /* git blob id of the file, as `git hash-object` */
    param_spec *params;
    size_t param_count;
    step_spec *steps;
    size_t step_count;
    int lock_ref;           /* LUA_NOREF when the runbook declares no lock */
} runbook;

/* Loads and validates path in sb. Errors are DR_EUSAGE with file:line. */
int runbook_load(runbook **out, sandbox *sb, const char *path);
void runbook_free(runbook *rb);

/* Loads the runbook at path (validated as usual), then gives its
 * description to module.function (a lua/ module), whose result is the
 * runbook: how a drill wraps a scenario's real steps. The blob id is the
 * file's. */
int runbook_load_composed(runbook **out, sandbox *sb, const char *path, const char *module, const char *function);

/* The step's index, or -1. */
int runbook_step_index(const runbook *rb, const char *name);

/* The git blob id (SHA-1 of "blob <len>\0<content>") of a file. */
int runbook_blob_id(char out[41], const char *path);

/* [a-z0-9-]+, the form of runbook and step names. */
int runbook_valid_name(const char *name);

#endif
