#include "confine.h"

#include "buf.h"
#include "err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- paths as components ------------------------------------------------------------------ */

typedef struct components {
    char **items;
    size_t count;
} components;

static void components_dispose(components *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->items[i]);
    free(c->items);
    c->items = NULL;
    c->count = 0;
}

static void components_push(components *c, const char *start, size_t len)
{
    c->items = xrealloc(c->items, (c->count + 1) * sizeof *c->items);
    c->items[c->count++] = xstrndup(start, len);
}

/* The components of path, empty ones and "." dropped ("a//./b" is a, b). */
static void split(components *out, const char *path)
{
    *out = (components){ 0 };
    for (const char *p = path; *p;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0 && !(len == 1 && p[0] == '.'))
            components_push(out, p, len);
        p += len;
        if (*p == '/')
            p++;
    }
}

static int has_dotdot(const components *c)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->items[i], "..") == 0)
            return 1;
    return 0;
}

/* base, then components [from, to), each after a '/'; "/" when that is empty. */
static char *join(const char *base, const components *c, size_t from, size_t to)
{
    buf b = BUF_INIT;
    buf_puts(&b, base);
    for (size_t i = from; i < to; i++) {
        if (b.len == 0 || b.data[b.len - 1] != '/')
            buf_putc(&b, '/');
        buf_puts(&b, c->items[i]);
    }
    if (b.len == 0)
        buf_putc(&b, '/');
    return buf_detach(&b);
}

/* path made absolute against the working directory, as components. */
static int absolute_components(components *out, const char *path)
{
    *out = (components){ 0 };
    if (path[0] == '/') {
        split(out, path);
        return 0;
    }
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return err_set(DR_EFAIL, "cannot read the working directory: %s", strerror(errno));
    char *whole = xasprintf("%s/%s", cwd, path);
    split(out, whole);
    free(whole);
    free(cwd);
    return 0;
}

/* The components with ".." applied to what comes before them, as text. */
static char *lexical(const components *c)
{
    components kept = { 0 };
    for (size_t i = 0; i < c->count; i++) {
        if (strcmp(c->items[i], "..") != 0) {
            components_push(&kept, c->items[i], strlen(c->items[i]));
        } else if (kept.count > 0) {
            free(kept.items[--kept.count]);
        }
    }
    char *text = join("", &kept, 0, kept.count);
    components_dispose(&kept);
    return text;
}

/* realpath of the deepest existing ancestor, then the rest of the path.
 * An entry that exists but cannot be followed (a symlink to nothing) is
 * refused: what it would become once its target appears is unknown. */
static int resolve(char **out, const char *path)
{
    *out = NULL;
    components c;
    int rc = absolute_components(&c, path);
    if (rc)
        return rc;
    size_t k = c.count;
    char *base = NULL;
    for (;; k--) {
        char *prefix = join("", &c, 0, k);
        base = realpath(prefix, NULL);
        int saved = errno;
        struct stat st;
        int exists = !base && lstat(prefix, &st) == 0;
        free(prefix);
        if (base)
            break;
        if (exists && (saved == ENOENT || saved == ELOOP)) {
            char *shown = join("", &c, 0, k);
            rc = err_set(DR_EUSAGE, "%s goes through the symlink %s, whose target does not exist: it is not "
                         "followed", path, shown);
            free(shown);
            goto cleanup;
        }
        if (saved != ENOENT && saved != ENOTDIR) {
            rc = err_set(DR_EFAIL, "cannot resolve %s: %s", path, strerror(saved));
            goto cleanup;
        }
    }
    components rest = { .items = c.items + k, .count = c.count - k };
    char *tail = lexical(&rest);
    *out = strcmp(base, "/") == 0 ? xstrdup(tail) : strcmp(tail, "/") == 0 ? xstrdup(base)
                                                                            : xasprintf("%s%s", base, tail);
    free(tail);
    free(base);
cleanup:
    components_dispose(&c);
    return rc;
}

/* ---- the allowed folders ------------------------------------------------------------------ */

void confine_roots_dispose(confine_roots *roots)
{
    for (size_t i = 0; i < roots->count; i++)
        free(roots->folders[i]);
    free(roots->folders);
    roots->folders = NULL;
    roots->count = 0;
}

/* path is folder itself or lies inside it. */
static int is_within(const char *path, const char *folder)
{
    size_t len = strlen(folder);
    if (strcmp(folder, "/") == 0)
        return path[0] == '/';
    return strncmp(path, folder, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

int confine_roots_add(confine_roots *roots, const char *path)
{
    if (!path || !*path)
        return err_set(DR_EUSAGE, "an empty path names no folder");
    char *folder;
    int rc = resolve(&folder, path);
    if (rc)
        return rc;
    struct stat st;
    if (stat(folder, &st) == 0 && !S_ISDIR(st.st_mode)) {
        char *slash = strrchr(folder, '/');
        if (slash == folder)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    for (size_t i = 0; i < roots->count; i++)
        if (strcmp(roots->folders[i], folder) == 0) {
            free(folder);
            return 0;
        }
    roots->folders = xrealloc(roots->folders, (roots->count + 1) * sizeof *roots->folders);
    roots->folders[roots->count++] = folder;
    return 0;
}

char *confine_roots_describe(const confine_roots *roots)
{
    if (roots->count == 0)
        return xstrdup("none (file access is for a run's steps, inside the folders of its params of type "
                       "\"path\" and files.run_folder())");
    buf b = BUF_INIT;
    for (size_t i = 0; i < roots->count; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", roots->folders[i]);
    return buf_detach(&b);
}

/* ---- checking a path ---------------------------------------------------------------------- */

static const char *root_containing(const confine_roots *roots, const char *path)
{
    for (size_t i = 0; i < roots->count; i++)
        if (is_within(path, roots->folders[i]))
            return roots->folders[i];
    return NULL;
}

static int refuse(const confine_roots *roots, const char *fmt_path_why, const char *path, const char *detail)
{
    char *allowed = confine_roots_describe(roots);
    char *why = xasprintf(fmt_path_why, path, detail ? detail : "");
    int rc = err_set(DR_EUSAGE, "%s. Allowed folders: %s (a run is given a folder by a param of type \"path\"; "
                     "files.run_folder() is its own)", why, allowed);
    free(why);
    free(allowed);
    return rc;
}

/* Outside every folder: through a symlink when the path as written was inside. */
static int refuse_outside(const confine_roots *roots, const char *path, const char *resolved)
{
    components c;
    if (absolute_components(&c, path) != 0)
        return DR_EFAIL;
    char *written = lexical(&c);
    components_dispose(&c);
    int via_link = root_containing(roots, written) != NULL;
    free(written);
    if (via_link)
        return refuse(roots, "%s leads through a symlink to %s, outside the allowed folders", path, resolved);
    return refuse(roots, "%s lies outside every folder this run may use%s", path, NULL);
}

static int refuse_removal(const confine_roots *roots, const char *path, const char *resolved)
{
    for (size_t i = 0; i < roots->count; i++) {
        if (strcmp(roots->folders[i], resolved) == 0)
            return refuse(roots, "%s is one of the folders this run may use: deleting it is refused (delete "
                          "what is in it)%s", path, NULL);
        if (is_within(roots->folders[i], resolved))
            return refuse(roots, "%s holds %s, a folder this run may use: deleting it is refused", path,
                          roots->folders[i]);
    }
    return 0;
}

int confine_check(char **resolved, const confine_roots *roots, const char *path, confine_purpose purpose)
{
    *resolved = NULL;
    if (!path || !*path)
        return refuse(roots, "an empty path%s%s", "", NULL);
    components c;
    split(&c, path);
    int dotdot = has_dotdot(&c);
    components_dispose(&c);
    if (dotdot)
        return refuse(roots, "%s has a '..' component: paths are refused that climb out of a folder%s", path,
                      NULL);
    char *real;
    int rc = resolve(&real, path);
    if (rc)
        return rc == DR_EUSAGE ? refuse(roots, "%s%s", err_last(), NULL) : rc;
    if (!root_containing(roots, real))
        rc = refuse_outside(roots, path, real);
    else if (purpose == CONFINE_REMOVE)
        rc = refuse_removal(roots, path, real);
    if (rc) {
        free(real);
        return rc;
    }
    *resolved = real;
    return 0;
}
