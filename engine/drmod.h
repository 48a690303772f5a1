/* drmod: the engine's `dr` module for runbooks, plus `json` and `print`
 * (every function, its options and results: docs/runbooks.md, "The dr
 * module").
 *
 * Everything with an effect goes through the host, which journals it, and
 * dr.exec is refused in plan mode. */
#ifndef DRCTL_DRMOD_H
#define DRCTL_DRMOD_H

#include "sandbox.h"

#include <cjson/cJSON.h>

typedef struct dr_host {
    int plan_mode;
    /* A journal event for the current step (data taken). */
    int (*event)(void *ud, const char *kind, cJSON *data);
    /* The confirmation gate: 0, DR_EREFUSED or DR_EINTR. */
    int (*confirm)(void *ud, const char *summary, const char *challenge);
    void *ud;
    /* Called when a step's run function returned (set by whoever owns
     * per-step resources, such as database connections). */
    void (*step_ended)(void *step_ended_ud);
    void *step_ended_ud;
    /* During a drill, what the modules may change (NULL otherwise). */
    struct drill_scope *drill;
    /* The run file access is confined to (filesmod.h): its id, its
     * runbook's params and where the run keeps their values (read at each
     * call: a run resolves them after it is set up); borrowed, set by
     * files_begin_run. NULL run_id: no run, no folder allowed. */
    const char *run_id;
    const struct param_spec *param_specs;
    size_t param_count;
    cJSON *const *params;
    /* The audit trail dr.run reads past runs from (NULL: none). */
    const char *audit_dir;
} dr_host;

/* Makes `dr` and `json` requirable and routes `print` to dr.log. host must
 * outlive the sandbox's use. */
void drmod_register(sandbox *sb, dr_host *host);

#endif
