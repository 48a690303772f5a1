#include "cmd_docs.h"

#include "cmd_list.h"

#include "buf.h"
#include "docs.h"
#include "err.h"
#include "fsio.h"
#include "session.h"
#include "term.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One rendered runbook, held until every page is made: nothing is written
 * when one runbook does not load. */
typedef struct page {
    char *name;
    char *version;
    char *summary;
    char *blob_id;
    char *file_name;   /* NAME.md */
    char *text;
} page;

static void page_dispose(page *p)
{
    free(p->name);
    free(p->version);
    free(p->summary);
    free(p->blob_id);
    free(p->file_name);
    free(p->text);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Loads the runbook (by name or path) without a target and renders its
 * page: plans that need the Neon API say so on the page. */
static int render_page(page *out, const cli *c, const char *name_or_path)
{
    memset(out, 0, sizeof *out);
    session s;
    int rc = session_load(&s, c, name_or_path, NULL, 0);
    if (rc)
        return rc;
    out->text = docs_render_runbook(s.rb, &s.host, base_name(s.rb->path));
    out->name = xstrdup(s.rb->name);
    out->version = xstrdup(s.rb->version);
    out->summary = xstrdup(s.rb->summary);
    out->blob_id = xstrdup(s.rb->blob_id);
    out->file_name = xasprintf("%s.md", s.rb->name);
    session_dispose(&s);
    return 0;
}

/* ---- every runbook on the search path --------------------------------------------------- */

static int page_named(const page *pages, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(pages[i].name, name) == 0)
            return 1;
    return 0;
}

typedef struct rendering {
    const cli *c;
    page *pages;
    size_t count;
    int bad;
} rendering;

static void render_one(const char *file, void *context)
{
    rendering *r = context;
    page p;
    if (render_page(&p, r->c, file) != 0) {
        term_error("%s", err_last());
        r->bad = 1;
    } else if (page_named(r->pages, r->count, p.name)) {
        page_dispose(&p);
    } else {
        r->pages = xrealloc(r->pages, (r->count + 1) * sizeof *r->pages);
        r->pages[r->count++] = p;
    }
}

/* Every runbook drctl list shows, in its order; one found earlier on the
 * search path shadows one of the same name further on. A runbook that does
 * not load is named, and *bad set. */
static void render_all(page **pages, size_t *count, int *bad, const cli *c)
{
    rendering r = { c, *pages, *count, *bad };
    cmd_list_each_runbook_file(c, render_one, &r);
    *pages = r.pages;
    *count = r.count;
    *bad = r.bad;
}

/* ---- writing ---------------------------------------------------------------------------- */

static int prepare_out_dir(const char *dir)
{
    if (!*dir)
        return err_set(DR_EUSAGE, "--out needs a folder");
    if (fsio_exists(dir) && !fsio_is_dir(dir))
        return err_set(DR_EUSAGE, "--out %s is a file, not a folder: give a folder (made when missing)", dir);
    if (fsio_mkdirs(dir, 0755) != 0)
        return err_set(DR_EUSAGE, "--out %s: cannot make the folder: %s", dir, err_last());
    return 0;
}

/* DIR/file_name, replaced atomically; file_name is a runbook's name (only
 * [a-z0-9-]) plus ".md", so it never leaves DIR. */
static int write_page(const char *dir, const char *file_name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, file_name);
    int rc = fsio_write_durable(path, text, strlen(text));
    if (rc)
        rc = err_set(DR_EFAIL, "cannot write %s: %s", path, err_last());
    else
        term_info("wrote %s", path);
    free(path);
    return rc;
}

static int write_index(const char *dir, const page *pages, size_t count)
{
    docs_entry *entries = xcalloc(count ? count : 1, sizeof *entries);
    for (size_t i = 0; i < count; i++)
        entries[i] = (docs_entry){ pages[i].name, pages[i].version, pages[i].summary, pages[i].blob_id,
                                   pages[i].file_name };
    char *index = docs_render_index(entries, count);
    int rc = write_page(dir, "index.md", index);
    free(index);
    free(entries);
    return rc;
}

static int output_pages(const cli *c, const page *pages, size_t count, int with_index)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (c->out_dir)
            rc = write_page(c->out_dir, pages[i].file_name, pages[i].text);
        else
            fputs(i ? "\n---\n\n" : "", stdout), fputs(pages[i].text, stdout);
    }
    if (rc == 0 && c->out_dir && with_index)
        rc = write_index(c->out_dir, pages, count);
    return rc;
}

int cmd_docs(cli *c)
{
    int rc = cli_expect_args(c, 0, 1, "[RUNBOOK] [--out DIR]");
    if (rc || (c->out_dir && (rc = prepare_out_dir(c->out_dir)) != 0))
        return rc;
    page *pages = NULL;
    size_t count = 0;
    int bad = 0;
    if (c->arg_count) {
        pages = xcalloc(1, sizeof *pages);
        if ((rc = render_page(&pages[0], c, c->args[0])) == 0)
            count = 1;
    } else {
        render_all(&pages, &count, &bad, c);
        if (bad)
            rc = err_set(DR_EUSAGE, "some runbooks do not load (shown above); nothing was written");
        else if (count == 0)
            rc = err_set(DR_EUSAGE, "no runbooks found on the search path (drctl list; --runbooks DIR adds a "
                         "folder)");
    }
    if (rc == 0)
        rc = output_pages(c, pages, count, c->arg_count == 0);
    for (size_t i = 0; i < count; i++)
        page_dispose(&pages[i]);
    free(pages);
    return rc;
}
