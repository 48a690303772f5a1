/* params: a runbook's typed params, from -p key=value, the environment
 * and the team's settings.
 *
 * The first byte picks the param's type (every type: string, int, bool,
 * enum, timestamp, duration, path) and whether it is secret; the first
 * line is the value, the next lines an enum's values, and the same lines
 * go to params_resolve as -p assignments against one param of each type.
 *
 * Beyond "no crash": a value that parses has the form the header promises
 * (a timestamp is normalised RFC 3339 UTC that parses back to itself, a
 * duration a finite number of seconds, an int a whole number within 2^53
 * equal to what strtoll reads, an enum one of its values, a path not empty
 * and on one line); a refusal names the param and, for a secret, never
 * quotes the value; a resolved secret is "<redacted>" in the redacted
 * copy, and once registered none of the text forms it is printed in
 * survives redaction. */
#include "fuzz.h"

#include "err.h"
#include "params.h"
#include "redact.h"
#include "timefmt.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <unistd.h>

#define SPEC_COUNT 7
#define MAX_LINES 16

static char *enum_values[] = { "blue", "green", "red" };

/* One param of each type, named after it; the int and duration ones are
 * secret, so every kind of value is registered as a secret somewhere. */
static param_spec specs[SPEC_COUNT] = {
    { .name = "s", .type = PARAM_STRING, .secret = 1 },
    { .name = "i", .type = PARAM_INT, .secret = 1 },
    { .name = "b", .type = PARAM_BOOL },
    { .name = "e", .type = PARAM_ENUM, .values = enum_values, .value_count = 3 },
    { .name = "t", .type = PARAM_TIMESTAMP, .default_text = "2026-01-11 14:30:00+01:00" },
    { .name = "d", .type = PARAM_DURATION, .secret = 1, .config = "fuzz_ttl" },
    { .name = "p", .type = PARAM_PATH },
};

static void check_value(const param_spec *spec, const char *text, const cJSON *v)
{
    FUZZ_CHECK(v != NULL);
    switch (spec->type) {
    case PARAM_STRING:
        FUZZ_CHECK(cJSON_IsString(v) && strcmp(v->valuestring, text) == 0);
        break;
    case PARAM_PATH:
        FUZZ_CHECK(cJSON_IsString(v) && *v->valuestring && !strpbrk(v->valuestring, "\r\n"));
        break;
    case PARAM_INT:
        FUZZ_CHECK(cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
                   fabs(v->valuedouble) <= 9007199254740992.0);
        FUZZ_CHECK((double)strtoll(text, NULL, 10) == v->valuedouble);
        break;
    case PARAM_BOOL:
        FUZZ_CHECK(cJSON_IsBool(v));
        break;
    case PARAM_ENUM: {
        int found = 0;
        for (size_t i = 0; i < spec->value_count; i++)
            found |= cJSON_IsString(v) && strcmp(spec->values[i], v->valuestring) == 0;
        FUZZ_CHECK(found);
        break;
    }
    case PARAM_TIMESTAMP: {
        FUZZ_CHECK(cJSON_IsString(v));
        double epoch;
        FUZZ_CHECK(timefmt_parse_timestamp(&epoch, v->valuestring) == 0);
        char again[48];
        timefmt_format_utc(again, sizeof again, epoch);
        FUZZ_CHECK(strcmp(again, v->valuestring) == 0);
        break;
    }
    case PARAM_DURATION:
        FUZZ_CHECK(cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0);
        break;
    }
}

/* A refusal names the param; a secret's refusal never quotes its value. */
static void check_refusal(const param_spec *spec, const char *text)
{
    const char *why = err_last();
    FUZZ_CHECK(*why);
    FUZZ_CHECK(strstr(why, spec->name) != NULL);
    if (spec->secret && strlen(text) >= 4) {
        size_t n = strlen(text) + 3;
        char *quoted = malloc(n);
        snprintf(quoted, n, "'%s'", text);
        /* The message names the param as 'name': a value that is the
         * param's own name is found there, and is no leak. */
        char *named = malloc(strlen(spec->name) + 3);
        sprintf(named, "'%s'", spec->name);
        char *rest = strdup(why);
        for (char *at; (at = strstr(rest, named));)
            memmove(at, at + strlen(named), strlen(at + strlen(named)) + 1);
        FUZZ_CHECK(strstr(rest, quoted) == NULL);
        free(rest);
        free(named);
        free(quoted);
    }
}

static void fuzz_one_value(uint8_t selector, char *value, char **lines, size_t line_count)
{
    param_spec spec = { .name = "fuzzed", .type = (param_type)(selector % 7), .secret = (selector & 8) != 0 };
    spec.values = lines;
    spec.value_count = line_count;
    char *form = params_expected_form(&spec);
    FUZZ_CHECK(form && *form);
    free(form);
    cJSON *v = NULL;
    if (params_parse_value(&v, &spec, value) == 0)
        check_value(&spec, value, v);
    else
        check_refusal(&spec, value);
    cJSON_Delete(v);
}

/* The text forms a registered secret is printed in must all be hidden. */
static void check_secret_hidden(const cJSON *v)
{
    char text[64];
    if (cJSON_IsString(v))
        snprintf(text, sizeof text, "%.63s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(text, sizeof text, "%.17g", v->valuedouble);
    else
        return;
    size_t characters = 0; /* as redact counts them: UTF-8 continuation bytes do not */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        characters += (*p & 0xC0) != 0x80;
    if (characters < REDACT_MIN_SECRET_LEN || strlen(v->valuestring ? v->valuestring : text) >= 64)
        return;
    char *clean = redact_text(text);
    FUZZ_CHECK(!fuzz_leaks(clean, text));
    free(clean);
}

/* The warning for a secret too short to hide is one line of stderr an
 * input; libFuzzer's own reports must still get there. */
static void quiet(int on)
{
    static int saved = -1, null_fd = -1;
    if (null_fd < 0) {
        null_fd = open("/dev/null", O_WRONLY);
        saved = dup(2);
    }
    fflush(stderr);
    dup2(on ? null_fd : saved, 2);
}

static void fuzz_resolve(char **lines, size_t line_count, const char *setting)
{
    cJSON *settings = cJSON_CreateObject();
    cJSON_AddStringToObject(settings, "fuzz_ttl", setting);
    params_input in = { lines, line_count, NULL, settings };
    cJSON *values = NULL, *sources = NULL;
    if (params_resolve_from(&values, &sources, specs, SPEC_COUNT, &in) == 0) {
        FUZZ_CHECK(cJSON_IsObject(values) && cJSON_IsObject(sources));
        cJSON *copy = params_redacted_copy(specs, SPEC_COUNT, values);
        for (size_t i = 0; i < SPEC_COUNT; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(values, specs[i].name);
            const cJSON *shown = cJSON_GetObjectItemCaseSensitive(copy, specs[i].name);
            FUZZ_CHECK(!v == !cJSON_GetObjectItemCaseSensitive(sources, specs[i].name));
            if (v && specs[i].secret)
                FUZZ_CHECK(cJSON_IsString(shown) && strcmp(shown->valuestring, REDACTED) == 0);
        }
        quiet(1);
        params_register_secrets(specs, SPEC_COUNT, values);
        quiet(0);
        for (size_t i = 0; i < SPEC_COUNT; i++)
            if (specs[i].secret)
                check_secret_hidden(cJSON_GetObjectItemCaseSensitive(values, specs[i].name));
        cJSON_Delete(copy);
    } else {
        FUZZ_CHECK(values == NULL && sources == NULL && *err_last());
    }
    cJSON_Delete(values);
    cJSON_Delete(sources);
    cJSON_Delete(settings);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = fuzz_cstring(data + 1, size - 1);
    char *lines[MAX_LINES];
    size_t count = 0;
    char *value = text, *rest = fuzz_split(text, '\n');
    while (*rest && count < MAX_LINES) {
        lines[count++] = rest;
        rest = fuzz_split(rest, '\n');
    }
    fuzz_one_value(data[0], value, lines, count);
    fuzz_resolve(lines, count, value);
    redact_clear();
    free(text);
    return 0;
}
