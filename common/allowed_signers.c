#include "allowed_signers.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "sshsig.h"
#include "timefmt.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LINE_FORM "(one line: principals [options] keytype base64)"
#define KEY_TYPES "ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, " \
                  "sk-ecdsa-sha2-nistp256@openssh.com, ssh-dss"
#define OPTIONS "cert-authority, namespaces=\"...\", valid-after=\"...\", valid-before=\"...\""
#define TIME_FORMS "YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with Z for UTC"
/* ssh's match_pattern_list gives up on a pattern this long. */
#define PATTERN_MAX 1023

typedef struct signer_line {
    int lineno;
    char *principals;         /* pattern-list */
    char *namespaces;         /* pattern-list, NULL when any namespace is allowed */
    int cert_authority;
    int has_after, has_before;
    int64_t valid_after, valid_before;
    char *after_text, *before_text;  /* as written, for messages */
    unsigned char *blob;
    size_t blob_len;
} signer_line;

/* The why of the last verdict; a separate allocation so that a const
 * allowed_signers can still say why. */
typedef struct why_slot {
    char text[1024];
} why_slot;

struct allowed_signers {
    char *name;
    signer_line *lines;
    int count;
    why_slot *why;
};

/* ---- patterns (ssh's match.c) ---------------------------------------- */

/* '*' any run, '?' one character, everything else itself. */
static int match_pattern(const char *s, const char *p)
{
    const char *star_p = NULL, *star_s = NULL;
    while (*s) {
        if (*p == '*') {
            star_p = ++p;
            star_s = s;
        } else if (*p && (*p == '?' || *p == *s)) {
            p++;
            s++;
        } else if (star_p) {
            p = star_p;
            s = ++star_s;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

int allowed_signers_match_list(const char *text, const char *patterns)
{
    char sub[PATTERN_MAX + 1];
    int positive = 0;
    for (const char *p = patterns; *p;) {
        int negated = *p == '!';
        p += negated;
        size_t n = strcspn(p, ",");
        if (n >= PATTERN_MAX)
            return 0;
        memcpy(sub, p, n);
        sub[n] = '\0';
        p += n + (p[n] == ',');
        if (match_pattern(text, sub)) {
            if (negated)
                return -1;
            positive = 1;
        }
    }
    return positive;
}

/* ---- times (ssh's parse_absolute_time) -------------------------------------- */

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int number(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static int days_in_month(int year, int month)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, then Z or UTC (any case) for
 * UTC, otherwise local time read as ssh-keygen reads it: mktime with
 * tm_isdst 0, so that drctl and `git verify-commit` agree even in summer.
 * Dates that do not exist are refused; so are times before 1970-01-01T00:00:01
 * (ssh-keygen takes 0 for "not set"). */
static int parse_ssh_time(int64_t *out, const char *s)
{
    size_t len = strlen(s);
    int utc = 0;
    if (len > 1 && (s[len - 1] == 'Z' || s[len - 1] == 'z')) {
        utc = 1;
        len--;
    } else if (len > 3 && strncasecmp(s + len - 3, "UTC", 3) == 0) {
        utc = 1;
        len -= 3;
    }
    if ((len != 8 && len != 12 && len != 14) || !digits(s, len))
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int year = number(s, 4), month = number(s + 4, 2), day = number(s + 6, 2);
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    if (len >= 12) {
        tm.tm_hour = number(s + 8, 2);
        tm.tm_min = number(s + 10, 2);
    }
    if (len == 14)
        tm.tm_sec = number(s + 12, 2);
    if (tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
        return -1;
    time_t t = utc ? timegm(&tm) : mktime(&tm);
    if (t <= 0)
        return -1;
    *out = (int64_t)t;
    return 0;
}

/* ---- parsing a line ---------------------------------------------------------------- */

typedef struct line_ctx {
    const char *file;
    int lineno;
} line_ctx;

static int bad_line(const line_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad_line(const line_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *middle = NULL;
    if (vasprintf(&middle, fmt, ap) < 0)
        middle = NULL;
    va_end(ap);
    int rc = err_set(DR_EUSAGE, "%s:%d: %s " LINE_FORM, c->file, c->lineno, middle ? middle : "cannot be parsed");
    free(middle);
    return rc;
}

static const char *skip_blanks(const char *p)
{
    return p + strspn(p, " \t");
}

/* The end of the options field: the first blank outside double quotes,
 * a \" inside quotes being a quote (ssh's sshkey_advance_past_options);
 * NULL when a quote is left open. */
static const char *options_end(const char *p)
{
    int quoted = 0;
    for (; *p && (quoted || (*p != ' ' && *p != '\t')); p++) {
        if (*p == '\\' && p[1] == '"')
            p++;
        else if (*p == '"')
            quoted = !quoted;
    }
    return quoted ? NULL : p;
}

/* A quoted option value at *p (just after '='), up to its closing quote
 * (ssh's opt_dequote); *p is left after it. */
static char *dequote(const char **p, const char *end)
{
    const char *s = *p + 1;
    buf value = BUF_INIT;
    while (s < end && *s != '"') {
        if (s[0] == '\\' && s[1] == '"')
            s++;
        buf_putc(&value, *s++);
    }
    *p = s + 1;
    return buf_detach(&value);
}

static int keyword(const char *p, const char *end, const char *name)
{
    size_t n = strlen(name);
    return (size_t)(end - p) > n && strncasecmp(p, name, n) == 0 && p[n] == '=';
}

/* The length of the option at p, for messages: up to '=' or ','. */
static int option_name_len(const char *p, const char *end)
{
    const char *q = p;
    while (q < end && *q != '=' && *q != ',')
        q++;
    return (int)(q - p);
}

static int parse_time_option(const line_ctx *c, signer_line *l, const char *name, char *value)
{
    int after = strcmp(name, "valid-after") == 0;
    int64_t t;
    if (parse_ssh_time(&t, value) != 0) {
        int rc = bad_line(c, "%s=\"%s\" is not a time ssh-keygen reads; write " TIME_FORMS " (%s=\"20250101Z\")",
                          name, value, name);
        free(value);
        return rc;
    }
    if (after) {
        l->has_after = 1;
        l->valid_after = t;
        l->after_text = value;
    } else {
        l->has_before = 1;
        l->valid_before = t;
        l->before_text = value;
    }
    return 0;
}

/* One option with a quoted value, at *p; *p is left after it. */
static int parse_value_option(const line_ctx *c, signer_line *l, const char *name, const char **p, const char *end)
{
    const char *v = *p + strlen(name) + 1;
    int given = strcmp(name, "namespaces") == 0 ? l->namespaces != NULL
                : strcmp(name, "valid-after") == 0 ? l->has_after : l->has_before;
    if (given)
        return bad_line(c, "%s= is given twice; give it once%s", name,
                        strcmp(name, "namespaces") == 0 ? ", with a comma-separated list: namespaces=\"git,file\"" : "");
    if (v >= end || *v != '"') {
        int n = (int)strcspn(v, ", \t");
        return bad_line(c, "the value of %s= must be in double quotes, as ssh-keygen requires; write %s=\"%.*s\"", name,
                        name, n, v);
    }
    char *value = dequote(&v, end);
    *p = v;
    if (strcmp(name, "namespaces") == 0) {
        l->namespaces = value;
        return 0;
    }
    return parse_time_option(c, l, name, value);
}

/* The options field, from p to end (ssh's sshsigopt_parse). */
static int parse_options(const line_ctx *c, signer_line *l, const char *p, const char *end)
{
    static const char *const valued[] = { "namespaces", "valid-after", "valid-before", NULL };
    while (p < end) {
        const char *name = NULL;
        for (const char *const *v = valued; *v && !name; v++)
            if (keyword(p, end, *v))
                name = *v;
        size_t ca_len = strlen("cert-authority");
        if (name) {
            int rc = parse_value_option(c, l, name, &p, end);
            if (rc != 0)
                return rc;
        } else if ((size_t)(end - p) >= ca_len && strncasecmp(p, "cert-authority", ca_len) == 0 &&
                   (p + ca_len == end || p[ca_len] == ',')) {
            l->cert_authority = 1;
            p += ca_len;
        } else {
            return bad_line(c, "unknown option \"%.*s\"; the options are " OPTIONS, option_name_len(p, end), p);
        }
        if (p == end)
            break;
        if (*p != ',')
            return bad_line(c, "\"%.*s\" follows an option; separate options with commas and no spaces",
                            (int)(end - p), p);
        if (++p == end)
            return bad_line(c, "the options end with a comma; remove it");
    }
    if (l->has_after && l->has_before && l->valid_before <= l->valid_after)
        return bad_line(c, "valid-before=\"%s\" is not after valid-after=\"%s\"; correct one of them", l->before_text,
                        l->after_text);
    return 0;
}

/* keytype base64 at p. */
static int parse_key(const line_ctx *c, signer_line *l, const char *p)
{
    size_t type_len = strcspn(p, " \t");
    const char *b64 = skip_blanks(p + type_len);
    if (!*b64)
        return bad_line(c, "the key type %.*s is not followed by its base64 key; copy the whole line of the "
                        "signer's .pub file", (int)type_len, p);
    const char *why;
    if (sshsig_public_key_decode(&l->blob, &l->blob_len, p, &why) != 0)
        return bad_line(c, "the %.*s key is not valid (%s); copy it again from the signer's .pub file", (int)type_len,
                        p, why);
    return 0;
}

/* Whether the field at p, n bytes, may be a key type mistyped rather than
 * options: no '=', no ',', not cert-authority. */
static int looks_like_key_type(const char *p, size_t n)
{
    return !memchr(p, '=', n) && !memchr(p, ',', n) && !(n == 14 && strncasecmp(p, "cert-authority", 14) == 0);
}

/* The principals field at *p, copied to l; *p is left after it. A field in
 * double quotes may hold blanks (ssh's strdelimw). */
static int parse_principals(const line_ctx *c, signer_line *l, const char **p)
{
    const char *s = *p, *start = s;
    size_t n;
    if (*s == '"') {
        const char *close = strchr(s + 1, '"');
        if (!close)
            return bad_line(c, "the principals' opening double quote is not closed; close it or remove it");
        start = s + 1;
        n = (size_t)(close - start);
        s = close + 1;
    } else {
        n = strcspn(s, " \t");
        s += n;
    }
    if (n == 0)
        return bad_line(c, "the principals are empty; name the signer's identities (alice@example.com)");
    /* ssh-keygen would take namespaces="git" for a principal no one has. */
    if (*s != '"' && start == *p && memchr(start, '=', n))
        return bad_line(c, "\"%.*s\" stands where the principals go; the principals come first, then the options "
                        "(alice@example.com namespaces=\"git\" ssh-ed25519 AAAA...)", (int)n, start);
    l->principals = xstrndup(start, n);
    *p = s;
    return 0;
}

/* One line; 1 when it is blank or a comment, 0 when l holds a signer. */
static int parse_line(const line_ctx *c, signer_line *l, const char *line)
{
    const char *p = skip_blanks(line);
    if (*p == '#' || *p == '\0')
        return 1;
    l->lineno = c->lineno;
    size_t first = strcspn(p, " \t");
    if (sshsig_known_key_type(p, first))
        return bad_line(c, "the line starts with the key type %.*s: the principals are missing; put the signer's "
                        "identities (alice@example.com) before it", (int)first, p);
    int rc = parse_principals(c, l, &p);
    if (rc != 0)
        return rc;
    p = skip_blanks(p);
    if (!*p)
        return bad_line(c, "\"%s\" is followed by no key; add the signer's key type and base64 key after the "
                        "principals", l->principals);
    size_t field = strcspn(p, " \t");
    if (!sshsig_known_key_type(p, field)) {
        const char *end = options_end(p);
        if (!end)
            return bad_line(c, "a double quote in the options is not closed; close it (namespaces=\"git\")");
        if ((rc = parse_options(c, l, p, end)) != 0) {
            if (!looks_like_key_type(p, field))
                return rc;
            err_clear();
            return bad_line(c, "\"%.*s\" is neither a key type (" KEY_TYPES ") nor an option (" OPTIONS ")",
                            (int)field, p);
        }
        p = skip_blanks(end);
        if (!*p)
            return bad_line(c, "the options are followed by no key; add the signer's key type and base64 key");
        field = strcspn(p, " \t");
        if (!sshsig_known_key_type(p, field))
            return bad_line(c, "\"%.*s\" is not a key type (" KEY_TYPES "); copy the key from the signer's .pub file",
                            (int)field, p);
    }
    return parse_key(c, l, p);
}

static void dispose_line(signer_line *l)
{
    free(l->principals);
    free(l->namespaces);
    free(l->after_text);
    free(l->before_text);
    free(l->blob);
    memset(l, 0, sizeof *l);
}

void allowed_signers_free(allowed_signers *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->count; i++)
        dispose_line(&a->lines[i]);
    free(a->lines);
    free(a->name);
    free(a->why);
    free(a);
}

int allowed_signers_parse(allowed_signers **out, const char *name, const char *text)
{
    *out = NULL;
    allowed_signers *a = xcalloc(1, sizeof *a);
    a->name = xstrdup(name);
    a->why = xcalloc(1, sizeof *a->why);
    int cap = 0;
    line_ctx c = { name, 0 };
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        char *line = xstrndup(p, n);
        if (n && line[n - 1] == '\r')
            line[n - 1] = '\0';
        p += n + (p[n] == '\n');
        c.lineno++;
        signer_line l;
        memset(&l, 0, sizeof l);
        int rc = parse_line(&c, &l, line);
        free(line);
        if (rc < 0) {
            dispose_line(&l);
            allowed_signers_free(a);
            return rc;
        }
        if (rc == 1)
            continue;
        if (a->count == cap)
            a->lines = xrealloc(a->lines, (size_t)(cap = cap ? cap * 2 : 8) * sizeof *a->lines);
        a->lines[a->count++] = l;
    }
    *out = a;
    return 0;
}

int allowed_signers_load(allowed_signers **out, const char *path)
{
    *out = NULL;
    char *text;
    size_t len;
    if (fsio_read_file(&text, &len, path) != 0) {
        char *reason = xstrdup(err_last());
        int rc = err_set(DR_EUSAGE, "%s; give the path of the allowed signers file (git's gpg.ssh.allowedSignersFile) "
                         LINE_FORM, reason);
        free(reason);
        return rc;
    }
    size_t text_len = strlen(text);
    int rc;
    if (text_len != len) {
        int lineno = 1;
        for (size_t i = 0; i < text_len; i++)
            lineno += text[i] == '\n';
        rc = err_set(DR_EUSAGE, "%s:%d: a NUL byte: this is not a text file; give the allowed signers file "
                     LINE_FORM, path, lineno);
    } else {
        rc = allowed_signers_parse(out, path, text);
    }
    free(text);
    return rc;
}

int allowed_signers_count(const allowed_signers *a)
{
    return a->count;
}

/* ---- verdicts ---------------------------------------------------------------------- */

static void say(const allowed_signers *a, const char **why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(const allowed_signers *a, const char **why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->why->text, sizeof a->why->text, fmt, ap);
    va_end(ap);
    if (why)
        *why = a->why->text;
}

static int same_key(const signer_line *l, const unsigned char *blob, size_t len)
{
    return l->blob_len == len && memcmp(l->blob, blob, len) == 0;
}

/* How close a line came to permitting: the why kept is the closest's. */
enum closeness { NO_LINE, ONLY_CA, OTHER_PRINCIPAL, PRINCIPAL_MATCHED };

/* Whether line l, whose principals matched, still refuses: its namespaces
 * or its validity. The reason is recorded (in a's why) when record is set. */
static int condition_fails(const allowed_signers *a, const signer_line *l, const char *ns, int64_t t,
                           int record, const char **why)
{
    char at[40], bound[40];
    timefmt_format_utc(at, sizeof at, (double)t);
    int namespace_refused = l->namespaces && allowed_signers_match_list(ns, l->namespaces) != 1;
    int early = l->has_after && t < l->valid_after, late = l->has_before && t > l->valid_before;
    if (!record || !(namespace_refused || early || late))
        return namespace_refused || early || late;
    if (namespace_refused) {
        say(a, why, "%s:%d allows this key to sign only in namespaces \"%s\", not in \"%.100s\"", a->name,
            l->lineno, l->namespaces, ns);
    } else if (early) {
        timefmt_format_utc(bound, sizeof bound, (double)l->valid_after);
        say(a, why, "%s:%d: the key is not yet valid at %s: valid-after=\"%s\" (%s)", a->name, l->lineno, at,
            l->after_text, bound);
    } else {
        timefmt_format_utc(bound, sizeof bound, (double)l->valid_before);
        say(a, why, "%s:%d: the key has expired at %s: valid-before=\"%s\" (%s)", a->name, l->lineno, at,
            l->before_text, bound);
    }
    return 1;
}

int allowed_signers_permits(const allowed_signers *a, const char *principal, const char *public_key, const char *ns,
                            double when, const char **why)
{
    principal = principal ? principal : "";
    ns = ns ? ns : "";
    say(a, why, "%s", "");
    unsigned char *blob;
    size_t len;
    const char *bad;
    if (sshsig_public_key_decode(&blob, &len, public_key, &bad) != 0) {
        say(a, why, "the signing key is not a public key (%s)", bad);
        return 0;
    }
    if (isnan(when)) {
        free(blob);
        say(a, why, "the signing time is not a number");
        return 0;
    }
    /* Whole seconds, as ssh-keygen compares them (clamped: any time past
     * the year 9999 is as late as that). */
    double whole = floor(when);
    int64_t t = whole < TIMEFMT_EPOCH_MIN ? (int64_t)TIMEFMT_EPOCH_MIN
                : whole > TIMEFMT_EPOCH_MAX ? (int64_t)TIMEFMT_EPOCH_MAX : (int64_t)whole;
    enum closeness closest = NO_LINE;
    int permitted = 0;
    for (int i = 0; i < a->count && !permitted; i++) {
        const signer_line *l = &a->lines[i];
        if (!same_key(l, blob, len))
            continue;
        if (l->cert_authority) {
            if (closest < ONLY_CA)
                say(a, why, "%s:%d lists this key as a cert-authority, which vouches for certificates, not for "
                    "signatures made with the key itself", a->name, l->lineno);
            closest = closest > ONLY_CA ? closest : ONLY_CA;
            continue;
        }
        int m = allowed_signers_match_list(principal, l->principals);
        if (m != 1) {
            if (closest < OTHER_PRINCIPAL)
                say(a, why, "%s:%d lists this key for \"%s\", which %s \"%.200s\"", a->name, l->lineno, l->principals,
                    m < 0 ? "excludes" : "does not match", principal);
            closest = closest > OTHER_PRINCIPAL ? closest : OTHER_PRINCIPAL;
            continue;
        }
        if (condition_fails(a, l, ns, t, closest < PRINCIPAL_MATCHED, why) == 0)
            permitted = 1;
        closest = PRINCIPAL_MATCHED;
    }
    if (permitted) {
        say(a, why, "%s", "");
    } else if (closest == NO_LINE) {
        char *fp = NULL;
        if (sshsig_fingerprint_of(&fp, public_key) != 0)
            err_clear();
        say(a, why, "no line of %s lists the signing key %s", a->name, fp ? fp : "");
        free(fp);
    }
    free(blob);
    return permitted;
}

const char *allowed_signers_principals_of(const allowed_signers *a, const char *public_key)
{
    unsigned char *blob;
    size_t len;
    const char *bad;
    if (sshsig_public_key_decode(&blob, &len, public_key, &bad) != 0)
        return NULL;
    const char *found = NULL;
    for (int i = 0; i < a->count && !found; i++)
        if (!a->lines[i].cert_authority && same_key(&a->lines[i], blob, len))
            found = a->lines[i].principals;
    free(blob);
    return found;
}
