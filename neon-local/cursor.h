/* cursor: the opaque cursor of paged listings (branches, projects,
 * operations). It holds the last item's sort key and id, so a next page
 * starts right after that item by key: stable when items come and go
 * between pages. */
#ifndef DRCTL_NL_CURSOR_H
#define DRCTL_NL_CURSOR_H

/* key and id, hex-encoded (caller frees). */
char *nl_cursor_encode(const char *key, const char *id);

/* The key and id of a cursor nl_cursor_encode made (caller frees both);
 * -1 for anything else: odd length, a non-hex digit, no separator. */
int nl_cursor_decode(char **key, char **id, const char *cursor);

/* The limit query parameter of a listing: def when text is NULL, else a
 * whole number from 1 to max; -1 for anything else ("0", "ten", "5x"). */
int nl_cursor_limit(long *out, const char *text, long def, long max);

#endif
