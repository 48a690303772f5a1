/* runpath: where a run's folder is, in both layouts of the trail. */
#include "test.h"

#include "buf.h"
#include "fsio.h"
#include "runpath.h"

#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void a_run_id_gives_the_day_it_begins_with_when_that_is_a_date(void)
{
    char day[11];
    CHECK(runpath_day_of_id(day, "20260111T143000Z-restore-7f3a") == 0);
    CHECK_STR(day, "2026/01/11");
    CHECK(runpath_day_of_id(day, "20240229T000000Z-x") == 0); /* a leap day */
    CHECK_STR(day, "2024/02/29");
    CHECK(runpath_day_of_id(day, "20230229T000000Z-x") == -1);
    CHECK(runpath_day_of_id(day, "20261301T000000Z-x") == -1);
    CHECK(runpath_day_of_id(day, "20260100T000000Z-x") == -1);
    CHECK(runpath_day_of_id(day, "20260431T000000Z-x") == -1);
    CHECK(runpath_day_of_id(day, "19691231T000000Z-x") == -1);
    CHECK(runpath_day_of_id(day, "20260111-x") == -1); /* no 'T' */
    CHECK(runpath_day_of_id(day, "nightly") == -1);
    CHECK(runpath_day_of_id(day, "2026") == -1);
}

static void a_path_in_runs_splits_into_its_run_and_file_in_both_layouts(void)
{
    const char *id, *rest;
    size_t len;
    CHECK(runpath_split("runs/2026/01/11/r-1/journal.jsonl", &id, &len, &rest) == 0);
    CHECK(len == 3 && strncmp(id, "r-1", 3) == 0);
    CHECK_STR(rest, "journal.jsonl");
    CHECK(runpath_split("runs/r-1/state.json", &id, &len, &rest) == 0);
    CHECK(len == 3 && strncmp(id, "r-1", 3) == 0);
    CHECK_STR(rest, "state.json");
    /* a run of the old layout whose id is all digits holds files only */
    CHECK(runpath_split("runs/2026/run.json", &id, &len, &rest) == 0);
    CHECK(len == 4 && strncmp(id, "2026", 4) == 0);
    CHECK_STR(rest, "run.json");
    CHECK(runpath_split("runs/2026/01/11/r-1", &id, &len, &rest) == 0);
    CHECK_STR(rest, "");
    /* a stray file: its "rest" is not a run file */
    CHECK(runpath_split("runs/2026/13/notes.json", &id, &len, &rest) == 0);
    CHECK(!runpath_is_run_file(rest));
    CHECK(runpath_split("notifications/x.json", &id, &len, &rest) == -1);
    CHECK(runpath_split("runs", &id, &len, &rest) == -1);
    CHECK(runpath_split("runs/", &id, &len, &rest) == -1);
}

static char *trail(const char *name)
{
    char *dir = xasprintf("%s/runpath-%s", test_tmpdir(), name);
    fsio_remove_tree(dir);
    return dir;
}

static void make_file(const char *dir, const char *relpath)
{
    char *path = xasprintf("%s/%s", dir, relpath);
    char *parent = fsio_dirname(path);
    fsio_mkdirs(parent, 0755);
    fsio_write_durable(path, "{}\n", 3);
    free(parent);
    free(path);
}

static void today_of(char day[11])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(day, 11, "%Y/%m/%d", &tm);
}

static void a_run_is_found_where_it_was_filed_and_a_new_one_goes_to_its_day(void)
{
    char *dir = trail("find");
    make_file(dir, "runs/20250101T000000Z-flat/run.json");           /* the old layout */
    make_file(dir, "runs/2026/01/11/20260111T143000Z-dated/journal.jsonl");
    make_file(dir, "runs/2020/02/29/nightly/journal.jsonl");         /* an undated id, filed long ago */
    make_file(dir, "runs/2026/run.json");                            /* an old run whose id is a year */
    char *p = runpath_find(dir, "20250101T000000Z-flat");
    CHECK_STR(p, "runs/20250101T000000Z-flat");
    free(p);
    p = runpath_find(dir, "20260111T143000Z-dated");
    CHECK_STR(p, "runs/2026/01/11/20260111T143000Z-dated");
    free(p);
    p = runpath_find(dir, "nightly");
    CHECK_STR(p, "runs/2020/02/29/nightly");
    free(p);
    p = runpath_find(dir, "2026");
    CHECK_STR(p, "runs/2026");
    free(p);
    CHECK(runpath_find(dir, "20260111T150000Z-other") == NULL);
    CHECK(runpath_find(dir, "absent") == NULL);
    p = runpath_of(dir, "20260111T150000Z-other");
    CHECK_STR(p, "runs/2026/01/11/20260111T150000Z-other");
    free(p);
    char day[11];
    today_of(day);
    char *expected = xasprintf("runs/%s/absent", day);
    p = runpath_of(dir, "absent");
    CHECK_STR(p, expected);
    free(p);
    free(expected);
    free(dir);
}

static void every_run_of_both_layouts_is_listed_oldest_first(void)
{
    char *dir = trail("list");
    make_file(dir, "runs/20250101T000000Z-flat/run.json");
    make_file(dir, "runs/undated-flat/run.json");
    make_file(dir, "runs/2026/01/11/20260111T143000Z-b/journal.jsonl");
    make_file(dir, "runs/2026/01/11/20260111T120000Z-a/journal.jsonl");
    make_file(dir, "runs/2024/12/31/nightly/journal.jsonl");
    runpath_entry *runs;
    size_t count;
    runpath_list(&runs, &count, dir);
    CHECK(count == 5);
    if (count == 5) {
        CHECK_STR(runs[0].run_id, "undated-flat"); /* no day: the oldest */
        CHECK_STR(runs[1].run_id, "nightly");
        CHECK_STR(runs[1].folder, "runs/2024/12/31/nightly");
        CHECK_STR(runs[2].run_id, "20250101T000000Z-flat");
        CHECK_STR(runs[2].folder, "runs/20250101T000000Z-flat");
        CHECK_STR(runs[3].run_id, "20260111T120000Z-a");
        CHECK_STR(runs[4].run_id, "20260111T143000Z-b");
        CHECK_STR(runs[4].folder, "runs/2026/01/11/20260111T143000Z-b");
    }
    runpath_list_free(runs, count);
    char *empty = trail("empty");
    runpath_list(&runs, &count, empty);
    CHECK(count == 0);
    runpath_list_free(runs, count);
    free(empty);
    free(dir);
}

/* A tree holding the given paths (each a file "{}"). */
static git_tree *tree_of(git_repository *repo, const char *const *paths)
{
    git_treebuilder *empty = NULL;
    git_oid oid, blob;
    git_treebuilder_new(&empty, repo, NULL);
    git_treebuilder_write(&oid, empty);
    git_treebuilder_free(empty);
    git_tree *base = NULL, *tree = NULL;
    git_tree_lookup(&base, repo, &oid);
    git_blob_create_from_buffer(&blob, repo, "{}", 2);
    git_tree_update updates[8];
    size_t n = 0;
    for (; paths[n] && n < 8; n++)
        updates[n] = (git_tree_update){ GIT_TREE_UPDATE_UPSERT, blob, GIT_FILEMODE_BLOB, paths[n] };
    git_tree_create_updated(&oid, repo, base, n, updates);
    git_tree_lookup(&tree, repo, &oid);
    git_tree_free(base);
    return tree;
}

static void a_run_is_found_in_a_commits_tree_in_both_layouts(void)
{
    char *dir = trail("tree");
    git_repository *repo = NULL;
    CHECK(git_repository_init(&repo, dir, 0) == 0);
    static const char *const paths[] = { "runs/20250101T000000Z-flat/run.json",
                                         "runs/2026/01/11/20260111T143000Z-dated/journal.jsonl",
                                         "runs/2020/02/29/nightly/journal.jsonl", "config.json", NULL };
    git_tree *tree = tree_of(repo, paths);
    CHECK(tree);
    char *p = runpath_in_tree(repo, tree, "20250101T000000Z-flat");
    CHECK_STR(p, "runs/20250101T000000Z-flat");
    free(p);
    p = runpath_in_tree(repo, tree, "20260111T143000Z-dated");
    CHECK_STR(p, "runs/2026/01/11/20260111T143000Z-dated");
    free(p);
    p = runpath_in_tree(repo, tree, "nightly");
    CHECK_STR(p, "runs/2020/02/29/nightly");
    free(p);
    CHECK(runpath_in_tree(repo, tree, "20260111T000000Z-absent") == NULL);
    CHECK(runpath_in_tree(repo, tree, "absent") == NULL);
    git_tree_free(tree);
    git_repository_free(repo);
    free(dir);
}

TEST_SUITE(runpath)
{
    REGISTER(a_run_id_gives_the_day_it_begins_with_when_that_is_a_date);
    REGISTER(a_path_in_runs_splits_into_its_run_and_file_in_both_layouts);
    REGISTER(a_run_is_found_where_it_was_filed_and_a_new_one_goes_to_its_day);
    REGISTER(every_run_of_both_layouts_is_listed_oldest_first);
    REGISTER(a_run_is_found_in_a_commits_tree_in_both_layouts);
}
