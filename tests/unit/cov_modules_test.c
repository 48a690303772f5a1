/* The neon and json modules seen from a runbook, and drctl's command line,
 * on their refusals: wrong types, bad ids, values JSON cannot hold, options
 * without values. None needs a server: the one call that goes out aims at
 * a 127.0.0.1 port where nothing listens. */
#include "test.h"

#include "luaeval.h"

#include "buf.h"
#include "cli.h"
#include "drill.h"
#include "drmod.h"
#include "err.h"
#include "neonmod.h"
#include "params.h"
#include "sandbox.h"
#include "term.h"

#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a sandbox with dr, json and neon -------------------------------------- */

typedef struct {
    int events;
    int refuse_events; /* the journal cannot record: event returns an error */
} journal_seen;

static int count_event(void *ud, const char *kind, cJSON *data)
{
    journal_seen *j = ud;
    (void)kind;
    cJSON_Delete(data);
    j->events++;
    return j->refuse_events ? err_set(DR_EFAIL, "the journal is full") : 0;
}

static int no_confirm(void *ud, const char *summary, const char *challenge)
{
    (void)ud;
    (void)summary;
    (void)challenge;
    return DR_EREFUSED;
}

typedef struct {
    target *target;
    int plan_mode;
    int refuse_events;
    double timeout;
    int drill;                 /* run inside a drill... */
    const char *drill_project; /* ...that made this project (may be NULL) */
    const char *drill_branch;  /* ...and this branch (may be NULL) */
    size_t *drill_refusals;    /* gets how many changes the drill refused */
    const char *lib_dir;       /* where `require` finds library modules (may be NULL) */
} neon_setup;

/* Runs code as a runbook chunk; "ok: <tostring of result>" or "error: <message>".
 * Caller frees. */
static char *eval_with(const neon_setup *s, const char *code, int *events)
{
    sandbox *sb;
    if (sandbox_new(&sb, 64u << 20) != 0)
        return xstrdup("error: no sandbox");
    if (s->lib_dir)
        sandbox_add_lib_dir(sb, s->lib_dir);
    journal_seen seen = { .refuse_events = s->refuse_events };
    dr_host host = { .event = count_event, .confirm = no_confirm, .ud = &seen, .plan_mode = s->plan_mode };
    if (s->drill) {
        host.drill = drill_scope_new("drill-cov", 1.0e9);
        if (s->drill_project)
            drill_scope_add(host.drill, DRILL_PROJECT, s->drill_project);
        if (s->drill_branch)
            drill_scope_add(host.drill, DRILL_BRANCH, s->drill_branch);
    }
    drmod_register(sb, &host);
    neon_module m = { .host = &host, .target = s->target };
    neonmod_register(sb, &m);
    char *out = test_eval_in(sb, code, s->timeout > 0 ? s->timeout : 5);
    neonmod_close(&m);
    sandbox_free(sb);
    if (s->drill_refusals)
        *s->drill_refusals = drill_scope_refusal_count(host.drill);
    drill_scope_free(host.drill);
    if (events)
        *events = seen.events;
    return out;
}

/* Nothing listens on port 1 of the loopback: every call gets no answer. */
static target nowhere = { .kind = TARGET_LOCAL, .api_host = "http://127.0.0.1:1", .api_key = "k", .connected = 1 };

static char *eval(const char *code)
{
    neon_setup s = { .target = &nowhere };
    return eval_with(&s, code, NULL);
}

#define CHECK_HAS(got_expr, expected)                                         \
    do {                                                                      \
        char *got_ = (got_expr);                                              \
        int ok_ = got_ && strstr(got_, expected) != NULL;                     \
        if (!ok_)                                                             \
            test_fail(__FILE__, __LINE__, #got_expr " holds " expected, got_); \
        free(got_);                                                           \
        if (!ok_)                                                             \
            return;                                                           \
    } while (0)

#define CHECK_EVAL(code, expected) CHECK_HAS(eval(code), expected)

/* Calls a function of the module in a pcall, and returns its error's message. */
#define TRY(call) "local neon = require('neon'); local ok, e = pcall(function() return " call " end); " \
                  "if ok then return 'no error' end; " \
                  "return type(e) == 'table' and (e.code .. ': ' .. tostring(e.message)) or e"

/* ---- neon.request ------------------------------------------------------------ */

static void cov_modules_neon_request_refuses_a_method_it_does_not_know(void)
{
    CHECK_EVAL(TRY("neon.request('FETCH', '/projects')"),
               "method 'FETCH' is not one of GET, POST, PATCH, PUT, DELETE");
}

static void cov_modules_neon_request_refuses_a_path_without_a_leading_slash(void)
{
    CHECK_EVAL(TRY("neon.request('GET', 'projects')"), "the path 'projects' must start with '/'");
}

static void cov_modules_neon_request_refuses_a_path_carrying_a_newline(void)
{
    CHECK_EVAL(TRY("neon.request('GET', '/projects\\nX-Evil: 1')"), "a path cannot carry it");
}

static void cov_modules_neon_request_refuses_a_method_or_path_that_is_not_a_string(void)
{
    CHECK_EVAL(TRY("neon.request({}, '/projects')"), "bad argument #1");
    CHECK_EVAL(TRY("neon.request('GET')"), "bad argument #2");
}

static void cov_modules_neon_request_refuses_a_change_in_plan_mode(void)
{
    neon_setup s = { .target = &nowhere, .plan_mode = 1 };
    CHECK_HAS(eval_with(&s, TRY("neon.request('DELETE', '/projects/p1')"), NULL),
              "neon.request DELETE /projects/p1 is refused in plan mode");
}

static void cov_modules_neon_request_without_a_target_says_how_to_give_one(void)
{
    target none = { .kind = TARGET_NONE };
    neon_setup s = { .target = &none };
    CHECK_HAS(eval_with(&s, TRY("neon.request('GET', '/projects')"), NULL), "the neon module has no target");
    neon_setup unset = { 0 };
    CHECK_HAS(eval_with(&unset, TRY("neon.request('GET', '/projects')"), NULL), "the neon module has no target");
    target unconnected = { .kind = TARGET_LOCAL, .api_host = "http://127.0.0.1:1", .connected = 0 };
    neon_setup u = { .target = &unconnected };
    CHECK_HAS(eval_with(&u, TRY("neon.wait({})"), NULL), "the neon module has no target");
}

static void cov_modules_neon_request_names_an_api_address_that_is_not_http(void)
{
    target ftp = { .kind = TARGET_CLOUD, .api_host = "ftp://example.invalid", .api_key = "k", .connected = 1 };
    neon_setup s = { .target = &ftp };
    CHECK_HAS(eval_with(&s, TRY("neon.request('GET', '/projects')"), NULL),
              "the Neon API address 'ftp://example.invalid' must start with https://");
}

static void cov_modules_neon_request_refuses_a_body_that_is_not_a_table(void)
{
    CHECK_EVAL(TRY("neon.request('POST', '/projects', 'text')"), "bad argument #3");
}

static void cov_modules_neon_request_names_a_body_json_cannot_hold(void)
{
    CHECK_EVAL(TRY("neon.request('POST', '/projects', { project = { f = function() end } })"),
               "neon.request POST /projects: body.project.f: a function cannot be saved as JSON");
    CHECK_EVAL("local neon = require('neon'); local t = {}; t.self = t; "
               "local ok, e = pcall(neon.request, 'PATCH', '/projects/p', t); return e",
               "nested too deeply (is there a cycle?)");
}

/* The one call that goes out: refused at the socket, the error is a table
 * naming the call, and the journal holds the call. */
static void cov_modules_neon_request_with_no_answer_raises_a_table_naming_the_call(void)
{
    neon_setup s = { .target = &nowhere, .timeout = 0.15 };
    int events = 0;
    CHECK_HAS(eval_with(&s, "local neon = require('neon'); "
                        "local ok, e = pcall(neon.request, 'GET', '/projects', nil, { wait = false }); "
                        "return type(e) == 'table' and (e.code .. ' ' .. e.method .. ' ' .. e.path .. ' ' "
                        ".. e.status) or tostring(e)", &events),
              "UNREACHABLE GET /projects 0");
    CHECK(events == 1);
}

static void cov_modules_neon_request_whose_journal_fails_says_the_event_was_not_recorded(void)
{
    neon_setup s = { .target = &nowhere, .timeout = 0.15, .refuse_events = 1 };
    CHECK_HAS(eval_with(&s, "local neon = require('neon'); "
                        "local ok, e = pcall(neon.request, 'GET', '/projects', {}, { wait = true }); "
                        "return type(e) == 'table' and e.code or tostring(e)", NULL),
              "UNREACHABLE");
}

/* ---- neon.wait and neon.target ---------------------------------------------- */

static void cov_modules_neon_wait_refuses_what_is_not_a_table(void)
{
    CHECK_EVAL(TRY("neon.wait('op-1')"), "bad argument #1");
}

static void cov_modules_neon_wait_on_no_operations_returns_true_at_once(void)
{
    int events = -1;
    neon_setup s = { .target = &nowhere };
    CHECK_HAS(eval_with(&s, "return require('neon').wait({})", &events), "ok: true");
    CHECK(events == 0);
}

static void cov_modules_neon_wait_names_operations_json_cannot_hold(void)
{
    CHECK_EVAL(TRY("neon.wait({ { id = 'op', at = 0/0 } })"), "neon.wait: operations[1].at: NaN and infinities");
}

static void cov_modules_neon_wait_that_cannot_poll_fails_with_a_table(void)
{
    neon_setup s = { .target = &nowhere, .timeout = 0.15 };
    int events = 0;
    CHECK_HAS(eval_with(&s, "local ok, e = pcall(require('neon').wait, { { id = 'op-1', status = 'running' } }); "
                        "return ok and 'waited' or (type(e) == 'table' and (e.method .. ' ' .. e.path) or e)",
                        &events),
              "GET operations");
    CHECK(events == 1);
}

static void cov_modules_neon_target_describes_the_target(void)
{
    CHECK_EVAL("local t = require('neon').target(); return type(t) == 'table' and 'a table' or type(t)",
               "ok: a table");
}


static void cov_modules_neon_request_in_plan_mode_still_reads(void)
{
    neon_setup s = { .target = &nowhere, .plan_mode = 1, .timeout = 0.1 };
    CHECK_HAS(eval_with(&s, TRY("neon.request('GET', '/projects', nil, {})"), NULL), "UNREACHABLE: ");
}

/* ---- drills -------------------------------------------------------------------- */

/* A change in a drill, to what the drill could not show it made (its reads
 * get no answer): refused with DRILL_REFUSED, and the refusal is kept. */
static char *drill_eval(const char *project, const char *branch, const char *call, size_t *refusals)
{
    neon_setup s = { .target = &nowhere, .timeout = 0.1, .drill = 1, .drill_project = project,
                     .drill_branch = branch, .drill_refusals = refusals };
    return eval_with(&s, call, NULL);
}

static void cov_modules_drill_refuses_deleting_a_project_it_did_not_make(void)
{
    size_t refusals = 0;
    CHECK_HAS(drill_eval(NULL, NULL, TRY("neon.request('DELETE', '/projects/p1')"), &refusals),
              "DRILL_REFUSED: the drill refused DELETE /projects/p1: project p1 was not made by this drill");
    CHECK(refusals == 1);
}

static void cov_modules_drill_refuses_changing_a_branch_endpoint_or_snapshot_of_another_project(void)
{
    size_t refusals = 0;
    CHECK_HAS(drill_eval("p-mine", NULL, TRY("neon.request('DELETE', '/projects/p2/branches/br-9')"), &refusals),
              "branch br-9 of project p2 was not made by this drill");
    CHECK(refusals == 1);
    CHECK_HAS(drill_eval(NULL, NULL, TRY("neon.request('PATCH', '/projects/p2/endpoints/ep-1', {})"), NULL),
              "endpoint ep-1 of project p2 was not made");
    CHECK_HAS(drill_eval(NULL, NULL, TRY("neon.request('DELETE', '/projects/p2/snapshots/sn-1')"), NULL),
              "snapshot sn-1 of project p2 was not made");
    CHECK_HAS(drill_eval(NULL, NULL, TRY("neon.request('POST', '/projects/p2/endpoints', { endpoint = {} })"), NULL),
              "branch (the default) of project p2 was not made");
}

static void cov_modules_drill_lets_through_a_change_to_what_it_made(void)
{
    size_t refusals = 1;
    CHECK_HAS(drill_eval("p1", NULL, TRY("neon.request('DELETE', '/projects/p1/branches/br-1')"), &refusals),
              "UNREACHABLE: ");
    CHECK(refusals == 0);
    CHECK_HAS(drill_eval(NULL, "br-1", TRY("neon.request('PATCH', '/projects/p9/branches/br-1', {})"), &refusals),
              "UNREACHABLE: ");
    CHECK(refusals == 0);
    CHECK_HAS(drill_eval(NULL, NULL, TRY("neon.request('POST', '/projects', { project = {} })"), &refusals),
              "UNREACHABLE: ");
    CHECK(refusals == 0);
}

static void cov_modules_drill_branches_from_its_own_branch_after_trying_to_read_it(void)
{
    size_t refusals = 1;
    CHECK_HAS(drill_eval("p1", NULL, TRY("neon.request('POST', '/projects/p1/branches')"), &refusals),
              "UNREACHABLE: ");
    CHECK_HAS(drill_eval("p1", "br-parent",
                         TRY("neon.request('POST', '/projects/p1/branches', { branch = { parent_id = 'br-parent' } })"),
                         &refusals),
              "UNREACHABLE: ");
    CHECK(refusals == 0);
}

static void cov_modules_drill_set_as_default_of_an_unreadable_branch_names_it(void)
{
    CHECK_HAS(drill_eval("p1", NULL, TRY("neon.request('POST', '/projects/p1/branches/br-1/set_as_default')"), NULL),
              "the drill's branch br-1 cannot be read");
}

/* ---- json -------------------------------------------------------------------------- */

static void cov_modules_json_encode_refuses_what_json_cannot_hold(void)
{
    CHECK_EVAL("return require('json').encode(9007199254740993)", "an integer beyond 2^53");
    CHECK_EVAL("return require('json').encode({ -9007199254740993 })", "an integer beyond 2^53");
    CHECK_EVAL("return require('json').encode({ 1/0 })", "NaN and infinities cannot be saved as JSON");
    CHECK_EVAL("return require('json').encode('a\\0b')", "a string with a NUL byte");
    CHECK_EVAL("return require('json').encode({ a = 1, 2 })", "a table mixing string keys");
    CHECK_EVAL("return require('json').encode({ [1] = 1, [3] = 3 })", "with holes");
    CHECK_EVAL("return require('json').encode({ [true] = 1 })", "a table mixing");
    CHECK_EVAL("return require('json').encode({ [0] = 1 })", "a table mixing");
    CHECK_EVAL("return require('json').encode({ [1.5] = 1 })", "a table mixing");
    CHECK_EVAL("return require('json').encode(coroutine.create(print))", "a thread cannot be saved as JSON");
    CHECK_EVAL("return require('json').encode()", "bad argument #1");
}

static void cov_modules_json_encode_names_where_a_cycle_passes_the_depth_limit(void)
{
    CHECK_EVAL("local t = {}; t[1] = t; return require('json').encode({ x = t })",
               "nested too deeply (is there a cycle?)");
}

static void cov_modules_json_encode_writes_plain_values_and_null(void)
{
    CHECK_EVAL("local json = require('json'); return json.encode({ json.null, true, false, -0.0, 1.5, 'x' })",
               "ok: [null,true,false,-0,1.5,\"x\"]");
    CHECK_EVAL("local json = require('json'); return json.encode({ b = { 1, 2 }, a = {} }, true)", "\"a\":");
    CHECK_EVAL("return require('json').encode(nil)", "ok: null");
}

static void cov_modules_json_decode_reports_text_it_cannot_read(void)
{
    CHECK_EVAL("local v, e = require('json').decode('{\"a\": '); return tostring(v) .. ' ' .. tostring(e)",
               "ok: nil json.decode");
    CHECK_EVAL("local v, e = require('json').decode(''); return tostring(v) .. ' ' .. tostring(e)",
               "ok: nil json.decode: invalid JSON at byte 0");
    CHECK_EVAL("return require('json').decode({})", "bad argument #1");
    /* text after the value is not JSON (once the value alone was taken) */
    CHECK_EVAL("local v, e = require('json').decode('[1] trailing'); return tostring(v) .. ' ' .. tostring(e)",
               "ok: nil json.decode: invalid JSON at byte 4");
    CHECK_EVAL("local v = require('json').decode('[1] \\n'); return #v", "ok: 1");
}

static void cov_modules_json_decode_gives_back_numbers_as_they_left(void)
{
    CHECK_EVAL("local v = require('json').decode('[1e300, 2.5, -0.0, 3, null, {\"k\": false}]'); "
               "return math.type(v[1]) .. ' ' .. math.type(v[2]) .. ' ' .. math.type(v[3]) .. ' ' .. "
               "math.type(v[4]) .. ' ' .. tostring(v[6].k)",
               "ok: float float float integer false");
}



/* The limits are about the whole value: a refusal names the root, and
 * where inside it the limit was passed. */
static void cov_modules_json_refuses_values_past_its_limits_naming_where(void)
{
    CHECK_EVAL("return require('json').encode(string.rep('a', 16 * 1024 * 1024))",
               "value: larger than 16 MiB as JSON; keep big data in files or tables");
    CHECK_EVAL("return require('json').encode({ big = string.rep('a', 16 * 1024 * 1024) })",
               "(the limit is passed at value.big)");
    CHECK_EVAL("local t = {}; for i = 1, 1048577 do t[i] = true end; return require('json').encode(t)",
               "more than 1048576 values as JSON");
    CHECK_EVAL("local v, e = require('json').decode(string.rep(' ', 16 * 1024 * 1024 + 1)); return e",
               "over the limit of 16 MiB");
}

/* ---- params ------------------------------------------------------------------------- */

/* The message params_parse_value gives text, or "ok: <json>". Caller frees. */
static char *parse_param(param_spec spec, const char *text)
{
    cJSON *value = NULL;
    if (params_parse_value(&value, &spec, text) != 0)
        return xasprintf("error: %s", err_last());
    char *json = cJSON_PrintUnformatted(value);
    char *out = xasprintf("ok: %s", json);
    free(json);
    cJSON_Delete(value);
    return out;
}

static void cov_modules_params_refuse_ints_that_are_not_whole_numbers_within_2_53(void)
{
    param_spec n = { .name = "count", .type = PARAM_INT };
    CHECK_HAS(parse_param(n, ""), "param 'count': '' is not valid: expected a whole number, like 30");
    CHECK_HAS(parse_param(n, " 5"), "' 5' is not valid");
    CHECK_HAS(parse_param(n, "5x"), "'5x' is not valid");
    CHECK_HAS(parse_param(n, "9007199254740993"), "'9007199254740993' is not valid");
    CHECK_HAS(parse_param(n, "-9007199254740993"), "'-9007199254740993' is not valid");
    CHECK_HAS(parse_param(n, "99999999999999999999"), "is not valid");
    CHECK_HAS(parse_param(n, "-42"), "ok: -42");
}

static void cov_modules_params_read_bools_paths_and_enums_or_name_the_form(void)
{
    param_spec b = { .name = "force", .type = PARAM_BOOL };
    CHECK_HAS(parse_param(b, "maybe"), "'maybe' is not valid: expected true or false");
    CHECK_HAS(parse_param(b, "OFF"), "ok: false");
    CHECK_HAS(parse_param(b, "Yes"), "ok: true");
    param_spec p = { .name = "dump", .type = PARAM_PATH };
    CHECK_HAS(parse_param(p, ""), "expected a local file or folder, or an s3://bucket/prefix URL");
    CHECK_HAS(parse_param(p, "a\nb"), "is not valid");
    CHECK_HAS(parse_param(p, "s3://b/x"), "ok: \"s3://b/x\"");
    char *values[] = { "fast", "safe" };
    param_spec e = { .name = "mode", .type = PARAM_ENUM, .values = values, .value_count = 2 };
    CHECK_HAS(parse_param(e, "slow"), "'slow' is not valid: expected one of fast, safe");
    CHECK_HAS(parse_param(e, "safe"), "ok: \"safe\"");
    param_spec odd = { .name = "odd", .type = (param_type)99 };
    CHECK_HAS(parse_param(odd, "x"), "param 'odd': unknown type");
}

static void cov_modules_params_never_show_a_secret_value_in_their_refusals(void)
{
    param_spec pin = { .name = "pin", .type = PARAM_INT, .secret = 1 };
    char *got = parse_param(pin, "12ab-secret");
    CHECK(got && strstr(got, "'<redacted>' is not valid") && !strstr(got, "12ab-secret"));
    free(got);
    param_spec at = { .name = "at", .type = PARAM_TIMESTAMP, .secret = 1 };
    got = parse_param(at, "hidden-time");
    CHECK(got && strstr(got, "param 'at': the value is not of the expected form") && !strstr(got, "hidden-time"));
    free(got);
    param_spec when = { .name = "when", .type = PARAM_TIMESTAMP };
    CHECK_HAS(parse_param(when, "yesterday"), "param 'when': ");
    param_spec ttl = { .name = "ttl", .type = PARAM_DURATION };
    CHECK_HAS(parse_param(ttl, "forever"), "param 'ttl': ");
    CHECK_HAS(parse_param(ttl, "2h"), "ok: 7200");
}

static void cov_modules_params_expected_forms_name_every_type(void)
{
    static const struct { param_type type; const char *form; } forms[] = {
        { PARAM_STRING, "text" }, { PARAM_INT, "a whole number" }, { PARAM_BOOL, "true or false" },
        { PARAM_TIMESTAMP, "a time like" }, { PARAM_DURATION, "a duration like" },
        { PARAM_PATH, "s3://" }, { PARAM_ENUM, "one of " },
    };
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        param_spec spec = { .name = "x", .type = forms[i].type };
        char *form = params_expected_form(&spec);
        int ok = strstr(form, forms[i].form) != NULL;
        free(form);
        CHECK(ok);
    }
}

/* params_resolve_from's refusal, or "ok: <values> <sources>". Caller frees. */
static char *resolve(const param_spec *specs, size_t count, char **assignments, size_t n, const char *fixed_json,
                     const char *settings_json)
{
    cJSON *fixed = fixed_json ? cJSON_Parse(fixed_json) : NULL;
    cJSON *settings = settings_json ? cJSON_Parse(settings_json) : NULL;
    params_input in = { .assignments = assignments, .assignment_count = n, .fixed = fixed, .settings = settings };
    cJSON *values = NULL, *sources = NULL;
    char *out;
    if (params_resolve_from(&values, &sources, specs, count, &in) != 0) {
        out = xasprintf("error: %s", err_last());
    } else {
        char *v = cJSON_PrintUnformatted(values), *s = cJSON_PrintUnformatted(sources);
        out = xasprintf("ok: %s %s", v, s);
        free(v);
        free(s);
    }
    cJSON_Delete(values);
    cJSON_Delete(sources);
    cJSON_Delete(fixed);
    cJSON_Delete(settings);
    return out;
}

static void cov_modules_params_refuse_assignments_without_a_known_key(void)
{
    param_spec specs[] = { { .name = "project", .type = PARAM_STRING }, { .name = "count", .type = PARAM_INT } };
    char *no_eq[] = { "project" }, *no_key[] = { "=x" }, *unknown[] = { "colour=red" }, *twice[] = { "count=1", "count=2" };
    CHECK_HAS(resolve(specs, 2, no_eq, 1, NULL, NULL), "'-p project' must be written -p key=value");
    CHECK_HAS(resolve(specs, 2, no_key, 1, NULL, NULL), "'-p =x' must be written -p key=value");
    CHECK_HAS(resolve(specs, 2, unknown, 1, NULL, NULL), "unknown param 'colour'; this runbook takes: project, count");
    CHECK_HAS(resolve(NULL, 0, unknown, 1, NULL, NULL), "this runbook takes: no params");
    CHECK_HAS(resolve(specs, 2, twice, 2, NULL, NULL), "param 'count' is given twice");
}

static void cov_modules_params_of_a_resumed_run_keep_their_values_and_ask_for_secrets_again(void)
{
    param_spec specs[] = { { .name = "project", .type = PARAM_STRING },
                           { .name = "db-pass", .type = PARAM_STRING, .secret = 1 } };
    char *again[] = { "project=p2" }, *secret[] = { "db-pass=s3cr3t-value" };
    const char *fixed = "{\"project\":\"p1\",\"db-pass\":\"<redacted>\"}";
    CHECK_HAS(resolve(specs, 2, again, 1, fixed, NULL), "param 'project' was fixed when the run started");
    CHECK_HAS(resolve(specs, 2, NULL, 0, fixed, NULL),
              "param 'db-pass' is secret and was not stored; give it again with -p db-pass=... or DRCTL_PARAM_DB_PASS");
    CHECK_HAS(resolve(specs, 2, secret, 1, fixed, NULL), "\"project\":\"run\",\"db-pass\":\"-p\"");
    setenv("DRCTL_PARAM_DB_PASS", "from-the-env", 1);
    char *got = resolve(specs, 2, NULL, 0, fixed, NULL);
    unsetenv("DRCTL_PARAM_DB_PASS");
    CHECK_HAS(got, "\"db-pass\":\"DRCTL_PARAM_DB_PASS\"");
}

static void cov_modules_params_come_from_the_env_the_config_or_the_default_and_say_so(void)
{
    param_spec specs[] = {
        { .name = "project", .type = PARAM_STRING, .env = "COV_MODULES_PROJECT" },
        { .name = "ttl", .type = PARAM_DURATION, .config = "cov_ttl", .default_text = "1h" },
    };
    setenv("COV_MODULES_PROJECT", "p-env", 1);
    char *got = resolve(specs, 2, NULL, 0, NULL, "{\"cov_ttl\":\"2h\"}");
    CHECK_HAS(got, "{\"project\":\"p-env\",\"ttl\":7200} {\"project\":\"COV_MODULES_PROJECT\",\"ttl\":\"config cov_ttl\"}");
    setenv("COV_MODULES_PROJECT", "", 1);
    got = resolve(specs, 2, NULL, 0, NULL, "{\"cov_ttl\":\"soon\"}");
    unsetenv("COV_MODULES_PROJECT");
    CHECK_HAS(got, "(from config.json cov_ttl; drctl config set cov_ttl VALUE changes it)");
    CHECK_HAS(resolve(specs, 2, NULL, 0, NULL, "{\"cov_ttl\":7}"), "\"ttl\":\"default\"");
}

static void cov_modules_params_a_missing_required_one_says_how_to_give_it(void)
{
    param_spec with_env = { .name = "project", .type = PARAM_STRING, .required = 1, .doc = "the project",
                            .env = "COV_MODULES_UNSET_VARIABLE" };
    CHECK_HAS(resolve(&with_env, 1, NULL, 0, NULL, NULL),
              "param 'project' is required (the project): give -p project=<text> or set COV_MODULES_UNSET_VARIABLE");
    param_spec plain = { .name = "count", .type = PARAM_INT, .required = 1 };
    CHECK_HAS(resolve(&plain, 1, NULL, 0, NULL, NULL), "param 'count' is required: give -p count=<a whole number");
}


/* ---- the sandbox ------------------------------------------------------------------- */

static void cov_modules_sandbox_names_what_a_runbook_reached_for(void)
{
    CHECK_EVAL("return _G[1]", "unknown global '?'");
    CHECK_EVAL("return string.nosuch", "string.nosuch is not available to runbooks");
    CHECK_EVAL("return setmetatable({}, 5)", "nil or table expected");
}

static void cov_modules_sandbox_load_takes_text_chunks_only(void)
{
    CHECK_EVAL("local f, e = load(42); return e", "ok: load: runbooks may load text chunks given as strings only");
    CHECK_EVAL("local f, e = load('return 1', 'c', 'b'); return e", "binary chunks are not allowed");
    CHECK_EVAL("local f, e = load('return (', '=chunk'); return e", "ok: chunk:1:");
    CHECK_EVAL("return load('return x', '=c', 't', { x = 'from the env' })()", "ok: from the env");
    CHECK_EVAL("return load('return y')", "ok: function");
}

static void cov_modules_sandbox_require_refuses_names_that_are_not_module_names(void)
{
    CHECK_EVAL("return require('')", "require '': module names are letters");
    CHECK_EVAL("return require('.hidden')", "require '.hidden': module names");
    CHECK_EVAL("return require('a..b')", "require 'a..b': module names");
    CHECK_EVAL("return require('a.')", "require 'a.': module names");
    CHECK_EVAL("return require('a b')", "require 'a b': module names");
    CHECK_EVAL("return require('nosuch')", "looked up as (no lua/ folder found)");
}

static void cov_modules_sandbox_require_loads_library_modules_and_names_the_ones_it_cannot(void)
{
    const char *dir = test_tmpdir();
    char *sub = xasprintf("%s/cov", dir);
    mkdir(sub, 0755);
    free(sub);
    test_write_file("cov/nothing.lua", "local x = 1\n");
    test_write_file("cov/broken.lua", "return (\n");
    neon_setup s = { .target = &nowhere, .lib_dir = dir };
    CHECK_HAS(eval_with(&s, "return require('cov.nothing')", NULL), "ok: true");
    CHECK_HAS(eval_with(&s, "return require('cov.broken')", NULL), "cov/broken.lua:2: unexpected symbol near <eof>");
    CHECK_HAS(eval_with(&s, "return require('cov.missing')", NULL), "cov/missing.lua");
}

static void cov_modules_sandbox_shows_an_error_table_by_its_message_and_fields(void)
{
    CHECK_EVAL("error({ message = 'it broke', code = 7 })", "error: it broke {\"code\":7}");
    CHECK_EVAL("error({ message = 'only this' })", "error: only this");
    CHECK_EVAL("error({ code = 7 })", "error: {\"code\":7}");
    CHECK_EVAL("error({ f = print })", "error: (an error table that cannot be shown: ");
    CHECK_EVAL("error(setmetatable({}, { __tostring = function() return 'shown by tostring' end }))",
               "error: shown by tostring");
}

/* ---- the command line ------------------------------------------------------------ */

/* cli_main with its output thrown away; returns its exit status. */
static int drctl(int argc, char **argv)
{
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2), null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    close(null);
    int status = cli_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    term_set_verbosity(TERM_NORMAL);
    return status;
}

#define ARGC(a) ((int)(sizeof(a) / sizeof *(a)))

#define CHECK_CLI_USAGE(expected, ...)                                          \
    do {                                                                        \
        char *argv_[] = { "drctl", __VA_ARGS__ };                               \
        int status_ = drctl(ARGC(argv_), argv_);                                \
        if (status_ != 2 || !strstr(err_last(), expected))                      \
            test_fail(__FILE__, __LINE__, "drctl " #__VA_ARGS__ " is refused: " expected, err_last()); \
        if (status_ != 2 || !strstr(err_last(), expected))                      \
            return;                                                             \
    } while (0)

static void cov_modules_cli_options_without_a_value_name_the_option(void)
{
    CHECK_CLI_USAGE("--runbooks needs a value", "list", "--runbooks");
    CHECK_CLI_USAGE("--audit needs a value", "list", "--audit");
    CHECK_CLI_USAGE("-p needs a value", "run", "-p");
    CHECK_CLI_USAGE("--param needs a value", "run", "--param");
    CHECK_CLI_USAGE("--approve needs a value", "run", "--approve");
    CHECK_CLI_USAGE("--out needs a value", "docs", "--out");
    CHECK_CLI_USAGE("--allowed-signers needs a value", "audit", "--allowed-signers");
    CHECK_CLI_USAGE("--prometheus needs a value", "check", "--prometheus");
    CHECK_CLI_USAGE("--run-id needs a value", "run", "--run-id");
}

static void cov_modules_cli_refuses_an_unknown_option_and_an_unknown_command(void)
{
    CHECK_CLI_USAGE("unknown option '--frobnicate'", "list", "--frobnicate");
    CHECK_CLI_USAGE("unknown option '-x'", "list", "-x");
    CHECK_CLI_USAGE("unknown command 'frobnicate'", "frobnicate");
    CHECK_CLI_USAGE("unknown command '-'", "-");
    CHECK_CLI_USAGE("unknown command '--json'", "--", "--json");
    CHECK_CLI_USAGE("unknown option '-pproject'", "run", "-pproject");
    CHECK_CLI_USAGE("unknown option '--frob'", "--runbooks=d", "--audit=a", "--verbose", "--quiet", "list", "--frob");
}

static void cov_modules_cli_refuses_a_run_id_that_could_escape_its_folder(void)
{
    CHECK_CLI_USAGE("--run-id '../x' must be 1 to 128 letters", "run", "--run-id=../x");
    CHECK_CLI_USAGE("--run-id '.hidden' must be", "run", "--run-id", ".hidden");
}

static void cov_modules_cli_refuses_options_that_do_not_apply_to_the_command(void)
{
    CHECK_CLI_USAGE("--history does not apply to 'list'", "list", "--history");
    CHECK_CLI_USAGE("-p does not apply to 'list'", "list", "-pproject=x");
    CHECK_CLI_USAGE("-p does not apply to 'status'", "status", "--param=a=b");
    CHECK_CLI_USAGE("--approve does not apply to 'plan'", "plan", "--approve=x");
    CHECK_CLI_USAGE("--run-id does not apply to 'plan'", "plan", "--run-id=r1");
    CHECK_CLI_USAGE("--out does not apply to 'list'", "list", "--out", "d");
    CHECK_CLI_USAGE("--allowed-signers does not apply to 'list'", "list", "--allowed-signers=f");
    CHECK_CLI_USAGE("--prometheus does not apply to 'list'", "list", "--prometheus=f");
    CHECK_CLI_USAGE("--allow-runbook-change does not apply to 'run'", "run", "--allow-runbook-change");
    CHECK_CLI_USAGE("--allow-runbook-change does not apply to 'undo'", "undo", "--allow-runbook-change");
}

static void cov_modules_cli_without_a_command_asks_for_one(void)
{
    CHECK_CLI_USAGE("a command is needed", "-q");
    CHECK_CLI_USAGE("a command is needed", "-v", "--local", "--json");
}

static void cov_modules_cli_help_for_a_command_and_help_topics_succeed(void)
{
    char *a[] = { "drctl", "run", "--help" };
    CHECK(drctl(ARGC(a), a) == 0);
    char *b[] = { "drctl", "help", "drill" };
    CHECK(drctl(ARGC(b), b) == 0);
    char *c[] = { "drctl", "help", "no-such-topic" };
    CHECK(drctl(ARGC(c), c) == 0);
    char *d[] = { "drctl", "-h" };
    CHECK(drctl(ARGC(d), d) == 0);
    char *e[] = { "drctl", "--version" };
    CHECK(drctl(ARGC(e), e) == 0);
}

TEST_SUITE(cov_modules)
{
    REGISTER(cov_modules_neon_request_refuses_a_method_it_does_not_know);
    REGISTER(cov_modules_neon_request_refuses_a_path_without_a_leading_slash);
    REGISTER(cov_modules_neon_request_refuses_a_path_carrying_a_newline);
    REGISTER(cov_modules_neon_request_refuses_a_method_or_path_that_is_not_a_string);
    REGISTER(cov_modules_neon_request_refuses_a_change_in_plan_mode);
    REGISTER(cov_modules_neon_request_without_a_target_says_how_to_give_one);
    REGISTER(cov_modules_neon_request_names_an_api_address_that_is_not_http);
    REGISTER(cov_modules_neon_request_refuses_a_body_that_is_not_a_table);
    REGISTER(cov_modules_neon_request_names_a_body_json_cannot_hold);
    REGISTER(cov_modules_neon_request_with_no_answer_raises_a_table_naming_the_call);
    REGISTER(cov_modules_neon_request_whose_journal_fails_says_the_event_was_not_recorded);
    REGISTER(cov_modules_neon_wait_refuses_what_is_not_a_table);
    REGISTER(cov_modules_neon_wait_on_no_operations_returns_true_at_once);
    REGISTER(cov_modules_neon_wait_names_operations_json_cannot_hold);
    REGISTER(cov_modules_neon_wait_that_cannot_poll_fails_with_a_table);
    REGISTER(cov_modules_neon_target_describes_the_target);
    REGISTER(cov_modules_neon_request_in_plan_mode_still_reads);
    REGISTER(cov_modules_drill_refuses_deleting_a_project_it_did_not_make);
    REGISTER(cov_modules_drill_refuses_changing_a_branch_endpoint_or_snapshot_of_another_project);
    REGISTER(cov_modules_drill_lets_through_a_change_to_what_it_made);
    REGISTER(cov_modules_drill_branches_from_its_own_branch_after_trying_to_read_it);
    REGISTER(cov_modules_drill_set_as_default_of_an_unreadable_branch_names_it);
    REGISTER(cov_modules_json_encode_refuses_what_json_cannot_hold);
    REGISTER(cov_modules_json_encode_names_where_a_cycle_passes_the_depth_limit);
    REGISTER(cov_modules_json_encode_writes_plain_values_and_null);
    REGISTER(cov_modules_json_decode_reports_text_it_cannot_read);
    REGISTER(cov_modules_json_decode_gives_back_numbers_as_they_left);
    REGISTER(cov_modules_json_refuses_values_past_its_limits_naming_where);
    REGISTER(cov_modules_params_refuse_ints_that_are_not_whole_numbers_within_2_53);
    REGISTER(cov_modules_params_read_bools_paths_and_enums_or_name_the_form);
    REGISTER(cov_modules_params_never_show_a_secret_value_in_their_refusals);
    REGISTER(cov_modules_params_expected_forms_name_every_type);
    REGISTER(cov_modules_params_refuse_assignments_without_a_known_key);
    REGISTER(cov_modules_params_of_a_resumed_run_keep_their_values_and_ask_for_secrets_again);
    REGISTER(cov_modules_params_come_from_the_env_the_config_or_the_default_and_say_so);
    REGISTER(cov_modules_params_a_missing_required_one_says_how_to_give_it);
    REGISTER(cov_modules_sandbox_names_what_a_runbook_reached_for);
    REGISTER(cov_modules_sandbox_load_takes_text_chunks_only);
    REGISTER(cov_modules_sandbox_require_refuses_names_that_are_not_module_names);
    REGISTER(cov_modules_sandbox_require_loads_library_modules_and_names_the_ones_it_cannot);
    REGISTER(cov_modules_sandbox_shows_an_error_table_by_its_message_and_fields);
    REGISTER(cov_modules_cli_options_without_a_value_name_the_option);
    REGISTER(cov_modules_cli_refuses_an_unknown_option_and_an_unknown_command);
    REGISTER(cov_modules_cli_refuses_a_run_id_that_could_escape_its_folder);
    REGISTER(cov_modules_cli_refuses_options_that_do_not_apply_to_the_command);
    REGISTER(cov_modules_cli_without_a_command_asks_for_one);
    REGISTER(cov_modules_cli_help_for_a_command_and_help_topics_succeed);
}
