/* Unit tests of the engine's C modules; prints one line a test and the
 * summary "unit: N passed, N failed". */
#include "test.h"

#include "buf.h"
#include "redact.h"
#include "runpath.h"

#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    test_fn fn;
} test_case;

static test_case *tests;
static int test_count;
static int current_failed;
static char tmpdir[256];

char *run_file_path(const char *audit_dir, const char *run_id, const char *name)
{
    char *folder = runpath_abs(audit_dir, run_id);
    char *path = xasprintf("%s/%s", folder, name);
    free(folder);
    return path;
}

void test_add(const char *name, test_fn fn)
{
    test_case *grown = realloc(tests, (size_t)(test_count + 1) * sizeof *tests);
    if (!grown) {
        perror("test_add");
        exit(2);
    }
    tests = grown;
    tests[test_count++] = (test_case){ name, fn };
}

void test_fail(const char *file, int line, const char *what, const char *detail)
{
    current_failed = 1;
    printf("    %s:%d: failed: %s%s%s\n", file, line, what, detail ? "\n      got: " : "", detail ? detail : "");
}

int test_failed_now(void)
{
    return current_failed;
}

const char *test_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/drctl-unit-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return tmpdir;
}

const char *test_write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    char *cmd = xasprintf("mkdir -p '%s'", path);
    if (system(cmd) != 0)
        exit(2);
    free(cmd);
    *slash = '/';
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void remove_tmpdir(void)
{
    if (!tmpdir[0])
        return;
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    free(cmd);
    tmpdir[0] = '\0';
}

int main(int argc, char **argv)
{
    git_libgit2_init();
    int passed = 0, failed = 0;
    for (int i = 0; i < test_count; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1]))
            continue;
        current_failed = 0;
        tests[i].fn();
        redact_clear();
        remove_tmpdir();
        printf("%s %s\n", current_failed ? "FAIL" : "ok  ", tests[i].name);
        if (current_failed)
            failed++;
        else
            passed++;
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    free(tests);
    git_libgit2_shutdown();
    return failed ? 1 : 0;
}
