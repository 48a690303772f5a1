/* Fault injection, SQLite style: an operation runs with its Nth write,
 * fsync, rename or allocation failing, for N = 1, 2, ... until it no longer
 * meets the fault. Each failure must be a clean error (a return code and a
 * message naming the file and the cause), leak nothing (the sanitizer build
 * checks), and leave every durable file old or new, never torn; a run must
 * then resume to its end once the fault is gone.
 *
 * The I/O faults need the test build's fault points (-DDRCTL_TEST_HOOKS:
 * make hooks, make faults); in the normal build one test says so. */
#include "test.h"

#ifdef DRCTL_TEST_HOOKS

#include "audit.h"
#include "buf.h"
#include "checkpoint.h"
#include "config.h"
#include "err.h"
#include "faultinject.h"
#include "fsio.h"
#include "journal.h"
#include "runbook.h"
#include "runner.h"
#include "sandbox.h"
#include "term.h"
#include "testhook.h"
#include "verify.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Fault points met by each test, printed so that a run shows how much was
 * injected (operations x N). */
static void report_points(const char *what, long points)
{
    printf("    %s: %ld fault points\n", what, points);
}

static char *text_of(const char *path)
{
    char *text = NULL;
    if (fsio_read_file(&text, NULL, path) != 0)
        return NULL;
    return text;
}

/* 1 when dir holds a temporary of fsio_write_durable (NAME.tmp-PID). */
static int has_temporary(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp-"))
            found = 1;
    closedir(d);
    return found;
}

/* ---- fsio_write_durable ---------------------------------------------------- */

static void durable_write_at_each_fault(int err, int once, long *points)
{
    const char *path = test_write_file("durable/state.json", "old\n");
    char *dir = fsio_dirname(path);
    for (long n = 1; n < 50; n++) {
        CHECK(fsio_write_durable_mode(path, "old\n", 4, 0600) == 0);
        err_clear();
        once ? testhook_set_io_fault_once(n, err) : testhook_set_io_fault(n, err);
        int rc = fsio_write_durable_mode(path, "new content\n", 12, 0600);
        long calls = testhook_io_calls();
        testhook_set_io_fault(0, 0);
        char *text = text_of(path);
        int old = text && strcmp(text, "old\n") == 0, new = text && strcmp(text, "new content\n") == 0;
        free(text);
        CHECK(old || new);
        CHECK(!has_temporary(dir));
        if (rc == 0 && calls < n) {
            CHECK(new);
            struct stat st;
            CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
            break;
        }
        (*points)++;
        CHECK(rc == DR_EFAIL);
        CHECK_CONTAINS(err_last(), path);
        CHECK_CONTAINS(err_last(), strerror(err));
    }
    free(dir);
}

static void fault_injection_a_durable_write_leaves_the_old_file_or_the_new(void)
{
    long points = 0;
    durable_write_at_each_fault(ENOSPC, 0, &points);
    durable_write_at_each_fault(EIO, 0, &points);
    durable_write_at_each_fault(EIO, 1, &points);
    report_points("fsio_write_durable (ENOSPC, EIO, EIO once)", points);
    CHECK(points == 15); /* create, write, fsync, rename, fsync of the directory: three times */
}

/* ---- journal append -------------------------------------------------------- */

static journal *journal_with_two_events(const char *run_dir)
{
    fsio_mkdirs(run_dir, 0755);
    journal *j = NULL;
    if (journal_create(&j, run_dir) != 0)
        return NULL;
    cJSON *steps = cJSON_CreateObject();
    cJSON *names = cJSON_AddArrayToObject(steps, "steps");
    cJSON_AddItemToArray(names, cJSON_CreateString("a"));
    if (journal_append(j, "run-started", NULL, steps) != 0 || journal_append(j, "step-started", "a", NULL) != 0) {
        journal_free(j);
        return NULL;
    }
    return j;
}

static void journal_append_at_each_fault(int err, long *points)
{
    char *run_dir = xasprintf("%s/journal-%d", test_tmpdir(), err);
    char *path = xasprintf("%s/journal.jsonl", run_dir);
    journal *j = journal_with_two_events(run_dir);
    CHECK(j);
    long expected = 2;
    for (long n = 1; n < 50; n++) {
        char *before = text_of(path);
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "message", "a log line long enough to be cut in half by a full disk");
        testhook_set_io_fault(n, err);
        int rc = journal_append(j, "log", "a", data);
        long calls = testhook_io_calls();
        testhook_set_io_fault(0, 0);
        char *after = text_of(path);
        int unchanged = before && after && strcmp(before, after) == 0;
        free(before);
        free(after);
        if (rc == 0) {
            expected++;
            if (calls < n)
                break;
            continue;
        }
        (*points)++;
        CHECK(unchanged); /* the torn record was cut off */
        CHECK(journal_last_seq(j) == expected);
        CHECK_CONTAINS(err_last(), "cannot append to");
        CHECK_CONTAINS(err_last(), path);
        CHECK_CONTAINS(err_last(), strerror(err));
    }
    /* Once the disk has room again, the next event follows without a gap. */
    CHECK(journal_append(j, "step-done", "a", NULL) == 0);
    expected++;
    journal_free(j);
    cJSON *events = NULL;
    journal_chain chain;
    CHECK(journal_read_chained(&events, &chain, path, strrchr(run_dir, '/') + 1) == 0);
    long count = cJSON_GetArraySize(events), broken = chain.broken_line;
    journal_chain_dispose(&chain);
    cJSON_Delete(events);
    free(path);
    free(run_dir);
    CHECK(count == expected);
    CHECK(broken == 0);
}

static void fault_injection_a_failed_journal_append_leaves_no_torn_line_and_no_gap(void)
{
    long points = 0;
    journal_append_at_each_fault(ENOSPC, &points);
    journal_append_at_each_fault(EIO, &points);
    report_points("journal_append (ENOSPC, EIO)", points);
    CHECK(points == 4); /* write, fdatasync: twice */
}

/* ---- checkpoint ------------------------------------------------------------- */

#define EVENT_START "{\"seq\":1,\"time\":\"t1\",\"kind\":\"run-started\",\"step\":null,\"data\":{\"steps\":[\"a\",\"b\"]}}"
#define EVENT_DONE_A "{\"seq\":2,\"time\":\"t2\",\"kind\":\"step-done\",\"step\":\"a\",\"data\":{\"outputs\":{\"id\":7}}}"

static char *checkpoint_text(const char *events_json, const char *path)
{
    cJSON *events = cJSON_Parse(events_json);
    checkpoint *cp = NULL;
    char *text = NULL;
    if (checkpoint_replay(&cp, "r1", events) == 0 && checkpoint_write(cp, path) == 0)
        text = text_of(path);
    checkpoint_free(cp);
    cJSON_Delete(events);
    return text;
}

static void fault_injection_a_failed_checkpoint_write_leaves_the_old_state_or_the_new(void)
{
    char *path = xasprintf("%s/state.json", test_tmpdir());
    char *new_text = checkpoint_text("[" EVENT_START "," EVENT_DONE_A "]", path);
    char *old_text = checkpoint_text("[" EVENT_START "]", path);
    CHECK(old_text && new_text && strcmp(old_text, new_text) != 0);
    long points = 0;
    cJSON *events = cJSON_Parse("[" EVENT_START "," EVENT_DONE_A "]");
    checkpoint *cp = NULL;
    CHECK(checkpoint_replay(&cp, "r1", events) == 0);
    for (long n = 1; n < 50; n++) {
        CHECK(fsio_write_durable(path, old_text, strlen(old_text)) == 0);
        testhook_set_io_fault(n, ENOSPC);
        int rc = checkpoint_write(cp, path);
        long calls = testhook_io_calls();
        testhook_set_io_fault(0, 0);
        char *text = text_of(path);
        int ok = text && (strcmp(text, old_text) == 0 || strcmp(text, new_text) == 0);
        free(text);
        CHECK(ok);
        if (rc == 0 && calls < n)
            break;
        points++;
        CHECK(rc == DR_EFAIL);
        CHECK_CONTAINS(err_last(), "state.json");
        CHECK_CONTAINS(err_last(), "No space left on device");
    }
    checkpoint_free(cp);
    cJSON_Delete(events);
    free(old_text);
    free(new_text);
    free(path);
    report_points("checkpoint_write", points);
    CHECK(points == 5);
}

/* ---- a whole run, then its resume -------------------------------------------- */

static const char run_runbook[] =
    "return runbook {\n"
    "  name = 'faulty-disk', version = '1', summary = 's',\n"
    "  steps = {\n"
    "    { name = 'first', run = function() return { id = 'b-1' } end },\n"
    "    { name = 'second', idempotent = true, run = function(ctx) return { seen = ctx.outputs.first.id } end },\n"
    "    { name = 'third', run = function() return { n = 3 } end },\n"
    "  },\n"
    "}\n";

typedef struct run_env {
    runbook *rb;
    sandbox *sb;
    audit *trail;
    char *audit_dir;
} run_env;

static int run_env_open(run_env *env, const char *name, int with_trail)
{
    memset(env, 0, sizeof *env);
    const char *path = test_write_file("runbooks/faulty-disk.lua", run_runbook);
    env->audit_dir = xasprintf("%s/%s", test_tmpdir(), name);
    if (sandbox_new(&env->sb, 64u << 20) != 0 || runbook_load(&env->rb, env->sb, path) != 0)
        return -1;
    if (with_trail && (fsio_mkdirs(env->audit_dir, 0755) != 0 || audit_open(&env->trail, env->audit_dir, 1) != 0))
        return -1;
    return 0;
}

static void run_env_close(run_env *env)
{
    audit_free(env->trail);
    runbook_free(env->rb);
    sandbox_free(env->sb);
    free(env->audit_dir);
}

/* "done 7" for a run whose state.json says done and whose journal (read
 * and checked: gapless, chained, no torn line) has 7 events. */
static void run_outcome(char *out, size_t size, const char *audit_dir, const char *run_id)
{
    char *journal_path = run_file_path(audit_dir, run_id, "journal.jsonl");
    char *state_path = run_file_path(audit_dir, run_id, "state.json");
    cJSON *events = NULL;
    journal_chain chain;
    long torn = 0;
    int read = journal_read(&events, &torn, journal_path);
    cJSON_Delete(events);
    events = NULL;
    int chained = read == 0 && journal_read_chained(&events, &chain, journal_path, run_id) == 0;
    char *text = text_of(state_path);
    cJSON *state = text ? cJSON_Parse(text) : NULL;
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(state, "status");
    snprintf(out, size, "%s %d%s%s", cJSON_IsString(status) ? status->valuestring : "(no state)",
             cJSON_GetArraySize(events), read != 0 ? " unreadable" : torn ? " torn" : "",
             chained && chain.broken_line ? " broken" : "");
    if (chained)
        journal_chain_dispose(&chain);
    cJSON_Delete(state);
    cJSON_Delete(events);
    free(text);
    free(state_path);
    free(journal_path);
}

static int verify_problems(const char *audit_dir, char *first, size_t size)
{
    verify_result result = { 0 };
    if (verify_audit(&result, audit_dir, NULL) != 0) {
        snprintf(first, size, "%s", err_last());
        return -1;
    }
    int problems = cJSON_GetArraySize(result.problems);
    char *text = problems ? cJSON_PrintUnformatted(cJSON_GetArrayItem(result.problems, 0)) : NULL;
    snprintf(first, size, "%s", text ? text : "");
    free(text);
    cJSON_Delete(result.problems);
    return problems;
}

/* Resumes run_id with no fault. A step that is not idempotent, whose start
 * is durable and whose end is not, may have run: the resume then asks for
 * the approval its message names, as after a crash, and gets it. */
static int resume_after_fault(run_env *env, const runner_options *opts, const char *run_id, long *approvals_asked)
{
    int rc = runner_resume(env->rb, run_id, NULL, 0, opts);
    const char *approve = rc == DR_EREFUSED ? strstr(err_last(), "--approve ") : NULL;
    if (!approve)
        return rc;
    char step[64];
    snprintf(step, sizeof step, "%.*s", (int)strcspn(approve + 10, " \n."), approve + 10);
    char *const approvals[] = { step };
    runner_options approved = *opts;
    approved.approvals = approvals;
    approved.approval_count = 1;
    (*approvals_asked)++;
    return runner_resume(env->rb, run_id, NULL, 0, &approved);
}

/* 1 when the run's journal holds at least one whole line. */
static int run_begun(const char *audit_dir, const char *run_id)
{
    char *journal_path = run_file_path(audit_dir, run_id, "journal.jsonl");
    char *text = text_of(journal_path);
    int begun = text && strchr(text, '\n');
    free(text);
    free(journal_path);
    return begun;
}

/* Fails the nth durable I/O call of a run and every later one (a full
 * disk), then goes on with room again: resumes the run, or starts it anew
 * when it never wrote its first line. *calls gets how many calls the run
 * made; problem gets what went wrong ("" when nothing). */
static void run_with_full_disk_at(long nth, int with_trail, long *calls, long *approvals_asked, char *problem,
                                  size_t size)
{
    problem[0] = '\0';
    char name[64];
    snprintf(name, sizeof name, "audit-%s-%ld", with_trail ? "trail" : "bare", nth);
    run_env env;
    if (run_env_open(&env, name, with_trail) != 0) {
        snprintf(problem, size, "cannot set up: %s", err_last());
        run_env_close(&env);
        return;
    }
    runner_options opts = { .audit_dir = env.audit_dir, .run_id = "disk-run", .audit = env.trail };
    cJSON *params = cJSON_CreateObject();
    char *run_id = NULL;
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET);
    testhook_set_io_fault(nth, ENOSPC);
    err_clear();
    int rc = runner_start(&run_id, env.rb, params, &opts);
    *calls = testhook_io_calls();
    testhook_set_io_fault(0, 0);
    int hit = nth > 0 && *calls >= nth;
    char message[1024];
    snprintf(message, sizeof message, "%s", err_last());
    const char *final_id = run_id;
    char *second_id = NULL;
    int next = 0;
    if (!hit)
        next = rc;
    else if (rc == 0)
        snprintf(problem, size, "the run succeeded (exit 0)%s%s", message[0] ? ": " : "", message);
    else if (!strstr(message, "No space left on device"))
        snprintf(problem, size, "the error does not say the disk is full: %s", message);
    else if (run_id && run_begun(env.audit_dir, run_id))
        next = resume_after_fault(&env, &opts, run_id, approvals_asked);
    else {
        runner_options again = opts;
        again.run_id = "disk-run-again";
        next = runner_start(&second_id, env.rb, params, &again);
        final_id = second_id;
    }
    term_set_verbosity(was);
    if (!problem[0] && next != 0)
        snprintf(problem, size, "%s failed: %s", !hit ? "the run" : final_id == run_id ? "the resume" : "a new run",
                 err_last());
    char outcome[128] = "";
    if (!problem[0] && final_id) {
        run_outcome(outcome, sizeof outcome, env.audit_dir, final_id);
        if (strncmp(outcome, "done ", 5) != 0 || strchr(outcome + 5, ' '))
            snprintf(problem, size, "the run ends %s, not done with a whole journal", outcome);
    }
    char first[900] = "";
    if (!problem[0] && with_trail && verify_problems(env.audit_dir, first, sizeof first) != 0)
        snprintf(problem, size, "audit verify: %s", first);
    cJSON_Delete(params);
    free(run_id);
    free(second_id);
    run_env_close(&env);
}

static void full_disk_at_each_write_of_a_run(int with_trail, const char *what)
{
    long total = 0, approvals = 0, calls = 0;
    char problem[1200];
    run_with_full_disk_at(0, with_trail, &total, &approvals, problem, sizeof problem);
    if (problem[0])
        test_fail(__FILE__, __LINE__, "the run without a fault", problem);
    CHECK(!problem[0] && total > 0);
    long points = 0, failures = 0;
    for (long n = 1; n <= total; n++) {
        run_with_full_disk_at(n, with_trail, &calls, &approvals, problem, sizeof problem);
        points++;
        if (problem[0]) {
            failures++;
            char where[1300];
            snprintf(where, sizeof where, "full disk at durable write %ld of %ld: %s", n, total, problem);
            test_fail(__FILE__, __LINE__, what, where);
        }
    }
    report_points(what, points);
    printf("    (%ld of them resumed with --approve: a step's start durable, its end not)\n", approvals);
    CHECK(failures == 0);
}

static void fault_injection_a_run_whose_disk_fills_up_resumes_to_done_with_its_trail_verified(void)
{
    full_disk_at_each_write_of_a_run(1, "run + resume, audit trail, verify");
}

/* ---- cJSON allocation failures --------------------------------------------- */

/* An operation run in a child with cJSON's nth allocation failing: 0 when
 * it succeeded, 1 for a clean error (a message set). */
typedef struct cjson_case {
    const char *name;
    int (*op)(void);
    long nth;
} cjson_case;

static int run_cjson_case(void *arg)
{
    cjson_case *c = arg;
    err_clear();
    fi_cjson_fail_at(c->nth);
    int rc = c->op();
    long calls = fi_cjson_calls();
    fi_cjson_off();
    if (rc == 0)
        return calls < c->nth ? 0 : 2; /* a success that met the fault would hide it */
    return err_last()[0] ? 1 : 3;
}

static const char *journal_fixture(void)
{
    return test_write_file("cjson/journal.jsonl",
        "{\"seq\":1,\"time\":\"2024-01-01T00:00:00.000000Z\",\"kind\":\"run-started\",\"step\":null,"
        "\"data\":{\"steps\":[\"a\",\"b\"]}}\n"
        "{\"seq\":2,\"time\":\"2024-01-01T00:00:01.000000Z\",\"kind\":\"step-started\",\"step\":\"a\",\"data\":{}}\n"
        "{\"seq\":3,\"time\":\"2024-01-01T00:00:02.000000Z\",\"kind\":\"step-done\",\"step\":\"a\","
        "\"data\":{\"outputs\":{\"id\":7,\"names\":[\"x\",\"y\"]}}}\n");
}

static int op_journal_read(void)
{
    cJSON *events = NULL;
    long torn = 0;
    int rc = journal_read(&events, &torn, journal_fixture());
    cJSON_Delete(events);
    return rc;
}

static int op_config_parse(void)
{
    config *c = NULL;
    int rc = config_parse(&c, "{\"lock.ttl\":\"30m\",\"contact\":\"on-call\",\"notify.webhook\":[\"https://example.org/a\"]}",
                          "config.json");
    config_free(c);
    return rc;
}

static int all_cjson_faults(cjson_case *c, long *points)
{
    char how[128];
    err_clear();
    if (c->op() != 0) {
        test_fail(__FILE__, __LINE__, c->name, err_last());
        return -1;
    }
    for (c->nth = 1; c->nth < 500; c->nth++) {
        int end = fi_in_child(run_cjson_case, c, how, sizeof how);
        if (end == FI_CHILD_OK)
            return 0;
        if (end == FI_CHILD_DIED) {
            char detail[256];
            snprintf(detail, sizeof detail, "%s with cJSON's allocation %ld failing: %s", c->name, c->nth, how);
            test_fail(__FILE__, __LINE__, "a failed allocation is a clean error", detail);
            return -1;
        }
        (*points)++;
    }
    return -1;
}

static void fault_injection_cjson_allocation_failures_in_the_readers_are_clean_errors(void)
{
    long points = 0;
    cjson_case cases[] = { { "journal_read", op_journal_read, 0 }, { "config_parse", op_config_parse, 0 } };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(all_cjson_faults(&cases[i], &points) == 0);
    report_points("cJSON allocations (journal_read, config_parse)", points);
    CHECK(points > 2);
}

/* ---- Lua allocation failures ------------------------------------------------ */

/* Where the engine lets a Lua allocation fail: inside its protected calls
 * the failure is an error like any other. Outside them Lua would panic
 * and the engine stop the process with its internal-error status, 70:
 * counted apart, and none is allowed (a run's files must stay whole and
 * the run resumable all the same). */
#define EXIT_INTERNAL_ERROR 70

typedef struct lua_case {
    long nth;
    int during_run; /* 0: while the runbook loads; 1: while its steps run */
    int resume;     /* 1: resume the run of case nth, no fault */
} lua_case;

static int lua_load_once(lua_case *c)
{
    const char *path = test_write_file("runbooks/faulty-disk.lua", run_runbook);
    sandbox *sb = NULL;
    if (sandbox_new(&sb, 64u << 20) != 0)
        return 3;
    runbook *rb = NULL;
    fi_lua_fail_at(sandbox_state(sb), c->nth);
    int rc = runbook_load(&rb, sb, path);
    long calls = fi_lua_calls();
    fi_lua_off(sandbox_state(sb));
    int clean = rc != 0 && err_last()[0];
    runbook_free(rb);
    sandbox_free(sb);
    if (rc == 0)
        return calls < c->nth ? 0 : 2;
    return clean ? 1 : 3;
}

static int lua_run_once(lua_case *c)
{
    run_env env;
    char name[64];
    snprintf(name, sizeof name, "lua-%ld", c->nth);
    if (run_env_open(&env, name, 0) != 0)
        return 3;
    runner_options opts = { .audit_dir = env.audit_dir, .run_id = "lua-run" };
    cJSON *params = cJSON_CreateObject();
    char *run_id = NULL;
    term_set_verbosity(TERM_QUIET);
    int status;
    if (c->resume) {
        long asked = 0;
        status = resume_after_fault(&env, &opts, "lua-run", &asked) == 0 ? 0 : 3;
    } else {
        fi_lua_fail_at(sandbox_state(env.sb), c->nth);
        int rc = runner_start(&run_id, env.rb, params, &opts);
        long calls = fi_lua_calls();
        fi_lua_off(sandbox_state(env.sb));
        status = rc == 0 ? (calls < c->nth ? 0 : 2) : err_last()[0] ? 1 : 3;
    }
    cJSON_Delete(params);
    free(run_id);
    run_env_close(&env);
    return status;
}

static int lua_case_child(void *arg)
{
    lua_case *c = arg;
    return c->during_run ? lua_run_once(c) : lua_load_once(c);
}

/* After a failed or stopped run: resumed with memory again, it ends done
 * with a whole journal. "" when so, else what went wrong. */
static void lua_run_resumes(lua_case *c, char *problem, size_t size)
{
    problem[0] = '\0';
    char *audit_dir = xasprintf("%s/lua-%ld", test_tmpdir(), c->nth);
    if (!run_begun(audit_dir, "lua-run")) {
        free(audit_dir);
        return; /* it failed before it began: nothing to resume */
    }
    lua_case again = *c;
    again.resume = 1;
    char how[128] = "";
    int end = fi_in_child(lua_case_child, &again, how, sizeof how);
    char outcome[128];
    run_outcome(outcome, sizeof outcome, audit_dir, "lua-run");
    free(audit_dir);
    if (end != FI_CHILD_OK)
        snprintf(problem, size, "the resume failed (%s)", end == FI_CHILD_DIED ? how : "an error");
    else if (strncmp(outcome, "done ", 5) != 0 || strchr(outcome + 5, ' '))
        snprintf(problem, size, "the resumed run ends %s", outcome);
}

/* Allocation nth fails, for nth = 1, 1 + stride, ... until the operation
 * meets no fault. */
static void lua_faults(int during_run, long stride, long *points, long *hard_stops)
{
    lua_case c = { 0, during_run, 0 };
    char how[128], problem[512];
    const char *what = during_run ? "runner_start, then resume" : "runbook_load";
    (void)test_tmpdir(); /* made before the children, who share it */
    for (c.nth = 1; c.nth < 200000; c.nth += stride) {
        int end = fi_in_child(lua_case_child, &c, how, sizeof how);
        if (end == FI_CHILD_OK)
            return;
        (*points)++;
        int hard_stop = end == FI_CHILD_DIED && strcmp(how, "exit 70") == 0;
        if (end == FI_CHILD_DIED && !hard_stop) {
            snprintf(problem, sizeof problem, "%s with Lua allocation %ld failing: %s", what, c.nth, how);
            test_fail(__FILE__, __LINE__, "a failed Lua allocation is a clean error", problem);
            return;
        }
        *hard_stops += hard_stop;
        if (during_run) {
            lua_run_resumes(&c, problem, sizeof problem);
            if (problem[0]) {
                char detail[700];
                snprintf(detail, sizeof detail, "Lua allocation %ld failed: %s", c.nth, problem);
                test_fail(__FILE__, __LINE__, "the run resumes to done", detail);
                return;
            }
        }
    }
    test_fail(__FILE__, __LINE__, "the operation ends within 200000 allocations", NULL);
}

static void fault_injection_lua_allocation_failures_while_a_runbook_loads_are_clean_errors(void)
{
    long points = 0, hard_stops = 0;
    lua_faults(0, 1, &points, &hard_stops);
    CHECK(!test_failed_now());
    report_points("Lua allocations in runbook_load", points);
    printf("    (%ld of them outside a protected call: exit %d)\n", hard_stops, EXIT_INTERNAL_ERROR);
    CHECK(points > 10);
    CHECK(hard_stops == 0);
}

static void fault_injection_lua_allocation_failures_in_a_run_fail_it_and_it_resumes_to_done(void)
{
    long points = 0, hard_stops = 0;
    lua_faults(1, 1, &points, &hard_stops);
    CHECK(!test_failed_now());
    report_points("Lua allocations in runner_start, then resume", points);
    printf("    (%ld of them outside a protected call: exit %d)\n", hard_stops, EXIT_INTERNAL_ERROR);
    CHECK(points > 10);
    CHECK(hard_stops == 0);
}

/* ---- xmalloc's abort --------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifndef UNDER_ASAN
/* The child appends journal events and rewrites state.json, each larger
 * than the last, under an address-space limit, until an allocation fails:
 * xmalloc then aborts the process in the middle of whatever it was doing. */
static int write_until_memory_runs_out(void *arg)
{
    const char *run_dir = arg;
    char *state_path = xasprintf("%s/state.json", run_dir);
    journal *j = NULL;
    cJSON *events = NULL;
    long repaired = 0;
    if (journal_open(&j, &events, &repaired, run_dir) != 0)
        return 3;
    cJSON_Delete(events);
    /* What the process maps already, and 48 MiB more: a few rounds of
     * writes, then the abort. */
    unsigned long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (!statm || fscanf(statm, "%lu", &pages) != 1)
        return 3;
    fclose(statm);
    rlim_t room = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (48u << 20);
    struct rlimit limit = { room, room };
    if (setrlimit(RLIMIT_AS, &limit) != 0)
        return 3;
    for (size_t size = 1u << 20;; size *= 2) {
        char *big = xmalloc(size + 1);
        memset(big, 'x', size);
        big[size] = '\0';
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "message", big);
        if (journal_append(j, "log", "a", data) != 0)
            return 3;
        char *state = xasprintf("{\"status\":\"running\",\"note\":\"%s\"}\n", big);
        free(big);
        if (fsio_write_durable(state_path, state, strlen(state)) != 0)
            return 3;
        free(state);
    }
}

#endif

static void fault_injection_an_abort_on_memory_exhaustion_leaves_the_files_old_or_new(void)
{
#ifdef UNDER_ASAN
    printf("    skipped under AddressSanitizer (its shadow memory needs more address space than the limit)\n");
#else
    char *run_dir = xasprintf("%s/oom-run", test_tmpdir());
    char *journal_path = xasprintf("%s/journal.jsonl", run_dir);
    char *state_path = xasprintf("%s/state.json", run_dir);
    journal *j = journal_with_two_events(run_dir);
    CHECK(j);
    journal_free(j);
    CHECK(fsio_write_durable(state_path, "{\"status\":\"running\"}\n", 21) == 0);
    char how[128] = "";
    int end = fi_in_child(write_until_memory_runs_out, run_dir, how, sizeof how);
    cJSON *events = NULL;
    long torn = -1;
    int read = journal_read(&events, &torn, journal_path);
    long count = cJSON_GetArraySize(events);
    cJSON_Delete(events);
    char *state = text_of(state_path);
    cJSON *parsed = state ? cJSON_Parse(state) : NULL;
    int state_whole = parsed != NULL;
    cJSON_Delete(parsed);
    free(state);
    free(state_path);
    free(journal_path);
    free(run_dir);
    CHECK(end == FI_CHILD_DIED);
    CHECK_CONTAINS(how, "Aborted");
    CHECK(read == 0 && torn == 0 && count > 2);
    CHECK(state_whole);
#endif
}

#else /* !DRCTL_TEST_HOOKS */

#include <stdio.h>

static void fault_injection_need_the_test_build(void)
{
    printf("    skipped: fault injection needs the test build (make faults: bin-hooks/unit-tests)\n");
}

#endif

TEST_SUITE(faults)
{
#ifdef DRCTL_TEST_HOOKS
    REGISTER(fault_injection_a_durable_write_leaves_the_old_file_or_the_new);
    REGISTER(fault_injection_a_failed_journal_append_leaves_no_torn_line_and_no_gap);
    REGISTER(fault_injection_a_failed_checkpoint_write_leaves_the_old_state_or_the_new);
    REGISTER(fault_injection_a_run_whose_disk_fills_up_resumes_to_done_with_its_trail_verified);
    REGISTER(fault_injection_cjson_allocation_failures_in_the_readers_are_clean_errors);
    REGISTER(fault_injection_lua_allocation_failures_while_a_runbook_loads_are_clean_errors);
    REGISTER(fault_injection_lua_allocation_failures_in_a_run_fail_it_and_it_resumes_to_done);
    REGISTER(fault_injection_an_abort_on_memory_exhaustion_leaves_the_files_old_or_new);
#else
    REGISTER(fault_injection_need_the_test_build);
#endif
}
