#include "runindex.h"

#include "err.h"
#include "fsio.h"
#include "jsonfield.h"
#include "runpath.h"
#include "runs.h"

#include <cjson/cJSON.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *cache_path(const char *audit_dir)
{
    return xasprintf("%s/.git/drctl/open-runs", audit_dir);
}

static void drop(str_list *l, const char *id)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i], id) == 0) {
            free(l->items[i]);
            l->items[i] = l->items[--l->count];
            return;
        }
}

static int ended(const char *status)
{
    return !strcmp(status, "done") || !strcmp(status, "aborted");
}

/* ---- the cache file ------------------------------------------------------------ */

/* "head <hex>\n" then one id a line; 0 when it reads whole. */
static int read_cache(git_oid *head, str_list *open, const char *path)
{
    char *text = NULL;
    if (fsio_read_file(&text, NULL, path) != 0)
        return -1;
    int rc = -1;
    char *line = text, *nl = strchr(line, '\n');
    if (nl && strncmp(line, "head ", 5) == 0 && nl - line == 5 + GIT_OID_HEXSZ) {
        *nl = '\0';
        rc = git_oid_fromstr(head, line + 5) == 0 ? 0 : -1;
        for (line = nl + 1; rc == 0 && *line; line = nl + 1) {
            if (!(nl = strchr(line, '\n'))) {
                rc = -1; /* torn */
                break;
            }
            *nl = '\0';
            if (runs_valid_id(line))
                str_list_add_unique(open, line);
        }
    }
    free(text);
    if (rc)
        str_list_dispose(open);
    return rc;
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Best effort: a trail read by someone who may not write its .git stays
 * readable, its cache just is not kept. */
static void write_cache(const char *path, const git_oid *head, const str_list *open)
{
    buf b = BUF_INIT;
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, head);
    buf_printf(&b, "head %s\n", hex);
    for (size_t i = 0; i < open->count; i++)
        buf_printf(&b, "%s\n", open->items[i]);
    char *dir = fsio_dirname(path);
    char *git_dir = fsio_dirname(dir);
    /* .git/drctl exists once drctl has written to the trail; a clone
     * read first by status gets it here */
    if (fsio_is_dir(git_dir) && (fsio_is_dir(dir) || fsio_mkdirs(dir, 0755) == 0))
        (void)fsio_write_durable(path, buf_cstr(&b), b.len);
    err_clear();
    free(git_dir);
    free(dir);
    buf_dispose(&b);
}

/* ---- from the working tree ---------------------------------------------------------- */

static void rebuild(str_list *open, const char *audit_dir)
{
    runpath_entry *runs;
    size_t count;
    runpath_list(&runs, &count, audit_dir);
    for (size_t i = 0; i < count; i++) {
        char *path = xasprintf("%s/%s/state.json", audit_dir, runs[i].folder);
        char *text = NULL;
        cJSON *state = fsio_read_file(&text, NULL, path) == 0 ? cJSON_Parse(text) : NULL;
        /* a run whose state cannot be read is one to look at */
        if (!ended(json_text(state, "status", "?")))
            str_list_push(open, runs[i].run_id);
        cJSON_Delete(state);
        free(text);
        free(path);
    }
    runpath_list_free(runs, count);
}

/* ---- from the commits since --------------------------------------------------------- */

/* The status in the commit's state.json of run_id, or "?". */
static char *status_at(git_repository *repo, git_commit *commit, const char *run_id)
{
    git_tree *tree = NULL;
    git_tree_entry *entry = NULL;
    git_blob *blob = NULL;
    char *status = NULL;
    char *folder = git_commit_tree(&tree, commit) == 0 ? runpath_in_tree(repo, tree, run_id) : NULL;
    char *path = folder ? xasprintf("%s/state.json", folder) : NULL;
    if (path && git_tree_entry_bypath(&entry, tree, path) == 0 &&
        git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) == 0) {
        cJSON *state = cJSON_ParseWithLength(git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
        status = xstrdup(json_text(state, "status", "?"));
        cJSON_Delete(state);
    }
    git_blob_free(blob);
    git_tree_entry_free(entry);
    git_tree_free(tree);
    free(path);
    free(folder);
    return status ? status : xstrdup("?");
}

/* One commit's change to the set: "<id>: ..." opens id, "<id>: run done"
 * and "<id>: run aborted" end it (unless a step named "run" made them:
 * then its state.json says so). */
static void apply_commit(str_list *open, git_repository *repo, git_commit *commit)
{
    const char *message = git_commit_message(commit);
    const char *colon = strstr(message, ": ");
    if (!colon || !strncmp(message, "config: ", 8) || !strncmp(message, "notify: ", 8))
        return;
    char *id = xstrndup(message, (size_t)(colon - message));
    const char *what = colon + 2;
    if (runs_valid_id(id)) {
        int end = !strncmp(what, "run done", 8) || !strncmp(what, "run aborted", 11);
        char *status = end ? status_at(repo, commit, id) : NULL;
        if (status && ended(status))
            drop(open, id);
        else
            str_list_add_unique(open, id);
        free(status);
    }
    free(id);
}

/* Brings open from the commit since up to head; -1 when since is not an
 * ancestor of head (or the history cannot be walked). */
static int walk_since(str_list *open, git_repository *repo, const git_oid *since, const git_oid *head)
{
    git_revwalk *walk = NULL;
    if (git_graph_descendant_of(repo, head, since) != 1 || git_revwalk_new(&walk, repo) != 0)
        return -1;
    int rc = git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE) == 0 &&
                     git_revwalk_push(walk, head) == 0 && git_revwalk_hide(walk, since) == 0
                 ? 0
                 : -1;
    git_oid oid;
    while (rc == 0 && git_revwalk_next(&oid, walk) == 0) {
        git_commit *commit = NULL;
        if (git_commit_lookup(&commit, repo, &oid) != 0)
            rc = -1;
        else
            apply_commit(open, repo, commit);
        git_commit_free(commit);
    }
    git_revwalk_free(walk);
    return rc;
}

void runindex_open_runs(str_list *out, const char *audit_dir)
{
    *out = (str_list){ 0 };
    git_repository *repo = NULL;
    git_oid head, since;
    char *path = cache_path(audit_dir);
    int have_head = git_repository_open_ext(&repo, audit_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0 &&
                    git_reference_name_to_id(&head, repo, "HEAD") == 0;
    int cached = read_cache(&since, out, path) == 0;
    if (!have_head || !cached || (!git_oid_equal(&since, &head) && walk_since(out, repo, &since, &head) != 0)) {
        str_list_dispose(out);
        rebuild(out, audit_dir);
    }
    if (out->count > 1)
        qsort(out->items, out->count, sizeof *out->items, compare_ids);
    if (have_head && (!cached || !git_oid_equal(&since, &head)))
        write_cache(path, &head, out);
    git_repository_free(repo);
    free(path);
}
