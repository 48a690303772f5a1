#include "session.h"

#include "buf.h"
#include "config.h"
#include "drill.h"
#include "dumpmod.h"
#include "err.h"
#include "fsio.h"
#include "jsonfield.h"
#include "params.h"
#include "redact.h"
#include "runner.h"
#include "term.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a runbook may take of Lua's memory: far above what a runbook needs,
 * far below what would hurt the machine. */
#define MEMORY_LIMIT (512u << 20)

/* ---- the sandbox ------------------------------------------------------------------ */

/* drctl's own lua/ (the drill, the scenarios' shared code) also serves
 * runbooks kept in a folder of their own. */
static void add_own_lib_dir(sandbox *sb)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *bin = fsio_dirname(exe);
    char *own = xasprintf("%s/../lua", bin);
    sandbox_add_lib_dir(sb, own);
    free(own);
    free(bin);
}

static void add_lib_dirs(sandbox *sb, const char *runbook_path)
{
    char *dir = fsio_dirname(runbook_path);
    char *beside = xasprintf("%s/../lua", dir);
    sandbox_add_lib_dir(sb, beside);
    sandbox_add_lib_dir(sb, "lua");
    char *shared = xasprintf("%s/lua", cli_share_dir());
    sandbox_add_lib_dir(sb, shared);
    free(shared);
    add_own_lib_dir(sb);
    free(beside);
    free(dir);
}

int session_sandbox_new(sandbox **out, pg_module **pg, drill_module **drill, const char *runbook_path,
                        dr_host *host, neon_module *neon)
{
    *pg = NULL;
    *drill = NULL;
    int rc = sandbox_new(out, MEMORY_LIMIT);
    if (rc)
        return rc;
    add_lib_dirs(*out, runbook_path);
    drmod_register(*out, host);
    neonmod_register(*out, neon);
    *pg = pgmod_register(*out, host);
    dumpmod_register(*out, host);
    *drill = drillmod_register(*out, host);
    return 0;
}

/* ---- finding and loading the runbook ------------------------------------------------ */

static int looks_like_path(const char *arg)
{
    size_t len = strlen(arg);
    return strchr(arg, '/') || (len > 4 && strcmp(arg + len - 4, ".lua") == 0);
}

/* The first DIR/name.lua on the search path, or NULL; looked gets every
 * path tried, for the message. */
static char *find_on_search_path(buf *looked, const cli *c, const char *name)
{
    char **dirs;
    size_t count;
    cli_search_dirs(&dirs, &count, c);
    char *found = NULL;
    for (size_t i = 0; i < count && !found; i++) {
        char *candidate = xasprintf("%s/%s.lua", dirs[i], name);
        if (fsio_exists(candidate))
            found = candidate;
        else {
            buf_printf(looked, "%s%s", looked->len ? ", " : "", candidate);
            free(candidate);
        }
    }
    cli_free_list(dirs, count);
    return found;
}

/* The file of a runbook given by name or path; NULL with DR_EUSAGE. */
static char *resolve_runbook(const cli *c, const char *name_or_path, const char *fallback_path)
{
    if (looks_like_path(name_or_path)) {
        if (fsio_exists(name_or_path))
            return xstrdup(name_or_path);
        err_set(DR_EUSAGE, "runbook file %s does not exist", name_or_path);
        return NULL;
    }
    if (!runbook_valid_name(name_or_path)) {
        err_set(DR_EUSAGE, "'%s' is not a runbook name (lower-case letters, digits and '-'); "
                "drctl list shows the runbooks", name_or_path);
        return NULL;
    }
    buf looked = BUF_INIT;
    char *found = find_on_search_path(&looked, c, name_or_path);
    if (!found && fallback_path && fsio_exists(fallback_path))
        found = xstrdup(fallback_path);
    if (!found)
        err_set(DR_EUSAGE, "no runbook named '%s' (looked for %s); drctl list shows the runbooks, "
                "--runbooks DIR adds a folder", name_or_path, buf_cstr(&looked));
    buf_dispose(&looked);
    return found;
}

static int validate_approvals(const cli *c, const runbook *rb)
{
    for (size_t i = 0; i < c->approval_count; i++)
        if (runbook_step_index(rb, c->approvals[i]) < 0 && strcmp(c->approvals[i], RUNNER_LOCAL_LOCK_STEP) != 0)
            return err_set(DR_EUSAGE, "--approve %s: runbook %s has no step named '%s' (--approve %s goes on "
                           "without origin's target lock)", c->approvals[i], rb->name, c->approvals[i],
                           RUNNER_LOCAL_LOCK_STEP);
    return 0;
}

/* The team's settings the runbook's params read (key -> text, only those
 * set in config.json), in *settings. The file is read only when a param
 * has `config`: a runbook without one never depends on it. A file that
 * does not load refuses the run (its message names the file). */
static int read_param_settings(cJSON **settings, const runbook *rb, const cli *c)
{
    *settings = NULL;
    if (!params_use_config(rb->params, rb->param_count))
        return 0;
    config *cfg = NULL;
    int rc = config_load(&cfg, cli_audit_dir(c));
    if (rc)
        return rc;
    *settings = cJSON_CreateObject();
    for (size_t i = 0; i < rb->param_count; i++) {
        const char *key = rb->params[i].config;
        if (key && config_is_set(cfg, key) && !cJSON_GetObjectItemCaseSensitive(*settings, key))
            cJSON_AddStringToObject(*settings, key, config_text(cfg, key));
    }
    config_free(cfg);
    return 0;
}

/* A value the team's settings gave is said, with where it came from: it
 * is the one source the command line does not show. */
static void say_setting_sources(const runbook *rb, const cJSON *settings, const cJSON *sources)
{
    for (size_t i = 0; i < rb->param_count; i++) {
        const param_spec *spec = &rb->params[i];
        const char *from = json_text(sources, spec->name, "");
        if (spec->config && strncmp(from, "config ", 7) == 0)
            term_info("param %s = %s (from config.json %s)", spec->name, json_text(settings, spec->config, ""),
                      spec->config);
    }
}

int session_new_run_params(cJSON **params, cJSON **param_sources, session *s, const cli *c)
{
    *params = NULL;
    if (param_sources)
        *param_sources = NULL;
    cJSON *settings = NULL, *sources = NULL;
    int rc = read_param_settings(&settings, s->rb, c);
    params_input in = { c->params, c->param_count, NULL, settings };
    if (rc == 0)
        rc = params_resolve_from(params, &sources, s->rb->params, s->rb->param_count, &in);
    if (rc == 0) {
        params_register_secrets(s->rb->params, s->rb->param_count, *params);
        if ((rc = session_prepare_target(s, *params, NULL)) != 0) {
            cJSON_Delete(*params);
            *params = NULL;
        } else {
            say_setting_sources(s->rb, settings, sources); /* after the target, which is said first */
        }
    }
    cJSON_Delete(settings);
    if (rc == 0 && param_sources)
        *param_sources = sources;
    else
        cJSON_Delete(sources);
    return rc;
}

int session_check_policy(const session *s, const cli *c)
{
    for (size_t i = 0; i < s->rb->step_count; i++)
        if (s->rb->steps[i].destructive)
            return config_check_policy(cli_audit_dir(c));
    return 0;
}

void session_dispose(session *s)
{
    neonmod_close(&s->neon);
    drillmod_free(s->drill); /* its writer first: it may be writing */
    pgmod_free(s->pg);
    drill_scope_free(s->host.drill);
    target_dispose(&s->target);
    runbook_free(s->rb);
    sandbox_free(s->sb);
    memset(s, 0, sizeof *s);
}

int session_load(session *s, const cli *c, const char *name_or_path, const char *fallback_path, int composed)
{
    memset(s, 0, sizeof *s);
    char *path = resolve_runbook(c, name_or_path, fallback_path);
    if (!path)
        return DR_EUSAGE;
    target_resolve(&s->target, c->local);
    s->host.audit_dir = cli_audit_dir(c);
    s->neon.host = &s->host;
    s->neon.target = &s->target;
    int rc = session_sandbox_new(&s->sb, &s->pg, &s->drill, path, &s->host, &s->neon);
    if (rc == 0)
        rc = composed ? runbook_load_composed(&s->rb, s->sb, path, "drctl.drill", "compose")
                      : runbook_load(&s->rb, s->sb, path);
    free(path);
    if (rc == 0)
        rc = validate_approvals(c, s->rb);
    if (rc)
        session_dispose(s);
    return rc;
}

/* ---- the target ---------------------------------------------------------------------- */

/* A run goes on on the target it started on: a resume that would act on
 * another Neon is refused before anything is done. */
static int check_same_target(const target *now_target, const cJSON *recorded)
{
    const char *was = json_text(recorded, "kind", "none");
    const char *now = now_target->kind == TARGET_LOCAL ? "local" : "cloud";
    const char *was_host = json_text(recorded, "api_host", "");
    if (strcmp(was, now) != 0)
        return err_set(DR_EUSAGE, "this run was started on %s and would now act on %s: act on it with the "
                       "same target (%s)", strcmp(was, "local") == 0 ? "neon-local (--local)" : "the Neon API",
                       strcmp(now, "local") == 0 ? "neon-local" : "the Neon API",
                       strcmp(was, "local") == 0 ? "--local" : "NEON_API_KEY, without --local");
    if (!strcmp(now, "cloud") && strcmp(was_host, now_target->api_host) != 0)
        return err_set(DR_EUSAGE, "this run was started on the Neon API at %s, and NEON_API_HOST now says %s: "
                       "act on it with the same NEON_API_HOST", was_host, now_target->api_host);
    return 0;
}

int session_check_target(const session *s, const cJSON *recorded)
{
    return s->neon.required && cJSON_IsObject(recorded) ? check_same_target(&s->target, recorded) : 0;
}

int session_prepare_target(session *s, const cJSON *params, const cJSON *recorded)
{
    if (!s->neon.required)
        return 0;
    if (s->target.kind == TARGET_NONE)
        return target_refuse();
    int rc = cJSON_IsObject(recorded) ? check_same_target(&s->target, recorded) : 0;
    if (rc || (rc = target_connect(&s->target)) != 0)
        return rc;
    redact_add_named_secret("the Neon API key", s->target.api_key);
    char *what = target_describe(&s->target);
    const char *project = params ? json_text(params, "project", NULL) : NULL;
    term_info("target: %s%s%s", what, project && *project ? ", project " : "", project && *project ? project : "");
    free(what);
    return 0;
}
