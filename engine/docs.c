#include "docs.h"

#include "buf.h"
#include "err.h"
#include "jsonfield.h"
#include "params.h"
#include "runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARKER_PREFIX "<!-- drctl-docs runbook="
#define EXAMPLE_TIMESTAMP "2026-01-01T00:00:00Z"

/* ---- the marker line ------------------------------------------------------------- */

char *docs_marker_line(const char *name, const char *version, const char *blob_id)
{
    return xasprintf(MARKER_PREFIX "%s version=%s blob=%s -->", name, version, blob_id);
}

int docs_parse_marker(char name[256], char blob_id[41], const char *text)
{
    if (strncmp(text, MARKER_PREFIX, strlen(MARKER_PREFIX)) != 0)
        return 0;
    const char *p = text + strlen(MARKER_PREFIX);
    size_t n = strcspn(p, " \n");
    const char *blob = strstr(p, " blob=");
    const char *eol = strchr(p, '\n');
    if (n == 0 || n >= 256 || !blob || (eol && blob > eol) || strspn(blob + 6, "0123456789abcdef") != 40)
        return 0;
    memcpy(name, p, n);
    name[n] = '\0';
    memcpy(blob_id, blob + 6, 40);
    blob_id[40] = '\0';
    return 1;
}

/* ---- example params ------------------------------------------------------------------ */

/* A value of spec's type that validates, for a required param with no
 * default: the plans need one, and the page says it is an example. */
static char *example_text(const param_spec *spec)
{
    switch (spec->type) {
    case PARAM_INT:
        return xstrdup("0");
    case PARAM_BOOL:
        return xstrdup("false");
    case PARAM_ENUM:
        return xstrdup(spec->value_count ? spec->values[0] : "");
    case PARAM_TIMESTAMP:
        return xstrdup(EXAMPLE_TIMESTAMP);
    case PARAM_DURATION:
        return xstrdup("1h");
    default:
        return xasprintf("<%s>", spec->name);
    }
}

cJSON *docs_example_params(const runbook *rb)
{
    cJSON *params = cJSON_CreateObject();
    for (size_t i = 0; i < rb->param_count; i++) {
        const param_spec *spec = &rb->params[i];
        if (!spec->default_text && !spec->required)
            continue;
        char *text = spec->default_text ? xstrdup(spec->default_text) : example_text(spec);
        cJSON *value = NULL;
        if (params_parse_value(&value, spec, text) == 0)
            cJSON_AddItemToObject(params, spec->name, value);
        free(text);
    }
    return params;
}

/* ---- Markdown ---------------------------------------------------------------------- */

/* Text as Markdown shows it literally: what a renderer would take for
 * emphasis, a link, an HTML tag (<branch>) or a table cell is escaped;
 * newlines become spaces when the text goes in one line (a table cell). */
static void put_escaped(buf *out, const char *text, int one_line)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\n' && one_line) {
            buf_putc(out, ' ');
            continue;
        }
        if (strchr("\\`*_<>[]|", *p))
            buf_putc(out, '\\');
        buf_putc(out, *p);
    }
}

/* Text as inline code, fenced with more backticks than it holds in a row. */
static void put_code(buf *out, const char *text)
{
    size_t longest = 0, run = 0;
    for (const char *p = text; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    for (size_t i = 0; i <= longest; i++)
        buf_putc(out, '`');
    int pad = text[0] == '`' || (*text && text[strlen(text) - 1] == '`');
    buf_printf(out, "%s%s%s", pad ? " " : "", text, pad ? " " : "");
    for (size_t i = 0; i <= longest; i++)
        buf_putc(out, '`');
}

static void put_type(buf *out, const param_spec *spec)
{
    buf_puts(out, params_type_name(spec->type));
    if (spec->type == PARAM_ENUM) {
        buf_puts(out, ": ");
        for (size_t i = 0; i < spec->value_count; i++) {
            buf_puts(out, i ? ", " : "");
            put_code(out, spec->values[i]);
        }
    }
    if (spec->secret)
        buf_puts(out, " (secret: never stored)");
}

static void render_params(buf *out, const runbook *rb, const cJSON *examples)
{
    buf_puts(out, "## Parameters\n\n");
    if (rb->param_count == 0) {
        buf_puts(out, "This runbook takes no parameters.\n\n");
        return;
    }
    buf_puts(out, "Given with `-p key=value`, or `DRCTL_PARAM_<KEY>` in the environment.\n\n"
                  "| param | type | default | required | environment | description |\n"
                  "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < rb->param_count; i++) {
        const param_spec *spec = &rb->params[i];
        buf_puts(out, "| ");
        put_code(out, spec->name);
        buf_puts(out, " | ");
        put_type(out, spec);
        buf_puts(out, " | ");
        if (spec->default_text)
            put_code(out, spec->default_text);
        buf_printf(out, " | %s | ", spec->required ? "yes" : "no");
        if (spec->env)
            put_code(out, spec->env);
        if (spec->config) {
            buf_puts(out, spec->env ? ", then config " : "config ");
            put_code(out, spec->config);
        }
        buf_puts(out, " | ");
        put_escaped(out, spec->doc ? spec->doc : "", 1);
        buf_puts(out, " |\n");
    }
    buf_puts(out, "\n");
    int first = 1;
    for (size_t i = 0; i < rb->param_count; i++) {
        const param_spec *spec = &rb->params[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(examples, spec->name);
        if (spec->default_text || !v)
            continue;
        if (first)
            buf_puts(out, "The plans below are computed with these example values for the required "
                          "parameters:");
        char *text = cJSON_IsString(v) ? xstrdup(v->valuestring) : cJSON_PrintUnformatted(v);
        buf_puts(out, first ? " " : ", ");
        put_code(out, spec->name);
        buf_puts(out, " = ");
        put_code(out, text);
        buf_puts(out, " (example value)");
        free(text);
        first = 0;
    }
    if (!first)
        buf_puts(out, ".\n\n");
}

/* Why a plan could not be shown, in words for the page: most often the
 * plan reads the Neon API, which an offline rendering has no access to. */
static void put_plan_failure(buf *out, const char *error)
{
    if (strstr(error, "no target"))
        buf_puts(out, "(the plan needs a live target: run `drctl plan` with the real params to see it)");
    else {
        buf_puts(out, "(the plan could not be computed offline: ");
        put_escaped(out, error, 1);
        buf_puts(out, ")");
    }
}

static void render_flags(buf *out, const step_spec *spec)
{
    if (spec->destructive)
        buf_puts(out, "- **Destructive**: asks for a typed confirmation before it runs "
                      "(or `--approve` with the step's name).\n");
    if (spec->destructive && spec->approvers.count > 1) {
        buf_printf(out, "- Four eyes: %d operators approve it (`drctl approve`)", spec->approvers.count);
        for (size_t i = 0; i < spec->approvers.from.count; i++) {
            buf_puts(out, i ? ", " : ", from ");
            put_code(out, spec->approvers.from.items[i]);
        }
        buf_puts(out, "; the team's `approvals` setting may ask more.\n");
    }
    if (spec->idempotent)
        buf_puts(out, "- Idempotent: safe to run again after an interruption.\n");
    if (spec->always)
        buf_puts(out, "- Always: runs even after a failure, and on `drctl abort` (cleanup).\n");
    if (spec->timeout > 0)
        buf_printf(out, "- Timeout: %g s.\n", spec->timeout);
    if (spec->retry_attempts > 1)
        buf_printf(out, "- Retried: %d attempts in all, %g s before the second, doubling after.\n",
                   spec->retry_attempts, spec->retry_backoff);
}

/* The confirmation as the operator will read it; the values it takes
 * from the steps before it are shown as placeholders (<step.field>). */
static void render_confirmation(buf *out, const cJSON *confirm)
{
    buf_puts(out, "- Confirmation (what will be lost): ");
    if (!confirm) {
        buf_puts(out, "(it depends on what the steps before it find, so it is computed at run time; "
                      "the plan above says what the step changes)\n");
        return;
    }
    const char *summary = json_text(confirm, "summary", "");
    put_escaped(out, summary, 1);
    buf_puts(out, "\n  To go on, the operator types ");
    put_code(out, json_text(confirm, "challenge", ""));
    buf_puts(out, ".");
    if (strstr(summary, "<") || strchr(json_text(confirm, "challenge", ""), '<'))
        buf_puts(out, " A value in angle brackets stands for what an earlier step finds, or a param, at run time.");
    buf_puts(out, "\n");
}

static void render_step(buf *out, int n, const step_spec *spec, const cJSON *planned)
{
    buf_printf(out, "### %d. ", n);
    put_escaped(out, spec->name, 1);
    buf_puts(out, spec->destructive ? " (destructive)\n\n" : "\n\n");
    render_flags(out, spec);
    buf_puts(out, "- Plan: ");
    const char *error = json_text(planned, "plan_error", NULL);
    if (error)
        put_plan_failure(out, error);
    else if (planned)
        put_escaped(out, json_text(planned, "plan", ""), 1);
    else
        buf_puts(out, "(the plan could not be computed offline)");
    buf_puts(out, "\n");
    if (spec->destructive)
        render_confirmation(out, cJSON_GetObjectItemCaseSensitive(planned, "confirm"));
    buf_puts(out, "\n");
}

static void render_steps(buf *out, const runbook *rb, const cJSON *plan)
{
    buf_puts(out, "## Steps\n\n");
    size_t destructive = 0;
    for (size_t i = 0; i < rb->step_count; i++)
        destructive += rb->steps[i].destructive != 0;
    buf_printf(out, "%zu step%s, in this order; %zu destructive.\n\n", rb->step_count,
               rb->step_count == 1 ? "" : "s", destructive);
    const cJSON *planned = cJSON_GetObjectItemCaseSensitive(plan, "steps");
    for (size_t i = 0; i < rb->step_count; i++)
        render_step(out, (int)i + 1, &rb->steps[i], cJSON_GetArrayItem(planned, (int)i));
}

char *docs_render_runbook(runbook *rb, dr_host *host, const char *file_name)
{
    cJSON *examples = docs_example_params(rb);
    cJSON *plan = NULL;
    runner_plan(&plan, rb, examples, host, NULL); /* a failed plan is shown on the page */
    buf out = BUF_INIT;
    char *marker = docs_marker_line(rb->name, rb->version, rb->blob_id);
    buf_printf(&out, "%s\n\n# ", marker);
    free(marker);
    put_escaped(&out, rb->name, 1);
    buf_puts(&out, "\n\n");
    put_escaped(&out, rb->summary, 0);
    buf_puts(&out, "\n\nVersion ");
    put_code(&out, rb->version);
    buf_puts(&out, ". Generated by `drctl docs` from ");
    put_code(&out, file_name);
    buf_printf(&out, " (blob `%s`): regenerate it when the runbook changes.\n\n", rb->blob_id);
    if (rb->description && *rb->description) {
        buf_puts(&out, "## Description\n\n");
        put_escaped(&out, rb->description, 0);
        buf_puts(&out, "\n\n");
    }
    render_params(&out, rb, examples);
    render_steps(&out, rb, plan);
    buf_puts(&out, "## Running it\n\n```\ndrctl plan ");
    buf_puts(&out, rb->name);
    buf_puts(&out, " -p key=value ...   # what a run would do, with the real values\ndrctl run ");
    buf_puts(&out, rb->name);
    buf_puts(&out, " -p key=value ...\n```\n");
    cJSON_Delete(plan);
    cJSON_Delete(examples);
    err_clear();
    return buf_detach(&out);
}

char *docs_render_index(const docs_entry *entries, size_t count)
{
    buf out = BUF_INIT;
    buf_puts(&out, "<!-- drctl-docs index -->\n\n# Runbooks\n\n"
                   "The recovery procedures, one page each, generated by `drctl docs --out DIR` from the "
                   "runbooks themselves.\n\n| runbook | version | summary | blob |\n|---|---|---|---|\n");
    for (size_t i = 0; i < count; i++) {
        buf_puts(&out, "| [");
        put_escaped(&out, entries[i].name, 1);
        buf_printf(&out, "](%s) | ", entries[i].page);
        put_code(&out, entries[i].version);
        buf_puts(&out, " | ");
        put_escaped(&out, entries[i].summary, 1);
        buf_printf(&out, " | `%.12s` |\n", entries[i].blob_id);
    }
    return buf_detach(&out);
}
