/* redact: the one place secrets are removed before anything is written.
 *
 * Every sink (terminal, journal, state, run.json, commit messages) passes
 * its text or JSON through here. Registered secrets (secret params, API
 * keys) are replaced by "<redacted>", and so are passwords inside
 * PostgreSQL connection strings, registered or not. */
#ifndef DRCTL_REDACT_H
#define DRCTL_REDACT_H

#include <cjson/cJSON.h>

#define REDACTED "<redacted>"

/* Registers a secret value for the life of the process (copied). Empty
 * values are ignored. */
void redact_add_secret(const char *secret);

/* Registers the secrets drctl may read from its environment: NEON_API_KEY,
 * NEON_LOCAL_API_KEY, DRCTL_GIT_TOKEN, PGPASSWORD, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN. */
void redact_add_environment_secrets(void);

/* Forgets every registered secret (tests). */
void redact_clear(void);

/* A new string with secrets and URI passwords replaced. */
char *redact_text(const char *text);

/* Replaces secrets inside every string value (and key) of a tree, in place;
 * the structure of the JSON is never touched. */
void redact_json(cJSON *node);

#endif
