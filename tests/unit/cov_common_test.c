/* The error and edge paths of the small common modules (buf, jsontext,
 * timefmt, fsio, proc) that the other suites do not reach. */
#include "test.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "jsontext.h"
#include "proc.h"
#include "testhook.h"
#include "timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

extern char **environ;

/* ---- buf ------------------------------------------------------------------- */

static void zero_sized_allocations_give_usable_memory(void)
{
    char *a = xmalloc(0), *b = xcalloc(0, 0), *c = xrealloc(NULL, 0);
    CHECK(a && b && c);
    a[0] = b[0] = c[0] = 'x'; /* one byte each: ASan would catch a zero-byte block */
    free(a);
    free(b);
    free(c);
}

static void buf_printf_of_text_the_locale_cannot_encode_adds_nothing(void)
{
    buf b = BUF_INIT;
    buf_puts(&b, "kept");
    /* In the C locale a wide character past ASCII cannot be converted:
     * vsnprintf fails (EILSEQ) and the buffer must stay as it was. */
    static const wchar_t wide[] = { 0x20AC, 0 };
    buf_printf(&b, "%ls", wide);
    CHECK_STR(buf_cstr(&b), "kept");
    CHECK(b.len == 4);
    buf_dispose(&b);
}

/* ---- jsontext -------------------------------------------------------------- */

static void non_finite_numbers_are_written_as_null(void)
{
    char out[JSON_NUMBER_MAX];
    CHECK(json_number_text(out, NAN) == 4);
    CHECK_STR(out, "null");
    CHECK(json_number_text(out, -INFINITY) == 4);
    CHECK_STR(out, "null");
}

static void json_print_exact_of_no_tree_is_null_and_of_a_numberless_tree_is_cjsons(void)
{
    CHECK(json_print_exact(NULL, 0) == NULL);
    cJSON *tree = cJSON_CreateObject();
    cJSON_AddStringToObject(tree, "a", "b");
    char *text = json_print_exact(tree, 0);
    CHECK_STR(text, "{\"a\":\"b\"}");
    free(text);
    cJSON_Delete(tree);
}

static void json_string_size_counts_every_escape_form(void)
{
    /* quotes 2; \" \\ \b \f \n \r \t two each; \x01 as \u0001 six; 'a' one */
    const char s[] = "\"\\\b\f\n\r\t\x01" "a";
    CHECK(json_string_size(s, sizeof s - 1) == 2 + 7 * 2 + 6 + 1);
    cJSON *str = cJSON_CreateString(s);
    char *printed = cJSON_PrintUnformatted(str);
    CHECK(strlen(printed) == json_string_size(s, sizeof s - 1));
    free(printed);
    cJSON_Delete(str);
}

/* ---- timefmt --------------------------------------------------------------- */

static const char *timestamp_refusal(const char *text)
{
    double t = 0;
    err_clear();
    return timefmt_parse_timestamp(&t, text) == DR_EUSAGE ? err_last() : "(accepted)";
}

static void malformed_timestamps_are_refused_with_the_reason(void)
{
    CHECK_CONTAINS(timestamp_refusal("2026-01"), "the date must be YYYY-MM-DD");
    CHECK_CONTAINS(timestamp_refusal("2026/01/11T00:00:00Z"), "the date must be YYYY-MM-DD");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T14"), "the time of day must be HH:MM:SS");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T14:30"), "the time of day must be HH:MM:SS");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T14:30:xx"), "the time of day must be HH:MM:SS");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T14:30:00.Z"), "digits must follow the decimal point");
    CHECK_CONTAINS(timestamp_refusal("2026-00-11T14:30:00Z"), "no such month");
    CHECK_CONTAINS(timestamp_refusal("2026-13-11T14:30:00Z"), "no such month");
    CHECK_CONTAINS(timestamp_refusal("2026-01-00T14:30:00Z"), "no such day in that month");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T24:00:00Z"), "no such time of day");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T23:60:00Z"), "no such time of day");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T23:59:60Z"), "no such time of day");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T23:59:59+0100"), "the offset must be +hh:mm");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T23:59:59+24:00"), "the offset must be +hh:mm");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T23:59:59-01:60"), "the offset must be +hh:mm");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T23:59:59+01"), "the offset must be +hh:mm");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T23:59:59+01:0"), "the offset must be +hh:mm");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T23:59:59Zjunk"), "unexpected text after the time");
    CHECK_CONTAINS(timestamp_refusal("2026-01-11T23:59:59Zjunk"), "'2026-01-11T23:59:59Zjunk'");
}

static void lower_case_t_and_z_and_a_negative_offset_are_read(void)
{
    double t = 0;
    CHECK(timefmt_parse_timestamp(&t, "1970-01-01t01:00:00z") == 0);
    CHECK(t == 3600);
    CHECK(timefmt_parse_timestamp(&t, "1970-01-01 00:00:00-01:30") == 0);
    CHECK(t == 5400);
}

static void a_fraction_that_rounds_to_a_whole_second_carries_into_the_seconds(void)
{
    char out[40];
    timefmt_format_utc(out, sizeof out, 59.9999996);
    CHECK_STR(out, "1970-01-01T00:01:00Z");
}

static void format_utc_into_a_short_buffer_truncates_without_overflow(void)
{
    char out[12];
    memset(out, 'x', sizeof out);
    timefmt_format_utc(out, 8, 1.5);
    CHECK_STR(out, "1970-01");
    CHECK(out[8] == 'x');
    char nan_text[40];
    timefmt_format_utc(nan_text, sizeof nan_text, NAN);
    CHECK_STR(nan_text, "0000-01-01T00:00:00Z");
}

static void a_duration_past_a_century_is_refused_as_too_long(void)
{
    double s = 0;
    CHECK(timefmt_parse_duration(&s, "6000w") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "'6000w' is not a valid duration (it is too long)");
    CHECK(timefmt_parse_duration(&s, "1e400s") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "it is too long");
    CHECK(timefmt_parse_duration(&s, "5") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "the unit is missing");
    CHECK(timefmt_parse_duration(&s, "5y") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "unknown unit");
}

/* ---- fsio ------------------------------------------------------------------ */

static void dirname_of_a_root_entry_is_the_root_and_of_a_bare_name_is_dot(void)
{
    char *root = fsio_dirname("/etc");
    char *dot = fsio_dirname("file");
    CHECK_STR(root, "/");
    CHECK_STR(dot, ".");
    free(root);
    free(dot);
}

static void write_all_writes_everything_or_fails_with_errno(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    CHECK(fsio_write_all(fds[1], "hello", 5) == 0);
    char got[8] = "";
    CHECK(read(fds[0], got, sizeof got) == 5);
    CHECK(memcmp(got, "hello", 5) == 0);
    close(fds[0]);
    close(fds[1]);
    errno = 0;
    CHECK(fsio_write_all(fds[1], "x", 1) == -1);
    CHECK(errno == EBADF);
}

static void fsync_of_a_missing_directory_names_it(void)
{
    char *dir = xasprintf("%s/absent", test_tmpdir());
    int rc = fsio_fsync_dir(dir);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot open directory");
    CHECK_CONTAINS(err_last(), dir);
    free(dir);
}

static void reading_a_directory_fails_with_the_path(void)
{
    char *out = (char *)"unchanged";
    size_t len = 7;
    CHECK(fsio_read_file(&out, &len, test_tmpdir()) == DR_EFAIL);
    CHECK(out == NULL);
    CHECK_CONTAINS(err_last(), "cannot read");
    CHECK_CONTAINS(err_last(), "Is a directory");
}

static void mkdirs_refuses_an_empty_name_a_file_in_the_way_and_a_file_at_the_end(void)
{
    CHECK(fsio_mkdirs("", 0755) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "an empty directory name was given");
    const char *file = test_write_file("plain", "x");
    char *below = xasprintf("%s/sub/deeper", file);
    int rc = fsio_mkdirs(below, 0755);
    free(below);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot create directory");
    CHECK_CONTAINS(err_last(), "plain/sub");
    CHECK(fsio_mkdirs(file, 0755) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "exists and is not a directory");
}

static void remove_tree_removes_a_plain_file_and_accepts_an_absent_path(void)
{
    const char *file = test_write_file("doomed", "x");
    CHECK(fsio_remove_tree(file) == 0);
    CHECK(!fsio_exists(file));
    CHECK(fsio_remove_tree(file) == 0);
}

static void remove_tree_names_what_it_cannot_remove(void)
{
    /* Entries of /proc cannot be removed, even by root (EPERM), and
     * nothing of it is lost by trying: the failures a read-only or
     * foreign folder gives, without a privilege to drop. */
    if (!fsio_is_dir("/proc/self/fdinfo"))
        return;
    CHECK(fsio_remove_tree("/proc/self/status") == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot remove /proc/self/status: ");
    CHECK(fsio_remove_tree("/proc/self/fdinfo") == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot remove /proc/self/fdinfo");
    CHECK(fsio_exists("/proc/self/status"));
}

static void append_that_cannot_write_names_the_file_and_leaves_it_whole(void)
{
    const char *path = test_write_file("journal", "line 1\n");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    int rc = fsio_append_durable(fd, path, "line 2\n", 7);
    close(fd);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot append to");
    CHECK_CONTAINS(err_last(), "journal");
    char *text = NULL;
    CHECK(fsio_read_file(&text, NULL, path) == 0);
    CHECK_STR(text, "line 1\n");
    free(text);
}

static void append_to_a_pipe_fails_at_the_sync(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    int rc = fsio_append_durable(fds[1], "the-pipe", "rec\n", 4);
    close(fds[0]);
    close(fds[1]);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot append to the-pipe");
}

#ifdef DRCTL_TEST_HOOKS
static void a_directory_sync_refused_with_einval_counts_as_done(void)
{
    testhook_set_io_fault_once(1, EINVAL);
    int rc = fsio_fsync_dir(test_tmpdir());
    testhook_set_io_fault(0, 0);
    CHECK(rc == 0);
    testhook_set_io_fault_once(1, EIO);
    rc = fsio_fsync_dir(test_tmpdir());
    testhook_set_io_fault(0, 0);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot fsync directory");
}

static void a_full_disk_writes_half_of_a_long_write_and_none_of_one_byte(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    char got[16];
    testhook_set_io_fault_once(1, ENOSPC);
    int one = fsio_write_all(fds[1], "x", 1);
    int one_errno = errno;
    testhook_set_io_fault_once(1, ENOSPC);
    int four = fsio_write_all(fds[1], "abcd", 4);
    testhook_set_io_fault_once(1, EIO);
    int eio = fsio_write_all(fds[1], "efgh", 4);
    testhook_set_io_fault(0, 0);
    close(fds[1]);
    ssize_t n = read(fds[0], got, sizeof got);
    close(fds[0]);
    CHECK(one == -1 && one_errno == ENOSPC);
    CHECK(four == -1 && eio == -1);
    CHECK(n == 2);
    CHECK(memcmp(got, "ab", 2) == 0);
}

static void an_append_that_fails_on_a_pipe_cannot_truncate_and_still_reports(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    testhook_set_io_fault(1, EIO);
    int rc = fsio_append_durable(fds[1], "pipe-journal", "rec\n", 4);
    testhook_set_io_fault(0, 0);
    close(fds[0]);
    close(fds[1]);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot append to pipe-journal: Input/output error");
}
#endif

/* ---- proc ------------------------------------------------------------------ */

static void env_names_with_other_characters_are_refused(void)
{
    CHECK(proc_valid_env_name("GOOD_NAME_2"));
    CHECK(!proc_valid_env_name("BAD-NAME"));
    CHECK(!proc_valid_env_name("BAD NAME"));
    CHECK(!proc_valid_env_name(""));
    CHECK(!proc_valid_env_name("9LIVES"));
}

static void output_past_the_limit_is_cut_and_marked_truncated(void)
{
    char *argv[] = { "sh", "-c", "printf 0123456789abcdefghij; printf 0123456789 >&2", NULL };
    proc_request req = { .argv = argv, .timeout = 10, .output_limit = 10 };
    proc_result res;
    CHECK(proc_run(&res, &req) == 0);
    int ok = res.truncated && res.out_len == 10 && strcmp(res.out, "0123456789") == 0 && res.err_len == 10;
    proc_result_dispose(&res);
    CHECK(ok);
}

static void many_extra_environment_entries_all_reach_the_child(void)
{
    char *env[31];
    for (int i = 0; i < 30; i++)
        env[i] = xasprintf("COV_VAR_%02d=v%d", i, i);
    env[30] = NULL;
    char *argv[] = { "sh", "-c", "echo \"$COV_VAR_00 $COV_VAR_29\"", NULL };
    proc_request req = { .argv = argv, .env = env, .timeout = 10 };
    proc_result res;
    int rc = proc_run(&res, &req);
    for (int i = 0; i < 30; i++)
        free(env[i]);
    CHECK(rc == 0);
    int ok = strcmp(res.out, "v0 v29\n") == 0;
    proc_result_dispose(&res);
    CHECK(ok);
}

static void many_inherited_variables_are_all_passed_on(void)
{
    /* The kept names can repeat in environ (a program may build it by
     * hand): each copy takes a slot, past the first allocation. */
    char **saved = environ;
    char *many[25];
    const char *path = getenv("PATH");
    char *entry = xasprintf("PATH=%s", path ? path : "/usr/bin:/bin");
    for (int i = 0; i < 24; i++)
        many[i] = entry;
    many[24] = NULL;
    environ = many;
    char *argv[] = { "sh", "-c", "echo ran", NULL };
    proc_request req = { .argv = argv, .timeout = 10 };
    proc_result res;
    int rc = proc_run(&res, &req);
    environ = saved;
    free(entry);
    CHECK(rc == 0);
    int ok = strcmp(res.out, "ran\n") == 0 && res.exit_code == 0;
    proc_result_dispose(&res);
    CHECK(ok);
}

static void stdin_for_a_child_that_does_not_read_it_is_dropped(void)
{
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    size_t len = 4u << 20;
    char *data = xmalloc(len);
    memset(data, 'z', len);
    char *argv[] = { "true", NULL };
    proc_request req = { .argv = argv, .stdin_data = data, .stdin_len = len, .timeout = 10 };
    proc_result res;
    int rc = proc_run(&res, &req);
    signal(SIGPIPE, old);
    free(data);
    CHECK(rc == 0);
    int ok = res.exit_code == 0 && !res.timed_out;
    proc_result_dispose(&res);
    CHECK(ok);
}

static int progress_calls;

static void count_progress(void *ud, const char *err, size_t err_len)
{
    (void)ud;
    (void)err;
    (void)err_len;
    progress_calls++;
}

static void a_deadline_cuts_short_the_drain_of_outputs_a_leftover_holds(void)
{
    /* The child exits at once; the sleep it leaves holds stdout. The
     * deadline, not the two-second drain, ends the wait. */
    char *argv[] = { "sh", "-c", "sleep 3 & echo started", NULL };
    progress_calls = 0;
    proc_request req = { .argv = argv, .timeout = 1.2, .progress = count_progress };
    proc_result res;
    CHECK(proc_run(&res, &req) == 0);
    int ok = res.exit_code == 0 && res.outputs_left_open && !res.timed_out && res.duration < 1.9 &&
             strcmp(res.out, "started\n") == 0;
    double duration = res.duration;
    proc_result_dispose(&res);
    if (!ok)
        printf("    duration %.2f\n", duration);
    CHECK(ok);
    CHECK(progress_calls >= 1);
}

TEST_SUITE(cov_common)
{
    REGISTER(zero_sized_allocations_give_usable_memory);
    REGISTER(buf_printf_of_text_the_locale_cannot_encode_adds_nothing);
    REGISTER(non_finite_numbers_are_written_as_null);
    REGISTER(json_print_exact_of_no_tree_is_null_and_of_a_numberless_tree_is_cjsons);
    REGISTER(json_string_size_counts_every_escape_form);
    REGISTER(malformed_timestamps_are_refused_with_the_reason);
    REGISTER(lower_case_t_and_z_and_a_negative_offset_are_read);
    REGISTER(a_fraction_that_rounds_to_a_whole_second_carries_into_the_seconds);
    REGISTER(format_utc_into_a_short_buffer_truncates_without_overflow);
    REGISTER(a_duration_past_a_century_is_refused_as_too_long);
    REGISTER(dirname_of_a_root_entry_is_the_root_and_of_a_bare_name_is_dot);
    REGISTER(write_all_writes_everything_or_fails_with_errno);
    REGISTER(fsync_of_a_missing_directory_names_it);
    REGISTER(reading_a_directory_fails_with_the_path);
    REGISTER(mkdirs_refuses_an_empty_name_a_file_in_the_way_and_a_file_at_the_end);
    REGISTER(remove_tree_removes_a_plain_file_and_accepts_an_absent_path);
    REGISTER(remove_tree_names_what_it_cannot_remove);
    REGISTER(append_that_cannot_write_names_the_file_and_leaves_it_whole);
    REGISTER(append_to_a_pipe_fails_at_the_sync);
#ifdef DRCTL_TEST_HOOKS
    REGISTER(a_directory_sync_refused_with_einval_counts_as_done);
    REGISTER(a_full_disk_writes_half_of_a_long_write_and_none_of_one_byte);
    REGISTER(an_append_that_fails_on_a_pipe_cannot_truncate_and_still_reports);
#endif
    REGISTER(env_names_with_other_characters_are_refused);
    REGISTER(output_past_the_limit_is_cut_and_marked_truncated);
    REGISTER(many_extra_environment_entries_all_reach_the_child);
    REGISTER(many_inherited_variables_are_all_passed_on);
    REGISTER(stdin_for_a_child_that_does_not_read_it_is_dropped);
    REGISTER(a_deadline_cuts_short_the_drain_of_outputs_a_leftover_holds);
}
