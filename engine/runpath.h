/* runpath: where a run's folder is in the audit trail.
 *
 * A run lives in runs/YYYY/MM/DD/<run-id>/, the UTC day its id begins with
 * (ids are made as 20260111T143000Z-...), or for an id chosen with
 * --run-id that does not, the day the run was started. A chosen id that
 * begins with another day than today's is refused (cli.c), so a run's
 * folder is always the day it started, give or take one: status --since
 * and the most recent runs go by it. Each commit then
 * rewrites a handful of small trees (the runs of one day, the days of one
 * month...) instead of one tree listing every run ever made, so it costs
 * the same in a trail of a hundred runs and of a hundred thousand.
 *
 * Trails written before kept every run in runs/<run-id>/. Those folders
 * are read as they are, never moved: a run found there stays there, and
 * new runs go to the dated folders beside them. */
#ifndef DRCTL_RUNPATH_H
#define DRCTL_RUNPATH_H

#include <git2.h>
#include <stddef.h>

/* The top folder of every run. */
#define RUNPATH_TOP "runs"

/* The files drctl writes in a run's folder, NULL-terminated. */
extern const char *const runpath_files[];
/* 1 when name is one of them. */
int runpath_is_run_file(const char *name);

/* "YYYY/MM/DD" of the day an id begins with into day (11 bytes), 0; -1
 * when the id does not begin with a valid date and 'T'. */
int runpath_day_of_id(char day[11], const char *run_id);

/* 1 when day ("YYYY/MM/DD") is today's UTC date, or the day before or
 * after it (a run started at midnight, a clock a little off). */
int runpath_day_is_about_today(const char day[11]);

/* The folder, relative to the trail's root, of a run already in the
 * working tree of audit_dir, or NULL when there is none. */
char *runpath_find(const char *audit_dir, const char *run_id);

/* The folder of run_id relative to the trail's root: where it is, or
 * where a new run of that id goes (the day of its id, else today). */
char *runpath_of(const char *audit_dir, const char *run_id);

/* The same, as an absolute path under audit_dir. */
char *runpath_abs(const char *audit_dir, const char *run_id);

/* One run folder of a listing. */
typedef struct runpath_entry {
    char *run_id;
    char *folder; /* relative to the trail's root */
    char day[11]; /* runpath_filed_day's */
} runpath_entry;

/* Every run folder of the working tree, in both layouts, oldest first: by
 * the day it is filed under, then by id (ids begin with their start time).
 * A folder of the old layout counts under its id's day, an undated one
 * before every day. */
void runpath_list(runpath_entry **out, size_t *count, const char *audit_dir);
void runpath_list_free(runpath_entry *entries, size_t count);

/* "YYYY/MM/DD" of the day a listed folder is filed under: a folder of the
 * old layout counts under its id's day, or "" for an undated id. */
void runpath_filed_day(char day[11], const runpath_entry *entry);

/* A path relative to the trail's root split into its run and the rest:
 * for "runs/2026/01/11/<id>/journal.jsonl" or "runs/<id>/journal.jsonl",
 * *id and *id_len name <id> and *rest points at "journal.jsonl" (or at ""
 * when the path is the folder itself). 0 when the path is inside a run's
 * folder, -1 when it is not (a stray file in runs/ or a day folder). */
int runpath_split(const char *path, const char **id, size_t *id_len, const char **rest);

/* The folder of run_id in a commit's tree (relative to the root), or NULL
 * when the tree holds no such run. */
char *runpath_in_tree(git_repository *repo, git_tree *root, const char *run_id);

#endif
