/* session: the runbook one command acts with, loaded into a sandbox wired
 * to the engine's modules (dr, neon, pg, dump and files, drill) and to the
 * target the command acts on (the Neon API, neon-local, or none). */
#ifndef DRCTL_SESSION_H
#define DRCTL_SESSION_H

#include "cli.h"
#include "drillmod.h"
#include "drmod.h"
#include "neonmod.h"
#include "pgmod.h"
#include "runbook.h"
#include "sandbox.h"
#include "target.h"

#include <cjson/cJSON.h>

/* Embedded, not allocated: the modules keep pointers to host, neon and
 * target, so a session never moves once loaded. */
typedef struct session {
    dr_host host;
    neon_module neon;
    pg_module *pg;
    drill_module *drill;
    target target;
    sandbox *sb;
    runbook *rb;
} session;

/* A sandbox with the engine modules registered, and the lua/ folders
 * beside the runbook, in the current directory, beside drctl and in the
 * installed share folder. *pg and *drill get the modules' state, freed
 * by the caller after the sandbox. */
int session_sandbox_new(sandbox **out, pg_module **pg, drill_module **drill, const char *runbook_path,
                        dr_host *host, neon_module *neon);

/* Finds the runbook named or at name_or_path on the search path (else
 * fallback_path, when given and present), loads it and checks that every
 * --approve names one of its steps. composed: the runbook is a drill's
 * scenario, loaded through lua/drctl/drill.lua. On failure s is disposed. */
int session_load(session *s, const cli *c, const char *name_or_path, const char *fallback_path, int composed);

/* When the runbook uses Neon: refuses without a chosen target, refuses a
 * resume (recorded: the run's "target" in run.json) on another target
 * than the run's, starts or finds neon-local, and says on the first line
 * what will be acted on (with params' project, when given). */
int session_prepare_target(session *s, const cJSON *params, const cJSON *recorded);

/* Refuses (DR_EUSAGE, saying how to fix it) when s would act on another
 * target than the one recorded (a run.json's "target"); 0 when s uses no
 * Neon or nothing is recorded. */
int session_check_target(const session *s, const cJSON *recorded);
/* The params of a new run of s's runbook, from the command line's -p,
 * the environment and the defaults, with their secrets registered, and the
 * target prepared for them (session_prepare_target). *params is NULL on
 * error. param_sources (may be NULL) gets where each value came from
 * (params_resolve_from's sources). */
int session_new_run_params(cJSON **params, cJSON **param_sources, session *s, const cli *c);

/* Frees what s holds and zeroes it: safe on a zeroed or disposed session. */
/* A runbook with a destructive step needs a readable approvals policy
 * (config_check_policy) before it runs or resumes. */
int session_check_policy(const session *s, const cli *c);

void session_dispose(session *s);

#endif
