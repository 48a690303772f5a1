#include "test.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void a_durable_write_replaces_the_file_and_leaves_no_temporary(void)
{
    char *path = xasprintf("%s/state.json", test_tmpdir());
    CHECK(fsio_write_durable(path, "one", 3) == 0);
    CHECK(fsio_write_durable(path, "two!", 4) == 0);
    char *text;
    size_t len;
    CHECK(fsio_read_file(path, &text, &len) == 0);
    CHECK_STR(text, "two!");
    CHECK(len == 4);
    free(text);
    char *cmd = xasprintf("test $(ls -A '%s' | wc -l) -eq 1", test_tmpdir());
    CHECK(system(cmd) == 0);
    free(cmd);
    free(path);
}

static void a_failed_write_keeps_the_old_content(void)
{
    if (geteuid() == 0) {
        /* root ignores directory permissions: use a full device instead. */
        char *text;
        CHECK(fsio_write_durable("/dev/full/x", "y", 1) != 0);
        (void)text;
        return;
    }
    char *dir = xasprintf("%s/ro", test_tmpdir());
    CHECK(fsio_mkdirs(dir, 0755) == 0);
    char *path = xasprintf("%s/state.json", dir);
    CHECK(fsio_write_durable(path, "old", 3) == 0);
    chmod(dir, 0555);
    CHECK(fsio_write_durable(path, "new", 3) == DR_EFAIL);
    chmod(dir, 0755);
    char *text;
    CHECK(fsio_read_file(path, &text, NULL) == 0);
    CHECK_STR(text, "old");
    free(text);
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

void register_fsio_tests(void)
{
    REGISTER(a_durable_write_replaces_the_file_and_leaves_no_temporary);
    REGISTER(a_failed_write_keeps_the_old_content);
    REGISTER(mkdirs_creates_nested_directories);
}
