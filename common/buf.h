/* buf: a growable byte string, always NUL-terminated, and the allocation
 * helpers the engine uses. Running out of memory is not an outcome the
 * engine can recover from halfway through a checkpoint, so xmalloc and
 * friends print a message and abort instead of returning NULL. */
#ifndef DRCTL_BUF_H
#define DRCTL_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data;   /* NUL-terminated; NULL until something is added */
    size_t len;
    size_t cap;
} buf;

#define BUF_INIT { NULL, 0, 0 }

/* A list of owned strings (ids, secrets, names), for the few that the
 * engine keeps: looked up by a linear scan. */
typedef struct str_list {
    char **items;
    size_t count;
} str_list;

void buf_append(buf *b, const void *data, size_t len);
void buf_puts(buf *b, const char *text);
void buf_putc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the string over to the caller (never NULL) and empties b. */
char *buf_detach(buf *b);
void buf_dispose(buf *b);
/* The content, or "" when empty. Borrowed. */
const char *buf_cstr(const buf *b);

/* Appends a copy of text and returns it; str_list_add_unique adds it only
 * when absent. str_list_dispose frees every copy and empties the list. */
const char *str_list_push(str_list *l, const char *text);
void str_list_add_unique(str_list *l, const char *text);
int str_list_has(const str_list *l, const char *text);
void str_list_dispose(str_list *l);

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *text);
char *xstrndup(const char *text, size_t len);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
