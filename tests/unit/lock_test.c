#include "test.h"

#include "err.h"
#include "fsio.h"
#include "lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *lock_path(void)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/target.lock", test_tmpdir());
    return path;
}

static void a_free_lock_is_taken_and_names_its_holder(void)
{
    lock *l = NULL;
    cJSON *stale = NULL;
    CHECK(lock_acquire(&l, &stale, lock_path(), "the target main", "run-1") == 0);
    CHECK(l != NULL);
    CHECK(stale == NULL);
    CHECK(lock_is_held(lock_path()));
    char *text = NULL;
    int rc = fsio_read_file(&text, NULL, lock_path());
    cJSON *holder = rc == 0 ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(holder, "pid");
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(holder, "run_id");
    int named = cJSON_IsNumber(pid) && pid->valueint == (int)getpid() && cJSON_IsString(run) &&
                strcmp(run->valuestring, "run-1") == 0 && cJSON_GetObjectItemCaseSensitive(holder, "host") &&
                cJSON_GetObjectItemCaseSensitive(holder, "since");
    cJSON_Delete(holder);
    lock_release(l);
    CHECK(named);
}

static void a_second_holder_is_refused_with_the_first_named(void)
{
    lock *first = NULL, *second = NULL;
    CHECK(lock_acquire(&first, NULL, lock_path(), "the target main", "run-1") == 0);
    int rc = lock_acquire(&second, NULL, lock_path(), "the target main", "run-2");
    char message[1024];
    snprintf(message, sizeof message, "%s", err_last());
    lock_release(first);
    CHECK(rc == DR_ELOCKED);
    CHECK(second == NULL);
    CHECK_CONTAINS(message, "the target main is held by run run-1");
    char pid[32];
    snprintf(pid, sizeof pid, "pid %d", (int)getpid());
    CHECK_CONTAINS(message, pid);
}

static void a_released_lock_is_free_and_leaves_no_holder(void)
{
    lock *l = NULL;
    CHECK(lock_acquire(&l, NULL, lock_path(), "the target", "run-1") == 0);
    lock_release(l);
    CHECK(!lock_is_held(lock_path()));
    CHECK(fsio_exists(lock_path()));
    char *text = NULL;
    size_t len = 99;
    CHECK(fsio_read_file(&text, &len, lock_path()) == 0);
    free(text);
    CHECK(len == 0);
    /* A clean release is no takeover. */
    cJSON *stale = NULL;
    CHECK(lock_acquire(&l, &stale, lock_path(), "the target", "run-2") == 0);
    lock_release(l);
    CHECK(stale == NULL);
}

static void a_lock_left_by_a_dead_process_is_taken_over_and_reported(void)
{
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    CHECK(child > 0);
    CHECK(waitpid(child, NULL, 0) == child);
    char holder[256];
    snprintf(holder, sizeof holder,
             "{\"pid\":%d,\"host\":\"db-admin-1\",\"run_id\":\"run-dead\",\"since\":\"2026-01-11T14:30:00Z\"}",
             (int)child);
    test_write_file("target.lock", holder);
    CHECK(!lock_is_held(lock_path()));
    lock *l = NULL;
    cJSON *stale = NULL;
    CHECK(lock_acquire(&l, &stale, lock_path(), "the target", "run-new") == 0);
    CHECK(stale != NULL);
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(stale, "pid");
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(stale, "run_id");
    int reported = cJSON_IsNumber(pid) && pid->valueint == (int)child && cJSON_IsString(run) &&
                   strcmp(run->valuestring, "run-dead") == 0;
    cJSON_Delete(stale);
    CHECK(lock_is_held(lock_path()));
    lock_release(l);
    CHECK(reported);
}

static void a_missing_lock_file_is_not_held(void)
{
    CHECK(!lock_is_held(lock_path()));
    lock_release(NULL); /* a no-op */
}

static void a_lock_that_cannot_be_created_says_where(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/no-such-dir/x.lock", test_tmpdir());
    lock *l = (lock *)1;
    CHECK(lock_acquire(&l, NULL, path, "the target", "run-1") == DR_EFAIL);
    CHECK(l == NULL);
    CHECK_CONTAINS(err_last(), "no-such-dir/x.lock");
}

TEST_SUITE(lock)
{
    REGISTER(a_free_lock_is_taken_and_names_its_holder);
    REGISTER(a_second_holder_is_refused_with_the_first_named);
    REGISTER(a_released_lock_is_free_and_leaves_no_holder);
    REGISTER(a_lock_left_by_a_dead_process_is_taken_over_and_reported);
    REGISTER(a_missing_lock_file_is_not_held);
    REGISTER(a_lock_that_cannot_be_created_says_where);
}
