#include "cmd_undo.h"

#include "audit.h"
#include "audit_remote.h"
#include "buf.h"
#include "cmd_run.h"
#include "err.h"
#include "jsonfield.h"
#include "runs.h"
#include "session.h"

#include <stdlib.h>
#include <string.h>

/* The runs an undo knows how to reverse: their apply step's outputs say
 * what it did. */
static const char *const undoable_runbooks[] = { "accidental-deletion", "corruption", NULL };

static int is_undoable_runbook(const char *name)
{
    for (size_t i = 0; undoable_runbooks[i]; i++)
        if (!strcmp(undoable_runbooks[i], name))
            return 1;
    return 0;
}

/* What can be known from the trail alone, before anything is started: a
 * refused undo leaves no run behind. The branches themselves (is the
 * preserved one still there, unchanged?) are the runbook's first step. */
static int refuse_unless_undoable(const char *audit_dir, const char *run_id, const cJSON *info)
{
    const char *runbook_name = json_text(cJSON_GetObjectItemCaseSensitive(info, "runbook"), "name", "?");
    if (!is_undoable_runbook(runbook_name))
        return err_set(DR_EUSAGE, "run %s is a run of %s: drctl undo reverses a finished accidental-deletion or "
                       "corruption run", run_id, runbook_name);
    int live, rc = 0;
    cJSON *state = runs_state(&live, audit_dir, run_id);
    const char *status = json_text(state, "status", "?");
    if (strcmp(status, "done") != 0)
        rc = err_set(DR_EUSAGE, "run %s is %s, not finished: only a run that is done can be undone (drctl status "
                     "%s; resume or abort it first)", run_id, runs_shown_status(state, live), run_id);
    cJSON_Delete(state);
    if (rc)
        return rc;
    cJSON *undos = runs_undone_by(audit_dir, run_id);
    const cJSON *u;
    cJSON_ArrayForEach(u, undos) {
        const char *id = json_text(u, "run_id", "?"), *undo_status = json_text(u, "status", "?");
        if (!strcmp(undo_status, "done"))
            rc = err_set(DR_EUSAGE, "run %s was undone already, by run %s: it cannot be undone twice", run_id, id);
        else if (strcmp(undo_status, "aborted") != 0)
            rc = err_set(DR_EUSAGE, "run %s is being undone by run %s (%s): resume it (drctl resume %s) or abort "
                         "it (drctl abort %s)", run_id, id, undo_status, id, id);
        if (rc)
            break;
    }
    cJSON_Delete(undos);
    return rc;
}

/* The undo's params: the run it undoes, and where that run worked (its
 * project, database and role). */
static void undo_params(char ***params, size_t *count, const char *run_id, const cJSON *info)
{
    static const char *const inherited[] = { "project", "database", "role", NULL };
    *params = NULL;
    *count = 0;
    cli_push_arg(params, count, xasprintf("run=%s", run_id));
    const cJSON *recorded = cJSON_GetObjectItemCaseSensitive(info, "params");
    for (size_t i = 0; inherited[i]; i++) {
        const char *value = json_text(recorded, inherited[i], NULL);
        if (value)
            cli_push_arg(params, count, xasprintf("%s=%s", inherited[i], value));
    }
}

static int start_undo(cli *c, const char *run_id, const cJSON *info, audit *trail)
{
    session s;
    char *fallback = xasprintf("%s/runbooks/%s.lua", cli_share_dir(), RUNS_UNDO_RUNBOOK);
    int rc = session_load(&s, c, RUNS_UNDO_RUNBOOK, fallback, 0);
    free(fallback);
    if (rc)
        return rc;
    char **params;
    size_t count;
    undo_params(&params, &count, run_id, info);
    cli with_params = *c;
    with_params.params = params;
    with_params.param_count = count;
    cJSON *run_params = NULL;
    /* An undo acts where the run it undoes acted. */
    if ((rc = session_check_target(&s, cJSON_GetObjectItemCaseSensitive(info, "target"))) == 0 &&
        (rc = session_check_policy(&s, c)) == 0 &&
        (rc = session_new_run_params(&run_params, NULL, &s, &with_params)) == 0 && (rc = audit_check_clean(trail)) == 0)
        rc = cmd_run_start(c, &s, run_params, trail);
    cJSON_Delete(run_params);
    cli_free_list(params, count);
    session_dispose(&s);
    return rc;
}

int cmd_undo(cli *c)
{
    int rc = cli_expect_args(c, 1, 1, "RUN_ID [--approve undo] [--run-id ID]");
    if (rc)
        return rc;
    if (c->param_count)
        return err_set(DR_EUSAGE, "drctl undo takes no -p: its params are those of the run it undoes");
    const char *run_id = c->args[0];
    if (!runs_valid_id(run_id))
        return err_set(DR_EUSAGE, "'%s' is not a run id (drctl status lists the runs)", run_id);
    audit *trail = NULL;
    cJSON *info = NULL;
    /* An undo made on another machine arrives with the fetch. */
    if ((rc = audit_open(&trail, cli_audit_dir(c), 0)) != 0)
        goto cleanup;
    audit_sync(trail);
    if ((rc = runs_read_info(&info, cli_audit_dir(c), run_id)) != 0 ||
        (rc = refuse_unless_undoable(cli_audit_dir(c), run_id, info)) != 0)
        goto cleanup;
    rc = start_undo(c, run_id, info, trail);
cleanup:
    cJSON_Delete(info);
    audit_free(trail);
    return rc;
}
