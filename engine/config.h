/* config: the team's settings, one versioned file in the audit repository
 * (the audit trail contract, docs/design.md).
 *
 * The file is config.json at the repository's root: a JSON object whose
 * keys are the settings' names (notify.webhook, contact, check.*,
 * throwaway_ttl) and whose values are as `drctl config set` takes them
 * (durations as text, "26h"; notify.webhook a list of strings). A key that
 * is absent has its default. Everything is validated on load and before a
 * change: an unknown key, a value of the wrong form, a control character,
 * a webhook URL that would carry a secret (userinfo or a query string: it
 * is given as env:NAME instead) is DR_EUSAGE naming the file, the key, the
 * value and what is expected. No secret is ever written to the file. */
#ifndef DRCTL_CONFIG_H
#define DRCTL_CONFIG_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define CONFIG_FILE "config.json"

typedef enum { CONFIG_TEXT, CONFIG_DURATION, CONFIG_URL_LIST, CONFIG_RULE_LIST } config_kind;

/* One known setting. */
typedef struct config_key {
    const char *name;
    config_kind kind;
    const char *default_text;   /* NULL: none */
    const char *doc;
} config_key;

/* The known settings, in the order they are shown; *count gets how many. */
const config_key *config_keys(size_t *count);
const config_key *config_find_key(const char *name);


typedef struct config config;

/* Reads AUDIT_DIR/config.json; a missing file is every default. */
int config_load(config **out, const char *audit_dir);

/* The team's approvals policy in audit_dir's config.json, checked alone:
 * a run with a destructive step does not start on a policy it cannot
 * read. DR_EUSAGE naming the file, the line and the fix. */
int config_check_policy(const char *audit_dir);
/* Parses a file's text (file names it in messages). */
int config_parse(config **out, const char *text, const char *file);
void config_free(config *c);

/* Checks one value for key, as set would store it. */
int config_validate(const char *key, const char *value);

/* Changes a setting in memory, validated first. set on notify.webhook
 * adds the URL (once); unset with value NULL removes the key (all its
 * URLs), with a value removes that URL. *changed says whether anything
 * differs. */
int config_set(config *c, const char *key, const char *value, int *changed);
int config_unset(config *c, const char *key, const char *value, int *changed);

/* The file's text: the set keys, in config_keys order; caller frees. */
char *config_to_text(const config *c);

/* 1 when key is set in the file (not its default). */
int config_is_set(const config *c, const char *key);
/* A text or duration setting as given (or its default), NULL when none. */
const char *config_text(const config *c, const char *key);
/* A duration setting in seconds (its default when unset). */
double config_seconds(const config *c, const char *key);
/* The configured webhooks, as written (env:NAME not resolved). */
/* Whether a key holds a list (drctl config add / remove). */
int config_is_list(const config_key *k);
/* The entries of a list setting (0 and NULL when unset). */
size_t config_list_count(const config *c, const char *key);
const char *config_list_item(const config *c, const char *key, size_t i);

size_t config_webhook_count(const config *c);
const char *config_webhook(const config *c, size_t i);

/* A webhook value without its "slack:" prefix (env:NAME or a URL), and
 * whether it has one: Slack's incoming-webhook body is sent to it. */
const char *config_webhook_address(const char *value);
int config_webhook_is_slack(const char *value);
/* A webhook value as used (a "slack:" prefix dropped): env:NAME read from the environment (NULL and
 * DR_EUSAGE set when unset or not a valid URL), a literal URL copied.
 * Caller frees. */
char *config_resolve_url(const char *value);

#endif
