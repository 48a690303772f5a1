#include "test.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "jsonfield.h"
#include "runbook.h"
#include "runner.h"
#include "term.h"
#include "sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A small cap, so that a ctx can pass it without the test using much memory. */
#define SMALL_CAP (16u << 20)

/* Loads text as a runbook under a memory cap of SMALL_CAP; the sandbox is
 * the runbook's (rb->sb), freed by the caller. */
static runbook *load_capped(const char *name, const char *text)
{
    char file[128];
    snprintf(file, sizeof file, "runbooks/%s.lua", name);
    const char *path = test_write_file(file, text);
    sandbox *sb;
    if (sandbox_new(&sb, SMALL_CAP) != 0)
        return NULL;
    runbook *rb = NULL;
    if (runbook_load(&rb, sb, path) != 0) {
        sandbox_free(sb);
        return NULL;
    }
    return rb;
}

static void free_loaded(runbook *rb)
{
    sandbox *sb = rb->sb;
    runbook_free(rb);
    sandbox_free(sb);
}

/* A string param of size bytes, larger than the cap when pushed into Lua. */
static cJSON *params_with_big_string(size_t size)
{
    char *text = malloc(size + 1);
    memset(text, 'p', size);
    text[size] = '\0';
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "big", text);
    free(text);
    return params;
}

/* The plan's ctx holds the params: params past the cap fail the plan with
 * the reason, where the push used to end the process. */
static void a_plan_whose_ctx_passes_the_memory_cap_fails_cleanly(void)
{
    runbook *rb = load_capped("big-ctx-plan", "return runbook {\n"
                                              "  name = 'big-ctx-plan', version = '1', summary = 's',\n"
                                              "  steps = { { name = 'a', run = function() end } },\n"
                                              "}\n");
    CHECK(rb);
    cJSON *params = params_with_big_string(SMALL_CAP + (1u << 20));
    dr_host host = { 0 };
    cJSON *plan = NULL;
    int rc = runner_plan(&plan, rb, params, &host, NULL);
    cJSON_Delete(params);
    cJSON_Delete(plan);
    free_loaded(rb);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "ran out of memory");
}

/* "run STATUS, step NAME STATE, ..." from a state.json, or why not. */
static void read_outcome(char *out, size_t size, const char *state_path)
{
    char *text = NULL;
    cJSON *state = fsio_read_file(&text, NULL, state_path) == 0 ? cJSON_Parse(text) : NULL;
    free(text);
    int used = snprintf(out, size, "run %s", json_text(state, "status", "(no state)"));
    const cJSON *step;
    cJSON_ArrayForEach(step, cJSON_GetObjectItemCaseSensitive(state, "steps"))
        if (used > 0 && (size_t)used < size)
            used += snprintf(out + used, size - (size_t)used, ", step %s %s", json_text(step, "name", "?"),
                             json_text(step, "state", "?"));
    cJSON_Delete(state);
}

/* A step's outputs go into ctx for the next steps once they are saved; a
 * push past the cap fails the run (resumable, the step stays done) where it
 * used to end the process. The step keeps its 5 MiB string and 7 MiB more
 * alive, so no garbage collection can make room for the copy. */
static void outputs_that_do_not_fit_in_ctx_fail_the_run_and_the_step_stays_done(void)
{
    runbook *rb = load_capped("big-ctx-run", "local keep = {}\n"
                                             "return runbook {\n"
                                             "  name = 'big-ctx-run', version = '1', summary = 's',\n"
                                             "  steps = {\n"
                                             "    { name = 'big', run = function()\n"
                                             "        keep.s = string.rep('y', 5 << 20)\n"
                                             "        for i = 1, 112 do keep[i] = string.rep('z', 64 << 10) end\n"
                                             "        return { s = keep.s }\n"
                                             "      end },\n"
                                             "    { name = 'after', run = function() end },\n"
                                             "  },\n"
                                             "}\n");
    CHECK(rb);
    char *audit_dir = xasprintf("%s/big-ctx-audit", test_tmpdir());
    runner_options opts = { .audit_dir = audit_dir, .run_id = "big-ctx" };
    cJSON *params = cJSON_CreateObject();
    char *run_id = NULL;
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET); /* the run's progress would mix with the test report */
    int rc = runner_start(&run_id, rb, params, &opts);
    term_set_verbosity(was);
    char message[512];
    snprintf(message, sizeof message, "%s", err_last());
    char *state_path = run_file_path(audit_dir, "big-ctx", "state.json");
    char outcome[64];
    read_outcome(outcome, sizeof outcome, state_path);
    cJSON_Delete(params);
    free(run_id);
    free(state_path);
    free(audit_dir);
    free_loaded(rb);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(message, "ran out of memory");
    CHECK_STR(outcome, "run failed, step big done, step after pending");
}

TEST_SUITE(runner)
{
    REGISTER(a_plan_whose_ctx_passes_the_memory_cap_fails_cleanly);
    REGISTER(outputs_that_do_not_fit_in_ctx_fail_the_run_and_the_step_stays_done);
}
