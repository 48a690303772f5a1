/* confine: keeps a runbook's file access inside the folders its run was
 * given (the runbook API, docs/runbooks.md, "The files module").
 *
 * The allowed folders are absolute, with every symlink of their existing
 * part resolved. A path is checked the same way: made absolute (relative
 * paths are taken from the working directory), refused when it has a `..`
 * component, then its deepest existing ancestor is resolved with realpath
 * and the rest appended. It is allowed when the result is an allowed folder
 * or lies inside one; so a symlink inside a folder that leads out of it is
 * refused, wherever it is on the path. Callers act on the resolved path
 * (and open its last component without following a link), so what they
 * touch is what was checked. */
#ifndef DRCTL_CONFINE_H
#define DRCTL_CONFINE_H

#include <stddef.h>

typedef struct confine_roots {
    char **folders;     /* absolute, symlinks resolved, no trailing '/' (but "/") */
    size_t count;
} confine_roots;

#define CONFINE_ROOTS_INIT { NULL, 0 }

void confine_roots_dispose(confine_roots *roots);

/* Allows the folder path names, or when it names an existing file, the
 * folder that file is in. A relative path is taken from the working
 * directory; `..` is allowed here (the operator gave it). */
int confine_roots_add(confine_roots *roots, const char *path);

/* The allowed folders, as "A, B" for messages ("none" when there is none). */
char *confine_roots_describe(const confine_roots *roots);

typedef enum {
    CONFINE_ACCESS,     /* read, write or list: an allowed folder itself is fine */
    CONFINE_REMOVE      /* delete: an allowed folder, or a folder holding one, is refused */
} confine_purpose;

/* Checks path; on success *resolved is the path to act on (absolute,
 * symlinks of its existing part resolved), owned by the caller. A refusal
 * is DR_EUSAGE with a message that names the path and the allowed
 * folders. */
int confine_check(char **resolved, const confine_roots *roots, const char *path, confine_purpose purpose);

#endif
