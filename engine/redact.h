/* redact: the one place secrets are removed before anything is written.
 *
 * Every sink (terminal, journal, state, run.json, commit messages) passes
 * its text or JSON through here. Registered secrets (secret params, API
 * keys) are replaced by "<redacted>", and so are passwords inside
 * PostgreSQL connection strings, registered or not: libpq's own parser
 * (PQconninfoParse) reads each connection string found in the text, URI or
 * keyword/value, so every form it accepts is covered.
 *
 * What it cannot catch: a secret transformed before it is written (encoded,
 * split, reversed, hashed), and a value shorter than REDACT_MIN_SECRET_LEN
 * characters, which is refused with a warning (see below). */
#ifndef DRCTL_REDACT_H
#define DRCTL_REDACT_H

#include <cjson/cJSON.h>

#define REDACTED "<redacted>"

/* Shorter values are not registered: a text of a few characters also
 * occurs by chance in step names, event kinds, times and ids, and hiding it
 * there would corrupt the run's own records. */
#define REDACT_MIN_SECRET_LEN 6

/* Registers a secret value for the life of the process (copied). Empty
 * values are ignored; a value shorter than REDACT_MIN_SECRET_LEN characters
 * is not registered, and a warning (naming no value) says so once. */
void redact_add_secret(const char *secret);

/* The same, with where the value comes from ("secret param 'pin'",
 * "PGPASSWORD"), which the warning for a too short value names. */
void redact_add_named_secret(const char *name, const char *secret);

/* Registers the secrets drctl may read from its environment: NEON_API_KEY,
 * NEON_LOCAL_API_KEY, DRCTL_GIT_TOKEN, PGPASSWORD, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN. */
void redact_add_environment_secrets(void);

/* Forgets every registered secret, and which warnings were given (tests). */
void redact_clear(void);

/* A new string with secrets and connection-string passwords replaced. */
char *redact_text(const char *text);

/* Replaces secrets inside the string values of a record (a journal event,
 * run.json, a plan), in place. Object keys are never changed, and neither
 * are the fields the engine writes with its own vocabulary (event kinds,
 * step names, times, run ids, states, runbook names and blob ids...): the
 * engine reads them back, and a resume must see what the run did. Only
 * free text (errors, logs, outputs, params) is redacted. */
void redact_json(cJSON *node);

#endif
