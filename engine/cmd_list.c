#include "cmd_list.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "jsonfield.h"
#include "runbook.h"
#include "session.h"
#include "signals.h"
#include "term.h"
#include "timefmt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Top-level code stuck inside one C call is out of reach of the load
 * deadline; past it, plus this margin, the child loading it is killed. */
#define LIST_LOAD_MARGIN_SECONDS 3.0

/* ---- one runbook ------------------------------------------------------------------- */

/* What listing learns of one runbook: name, version, summary and blob id,
 * or the error that kept it from loading. No target: listing calls
 * nothing. */
static cJSON *describe_runbook(const char *file)
{
    session s = { 0 };
    s.neon.host = &s.host;
    cJSON *entry = cJSON_CreateObject();
    if (session_sandbox_new(&s.sb, &s.pg, &s.drill, file, &s.host, &s.neon) == 0 &&
        runbook_load(&s.rb, s.sb, file) == 0) {
        cJSON_AddStringToObject(entry, "name", s.rb->name);
        cJSON_AddStringToObject(entry, "version", s.rb->version);
        cJSON_AddStringToObject(entry, "summary", s.rb->summary);
        cJSON_AddStringToObject(entry, "blob_id", s.rb->blob_id);
    } else {
        cJSON_AddStringToObject(entry, "error", err_last());
    }
    session_dispose(&s);
    return entry;
}

/* Reads the child's answer until it closes the pipe, the limit passes or
 * a signal comes; 1 when the whole answer was read. */
static int read_child_answer(buf *text, int fd, double limit_seconds)
{
    double deadline = timefmt_monotonic() + limit_seconds;
    for (;;) {
        int left_ms = (int)((deadline - timefmt_monotonic()) * 1000);
        if (left_ms <= 0 || signals_pending())
            return 0;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int ready = poll(&pfd, 1, left_ms);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return 0;
        char chunk[4096];
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got == 0;
        buf_append(text, chunk, (size_t)got);
    }
}

/* The child: the runbook's description as JSON on the pipe, then exit. */
static _Noreturn void describe_in_child(int fd, const char *file)
{
    cJSON *entry = describe_runbook(file);
    char *text = cJSON_PrintUnformatted(entry);
    _exit(fsio_write_all(fd, text, strlen(text)) == 0 ? 0 : 1);
}

/* The child's description, or NULL when it did not come whole in time
 * (the child is then killed); the child is waited for either way. */
static cJSON *child_answer(int fd, pid_t pid)
{
    buf text = BUF_INIT;
    int whole = read_child_answer(&text, fd, RUNBOOK_LOAD_TIMEOUT_SECONDS + LIST_LOAD_MARGIN_SECONDS);
    if (!whole)
        kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    cJSON *entry = whole ? cJSON_Parse(buf_cstr(&text)) : NULL;
    buf_dispose(&text);
    return entry;
}

static cJSON *not_loaded(const char *file)
{
    cJSON *entry = cJSON_CreateObject();
    char *why = signals_pending()
                    ? xasprintf("%s: not loaded (interrupted)", file)
                    : xasprintf("%s: did not load within %.0f s (its top-level code never returns, perhaps "
                                "inside one long C call such as a pattern match); fix or remove it",
                                file, RUNBOOK_LOAD_TIMEOUT_SECONDS + LIST_LOAD_MARGIN_SECONDS);
    cJSON_AddStringToObject(entry, "error", why);
    free(why);
    return entry;
}

/* Loads a runbook in a child process, so that one whose code never
 * returns is reported by name and the others are still listed. Without a
 * pipe or a child, it is loaded here. */
static cJSON *describe_runbook_apart(const char *file)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return describe_runbook(file);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        describe_in_child(fds[1], file);
    }
    close(fds[1]);
    cJSON *entry = pid < 0 ? describe_runbook(file) : child_answer(fds[0], pid);
    close(fds[0]);
    return entry ? entry : not_loaded(file);
}

/* ---- the search path ------------------------------------------------------------------ */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int name_listed(const cJSON *out, const char *name)
{
    const cJSON *seen;
    cJSON_ArrayForEach(seen, out)
        if (strcmp(json_text(seen, "name", ""), name) == 0)
            return 1;
    return 0;
}

void cmd_list_files_ending(char ***files, size_t *count, const char *dir, const char *suffix)
{
    size_t suffix_len = strlen(suffix);
    *files = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > suffix_len && strcmp(e->d_name + len - suffix_len, suffix) == 0 && e->d_name[0] != '.')
            cli_push_arg(files, count, xasprintf("%s/%s", dir, e->d_name));
    }
    closedir(d);
    if (*count > 1) /* an empty folder leaves *files NULL, which qsort may not take */
        qsort(*files, *count, sizeof **files, compare_strings);
}

void cmd_list_runbook_files(char ***files, size_t *count, const char *dir)
{
    cmd_list_files_ending(files, count, dir, ".lua");
}

void cmd_list_each_runbook_file(const cli *c, void (*fn)(const char *file, void *context), void *context)
{
    char **dirs;
    size_t dir_count;
    cli_search_dirs(&dirs, &dir_count, c);
    for (size_t d = 0; d < dir_count; d++) {
        char **files;
        size_t count;
        cmd_list_runbook_files(&files, &count, dirs[d]);
        for (size_t i = 0; i < count; i++)
            fn(files[i], context);
        cli_free_list(files, count);
    }
    cli_free_list(dirs, dir_count);
}

/* Adds dir's runbooks to out; *bad is set when one does not load. */
static void list_dir(cJSON *out, int *bad, const char *dir)
{
    char **files;
    size_t count;
    cmd_list_runbook_files(&files, &count, dir);
    for (size_t i = 0; i < count; i++) {
        cJSON *entry = describe_runbook_apart(files[i]);
        if (cJSON_GetObjectItemCaseSensitive(entry, "error")) {
            *bad = 1;
        } else if (name_listed(out, json_text(entry, "name", ""))) {
            cJSON_Delete(entry); /* shadowed by one earlier on the search path */
            entry = NULL;
        }
        if (entry) {
            cJSON_AddStringToObject(entry, "path", files[i]);
            cJSON_AddItemToArray(out, entry);
        }
    }
    cli_free_list(files, count);
}

static void print_list_text(const cJSON *out)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, out) {
        if (cJSON_GetObjectItemCaseSensitive(e, "error"))
            term_out("%-22s %-8s %s", "(invalid)", "", json_text(e, "error", ""));
        else
            term_out("%-22s %-8s %.12s  %s", json_text(e, "name", ""), json_text(e, "version", ""),
                     json_text(e, "blob_id", ""), json_text(e, "summary", ""));
    }
}

int cmd_list(cli *c)
{
    int rc = cli_expect_args(c, 0, 0, "");
    if (rc)
        return rc;
    char **dirs;
    size_t count;
    cli_search_dirs(&dirs, &count, c);
    cJSON *out = cJSON_CreateArray();
    int bad = 0;
    for (size_t i = 0; i < count; i++)
        list_dir(out, &bad, dirs[i]);
    if (c->json)
        cli_print_json(out);
    else if (cJSON_GetArraySize(out) == 0)
        term_info("no runbooks found (searched %s%s)", dirs[0], count > 1 ? " and the others given" : "");
    else
        print_list_text(out);
    cJSON_Delete(out);
    cli_free_list(dirs, count);
    return bad ? err_set(DR_EUSAGE, "some runbooks do not load (shown above)") : 0;
}
