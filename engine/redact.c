#include "redact.h"

#include "buf.h"

#include <stdlib.h>
#include <string.h>

static char **secrets;
static size_t secret_count;

void redact_add_secret(const char *secret)
{
    if (!secret || !*secret)
        return;
    for (size_t i = 0; i < secret_count; i++)
        if (strcmp(secrets[i], secret) == 0)
            return;
    secrets = xrealloc(secrets, (secret_count + 1) * sizeof *secrets);
    secrets[secret_count++] = xstrdup(secret);
}

void redact_add_environment_secrets(void)
{
    static const char *const names[] = {
        "NEON_API_KEY", "NEON_LOCAL_API_KEY", "DRCTL_GIT_TOKEN", "PGPASSWORD",
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", NULL,
    };
    for (const char *const *name = names; *name; name++)
        redact_add_secret(getenv(*name));
}

void redact_clear(void)
{
    for (size_t i = 0; i < secret_count; i++)
        free(secrets[i]);
    free(secrets);
    secrets = NULL;
    secret_count = 0;
}

/* The longest registered secret starting at p, or 0. Longest first, so a
 * secret that contains a shorter one is removed whole. */
static size_t secret_at(const char *p)
{
    size_t best = 0;
    for (size_t i = 0; i < secret_count; i++) {
        size_t len = strlen(secrets[i]);
        if (len > best && strncmp(p, secrets[i], len) == 0)
            best = len;
    }
    return best;
}

/* In "scheme://user:password@host", the password spans from after the
 * colon to the last '@' before the host part ends. Returns its length when
 * p points just after "user:" of such a URI, else 0. */
static size_t uri_password_at(const char *start, const char *p)
{
    /* Walk back over the user name to "://". */
    const char *q = p - 1; /* the ':' */
    const char *user_end = q;
    while (q > start && q[-1] != '/' && q[-1] != ' ' && q[-1] != '@' && q[-1] != ':')
        q--;
    if (q - start < 3 || strncmp(q - 3, "://", 3) != 0 || q == user_end)
        return 0;
    const char *at = NULL;
    for (const char *r = p; *r && *r != '/' && *r != ' ' && *r != '\n' && *r != '"' && *r != '?'; r++)
        if (*r == '@')
            at = r;
    return at && at > p ? (size_t)(at - p) : 0;
}

/* "password=secret" in keyword/value connection strings. */
static size_t keyword_password_at(const char *start, const char *p)
{
    static const char key[] = "password=";
    size_t klen = sizeof key - 1;
    if ((size_t)(p - start) < klen || strncmp(p - klen, key, klen) != 0)
        return 0;
    if (p - klen > start && p[-klen - 1] != ' ' && p[-klen - 1] != '?' && p[-klen - 1] != '&')
        return 0;
    size_t n = 0;
    while (p[n] && p[n] != ' ' && p[n] != '&' && p[n] != '\n' && p[n] != '"')
        n++;
    return n;
}

char *redact_text(const char *text)
{
    buf out = BUF_INIT;
    const char *p = text;
    while (*p) {
        size_t n = secret_at(p);
        if (!n && p > text && p[-1] == ':')
            n = uri_password_at(text, p);
        if (!n && p > text && p[-1] == '=')
            n = keyword_password_at(text, p);
        if (n) {
            buf_puts(&out, REDACTED);
            p += n;
        } else {
            buf_putc(&out, *p++);
        }
    }
    return buf_detach(&out);
}

static int needs_redaction(const char *text)
{
    char *clean = redact_text(text);
    int differs = strcmp(clean, text) != 0;
    free(clean);
    return differs;
}

void redact_json(cJSON *node)
{
    for (; node; node = node->next) {
        if (node->string && needs_redaction(node->string)) {
            char *clean = redact_text(node->string);
            if (!(node->type & cJSON_StringIsConst))
                free(node->string);
            node->string = clean;
            node->type &= ~cJSON_StringIsConst;
        }
        if (cJSON_IsString(node) && node->valuestring && needs_redaction(node->valuestring)) {
            char *clean = redact_text(node->valuestring);
            cJSON_SetValuestring(node, clean);
            free(clean);
        }
        if (node->child)
            redact_json(node->child);
    }
}
