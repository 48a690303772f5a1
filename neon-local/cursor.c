#include "cursor.h"

#include "buf.h"

#include <stdlib.h>
#include <string.h>

/* Between the key and the id: a byte neither holds (ASCII unit separator). */
#define SEPARATOR '\x1f'

char *nl_cursor_encode(const char *key, const char *id)
{
    char *raw = xasprintf("%s%c%s", key, SEPARATOR, id);
    buf b = BUF_INIT;
    for (const char *p = raw; *p; p++)
        buf_printf(&b, "%02x", (unsigned char)*p);
    free(raw);
    return buf_detach(&b);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The bytes a hex text stands for, NUL-terminated; NULL when it is not hex
 * or holds a NUL byte. */
static char *unhex(const char *text)
{
    size_t len = strlen(text);
    if (len % 2)
        return NULL;
    char *out = xmalloc(len / 2 + 1);
    for (size_t i = 0; i < len / 2; i++) {
        int high = hex_value(text[2 * i]), low = hex_value(text[2 * i + 1]);
        if (high < 0 || low < 0 || (high == 0 && low == 0)) {
            free(out);
            return NULL;
        }
        out[i] = (char)(high << 4 | low);
    }
    out[len / 2] = '\0';
    return out;
}

int nl_cursor_decode(char **key, char **id, const char *cursor)
{
    *key = *id = NULL;
    char *raw = unhex(cursor);
    char *sep = raw ? strchr(raw, SEPARATOR) : NULL;
    if (!sep) {
        free(raw);
        return -1;
    }
    *sep = '\0';
    *id = xstrdup(sep + 1);
    *key = raw;
    return 0;
}

int nl_cursor_limit(long *out, const char *text, long def, long max)
{
    char *end;
    *out = def;
    if (!text)
        return 0;
    long value = strtol(text, &end, 10);
    if (end == text || *end || value < 1 || value > max)
        return -1;
    *out = value;
    return 0;
}
