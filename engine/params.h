/* params: a runbook's typed parameters, from `-p key=value` to values.
 *
 * Everything is validated before anything runs: an unknown key, a missing
 * required param or a value of the wrong form is DR_EUSAGE with a message
 * naming the param and the form it expects. Values come out as a cJSON
 * object: string/enum as strings, int as numbers, bool as booleans,
 * timestamps normalised to RFC 3339 UTC strings, durations as seconds,
 * paths as given (a local path or an s3:// URL, never empty). */
#ifndef DRCTL_PARAMS_H
#define DRCTL_PARAMS_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef enum {
    PARAM_STRING,
    PARAM_INT,
    PARAM_BOOL,
    PARAM_ENUM,
    PARAM_TIMESTAMP,
    PARAM_DURATION,
    PARAM_PATH       /* a local file or folder, or an s3:// URL: the runbook's file access is confined to these */
} param_type;

typedef struct param_spec {
    char *name;
    param_type type;
    int required;
    int secret;
    char *doc;            /* may be NULL */
    char *default_text;   /* the default in -p form, or NULL */
    char *env;            /* an environment variable that gives the value of a new run, or NULL */
    char *config;         /* a setting of the team's config.json that gives it when no variable does, or NULL */
    char **values;        /* enum values */
    size_t value_count;
} param_spec;

/* "string", "int", ... ; NULL for an unknown name. */
const char *params_type_name(param_type type);
int params_type_from_name(param_type *out, const char *name);

/* What a value of this param must look like, for messages and --help. */
char *params_expected_form(const param_spec *spec);

/* Parses one textual value. */
int params_parse_value(cJSON **out, const param_spec *spec, const char *text);

/* Builds the params object from `key=value` assignments, the environment
 * (DRCTL_PARAM_<KEY>, for values better kept off the command line) and the
 * defaults. `fixed` (may be NULL) holds values recorded by an earlier run:
 * they are kept, and assignments may only supply its redacted secrets. */
int params_resolve(cJSON **out, const param_spec *specs, size_t count, char *const *assignments,
                   size_t assignment_count, const cJSON *fixed);

/* What params_resolve_from reads. settings (may be NULL) holds the team's
 * settings that are set, as text by key ({"throwaway_ttl": "2h"}): a param
 * whose spec names one of them in `config` takes it when neither -p nor an
 * environment variable gives a value, before its default. A resumed run
 * (fixed) keeps its values and never reads settings. */
typedef struct params_input {
    char *const *assignments;
    size_t assignment_count;
    const cJSON *fixed;
    const cJSON *settings;
} params_input;

/* params_resolve, and where each value came from: *sources (when sources
 * is not NULL; NULL on error) gets an object of param name -> "-p",
 * "DRCTL_PARAM_<NAME>", the env variable's name, "config KEY", "default"
 * or "run" (kept from the run's start). A param without a value has none. */
int params_resolve_from(cJSON **out, cJSON **sources, const param_spec *specs, size_t count,
                        const params_input *in);

/* Whether a spec reads a setting of config.json (its `config` field). */
int params_use_config(const param_spec *specs, size_t count);

/* Registers every secret value with the redaction layer, whatever its type,
 * in the text forms it takes in output (a secret int 424242 as "424242").
 * A value too short to be redacted safely is not registered, and a warning
 * names the param (never the value). */
void params_register_secrets(const param_spec *specs, size_t count, const cJSON *values);

/* A copy of values with secrets replaced by "<redacted>". */
cJSON *params_redacted_copy(const param_spec *specs, size_t count, const cJSON *values);

void params_spec_dispose(param_spec *spec);

#endif
