#include "runner.h"

#include "audit.h"
#include "audit_remote.h"
#include "buf.h"
#include "checkpoint.h"
#include "config.h"
#include "drill.h"
#include "err.h"
#include "filesmod.h"
#include "fsio.h"
#include "gate.h"
#include "identity.h"
#include "journal.h"
#include "jsonfield.h"
#include "jsonlua.h"
#include "jsontext.h"
#include "localtime.h"
#include "lock.h"
#include "lockrenew.h"
#include "approvals.h"
#include "params.h"
#include "placeholder.h"
#include "redact.h"
#include "report.h"
#include "runnotify.h"
#include "runpath.h"
#include "runs.h"
#include "signals.h"
#include "term.h"
#include "timefmt.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_RETRY_DELAY 300.0

/* How long a hard stop waits for an append in progress to end. An append
 * is a write, an fsync and a commit: seconds at worst, unless the disk or
 * the audit remote hangs, and then the run is left as a crash leaves it. */
#define HARD_STOP_LOCK_SECONDS 5

/* Every journal append, and the change of the step in progress, happen
 * under this lock, because the watchdog thread records a hard stop through
 * the same run: it must never interleave with an append of the main
 * thread, nor see a step half set. Error-checking, so that a panic on the
 * thread that holds it is told so instead of waiting on itself. */
static pthread_mutex_t record_lock = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;

typedef struct run {
    runbook *rb;
    sandbox *sb;
    const runner_options *opts;
    char *run_id;
    char *run_dir;
    char *state_path;
    char *operator;
    char *host_name;
    journal *journal;
    checkpoint *cp;
    cJSON *params;            /* full values, secrets included: memory only */
    int ctx_ref;
    lock *run_lock;
    lock *key_lock;
    gate gate;
    char *resume_hint;
    const char *current_step;
    double started;
    char *trail_behind;       /* why the last transition has no commit: nothing more is journaled */
    char *pause_reason;       /* why the run pauses, when not a missing confirmation */
    char *remote_key;         /* the target lock held on origin too, or NULL */
    cJSON *remote_taken_over; /* the expired holder it was taken from, to journal */
    char *remote_unreachable; /* why origin could not be asked for the target lock */
    char *remote_since;
    double remote_ttl;        /* lock.ttl, read once */
    struct lock_renewer *renewer; /* keeps origin's lock alive while the process lives */
    int settled_end;          /* the run had ended: resume only committed what a crash left */
    const char *ending;       /* ctx.ending: "failed" or "aborted" while `always` steps clean up after it */
} run;

/* ---- paths ----------------------------------------------------------- */

static char *run_dir_path(const char *audit_dir, const char *run_id)
{
    return runpath_abs(audit_dir, run_id);
}

/* ---- events ------------------------------------------------------------ */

static int is_run_end(const char *kind)
{
    return !strcmp(kind, "run-done") || !strcmp(kind, "run-failed") || !strcmp(kind, "run-paused") ||
           !strcmp(kind, "run-interrupted") || !strcmp(kind, "run-aborted");
}

/* Journal listener: each durable event updates the checkpoint; when the
 * state changed, state.json is rewritten durably; a transition becomes a
 * commit (with report.md first when the run ends), all before we go on. */
static int on_journal_event(void *ud, const cJSON *event)
{
    run *r = ud;
    int changed = checkpoint_apply(r->cp, event);
    if (changed < 0)
        return changed;
    if (changed && checkpoint_write(r->cp, r->state_path) != 0)
        return DR_EFAIL;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(event, "kind");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(event, "step");
    if (!r->opts->audit || !cJSON_IsString(kind) || !journal_is_transition(kind->valuestring))
        return 0;
    if (is_run_end(kind->valuestring) && report_write(r->run_dir) != 0)
        return DR_EFAIL;
    char *message = journal_transition_message(r->run_id, kind->valuestring,
                                               cJSON_IsString(step) ? step->valuestring : NULL);
    int rc = audit_commit_run(r->opts->audit, r->run_id, message, r->operator);
    free(message);
    return rc;
}

/* Once a transition could not be committed, nothing more goes into the
 * journal: past the last commit there is then only what a crash leaves
 * (debris.h), and the next command commits it with its first event. */
static int trail_refuses(run *r)
{
    if (!r->trail_behind)
        return 0;
    return err_set(DR_EFAIL, "nothing more is recorded, as the audit trail could not commit the last event (%s): "
                   "drctl resume commits it", r->trail_behind);
}

static int record(run *r, const char *kind, const char *step, cJSON *data)
{
    pthread_mutex_lock(&record_lock);
    int rc = trail_refuses(r);
    long before = journal_last_seq(r->journal);
    if (rc)
        cJSON_Delete(data);
    else
        rc = journal_append(r->journal, kind, step, data);
    /* appended, but its state or its commit could not be written */
    if (rc && journal_last_seq(r->journal) > before && !r->trail_behind)
        r->trail_behind = xstrdup(err_last());
    pthread_mutex_unlock(&record_lock);
    if (rc)
        term_error("the checkpoint could not be saved: %s", err_last());
    return rc;
}

static void set_current_step(run *r, const char *step)
{
    pthread_mutex_lock(&record_lock);
    r->current_step = step;
    pthread_mutex_unlock(&record_lock);
}

/* The "notify" event's data for the run's end, or NULL: nothing sent. */
static cJSON *send_end_notification(run *r, const char *kind, const char *reason)
{
    runnotify_run end = { .audit_dir = r->opts->audit_dir, .run_id = r->run_id,
                          .runbook = r->rb ? r->rb->name : NULL, .kind = kind, .reason = reason,
                          .target = r->opts->target, .params = r->params, .drill = r->opts->drill, .cp = r->cp,
                          .chain_head = r->journal ? journal_head(r->journal) : NULL,
                          .chain_seq = r->journal ? journal_last_seq(r->journal) : 0 };
    return r->rb ? runnotify_send(&end) : NULL;
}

/* The watchdog's (or a panic's) last word on the run, on its own thread,
 * while the main thread may still be inside the step: the step that began
 * is recorded interrupted, then the run, as a signal would have, so that
 * status tells the truth and resume asks before running the step again.
 * The lock is kept: the process exits next, and nothing may append after
 * this. */
static void record_hard_stop(void *ud, const char *why)
{
    run *r = ud;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += HARD_STOP_LOCK_SECONDS;
    int rc = pthread_mutex_timedlock(&record_lock, &until);
    if (rc != 0) {
        term_error("the journal is being written (%s), so the stop is not recorded: the run stands as after a "
                   "crash, and resume will ask before running its step again: %s",
                   rc == EDEADLK ? "by the thread that failed" : "and did not finish in time", r->resume_hint);
        return;
    }
    if (!r->journal || !r->cp || r->trail_behind)
        return;
    int k = r->current_step ? checkpoint_step_index(r->cp, r->current_step) : -1;
    if (k >= 0 && r->cp->steps[k].state == STEP_STARTED) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "error", why);
        journal_append(r->journal, "step-interrupted", r->current_step, data);
    }
    if (r->cp->status == RUN_RUNNING) {
        /* told like any interrupted run, bounded by notify.timeout */
        cJSON *sent = send_end_notification(r, "run-interrupted", why);
        if (sent)
            journal_append(r->journal, "notify", NULL, sent);
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "reason", why);
        cJSON_AddNumberToObject(data, "duration_ms", round((timefmt_monotonic() - r->started) * 1000));
        journal_append(r->journal, "run-interrupted", NULL, data);
    }
    if (r->opts->audit)
        audit_settle(r->opts->audit, r->run_id);
    /* released as on a normal exit, so that resume finds no lock of a dead
     * process to take over: the stop is recorded, not a crash */
    lock_release(r->key_lock);
    lock_release(r->run_lock);
    r->key_lock = r->run_lock = NULL;
    term_error("the checkpoint is saved. To go on: %s", r->resume_hint);
}

static int host_event(void *ud, const char *kind, cJSON *data)
{
    run *r = ud;
    if (!r->journal) { /* plan mode: nothing is recorded */
        cJSON_Delete(data);
        return 0;
    }
    return record(r, kind, r->current_step, data);
}

static int gate_event(void *ud, const char *kind, cJSON *data)
{
    run *r = ud;
    return record(r, kind, r->current_step, data);
}

static int host_confirm(void *ud, const char *summary, const char *challenge)
{
    run *r = ud;
    return gate_confirm(&r->gate, r->current_step, "in-step", summary, challenge);
}

/* ---- the ctx table ------------------------------------------------------ */

/* Every change of ctx runs in a protected call of its own: ctx holds the
 * params and the outputs of every done step, which together can pass the
 * sandbox's memory cap, and a memory error outside any protected call would
 * end drctl through lua_atpanic instead of failing the step. What is pushed
 * belongs to the run (its params, its checkpoint), so nothing is left to
 * free when a push raises. */
typedef struct ctx_change {
    void (*apply)(lua_State *L, struct ctx_change *change); /* may raise */
    run *r;
    int plan_mode;          /* build_ctx, set_plan_outputs: 0, 1, or PLAN_PLACEHOLDERS */
    const char *step;       /* set_step_ctx, pass_outputs_on: the step's name */
    int attempt;            /* set_step_ctx */
    const cJSON *outputs;   /* pass_outputs_on */
} ctx_change;

static int apply_protected(lua_State *L)
{
    ctx_change *change = lua_touserdata(L, 1);
    change->apply(L, change);
    return 0;
}

/* DR_EFAIL, "what: ran out of memory (...)", when the change raised. */
static int change_ctx(ctx_change *change, const char *what)
{
    sandbox *sb = change->r->sb;
    lua_State *L = sandbox_state(sb);
    lua_pushcfunction(L, apply_protected);
    lua_pushlightuserdata(L, change);
    char *error = NULL;
    int rc = sandbox_call(&error, NULL, sb, 1, 0, 0);
    if (rc)
        err_set(rc, "%s: %s", what, error);
    free(error);
    return rc;
}

/* In a plan, a confirmation sees the outputs it reads as placeholders, so
 * that its text can be shown before the steps before it have run. */
#define PLAN_PLACEHOLDERS 2

static int plan_outputs_index(lua_State *L)
{
    lua_newtable(L);
    return 1;
}

static void push_outputs(lua_State *L, run *r, int plan_mode)
{
    if (plan_mode == PLAN_PLACEHOLDERS) {
        placeholder_push_outputs(L);
        return;
    }
    lua_newtable(L);
    if (plan_mode) {
        /* In a plan nothing has run: ctx.outputs.step is an empty table, so
         * a plan function can write ctx.outputs.x.branch or "<new branch>". */
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, plan_outputs_index);
        lua_setfield(L, -2, "__index");
        lua_setmetatable(L, -2);
        return;
    }
    for (size_t i = 0; r->cp && i < r->cp->step_count; i++) {
        if (r->cp->steps[i].state != STEP_DONE)
            continue;
        jsonlua_push(L, r->cp->steps[i].outputs);
        lua_setfield(L, -2, r->cp->steps[i].name);
    }
}

/* r->ctx_ref is set last, once the whole table stands. */
static void build_now(lua_State *L, ctx_change *change)
{
    run *r = change->r;
    lua_createtable(L, 0, 8);
    jsonlua_push(L, r->params);
    lua_setfield(L, -2, "params");
    push_outputs(L, r, change->plan_mode);
    lua_setfield(L, -2, "outputs");
    lua_pushstring(L, r->run_id);
    lua_setfield(L, -2, "run_id");
    lua_pushboolean(L, change->plan_mode);
    lua_setfield(L, -2, "plan");
    lua_createtable(L, 0, 2);
    lua_pushstring(L, r->rb->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, r->rb->version);
    lua_setfield(L, -2, "version");
    lua_setfield(L, -2, "runbook");
    r->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* The ctx every step function gets: params, the done steps' outputs, the
 * run id, whether it is a plan, the runbook's name and version. */
static int build_ctx(run *r, int plan_mode)
{
    ctx_change change = { .apply = build_now, .r = r, .plan_mode = plan_mode };
    return change_ctx(&change, "the run's ctx (its params and the outputs of its done steps) cannot be built");
}

static void set_plan_outputs_now(lua_State *L, ctx_change *change)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, change->r->ctx_ref);
    push_outputs(L, change->r, change->plan_mode);
    lua_setfield(L, -2, "outputs");
}

/* ctx.outputs of a plan: empty tables (1) or placeholders (PLAN_PLACEHOLDERS). */
static int set_plan_outputs(run *r, int kind)
{
    ctx_change change = { .apply = set_plan_outputs_now, .r = r, .plan_mode = kind };
    return change_ctx(&change, "the plan's ctx cannot be set up");
}

/* ctx.timeline: each step's state and times so far, from the checkpoint
 * (what a drill measures its recovery time with). */
static void push_timeline(lua_State *L, run *r)
{
    lua_createtable(L, 0, (int)r->cp->step_count);
    for (size_t i = 0; i < r->cp->step_count; i++) {
        const step_record *rec = &r->cp->steps[i];
        lua_createtable(L, 0, 3);
        lua_pushstring(L, checkpoint_step_state_name(rec->state));
        lua_setfield(L, -2, "state");
        if (rec->started_at) {
            lua_pushstring(L, rec->started_at);
            lua_setfield(L, -2, "started_at");
        }
        if (rec->ended_at) {
            lua_pushstring(L, rec->ended_at);
            lua_setfield(L, -2, "ended_at");
        }
        lua_setfield(L, -2, rec->name);
    }
}

static void set_step_now(lua_State *L, ctx_change *change)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, change->r->ctx_ref);
    lua_pushstring(L, change->step);
    lua_setfield(L, -2, "step");
    lua_pushinteger(L, change->attempt);
    lua_setfield(L, -2, "attempt");
    push_timeline(L, change->r);
    lua_setfield(L, -2, "timeline");
    if (change->r->ending)
        lua_pushstring(L, change->r->ending);
    else
        lua_pushnil(L);
    lua_setfield(L, -2, "ending");
}

/* ctx.step, ctx.attempt and ctx.timeline for the step about to run. */
static int set_step_ctx(run *r, const char *step, int attempt)
{
    ctx_change change = { .apply = set_step_now, .r = r, .step = step, .attempt = attempt };
    return change_ctx(&change, "the step's ctx cannot be set up");
}

static void set_output_now(lua_State *L, ctx_change *change)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, change->r->ctx_ref);
    lua_getfield(L, -1, "outputs");
    jsonlua_push(L, change->outputs);
    lua_setfield(L, -2, change->step);
}

/* The next steps see a done step's outputs as saved (redacted), exactly as
 * they would after a resume. The step stays done if they do not fit: the
 * run fails, and a resume, in a fresh sandbox, goes on after the step. */
static int pass_outputs_on(run *r, const char *step)
{
    const step_record *rec = &r->cp->steps[checkpoint_step_index(r->cp, step)];
    ctx_change change = { .apply = set_output_now, .r = r, .step = step, .outputs = rec->outputs };
    char *what = xasprintf("step '%s' is done and its outputs are saved, but they do not fit in the next "
                           "steps' ctx", step);
    int rc = change_ctx(&change, what);
    free(what);
    return rc;
}

/* What is taken from a Lua function's result inside the same protected
 * call, under the same deadline: reading a result can run the runbook's
 * metamethods, and the engine's conversions can raise (out of memory), so
 * none of it may happen once lua_pcall has returned. */
typedef struct after_call {
    void (*take)(lua_State *L, struct after_call *a); /* the result on the top; may raise */
    int taking;         /* the call returned: an error now comes from take */
    cJSON *outputs;     /* take_outputs */
    char *text;         /* take_text, take_confirmation (the summary) */
    char *challenge;    /* take_confirmation */
    char *skip;         /* take_confirmation: { skip = "why" } */
} after_call;

static void after_call_free(after_call *a)
{
    cJSON_Delete(a->outputs);
    free(a->text);
    free(a->challenge);
    free(a->skip);
}

/* A step's result as JSON, refused with jsonlua's message. */
static void take_outputs(lua_State *L, after_call *a)
{
    a->outputs = jsonlua_from_lua(L, -1, "outputs");
    if (!a->outputs)
        luaL_error(L, "%s", err_last());
}

/* A string result; otherwise none. */
static void take_string(lua_State *L, after_call *a)
{
    if (lua_type(L, -1) == LUA_TSTRING)
        a->text = xstrdup(lua_tostring(L, -1));
}

/* A string result, or a number shown as text; otherwise none. */
static void take_text(lua_State *L, after_call *a)
{
    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
        a->text = xstrdup(lua_tostring(L, -1));
}

/* {summary=, challenge=} left by a confirm function, both non-empty
 * strings; otherwise none. */
static void take_confirmation(lua_State *L, after_call *a)
{
    if (lua_type(L, -1) != LUA_TTABLE)
        return;
    lua_getfield(L, -1, "summary");
    lua_getfield(L, -2, "challenge");
    placeholder_to_text(L, -1); /* a plan's challenge may be an output */
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -2) &&
        lua_rawlen(L, -1)) {
        char *summary = xstrdup(lua_tostring(L, -2));
        a->challenge = xstrdup(lua_tostring(L, -1));
        a->text = summary;
    }
    lua_pop(L, 2);
    /* Only an explicit reason, and no summary, says there is nothing to
     * confirm: a confirm that returns nothing still fails its step. */
    if (!a->text && lua_getfield(L, -1, "skip") == LUA_TSTRING && lua_rawlen(L, -1))
        a->skip = xstrdup(lua_tostring(L, -1));
    lua_pop(L, 1);
}

/* The protected body: (after_call, fn, args...) -> fn(args...), then
 * take() on its first result. */
static int call_then_take(lua_State *L)
{
    after_call *a = lua_touserdata(L, 1);
    lua_remove(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    a->taking = 1;
    a->take(L, a);
    return 0;
}

/* Calls fn_ref(ctx) in the sandbox and takes from its result what a->take
 * reads, all within one protected call and its deadline. */
static int call_with_ctx(run *r, int fn_ref, double timeout, after_call *a, char **error, char **traceback)
{
    lua_State *L = sandbox_state(r->sb);
    lua_pushcfunction(L, call_then_take);
    lua_pushlightuserdata(L, a);
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->ctx_ref);
    return sandbox_call(error, traceback, r->sb, 3, 0, timeout);
}

/* ---- setting up and tearing down a run ------------------------------------ */

static run *run_new(runbook *rb, const runner_options *opts, const char *run_id)
{
    run *r = xcalloc(1, sizeof *r);
    r->rb = rb;
    r->sb = rb ? rb->sb : NULL;
    r->opts = opts;
    r->run_id = xstrdup(run_id);
    r->run_dir = run_dir_path(opts->audit_dir, run_id);
    r->state_path = xasprintf("%s/state.json", r->run_dir);
    r->operator = identity_operator();
    r->host_name = identity_host();
    r->ctx_ref = LUA_NOREF;
    r->resume_hint = xasprintf("drctl resume %s", run_id);
    r->gate = (gate){ .approved = opts->approvals, .approved_count = opts->approval_count,
                      .operator = r->operator, .resume_hint = r->resume_hint,
                      .on_event = gate_event, .ud = r };
    r->started = timefmt_monotonic();
    signals_set_hard_stop(record_hard_stop, r);
    if (opts->host) {
        opts->host->plan_mode = 0;
        opts->host->event = host_event;
        opts->host->confirm = host_confirm;
        opts->host->ud = r;
        files_begin_run(opts->host, r->run_id, rb ? rb->params : NULL, rb ? rb->param_count : 0, &r->params);
    }
    return r;
}

static void run_free(run *r)
{
    if (!r)
        return;
    signals_set_hard_stop(NULL, NULL);
    /* what the run ended with is what the operator reads, not a warning
     * about the remote on the way out */
    char *outcome = xstrdup(err_last());
    /* the process is done with the target: so is origin's lock */
    lock_renewer_stop(r->renewer);
    if (r->remote_key)
        audit_remote_unlock(r->opts->audit, r->remote_key, r->run_id);
    /* A run that ended completed or aborted needs its own folder no more. */
    if (r->opts->host)
        files_end_run(r->opts->host, r->run_id,
                      r->cp && (r->cp->status == RUN_DONE || r->cp->status == RUN_ABORTED));
    /* The run's files go into the index and pending commits are pushed
     * once per command, whatever happened. */
    if (r->opts->audit && r->journal)
        audit_settle(r->opts->audit, r->run_id);
    if (*outcome)
        err_set(DR_EFAIL, "%s", outcome); /* the message only: callers keep their code */
    else
        err_clear();
    free(outcome);
    if (r->ctx_ref != LUA_NOREF)
        luaL_unref(sandbox_state(r->sb), LUA_REGISTRYINDEX, r->ctx_ref);
    journal_free(r->journal);
    checkpoint_free(r->cp);
    cJSON_Delete(r->params);
    lock_release(r->key_lock);
    lock_release(r->run_lock);
    free(r->run_id);
    free(r->run_dir);
    free(r->state_path);
    free(r->operator);
    free(r->host_name);
    free(r->resume_hint);
    free(r->trail_behind);
    free(r->remote_key);
    cJSON_Delete(r->remote_taken_over);
    free(r->remote_unreachable);
    free(r->remote_since);
    free(r->pause_reason);
    free(r);
}

static int ensure_audit_dirs(const char *audit_dir)
{
    char *runs = xasprintf("%s/runs", audit_dir);
    char *locks = xasprintf("%s/.git/drctl/locks", audit_dir);
    int rc = fsio_mkdirs(runs, 0755);
    if (rc == 0)
        rc = fsio_mkdirs(locks, 0755);
    free(runs);
    free(locks);
    if (rc) /* nothing has run: bad input, not a failed step */
        rc = err_set(DR_EUSAGE, "the audit directory %s cannot be used: %s (choose another with "
                     "--audit DIR)", audit_dir, err_last());
    return rc;
}

static int take_run_lock(run *r, cJSON **stale)
{
    char *path = runs_lock_path(r->opts->audit_dir, r->run_id);
    char *what = xasprintf("run %s", r->run_id);
    int rc = lock_acquire(&r->run_lock, stale, path, what, r->run_id);
    free(what);
    free(path);
    return rc;
}

/* How long the target lock on origin lasts without renewal (lock.ttl). */
static double remote_lock_ttl(run *r)
{
    if (r->remote_ttl > 0)
        return r->remote_ttl;
    config *cfg = NULL;
    double ttl = config_load(&cfg, r->opts->audit_dir) == 0 ? config_seconds(cfg, "lock.ttl") : 3600;
    config_free(cfg);
    r->remote_ttl = ttl > 0 ? ttl : 3600;
    return r->remote_ttl;
}

static cJSON *remote_holder(run *r, const char *key)
{
    char now[48], until[48];
    timefmt_format_utc(now, sizeof now, timefmt_now());
    timefmt_format_utc(until, sizeof until, timefmt_now() + remote_lock_ttl(r));
    if (!r->remote_since)
        r->remote_since = xstrdup(now);
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "key", key);
    cJSON_AddStringToObject(h, "run_id", r->run_id);
    cJSON_AddStringToObject(h, "operator", r->operator);
    cJSON_AddStringToObject(h, "host", r->host_name);
    cJSON_AddStringToObject(h, "since", r->remote_since);
    cJSON_AddStringToObject(h, "expires_at", until);
    return h;
}

/* With a remote, the target is locked on origin as well, so that an
 * operator on another clone is told too (audit_remote_lock). Origin out
 * of reach is asked about once the journal is open (confirm_local_lock). */
static int take_remote_lock(run *r, const char *key)
{
    if (!r->opts->audit || !audit_has_remote(r->opts->audit))
        return 0;
    cJSON *holder = remote_holder(r, key), *previous = NULL;
    int rc = audit_remote_lock(&previous, r->opts->audit, key, holder);
    cJSON_Delete(holder);
    if (rc == 0) {
        r->remote_key = xstrdup(key);
        r->remote_taken_over = previous;
        r->renewer = lock_renewer_start(r->opts->audit_dir, key, remote_holder(r, key), remote_lock_ttl(r));
        return 0;
    }
    if (rc == DR_ELOCKED && previous) {
        rc = err_set(DR_ELOCKED, "the target '%s' is locked on origin by run %s of %s on %s, since %s (until %s, "
                     "renewed while it runs); nothing was done. Wait for it, or ask them (drctl status on their "
                     "clone)", key, json_text(previous, "run_id", "?"), json_text(previous, "operator", "?"),
                     json_text(previous, "host", "?"), json_text(previous, "since", "?"),
                     json_text(previous, "expires_at", "?"));
        cJSON_Delete(previous);
    } else if (rc == DR_EFAIL) {
        r->remote_unreachable = xstrdup(err_last());
        rc = 0;
    }
    if (rc) {
        lock_release(r->key_lock);
        r->key_lock = NULL;
    }
    return rc;
}

/* Once the journal is open: a takeover of an expired holder is recorded,
 * and going on without origin's lock needs a typed confirmation. */
static int confirm_local_lock(run *r)
{
    if (r->remote_taken_over) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "lock", "target on origin");
        cJSON_AddItemToObject(data, "previous_holder", r->remote_taken_over);
        r->remote_taken_over = NULL;
        term_warn("took over the target lock on origin, which had expired");
        record(r, "lock-takeover", NULL, data);
    }
    if (!r->remote_unreachable)
        return 0;
    char *summary = xasprintf("The audit trail's origin cannot be reached (%s), so the target lock is taken on "
                              "this machine only: an operator on another clone would not see this run, and could "
                              "act on the same target at the same time. Go on with the local lock only?",
                              r->remote_unreachable);
    int rc = gate_confirm(&r->gate, RUNNER_LOCAL_LOCK_STEP, "remote-unreachable", summary, RUNNER_LOCAL_LOCK_STEP);
    free(summary);
    if (rc == 0) {
        free(r->remote_unreachable);
        r->remote_unreachable = NULL;
    } else if (rc == DR_EREFUSED) {
        free(r->pause_reason);
        r->pause_reason = xasprintf("origin unreachable: going on with the local lock only was not confirmed "
                                    "(--approve %s)", RUNNER_LOCAL_LOCK_STEP);
    }
    return rc;
}

/* The runbook's `lock` function names what the run changes; two runs with
 * the same key are never active at once. */
static int take_key_lock(run *r, cJSON **stale)
{
    if (r->rb->lock_ref == LUA_NOREF)
        return 0;
    char *error = NULL;
    after_call a = { .take = take_string };
    int rc = call_with_ctx(r, r->rb->lock_ref, 10, &a, &error, NULL);
    if (rc) {
        err_set(rc == DR_EINTR ? DR_EINTR : DR_EUSAGE, "runbook %s: the lock function failed: %s",
                r->rb->name, error);
        free(error);
        after_call_free(&a);
        return rc == DR_EINTR ? DR_EINTR : DR_EUSAGE;
    }
    if (!a.text || !a.text[0]) {
        after_call_free(&a);
        return err_set(DR_EUSAGE, "runbook %s: the lock function must return a non-empty string",
                       r->rb->name);
    }
    char *key = a.text;
    a.text = NULL;
    after_call_free(&a);
    /* The file name is a hash (FNV-1a) so it never depends on what the
     * key contains; the key itself is written in the refusal message. */
    char id[17];
    unsigned long long h = 1469598103934665603ULL;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    snprintf(id, sizeof id, "%016llx", h);
    char *path = xasprintf("%s/.git/drctl/locks/key-%s.lock", r->opts->audit_dir, id);
    char *what = xasprintf("the target '%s'", key);
    rc = lock_acquire(&r->key_lock, stale, path, what, r->run_id);
    free(what);
    free(path);
    if (rc == 0)
        rc = take_remote_lock(r, key);
    free(key);
    return rc;
}

static void record_takeover(run *r, cJSON *stale, const char *which)
{
    if (!stale)
        return;
    term_warn("took over the %s lock of a process that died (%s)", which,
              cJSON_GetObjectItemCaseSensitive(stale, "run_id") ?
              cJSON_GetObjectItemCaseSensitive(stale, "run_id")->valuestring : "?");
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "lock", which);
    cJSON_AddItemToObject(data, "previous_holder", stale);
    record(r, "lock-takeover", NULL, data);
}

static cJSON *step_names(const runbook *rb)
{
    cJSON *names = cJSON_CreateArray();
    for (size_t i = 0; i < rb->step_count; i++)
        cJSON_AddItemToArray(names, cJSON_CreateString(rb->steps[i].name));
    return names;
}

static cJSON *run_info_json(run *r)
{
    char now[48];
    timefmt_format_utc(now, sizeof now, timefmt_now());
    cJSON *info = cJSON_CreateObject();
    cJSON_AddStringToObject(info, "run_id", r->run_id);
    cJSON *rb = cJSON_AddObjectToObject(info, "runbook");
    cJSON_AddStringToObject(rb, "name", r->rb->name);
    cJSON_AddStringToObject(rb, "version", r->rb->version);
    cJSON_AddStringToObject(rb, "blob_id", r->rb->blob_id);
    char *absolute = realpath(r->rb->path, NULL);
    cJSON_AddStringToObject(rb, "path", absolute ? absolute : r->rb->path);
    free(absolute);
    cJSON_AddItemToObject(info, "params", params_redacted_copy(r->rb->params, r->rb->param_count, r->params));
    cJSON_AddStringToObject(info, "operator", r->operator);
    cJSON_AddStringToObject(info, "host", r->host_name);
    cJSON_AddStringToObject(info, "drctl_version", DRCTL_VERSION);
    /* The zone the operator's times were read in: a resume shows them so. */
    cJSON_AddStringToObject(info, "time_zone", localtime_zone());
    if (r->opts->target)
        cJSON_AddItemToObject(info, "target", cJSON_Duplicate(r->opts->target, 1));
    else
        cJSON_AddNullToObject(info, "target");
    if (r->opts->drill)
        cJSON_AddItemToObject(info, "drill", cJSON_Duplicate(r->opts->drill, 1));
    cJSON_AddStringToObject(info, "started_at", now);
    cJSON_AddItemToObject(info, "steps", step_names(r->rb));
    redact_json(info);
    return info;
}

static int write_run_info(run *r)
{
    cJSON *info = run_info_json(r);
    char *text = json_print_exact(info, 1);
    cJSON_Delete(info);
    char *path = xasprintf("%s/run.json", r->run_dir);
    size_t len = strlen(text);
    text = xrealloc(text, len + 2);
    text[len] = '\n';
    int rc = fsio_write_durable(path, text, len + 1);
    free(text);
    free(path);
    return rc;
}

/* ---- gates before a step -------------------------------------------------- */

static int unfinished(const step_record *rec)
{
    return rec->state == STEP_STARTED || rec->state == STEP_FAILED || rec->state == STEP_INTERRUPTED;
}

static char *rerun_summary(const step_record *rec)
{
    const char *how = rec->state == STEP_FAILED        ? "failed"
                      : rec->state == STEP_INTERRUPTED ? "was interrupted"
                                                       : "never finished (the process died inside it)";
    return xasprintf("Step '%s' is not idempotent and attempt %d, started at %s, %s%s%s.\n"
                     "Part of it may already have happened. Check its effects before running it again.",
                     rec->name, rec->attempts, rec->started_at ? rec->started_at : "?", how,
                     rec->error ? ": " : "", rec->error ? rec->error : "");
}

static int fail_before_start(run *r, const step_spec *spec, const char *error)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "error", error);
    record(r, "step-failed", spec->name, data);
    return err_set(DR_EFAIL, "step '%s' failed: %s", spec->name, error);
}

/* The approvals a step needs: the runbook's, raised by the team's policy
 * (config.json's approvals) for this runbook, step, project and branch.
 * Settings that do not load leave it unknown: an error, never fewer. */
static int rule_of(approval_rule *out, const run *r, const step_spec *spec)
{
    config *cfg = NULL;
    if (config_load(&cfg, r->opts->audit_dir) != 0)
        return err_set(DR_EUSAGE, "the approvals step %s needs cannot be known: %s", spec->name, err_last());
    approvals_effective(out, &spec->approvers, cfg, r->rb->name, spec->name, json_text(r->params, "project", NULL),
                        json_text(r->params, "branch", NULL));
    config_free(cfg);
    return 0;
}

static cJSON *string_array(const str_list *l)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < l->count; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(l->items[i]));
    return a;
}

/* Not enough approvals yet: the request is journaled (what others will
 * approve, and who may), and the run pauses. */
static int request_approvals(run *r, const step_spec *spec, const approval_rule *rule, const approval_tally *t,
                             const char *summary, const char *challenge, const char *hash)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "operator", r->operator);
    cJSON_AddStringToObject(data, "summary", summary);
    cJSON_AddStringToObject(data, "challenge", challenge);
    cJSON_AddStringToObject(data, "summary_hash", hash);
    cJSON_AddNumberToObject(data, "required", rule->count);
    cJSON_AddItemToObject(data, "from", string_array(&rule->from));
    cJSON_AddNumberToObject(data, "valid_for_seconds", rule->valid_for);
    if (r->opts->audit && audit_signing_key(r->opts->audit))
        cJSON_AddStringToObject(data, "signing_key", audit_signing_key(r->opts->audit));
    cJSON_AddItemToObject(data, "approved_by", string_array(&t->approvers));
    if (t->not_counted.len)
        cJSON_AddStringToObject(data, "not_counted", buf_cstr(&t->not_counted));
    int rc = record(r, "approval-requested", spec->name, data);
    if (rc)
        return rc;
    size_t missing = (size_t)rule->count - t->approvers.count;
    char *who = approvals_who_may(rule);
    buf counted = BUF_INIT;
    for (size_t i = 0; i < t->approvers.count; i++)
        buf_printf(&counted, "%s%s", i ? ", " : "", t->approvers.items[i]);
    term_info("step %s needs %d approvals; counted %zu (%s)", spec->name, rule->count, t->approvers.count,
              counted.len ? buf_cstr(&counted) : "none");
    buf_dispose(&counted);
    if (t->not_counted.len)
        term_warn("approvals not counted: %s", buf_cstr(&t->not_counted));
    free(r->pause_reason);
    r->pause_reason = xasprintf("waiting for %zu more approval%s at step %s (drctl approve %s %s)", missing,
                                missing == 1 ? "" : "s", spec->name, r->run_id, spec->name);
    rc = err_set(DR_EREFUSED, "step %s waits for %zu more approval%s, from %s; the run is paused. Each approves "
                 "from their own clone of the audit trail with: drctl approve %s %s; then: %s", spec->name, missing,
                 missing == 1 ? "" : "s", who, r->run_id, spec->name, r->resume_hint);
    free(who);
    return rc;
}

/* Four eyes: once the operator confirmed, the step runs only when enough
 * distinct operators approved this very summary (approvals.h). */
static int check_approvals(run *r, const step_spec *spec, const char *summary, const char *challenge)
{
    if (r->opts->drill) /* a drill acts on its own copies */
        return 0;
    approval_rule effective;
    int rc = rule_of(&effective, r, spec);
    if (rc)
        return rc;
    const approval_rule *rule = &effective;
    if (rule->count <= 1) {
        approval_rule_dispose(&effective);
        return 0;
    }
    char hash[APPROVAL_HASH_SIZE];
    approvals_summary_hash(hash, summary, challenge);
    char *path = xasprintf("%s/journal.jsonl", r->run_dir);
    cJSON *events = NULL;
    rc = journal_read(&events, NULL, path);
    free(path);
    if (rc) {
        approval_rule_dispose(&effective);
        return rc;
    }
    approval_tally t;
    const char *key = r->opts->audit ? audit_signing_key(r->opts->audit) : NULL;
    approvals_tally(&t, events, spec->name, hash, rule, r->operator, key, timefmt_now());
    if (t.approvers.count >= (size_t)rule->count) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "summary_hash", hash);
        cJSON_AddItemToObject(data, "approved_by", string_array(&t.approvers));
        rc = record(r, "approval-met", spec->name, data);
        if (rc == 0)
            term_info("step %s: approved by %zu operators", spec->name, t.approvers.count);
    } else {
        rc = request_approvals(r, spec, rule, &t, summary, challenge, hash);
    }
    approvals_tally_dispose(&t);
    cJSON_Delete(events);
    approval_rule_dispose(&effective);
    return rc;
}

/* Before a step: the rerun confirmation of a half-done step that is not
 * idempotent, then a destructive step's typed confirmation, or *skip (the
 * caller frees) when its confirm says there is nothing to do. */
static int gate_before_step(char **skip, run *r, const step_spec *spec, const step_record *rec)
{
    *skip = NULL;
    if (!spec->idempotent && unfinished(rec)) {
        char *summary = rerun_summary(rec);
        int rc = gate_confirm(&r->gate, spec->name, "rerun", summary, spec->name);
        free(summary);
        if (rc)
            return rc;
    }
    if (!spec->destructive)
        return 0;
    char *error = NULL;
    after_call a = { .take = take_confirmation };
    int rc = call_with_ctx(r, spec->confirm_ref, 60, &a, &error, NULL);
    if (rc) {
        char *message = xasprintf("its confirm function failed: %s", error);
        free(error);
        rc = rc == DR_EINTR ? DR_EINTR : fail_before_start(r, spec, message);
        free(message);
    } else if (a.skip) {
        *skip = a.skip;
        a.skip = NULL;
    } else if (!a.text) {
        rc = fail_before_start(r, spec, "its confirm function must return { summary = \"...\", "
                                        "challenge = \"...\" } with both non-empty, or { skip = \"why\" }");
    } else {
        rc = gate_confirm(&r->gate, spec->name, "destructive", a.text, a.challenge);
        if (rc == 0)
            rc = check_approvals(r, spec, a.text, a.challenge);
    }
    after_call_free(&a);
    return rc;
}

/* ---- executing a step ----------------------------------------------------- */

static int sleep_interruptibly(double seconds)
{
    double end = timefmt_monotonic() + seconds;
    while (timefmt_monotonic() < end) {
        if (signals_pending())
            return DR_EINTR;
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void progress(run *r, size_t index, const char *text)
{
    term_info("[%zu/%zu] %s %s", index + 1, r->rb->step_count, r->rb->steps[index].name, text);
}

/* outputs is taken. */
static int step_succeeded(run *r, size_t index, cJSON *outputs, double t0)
{
    const step_spec *spec = &r->rb->steps[index];
    cJSON *data = cJSON_CreateObject();
    cJSON_AddItemToObject(data, "outputs", outputs);
    cJSON_AddNumberToObject(data, "duration_ms", round((timefmt_monotonic() - t0) * 1000));
    int rc = record(r, "step-done", spec->name, data);
    if (rc)
        return rc;
    char took[32];
    timefmt_format_duration(took, sizeof took, timefmt_monotonic() - t0);
    char *text = xasprintf("done (%s)", took);
    progress(r, index, text);
    free(text);
    return 0;
}

static int record_step_end(run *r, const char *kind, const step_spec *spec, const char *error, double t0)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "error", error);
    cJSON_AddNumberToObject(data, "duration_ms", round((timefmt_monotonic() - t0) * 1000));
    return record(r, kind, spec->name, data);
}

/* The error that fails a step whose drill scope refused changes while it
 * ran (refusals past refused_before), or NULL. */
static char *drill_refusal_error(struct drill_scope *drill, size_t refused_before)
{
    if (!drill || drill_scope_refusal_count(drill) <= refused_before)
        return NULL;
    size_t refused = drill_scope_refusal_count(drill) - refused_before;
    if (refused > 1)
        return xasprintf("%zu changes refused, the first: %s (all in the journal: drill-refused)", refused,
                         drill_scope_refusal(drill, refused_before));
    return xasprintf("%s", drill_scope_refusal(drill, refused_before));
}

/* After a failed attempt that may be retried: the retry recorded, then the
 * backoff (doubling, capped) waited; DR_EINTR when a signal ends the wait. */
static int wait_to_retry(run *r, size_t index, int attempt, int attempt_here, const char *error, double t0)
{
    const step_spec *spec = &r->rb->steps[index];
    double delay = fmin(spec->retry_backoff * pow(2, attempt_here - 1), MAX_RETRY_DELAY);
    cJSON *retry = cJSON_CreateObject();
    cJSON_AddNumberToObject(retry, "attempt", attempt);
    cJSON_AddStringToObject(retry, "error", error);
    cJSON_AddNumberToObject(retry, "delay_seconds", delay);
    record(r, "step-retry", spec->name, retry);
    char *text = xasprintf("failed (%s); retrying in %.1fs", error, delay);
    progress(r, index, text);
    free(text);
    if (sleep_interruptibly(delay) != DR_EINTR)
        return 0;
    record_step_end(r, "step-interrupted", spec, "interrupted while waiting to retry", t0);
    return DR_EINTR;
}

/* The last attempt failed: recorded, shown, and DR_EFAIL with the error. */
static int step_failed(run *r, size_t index, const char *error, double t0)
{
    const step_spec *spec = &r->rb->steps[index];
    record_step_end(r, "step-failed", spec, error, t0);
    char *text = xasprintf("failed: %s", error);
    progress(r, index, text);
    free(text);
    return err_set(DR_EFAIL, "step '%s' failed: %s", spec->name, error);
}

static int execute_step(run *r, size_t index)
{
    const step_spec *spec = &r->rb->steps[index];
    for (int attempt_here = 1;; attempt_here++) {
        step_record *rec = &r->cp->steps[checkpoint_step_index(r->cp, spec->name)];
        int attempt = rec->attempts + 1;
        cJSON *data = cJSON_CreateObject();
        cJSON_AddNumberToObject(data, "attempt", attempt);
        /* Nothing is done until "started" is durable. */
        if (record(r, "step-started", spec->name, data) != 0)
            return DR_EFAIL;
        progress(r, index, attempt > 1 ? "started again" : "started");
        double t0 = timefmt_monotonic();
        char *error = NULL, *traceback = NULL;
        struct drill_scope *drill = r->opts->host ? r->opts->host->drill : NULL;
        size_t refused_before = drill ? drill_scope_refusal_count(drill) : 0;
        after_call a = { .take = take_outputs };
        /* a ctx that cannot be set up fails the step as its code would */
        int rc = set_step_ctx(r, spec->name, attempt);
        if (rc)
            error = xstrdup(err_last());
        else
            rc = call_with_ctx(r, spec->run_ref, spec->timeout, &a, &error, &traceback);
        if (r->opts->host && r->opts->host->step_ended) /* a step's connections end with it */
            r->opts->host->step_ended(r->opts->host->step_ended_ud);
        if (rc == DR_EFAIL && a.taking) {
            /* the step returned, and its result could not be saved: the
             * same code would return it again, so it is not retried */
            char *why = xasprintf("the step's result cannot be saved: %s", error);
            free(error);
            error = why;
            attempt_here = spec->retry_attempts;
        }
        if (rc == 0 && (error = drill_refusal_error(drill, refused_before)) != NULL) {
            /* a refusal fails its step even when the runbook caught the error */
            rc = DR_EFAIL;
            attempt_here = spec->retry_attempts;
        }
        if (rc == 0) {
            rc = step_succeeded(r, index, a.outputs, t0);
            a.outputs = NULL;
            if (rc == 0) {
                after_call_free(&a);
                return pass_outputs_on(r, spec->name);
            }
            error = xasprintf("the step's result cannot be saved: %s", err_last());
            rc = DR_EFAIL;
            attempt_here = spec->retry_attempts; /* the same code would return it again */
        }
        after_call_free(&a);
        if (traceback)
            term_debug("%s", traceback);
        free(traceback);
        if (rc == DR_EINTR) {
            record_step_end(r, "step-interrupted", spec, error, t0);
            free(error);
            return DR_EINTR;
        }
        if (rc == DR_EREFUSED) {
            record_step_end(r, "step-paused", spec, error, t0);
            free(error);
            return err_set(DR_EREFUSED, "step '%s' was refused at a confirmation; the run is paused. "
                           "To go on later: %s", spec->name, r->resume_hint);
        }
        rc = attempt_here < spec->retry_attempts ? wait_to_retry(r, index, attempt, attempt_here, error, t0)
                                                 : step_failed(r, index, error, t0);
        free(error);
        if (rc)
            return rc;
    }
}

/* A destructive step whose confirm said there is nothing to do: journaled
 * as started and done, with outputs { skipped = why }, and nothing asked
 * (nothing is destroyed: its run is not called). */
static int skip_step(run *r, size_t index, const char *why)
{
    const step_spec *spec = &r->rb->steps[index];
    const step_record *rec = &r->cp->steps[checkpoint_step_index(r->cp, spec->name)];
    cJSON *data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "attempt", rec->attempts + 1);
    if (record(r, "step-started", spec->name, data) != 0)
        return DR_EFAIL;
    char *text = xasprintf("skipped: %s", why);
    progress(r, index, text);
    free(text);
    cJSON *outputs = cJSON_CreateObject();
    cJSON_AddStringToObject(outputs, "skipped", why);
    int rc = step_succeeded(r, index, outputs, timefmt_monotonic());
    return rc ? rc : pass_outputs_on(r, spec->name);
}

/* ---- the run loop -------------------------------------------------------- */

/* The team is told how the run ended (runnotify.h), and the journal what
 * each webhook did, before the end is recorded: its commit carries both. */
static void notify_end(run *r, const char *kind, const char *reason)
{
    cJSON *data = send_end_notification(r, kind, reason);
    if (data)
        record(r, "notify", NULL, data);
}

static int finish(run *r, const char *kind, const char *reason, int rc)
{
    char *message = xstrdup(err_last());
    notify_end(r, kind, reason);
    cJSON *data = cJSON_CreateObject();
    if (reason)
        cJSON_AddStringToObject(data, "reason", reason);
    cJSON_AddNumberToObject(data, "duration_ms", round((timefmt_monotonic() - r->started) * 1000));
    int recorded = record(r, kind, NULL, data);
    if (recorded != 0 && rc == 0) {
        /* The end is not durable (a full disk): the run is not done until
         * a resume records it, and the exit status must say so. */
        free(message);
        return recorded;
    }
    err_set(rc, "%s", message);
    free(message);
    return rc;
}

/* Steps that ran as cleanup after a failure run again, at their place, once
 * the failed step is retried by a resume. */
static void reset_cleanup_steps(run *r)
{
    size_t first_open = r->rb->step_count;
    for (size_t i = 0; i < r->rb->step_count; i++) {
        int k = checkpoint_step_index(r->cp, r->rb->steps[i].name);
        if (k < 0 || r->cp->steps[k].state != STEP_DONE) {
            first_open = i;
            break;
        }
    }
    for (size_t i = first_open + 1; i < r->rb->step_count; i++) {
        int k = checkpoint_step_index(r->cp, r->rb->steps[i].name);
        if (r->rb->steps[i].always && k >= 0 && r->cp->steps[k].state == STEP_DONE) {
            cJSON *data = cJSON_CreateObject();
            cJSON_AddStringToObject(data, "reason", "cleanup ran after a failure; it runs again in order");
            record(r, "step-reset", r->rb->steps[i].name, data);
        }
    }
}

/* cleanup_only: after a failure or for abort, only `always` steps run. */
static int run_steps(run *r, int cleanup_only)
{
    int failed = cleanup_only;
    char *first_error = NULL;
    int result = 0;
    r->ending = cleanup_only ? "aborted" : NULL;
    int locked = confirm_local_lock(r);
    if (locked == DR_EREFUSED) {
        char *reason = xstrdup(r->pause_reason);
        int rc = finish(r, "run-paused", reason, DR_EREFUSED);
        free(reason);
        return rc;
    }
    if (locked)
        return locked;
    for (size_t i = 0; i < r->rb->step_count; i++) {
        const step_spec *spec = &r->rb->steps[i];
        const step_record *rec = &r->cp->steps[checkpoint_step_index(r->cp, spec->name)];
        if (rec->state == STEP_DONE || (failed && !spec->always))
            continue;
        if (signals_pending()) {
            result = DR_EINTR;
            break;
        }
        set_current_step(r, spec->name);
        char *skip;
        int rc = gate_before_step(&skip, r, spec, rec);
        if (rc == 0)
            rc = skip ? skip_step(r, i, skip) : execute_step(r, i);
        free(skip);
        set_current_step(r, NULL);
        if (rc == 0)
            continue;
        if (rc == DR_EINTR) {
            result = DR_EINTR;
            break;
        }
        if (failed) {
            term_warn("cleanup step '%s' did not complete: %s", spec->name, err_last());
            continue;
        }
        if (rc == DR_EREFUSED) {
            char *reason = r->pause_reason ? xstrdup(r->pause_reason)
                                           : xasprintf("confirmation refused or missing at step %s", spec->name);
            rc = finish(r, "run-paused", reason, DR_EREFUSED);
            free(reason);
            return rc;
        }
        failed = 1;
        r->ending = "failed";
        result = DR_EFAIL;
        first_error = xstrdup(err_last());
    }
    if (result == DR_EINTR) {
        free(first_error);
        err_set(DR_EINTR, "interrupted; the checkpoint is saved. To go on: %s", r->resume_hint);
        return finish(r, "run-interrupted", "interrupted by a signal", DR_EINTR);
    }
    if (cleanup_only) {
        free(first_error);
        return 0;
    }
    if (result == DR_EFAIL) {
        err_set(DR_EFAIL, "%s. The run can be resumed once the cause is fixed: %s", first_error,
                r->resume_hint);
        char *reason = xstrdup(first_error);
        free(first_error);
        int rc = finish(r, "run-failed", reason, DR_EFAIL);
        free(reason);
        return rc;
    }
    free(first_error);
    err_clear();
    return finish(r, "run-done", NULL, 0);
}

/* ---- public entry points --------------------------------------------------- */

static void announce(run *r, const char *verb)
{
    term_info("%s run %s: %s %s, %zu steps, operator %s", verb, r->run_id, r->rb->name, r->rb->version,
              r->rb->step_count, r->operator);
}

/* --run-id, checked again (the caller may not be the command line), or a
 * new id. */
static int choose_run_id(char **out, const runbook *rb, const runner_options *opts)
{
    *out = opts->run_id ? xstrdup(opts->run_id) : runs_new_id(rb->name);
    if (runs_valid_id(*out))
        return 0;
    int rc = err_set(DR_EUSAGE, "--run-id '%s' must be 1 to 128 letters, digits, '.', '_' or '-'", *out);
    free(*out);
    *out = NULL;
    return rc;
}

/* Nothing of a new run is durable (its first journal line was never
 * written, the disk full): what was made of its folder goes, so that no
 * half-made run is left for the next run's clean check, a resume or
 * verify to trip on. The operator starts the run again. */
static void forget_unbegun_run(run *r, char **run_id_out)
{
    char *why = xstrdup(err_last());
    journal_free(r->journal);
    r->journal = NULL;
    (void)fsio_remove_tree(r->run_dir);
    err_set(DR_EFAIL, "%s; the run did not begin, start it again once there is room", why);
    free(why);
    free(*run_id_out);
    *run_id_out = NULL;
}

int runner_start(char **run_id_out, runbook *rb, const cJSON *params, const runner_options *opts)
{
    *run_id_out = NULL;
    char *id = NULL;
    int rc = choose_run_id(&id, rb, opts);
    if (rc == 0)
        rc = ensure_audit_dirs(opts->audit_dir);
    if (rc) {
        free(id);
        return rc;
    }
    run *r = run_new(rb, opts, id);
    free(id);
    r->params = cJSON_Duplicate(params, 1);
    cJSON *stale_key = NULL, *stale_run = NULL;
    if ((rc = build_ctx(r, 0)) == 0)
        rc = take_key_lock(r, &stale_key);
    if (rc == 0)
        rc = take_run_lock(r, &stale_run);
    if (rc)
        goto cleanup;
    char *day = fsio_dirname(r->run_dir);
    rc = fsio_mkdirs(day, 0755);
    free(day);
    if (rc)
        goto cleanup;
    if (mkdir(r->run_dir, 0755) != 0) {
        rc = errno == EEXIST ? err_set(DR_EUSAGE, "run %s already exists; choose another --run-id, "
                                       "or resume it: %s", r->run_id, r->resume_hint)
                             : err_set(DR_EFAIL, "cannot create %s: %s", r->run_dir, strerror(errno));
        goto cleanup;
    }
    *run_id_out = xstrdup(r->run_id);
    r->cp = xcalloc(1, sizeof *r->cp);
    r->cp->run_id = xstrdup(r->run_id);
    r->cp->status = RUN_RUNNING;
    r->cp->step_count = rb->step_count;
    r->cp->steps = xcalloc(rb->step_count, sizeof *r->cp->steps);
    for (size_t i = 0; i < rb->step_count; i++)
        r->cp->steps[i].name = xstrdup(rb->steps[i].name);
    if ((rc = write_run_info(r)) != 0 || (rc = journal_create(&r->journal, r->run_dir)) != 0) {
        forget_unbegun_run(r, run_id_out);
        goto cleanup;
    }
    journal_set_listener(r->journal, on_journal_event, r);
    cJSON *started = cJSON_CreateObject();
    cJSON_AddStringToObject(started, "runbook", rb->name);
    cJSON_AddStringToObject(started, "version", rb->version);
    cJSON_AddStringToObject(started, "blob_id", rb->blob_id);
    cJSON_AddStringToObject(started, "operator", r->operator);
    cJSON_AddStringToObject(started, "host", r->host_name);
    cJSON_AddStringToObject(started, "time_zone", localtime_zone());
    cJSON_AddItemToObject(started, "params", params_redacted_copy(rb->params, rb->param_count, params));
    cJSON_AddItemToObject(started, "steps", step_names(rb));
    if ((rc = record(r, "run-started", NULL, started)) != 0) {
        if (journal_last_seq(r->journal) == 0)
            forget_unbegun_run(r, run_id_out);
        goto cleanup;
    }
    if ((rc = checkpoint_write(r->cp, r->state_path)) != 0)
        goto cleanup;
    record_takeover(r, stale_key, "target");
    stale_key = NULL;
    record_takeover(r, stale_run, "run");
    stale_run = NULL;
    announce(r, "starting");
    rc = run_steps(r, 0);
cleanup:
    cJSON_Delete(stale_key);
    cJSON_Delete(stale_run);
    run_free(r);
    return rc;
}

/* The last transition in a journal's events, or NULL. */
static const cJSON *last_transition(const cJSON *events)
{
    for (int i = cJSON_GetArraySize(events) - 1; i >= 0; i--) {
        const cJSON *event = cJSON_GetArrayItem(events, i);
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(event, "kind");
        if (cJSON_IsString(kind) && journal_is_transition(kind->valuestring))
            return event;
    }
    return NULL;
}

/* A run killed after its last journal line (run-done, run-aborted) was
 * durable but before its commit: nothing is left to run, but state.json,
 * report.md and the commit are still owed. They are made now, as the
 * listener would have, so that the trail ends where the journal does.
 * 1 when something was committed, 0 when there was nothing to settle. */
static int settle_ended_run(run *r, const cJSON *events)
{
    if (r->cp->status != RUN_DONE && r->cp->status != RUN_ABORTED)
        return 0;
    if (!r->opts->audit)
        return 0;
    int dirty = audit_run_uncommitted(r->opts->audit, r->run_id);
    if (dirty <= 0)
        return dirty;
    if (checkpoint_write(r->cp, r->state_path) != 0 || report_write(r->run_dir) != 0)
        return DR_EFAIL;
    const cJSON *end = last_transition(events);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(end, "kind");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(end, "step");
    char *message = journal_transition_message(r->run_id, cJSON_IsString(kind) ? kind->valuestring : "run-done",
                                               cJSON_IsString(step) ? step->valuestring : NULL);
    int rc = audit_commit_run(r->opts->audit, r->run_id, message, r->operator);
    free(message);
    if (rc == 0)
        rc = audit_settle(r->opts->audit, r->run_id);
    if (rc)
        return rc;
    term_info("run %s was already %s, but a crash had kept its end from the audit trail: state.json, "
              "report.md and the commit are made now; there is nothing left to run",
              r->run_id, checkpoint_run_status_name(r->cp->status));
    return 1;
}

/* Everything resume and abort check before they change anything. */
static int open_existing(run *r, char *const *assignments, size_t assignment_count, int *runbook_changed)
{
    cJSON *info = NULL, *events = NULL;
    int rc = runs_read_info(&info, r->opts->audit_dir, r->run_id);
    if (rc)
        return rc;
    char *journal_path = xasprintf("%s/journal.jsonl", r->run_dir);
    rc = journal_read(&events, NULL, journal_path);
    free(journal_path);
    if (rc == 0)
        rc = checkpoint_replay(&r->cp, r->run_id, events);
    if (rc == 0 && (rc = settle_ended_run(r, events)) > 0) {
        r->settled_end = 1;
        rc = 0;
    }
    cJSON_Delete(events);
    if (rc || r->settled_end)
        goto cleanup;
    if (r->cp->status == RUN_DONE || r->cp->status == RUN_ABORTED) {
        rc = err_set(DR_EUSAGE, "run %s is already %s; there is nothing left to do (start a new run "
                     "with drctl run)", r->run_id, checkpoint_run_status_name(r->cp->status));
        goto cleanup;
    }
    const cJSON *rb_info = cJSON_GetObjectItemCaseSensitive(info, "runbook");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(rb_info, "name");
    const cJSON *blob = cJSON_GetObjectItemCaseSensitive(rb_info, "blob_id");
    if (!cJSON_IsString(name) || strcmp(name->valuestring, r->rb->name) != 0) {
        rc = err_set(DR_EUSAGE, "run %s was made by runbook '%s', not '%s'", r->run_id,
                     cJSON_IsString(name) ? name->valuestring : "?", r->rb->name);
        goto cleanup;
    }
    *runbook_changed = !cJSON_IsString(blob) || strcmp(blob->valuestring, r->rb->blob_id) != 0;
    if (*runbook_changed && !r->opts->allow_runbook_change) {
        rc = err_set(DR_EUSAGE, "runbook %s changed since run %s started (blob %.12s, now %.12s); "
                     "nothing was done. Review the change, then resume with --allow-runbook-change "
                     "(recorded in the journal)", r->rb->path, r->run_id,
                     cJSON_IsString(blob) ? blob->valuestring : "?", r->rb->blob_id);
        goto cleanup;
    }
    localtime_use_zone(json_text(info, "time_zone", NULL));
    rc = params_resolve(&r->params, r->rb->params, r->rb->param_count, assignments, assignment_count,
                        cJSON_GetObjectItemCaseSensitive(info, "params"));
    if (rc == 0)
        params_register_secrets(r->rb->params, r->rb->param_count, r->params);
cleanup:
    cJSON_Delete(info);
    return rc;
}

/* Locks, validates, then opens the journal for appending. */
static int reopen_run(run *r, char *const *assignments, size_t assignment_count, const char *verb)
{
    if (!runs_valid_id(r->run_id) || !fsio_is_dir(r->run_dir))
        return err_set(DR_EUSAGE, "there is no run %s in %s (drctl status lists the runs)", r->run_id,
                       r->opts->audit_dir);
    cJSON *stale_run = NULL, *stale_key = NULL;
    int changed = 0;
    int rc = take_run_lock(r, &stale_run);
    if (rc == 0)
        rc = open_existing(r, assignments, assignment_count, &changed);
    if (rc == 0 && r->settled_end) {
        cJSON_Delete(stale_run);
        return 0;
    }
    if (rc == 0 && (rc = build_ctx(r, 0)) == 0)
        rc = take_key_lock(r, &stale_key);
    cJSON *events = NULL;
    long repaired = 0;
    if (rc == 0)
        rc = journal_open(&r->journal, &events, &repaired, r->run_dir);
    cJSON_Delete(events);
    if (rc) {
        cJSON_Delete(stale_run);
        cJSON_Delete(stale_key);
        return rc;
    }
    journal_set_listener(r->journal, on_journal_event, r);
    if (repaired) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddNumberToObject(data, "dropped_bytes", (double)repaired);
        cJSON_AddStringToObject(data, "reason", "a torn last line from a crash during an append");
        record(r, "journal-repaired", NULL, data);
    }
    record_takeover(r, stale_run, "run");
    record_takeover(r, stale_key, "target");
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "operator", r->operator);
    cJSON_AddStringToObject(data, "host", r->host_name);
    cJSON *approvals = cJSON_AddArrayToObject(data, "approvals");
    for (size_t i = 0; i < r->opts->approval_count; i++)
        cJSON_AddItemToArray(approvals, cJSON_CreateString(r->opts->approvals[i]));
    if ((rc = record(r, strcmp(verb, "abort") == 0 ? "abort-requested" : "run-resumed", NULL, data)) != 0)
        return rc;
    if (changed) {
        cJSON *change = cJSON_CreateObject();
        cJSON_AddStringToObject(change, "blob_id", r->rb->blob_id);
        cJSON_AddStringToObject(change, "version", r->rb->version);
        cJSON_AddStringToObject(change, "allowed_by", r->operator);
        cJSON_AddItemToObject(change, "steps", step_names(r->rb));
        if ((rc = record(r, "runbook-changed", NULL, change)) != 0)
            return rc;
        term_warn("runbook %s changed since the run started; going on as allowed (recorded)", r->rb->name);
    }
    /* Outputs of done steps are part of the checkpoint; rebuild ctx with them. */
    luaL_unref(sandbox_state(r->sb), LUA_REGISTRYINDEX, r->ctx_ref);
    r->ctx_ref = LUA_NOREF; /* run_free must not release it twice if the build fails */
    return build_ctx(r, 0);
}

int runner_resume(runbook *rb, const char *run_id, char *const *assignments, size_t assignment_count,
                  const runner_options *opts)
{
    run *r = run_new(rb, opts, run_id);
    int rc = reopen_run(r, assignments, assignment_count, "resume");
    if (rc == 0 && !r->settled_end) {
        announce(r, "resuming");
        reset_cleanup_steps(r);
        rc = run_steps(r, 0);
    }
    run_free(r);
    return rc;
}

int runner_abort(runbook *rb, const char *run_id, char *const *assignments, size_t assignment_count,
                 const runner_options *opts)
{
    run *r = run_new(rb, opts, run_id);
    int rc = reopen_run(r, assignments, assignment_count, "abort");
    if (rc == 0 && !r->settled_end) {
        term_info("aborting run %s: running its cleanup steps", r->run_id);
        reset_cleanup_steps(r);
        rc = run_steps(r, 1);
        if (rc == 0) {
            char *reason = xasprintf("aborted by %s", r->operator);
            rc = finish(r, "run-aborted", reason, 0);
            free(reason);
        }
    }
    run_free(r);
    return rc;
}

int runner_close_without_runbook(const char *run_id, const runner_options *opts, const char *why)
{
    run *r = run_new(NULL, opts, run_id);
    cJSON *stale = NULL, *events = NULL;
    int rc = 0;
    if (!runs_valid_id(run_id) || !fsio_is_dir(r->run_dir))
        rc = err_set(DR_EUSAGE, "there is no run %s in %s (drctl status lists the runs)", run_id, opts->audit_dir);
    if (rc == 0)
        rc = take_run_lock(r, &stale);
    if (rc == 0) {
        char *journal_path = xasprintf("%s/journal.jsonl", r->run_dir);
        rc = journal_read(&events, NULL, journal_path);
        free(journal_path);
    }
    if (rc == 0)
        rc = checkpoint_replay(&r->cp, run_id, events);
    if (rc == 0 && (rc = settle_ended_run(r, events)) > 0) {
        cJSON_Delete(events);
        cJSON_Delete(stale);
        run_free(r);
        return 0;
    }
    if (rc == 0 && (r->cp->status == RUN_DONE || r->cp->status == RUN_ABORTED))
        rc = err_set(DR_EUSAGE, "run %s is already %s; there is nothing to abort", run_id,
                     checkpoint_run_status_name(r->cp->status));
    cJSON_Delete(events);
    events = NULL;
    long repaired = 0;
    if (rc == 0)
        rc = journal_open(&r->journal, &events, &repaired, r->run_dir);
    cJSON_Delete(events);
    if (rc == 0) {
        journal_set_listener(r->journal, on_journal_event, r);
        record_takeover(r, stale, "run");
        stale = NULL;
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "operator", r->operator);
        cJSON_AddStringToObject(data, "host", r->host_name);
        cJSON_AddStringToObject(data, "cleanup", why);
        rc = record(r, "abort-requested", NULL, data);
    }
    if (rc == 0) {
        char *reason = xasprintf("aborted by %s; its cleanup steps did not run (%s)", r->operator, why);
        rc = finish(r, "run-aborted", reason, 0);
        free(reason);
    }
    cJSON_Delete(stale);
    run_free(r);
    return rc;
}

/* ---- plan ----------------------------------------------------------------- */

/* How many must approve the step, and who: the team's policy counts when
 * the plan knows the trail (drctl plan), not on a docs page. */
static void plan_approvers(cJSON *s, run *r, const step_spec *spec)
{
    approval_rule effective;
    if (!r->opts->plan_policy || rule_of(&effective, r, spec) != 0) {
        err_clear();
        approvals_effective(&effective, &spec->approvers, NULL, NULL, NULL, NULL, NULL);
    }
    if (effective.count > 1) {
        cJSON *a = cJSON_AddObjectToObject(s, "approvers");
        cJSON_AddNumberToObject(a, "count", effective.count);
        cJSON_AddItemToObject(a, "from", string_array(&effective.from));
        cJSON_AddNumberToObject(a, "valid_for_seconds", effective.valid_for);
    }
    approval_rule_dispose(&effective);
}

static cJSON *plan_step(int *failed, run *r, const step_spec *spec)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "name", spec->name);
    cJSON_AddBoolToObject(s, "destructive", spec->destructive);
    cJSON_AddBoolToObject(s, "idempotent", spec->idempotent);
    cJSON_AddBoolToObject(s, "always", spec->always);
    if (spec->timeout > 0)
        cJSON_AddNumberToObject(s, "timeout_seconds", spec->timeout);
    if (spec->retry_attempts > 1)
        cJSON_AddNumberToObject(s, "retry_attempts", spec->retry_attempts);
    if (spec->destructive)
        plan_approvers(s, r, spec);
    char *error = NULL;
    after_call plan = { .take = take_text };
    if (spec->plan_ref == LUA_NOREF) {
        cJSON_AddStringToObject(s, "plan", "(this step describes no plan)");
    } else if (call_with_ctx(r, spec->plan_ref, 30, &plan, &error, NULL) == 0) {
        cJSON_AddStringToObject(s, "plan", plan.text ? plan.text : "(the plan function returned no text)");
    } else {
        char *text = xasprintf("(plan failed: %s)", error);
        cJSON_AddStringToObject(s, "plan", text);
        cJSON_AddStringToObject(s, "plan_error", error);
        free(text);
        free(error);
        error = NULL;
        *failed = 1;
    }
    after_call_free(&plan);
    after_call confirm = { .take = take_confirmation };
    if (spec->destructive && set_plan_outputs(r, PLAN_PLACEHOLDERS) == 0 &&
        call_with_ctx(r, spec->confirm_ref, 30, &confirm, &error, NULL) == 0) {
        if (confirm.text) {
            cJSON *c = cJSON_AddObjectToObject(s, "confirm");
            cJSON_AddStringToObject(c, "summary", confirm.text);
            cJSON_AddStringToObject(c, "challenge", confirm.challenge);
        }
    } else {
        free(error);
        err_clear();
    }
    set_plan_outputs(r, 1);
    after_call_free(&confirm);
    return s;
}

/* Every step's plan, redacted; *failed is set when a plan function failed. */
static cJSON *plan_steps(int *failed, run *r, const cJSON *params)
{
    const runbook *rb = r->rb;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "runbook", rb->name);
    cJSON_AddStringToObject(out, "version", rb->version);
    cJSON_AddStringToObject(out, "summary", rb->summary);
    cJSON_AddStringToObject(out, "blob_id", rb->blob_id);
    cJSON_AddItemToObject(out, "params", params_redacted_copy(rb->params, rb->param_count, params));
    cJSON *steps = cJSON_AddArrayToObject(out, "steps");
    for (size_t i = 0; i < rb->step_count; i++)
        cJSON_AddItemToArray(steps, plan_step(failed, r, &rb->steps[i]));
    redact_json(out);
    return out;
}

int runner_plan(cJSON **plan, runbook *rb, const cJSON *params, dr_host *host, const char *audit_dir)
{
    *plan = NULL;
    runner_options opts = { .audit_dir = audit_dir ? audit_dir : ".", .host = host, .plan_policy = audit_dir != NULL };
    run *r = run_new(rb, &opts, "<run-id>");
    host->plan_mode = 1;
    r->params = cJSON_Duplicate(params, 1);
    int failed = 0;
    int rc = build_ctx(r, 1);
    if (rc == 0)
        *plan = plan_steps(&failed, r, params);
    host->plan_mode = 0;
    run_free(r);
    if (failed)
        rc = err_set(DR_EFAIL, "the plan of at least one step failed (shown in the plan)");
    return rc;
}
