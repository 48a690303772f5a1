/* redact: the one place secrets leave the text before it is written.
 *
 * The first line of the input is registered as a secret (when it is long
 * enough to be), the rest is the text, and, when it is JSON, a record.
 * Beyond "no crash":
 * - the registered secret is nowhere in the redacted text, outside the
 *   markers themselves;
 * - when the whole text is a connection string libpq reads (URI or
 *   keyword/value), its password (as libpq decodes it, when long enough to
 *   be hidden) is nowhere in the redacted text;
 * - a text that was changed holds the marker (nothing is dropped silently);
 * - a record keeps its shape: redact_json changes no key, and no value's
 *   place; the secret is not in any free-text string value. */
#include "fuzz.h"

#include "redact.h"

#include <cjson/cJSON.h>
#include <libpq-fe.h>

static size_t characters(const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* The password libpq reads in text, when text is a connection string. */
static char *conninfo_password(const char *text)
{
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse(text, &error);
    PQfreemem(error);
    char *password = NULL;
    for (PQconninfoOption *o = options; o && o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && characters(o->val) >= REDACT_MIN_SECRET_LEN)
            password = strdup(o->val);
    PQconninfoFree(options);
    return password;
}

static void check_text(const char *secret, const char *text)
{
    char *clean = redact_text(text);
    if (secret)
        FUZZ_CHECK(!fuzz_leaks(clean, secret));
    char *password = conninfo_password(text);
    if (password)
        FUZZ_CHECK(!fuzz_leaks(clean, password));
    free(password);
    /* Redacting twice may hide more: a marker can complete what then reads
     * as another URI's user info (postgres://u:x<redacted>@h). That is no
     * leak, so stability is not asked for; the marker is. */
    if (strcmp(clean, text) != 0)
        FUZZ_CHECK(strstr(clean, REDACTED) != NULL);
    free(clean);
}

/* Same keys in the same places; numbers may have become the marker. */
static void check_same_shape(const cJSON *before, const cJSON *after)
{
    FUZZ_CHECK(!before->string == !after->string);
    if (before->string)
        FUZZ_CHECK(strcmp(before->string, after->string) == 0);
    if (cJSON_IsNumber(before))
        FUZZ_CHECK(cJSON_IsNumber(after) || cJSON_IsString(after));
    else
        FUZZ_CHECK((before->type & 0xFF) == (after->type & 0xFF));
    const cJSON *x = before->child, *y = after->child;
    for (; x && y; x = x->next, y = y->next)
        check_same_shape(x, y);
    FUZZ_CHECK(!x && !y);
}

static void check_record(const char *text)
{
    cJSON *record = cJSON_Parse(text);
    if (!record)
        return;
    cJSON *copy = cJSON_Duplicate(record, 1);
    redact_json(copy);
    check_same_shape(record, copy);
    cJSON_Delete(copy);
    cJSON_Delete(record);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *input = fuzz_cstring(data, size);
    char *text = fuzz_split(input, '\n');
    const char *secret = characters(input) >= REDACT_MIN_SECRET_LEN ? input : NULL;
    if (secret)
        redact_add_secret(secret);
    check_text(secret, text);
    check_record(text);
    redact_clear();
    free(input);
    return 0;
}
