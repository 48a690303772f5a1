#include "config.h"

#include "approvals.h"
#include "buf.h"
#include "err.h"
#include "proc.h"
#include "fsio.h"
#include "jsontext.h"
#include "timefmt.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define CONTACT_MAX 500
#define URL_MAX 2048

static const config_key keys[] = {
    { "notify.webhook", CONFIG_URL_LIST, NULL,
      "webhooks notified of failures (a list of http(s) URLs or env:NAME; slack: before either sends "
      "Slack's incoming-webhook body)" },
    { "notify.timeout", CONFIG_DURATION, "10s", "the most a notification may delay the command (every retry "
      "included; at most 60s)" },
    { "contact", CONFIG_TEXT, NULL, "Neon's emergency contact for the team" },
    { "check.backup_max_age", CONFIG_DURATION, "26h", "a backup younger than this passes" },
    { "check.history_min", CONFIG_DURATION, "7d", "the history window below which the check fails" },
    { "check.history_warn", CONFIG_DURATION, "30d", "the history window below which the check warns" },
    { "check.restore_test_max_age", CONFIG_DURATION, "31d", "a drill or verify-backup younger than this passes" },
    { "check.export_max_age", CONFIG_DURATION, "8d", "an export younger than this passes" },
    { "throwaway_ttl", CONFIG_DURATION, "1d", "the TTL of the branches a run makes for its own checks" },
    { "lock.ttl", CONFIG_DURATION, "1h", "how long a run's target lock on origin lasts unless renewed (a "
      "quarter of it apart, while the run's process lives): how long a killed holder blocks others" },
    { "approvals", CONFIG_RULE_LIST, NULL,
      "the team's four-eyes policy: rules like 'project=P branch=main count=2 from=a@x,b@x valid_for=1h' "
      "(also runbook=NAME step=NAME); each destructive step a rule matches needs at least count approvers" },
    { "docs.dir", CONFIG_TEXT, NULL, "where drctl docs --out writes the runbooks' pages (relative: to the "
      "audit directory), which the check reads" },
};

struct config {
    cJSON *values;   /* the file's object: only the keys that are set */
};

const config_key *config_keys(size_t *count)
{
    *count = sizeof keys / sizeof *keys;
    return keys;
}

const config_key *config_find_key(const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static char *known_keys(void)
{
    buf b = BUF_INIT;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", keys[i].name);
    return buf_detach(&b);
}

static int unknown_key(const char *where, const char *key)
{
    char *known = known_keys();
    err_set(DR_EUSAGE, "%s'%s' is not a setting (the settings: %s)", where, key, known);
    free(known);
    return DR_EUSAGE;
}

/* ---- validation ------------------------------------------------------------------ */

static int has_control_character(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    return 0;
}

/* What is wrong with a literal webhook URL, or NULL. A URL that could
 * carry a credential (user:password@, ?token=...) is refused whatever the
 * parameter's name: no secret is ever written to the file. */
static const char *url_problem(const char *url)
{
    const char *rest = !strncmp(url, "https://", 8) ? url + 8 : !strncmp(url, "http://", 7) ? url + 7 : NULL;
    if (!rest)
        return "an http:// or https:// URL, or env:NAME";
    size_t authority = strcspn(rest, "/?#");
    if (authority == 0)
        return "a URL with a host";
    if (memchr(rest, '@', authority))
        return "a URL without user or password (give a URL that holds a credential as env:NAME)";
    if (strchr(rest, '?'))
        return "a URL without a query string, which often holds a token (give it as env:NAME)";
    if (strstr(url, "://hooks.slack.com/") || strstr(url, "://hooks.slack.com:"))
        return "a Slack webhook given as env:NAME: its path is its token";
    if (strpbrk(url, " \"<>\\^`{|}"))
        return "a URL without spaces or quotes";
    if (strlen(url) > URL_MAX)
        return "a URL of at most 2048 characters";
    return NULL;
}

const char *config_webhook_address(const char *value)
{
    return strncmp(value, "slack:", 6) == 0 ? value + 6 : value;
}

int config_webhook_is_slack(const char *value)
{
    return strncmp(value, "slack:", 6) == 0;
}

static const char *webhook_problem(const char *address)
{
    if (strncmp(address, "env:", 4) != 0)
        return url_problem(address);
    if (!proc_valid_env_name(address + 4))
        return "env:NAME with NAME an environment variable's name (letters, digits, '_')";
    return NULL;
}

static int check_value(const char *where, const config_key *k, const char *value)
{
    const char *expected = NULL;
    double seconds;
    if (has_control_character(value))
        expected = "text without control characters (newlines, tabs, escapes)";
    else if (k->kind == CONFIG_DURATION && (timefmt_parse_duration(&seconds, value) != 0 || seconds <= 0))
        expected = "a duration such as 26h, 7d or 1h30m (units ms s m h d w)";
    else if (!strcmp(k->name, "notify.timeout") && (seconds < 1 || seconds > 60))
        expected = "a duration from 1s to 60s: a notification must never hold a recovery up for long";
    else if (k->kind == CONFIG_TEXT && (!*value || strlen(value) > CONTACT_MAX))
        expected = "a text of 1 to 500 characters";
    else if (k->kind == CONFIG_URL_LIST)
        expected = webhook_problem(config_webhook_address(value));
    else if (k->kind == CONFIG_RULE_LIST) {
        policy_rule rule;
        int rc = approvals_parse_rule(&rule, value);
        approvals_rule_dispose(&rule);
        if (rc)
            return err_set(DR_EUSAGE, "%s%s: '%s' is not valid: %s", where, k->name, value, err_last());
    }
    if (!expected)
        return 0;
    /* A value too long to quote whole would push the reason out of the
     * message: its start is enough to recognize it. */
    int quoted = strlen(value) > 200 ? 200 : (int)strlen(value);
    return err_set(DR_EUSAGE, "%s%s: '%.*s'%s is not valid: expected %s", where, k->name, quoted, value,
                   quoted < (int)strlen(value) ? "... (cut)" : "", expected);
}

int config_validate(const char *key, const char *value)
{
    const config_key *k = config_find_key(key);
    return k ? check_value("", k, value) : unknown_key("", key);
}

/* ---- the file --------------------------------------------------------------------- */

static int check_entry(const char *where, const cJSON *entry)
{
    const config_key *k = config_find_key(entry->string);
    if (!k)
        return unknown_key(where, entry->string);
    if (!config_is_list(k)) {
        if (!cJSON_IsString(entry))
            return err_set(DR_EUSAGE, "%s%s: expected a string (as drctl config set writes it)", where, k->name);
        return check_value(where, k, entry->valuestring);
    }
    if (!cJSON_IsArray(entry))
        return err_set(DR_EUSAGE, "%s%s: expected a list of %s", where, k->name,
                       k->kind == CONFIG_URL_LIST ? "URLs" : "approval rules");
    const cJSON *url;
    cJSON_ArrayForEach(url, entry) {
        if (!cJSON_IsString(url))
            return err_set(DR_EUSAGE, "%s%s: every entry of the list must be a string", where, k->name);
        int rc = check_value(where, k, url->valuestring);
        if (rc)
            return rc;
    }
    return 0;
}

int config_parse(config **out, const char *text, const char *file)
{
    *out = NULL;
    cJSON *values = cJSON_Parse(text);
    char *where = xasprintf("%s: ", file);
    int rc = 0;
    if (!cJSON_IsObject(values)) {
        rc = err_set(DR_EUSAGE, "%sis not a JSON object of settings; fix it (git log -p -- %s shows how it "
                     "changed) or set it again with drctl config set", where, CONFIG_FILE);
        goto cleanup;
    }
    const cJSON *entry;
    cJSON_ArrayForEach(entry, values) {
        if ((rc = check_entry(where, entry)) != 0)
            goto cleanup;
        if (cJSON_GetObjectItemCaseSensitive(values, entry->string) != entry) {
            rc = err_set(DR_EUSAGE, "%s%s is given twice", where, entry->string);
            goto cleanup;
        }
    }
    *out = xcalloc(1, sizeof **out);
    (*out)->values = values;
    values = NULL;
cleanup:
    cJSON_Delete(values);
    free(where);
    return rc;
}

int config_load(config **out, const char *audit_dir)
{
    char *file = xasprintf("%s/%s", audit_dir, CONFIG_FILE);
    char *text = NULL;
    int rc;
    if (!fsio_exists(file)) {
        *out = xcalloc(1, sizeof **out);
        (*out)->values = cJSON_CreateObject();
        rc = 0;
    } else if (fsio_read_file(&text, NULL, file) != 0) {
        *out = NULL;
        rc = err_set(DR_EUSAGE, "cannot read %s: %s", file, err_last());
    } else {
        rc = config_parse(out, text, file);
    }
    free(text);
    free(file);
    return rc;
}

/* The line of text where needle first appears (1 when it does not). */
static int line_of(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    int line = 1;
    for (const char *p = text; at && p < at; p++)
        line += *p == '\n';
    return line;
}

static int bad_policy_entry(const char *file, const char *text, const cJSON *entry)
{
    const char *value = cJSON_IsString(entry) ? entry->valuestring : "";
    char *quoted = xasprintf("\"%s\"", value);
    int line = line_of(text, quoted);
    free(quoted);
    policy_rule rule;
    int rc = cJSON_IsString(entry) ? approvals_parse_rule(&rule, value) : err_set(DR_EUSAGE, "it is not a string");
    if (cJSON_IsString(entry))
        approvals_rule_dispose(&rule);
    if (rc == 0)
        return 0;
    return err_set(DR_EUSAGE, "%s:%d: the approvals rule '%s' is not valid: %s. No destructive run starts on a "
                   "policy it cannot read; fix it with drctl config unset approvals '%s', then drctl config set "
                   "approvals 'count=2 ...'", file, line, value, err_last(), value);
}

int config_check_policy(const char *audit_dir)
{
    char *file = xasprintf("%s/%s", audit_dir, CONFIG_FILE), *text = NULL;
    int rc = 0;
    if (fsio_exists(file)) {
        cJSON *root = NULL;
        if (fsio_read_file(&text, NULL, file) != 0)
            rc = err_set(DR_EUSAGE, "cannot read %s (it holds the team's approvals policy): %s", file, err_last());
        else if (!(root = cJSON_Parse(text)))
            rc = err_set(DR_EUSAGE, "%s:%d: not JSON, so the team's approvals policy cannot be read; restore it "
                         "(git -C %s checkout HEAD -- %s) and change settings with drctl config", file,
                         line_of(text, cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : ""), audit_dir, CONFIG_FILE);
        const cJSON *entry;
        cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(root, "approvals"))
            if (rc == 0)
                rc = bad_policy_entry(file, text, entry);
        cJSON_Delete(root);
    }
    free(text);
    free(file);
    return rc;
}

void config_free(config *c)
{
    if (!c)
        return;
    cJSON_Delete(c->values);
    free(c);
}

/* ---- changes ---------------------------------------------------------------------- */

static int url_index(const cJSON *list, const char *value)
{
    int i = 0;
    const cJSON *url;
    cJSON_ArrayForEach(url, list) {
        if (cJSON_IsString(url) && strcmp(url->valuestring, value) == 0)
            return i;
        i++;
    }
    return -1;
}

int config_set(config *c, const char *key, const char *value, int *changed)
{
    *changed = 0;
    int rc = config_validate(key, value);
    if (rc)
        return rc;
    const config_key *k = config_find_key(key);
    cJSON *now = cJSON_GetObjectItemCaseSensitive(c->values, key);
    if (config_is_list(k)) {
        if (!now)
            now = cJSON_AddArrayToObject(c->values, key);
        if (url_index(now, value) < 0) {
            cJSON_AddItemToArray(now, cJSON_CreateString(value));
            *changed = 1;
        }
        return 0;
    }
    if (now && strcmp(now->valuestring, value) == 0)
        return 0;
    cJSON_DeleteItemFromObjectCaseSensitive(c->values, key);
    cJSON_AddStringToObject(c->values, key, value);
    *changed = 1;
    return 0;
}

int config_unset(config *c, const char *key, const char *value, int *changed)
{
    *changed = 0;
    const config_key *k = config_find_key(key);
    if (!k)
        return unknown_key("", key);
    if (value && !config_is_list(k))
        return err_set(DR_EUSAGE, "%s takes no value to unset (drctl config unset %s)", key, key);
    cJSON *now = cJSON_GetObjectItemCaseSensitive(c->values, key);
    if (!value) {
        *changed = now != NULL;
        cJSON_DeleteItemFromObjectCaseSensitive(c->values, key);
        return 0;
    }
    int i = now ? url_index(now, value) : -1;
    if (i < 0)
        return err_set(DR_EUSAGE, "%s has no entry '%s' (drctl config shows them)", key, value);
    cJSON_DeleteItemFromArray(now, i);
    if (cJSON_GetArraySize(now) == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(c->values, key);
    *changed = 1;
    return 0;
}

char *config_to_text(const config *c)
{
    cJSON *ordered = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->values, keys[i].name);
        if (v)
            cJSON_AddItemToObject(ordered, keys[i].name, cJSON_Duplicate(v, 1));
    }
    char *text = json_print_exact(ordered, 1);
    cJSON_Delete(ordered);
    char *with_newline = xasprintf("%s\n", text);
    free(text);
    return with_newline;
}

/* ---- reading settings ----------------------------------------------------------------- */

int config_is_set(const config *c, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(c->values, key) != NULL;
}

const char *config_text(const config *c, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->values, key);
    if (cJSON_IsString(v))
        return v->valuestring;
    const config_key *k = config_find_key(key);
    return k ? k->default_text : NULL;
}

double config_seconds(const config *c, const char *key)
{
    const char *text = config_text(c, key);
    double seconds = 0;
    if (text)
        timefmt_parse_duration(&seconds, text);
    return seconds;
}

int config_is_list(const config_key *k)
{
    return k->kind == CONFIG_URL_LIST || k->kind == CONFIG_RULE_LIST;
}

size_t config_list_count(const config *c, const char *key)
{
    return c ? (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c->values, key)) : 0;
}

const char *config_list_item(const config *c, const char *key, size_t i)
{
    const cJSON *v = c ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c->values, key), (int)i) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

size_t config_webhook_count(const config *c)
{
    return config_list_count(c, "notify.webhook");
}

const char *config_webhook(const config *c, size_t i)
{
    return config_list_item(c, "notify.webhook", i);
}

char *config_resolve_url(const char *value)
{
    value = config_webhook_address(value);
    if (strncmp(value, "env:", 4) != 0)
        return xstrdup(value);
    const char *url = getenv(value + 4);
    if (!url || !*url) {
        err_set(DR_EUSAGE, "notify.webhook %s: the environment variable %s is not set", value, value + 4);
        return NULL;
    }
    const char *rest = !strncmp(url, "https://", 8) ? url + 8 : !strncmp(url, "http://", 7) ? url + 7 : NULL;
    if (!rest || !*rest || has_control_character(url)) {
        err_set(DR_EUSAGE, "notify.webhook %s: the environment variable %s does not hold an http(s) URL",
                value, value + 4);
        return NULL;
    }
    return xstrdup(url);
}
