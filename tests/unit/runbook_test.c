#include "test.h"

#include "err.h"
#include "runbook.h"
#include "sandbox.h"

#include <stdio.h>
#include <stdlib.h>

/* Loads text as runbooks/<name>.lua; returns the load's code. */
static int load_text(const char *name, const char *text, runbook **out)
{
    char file[128];
    snprintf(file, sizeof file, "runbooks/%s.lua", name);
    const char *path = test_write_file(file, text);
    sandbox *sb;
    sandbox_new(&sb, 64u << 20);
    runbook *rb = NULL;
    int rc = runbook_load(&rb, sb, path);
    if (out && rc == 0) {
        *out = rb;
        return rc; /* the sandbox leaks into the test; freed by the caller */
    }
    runbook_free(rb);
    sandbox_free(sb);
    return rc;
}

#define GOOD_STEPS "steps = { { name = 'a', run = function() end } }"

static void a_valid_runbook_loads_with_its_fields(void)
{
    runbook *rb = NULL;
    CHECK(load_text("ok", "return runbook {\n"
                          "  name = 'ok', version = '1.2.3', summary = 'fine',\n"
                          "  params = { at = { type = 'timestamp', required = true },\n"
                          "             mode = { type = 'enum', values = { 'a', 'b' }, default = 'b' } },\n"
                          "  steps = {\n"
                          "    { name = 'one', idempotent = true, timeout = '5s', retry = { attempts = 3, backoff = '1s' },\n"
                          "      run = function(ctx) end },\n"
                          "    { name = 'two', destructive = true, confirm = function() end, run = function() end },\n"
                          "    { name = 'three', always = true, run = function() end },\n"
                          "  },\n"
                          "}\n", &rb) == 0);
    CHECK_STR(rb->name, "ok");
    CHECK_STR(rb->version, "1.2.3");
    CHECK(rb->step_count == 3 && rb->param_count == 2);
    CHECK(rb->steps[0].idempotent && rb->steps[0].timeout == 5 && rb->steps[0].retry_attempts == 3);
    CHECK(rb->steps[1].destructive && rb->steps[2].always);
    CHECK(strlen(rb->blob_id) == 40);
    sandbox *sb = rb->sb;
    runbook_free(rb);
    sandbox_free(sb);
}

static void an_unknown_step_field_is_reported_with_file_line_and_suggestion(void)
{
    CHECK(load_text("typo", "return runbook {\n"
                            "  name = 'typo', version = '1', summary = 's',\n"
                            "  steps = {\n"
                            "    { name = 'promote', destuctive = true,\n"
                            "      run = function() end },\n"
                            "  },\n"
                            "}\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "typo.lua:5:");
    CHECK_CONTAINS(err_last(), "step 1 ('promote'): unknown field 'destuctive' (did you mean 'destructive'?)");
}

static void a_step_without_run_is_refused(void)
{
    CHECK(load_text("norun", "return runbook { name = 'norun', version = '1', summary = 's',\n"
                             "  steps = { { name = 'a' } } }\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "norun.lua:1:");
    CHECK_CONTAINS(err_last(), "'run' is required");
}

static void a_destructive_step_without_confirm_is_refused(void)
{
    CHECK(load_text("noconfirm", "return runbook { name = 'noconfirm', version = '1', summary = 's',\n"
                                 "  steps = { { name = 'a', destructive = true, run = function() end } } }\n",
                    NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "a destructive step needs confirm");
}

static void duplicate_step_names_are_refused(void)
{
    CHECK(load_text("dup", "return runbook { name = 'dup', version = '1', summary = 's',\n"
                           "  steps = { { name = 'a', run = function() end }, { name = 'a', run = function() end } } }\n",
                    NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "step 1 and step 2 are both named 'a'");
}

static void malformed_step_names_are_refused(void)
{
    CHECK(load_text("badname", "return runbook { name = 'badname', version = '1', summary = 's',\n"
                               "  steps = { { name = 'Create_Branch', run = function() end } } }\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "step names are lower-case letters");
}

static void a_bad_param_type_is_refused(void)
{
    CHECK(load_text("badtype", "return runbook { name = 'badtype', version = '1', summary = 's',\n"
                               "  params = { n = { type = 'strng' } }, " GOOD_STEPS " }\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "param 'n': type 'strng' is not one of string, int");
}

static void a_default_of_the_wrong_form_is_refused(void)
{
    CHECK(load_text("baddefault", "return runbook { name = 'baddefault', version = '1', summary = 's',\n"
                                  "  params = { keep = { type = 'int', default = 'many' } }, " GOOD_STEPS " }\n",
                    NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "param 'keep': the default is not valid: expected a whole number");
}

static void an_enum_needs_values(void)
{
    CHECK(load_text("noenum", "return runbook { name = 'noenum', version = '1', summary = 's',\n"
                              "  params = { s = { type = 'enum' } }, " GOOD_STEPS " }\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "an enum needs values");
}

static void an_unknown_top_level_field_is_refused(void)
{
    CHECK(load_text("top", "return runbook { name = 'top', version = '1', summary = 's', stpes = {}, "
                           GOOD_STEPS " }\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "unknown field 'stpes' (did you mean 'steps'?)");
}

static void a_file_that_does_not_return_runbook_is_refused(void)
{
    CHECK(load_text("plain", "return { name = 'plain', version = '1', summary = 's', " GOOD_STEPS " }\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "must end with 'return runbook { ... }'");
}

/* A finalizer would run as the sandbox closes, where no deadline reaches:
 * loading (drctl list) must refuse it, and return. */
static void a_finalizer_in_top_level_code_is_refused(void)
{
    CHECK(load_text("finalizer", "setmetatable({}, { __gc = function() while true do end end })\n"
                    "return runbook { name = 'finalizer', version = '1', summary = 's', " GOOD_STEPS " }\n",
                    NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "finalizer.lua:1: setmetatable: a metatable with a __gc field is refused");
}

/* The runbook table itself, or a step, cannot carry one either. */
static void a_finalizer_on_the_runbook_table_is_refused(void)
{
    CHECK(load_text("gcdesc", "return runbook(setmetatable({ name = 'gcdesc', version = '1', summary = 's', "
                    GOOD_STEPS " }, { __gc = print }))\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "__gc field is refused");
}

static void a_syntax_error_names_file_and_line(void)
{
    CHECK(load_text("syntax", "return runbook {\n  name = 'syntax',,\n}\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "syntax.lua:2:");
}

static void the_file_must_be_named_after_the_runbook(void)
{
    CHECK(load_text("file", "return runbook { name = 'other', version = '1', summary = 's', " GOOD_STEPS " }\n",
                    NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "declares the name 'other'");
}

static void confirm_without_destructive_is_refused(void)
{
    CHECK(load_text("confirmonly", "return runbook { name = 'confirmonly', version = '1', summary = 's',\n"
                                   "  steps = { { name = 'a', confirm = function() end, run = function() end } } }\n",
                    NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "add destructive = true");
}

static void a_param_config_names_a_setting_of_its_kind(void)
{
    runbook *rb = NULL;
    CHECK(load_text("withconfig", "return runbook { name = 'withconfig', version = '1', summary = 's',\n"
                                  "  params = { ttl = { type = 'duration', default = '1d', config = 'throwaway_ttl' } }, "
                                  GOOD_STEPS " }\n", &rb) == 0);
    CHECK(rb && rb->param_count == 1);
    if (rb) {
        CHECK_STR(rb->params[0].config, "throwaway_ttl");
        sandbox *sb = rb->sb;
        runbook_free(rb);
        sandbox_free(sb);
    }
    CHECK(load_text("unknownkey", "return runbook { name = 'unknownkey', version = '1', summary = 's',\n"
                                  "  params = { ttl = { type = 'duration', config = 'throwaway_tl' } }, "
                                  GOOD_STEPS " }\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "runbooks/unknownkey.lua:");
    CHECK_CONTAINS(err_last(), "runbook 'unknownkey', param 'ttl': config 'throwaway_tl' is not a setting");
    CHECK_CONTAINS(err_last(), "throwaway_ttl");
    CHECK(load_text("wrongkind", "return runbook { name = 'wrongkind', version = '1', summary = 's',\n"
                                 "  params = { ttl = { type = 'string', config = 'throwaway_ttl' } }, "
                                 GOOD_STEPS " }\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "param 'ttl': config 'throwaway_ttl' is a duration: it fits a duration param, "
                               "not a string param");
    CHECK(load_text("textkey", "return runbook { name = 'textkey', version = '1', summary = 's',\n"
                               "  params = { who = { type = 'int', config = 'contact' } }, " GOOD_STEPS " }\n",
                    NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "config 'contact' is text: it fits a string param, not a int param");
    CHECK(load_text("listkey", "return runbook { name = 'listkey', version = '1', summary = 's',\n"
                               "  params = { hook = { type = 'string', config = 'notify.webhook' } }, " GOOD_STEPS " }\n",
                    NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "config 'notify.webhook' is a list: it fits no param");
    CHECK(load_text("notstring", "return runbook { name = 'notstring', version = '1', summary = 's',\n"
                                 "  params = { ttl = { type = 'duration', config = 7 } }, " GOOD_STEPS " }\n",
                    NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "'config' must be a string");
}

TEST_SUITE(runbook)
{
    REGISTER(a_valid_runbook_loads_with_its_fields);
    REGISTER(an_unknown_step_field_is_reported_with_file_line_and_suggestion);
    REGISTER(a_step_without_run_is_refused);
    REGISTER(a_destructive_step_without_confirm_is_refused);
    REGISTER(duplicate_step_names_are_refused);
    REGISTER(malformed_step_names_are_refused);
    REGISTER(a_bad_param_type_is_refused);
    REGISTER(a_default_of_the_wrong_form_is_refused);
    REGISTER(an_enum_needs_values);
    REGISTER(an_unknown_top_level_field_is_refused);
    REGISTER(a_file_that_does_not_return_runbook_is_refused);
    REGISTER(a_syntax_error_names_file_and_line);
    REGISTER(a_finalizer_in_top_level_code_is_refused);
    REGISTER(a_finalizer_on_the_runbook_table_is_refused);
    REGISTER(the_file_must_be_named_after_the_runbook);
    REGISTER(confirm_without_destructive_is_refused);
    REGISTER(a_param_config_names_a_setting_of_its_kind);
}
