/* A minimal test harness: tests register themselves by name (TEST_SUITE), a failing
 * CHECK ends the test and names the file, line and condition. */
#ifndef DRCTL_TEST_H
#define DRCTL_TEST_H

#include <string.h>

typedef void (*test_fn)(void);

void test_add(const char *name, test_fn fn);
void test_fail(const char *file, int line, const char *what, const char *detail);
int test_failed_now(void);
/* A fresh temporary directory for this test (removed at the end). */
const char *test_tmpdir(void);
/* Writes text to DIR/name and returns the path (static buffer). */
const char *test_write_file(const char *name, const char *text);

/* The path of file name in run_id's folder of the trail audit_dir, where
 * drctl files it (runpath.h); the caller frees it. */
char *run_file_path(const char *audit_dir, const char *run_id, const char *name);

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            test_fail(__FILE__, __LINE__, #cond, NULL);               \
            return;                                                   \
        }                                                             \
    } while (0)

#define CHECK_STR(actual, expected)                                   \
    do {                                                              \
        const char *a_ = (actual), *e_ = (expected);                  \
        if (!a_ || strcmp(a_, e_) != 0) {                             \
            test_fail(__FILE__, __LINE__, #actual " == " #expected, a_); \
            return;                                                   \
        }                                                             \
    } while (0)

#define CHECK_CONTAINS(actual, needle)                                \
    do {                                                              \
        const char *a_ = (actual), *n_ = (needle);                    \
        if (!a_ || !strstr(a_, n_)) {                                 \
            test_fail(__FILE__, __LINE__, #actual " contains " #needle, a_); \
            return;                                                   \
        }                                                             \
    } while (0)

#define REGISTER(fn) test_add(#fn, fn)

/* A file's tests register themselves before main runs, so adding a test
 * file needs no list anywhere else:
 *     TEST_SUITE(timefmt) { REGISTER(a_test); REGISTER(another); } */
#define TEST_SUITE(name)                                                      \
    static void register_##name##_tests(void) __attribute__((constructor));   \
    static void register_##name##_tests(void)


#endif
