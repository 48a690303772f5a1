#include "runpath.h"

#include "buf.h"
#include "fsio.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const runpath_files[] = { "run.json", "journal.jsonl", "state.json", "report.md", NULL };

int runpath_is_run_file(const char *name)
{
    for (int i = 0; runpath_files[i]; i++)
        if (strcmp(name, runpath_files[i]) == 0)
            return 1;
    return 0;
}

/* ---- names ------------------------------------------------------------------ */

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* A folder name of the dated layout: n digits exactly. */
static int is_date_part(const char *name, size_t n)
{
    return strlen(name) == n && all_digits(name, n);
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int runpath_day_of_id(char day[11], const char *run_id)
{
    if (strlen(run_id) < 9 || !all_digits(run_id, 8) || run_id[8] != 'T')
        return -1;
    int y = (run_id[0] - '0') * 1000 + (run_id[1] - '0') * 100 + (run_id[2] - '0') * 10 + (run_id[3] - '0');
    int m = (run_id[4] - '0') * 10 + (run_id[5] - '0');
    int d = (run_id[6] - '0') * 10 + (run_id[7] - '0');
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > days[m - 1] + (m == 2 && is_leap(y)))
        return -1;
    memcpy(day, run_id, 4);
    day[4] = '/';
    memcpy(day + 5, run_id + 4, 2);
    day[7] = '/';
    memcpy(day + 8, run_id + 6, 2);
    day[10] = '\0';
    return 0;
}

static void day_at(char day[11], time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, 11, "%Y/%m/%d", &tm);
}

static void today(char day[11])
{
    day_at(day, time(NULL));
}

int runpath_day_is_about_today(const char day[11])
{
    time_t now = time(NULL);
    char around[11];
    for (int d = -1; d <= 1; d++) {
        day_at(around, now + d * 86400);
        if (strcmp(around, day) == 0)
            return 1;
    }
    return 0;
}

int runpath_split(const char *path, const char **id, size_t *id_len, const char **rest)
{
    size_t top = strlen(RUNPATH_TOP);
    if (strncmp(path, RUNPATH_TOP, top) != 0 || path[top] != '/')
        return -1;
    const char *p = path + top + 1;
    /* Dated: 4 digits / 2 digits / 2 digits / id; a folder of the old
     * layout holds only files, so it never has this shape. */
    if (all_digits(p, 4) && p[4] == '/' && all_digits(p + 5, 2) && p[7] == '/' && all_digits(p + 8, 2) &&
        p[10] == '/' && p[11] != '\0' && p[11] != '/')
        p += 11;
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len == 0)
        return -1;
    *id = p;
    *id_len = len;
    *rest = slash ? slash + 1 : p + len;
    return 0;
}

/* ---- the working tree ---------------------------------------------------------- */

/* A folder of the old layout, runs/<id>/, holding a run's files. */
static int is_flat_run(const char *audit_dir, const char *run_id)
{
    char *info = xasprintf("%s/%s/%s/run.json", audit_dir, RUNPATH_TOP, run_id);
    char *journal = xasprintf("%s/%s/%s/journal.jsonl", audit_dir, RUNPATH_TOP, run_id);
    int found = fsio_exists(info) || fsio_exists(journal);
    free(info);
    free(journal);
    return found;
}

/* The names of the sub-folders of dir that are n digits, sorted. */
static void date_folders(char ***names, size_t *count, const char *dir, size_t n)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (is_date_part(e->d_name, n)) {
            *names = xrealloc(*names, (*count + 1) * sizeof **names);
            (*names)[(*count)++] = xstrdup(e->d_name);
        }
    closedir(d);
}

static void free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* Calls visit(day_folder, arg) for every runs/YYYY/MM/DD of the working
 * tree, until it returns non-zero (which is returned). */
static int each_day(const char *audit_dir, int (*visit)(const char *day, void *arg), void *arg)
{
    char **years, **months, **days;
    size_t ny, nm, nd;
    int stop = 0;
    char *top = xasprintf("%s/%s", audit_dir, RUNPATH_TOP);
    date_folders(&years, &ny, top, 4);
    for (size_t y = 0; y < ny && !stop; y++) {
        char *year = xasprintf("%s/%s", top, years[y]);
        if (!is_flat_run(audit_dir, years[y])) {
            date_folders(&months, &nm, year, 2);
            for (size_t m = 0; m < nm && !stop; m++) {
                char *month = xasprintf("%s/%s", year, months[m]);
                date_folders(&days, &nd, month, 2);
                for (size_t d = 0; d < nd && !stop; d++) {
                    char *day = xasprintf("%s/%s/%s/%s", RUNPATH_TOP, years[y], months[m], days[d]);
                    stop = visit(day, arg);
                    free(day);
                }
                free_names(days, nd);
                free(month);
            }
            free_names(months, nm);
        }
        free(year);
    }
    free_names(years, ny);
    free(top);
    return stop;
}

typedef struct finding {
    const char *audit_dir;
    const char *run_id;
    char *found;
} finding;

static int look_in_day(const char *day, void *arg)
{
    finding *f = arg;
    char *folder = xasprintf("%s/%s", day, f->run_id);
    char *abs = xasprintf("%s/%s", f->audit_dir, folder);
    int here = fsio_is_dir(abs);
    free(abs);
    if (here)
        f->found = folder;
    else
        free(folder);
    return here;
}

char *runpath_find(const char *audit_dir, const char *run_id)
{
    if (is_flat_run(audit_dir, run_id))
        return xasprintf("%s/%s", RUNPATH_TOP, run_id);
    char day[11];
    if (runpath_day_of_id(day, run_id) == 0) {
        char *folder = xasprintf("%s/%s/%s", RUNPATH_TOP, day, run_id);
        char *abs = xasprintf("%s/%s", audit_dir, folder);
        int here = fsio_is_dir(abs);
        free(abs);
        if (here)
            return folder;
        free(folder);
        return NULL; /* an id with a date is only ever filed under it */
    }
    finding f = { audit_dir, run_id, NULL };
    each_day(audit_dir, look_in_day, &f);
    return f.found;
}

char *runpath_of(const char *audit_dir, const char *run_id)
{
    char *found = runpath_find(audit_dir, run_id);
    if (found)
        return found;
    char day[11];
    if (runpath_day_of_id(day, run_id) != 0)
        today(day);
    return xasprintf("%s/%s/%s", RUNPATH_TOP, day, run_id);
}

char *runpath_abs(const char *audit_dir, const char *run_id)
{
    char *folder = runpath_of(audit_dir, run_id);
    char *abs = xasprintf("%s/%s", audit_dir, folder);
    free(folder);
    return abs;
}

/* ---- listing -------------------------------------------------------------------- */

typedef struct listing {
    runpath_entry *entries;
    size_t count, capacity;
    const char *audit_dir;
} listing;

static void day_of_folder(char day[11], const char *folder, const char *run_id)
{
    const char *p = folder + strlen(RUNPATH_TOP) + 1;
    if (strchr(p, '/'))
        snprintf(day, 11, "%.10s", p);
    else if (runpath_day_of_id(day, run_id) != 0)
        day[0] = '\0';
}

static void add_entry(listing *l, const char *run_id, char *folder)
{
    if (l->count == l->capacity)
        l->entries = xrealloc(l->entries, (l->capacity = l->capacity ? l->capacity * 2 : 256) * sizeof *l->entries);
    runpath_entry *e = &l->entries[l->count++];
    *e = (runpath_entry){ xstrdup(run_id), folder, "" };
    day_of_folder(e->day, folder, run_id);
}

static int list_day(const char *day, void *arg)
{
    listing *l = arg;
    char *abs = xasprintf("%s/%s", l->audit_dir, day);
    DIR *d = opendir(abs);
    free(abs);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            add_entry(l, e->d_name, xasprintf("%s/%s", day, e->d_name));
    closedir(d);
    return 0;
}

void runpath_filed_day(char day[11], const runpath_entry *e)
{
    memcpy(day, e->day, 11);
}

static int compare_entries(const void *a, const void *b)
{
    const runpath_entry *x = a, *y = b;
    int c = strcmp(x->day, y->day);
    return c ? c : strcmp(x->run_id, y->run_id);
}

void runpath_list(runpath_entry **out, size_t *count, const char *audit_dir)
{
    listing l = { NULL, 0, 0, audit_dir };
    char *top = xasprintf("%s/%s", audit_dir, RUNPATH_TOP);
    DIR *d = opendir(top);
    free(top);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && (!is_date_part(e->d_name, 4) || is_flat_run(audit_dir, e->d_name)))
                add_entry(&l, e->d_name, xasprintf("%s/%s", RUNPATH_TOP, e->d_name));
        closedir(d);
        each_day(audit_dir, list_day, &l);
    }
    if (l.count > 1) /* no run leaves entries NULL, which qsort may not take */
        qsort(l.entries, l.count, sizeof *l.entries, compare_entries);
    *out = l.entries;
    *count = l.count;
}

void runpath_list_free(runpath_entry *entries, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(entries[i].run_id);
        free(entries[i].folder);
    }
    free(entries);
}

/* ---- a commit's tree ------------------------------------------------------------ */

/* The sub-tree at path in root, or NULL. */
static git_tree *subtree(git_repository *repo, git_tree *root, const char *path)
{
    git_tree_entry *entry = NULL;
    git_tree *tree = NULL;
    if (git_tree_entry_bypath(&entry, root, path) == 0 && git_tree_entry_type(entry) == GIT_OBJECT_TREE)
        git_tree_lookup(&tree, repo, git_tree_entry_id(entry));
    git_tree_entry_free(entry);
    return tree;
}

static int tree_is_flat_run(git_tree *folder)
{
    return folder && (git_tree_entry_byname(folder, "run.json") || git_tree_entry_byname(folder, "journal.jsonl"));
}

/* The undated id's folder among every day of the tree's runs/. */
static char *scan_tree_days(git_repository *repo, git_tree *runs, const char *run_id)
{
    char *found = NULL;
    for (size_t y = 0; !found && y < git_tree_entrycount(runs); y++) {
        const char *year = git_tree_entry_name(git_tree_entry_byindex(runs, y));
        git_tree *years = is_date_part(year, 4) ? subtree(repo, runs, year) : NULL;
        for (size_t m = 0; years && !tree_is_flat_run(years) && !found && m < git_tree_entrycount(years); m++) {
            const char *month = git_tree_entry_name(git_tree_entry_byindex(years, m));
            git_tree *months = is_date_part(month, 2) ? subtree(repo, years, month) : NULL;
            for (size_t d = 0; months && !found && d < git_tree_entrycount(months); d++) {
                const char *day = git_tree_entry_name(git_tree_entry_byindex(months, d));
                git_tree *days = is_date_part(day, 2) ? subtree(repo, months, day) : NULL;
                if (days && git_tree_entry_byname(days, run_id))
                    found = xasprintf("%s/%s/%s/%s/%s", RUNPATH_TOP, year, month, day, run_id);
                git_tree_free(days);
            }
            git_tree_free(months);
        }
        git_tree_free(years);
    }
    return found;
}

char *runpath_in_tree(git_repository *repo, git_tree *root, const char *run_id)
{
    char *found = NULL;
    git_tree *runs = root ? subtree(repo, root, RUNPATH_TOP) : NULL;
    if (!runs)
        return NULL;
    git_tree *flat = subtree(repo, runs, run_id);
    char day[11];
    if (tree_is_flat_run(flat)) {
        found = xasprintf("%s/%s", RUNPATH_TOP, run_id);
    } else if (runpath_day_of_id(day, run_id) == 0) {
        char *inside = xasprintf("%s/%s", day, run_id);
        git_tree *dated = subtree(repo, runs, inside);
        if (dated)
            found = xasprintf("%s/%s", RUNPATH_TOP, inside);
        git_tree_free(dated);
        free(inside);
    } else {
        found = scan_tree_days(repo, runs, run_id);
    }
    git_tree_free(flat);
    git_tree_free(runs);
    return found;
}
