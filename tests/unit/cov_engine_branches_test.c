/* Branches of the engine the rest of the suite leaves untaken: mostly the
 * ways a runbook's declaration can be wrong, each refused with a message
 * that names the bad value. */
#include "test.h"

#include "approvals.h"
#include "config.h"
#include "drill.h"
#include "err.h"
#include "jsonfield.h"
#include "runbook.h"
#include "runs.h"
#include "sandbox.h"

#include <stdio.h>
#include <lauxlib.h>
#include <stdlib.h>

/* Loads text as runbooks/<file>; returns the load's code (the runbook,
 * when it loads and OUT is NULL, is freed with its sandbox). */
static int cov_load(const char *file, const char *text, runbook **out, sandbox **out_sb)
{
    char name[160];
    snprintf(name, sizeof name, "runbooks/%s", file);
    const char *path = test_write_file(name, text);
    sandbox *sb;
    sandbox_new(&sb, 64u << 20);
    runbook *rb = NULL;
    int rc = runbook_load(&rb, sb, path);
    if (out && rc == 0) {
        *out = rb;
        *out_sb = sb;
        return rc;
    }
    runbook_free(rb);
    sandbox_free(sb);
    return rc;
}

#define HEAD(name) "return runbook { name = '" name "', version = '1', summary = 's', "
#define STEP_RUN "run = function() end"
#define ONE_STEP "steps = { { name = 'a', " STEP_RUN " } } }\n"
#define DESTRUCTIVE "destructive = true, confirm = function() end, "

typedef struct bad_case {
    const char *file;   /* under runbooks/ */
    const char *text;
    const char *expect; /* in err_last() */
} bad_case;

static const bad_case bad_declarations[] = {
    /* runbook names */
    { "e.lua", "return runbook { name = '', version = '1', summary = 's', " ONE_STEP, "name '' must be lower-case" },
    { "long.lua", "return runbook { name = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', "
                  "version = '1', summary = 's', " ONE_STEP, "must be lower-case letters" },
    { "up.lua", HEAD("Up") ONE_STEP, "name 'Up' must be lower-case" },
    { "tilde.lua", HEAD("a~b") ONE_STEP, "name 'a~b' must be" },
    { "slash.lua", HEAD("a/b") ONE_STEP, "name 'a/b' must be" },
    { "colon.lua", HEAD("a:b") ONE_STEP, "name 'a:b' must be" },
    { "under.lua", HEAD("a_b") ONE_STEP, "name 'a_b' must be" },
    /* runbook fields */
    { "nottable.lua", "return runbook 'x'\n", "write runbook { name = ..." },
    { "numkey.lua", "return runbook { 'x', name = 'numkey', version = '1', summary = 's', " ONE_STEP,
      "fields must be named (found a number key)" },
    { "longkey.lua", HEAD("longkey") "abcdefghijklmnopqrstuvwxyzabcdefghij = 1, " ONE_STEP,
      "unknown field 'abcdefghijklmnopqrstuvwxyzabcdefghij' (fields:" },
    { "nover.lua", "return runbook { name = 'nover', summary = 's', " ONE_STEP, "'version' is required (a string)" },
    { "numname.lua", "return runbook { name = 5, version = '1', summary = 's', " ONE_STEP,
      "'name' must be a string, not a number" },
    { "lockstr.lua", HEAD("lockstr") "lock = 'x', " ONE_STEP, "'lock' must be a function, not a string" },
    { "descnum.lua", HEAD("descnum") "description = 1, " ONE_STEP, "'description' must be a string" },
    /* params */
    { "pstr.lua", HEAD("pstr") "params = 'x', " ONE_STEP, "'params' must be a table of name = { type = ... }" },
    { "plist.lua", HEAD("plist") "params = { { type = 'string' } }, " ONE_STEP, "params must be named" },
    { "pempty.lua", HEAD("pempty") "params = { [''] = { type = 'string' } }, " ONE_STEP,
      "param '': param names are lower-case" },
    { "plong.lua", HEAD("plong") "params = { aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa = { type = 'string' } }, "
      ONE_STEP, "param names are lower-case" },
    { "pdigit.lua", HEAD("pdigit") "params = { ['9a'] = { type = 'string' } }, " ONE_STEP, "param '9a': param names" },
    { "pbrace.lua", HEAD("pbrace") "params = { ['{a'] = { type = 'string' } }, " ONE_STEP, "param '{a': param names" },
    { "pupper.lua", HEAD("pupper") "params = { aB = { type = 'string' } }, " ONE_STEP, "param 'aB': param names" },
    { "ptilde.lua", HEAD("ptilde") "params = { ['a~'] = { type = 'string' } }, " ONE_STEP, "param 'a~': param names" },
    { "pslash.lua", HEAD("pslash") "params = { ['a/'] = { type = 'string' } }, " ONE_STEP, "param 'a/': param names" },
    { "pcolon.lua", HEAD("pcolon") "params = { ['a:'] = { type = 'string' } }, " ONE_STEP, "param 'a:': param names" },
    { "pdash.lua", HEAD("pdash") "params = { ['a-b'] = { type = 'string' } }, " ONE_STEP, "param 'a-b': param names" },
    { "pnottab.lua", HEAD("pnottab") "params = { at = 'string' }, " ONE_STEP, "param 'at': must be a table" },
    { "ptype.lua", HEAD("ptype") "params = { at = { type = 'float' } }, " ONE_STEP, "type 'float' is not one of" },
    { "pnotype.lua", HEAD("pnotype") "params = { at = { doc = 'x' } }, " ONE_STEP, "param 'at': 'type' is required" },
    { "preq.lua", HEAD("preq") "params = { at = { type = 'string', required = 'yes' } }, " ONE_STEP,
      "'required' must be a boolean, not a string" },
    { "penum.lua", HEAD("penum") "params = { m = { type = 'enum' } }, " ONE_STEP, "an enum needs values" },
    { "penum0.lua", HEAD("penum0") "params = { m = { type = 'enum', values = {} } }, " ONE_STEP, "an enum needs values" },
    { "penumn.lua", HEAD("penumn") "params = { m = { type = 'enum', values = { 'a', 2 } } }, " ONE_STEP,
      "enum values must be strings" },
    { "pvalues.lua", HEAD("pvalues") "params = { m = { type = 'string', values = { 'a' } } }, " ONE_STEP,
      "'values' is only for enum params" },
    { "pcfgnum.lua", HEAD("pcfgnum") "params = { m = { type = 'string', config = 1 } }, " ONE_STEP,
      "'config' must be a string, the name of a setting" },
    { "pcfgunk.lua", HEAD("pcfgunk") "params = { m = { type = 'string', config = 'no.such' } }, " ONE_STEP,
      "config 'no.such' is not a setting of config.json (the settings: notify.webhook, " },
    { "pcfglist.lua", HEAD("pcfglist") "params = { m = { type = 'string', config = 'approvals' } }, " ONE_STEP,
      "config 'approvals' is a list: it fits no param, not a string param" },
    { "pcfgdur.lua", HEAD("pcfgdur") "params = { m = { type = 'string', config = 'lock.ttl' } }, " ONE_STEP,
      "config 'lock.ttl' is a duration: it fits a duration param, not a string param" },
    { "pcfgtext.lua", HEAD("pcfgtext") "params = { m = { type = 'duration', config = 'contact' } }, " ONE_STEP,
      "config 'contact' is text: it fits a string param, not a duration param" },
    { "pcfgint.lua", HEAD("pcfgint") "params = { m = { type = 'int', config = 'contact' } }, " ONE_STEP,
      "config 'contact' is text: it fits a string param, not a int param" },
    { "pdeftab.lua", HEAD("pdeftab") "params = { m = { type = 'string', default = {} } }, " ONE_STEP,
      "param 'm': the default is not valid: expected" },
    { "pdefbool.lua", HEAD("pdefbool") "params = { m = { type = 'int', default = true } }, " ONE_STEP,
      "param 'm': the default is not valid: expected" },
    { "pdefflt.lua", HEAD("pdefflt") "params = { m = { type = 'int', default = 1.5 } }, " ONE_STEP,
      "param 'm': the default is not valid: expected" },
    { "pdefenum.lua", HEAD("pdefenum") "params = { m = { type = 'enum', values = { 'a' }, default = 'b' } }, " ONE_STEP,
      "param 'm': the default is not valid: expected" },
    /* steps */
    { "nosteps.lua", HEAD("nosteps") "}\n", "'steps' is required" },
    { "steps0.lua", HEAD("steps0") "steps = {} }\n", "'steps' is empty" },
    { "stepskey.lua", HEAD("stepskey") "steps = { { name = 'a', " STEP_RUN " }, x = 1 } }\n",
      "'steps' must be a list (found the key 'x')" },
    { "stepsgap.lua", HEAD("stepsgap") "steps = { { name = 'a', " STEP_RUN " }, [5] = 1 } }\n",
      "'steps' must be a list (found the key '5')" },
    { "stepsflt.lua", HEAD("stepsflt") "steps = { { name = 'a', " STEP_RUN " }, [1.5] = 1 } }\n",
      "'steps' must be a list (found the key '1.5')" },
    { "stepsneg.lua", HEAD("stepsneg") "steps = { { name = 'a', " STEP_RUN " }, [0] = 1 } }\n",
      "'steps' must be a list (found the key '0')" },
    { "stepnt.lua", HEAD("stepnt") "steps = { 'a' } }\n", "step 1: must be a table like" },
    { "stepcrun.lua", HEAD("stepcrun") "steps = { { name = 'A', run = print } } }\n", "step 1 ('A'): step names" },
    { "stepnn.lua", HEAD("stepnn") "steps = { { name = 5, " STEP_RUN " } } }\n", "step 1: 'name' must be a string" },
    { "steprun.lua", HEAD("steprun") "steps = { { name = 'a', run = 'go' } } }\n",
      "step 1 ('a'): 'run' must be a function, not a string" },
    { "x.lua", HEAD("y") ONE_STEP, "declares the name 'y'; a runbook's file must be named after it (y.lua)" },
    { "stepplan.lua", HEAD("stepplan") "steps = { { name = 'a', plan = 1, " STEP_RUN " } } }\n",
      "'plan' must be a function, not a number" },
    { "stepalw.lua", HEAD("stepalw") "steps = { { name = 'a', always = 1, " STEP_RUN " } } }\n",
      "'always' must be a boolean" },
    { "stepconf.lua", HEAD("stepconf") "steps = { { name = 'a', confirm = function() end, " STEP_RUN " } } }\n",
      "confirm is only for destructive steps" },
    { "stepdup.lua", HEAD("stepdup") "steps = { { name = 'a', " STEP_RUN " }, { name = 'b', " STEP_RUN " }, "
      "{ name = 'a', " STEP_RUN " } } }\n", "step 1 and step 3 are both named 'a'" },
    /* timeout */
    { "tobad.lua", HEAD("tobad") "steps = { { name = 'a', timeout = 'soon', " STEP_RUN " } } }\n", "'timeout': " },
    { "tozero.lua", HEAD("tozero") "steps = { { name = 'a', timeout = 0, " STEP_RUN " } } }\n",
      "'timeout' must be positive" },
    { "totab.lua", HEAD("totab") "steps = { { name = 'a', timeout = {}, " STEP_RUN " } } }\n",
      "'timeout' must be a duration like \"30s\"" },
    /* retry */
    { "rstr.lua", HEAD("rstr") "steps = { { name = 'a', retry = 3, " STEP_RUN " } } }\n", "retry must be a table like" },
    { "rfield.lua", HEAD("rfield") "steps = { { name = 'a', retry = { attempt = 3 }, " STEP_RUN " } } }\n",
      "unknown field 'attempt' (did you mean 'attempts'?)" },
    { "rnone.lua", HEAD("rnone") "steps = { { name = 'a', retry = {}, " STEP_RUN " } } }\n",
      "retry.attempts must be a whole number from 1 to 100" },
    { "rflt.lua", HEAD("rflt") "steps = { { name = 'a', retry = { attempts = 1.5 }, " STEP_RUN " } } }\n",
      "retry.attempts must be a whole number" },
    { "rzero.lua", HEAD("rzero") "steps = { { name = 'a', retry = { attempts = 0 }, " STEP_RUN " } } }\n",
      "retry.attempts must be a whole number" },
    { "rbig.lua", HEAD("rbig") "steps = { { name = 'a', retry = { attempts = 101 }, " STEP_RUN " } } }\n",
      "retry.attempts must be a whole number" },
    { "rback.lua", HEAD("rback") "steps = { { name = 'a', retry = { attempts = 2, backoff = -1 }, " STEP_RUN " } } }\n",
      "'backoff' must be positive" },
    /* approvers */
    { "anotd.lua", HEAD("anotd") "steps = { { name = 'a', approvers = 2, " STEP_RUN " } } }\n",
      "approvers is only for destructive steps" },
    { "azero.lua", HEAD("azero") "steps = { { name = 'a', " DESTRUCTIVE "approvers = 0, " STEP_RUN " } } }\n",
      "approvers must be a whole number from 1 to 10" },
    { "abig.lua", HEAD("abig") "steps = { { name = 'a', " DESTRUCTIVE "approvers = 11, " STEP_RUN " } } }\n",
      "approvers must be a whole number from 1 to 10" },
    { "aflt.lua", HEAD("aflt") "steps = { { name = 'a', " DESTRUCTIVE "approvers = 1.5, " STEP_RUN " } } }\n",
      "approvers must be a whole number from 1 to 10" },
    { "astr.lua", HEAD("astr") "steps = { { name = 'a', " DESTRUCTIVE "approvers = 'two', " STEP_RUN " } } }\n",
      "approvers must be a whole number from 1 to 10" },
    { "afield.lua", HEAD("afield") "steps = { { name = 'a', " DESTRUCTIVE "approvers = { count = 2, form = {} }, "
      STEP_RUN " } } }\n", "unknown field 'form' (did you mean 'from'?)" },
    { "anocount.lua", HEAD("anocount") "steps = { { name = 'a', " DESTRUCTIVE "approvers = { from = { 'a@x' } }, "
      STEP_RUN " } } }\n", "approvers must be a whole number from 1 to 10" },
    { "afromnum.lua", HEAD("afromnum") "steps = { { name = 'a', " DESTRUCTIVE "approvers = { count = 1, from = { 'a@x', 2 } }, "
      STEP_RUN " } } }\n", "approvers.from[2] must be an operator's e-mail address" },
    { "afromemp.lua", HEAD("afromemp") "steps = { { name = 'a', " DESTRUCTIVE "approvers = { count = 1, from = { '' } }, "
      STEP_RUN " } } }\n", "approvers.from[1] must be an operator's e-mail address" },
    { "afrom0.lua", HEAD("afrom0") "steps = { { name = 'a', " DESTRUCTIVE "approvers = { count = 1, from = {} }, "
      STEP_RUN " } } }\n", "approvers.from is empty" },
    { "afromstr.lua", HEAD("afromstr") "steps = { { name = 'a', " DESTRUCTIVE "approvers = { count = 1, from = 'a@x' }, "
      STEP_RUN " } } }\n", "approvers.from must be a list of e-mail addresses" },
    { "avalid.lua", HEAD("avalid") "steps = { { name = 'a', " DESTRUCTIVE "approvers = { count = 1, valid_for = true }, "
      STEP_RUN " } } }\n", "'valid_for' must be a duration" },
    /* the file itself */
    { "noreturn.lua", "local x = 1\n", "the file must end with 'return runbook { ... }'" },
    { "plain.lua", "return { name = 'plain', version = '1', summary = 's', " ONE_STEP,
      "the file must end with 'return runbook { ... }'" },
    { "raises.lua", "error('boom here')\n", "boom here" },
    { "syntax.lua", "return runbook {\n", "syntax.lua" },
    { "misnamed.lua", HEAD("other") ONE_STEP, "declares the name 'other'; a runbook's file must be named after it" },
    { "noext", HEAD("noext2") ONE_STEP, "declares the name 'noext2'" },
};

static void cov_branches_each_bad_declaration_is_refused_naming_the_bad_value(void)
{
    for (size_t i = 0; i < sizeof bad_declarations / sizeof *bad_declarations; i++) {
        const bad_case *c = &bad_declarations[i];
        int rc = cov_load(c->file, c->text, NULL, NULL);
        if (rc != DR_EUSAGE || !strstr(err_last(), c->expect)) {
            char detail[700];
            snprintf(detail, sizeof detail, "%s: rc %d, message: %s", c->file, rc, err_last());
            test_fail(__FILE__, __LINE__, c->expect, detail);
            return;
        }
    }
}

static void cov_branches_a_runbook_with_every_optional_form_loads_them_into_its_steps(void)
{
    runbook *rb = NULL;
    sandbox *sb = NULL;
    CHECK(cov_load("forms.lua", HEAD("forms")
                   "description = 'd', lock = function() end,\n"
                   "  params = { flag = { type = 'bool', default = true, secret = false, doc = 'x', env = 'FLAG' },\n"
                   "             ratio = { type = 'string', default = 0.5 },\n"
                   "             n = { type = 'int', default = 3 },\n"
                   "             ttl = { type = 'duration', config = 'lock.ttl' },\n"
                   "             who = { type = 'string', config = 'contact' } },\n"
                   "  steps = {\n"
                   "    { name = 'one', timeout = 7, retry = { attempts = 2, backoff = 3 }, " STEP_RUN " },\n"
                   "    { name = 'two', " DESTRUCTIVE "approvers = 3, " STEP_RUN " },\n"
                   "    { name = 'three', " DESTRUCTIVE "approvers = { count = 2, from = { 'a@x', 'b@x', 'a@x' }, "
                   "valid_for = 60 }, " STEP_RUN " },\n"
                   "    { name = 'four', " DESTRUCTIVE "approvers = { count = 1, valid_for = '2m' }, "
                   "retry = { attempts = 1, backoff = '2s' }, " STEP_RUN " },\n"
                   "  },\n"
                   "}\n", &rb, &sb) == 0);
    CHECK_STR(rb->description, "d");
    CHECK(rb->lock_ref != LUA_NOREF);
    CHECK(rb->param_count == 5);
    /* sorted by name: flag, n, ratio, ttl, who */
    CHECK_STR(rb->params[0].name, "flag");
    CHECK_STR(rb->params[0].default_text, "true");
    CHECK_STR(rb->params[0].env, "FLAG");
    CHECK_STR(rb->params[1].default_text, "3");
    CHECK_STR(rb->params[2].default_text, "0.5");
    CHECK_STR(rb->params[3].config, "lock.ttl");
    CHECK(rb->params[4].default_text == NULL);
    CHECK(rb->steps[0].timeout == 7 && rb->steps[0].retry_attempts == 2 && rb->steps[0].retry_backoff == 3);
    CHECK(rb->steps[1].approvers.count == 3 && rb->steps[1].approvers.valid_for == APPROVAL_DEFAULT_VALIDITY);
    CHECK(rb->steps[2].approvers.count == 2 && rb->steps[2].approvers.from.count == 2);
    CHECK(rb->steps[2].approvers.valid_for == 60);
    CHECK(rb->steps[3].approvers.valid_for == 120 && rb->steps[3].retry_backoff == 2);
    CHECK(rb->steps[0].approvers.count == 1);
    CHECK(runbook_step_index(rb, "three") == 2);
    CHECK(runbook_step_index(rb, "five") == -1);
    runbook_free(rb);
    sandbox_free(sb);
}

static void cov_branches_a_missing_runbook_file_is_a_usage_error(void)
{
    sandbox *sb;
    sandbox_new(&sb, 64u << 20);
    runbook *rb = (runbook *)1;
    char path[512];
    snprintf(path, sizeof path, "%s/runbooks/absent.lua", test_tmpdir());
    CHECK(runbook_load(&rb, sb, path) == DR_EUSAGE);
    CHECK(rb == NULL);
    sandbox_free(sb);
    runbook_free(NULL); /* freeing nothing is allowed */
}

/* Loads runbooks/base.lua composed through lib/<module>.lua's compose. */
static int cov_compose(const char *module_text, const char *function, runbook **out, sandbox **out_sb)
{
    const char *lib = test_write_file("lib/wrap.lua", module_text);
    char dir[512];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(lib, '/') - lib), lib);
    const char *path = test_write_file("runbooks/base.lua", HEAD("base") ONE_STEP);
    sandbox *sb;
    sandbox_new(&sb, 64u << 20);
    sandbox_add_lib_dir(sb, dir);
    runbook *rb = NULL;
    int rc = runbook_load_composed(&rb, sb, path, "wrap", function);
    if (rc == 0 && out) {
        *out = rb;
        *out_sb = sb;
        return 0;
    }
    runbook_free(rb);
    sandbox_free(sb);
    return rc;
}

static void cov_branches_a_composed_runbook_takes_what_the_module_makes_and_checks_it(void)
{
    runbook *rb = NULL;
    sandbox *sb = NULL;
    const char *good = "return { compose = function(rb)\n"
                       "  return { name = 'composed', version = rb.version, summary = 'c',\n"
                       "           steps = { rb.steps[1], { name = 'extra', run = function() end } } }\n"
                       "end, broken = function() error('compose failed here') end,\n"
                       "  bad = function(rb) return { name = 'x' } end, notfn = 1 }\n";
    CHECK(cov_compose(good, "compose", &rb, &sb) == 0);
    CHECK_STR(rb->name, "composed"); /* the file's name need not match a composed runbook */
    CHECK(rb->step_count == 2 && runbook_step_index(rb, "extra") == 1);
    runbook_free(rb);
    sandbox_free(sb);
    CHECK(cov_compose(good, "missing", NULL, NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "the module wrap has no function missing");
    CHECK(cov_compose(good, "notfn", NULL, NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "has no function notfn");
    CHECK(cov_compose(good, "broken", NULL, NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "compose failed here");
    CHECK(cov_compose(good, "bad", NULL, NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "'version' is required");
    CHECK(cov_compose("error('module does not load')\n", "compose", NULL, NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "module does not load");
}

static void cov_branches_names_with_dashes_and_underscores_load_and_a_sandbox_loads_twice(void)
{
    const char *path = test_write_file("runbooks/my-rb.lua", HEAD("my-rb")
                                       "params = { a_b = { type = 'enum', values = { 'x', 'y' }, default = 'y' },\n"
                                       "           off = { type = 'bool', default = false } },\n"
                                       "  steps = { { name = 'step-1', destructive = false, " STEP_RUN " } } }\n");
    sandbox *sb;
    sandbox_new(&sb, 64u << 20);
    runbook *first = NULL, *second = NULL;
    CHECK(runbook_load(&first, sb, path) == 0);
    CHECK(runbook_load(&second, sb, path) == 0); /* the second load finds the set of validated tables */
    CHECK_STR(second->name, "my-rb");
    CHECK(second->param_count == 2);
    CHECK_STR(second->params[0].name, "a_b");
    CHECK(second->params[0].value_count == 2);
    CHECK_STR(second->params[0].values[1], "y");
    CHECK_STR(second->params[0].default_text, "y");
    CHECK_STR(second->params[1].default_text, "false");
    CHECK(!second->steps[0].destructive);
    CHECK_STR(second->steps[0].name, "step-1");
    runbook_free(first);
    runbook_free(second);
    sandbox_free(sb);
}

static void cov_branches_a_runbook_without_a_sandbox_is_freed_without_lua(void)
{
    runbook *rb = calloc(1, sizeof *rb);
    CHECK(rb != NULL);
    rb->step_count = 1;
    rb->steps = calloc(1, sizeof *rb->steps);
    rb->steps[0].name = strdup("a");
    rb->name = strdup("orphan");
    CHECK(runbook_step_index(rb, "a") == 0);
    runbook_free(rb); /* must not touch a Lua state it has not got (ASan sees a leak or a crash) */
}

/* ---- approvals ---------------------------------------------------------- */

static void cov_branches_a_person_is_the_address_inside_angle_brackets_lower_cased(void)
{
    static const char *const cases[][2] = {
        { "Alice Smith <Alice@Example.ORG>", "alice@example.org" },
        { "Bob@X", "bob@x" },
        { "odd <>", "odd <>" },
        { "half <a@x", "half <a@x" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *person = approvals_person(cases[i][0]);
        int same = strcmp(person, cases[i][1]) == 0;
        if (!same)
            test_fail(__FILE__, __LINE__, cases[i][1], person);
        free(person);
        if (!same)
            return;
    }
}

static void cov_branches_the_summary_hash_is_sha256_of_summary_newline_challenge(void)
{
    char hash[APPROVAL_HASH_SIZE], other[APPROVAL_HASH_SIZE];
    approvals_summary_hash(hash, "drop db", "prod");
    CHECK_STR(hash, "3c365d09e990459c082951baf68026725bf911a203286fcda2e883331d368a87");
    approvals_summary_hash(other, "drop db", "staging");
    CHECK(strcmp(hash, other) != 0);
}

static void cov_branches_who_may_approve_lists_the_rule_or_says_anyone(void)
{
    approval_rule rule = { 2, { 0 }, 60 };
    char *who = approvals_who_may(&rule);
    CHECK_STR(who, "any other operator");
    free(who);
    str_list_push(&rule.from, "a@x");
    str_list_push(&rule.from, "b@x");
    who = approvals_who_may(&rule);
    int ok = strcmp(who, "a@x, b@x") == 0;
    free(who);
    CHECK(approvals_allowed(&rule, "B <B@X>") && !approvals_allowed(&rule, "c@x"));
    approval_rule_dispose(&rule);
    CHECK(ok);
}

#define T0 1767225600.0 /* 2026-01-01T00:00:00Z */

static cJSON *approval_event(const char *kind, const char *step, const char *time, const char *who,
                             const char *hash, const char *key)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "kind", kind);
    cJSON_AddStringToObject(e, "step", step);
    cJSON_AddStringToObject(e, "time", time);
    cJSON *data = cJSON_AddObjectToObject(e, "data");
    cJSON_AddStringToObject(data, "operator", who);
    cJSON_AddStringToObject(data, "summary_hash", hash);
    if (key)
        cJSON_AddStringToObject(data, "signing_key", key);
    return e;
}

static void cov_branches_a_tally_counts_each_allowed_fresh_approval_of_the_summary_once(void)
{
    approval_rule rule = { 3, { 0 }, 600 };
    str_list_push(&rule.from, "ann@x");
    str_list_push(&rule.from, "bob@x");
    str_list_push(&rule.from, "cat@x");
    str_list_push(&rule.from, "dan@x");
    str_list_push(&rule.from, "fay@x");
    cJSON *events = cJSON_CreateArray();
    cJSON_AddItemToArray(events, approval_event("approval-given", "other", "2026-01-01T00:00:00Z", "bob@x", "h", NULL));
    cJSON_AddItemToArray(events, approval_event("step-started", "s", "2026-01-01T00:00:00Z", "bob@x", "h", NULL));
    cJSON_AddItemToArray(events, approval_event("approval-given", "s", "2026-01-01T00:00:00Z", "bob@x", "old", NULL));
    cJSON_AddItemToArray(events, approval_event("approval-given", "s", "2025-12-31T00:00:00Z", "cat@x", "h", NULL));
    cJSON_AddItemToArray(events, approval_event("approval-given", "s", "2026-01-01T00:00:00Z", "eve@x", "h", NULL));
    cJSON_AddItemToArray(events, approval_event("approval-given", "s", "2026-01-01T00:00:00Z", "Bob <BOB@x>", "h", "K1"));
    cJSON_AddItemToArray(events, approval_event("approval-given", "s", "2026-01-01T00:00:00Z", "bob@x", "h", "K2"));
    cJSON_AddItemToArray(events, approval_event("approval-given", "s", "2026-01-01T00:00:00Z", "dan@x", "h", "K1"));
    cJSON_AddItemToArray(events, approval_event("approval-given", "s", "2026-01-01T00:00:00Z", "ann@x", "h", ""));
    cJSON_AddItemToArray(events, approval_event("approval-given", "s", "2026-01-01T00:00:00Z", "fay@x", "h", NULL));
    approval_tally t;
    approvals_tally(&t, events, "s", "h", &rule, "zed@x", "K9", T0 + 60);
    int counted = t.approvers.count == 3 && !strcmp(t.approvers.items[0], "Bob <BOB@x>") &&
                  !strcmp(t.approvers.items[1], "ann@x") && t.keys.count == 1;
    char *why = xstrdup(t.not_counted.data ? t.not_counted.data : "");
    approvals_tally_dispose(&t);
    approvals_tally(&t, events, "s", "h", &rule, "cat@x", NULL, T0);
    int operator_first = t.approvers.count == 4 && !strcmp(t.approvers.items[0], "cat@x");
    approvals_tally_dispose(&t);
    approval_rule anyone = { 1, { 0 }, 600 };
    approvals_tally(&t, NULL, "s", "h", &anyone, "zed@x", NULL, T0);
    int alone = t.approvers.count == 1 && approvals_allowed(&anyone, "whoever");
    approvals_tally_dispose(&t);
    cJSON_Delete(events);
    approval_rule_dispose(&rule);
    int ok = alone && counted && operator_first && strstr(why, "zed@x: is not among who may approve") &&
             strstr(why, "bob@x: approved another summary") && strstr(why, "cat@x: approved at 2025-12-31T00:00:00Z") &&
             strstr(why, "eve@x: is not among who may approve");
    if (!ok)
        test_fail(__FILE__, __LINE__, "the tally", why);
    free(why);
}

static void cov_branches_the_pending_request_is_the_last_one_no_start_followed(void)
{
    CHECK(approvals_pending_request(NULL, "s") == NULL);
    cJSON *events = cJSON_CreateArray();
    CHECK(approvals_pending_request(events, "s") == NULL);
    cJSON_AddItemToArray(events, approval_event("approval-requested", "s", "2026-01-01T00:00:00Z", "a", "1", NULL));
    cJSON_AddItemToArray(events, approval_event("step-started", "s", "2026-01-01T00:00:00Z", "a", "1", NULL));
    const cJSON *none = approvals_pending_request(events, "s");
    cJSON_AddItemToArray(events, approval_event("approval-requested", "s", "2026-01-01T00:00:00Z", "a", "2", NULL));
    cJSON_AddItemToArray(events, approval_event("approval-requested", "t", "2026-01-01T00:00:00Z", "a", "3", NULL));
    cJSON_AddItemToArray(events, approval_event("step-finished", "s", "2026-01-01T00:00:00Z", "a", "4", NULL));
    const cJSON *pending = approvals_pending_request(events, "s");
    const cJSON *data = pending ? cJSON_GetObjectItemCaseSensitive(pending, "data") : NULL;
    const cJSON *hash = data ? cJSON_GetObjectItemCaseSensitive(data, "summary_hash") : NULL;
    int ok = none == NULL && cJSON_IsString(hash) && !strcmp(hash->valuestring, "2");
    cJSON_Delete(events);
    CHECK(ok);
}

static void cov_branches_each_bad_policy_rule_is_refused_naming_the_word(void)
{
    static const char *const bad[][2] = {
        { "count", "'count' is not one of count=" },
        { "colour=red count=1", "'colour=red' is not one of" },
        { "count= ", "'count=' has no value" },
        { "count=2x", "'count=2x' is not a count from 1 to 10" },
        { "count=0", "'count=0' is not a count" },
        { "count=11", "'count=11' is not a count" },
        { "count=1 valid_for=soon", "'valid_for=soon' is not a duration" },
        { "count=1 valid_for=-5m", "'valid_for=-5m' is not a duration" },
        { "count=1 valid_for=0s", "'valid_for=0s' is not a duration" },
        { "from=a@x runbook=r", "'from=a@x runbook=r' has no count=N" },
        { "countx=1", "'countx=1' is not one of" },
        /* an empty list once meant "anyone": a restriction silently lost */
        { "count=2 from=,", "'from=,' names no one" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        policy_rule r;
        int rc = approvals_parse_rule(&r, bad[i][0]);
        approvals_rule_dispose(&r);
        if (rc != DR_EUSAGE || !strstr(err_last(), bad[i][1])) {
            test_fail(__FILE__, __LINE__, bad[i][1], err_last());
            return;
        }
    }
    policy_rule r;
    CHECK(approvals_parse_rule(&r, "count=2\tfrom=a@x,b@x,a@x valid_for=30m runbook=x runbook=r step=s "
                                   "project=p branch=main") == 0);
    int ok = r.rule.count == 2 && r.rule.from.count == 2 && r.rule.valid_for == 1800 && !strcmp(r.runbook, "r") &&
             !strcmp(r.step, "s") && !strcmp(r.project, "p") && !strcmp(r.branch, "main");
    approvals_rule_dispose(&r);
    CHECK(ok);
}

static void cov_branches_the_team_policy_raises_what_the_runbook_asks_never_lowers_it(void)
{
    config *cfg = NULL;
    CHECK(config_parse(&cfg, "{\"approvals\": [\"count=3 runbook=other\", \"count=1 valid_for=10m\", "
                             "\"count=2 from=boss@x runbook=rb step=s project=p branch=main\", "
                             "\"count=4 project=q\", \"count=5 branch=dev\", \"count=6 step=t\"]}",
                      "config.json") == 0);
    approval_rule declared = { 1, { 0 }, 3600 };
    str_list_push(&declared.from, "ann@x");
    approval_rule out;
    approvals_effective(&out, &declared, cfg, "rb", "s", "p", "main");
    int raised = out.count == 2 && out.from.count == 1 && !strcmp(out.from.items[0], "boss@x") && out.valid_for == 600;
    approval_rule_dispose(&out);
    approvals_effective(&out, &declared, cfg, "rb", "s", NULL, NULL);
    int unmatched = out.count == 1 && out.from.count == 1 && !strcmp(out.from.items[0], "ann@x");
    approval_rule_dispose(&out);
    declared.count = 9;
    declared.valid_for = 60;
    approvals_effective(&out, &declared, cfg, "other", "s", "q", "dev");
    int kept = out.count == 9 && out.valid_for == 60;
    approval_rule_dispose(&out);
    approval_rule_dispose(&declared);
    config_free(cfg);
    CHECK(raised);
    CHECK(unmatched);
    CHECK(kept);
}

/* ---- the drill's scope ---------------------------------------------------- */

typedef struct target_case {
    const char *method, *path, *body;
    drill_kind kind;
    const char *id;        /* NULL: none */
    int set_default, creates_project, creates_branch;
} target_case;

static const target_case targets[] = {
    { "GET", "/projects/p/branches/b", NULL, DRILL_KINDS, NULL, 0, 0, 0 },
    { "POST", "//projects?x=1", NULL, DRILL_KINDS, NULL, 0, 1, 0 },
    { "PATCH", "/projects", NULL, DRILL_PROJECT, "/projects", 0, 0, 0 },
    { "DELETE", "/projects/p", NULL, DRILL_PROJECT, "p", 0, 0, 0 },
    { "POST", "/projects/p/branches", NULL, DRILL_KINDS, NULL, 0, 0, 1 },
    { "PATCH", "/projects/p/branches", NULL, DRILL_PROJECT, "p", 0, 0, 0 },
    { "POST", "/projects/p/branches/b/set_as_default", NULL, DRILL_BRANCH, "b", 1, 0, 0 },
    { "POST", "/projects/p/branches/b/restore", NULL, DRILL_BRANCH, "b", 0, 0, 0 },
    { "DELETE", "/projects/p/branches/b", NULL, DRILL_BRANCH, "b", 0, 0, 0 },
    { "POST", "/projects/p/endpoints", "{\"endpoint\":{\"branch_id\":\"b2\"}}", DRILL_BRANCH, "b2", 0, 0, 0 },
    { "POST", "/projects/p/endpoints", "{}", DRILL_BRANCH, "", 0, 0, 0 },
    { "GET", "/projects/p/endpoints", NULL, DRILL_KINDS, NULL, 0, 0, 0 },
    { "PATCH", "/projects/p/endpoints", NULL, DRILL_PROJECT, "p", 0, 0, 0 },
    { "POST", "/projects/p/endpoints/e/start", NULL, DRILL_ENDPOINT, "e", 0, 0, 0 },
    { "POST", "/projects/p/snapshots/s/restore", "{\"target_branch_id\":\"b3\"}", DRILL_BRANCH, "b3", 0, 0, 0 },
    { "POST", "/projects/p/snapshots/s/restore", "{\"finalize_restore\":true}", DRILL_SNAPSHOT, "s", 0, 0, 0 },
    { "POST", "/projects/p/snapshots/s/restore", "{\"finalize_restore\":false}", DRILL_KINDS, NULL, 0, 0, 0 },
    { "POST", "/projects/p/snapshots/s/other", NULL, DRILL_SNAPSHOT, "s", 0, 0, 0 },
    { "DELETE", "/projects/p/snapshots/s", NULL, DRILL_SNAPSHOT, "s", 0, 0, 0 },
    { "PATCH", "/projects/p/snapshots", NULL, DRILL_PROJECT, "p", 0, 0, 0 },
    { "PATCH", "/projects/p/settings", NULL, DRILL_PROJECT, "p", 0, 0, 0 },
    { "POST", "/users/me", NULL, DRILL_PROJECT, "/users/me", 0, 0, 0 },
    { "POST", "/users", NULL, DRILL_PROJECT, "/users", 0, 0, 0 },
    { "PATCH", "/projects/p/settings/a/b", NULL, DRILL_PROJECT, "p", 0, 0, 0 },
    { "PATCH", "/projects/p/settings/a", NULL, DRILL_PROJECT, "p", 0, 0, 0 },
    { "DELETE", "/projects/p/branches/b/x/y/z/w", NULL, DRILL_BRANCH, "b", 0, 0, 0 },
};

static void cov_branches_each_change_is_classified_by_what_it_touches(void)
{
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        const target_case *c = &targets[i];
        cJSON *body = c->body ? cJSON_Parse(c->body) : NULL;
        drill_target t;
        drill_target_of(&t, c->method, c->path, body);
        int ok = t.kind == c->kind && (c->id ? t.id && !strcmp(t.id, c->id) : !t.id) &&
                 t.set_default == c->set_default && t.creates_project == c->creates_project &&
                 t.creates_branch == c->creates_branch;
        char detail[300];
        snprintf(detail, sizeof detail, "%s %s: kind %d id %s", c->method, c->path, (int)t.kind, t.id ? t.id : "-");
        drill_target_dispose(&t);
        cJSON_Delete(body);
        if (!ok) {
            test_fail(__FILE__, __LINE__, "the target", detail);
            return;
        }
    }
}

static void cov_branches_a_scope_knows_only_what_was_added_and_claims_its_own_recent_names(void)
{
    drill_scope *s = drill_scope_new("Run-ABC", T0);
    drill_scope_add(s, DRILL_BRANCH, NULL);
    drill_scope_add(s, DRILL_BRANCH, "");
    drill_scope_add(s, DRILL_KINDS, "x");
    drill_scope_add(s, DRILL_BRANCH, "b1");
    int known = drill_scope_has(s, DRILL_BRANCH, "b1") && !drill_scope_has(s, DRILL_BRANCH, NULL) &&
                !drill_scope_has(s, DRILL_KINDS, "x") && !drill_scope_has(s, DRILL_PROJECT, "b1");
    static const struct { const char *json; int claimed; } objects[] = {
        { "{\"name\":\"drill-run-abc-x\",\"created_at\":\"2026-01-01T00:00:00Z\"}", 1 },
        { "{\"name\":\"drill-run-abc-x\",\"created_at\":\"2025-12-31T23:59:58Z\"}", 0 },
        { "{\"name\":\"drill-run-abc-x\",\"created_at\":\"yesterday\"}", 0 },
        { "{\"name\":\"drill-other\",\"created_at\":\"2026-01-01T00:00:00Z\"}", 0 },
        { "{\"created_at\":\"2026-01-01T00:00:00Z\"}", 0 },
        { "{\"name\":\"drill-run-abc-x\"}", 0 },
    };
    int claims = 1;
    for (size_t i = 0; i < sizeof objects / sizeof *objects; i++) {
        cJSON *o = cJSON_Parse(objects[i].json);
        if (drill_scope_claims(s, o) != objects[i].claimed)
            claims = 0;
        cJSON_Delete(o);
    }
    int refusals = drill_scope_refusal_count(s) == 0 && drill_scope_refusal(s, 0) == NULL;
    drill_scope_refuse(s, "no");
    drill_scope_refuse(s, "no");
    refusals = refusals && drill_scope_refusal_count(s) == 2 && !strcmp(drill_scope_refusal(s, 1), "no");
    drill_scope_free(s);
    drill_scope_free(NULL);
    CHECK(known);
    CHECK(claims);
    CHECK(refusals);
}

static void cov_branches_a_scope_learns_what_answers_created_once_each(void)
{
    drill_scope *s = drill_scope_new("r1", T0);
    cJSON *answer = cJSON_Parse("{\"project\":{\"id\":\"p1\"},\"branch\":{\"id\":\"b1\"},\"snapshot\":{\"id\":\"s1\"},"
                                "\"endpoints\":[{\"id\":\"e1\"},{\"name\":\"no id\"}],\"endpoint\":{\"id\":\"e1\"},"
                                "\"connection_uris\":[{\"connection_uri\":\"postgresql://u@h1.example/db\"},"
                                "{\"connection_uri\":\"host=h2 port=6543 dbname=x\"},"
                                "{\"connection_uri\":\"hostaddr=10.0.0.1 port=\"},"
                                "{\"connection_uri\":\"dbname=x\"},{\"connection_uri\":\"not a uri '\"},{}]}");
    cJSON *learned = cJSON_CreateArray();
    drill_scope_learn(s, answer, learned);
    drill_scope_learn(s, answer, learned); /* nothing new the second time */
    drill_scope_learn(s, answer, NULL);
    int count = cJSON_GetArraySize(learned);
    int hosts = drill_scope_has(s, DRILL_HOST, "h1.example:5432") && drill_scope_has(s, DRILL_HOST, "h2:6543") &&
                drill_scope_has(s, DRILL_HOST, "10.0.0.1:5432");
    int others = drill_scope_has(s, DRILL_PROJECT, "p1") && drill_scope_has(s, DRILL_SNAPSHOT, "s1") &&
                 drill_scope_has(s, DRILL_ENDPOINT, "e1");
    char *both = drill_host_of_uri("host=named hostaddr=10.0.0.2");
    int host_first = both && !strcmp(both, "named:5432");
    free(both);
    drill_scope_learn_uri(s, NULL, learned);
    char *empty_host = drill_host_of_uri("host='' hostaddr='' port=1");
    int no_host = empty_host == NULL;
    free(empty_host);
    cJSON *bare = cJSON_Parse("{\"branch\":{\"id\":\"b9\"}}");
    drill_scope_learn(s, bare, NULL); /* learned, though not listed */
    int unlisted = drill_scope_has(s, DRILL_BRANCH, "b9") && cJSON_GetArraySize(learned) == 7;
    cJSON_Delete(bare);
    cJSON_Delete(learned);
    cJSON_Delete(answer);
    drill_scope_free(s);
    CHECK(count == 7);
    CHECK(hosts);
    CHECK(others);
    CHECK(host_first);
    CHECK(no_host);
    CHECK(unlisted);
}

static void cov_branches_a_branch_creation_gets_the_expiry_unless_it_has_one(void)
{
    drill_scope *s = drill_scope_new("r1", T0);
    cJSON *body = cJSON_Parse("{}");
    drill_scope_stamp_expiry(s, body); /* no expiry yet: nothing */
    int untouched = cJSON_GetArraySize(body) == 0;
    drill_scope_set_expiry(s, "2026-01-02T00:00:00Z");
    drill_scope_stamp_expiry(s, NULL);
    drill_scope_stamp_expiry(s, body);
    const char *stamped = json_text(cJSON_GetObjectItemCaseSensitive(body, "branch"), "expires_at", NULL);
    int added = stamped && !strcmp(stamped, "2026-01-02T00:00:00Z");
    cJSON *own = cJSON_Parse("{\"branch\":{\"expires_at\":\"soon\"}}");
    drill_scope_stamp_expiry(s, own);
    int kept = !strcmp(json_text(cJSON_GetObjectItemCaseSensitive(own, "branch"), "expires_at", ""), "soon");
    cJSON *odd = cJSON_Parse("{\"branch\":1}");
    drill_scope_stamp_expiry(s, odd);
    int odd_kept = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(odd, "branch"));
    cJSON *array = cJSON_Parse("[]");
    drill_scope_stamp_expiry(s, array);
    int array_kept = cJSON_GetArraySize(array) == 0;
    drill_scope_set_expiry(s, NULL);
    int cleared = drill_scope_expiry(s) == NULL;
    cJSON_Delete(body);
    cJSON_Delete(own);
    cJSON_Delete(odd);
    cJSON_Delete(array);
    drill_scope_free(s);
    CHECK(untouched && added && kept && odd_kept && array_kept && cleared);
}

static void cov_branches_the_drill_default_rewrites_the_default_flags_and_replays(void)
{
    drill_scope *s = drill_scope_new("r1", T0);
    cJSON *answer = cJSON_Parse("{\"branch\":{\"id\":\"b1\",\"default\":true},"
                                "\"branches\":[{\"id\":\"b1\",\"default\":true},{\"id\":\"b2\",\"default\":false},"
                                "{\"id\":\"b3\"},{\"default\":true}]}");
    drill_scope_rewrite_default(s, answer); /* no drill default: unchanged */
    int unchanged = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(answer, "branch"),
                                                                   "default"));
    cJSON *events = cJSON_Parse("[{\"kind\":\"step-started\"},{\"data\":{}},"
                                "{\"kind\":\"neon\",\"data\":{\"drill_learned\":[{\"kind\":\"branch\",\"id\":\"b2\"},"
                                "{\"kind\":\"galaxy\",\"id\":\"g\"},{\"id\":\"nokind\"}],\"drill_default\":\"b2\"}},"
                                "{\"kind\":\"neon\",\"data\":{}}]");
    drill_scope_replay(s, NULL);
    cJSON *json = drill_scope_to_json(s);
    int bare = !cJSON_GetObjectItemCaseSensitive(json, "expires_at") &&
               cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(json, "default"));
    cJSON_Delete(json);
    drill_scope_replay(s, events);
    int replayed = drill_scope_has(s, DRILL_BRANCH, "b2") && !strcmp(drill_scope_default(s), "b2");
    drill_scope_rewrite_default(s, NULL);
    drill_scope_rewrite_default(s, answer);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(answer, "branches");
    int rewritten = cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 0), "default")) &&
                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 1), "default")) &&
                    !cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 2), "default") &&
                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 3), "default"));
    drill_scope_set_expiry(s, "2026-01-02T00:00:00Z");
    drill_scope_refuse(s, "refused once");
    cJSON *lone = cJSON_Parse("{\"branch\":{\"id\":\"b2\",\"default\":false}}");
    drill_scope_rewrite_default(s, lone);
    int lone_default = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(lone, "branch"),
                                                                      "default"));
    cJSON_Delete(lone);
    json = drill_scope_to_json(s);
    char *text = cJSON_PrintUnformatted(json);
    int shown = strstr(text, "\"branches\":[\"b2\"]") && strstr(text, "\"expires_at\":\"2026-01-02T00:00:00Z\"") &&
                strstr(text, "\"refused\":[\"refused once\"]") && strstr(text, "\"default\":\"b2\"");
    free(text);
    cJSON_Delete(json);
    drill_scope_set_default(s, NULL);
    json = drill_scope_to_json(s);
    int null_default = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(json, "default"));
    cJSON_Delete(json);
    cJSON_Delete(events);
    cJSON_Delete(answer);
    drill_scope_free(s);
    CHECK(bare);
    CHECK(lone_default);
    CHECK(unchanged);
    CHECK(replayed);
    CHECK(rewritten);
    CHECK(shown);
    CHECK(null_default);
}

static void cov_branches_a_drill_owns_only_paths_with_a_component_naming_its_run(void)
{
    drill_scope *s = drill_scope_new("R1", T0);
    static const struct { const char *path; int owned; } paths[] = {
        { "r1", 1 }, { "/tmp/r1/x", 1 }, { "/tmp/drill-r1.sql", 1 }, { "/tmp/x-r1-y", 1 },
        { "/tmp/r1/../etc", 0 }, { "/tmp/ar1/x", 0 }, { "/tmp/r1x", 0 }, { "/tmp/ar1/r1", 1 }, { "/tmp/none", 0 },
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        if (drill_scope_owns_path(s, paths[i].path) != paths[i].owned) {
            test_fail(__FILE__, __LINE__, "owns_path", paths[i].path);
            ok = 0;
            break;
        }
    drill_scope_free(s);
    if (!ok)
        return;
    CHECK(drill_program_allowed("mkdir") && drill_program_allowed("test") && !drill_program_allowed("psql"));
}

/* ---- runs of an audit folder ------------------------------------------------ */

#define J_START(t) "{\"seq\":1,\"time\":\"" t "\",\"kind\":\"run-started\",\"step\":null,\"data\":{\"steps\":[\"a\",\"b\"]}}\n"
#define J_STEP_DONE(seq, t, step, data) \
    "{\"seq\":" #seq ",\"time\":\"" t "\",\"kind\":\"step-done\",\"step\":\"" step "\",\"data\":" data "}\n"

/* runs/<id>/run.json (when info) and journal.jsonl (when journal). */
static void write_run(const char *id, const char *info, const char *journal)
{
    char name[256];
    if (info) {
        snprintf(name, sizeof name, "audit/runs/%s/run.json", id);
        test_write_file(name, info);
    }
    if (journal) {
        snprintf(name, sizeof name, "audit/runs/%s/journal.jsonl", id);
        test_write_file(name, journal);
    }
}

static void cov_branches_run_ids_are_safe_names_and_new_ones_are_stamped(void)
{
    static const struct { const char *id; int valid; } ids[] = {
        { "", 0 }, { ".hidden", 0 }, { "a/b", 0 }, { "a b", 0 }, { "a~", 0 }, { "a:", 0 }, { "a@", 0 }, { "a[", 0 },
        { "a{", 0 }, { "-rf", 0 }, { "20260101T000000Z-Run_1.x-ab12", 1 }, { "Z", 1 },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0 },
    };
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
        if (runs_valid_id(ids[i].id) != ids[i].valid) {
            test_fail(__FILE__, __LINE__, "runs_valid_id", ids[i].id);
            return;
        }
    char *id = runs_new_id("restore");
    int ok = runs_valid_id(id) && strlen(id) == strlen("20260101T000000Z-restore-ab12") && strstr(id, "Z-restore-");
    free(id);
    CHECK(ok);
}

static void cov_branches_a_run_record_that_is_missing_or_corrupt_is_refused_naming_it(void)
{
    write_run("r-array", "[1]", NULL);
    write_run("r-text", "not json", NULL);
    test_write_file("audit/runs/r-dir/run.json/inside", "{}"); /* run.json that cannot be read */
    char audit[512];
    snprintf(audit, sizeof audit, "%s/audit", test_tmpdir());
    cJSON *info = (cJSON *)1;
    CHECK(runs_read_info(&info, audit, "../x") == DR_EUSAGE && info == NULL);
    CHECK_CONTAINS(err_last(), "'../x' is not a run id");
    CHECK(runs_read_info(&info, audit, "r-none") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "there is no run r-none in");
    CHECK(runs_read_info(&info, audit, "r-array") == DR_EUSAGE && info == NULL);
    CHECK_CONTAINS(err_last(), "r-array/run.json is not valid JSON (corrupt run record)");
    CHECK(runs_read_info(&info, audit, "r-text") == DR_EUSAGE && info == NULL);
    CHECK_CONTAINS(err_last(), "r-text/run.json is not valid JSON");
    CHECK(runs_read_info(&info, audit, "r-dir") == DR_EUSAGE && info == NULL);
    cJSON *record = (cJSON *)1;
    CHECK(runs_record(&record, audit, "r-none") == DR_EUSAGE && record == NULL);
}

static void cov_branches_a_run_state_is_replayed_with_its_elapsed_time_or_is_corrupt(void)
{
    write_run("r-ok", "{}", J_START("2026-01-01T00:00:00Z")
              J_STEP_DONE(2, "2026-01-01T00:00:02Z", "a", "{}"));
    write_run("r-badtime", "{}", J_START("2026-01-01T00:00:00Z")
              J_STEP_DONE(2, "later", "a", "{}"));
    write_run("r-notime", "{}", "{\"seq\":1,\"kind\":\"run-started\",\"step\":null,\"data\":{\"steps\":[\"a\"]}}\n");
    write_run("r-lastnotime", "{}", J_START("2026-01-01T00:00:00Z")
              "{\"seq\":2,\"kind\":\"step-done\",\"step\":\"a\",\"data\":{}}\n");
    write_run("r-corrupt", "{}", J_START("2026-01-01T00:00:00Z")
              J_STEP_DONE(2, "2026-01-01T00:00:02Z", "zzz", "{}"));
    char audit[512];
    snprintf(audit, sizeof audit, "%s/audit", test_tmpdir());
    int live = -1;
    cJSON *state = runs_state(&live, audit, "r-ok");
    int ok = live == 0 && json_number(state, "elapsed_seconds", -1) == 2 &&
             !strcmp(runs_shown_status(state, 0), "dead (the process stopped mid-run; resume it)") &&
             !strcmp(runs_shown_status(state, 1), "running");
    cJSON_Delete(state);
    state = runs_state(&live, audit, "r-badtime");
    int badtime = cJSON_GetObjectItemCaseSensitive(state, "elapsed_seconds") == NULL;
    cJSON_Delete(state);
    state = runs_state(&live, audit, "r-lastnotime");
    badtime = badtime && cJSON_GetObjectItemCaseSensitive(state, "elapsed_seconds") == NULL &&
              strcmp(json_text(state, "status", ""), "corrupt") != 0;
    cJSON_Delete(state);
    state = runs_state(&live, audit, "r-notime");
    int notime = cJSON_GetObjectItemCaseSensitive(state, "elapsed_seconds") == NULL;
    cJSON_Delete(state);
    state = runs_state(&live, audit, "r-corrupt");
    int corrupt = !strcmp(json_text(state, "status", ""), "corrupt") && strstr(json_text(state, "detail", ""), "zzz") &&
                  !strcmp(runs_shown_status(state, 0), "corrupt");
    cJSON_Delete(state);
    state = runs_state(&live, audit, "r-nojournal");
    int missing = !strcmp(json_text(state, "status", ""), "corrupt");
    cJSON_Delete(state);
    cJSON *record = NULL;
    int recorded = runs_record(&record, audit, "r-corrupt") == 0 &&
                   !strcmp(json_text(record, "status", ""), "corrupt") &&
                   cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(record, "outputs")) == 0;
    cJSON_Delete(record);
    CHECK(recorded);
    CHECK(ok);
    CHECK(badtime);
    CHECK(notime);
    CHECK(corrupt);
    CHECK(missing);
}

static void cov_branches_runs_are_collected_newest_first_with_their_undos_and_outputs(void)
{
    char audit[512];
    snprintf(audit, sizeof audit, "%s/audit", test_tmpdir());
    cJSON *none = runs_collect(audit); /* no runs/ yet */
    int empty = cJSON_GetArraySize(none) == 0;
    cJSON_Delete(none);
    none = runs_undone_by(audit, "r1");
    empty = empty && cJSON_GetArraySize(none) == 0;
    cJSON_Delete(none);
    const char *journal = J_START("2026-01-01T00:00:00Z")
                          J_STEP_DONE(2, "2026-01-01T00:00:03Z", "a", "{\"outputs\":{\"id\":7}}")
                          J_STEP_DONE(3, "2026-01-01T00:00:04Z", "b", "{}");
    write_run("r1", "{\"runbook\":{\"name\":\"restore\",\"version\":\"2\"},\"started_at\":\"2026-01-01T00:00:00Z\","
                    "\"operator\":\"ann@x\",\"params\":{\"at\":\"now\"},\"target\":{\"project\":\"p\"}}", journal);
    write_run("r2", "{\"runbook\":{\"name\":\"undo\"},\"params\":{\"run\":\"r1\"}}", journal);
    write_run("r3", "{\"runbook\":{\"name\":\"undo\"},\"params\":{\"run\":\"r9\"}}", journal);
    write_run("r4", "{\"runbook\":{\"name\":\"other\"},\"params\":{\"run\":\"r1\"}}", journal);
    write_run("r5", "{\"runbook\":{\"name\":\"undo\"}}", journal);
    write_run("r6", NULL, journal);          /* no run.json: left out */
    write_run(".r7", "{}", journal);         /* hidden: never a run */
    cJSON *rows = runs_collect(audit);
    const cJSON *first = cJSON_GetArrayItem(rows, 0), *last = cJSON_GetArrayItem(rows, 4);
    int collected = cJSON_GetArraySize(rows) == 5 && !strcmp(json_text(first, "run_id", ""), "r5") &&
                    !strcmp(json_text(first, "version", ""), "?") && !strcmp(json_text(last, "run_id", ""), "r1") &&
                    !strcmp(json_text(last, "runbook", ""), "restore") &&
                    !strcmp(json_text(last, "operator", ""), "ann@x") &&
                    json_number(last, "duration_seconds", 0) == 4;
    cJSON_Delete(rows);
    cJSON *record = NULL;
    CHECK(runs_record(&record, audit, "r1") == 0);
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(record, "outputs");
    const cJSON *undos = cJSON_GetObjectItemCaseSensitive(record, "undone_by");
    int recorded = json_number(cJSON_GetObjectItemCaseSensitive(outputs, "a"), "id", 0) == 7 &&
                   !cJSON_GetObjectItemCaseSensitive(outputs, "b") && cJSON_GetArraySize(undos) == 1 &&
                   !strcmp(json_text(cJSON_GetArrayItem(undos, 0), "run_id", ""), "r2") &&
                   !strcmp(json_text(cJSON_GetObjectItemCaseSensitive(record, "params"), "at", ""), "now") &&
                   !strcmp(json_text(record, "version", ""), "2");
    cJSON_Delete(record);
    CHECK(runs_record(&record, audit, "r5") == 0);
    int nulls = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(record, "target")) &&
                cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(record, "operator"));
    cJSON_Delete(record);
    CHECK(empty);
    CHECK(collected);
    CHECK(recorded);
    CHECK(nulls);
}

TEST_SUITE(cov_engine_branches)
{
    REGISTER(cov_branches_each_bad_declaration_is_refused_naming_the_bad_value);
    REGISTER(cov_branches_a_runbook_with_every_optional_form_loads_them_into_its_steps);
    REGISTER(cov_branches_a_missing_runbook_file_is_a_usage_error);
    REGISTER(cov_branches_names_with_dashes_and_underscores_load_and_a_sandbox_loads_twice);
    REGISTER(cov_branches_a_runbook_without_a_sandbox_is_freed_without_lua);
    REGISTER(cov_branches_a_composed_runbook_takes_what_the_module_makes_and_checks_it);
    REGISTER(cov_branches_a_person_is_the_address_inside_angle_brackets_lower_cased);
    REGISTER(cov_branches_the_summary_hash_is_sha256_of_summary_newline_challenge);
    REGISTER(cov_branches_who_may_approve_lists_the_rule_or_says_anyone);
    REGISTER(cov_branches_a_tally_counts_each_allowed_fresh_approval_of_the_summary_once);
    REGISTER(cov_branches_the_pending_request_is_the_last_one_no_start_followed);
    REGISTER(cov_branches_each_bad_policy_rule_is_refused_naming_the_word);
    REGISTER(cov_branches_the_team_policy_raises_what_the_runbook_asks_never_lowers_it);
    REGISTER(cov_branches_each_change_is_classified_by_what_it_touches);
    REGISTER(cov_branches_a_scope_knows_only_what_was_added_and_claims_its_own_recent_names);
    REGISTER(cov_branches_a_scope_learns_what_answers_created_once_each);
    REGISTER(cov_branches_a_branch_creation_gets_the_expiry_unless_it_has_one);
    REGISTER(cov_branches_the_drill_default_rewrites_the_default_flags_and_replays);
    REGISTER(cov_branches_a_drill_owns_only_paths_with_a_component_naming_its_run);
    REGISTER(cov_branches_run_ids_are_safe_names_and_new_ones_are_stamped);
    REGISTER(cov_branches_a_run_record_that_is_missing_or_corrupt_is_refused_naming_it);
    REGISTER(cov_branches_a_run_state_is_replayed_with_its_elapsed_time_or_is_corrupt);
    REGISTER(cov_branches_runs_are_collected_newest_first_with_their_undos_and_outputs);
}
