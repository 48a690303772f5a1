#include "test.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void a_durable_write_replaces_the_file_and_leaves_no_temporary(void)
{
    char *path = xasprintf("%s/state.json", test_tmpdir());
    CHECK(fsio_write_durable(path, "one", 3) == 0);
    CHECK(fsio_write_durable(path, "two!", 4) == 0);
    char *text;
    size_t len;
    CHECK(fsio_read_file(&text, &len, path) == 0);
    CHECK_STR(text, "two!");
    CHECK(len == 4);
    free(text);
    char *cmd = xasprintf("test $(ls -A '%s' | wc -l) -eq 1", test_tmpdir());
    CHECK(system(cmd) == 0);
    free(cmd);
    free(path);
}

/* Runs fsio_write_durable in a child whose files may not grow past a few
 * bytes, so the write of NEW fails part way, as on a full disk. root ignores
 * permissions but not RLIMIT_FSIZE, and the fork keeps the limit from
 * reaching the other tests. Returns the write's result code. */
static int write_durable_past_a_size_limit(const char *path, const char *new_text, rlim_t limit)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1000;
    if (pid == 0) {
        /* Without this the kernel kills the child instead of failing write(). */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = { limit, limit };
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(100);
        int rc = fsio_write_durable(path, new_text, strlen(new_text));
        _exit(rc == 0 ? 0 : rc == DR_EFAIL ? 1 : 2);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1000;
    switch (WEXITSTATUS(status)) {
    case 0:
        return 0;
    case 1:
        return DR_EFAIL;
    default:
        return -1000 - WEXITSTATUS(status);
    }
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void a_failed_write_keeps_the_old_content(void)
{
    char *dir = xasprintf("%s/failed-write", test_tmpdir());
    CHECK(fsio_mkdirs(dir, 0755) == 0);
    char *path = xasprintf("%s/state.json", dir);
    const char *old_text = "{\"old\": 1}";
    CHECK(fsio_write_durable(path, old_text, strlen(old_text)) == 0);
    /* The limit lets a few bytes of the new content through: a write in
     * place would leave the file cut and mixed, not the old one. */
    CHECK(write_durable_past_a_size_limit(path, "{\"new\": \"a longer content\"}", 4) == DR_EFAIL);
    char *text;
    size_t len;
    CHECK(fsio_read_file(&text, &len, path) == 0);
    CHECK(len == strlen(old_text) && memcmp(text, old_text, len) == 0);
    free(text);
    /* Nothing but the old file is left: no temporary beside it. */
    CHECK(count_entries(dir) == 1);
    free(path);
    free(dir);
}

static void mkdirs_creates_nested_directories(void)
{
    char *dir = xasprintf("%s/a/b/c", test_tmpdir());
    CHECK(fsio_mkdirs(dir, 0755) == 0);
    CHECK(fsio_is_dir(dir));
    CHECK(fsio_mkdirs(dir, 0755) == 0);
    free(dir);
}

static void remove_tree_removes_a_folder_but_not_what_its_links_point_to(void)
{
    char *outside = xasprintf("%s/outside", test_tmpdir());
    char *keep = xasprintf("%s/keep.txt", outside);
    char *tree = xasprintf("%s/tree/a/b", test_tmpdir());
    char *link = xasprintf("%s/link", tree);
    char *root = xasprintf("%s/tree", test_tmpdir());
    CHECK(fsio_mkdirs(outside, 0755) == 0 && fsio_mkdirs(tree, 0755) == 0);
    CHECK(fsio_write_durable(keep, "kept", 4) == 0);
    CHECK(symlink(outside, link) == 0);
    CHECK(fsio_remove_tree(root) == 0);
    CHECK(!fsio_exists(root));
    CHECK(fsio_exists(keep));
    CHECK(fsio_remove_tree(root) == 0); /* absent: nothing to do */
    CHECK(fsio_remove_tree(keep) == 0 && !fsio_exists(keep));
    free(outside);
    free(keep);
    free(tree);
    free(link);
    free(root);
}

TEST_SUITE(fsio)
{
    REGISTER(remove_tree_removes_a_folder_but_not_what_its_links_point_to);
    REGISTER(a_durable_write_replaces_the_file_and_leaves_no_temporary);
    REGISTER(a_failed_write_keeps_the_old_content);
    REGISTER(mkdirs_creates_nested_directories);
}
