#include "params.h"

#include "buf.h"
#include "err.h"
#include "localtime.h"
#include "redact.h"
#include "timefmt.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = { "string", "int", "bool", "enum", "timestamp", "duration", "path" };

const char *params_type_name(param_type type)
{
    return type_names[type];
}

int params_type_from_name(param_type *out, const char *name)
{
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++) {
        if (strcmp(type_names[i], name) == 0) {
            *out = (param_type)i;
            return 0;
        }
    }
    return -1;
}

char *params_expected_form(const param_spec *spec)
{
    switch (spec->type) {
    case PARAM_INT:
        return xstrdup("a whole number, like 30");
    case PARAM_BOOL:
        return xstrdup("true or false");
    case PARAM_TIMESTAMP:
        return xstrdup("a time like 2026-01-11T14:30:00Z or 2026-01-11 14:30:00+01:00");
    case PARAM_DURATION:
        return xstrdup("a duration like 90s, 15m, 2h or 7d");
    case PARAM_ENUM: {
        buf b = BUF_INIT;
        buf_puts(&b, "one of ");
        for (size_t i = 0; i < spec->value_count; i++)
            buf_printf(&b, "%s%s", i ? ", " : "", spec->values[i]);
        return buf_detach(&b);
    }
    case PARAM_PATH:
        return xstrdup("a local file or folder, or an s3://bucket/prefix URL");
    case PARAM_STRING:
    default:
        return xstrdup("text");
    }
}

static int bad_value(const param_spec *spec, const char *text, const char *detail)
{
    char *form = params_expected_form(spec);
    const char *shown = spec->secret ? REDACTED : text;
    if (detail)
        err_set(DR_EUSAGE, "param '%s': '%s' is not valid: %s", spec->name, shown, detail);
    else
        err_set(DR_EUSAGE, "param '%s': '%s' is not valid: expected %s", spec->name, shown, form);
    free(form);
    return DR_EUSAGE;
}

static int parse_int(cJSON **out, const param_spec *spec, const char *text)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || errno || isspace((unsigned char)*text) || v > 9007199254740992LL ||
        v < -9007199254740992LL)
        return bad_value(spec, text, NULL);
    *out = cJSON_CreateNumber((double)v);
    return 0;
}

static int parse_bool(cJSON **out, const param_spec *spec, const char *text)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = cJSON_CreateTrue();
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = cJSON_CreateFalse();
            return 0;
        }
    }
    return bad_value(spec, text, NULL);
}

/* Puts the param's name in front of a parser's message. A secret's value
 * never reaches a message: the parser quoted it, so it is replaced. */
static int prefix_param_error(const param_spec *spec)
{
    char *why = spec->secret ? xstrdup("the value is not of the expected form") : xstrdup(err_last());
    err_set(DR_EUSAGE, "param '%s': %s", spec->name, why);
    free(why);
    return DR_EUSAGE;
}

int params_parse_value(cJSON **out, const param_spec *spec, const char *text)
{
    *out = NULL;
    switch (spec->type) {
    case PARAM_STRING:
        *out = cJSON_CreateString(text);
        return 0;
    case PARAM_PATH:
        if (!*text || strlen(text) != strcspn(text, "\n\r"))
            return bad_value(spec, text, NULL);
        *out = cJSON_CreateString(text);
        return 0;
    case PARAM_INT:
        return parse_int(out, spec, text);
    case PARAM_BOOL:
        return parse_bool(out, spec, text);
    case PARAM_ENUM:
        for (size_t i = 0; i < spec->value_count; i++) {
            if (strcmp(spec->values[i], text) == 0) {
                *out = cJSON_CreateString(text);
                return 0;
            }
        }
        return bad_value(spec, text, NULL);
    case PARAM_TIMESTAMP: {
        double epoch;
        if (localtime_parse(&epoch, text) != 0)
            return prefix_param_error(spec);
        char normal[48];
        timefmt_format_utc(normal, sizeof normal, epoch);
        *out = cJSON_CreateString(normal);
        return 0;
    }
    case PARAM_DURATION: {
        double seconds;
        if (timefmt_parse_duration(&seconds, text) != 0)
            return prefix_param_error(spec);
        *out = cJSON_CreateNumber(seconds);
        return 0;
    }
    }
    return err_set(DR_EUSAGE, "param '%s': unknown type", spec->name);
}

static const param_spec *find_spec(const param_spec *specs, size_t count, const char *name, size_t len)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(specs[i].name) == len && strncmp(specs[i].name, name, len) == 0)
            return &specs[i];
    return NULL;
}

static int unknown_param(const param_spec *specs, size_t count, const char *name, size_t len)
{
    buf known = BUF_INIT;
    for (size_t i = 0; i < count; i++)
        buf_printf(&known, "%s%s", i ? ", " : "", specs[i].name);
    err_set(DR_EUSAGE, "unknown param '%.*s'; this runbook takes: %s", (int)len, name,
            count ? buf_cstr(&known) : "no params");
    buf_dispose(&known);
    return DR_EUSAGE;
}

/* DRCTL_PARAM_<NAME>, with the name upper-cased and '-' as '_': the one
 * spelling that is read, so messages must name exactly this. */
static void env_name(const char *name, char *key, size_t size)
{
    static const char prefix[] = "DRCTL_PARAM_";
    size_t n = 0;
    for (const char *p = prefix; *p && n + 1 < size; p++)
        key[n++] = *p;
    for (const char *p = name; *p && n + 1 < size; p++)
        key[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    key[n] = '\0';
}

static int is_redacted_secret(const param_spec *spec, const cJSON *fixed)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(fixed, spec->name);
    return spec->secret && cJSON_IsString(v) && strcmp(v->valuestring, REDACTED) == 0;
}

/* Records where a param's value came from, when the caller asked. */
static void note_source(cJSON *sources, const char *name, const char *source)
{
    if (sources)
        cJSON_AddStringToObject(sources, name, source);
}

static int apply_assignments(cJSON *values, cJSON *sources, const param_spec *specs, size_t count,
                             const params_input *in)
{
    for (size_t i = 0; i < in->assignment_count; i++) {
        const char *a = in->assignments[i];
        const char *eq = strchr(a, '=');
        if (!eq || eq == a)
            return err_set(DR_EUSAGE, "'-p %s' must be written -p key=value", a);
        const param_spec *spec = find_spec(specs, count, a, (size_t)(eq - a));
        if (!spec)
            return unknown_param(specs, count, a, (size_t)(eq - a));
        if (in->fixed && !is_redacted_secret(spec, in->fixed))
            return err_set(DR_EUSAGE, "param '%s' was fixed when the run started; a resumed run "
                           "keeps its params (only secret params are given again)", spec->name);
        if (cJSON_GetObjectItemCaseSensitive(values, spec->name))
            return err_set(DR_EUSAGE, "param '%s' is given twice", spec->name);
        cJSON *value;
        int rc = params_parse_value(&value, spec, eq + 1);
        if (rc)
            return rc;
        cJSON_AddItemToObject(values, spec->name, value);
        note_source(sources, spec->name, "-p");
    }
    return 0;
}

/* The team's setting the spec reads, when it is set; NULL otherwise. */
static const char *setting_value(const param_spec *spec, const cJSON *settings)
{
    if (!spec->config)
        return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(settings, spec->config);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int missing_required(const param_spec *spec)
{
    char *form = params_expected_form(spec);
    char *doc = spec->doc ? xasprintf(" (%s)", spec->doc) : xstrdup("");
    err_set(DR_EUSAGE, "param '%s' is required%s: give -p %s=<%s>%s%s", spec->name, doc,
            spec->name, form, spec->env ? " or set " : "", spec->env ? spec->env : "");
    free(doc);
    free(form);
    return DR_EUSAGE;
}

/* A value from the team's config.json that does not fit the param says
 * where it came from: the operator fixes the setting, not a -p. */
static int parse_setting(cJSON **value, const param_spec *spec, const char *text)
{
    int rc = params_parse_value(value, spec, text);
    if (rc) {
        char *why = xstrdup(err_last());
        err_set(rc, "%s (from config.json %s; drctl config set %s VALUE changes it)", why, spec->config,
                spec->config);
        free(why);
    }
    return rc;
}

/* A value a resumed run keeps, or the message for a secret it must be
 * given again; 1 when the value was kept. */
static int keep_fixed(cJSON *values, cJSON *sources, const param_spec *spec, const cJSON *fixed, int *rc)
{
    const cJSON *kept = cJSON_GetObjectItemCaseSensitive(fixed, spec->name);
    if (kept && !is_redacted_secret(spec, fixed)) {
        cJSON_AddItemToObject(values, spec->name, cJSON_Duplicate(kept, 1));
        note_source(sources, spec->name, "run");
        return 1;
    }
    if (kept && spec->secret) {
        char key[160];
        env_name(spec->name, key, sizeof key);
        *rc = err_set(DR_EUSAGE, "param '%s' is secret and was not stored; give it again "
                      "with -p %s=... or %s", spec->name, spec->name, key);
        return 1;
    }
    return 0;
}

/* First found wins: DRCTL_PARAM_<NAME>, the run's own value (a resume),
 * the spec's env variable, the team's setting (config), the default. */
static int fill_missing(cJSON *values, cJSON *sources, const param_spec *spec, const params_input *in)
{
    const cJSON *fixed = in->fixed;
    char key[160];
    env_name(spec->name, key, sizeof key);
    const char *from_env = getenv(key);
    const char *text = from_env && (!fixed || is_redacted_secret(spec, fixed)) ? from_env : NULL;
    const char *source = key;
    int rc = 0;
    if (!text && fixed && keep_fixed(values, sources, spec, fixed, &rc))
        return rc;
    if (!text && !fixed && spec->env && getenv(spec->env) && *getenv(spec->env)) {
        text = getenv(spec->env); /* e.g. NEON_PROJECT_ID, as the Neon tools read it */
        source = spec->env;
    }
    char *config_source = NULL;
    if (!text && !fixed && (text = setting_value(spec, in->settings)) != NULL)
        source = config_source = xasprintf("config %s", spec->config);
    if (!text) {
        text = spec->default_text;
        source = "default";
    }
    if (!text) {
        free(config_source);
        return spec->required ? missing_required(spec) : 0;
    }
    cJSON *value;
    rc = config_source ? parse_setting(&value, spec, text) : params_parse_value(&value, spec, text);
    if (rc == 0) {
        cJSON_AddItemToObject(values, spec->name, value);
        note_source(sources, spec->name, source);
    }
    free(config_source);
    return rc;
}

int params_resolve_from(cJSON **out, cJSON **sources, const param_spec *specs, size_t count,
                        const params_input *in)
{
    cJSON *values = cJSON_CreateObject();
    cJSON *found = sources ? cJSON_CreateObject() : NULL;
    int rc = apply_assignments(values, found, specs, count, in);
    for (size_t i = 0; rc == 0 && i < count; i++)
        if (!cJSON_GetObjectItemCaseSensitive(values, specs[i].name))
            rc = fill_missing(values, found, &specs[i], in);
    if (rc) {
        cJSON_Delete(values);
        cJSON_Delete(found);
        *out = NULL;
        if (sources)
            *sources = NULL;
        return rc;
    }
    /* In the runbook's (sorted) order, whatever order -p came in. */
    cJSON *ordered = cJSON_CreateObject();
    cJSON *ordered_sources = sources ? cJSON_CreateObject() : NULL;
    for (size_t i = 0; i < count; i++) {
        cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(values, specs[i].name);
        if (v)
            cJSON_AddItemToObject(ordered, specs[i].name, v);
        cJSON *from = found ? cJSON_DetachItemFromObjectCaseSensitive(found, specs[i].name) : NULL;
        if (from)
            cJSON_AddItemToObject(ordered_sources, specs[i].name, from);
    }
    cJSON_Delete(values);
    cJSON_Delete(found);
    *out = ordered;
    if (sources)
        *sources = ordered_sources;
    return 0;
}

int params_resolve(cJSON **out, const param_spec *specs, size_t count, char *const *assignments,
                   size_t assignment_count, const cJSON *fixed)
{
    params_input in = { assignments, assignment_count, fixed, NULL };
    return params_resolve_from(out, NULL, specs, count, &in);
}

int params_use_config(const param_spec *specs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (specs[i].config)
            return 1;
    return 0;
}

/* A number as each printer shows it: an integer as digits, anything else as
 * Lua's tostring (%.14g), cJSON (%.15g) and the round-trip form (%.17g). */
static void register_number(const char *name, double v)
{
    char text[64];
    /* The range first: casting a double past long long's is undefined. */
    if (v < 9.3e18 && v > -9.3e18 && v == (double)(long long)v) {
        snprintf(text, sizeof text, "%lld", (long long)v);
        redact_add_named_secret(name, text);
    }
    static const char *const forms[] = { "%.14g", "%.15g", "%.17g" };
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        snprintf(text, sizeof text, forms[i], v);
        if (strchr(text, '.') || strchr(text, 'e')) /* the digits alone are registered above */
            redact_add_named_secret(name, text);
    }
}

/* A secret of any type is registered in the text forms it takes in output:
 * a secret int given as -p pin=424242 is "424242" in a log or an output. */
void params_register_secrets(const param_spec *specs, size_t count, const cJSON *values)
{
    for (size_t i = 0; i < count; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(values, specs[i].name);
        if (!specs[i].secret || !v)
            continue;
        char *name = xasprintf("secret param '%s'", specs[i].name);
        if (cJSON_IsString(v))
            redact_add_named_secret(name, v->valuestring);
        else if (cJSON_IsNumber(v))
            register_number(name, v->valuedouble);
        else if (cJSON_IsBool(v))
            redact_add_named_secret(name, cJSON_IsTrue(v) ? "true" : "false");
        free(name);
    }
}

cJSON *params_redacted_copy(const param_spec *specs, size_t count, const cJSON *values)
{
    cJSON *copy = cJSON_Duplicate(values, 1);
    for (size_t i = 0; i < count; i++)
        if (specs[i].secret && cJSON_GetObjectItemCaseSensitive(copy, specs[i].name))
            cJSON_ReplaceItemInObjectCaseSensitive(copy, specs[i].name, cJSON_CreateString(REDACTED));
    return copy;
}

void params_spec_dispose(param_spec *spec)
{
    if (!spec)
        return;
    free(spec->name);
    free(spec->doc);
    free(spec->env);
    free(spec->config);
    free(spec->default_text);
    for (size_t i = 0; i < spec->value_count; i++)
        free(spec->values[i]);
    free(spec->values);
}
