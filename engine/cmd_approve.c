#include "cmd_approve.h"

#include "approvals.h"
#include "audit.h"
#include "audit_remote.h"
#include "buf.h"
#include "checkpoint.h"
#include "err.h"
#include "gate.h"
#include "identity.h"
#include "journal.h"
#include "jsonfield.h"
#include "lock.h"
#include "runs.h"
#include "runpath.h"
#include "term.h"
#include "timefmt.h"

#include <stdlib.h>
#include <string.h>

/* What one drctl approve works on. */
typedef struct approval_session {
    const char *run_id;
    const char *step;
    const char *dir;
    audit *trail;
    cJSON *events;
    const cJSON *request;   /* the approval-requested event, in events */
    approval_rule rule;
    char *operator;
    char *host;
    const char *signing_key;
    const char *answer;     /* the gate's last event kind */
} approval_session;

static void session_dispose(approval_session *s)
{
    cJSON_Delete(s->events);
    str_list_dispose(&s->rule.from);
    free(s->operator);
    free(s->host);
    audit_free(s->trail);
}

/* The run, its journal (chain checked) and the step's open request. */
static int load_request(approval_session *s)
{
    cJSON *info = NULL;
    int rc = runs_read_info(&info, s->dir, s->run_id);
    if (rc)
        return rc;
    cJSON_Delete(info);
    char *path = runs_journal_path(s->dir, s->run_id);
    journal_chain chain;
    rc = journal_read_chained(&s->events, &chain, path, s->run_id);
    if (rc == 0 && chain.broken_line)
        rc = err_set(DR_EUSAGE, "%s: the hash chain breaks at %s; nothing was approved (drctl audit verify)", path,
                     chain.why);
    journal_chain_dispose(&chain);
    free(path);
    if (rc)
        return rc;
    checkpoint *cp = NULL;
    if ((rc = checkpoint_replay(&cp, s->run_id, s->events)) != 0)
        return rc;
    int has_step = checkpoint_step_index(cp, s->step) >= 0;
    run_status status = cp->status;
    checkpoint_free(cp);
    if (!has_step)
        return err_set(DR_EUSAGE, "run %s has no step '%s' (drctl audit show %s lists its steps)", s->run_id,
                       s->step, s->run_id);
    s->request = approvals_pending_request(s->events, s->step);
    if (!s->request || status != RUN_PAUSED)
        return err_set(DR_EUSAGE, "step %s of run %s is not waiting for approval (the run is %s); nothing was "
                       "approved", s->step, s->run_id, checkpoint_run_status_name(status));
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(s->request, "data");
    s->rule.count = (int)json_number(data, "required", 2);
    s->rule.valid_for = json_number(data, "valid_for_seconds", APPROVAL_DEFAULT_VALIDITY);
    const cJSON *who;
    cJSON_ArrayForEach(who, cJSON_GetObjectItemCaseSensitive(data, "from"))
        if (cJSON_IsString(who))
            str_list_push(&s->rule.from, who->valuestring);
    return 0;
}

/* Appends one event to the run's journal and commits it (then pushes). */
static int record_event(approval_session *s, const char *kind, cJSON *data)
{
    lock *held = NULL;
    char *lock_path = runs_lock_path(s->dir, s->run_id);
    char *what = xasprintf("run %s", s->run_id);
    cJSON *stale = NULL, *events = NULL;
    int rc = lock_acquire(&held, &stale, lock_path, what, s->run_id);
    free(what);
    free(lock_path);
    cJSON_Delete(stale);
    char *run_dir = runpath_abs(s->dir, s->run_id);
    journal *j = NULL;
    long repaired = 0;
    if (rc == 0 && (rc = journal_open(&j, &events, &repaired, run_dir)) == 0 &&
        (rc = journal_append(j, kind, s->step, data)) == 0) {
        data = NULL;
        char *message = journal_transition_message(s->run_id, kind, s->step);
        rc = audit_commit_run(s->trail, s->run_id, message, s->operator);
        free(message);
    }
    cJSON_Delete(data);
    journal_free(j);
    cJSON_Delete(events);
    free(run_dir);
    audit_settle(s->trail, s->run_id);
    lock_release(held);
    return rc;
}

static cJSON *event_data(const approval_session *s, const char *hash)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "operator", s->operator);
    cJSON_AddStringToObject(data, "host", s->host);
    cJSON_AddStringToObject(data, "summary_hash", hash);
    if (s->signing_key)
        cJSON_AddStringToObject(data, "signing_key", s->signing_key);
    return data;
}

/* A refusal is journaled too (who tried, and why), then reported. */
static int refuse(approval_session *s, const char *hash, int code, const char *why)
{
    cJSON *data = event_data(s, hash);
    cJSON_AddStringToObject(data, "reason", why);
    char *message = xstrdup(why);
    if (record_event(s, "approval-refused", data) != 0)
        term_warn("the refusal could not be recorded: %s", err_last());
    int rc = err_set(code, "%s; nothing was approved", message);
    free(message);
    return rc;
}

/* Why this operator may not approve, or NULL: outside the rule's list, or
 * already counted (the request's own approvers, earlier approvals of the
 * same summary), by identity or by signing key. */
static char *why_not_allowed(const approval_session *s, const char *hash)
{
    if (!approvals_allowed(&s->rule, s->operator)) {
        char *who = approvals_who_may(&s->rule);
        char *why = xasprintf("%s may not approve step %s: only %s may", s->operator, s->step, who);
        free(who);
        return why;
    }
    approval_tally t;
    approvals_tally(&t, s->events, s->step, hash, &s->rule, "", NULL, timefmt_now());
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(s->request, "data"), *who;
    cJSON_ArrayForEach(who, cJSON_GetObjectItemCaseSensitive(data, "approved_by"))
        if (cJSON_IsString(who))
            str_list_push(&t.approvers, who->valuestring);
    char *me = approvals_person(s->operator), *why = NULL;
    for (size_t i = 0; !why && i < t.approvers.count; i++) {
        char *other = approvals_person(t.approvers.items[i]);
        if (!strcmp(other, me))
            why = xasprintf("%s approved step %s of run %s already: another operator must approve it", s->operator,
                            s->step, s->run_id);
        free(other);
    }
    const char *requester_key = json_text(data, "signing_key", NULL);
    if (!why && s->signing_key && (str_list_has(&t.keys, s->signing_key) ||
                                   (requester_key && !strcmp(requester_key, s->signing_key))))
        why = xasprintf("the signing key %s approved step %s already, as another identity: another operator must "
                        "approve it", s->signing_key, s->step);
    free(me);
    approvals_tally_dispose(&t);
    return why;
}

static int on_gate_event(void *ud, const char *kind, cJSON *data)
{
    approval_session *s = ud;
    s->answer = !strcmp(kind, "confirmation-given")         ? "typed"
                : !strcmp(kind, "confirmation-preapproved") ? "--approve"
                                                             : s->answer;
    cJSON_Delete(data);
    return 0;
}

/* The same summary the requester saw, and the challenge typed again. */
static int ask(approval_session *s, cli *c, const char *summary, const char *challenge)
{
    char *hint = xasprintf("drctl approve %s %s", s->run_id, s->step);
    gate g = { .approved = c->approvals, .approved_count = c->approval_count, .operator = s->operator,
               .resume_hint = hint, .on_event = on_gate_event, .ud = s };
    int rc = gate_confirm(&g, s->step, "approval", summary, challenge);
    free(hint);
    return rc;
}

static int approve(approval_session *s, cli *c)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(s->request, "data");
    const char *summary = json_text(data, "summary", ""), *challenge = json_text(data, "challenge", "");
    const char *hash = json_text(data, "summary_hash", "");
    char *why = why_not_allowed(s, hash);
    if (why) {
        int rc = refuse(s, hash, DR_EUSAGE, why);
        free(why);
        return rc;
    }
    term_info("run %s, step %s asks %d approvals; requested by %s at %s", s->run_id, s->step, s->rule.count,
              json_text(data, "operator", "?"), json_text(s->request, "time", "?"));
    int rc = ask(s, c, summary, challenge);
    if (rc == DR_EREFUSED)
        return refuse(s, hash, DR_EREFUSED, "the challenge was not typed");
    if (rc)
        return rc;
    cJSON *given = event_data(s, hash);
    cJSON_AddStringToObject(given, "how", s->answer ? s->answer : "typed");
    if ((rc = record_event(s, "approval-given", given)) != 0)
        return rc;
    term_out("approved step %s of run %s as %s. The run goes on once its operator resumes it: drctl resume %s",
             s->step, s->run_id, s->operator, s->run_id);
    return 0;
}

int cmd_approve(cli *c)
{
    int rc = cli_expect_args(c, 2, 2, "RUN_ID STEP");
    if (rc)
        return rc;
    if (c->param_count)
        return err_set(DR_EUSAGE, "drctl approve takes no -p: it approves the run as it was asked");
    for (size_t i = 0; i < c->approval_count; i++)
        if (strcmp(c->approvals[i], c->args[1]) != 0)
            return err_set(DR_EUSAGE, "--approve %s: drctl approve %s %s approves step %s only", c->approvals[i],
                           c->args[0], c->args[1], c->args[1]);
    if (!runs_valid_id(c->args[0]))
        return err_set(DR_EUSAGE, "'%s' is not a run id (drctl status lists the runs)", c->args[0]);
    approval_session s = { .run_id = c->args[0], .step = c->args[1], .dir = cli_audit_dir(c),
                           .signing_key = NULL };
    if ((rc = audit_open(&s.trail, s.dir, 0)) == 0) {
        s.signing_key = audit_signing_key(s.trail);
        audit_sync(s.trail); /* the request arrives with the fetch */
        s.operator = identity_operator();
        s.host = identity_host();
        if ((rc = audit_check_clean(s.trail)) == 0 && (rc = load_request(&s)) == 0)
            rc = approve(&s, c);
    }
    session_dispose(&s);
    return rc;
}
