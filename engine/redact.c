#include "redact.h"

#include "buf.h"
#include "term.h"

#include <ctype.h>
#include <fnmatch.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- registered secrets --------------------------------------------------- */

static str_list secrets;        /* values, and their JSON-escaped forms */
static str_list warned_names;   /* a too short value is warned about once a name */

/* Characters, not bytes: a UTF-8 continuation byte does not count. */
static size_t character_count(const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

static int long_enough(const char *value)
{
    return character_count(value) >= REDACT_MIN_SECRET_LEN;
}

/* The secret as it appears inside printed JSON ("a\"b" for a"b), so a
 * JSON document printed to the terminal is covered too. */
static char *json_escaped(const char *secret)
{
    cJSON *s = cJSON_CreateString(secret);
    char *quoted = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    size_t len = strlen(quoted);
    char *inner = xstrndup(quoted + 1, len >= 2 ? len - 2 : 0);
    cJSON_free(quoted);
    return inner;
}

static void warn_too_short(const char *name)
{
    const char *what = name ? name : "a password or key given to drctl";
    if (str_list_has(&warned_names, what))
        return;
    str_list_add_unique(&warned_names, what);
    term_warn("%s is too short to be redacted safely (fewer than %d characters), so it is not hidden "
              "from the terminal, the journal or git: hiding so short a text would also hide it inside "
              "step names, times and event kinds. Use a secret of at least %d characters",
              what, REDACT_MIN_SECRET_LEN, REDACT_MIN_SECRET_LEN);
}

void redact_add_named_secret(const char *name, const char *secret)
{
    if (!secret || !*secret)
        return;
    if (!long_enough(secret)) {
        warn_too_short(name);
        return;
    }
    str_list_add_unique(&secrets, secret);
    char *escaped = json_escaped(secret);
    str_list_add_unique(&secrets, escaped);
    free(escaped);
}

void redact_add_secret(const char *secret)
{
    redact_add_named_secret(NULL, secret);
}

void redact_add_environment_secrets(void)
{
    static const char *const names[] = {
        "NEON_API_KEY", "NEON_LOCAL_API_KEY", "DRCTL_GIT_TOKEN", "PGPASSWORD",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", NULL,
    };
    for (const char *const *name = names; *name; name++)
        redact_add_named_secret(*name, getenv(*name));
}

void redact_clear(void)
{
    str_list_dispose(&secrets);
    str_list_dispose(&warned_names);
}

/* ---- finding what to hide in a text ------------------------------------- */

/* One text being redacted: a flag per byte says it is hidden, and the
 * passwords read from its connection strings are hidden wherever else
 * they occur in it. */
typedef struct {
    const char *text;
    size_t len;
    unsigned char *hidden;
    str_list passwords;
} scan;

static void hide(scan *s, size_t from, size_t to)
{
    for (size_t i = from; i < to && i < s->len; i++)
        s->hidden[i] = 1;
}

static void hide_every(scan *s, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return;
    for (const char *p = strstr(s->text, needle); p; p = strstr(p + 1, needle))
        hide(s, (size_t)(p - s->text), (size_t)(p - s->text) + n);
}

static void note_password(scan *s, const char *value)
{
    if (value && long_enough(value))
        str_list_add_unique(&s->passwords, value);
}

/* Where a URI embedded in free text ends: at a space or a quote. */
static int ends_uri(char c)
{
    return c == '\0' || isspace((unsigned char)c) || c == '"' || c == '\'' || c == '`' || c == '<' ||
           c == '>';
}

/* Where a password inside a URI can end: libpq takes ' ` < > in one as
 * they are (postgresql://u:ab<cdefgh@h/db logs in with "ab<cdefgh"), so
 * only a space or a double quote (a JSON string's end: inside one, a
 * quote is escaped) stops it. Taking a little too much is the safe side. */
static int ends_uri_secret(char c)
{
    return c == '\0' || isspace((unsigned char)c) || c == '"';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* text[from, to) percent-decoded, or NULL when it is not valid. */
static char *percent_decoded(const char *text, size_t from, size_t to)
{
    buf out = BUF_INIT;
    for (size_t i = from; i < to; i++) {
        if (text[i] != '%') {
            buf_putc(&out, text[i]);
            continue;
        }
        int hi = i + 2 < to ? hex_value(text[i + 1]) : -1;
        int lo = hi >= 0 ? hex_value(text[i + 2]) : -1;
        if (lo < 0) {
            buf_dispose(&out);
            return NULL;
        }
        buf_putc(&out, (char)(hi * 16 + lo));
        i += 2;
    }
    return buf_detach(&out);
}

static int decodes_to(const char *text, size_t from, size_t to, const char *value)
{
    char *decoded = percent_decoded(text, from, to);
    int same = decoded && strcmp(decoded, value) == 0;
    free(decoded);
    return same;
}

/* In any scheme://user:password@host, the password runs from the first
 * ':' to the last '@' before the path. A password with a raw '/' in it
 * ("u:pa/ss@host") runs to the last '@' before the query, unless what
 * follows the ':' is a port. */
static void hide_uri_userinfo(scan *s, size_t authority)
{
    const char *t = s->text;
    size_t colon = authority;
    while (!ends_uri_secret(t[colon]) && !strchr(":@/?#", t[colon]))
        colon++;
    if (t[colon] != ':')
        return;
    size_t at = 0, i = colon + 1;
    int port = 1;
    for (; !ends_uri_secret(t[i]) && !strchr("/?#", t[i]); i++) {
        if (t[i] == '@')
            at = i;
        else if (!isdigit((unsigned char)t[i]))
            port = 0;
    }
    if (!at && !port)
        for (; !ends_uri_secret(t[i]) && !strchr("?#", t[i]); i++)
            if (t[i] == '@')
                at = i;
    if (at)
        hide(s, colon + 1, at);
}

/* The value of every password parameter in a URI's query, as written.
 * Returns 1 when one of them decodes to `value`. */
static int hide_query_passwords(scan *s, size_t from, size_t end, const char *value)
{
    const char *t = s->text;
    int matched = 0;
    const char *q = memchr(t + from, '?', end - from);
    for (size_t i = q ? (size_t)(q - t) + 1 : end; i < end;) {
        size_t pair_end = i;
        while (pair_end < end && t[pair_end] != '&')
            pair_end++;
        const char *eq = memchr(t + i, '=', pair_end - i);
        if (eq) {
            size_t v = (size_t)(eq - t) + 1;
            char *key = percent_decoded(t, i, v - 1);
            if (key && (strcmp(key, "password") == 0 || strcmp(key, "sslpassword") == 0)) {
                hide(s, v, pair_end);
                matched |= value && decodes_to(t, v, pair_end, value);
            }
            free(key);
        }
        i = pair_end + 1;
    }
    return matched;
}

/* A postgres:// or postgresql:// URI at `start`, read by libpq. Each
 * password it finds is hidden where it is written (the user info, or the
 * query); one that cannot be located there hides the whole URI. A URI that
 * libpq refuses is left to the patterns for any scheme. */
static PQconninfoOption *parse_uri(const char *t, size_t start, size_t end)
{
    char *uri = xstrndup(t + start, end - start);
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse(uri, &error);
    PQfreemem(error);
    free(uri);
    return options;
}

/* The URI as far as a password in it may run (ends_uri_secret), or, when
 * libpq refuses that, as far as a URI in text runs (ends_uri). */
static PQconninfoOption *read_postgres_uri(size_t *end, const char *t, size_t start, size_t authority)
{
    for (*end = authority; !ends_uri_secret(t[*end]);)
        (*end)++;
    PQconninfoOption *options = parse_uri(t, start, *end);
    if (options)
        return options;
    for (*end = authority; !ends_uri(t[*end]);)
        (*end)++;
    return parse_uri(t, start, *end);
}

static void hide_postgres_uri(scan *s, size_t start, size_t authority)
{
    const char *t = s->text;
    size_t end;
    PQconninfoOption *options = read_postgres_uri(&end, t, start, authority);
    if (!options)
        return;
    /* libpq's user info ends at the first '@' before any '/'. */
    size_t info_end = authority;
    while (info_end < end && t[info_end] != '@' && t[info_end] != '/')
        info_end++;
    size_t colon = authority;
    while (colon < info_end && t[colon] != ':')
        colon++;
    int has_info_password = info_end < end && t[info_end] == '@' && colon < info_end;
    if (has_info_password)
        hide(s, colon + 1, info_end);
    for (PQconninfoOption *o = options; o->keyword; o++) {
        if ((strcmp(o->keyword, "password") != 0 && strcmp(o->keyword, "sslpassword") != 0) || !o->val ||
            !*o->val)
            continue;
        note_password(s, o->val);
        int located = hide_query_passwords(s, has_info_password ? info_end : authority, end, o->val);
        if (strcmp(o->keyword, "password") == 0 && has_info_password)
            located |= decodes_to(t, colon + 1, info_end, o->val);
        if (!located)
            hide(s, authority, end);
    }
    PQconninfoFree(options);
}

static void hide_uris(scan *s)
{
    for (const char *p = strstr(s->text, "://"); p; p = strstr(p + 1, "://")) {
        size_t authority = (size_t)(p - s->text) + 3;
        hide_uri_userinfo(s, authority);
        static const char *const schemes[] = { "postgresql", "postgres" };
        for (size_t i = 0; i < 2; i++) {
            size_t n = strlen(schemes[i]);
            size_t at = (size_t)(p - s->text);
            if (at >= n && strncmp(p - n, schemes[i], n) == 0) {
                hide_postgres_uri(s, at - n, authority);
                break;
            }
        }
    }
}

/* The end of a keyword/value value that starts at v, read as libpq reads
 * it: 'quoted' with \' and \\ escapes, or up to a space with \ escaping the
 * next character. An unquoted value also ends at '"', so a connection
 * string inside printed JSON ends with its string. Sets *quoted. */
static size_t value_end(int *quoted, const char *t, size_t v)
{
    *quoted = t[v] == '\'';
    size_t i = v + (size_t)*quoted;
    while (t[i]) {
        if (t[i] == '\\' && t[i + 1]) {
            i += 2;
            continue;
        }
        if (*quoted ? t[i] == '\'' : (isspace((unsigned char)t[i]) || t[i] == '"'))
            return i;
        if (*quoted && t[i] == '\n') /* never closed: hide to the end of the line */
            return i;
        i++;
    }
    return i;
}

/* A keyword's value in "password = x", "password='a b'", ...: hidden as
 * written, and read by libpq to know its plain value. In a URL's query
 * ("?password=x&..."), the value ends at '&'. */
static void hide_keyword_value(scan *s, const char *keyword, size_t key_start, size_t key_end)
{
    const char *t = s->text;
    char before = key_start > 0 ? t[key_start - 1] : ' ';
    if (before == '?' || before == '&') {
        if (t[key_end] != '=')
            return;
        size_t end = key_end + 1;
        while (!ends_uri_secret(t[end]) && t[end] != '&' && t[end] != '#')
            end++;
        hide(s, key_end + 1, end);
        char *plain = percent_decoded(t, key_end + 1, end);
        note_password(s, plain);
        free(plain);
        return;
    }
    size_t i = key_end;
    while (isspace((unsigned char)t[i]))
        i++;
    if (t[i] != '=')
        return;
    i++;
    while (isspace((unsigned char)t[i]))
        i++;
    int quoted;
    size_t end = value_end(&quoted, t, i);
    hide(s, i + (size_t)quoted, end);
    char *pair = xasprintf("%s=%.*s%s", keyword, (int)(end - i), t + i, quoted && t[end] == '\'' ? "'" : "");
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse(pair, &error);
    PQfreemem(error);
    free(pair);
    for (PQconninfoOption *o = options; o && o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0)
            note_password(s, o->val);
    PQconninfoFree(options);
}

static int is_word_character(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static void hide_keyword_passwords(scan *s)
{
    static const char *const keywords[] = { "password", "sslpassword" };
    const char *t = s->text;
    for (size_t i = 0; i < s->len; i++) {
        if (i > 0 && is_word_character(t[i - 1]))
            continue;
        for (size_t k = 0; k < sizeof keywords / sizeof *keywords; k++) {
            size_t n = strlen(keywords[k]);
            if (strncasecmp(t + i, keywords[k], n) == 0 && !is_word_character(t[i + n])) {
                hide_keyword_value(s, keywords[k], i, i + n);
                break;
            }
        }
    }
}

/* A text that is itself one connection string (a param's value, a
 * setting) is read by libpq whole: in one, a password may hold what ends a
 * URI in free text (postgres://u:pa ss@h logs in with "pa ss"). */
static void note_whole_conninfo(scan *s)
{
    if (!strchr(s->text, '=') && !strstr(s->text, "://"))
        return;
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse(s->text, &error);
    PQfreemem(error);
    for (PQconninfoOption *o = options; o && o->keyword; o++)
        if (!strcmp(o->keyword, "password") || !strcmp(o->keyword, "sslpassword"))
            note_password(s, o->val);
    PQconninfoFree(options);
}

/* A new string with every hidden run of bytes as one REDACTED, or NULL
 * when nothing is hidden. */
static char *redacted_or_null(const char *text)
{
    scan s = { .text = text, .len = strlen(text) };
    s.hidden = xcalloc(s.len + 1, 1);
    for (size_t i = 0; i < secrets.count; i++)
        hide_every(&s, secrets.items[i]);
    if (strstr(text, "://"))
        hide_uris(&s);
    hide_keyword_passwords(&s);
    note_whole_conninfo(&s);
    for (size_t i = 0; i < s.passwords.count; i++)
        hide_every(&s, s.passwords.items[i]);
    str_list_dispose(&s.passwords);
    char *out = NULL;
    if (memchr(s.hidden, 1, s.len)) {
        buf b = BUF_INIT;
        for (size_t i = 0; i < s.len; i++) {
            if (!s.hidden[i])
                buf_putc(&b, text[i]);
            else if (i == 0 || !s.hidden[i - 1])
                buf_puts(&b, REDACTED);
        }
        out = buf_detach(&b);
    }
    free(s.hidden);
    return out;
}

char *redact_text(const char *text)
{
    char *out = redacted_or_null(text);
    return out ? out : xstrdup(text);
}

/* ---- records -------------------------------------------------------------- */

/* The string fields the engine writes with its own vocabulary, by path
 * from the record's root ("#" is any array element, "*" anything below),
 * and the event kinds they hold in. Everything else is free text. */
static const struct {
    const char *kinds;
    const char *path;
} engine_fields[] = {
    /* every journal event (journal.c) */
    { "*", "seq" }, { "*", "prev" }, { "*", "time" }, { "*", "kind" }, { "*", "step" }, { "*", "rebased" },
    /* the chain's anchor in notifications (notify.c) */
    { "*", "journal_chain.*" },
    /* four eyes: the hash an approval names, who, how (runner.c, cmd_approve.c) */
    { "approval-*", "data.summary_hash" }, { "approval-*", "data.signing_key" }, { "approval-*", "data.how" },
    { "approval-*", "data.approved_by.#" }, { "approval-*", "data.from.#" },
    /* run.json (runner.c), read back by resume, status and the drill */
    { "*", "run_id" }, { "*", "runbook" }, { "*", "runbook.*" }, { "*", "version" }, { "*", "blob_id" },
    { "*", "drctl_version" }, { "*", "operator" }, { "*", "host" }, { "*", "started_at" }, { "*", "time_zone" },
    { "*", "steps.#" }, { "*", "target.*" }, { "*", "drill.*" },
    /* a plan (runner.c) */
    { "*", "steps.#.name" },
    /* the state and status records' own fields (checkpoint.c, runs.c, cmd_status.c, cmd_run.c) */
    { "*", "run" }, { "*", "state" }, { "*", "status" }, { "*", "at" }, { "*", "ended_at" },
    { "*", "updated_at" }, { "*", "expires_at" }, { "*", "steps.#.state" },
    /* run-started, run-resumed, runbook-changed, abort-requested (runner.c) */
    { "*", "data.runbook" }, { "*", "data.version" }, { "*", "data.blob_id" }, { "*", "data.steps.#" },
    { "*", "data.operator" }, { "*", "data.host" }, { "*", "data.time_zone" }, { "*", "data.allowed_by" }, { "*", "data.approvals.#" },
    { "*", "data.run_id" }, { "*", "data.state" }, { "*", "data.status" },
    /* lock-takeover: which lock and who held it (runner.c, lock.c) */
    { "lock-takeover", "data.lock" }, { "lock-takeover", "data.previous_holder.*" },
    /* why a confirmation was asked: rerun, destructive, in-step (gate.c) */
    { "confirmation-*", "data.reason" },
    /* what the drill learned and replays on resume, operation ids (neonmod.c, drill.c) */
    { "neon*", "data.drill_learned.#.*" }, { "neon*", "data.drill_default" },
    { "neon*", "data.operations.#" }, { "neon*", "data.method" }, { "neon*", "data.error_code" },
    /* codes and digests of queries and dumps (pgmod.c, dumpmod.c) */
    { "*", "data.sqlstate" }, { "*", "data.tool" }, { "*", "data.sha256" },
    /* what the engine measured and counted (runner.c, the modules) */
    { "*", "journal_seq" }, { "*", "data.attempt" }, { "*", "data.duration_ms" }, { "*", "data.delay_seconds" },
    { "*", "data.dropped_bytes" }, { "*", "data.retries" }, { "*", "data.polls" }, { "*", "data.rows" },
    { "*", "data.bytes" }, { "*", "data.exit_code" }, { "*", "data.code" }, { "*", "data.stdout_bytes" },
    { "*", "data.stderr_bytes" }, { "*", "data.inserted" }, { "*", "data.updated" }, { "*", "data.failed" },
    { "*", "data.writes_per_second" },
};

static int is_engine_field(const char *kind, const char *path)
{
    for (size_t i = 0; i < sizeof engine_fields / sizeof *engine_fields; i++)
        if (fnmatch(engine_fields[i].kinds, kind, 0) == 0 && fnmatch(engine_fields[i].path, path, 0) == 0)
            return 1;
    return 0;
}

/* A number whose digits are a secret (a secret int returned as an output)
 * becomes the redacted text: it cannot stay a number. NULL otherwise. */
static cJSON *redacted_number(const cJSON *node)
{
    char text[64];
    double v = node->valuedouble;
    /* The range first: casting a double past long long's is undefined. */
    if (v < 9.3e18 && v > -9.3e18 && v == (double)(long long)v)
        snprintf(text, sizeof text, "%lld", (long long)v);
    else
        snprintf(text, sizeof text, "%.17g", v);
    char *clean = redacted_or_null(text);
    cJSON *replacement = clean ? cJSON_CreateString(clean) : NULL;
    free(clean);
    return replacement;
}

/* The elements of an array share one path: the last answer is kept, so a
 * list of a million values costs one lookup, not a million. */
typedef struct field_cache {
    const char *kind;
    buf path;
    int answer;
} field_cache;

static int is_engine_field_cached(field_cache *cache, const char *path)
{
    if (cache->path.data && strcmp(cache->path.data, path) == 0)
        return cache->answer;
    cache->path.len = 0;
    buf_puts(&cache->path, path);
    cache->answer = is_engine_field(cache->kind, path);
    return cache->answer;
}

static void redact_values(cJSON *node, field_cache *cache, buf *path)
{
    if (cJSON_IsString(node) && node->valuestring && !is_engine_field_cached(cache, buf_cstr(path))) {
        char *clean = redacted_or_null(node->valuestring);
        if (clean)
            cJSON_SetValuestring(node, clean);
        free(clean);
    }
    size_t len = path->len;
    for (cJSON *child = node->child; child; child = child->next) {
        if (len)
            buf_putc(path, '.');
        buf_puts(path, cJSON_IsArray(node) ? "#" : child->string ? child->string : "");
        cJSON *number =
            cJSON_IsNumber(child) && !is_engine_field_cached(cache, buf_cstr(path)) ? redacted_number(child) : NULL;
        if (number) { /* the key moves to the replacement, unchanged */
            number->string = child->string;
            number->type |= child->type & cJSON_StringIsConst;
            child->string = NULL;
            cJSON_ReplaceItemViaPointer(node, child, number);
            child = number;
        }
        redact_values(child, cache, path);
        path->len = len;
        if (path->data)
            path->data[len] = '\0';
    }
}

void redact_json(cJSON *node)
{
    if (!node)
        return;
    const cJSON *kind = cJSON_IsObject(node) ? cJSON_GetObjectItemCaseSensitive(node, "kind") : NULL;
    buf path = BUF_INIT;
    field_cache cache = { cJSON_IsString(kind) ? kind->valuestring : "", BUF_INIT, 0 };
    redact_values(node, &cache, &path);
    buf_dispose(&cache.path);
    buf_dispose(&path);
}
