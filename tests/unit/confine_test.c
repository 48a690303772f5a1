#include "test.h"

#include "buf.h"
#include "confine.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* TMP/name, with TMP's own symlinks resolved (as the allowed folders are). */
static char *in_tmp(const char *name)
{
    char *tmp = realpath(test_tmpdir(), NULL);
    char *path = xasprintf("%s%s%s", tmp, *name ? "/" : "", name);
    free(tmp);
    return path;
}

static void make_dir(const char *name)
{
    char *path = in_tmp(name);
    mkdir(path, 0755);
    free(path);
}

static void link_to(const char *target, const char *name)
{
    char *path = in_tmp(name);
    if (symlink(target, path) != 0)
        test_fail(__FILE__, __LINE__, "symlink", path);
    free(path);
}

/* Checks path against the one folder TMP/dest; returns the result code and
 * the resolved path in *resolved (NULL on refusal). */
static int check_in_dest(char **resolved, const char *path, confine_purpose purpose)
{
    confine_roots roots = CONFINE_ROOTS_INIT;
    char *dest = in_tmp("dest");
    int rc = confine_roots_add(&roots, dest);
    if (rc == 0)
        rc = confine_check(resolved, &roots, path, purpose);
    free(dest);
    confine_roots_dispose(&roots);
    return rc;
}

static void a_path_inside_the_folder_is_allowed_and_resolved(void)
{
    make_dir("dest");
    char *path = in_tmp("dest/./sub//file.txt"), *want = in_tmp("dest/sub/file.txt"), *resolved;
    CHECK(check_in_dest(&resolved, path, CONFINE_ACCESS) == 0);
    CHECK_STR(resolved, want);
    free(resolved);
    free(path);
    free(want);
}

static void an_absolute_path_outside_is_refused_naming_the_allowed_folder(void)
{
    make_dir("dest");
    char *resolved, *dest = in_tmp("dest");
    CHECK(check_in_dest(&resolved, "/etc/passwd", CONFINE_ACCESS) == DR_EUSAGE);
    CHECK(resolved == NULL);
    CHECK_CONTAINS(err_last(), "/etc/passwd lies outside every folder this run may use");
    CHECK_CONTAINS(err_last(), dest);
    free(dest);
}

static void a_dotdot_component_is_refused_even_when_it_stays_inside(void)
{
    make_dir("dest");
    make_dir("dest/a");
    char *path = in_tmp("dest/a/../b"), *resolved;
    CHECK(check_in_dest(&resolved, path, CONFINE_ACCESS) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "has a '..' component");
    free(path);
}

static void a_name_that_starts_like_the_folder_is_outside(void)
{
    make_dir("dest");
    make_dir("destination");
    char *path = in_tmp("destination/x"), *resolved;
    CHECK(check_in_dest(&resolved, path, CONFINE_ACCESS) == DR_EUSAGE);
    free(path);
}

static void a_symlink_leading_out_is_refused_wherever_it_is(void)
{
    make_dir("dest");
    link_to("/etc", "dest/etc");
    link_to("/etc/passwd", "dest/pw");
    char *through_dir = in_tmp("dest/etc/passwd"), *last = in_tmp("dest/pw"), *resolved;
    CHECK(check_in_dest(&resolved, through_dir, CONFINE_ACCESS) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "leads through a symlink to /etc/passwd");
    CHECK(check_in_dest(&resolved, last, CONFINE_ACCESS) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "leads through a symlink to /etc/passwd");
    free(through_dir);
    free(last);
}

static void a_symlink_that_stays_inside_resolves_to_its_target(void)
{
    make_dir("dest");
    make_dir("dest/real");
    link_to("real", "dest/alias");
    char *path = in_tmp("dest/alias/new.txt"), *want = in_tmp("dest/real/new.txt"), *resolved;
    CHECK(check_in_dest(&resolved, path, CONFINE_ACCESS) == 0);
    CHECK_STR(resolved, want);
    free(resolved);
    free(path);
    free(want);
}

static void a_symlink_to_nothing_is_not_followed(void)
{
    make_dir("dest");
    link_to("/nonexistent-drctl-target/x", "dest/dangling");
    char *path = in_tmp("dest/dangling/file"), *resolved;
    CHECK(check_in_dest(&resolved, path, CONFINE_ACCESS) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "whose target does not exist");
    free(path);
}

static void deleting_an_allowed_folder_or_one_that_holds_it_is_refused(void)
{
    make_dir("dest");
    make_dir("dest/inner");
    confine_roots roots = CONFINE_ROOTS_INIT;
    char *dest = in_tmp("dest"), *inner = in_tmp("dest/inner"), *resolved;
    CHECK(confine_roots_add(&roots, dest) == 0);
    CHECK(confine_roots_add(&roots, inner) == 0);
    CHECK(confine_check(&resolved, &roots, dest, CONFINE_REMOVE) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "is one of the folders this run may use");
    CHECK(confine_check(&resolved, &roots, inner, CONFINE_REMOVE) == DR_EUSAGE);
    char *file = in_tmp("dest/inner/x");
    CHECK(confine_check(&resolved, &roots, file, CONFINE_REMOVE) == 0);
    free(resolved);
    CHECK(confine_check(&resolved, &roots, dest, CONFINE_ACCESS) == 0);
    free(resolved);
    free(file);
    free(dest);
    free(inner);
    confine_roots_dispose(&roots);
}

static void a_folder_param_holding_a_file_allows_that_files_folder(void)
{
    make_dir("exports");
    const char *manifest = test_write_file("exports/m.json", "{}");
    confine_roots roots = CONFINE_ROOTS_INIT;
    CHECK(confine_roots_add(&roots, manifest) == 0);
    char *want = in_tmp("exports");
    CHECK(roots.count == 1);
    CHECK_STR(roots.folders[0], want);
    free(want);
    confine_roots_dispose(&roots);
}

static void relative_paths_are_taken_from_the_working_directory(void)
{
    make_dir("dest");
    char *was = getcwd(NULL, 0), *tmp = in_tmp(""), *want = in_tmp("dest/x.txt"), *resolved = NULL;
    CHECK(chdir(tmp) == 0);
    confine_roots roots = CONFINE_ROOTS_INIT;
    int added = confine_roots_add(&roots, "dest");
    int inside = confine_check(&resolved, &roots, "dest/x.txt", CONFINE_ACCESS);
    int outside = confine_check(&(char *){ NULL }, &roots, "x.txt", CONFINE_ACCESS);
    if (chdir(was) != 0)
        test_fail(__FILE__, __LINE__, "chdir back", was);
    CHECK(added == 0);
    CHECK(inside == 0);
    CHECK_STR(resolved, want);
    CHECK(outside == DR_EUSAGE);
    free(resolved);
    free(want);
    free(tmp);
    free(was);
    confine_roots_dispose(&roots);
}

static void with_no_folder_every_path_is_refused(void)
{
    confine_roots roots = CONFINE_ROOTS_INIT;
    char *resolved;
    CHECK(confine_check(&resolved, &roots, "/tmp/x", CONFINE_ACCESS) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "Allowed folders: none");
}

TEST_SUITE(confine)
{
    REGISTER(a_path_inside_the_folder_is_allowed_and_resolved);
    REGISTER(an_absolute_path_outside_is_refused_naming_the_allowed_folder);
    REGISTER(a_dotdot_component_is_refused_even_when_it_stays_inside);
    REGISTER(a_name_that_starts_like_the_folder_is_outside);
    REGISTER(a_symlink_leading_out_is_refused_wherever_it_is);
    REGISTER(a_symlink_that_stays_inside_resolves_to_its_target);
    REGISTER(a_symlink_to_nothing_is_not_followed);
    REGISTER(deleting_an_allowed_folder_or_one_that_holds_it_is_refused);
    REGISTER(a_folder_param_holding_a_file_allows_that_files_folder);
    REGISTER(relative_paths_are_taken_from_the_working_directory);
    REGISTER(with_no_folder_every_path_is_refused);
}
