/* The error paths and corners of the engine's small modules: who the
 * operator is (identity), which Neon (target), the watchdog (signals),
 * drctl list, the drill module, the audit trail's signing and signature
 * check, the lock renewer and the terminal. */
#include "test.h"

#include "luaeval.h"

#include "audit.h"
#include "buf.h"
#include "cli.h"
#include "drill.h"
#include "drillmod.h"
#include "drmod.h"
#include "err.h"
#include "fsio.h"
#include "identity.h"
#include "lockrenew.h"
#include "sandbox.h"
#include "signals.h"
#include "signing.h"
#include "sshkeys.h"
#include "target.h"
#include "term.h"
#include "timefmt.h"
#include "verifysig.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <lauxlib.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------ */

/* One environment variable kept aside, to be put back as it was. */
typedef struct {
    const char *name;
    char *value; /* NULL: was unset */
} saved_env;

static saved_env env_save(const char *name)
{
    const char *v = getenv(name);
    return (saved_env){ name, v ? xstrdup(v) : NULL };
}

static void env_restore(saved_env *s)
{
    if (s->value)
        setenv(s->name, s->value, 1);
    else
        unsetenv(s->name);
    free(s->value);
    s->value = NULL;
}

static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", test_tmpdir(), name);
}

/* The file's text, or "" when it cannot be read (caller frees). */
static char *slurp(const char *path)
{
    char *text = NULL;
    if (fsio_read_file(&text, NULL, path) != 0)
        return xstrdup("");
    return text;
}

/* What fn wrote on descriptor which (1 or 2) while it ran (caller frees). */
static char *output_of(int which, void (*fn)(void *), void *arg)
{
    char *path = tmp_path("captured.txt");
    fflush(stdout);
    fflush(stderr);
    int saved = dup(which);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, which);
    close(fd);
    fn(arg);
    fflush(stdout);
    fflush(stderr);
    dup2(saved, which);
    close(saved);
    char *text = slurp(path);
    free(path);
    return text;
}

static char *stderr_of(void (*fn)(void *), void *arg)
{
    return output_of(2, fn, arg);
}

/* Waits for pid at most seconds (then kills it); its wait status, or -1. */
static int wait_child(pid_t pid, double seconds)
{
    double until = timefmt_monotonic() + seconds;
    int status;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return status;
        if (got < 0 && errno != EINTR)
            return -1;
        if (timefmt_monotonic() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* Runs fn(arg) in a child whose stdout and stderr go to out_path and
 * err_path; the child's exit status, or -1 when it did not exit. */
static int in_child(int (*fn)(void *), void *arg, const char *out_path, const char *err_path, double seconds)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(out, 1);
        dup2(err, 2);
        close(out);
        close(err);
        int rc = fn(arg);
        fflush(stdout);
        fflush(stderr);
        exit(rc); /* exit, not _exit: gcov and the leak checker run */
    }
    int status = wait_child(pid, seconds);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* drctl's command line, run in a child; its output in *out and *err. */
typedef struct {
    int argc;
    char **argv;
    void (*before)(void); /* in the child, before cli_main (may be NULL) */
    void (*after)(void);
} cli_run;

static int run_cli_in_child(void *arg)
{
    cli_run *r = arg;
    if (r->before)
        r->before();
    int status = cli_main(r->argc, r->argv);
    if (r->after)
        r->after();
    return status;
}

static int drctl(char **out, char **err, void (*before)(void), void (*after)(void), int argc, char **argv)
{
    char *out_path = tmp_path("cli.out"), *err_path = tmp_path("cli.err");
    cli_run r = { argc, argv, before, after };
    int status = in_child(run_cli_in_child, &r, out_path, err_path, 60);
    *out = slurp(out_path);
    *err = slurp(err_path);
    free(out_path);
    free(err_path);
    return status;
}

#define RUNBOOK(name) "return runbook { name = '" name "', version = '1', summary = 'the " name " one',\n" \
                      "  steps = { { name = 'a', run = function() end } } }\n"

/* ---- identity ----------------------------------------------------------------------- */

static const int config_levels[] = { GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL };
#define LEVELS (sizeof config_levels / sizeof config_levels[0])

/* git's configuration looked for in dir alone (a .gitconfig there), as
 * though it were the only one on the machine. */
typedef struct {
    git_buf saved[LEVELS];
    saved_env operator_env;
} git_home;

static void git_home_begin(git_home *h, const char *dir)
{
    memset(h, 0, sizeof *h);
    for (size_t i = 0; i < LEVELS; i++) {
        git_libgit2_opts(GIT_OPT_GET_SEARCH_PATH, config_levels[i], &h->saved[i]);
        git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, config_levels[i], dir);
    }
    h->operator_env = env_save("DRCTL_OPERATOR");
    unsetenv("DRCTL_OPERATOR");
}

static void git_home_end(git_home *h)
{
    for (size_t i = 0; i < LEVELS; i++) {
        git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, config_levels[i], h->saved[i].ptr);
        git_buf_dispose(&h->saved[i]);
    }
    env_restore(&h->operator_env);
}

/* identity_operator with only this .gitconfig (NULL: none). */
static char *operator_with_gitconfig(const char *gitconfig)
{
    char *dir = tmp_path(gitconfig ? "home-with-config" : "home-without-config");
    fsio_mkdirs(dir, 0700);
    if (gitconfig) {
        char *file = xasprintf("%s/.gitconfig", dir);
        fsio_write_durable(file, gitconfig, strlen(gitconfig));
        free(file);
    }
    git_home h;
    git_home_begin(&h, dir);
    char *who = identity_operator();
    git_home_end(&h);
    free(dir);
    return who;
}

static const char *login_name(void)
{
    struct passwd *pw = getpwuid(getuid());
    return pw ? pw->pw_name : "unknown";
}

static void the_operator_is_git_name_and_email_when_both_are_configured(void)
{
    char *who = operator_with_gitconfig("[user]\n\tname = Ada Lovelace\n\temail = ada@example.org\n");
    CHECK_STR(who, "Ada Lovelace <ada@example.org>");
    free(who);
}

static void the_operator_is_git_name_alone_without_an_email(void)
{
    char *who = operator_with_gitconfig("[user]\n\tname = Ada Lovelace\n");
    CHECK_STR(who, "Ada Lovelace");
    free(who);
}

static void an_email_without_a_name_falls_back_to_the_login_name(void)
{
    char *who = operator_with_gitconfig("[user]\n\temail = ada@example.org\n");
    CHECK_STR(who, login_name());
    free(who);
}

static void an_empty_git_name_falls_back_to_the_login_name(void)
{
    char *who = operator_with_gitconfig("[user]\n\tname =\n\temail = ada@example.org\n");
    CHECK_STR(who, login_name());
    free(who);
}

static void a_git_config_that_does_not_parse_falls_back_to_the_login_name(void)
{
    char *who = operator_with_gitconfig("[user\n\tname = = =\n");
    CHECK_STR(who, login_name());
    free(who);
}

static void an_empty_drctl_operator_is_not_an_operator(void)
{
    char *dir = tmp_path("home-empty-operator");
    fsio_mkdirs(dir, 0700);
    git_home h;
    git_home_begin(&h, dir);
    setenv("DRCTL_OPERATOR", "", 1);
    char *who = identity_operator();
    setenv("DRCTL_OPERATOR", "Grace", 1);
    char *given = identity_operator();
    git_home_end(&h);
    free(dir);
    int ok = who && strcmp(who, login_name()) == 0 && given && strcmp(given, "Grace") == 0;
    free(who);
    free(given);
    CHECK(ok);
}

/* ---- target ------------------------------------------------------------------------- */

typedef struct {
    saved_env key, host, local;
} target_env;

static void target_env_begin(target_env *e)
{
    e->key = env_save("NEON_API_KEY");
    e->host = env_save("NEON_API_HOST");
    e->local = env_save("DRCTL_LOCAL");
    unsetenv("NEON_API_KEY");
    unsetenv("NEON_API_HOST");
    unsetenv("DRCTL_LOCAL");
}

static void target_env_end(target_env *e)
{
    env_restore(&e->key);
    env_restore(&e->host);
    env_restore(&e->local);
}

static target_kind kind_with_drctl_local(const char *value)
{
    setenv("DRCTL_LOCAL", value, 1);
    target t;
    target_resolve(&t, 0);
    target_kind kind = t.kind;
    target_dispose(&t);
    return kind;
}

static void drctl_local_counts_only_when_it_says_yes(void)
{
    target_env e;
    target_env_begin(&e);
    int ok = kind_with_drctl_local("") == TARGET_NONE && kind_with_drctl_local("0") == TARGET_NONE &&
             kind_with_drctl_local("FALSE") == TARGET_NONE && kind_with_drctl_local("No") == TARGET_NONE &&
             kind_with_drctl_local("1") == TARGET_LOCAL && kind_with_drctl_local("yes") == TARGET_LOCAL;
    setenv("NEON_API_KEY", "", 1); /* an empty key chooses nothing either */
    ok = ok && kind_with_drctl_local("0") == TARGET_NONE;
    target_env_end(&e);
    CHECK(ok);
}

static void a_cloud_target_at_another_host_is_described_by_its_host(void)
{
    target_env e;
    target_env_begin(&e);
    setenv("NEON_API_KEY", "k-123", 1);
    setenv("NEON_API_HOST", "https://neon.example.org/api/v2", 1);
    target t;
    target_resolve(&t, 0);
    char *described = target_describe(&t);
    cJSON *j = target_json(&t);
    char *json = cJSON_PrintUnformatted(j);
    int connected = target_connect(&t);
    target_dispose(&t);
    setenv("NEON_API_HOST", "", 1);
    target_resolve(&t, 0);
    char *cloud = target_describe(&t);
    target_dispose(&t);
    target_env_end(&e);
    int ok = strcmp(described, "Neon API at https://neon.example.org/api/v2") == 0 &&
             strstr(json, "\"kind\":\"cloud\"") && strstr(json, "neon.example.org") && !strstr(json, "k-123") &&
             connected == 0 && strcmp(cloud, "Neon cloud (" NEON_CLOUD_API ")") == 0;
    if (!ok)
        test_fail(__FILE__, __LINE__, "cloud target described", described);
    free(described);
    free(cloud);
    free(json);
    cJSON_Delete(j);
}

static void no_target_is_described_as_none_and_refused_on_connect(void)
{
    target_env e;
    target_env_begin(&e);
    target t;
    target_resolve(&t, 0);
    char *described = target_describe(&t);
    cJSON *j = target_json(&t);
    char *json = cJSON_PrintUnformatted(j);
    int rc = target_connect(&t);
    target_dispose(&t);
    target_env_end(&e);
    int ok = strcmp(described, "none") == 0 && strcmp(json, "{\"kind\":\"none\"}") == 0 && rc == DR_EUSAGE;
    free(described);
    free(json);
    cJSON_Delete(j);
    CHECK(ok);
    CHECK_CONTAINS(err_last(), "no target was chosen");
    CHECK_CONTAINS(err_last(), "--local");
}

static void a_local_target_with_its_address_is_described_by_the_address(void)
{
    target t = { .kind = TARGET_LOCAL, .api_host = xstrdup("http://127.0.0.1:5555"), .local_dir = xstrdup("/x") };
    char *described = target_describe(&t);
    cJSON *j = target_json(&t);
    char *json = cJSON_PrintUnformatted(j);
    target_dispose(&t);
    int ok = strcmp(described, "neon-local (rehearsal), http://127.0.0.1:5555") == 0 &&
             strstr(json, "\"kind\":\"local\"") && strstr(json, "\"data\":\"/x\"");
    free(described);
    free(json);
    cJSON_Delete(j);
    CHECK(ok);
}

/* connect_local acts in the current folder: each case runs in its own. */
typedef struct {
    const char *folder;
    void (*prepare)(void); /* in that folder, before connecting */
    const char *local_dir; /* NULL: target_resolve's */
    int rc;
    char *error;
    char *home;            /* the folder's .drctl */
} local_case;

static void connect_in_folder(local_case *c)
{
    char *cwd = getcwd(NULL, 0);
    char *dir = tmp_path(c->folder);
    fsio_mkdirs(dir, 0700);
    c->home = xasprintf("%s/.drctl", dir);
    if (chdir(dir) != 0) {
        c->rc = 99;
        c->error = xstrdup("cannot chdir");
    } else {
        if (c->prepare)
            c->prepare();
        target t;
        target_resolve(&t, 1);
        if (c->local_dir) {
            free(t.local_dir);
            t.local_dir = xstrdup(c->local_dir);
        }
        c->rc = target_connect(&t);
        c->error = xstrdup(err_last());
        target_dispose(&t);
        if (chdir(cwd) != 0)
            abort();
    }
    free(dir);
    free(cwd);
}

static void local_case_dispose(local_case *c)
{
    free(c->error);
    free(c->home);
}

static void drctl_home_is_a_file(void)
{
    fsio_write_durable(".drctl", "x", 1);
}

static void the_lock_is_a_folder(void)
{
    fsio_mkdirs(".drctl/neon-local.lock", 0700);
}

static void the_log_is_a_folder(void)
{
    fsio_mkdirs(".drctl/neon-local.log", 0700);
}

/* An address that is no URL, and a key: neither is any use. */
static void a_stale_address_and_a_log_folder(void)
{
    fsio_mkdirs(".drctl/neon-local/x", 0700);
    fsio_write_durable(".drctl/neon-local.url", "not-a-url\n", 10);
    fsio_write_durable(".drctl/neon-local/api-key", "key\n", 4);
    the_log_is_a_folder();
}

/* An address where nothing answers. */
static void a_dead_address_and_a_log_folder(void)
{
    fsio_mkdirs(".drctl/neon-local", 0700);
    fsio_write_durable(".drctl/neon-local.url", "http://127.0.0.1:1\n", 19);
    fsio_write_durable(".drctl/neon-local/api-key", "key\n", 4);
    the_log_is_a_folder();
}

static void an_address_where_nothing_answers_is_not_reused(void)
{
    local_case c = { .folder = "dead-url", .prepare = a_dead_address_and_a_log_folder };
    connect_in_folder(&c);
    int ok = c.rc == DR_EFAIL && strstr(c.error, "neon-local stopped at once");
    if (!ok)
        test_fail(__FILE__, __LINE__, "not reused", c.error);
    local_case_dispose(&c);
}

static void a_local_home_that_is_a_file_is_an_error(void)
{
    local_case c = { .folder = "home-is-a-file", .prepare = drctl_home_is_a_file };
    connect_in_folder(&c);
    int ok = c.rc != 0;
    char *kept = slurp(".drctl");
    local_case_dispose(&c);
    free(kept);
    CHECK(ok);
}

static void a_lock_that_cannot_be_opened_is_named(void)
{
    local_case c = { .folder = "lock-is-a-folder", .prepare = the_lock_is_a_folder };
    connect_in_folder(&c);
    int ok = c.rc == DR_EFAIL && strstr(c.error, "cannot lock ./.drctl/neon-local.lock");
    if (!ok)
        test_fail(__FILE__, __LINE__, "lock refused", c.error);
    local_case_dispose(&c);
}

static void neon_local_that_cannot_log_is_reported_as_stopped_at_once(void)
{
    local_case c = { .folder = "log-is-a-folder", .prepare = the_log_is_a_folder };
    connect_in_folder(&c);
    int ok = c.rc == DR_EFAIL && strstr(c.error, "neon-local stopped at once") && strstr(c.error, "(no log)");
    if (!ok)
        test_fail(__FILE__, __LINE__, "stopped at once, no log", c.error);
    local_case_dispose(&c);
}

static void a_stale_address_is_not_trusted_and_neon_local_is_started_again(void)
{
    local_case c = { .folder = "stale-url", .prepare = a_stale_address_and_a_log_folder };
    connect_in_folder(&c);
    /* it tried to start one (and that one could not log): the stale address was not used */
    int ok = c.rc == DR_EFAIL && strstr(c.error, "neon-local stopped at once");
    if (!ok)
        test_fail(__FILE__, __LINE__, "started again", c.error);
    local_case_dispose(&c);
}

static void neon_local_that_exits_at_once_is_reported_with_its_log(void)
{
    /* a data folder under a regular file: neon-local cannot make it (or,
     * with none installed, cannot be run at all); it ends at once either way */
    char *file = tmp_path("plain-file");
    fsio_write_durable(file, "x", 1);
    char *data = xasprintf("%s/data", file);
    saved_env path = env_save("PATH");
    char *empty_bin = tmp_path("empty-bin");
    fsio_mkdirs(empty_bin, 0700);
    setenv("PATH", empty_bin, 1);
    local_case c = { .folder = "exits-at-once", .local_dir = data };
    connect_in_folder(&c);
    env_restore(&path);
    char *log = xasprintf("%s/neon-local.log", c.home);
    char *log_text = slurp(log);
    int ok = c.rc == DR_EFAIL && strstr(c.error, "neon-local stopped at once; the end of") &&
             strstr(c.error, "neon-local.log says:") && log_text[0] && strstr(c.error, log_text + (strlen(log_text) > 600 ? strlen(log_text) - 600 : 0));
    if (!ok)
        test_fail(__FILE__, __LINE__, "stopped at once with its log", c.error);
    free(log_text);
    free(log);
    local_case_dispose(&c);
    free(empty_bin);
    free(data);
    free(file);
}

/* ---- signals ------------------------------------------------------------------------ */

static char stop_record[512];

/* The hard-stop handler: writes why where the test reads it, then ends
 * the child with the status signals_hard_stop would give, through exit
 * rather than _exit so that gcov and the leak checker still run. */
static void record_hard_stop(void *ud, const char *why)
{
    (void)ud;
    FILE *f = fopen(stop_record, "w");
    if (f) {
        fputs(why, f);
        fclose(f);
    }
    exit(130);
}

typedef void (*child_body)(void);

/* Runs body in a child with the watchdog on; the child's wait status and
 * what the hard-stop handler recorded (caller frees). */
static int watched_child(child_body body, char **why)
{
    snprintf(stop_record, sizeof stop_record, "%s/hard-stop.txt", test_tmpdir());
    unlink(stop_record);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int null_fd = open("/dev/null", O_WRONLY);
        dup2(null_fd, 2);
        close(null_fd);
        alarm(30); /* a watchdog that never fires must not hang the suite */
        signals_install();
        signals_set_hard_stop(record_hard_stop, NULL);
        body();
        for (int i = 0; i < 300; i++) { /* 15 s: past the grace period */
            struct timespec ts = { 0, 50 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        exit(3); /* not stopped */
    }
    int status = wait_child(pid, 40);
    *why = slurp(stop_record);
    return status;
}

static void watch_past_deadline_inside_a_nested_call(void)
{
    signals_watch outer, inner;
    signals_watch_begin(&outer, timefmt_monotonic() + 0.2, "step 'copy'");
    signals_watch_begin(&inner, 0, "a nested call");
    signals_watch_end(&inner); /* back to watching the step */
}

static void two_sigterms(void)
{
    raise(SIGTERM);
    raise(SIGTERM);
}

static void watch_a_call_then_signal_once(void)
{
    signals_watch previous;
    signals_watch_begin(&previous, 0, "step 'scan'");
    raise(SIGINT);
}

static void a_call_that_ignores_a_signal_is_stopped_after_the_grace(void)
{
    char *why = NULL;
    double started = timefmt_monotonic();
    int status = watched_child(watch_a_call_then_signal_once, &why);
    double took = timefmt_monotonic() - started;
    int ok = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 130 &&
             strstr(why, "step 'scan' did not stop within 10s of SIGINT") &&
             took >= SIGNALS_HARD_STOP_GRACE_SECONDS - 0.5;
    if (!ok)
        test_fail(__FILE__, __LINE__, "hard stop after the grace", why);
    free(why);
}

static void a_call_past_its_hard_deadline_is_stopped_with_status_130(void)
{
    char *why = NULL;
    int status = watched_child(watch_past_deadline_inside_a_nested_call, &why);
    int ok = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 130 &&
             strstr(why, "step 'copy' ran 10s past its deadline");
    if (!ok)
        test_fail(__FILE__, __LINE__, "hard stop past the deadline", why);
    free(why);
}

static void a_second_signal_stops_at_once_and_names_it(void)
{
    char *why = NULL;
    int status = watched_child(two_sigterms, &why);
    int ok = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 130 &&
             strstr(why, "a second signal (SIGTERM) came while the first was being handled");
    if (!ok)
        test_fail(__FILE__, __LINE__, "second signal", why);
    free(why);
}

static int signals_after_uninstall(void *arg)
{
    (void)arg;
    signals_uninstall(); /* never installed: nothing to stop */
    signals_install();
    signals_uninstall();
    signals_uninstall();
    signals_set_hard_stop(record_hard_stop, NULL);
    raise(SIGINT);
    raise(SIGINT); /* no watchdog: no hard stop */
    struct timespec ts = { 0, 200 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    return signals_pending() == SIGINT ? 0 : 1;
}

static void without_the_watchdog_two_signals_are_only_flagged(void)
{
    char *out = tmp_path("sig.out"), *err = tmp_path("sig.err");
    snprintf(stop_record, sizeof stop_record, "%s/hard-stop.txt", test_tmpdir());
    unlink(stop_record);
    int status = in_child(signals_after_uninstall, NULL, out, err, 20);
    int stopped = access(stop_record, F_OK) == 0;
    free(out);
    free(err);
    CHECK(status == 0);
    CHECK(!stopped);
}

/* A child's status when the descriptor limit does not bind (under
 * valgrind): the case cannot be made there. */
#define LIMIT_NOT_ENFORCED 77

static int install_with_no_descriptor_left(void *arg)
{
    (void)arg;
    struct rlimit was, few;
    getrlimit(RLIMIT_NOFILE, &was);
    few = was;
    few.rlim_cur = 3; /* 0, 1 and 2 are taken: no pipe can be made */
    setrlimit(RLIMIT_NOFILE, &few);
    int probe[2];
    if (pipe(probe) == 0) { /* not enforced here (valgrind keeps its own table) */
        close(probe[0]);
        close(probe[1]);
        setrlimit(RLIMIT_NOFILE, &was);
        return LIMIT_NOT_ENFORCED;
    }
    signals_install();
    setrlimit(RLIMIT_NOFILE, &was);
    signals_uninstall(); /* nothing started */
    return 0;
}

static void a_watchdog_that_cannot_start_is_warned_about(void)
{
    char *out = tmp_path("nofd.out"), *err = tmp_path("nofd.err");
    int status = in_child(install_with_no_descriptor_left, NULL, out, err, 20);
    char *said = slurp(err);
    int ok = status == LIMIT_NOT_ENFORCED || (status == 0 && strstr(said, "cannot start the watchdog") &&
             strstr(said, "will not be stopped past its deadline"));
    if (!ok)
        test_fail(__FILE__, __LINE__, "watchdog warning", said);
    free(said);
    free(out);
    free(err);
}

/* ---- drctl list --------------------------------------------------------------------- */

static void list_refuses_a_positional_argument(void)
{
    char *argv[] = { "drctl", "list", "extra", NULL };
    char *out, *err;
    int status = drctl(&out, &err, NULL, NULL, 3, argv);
    int ok = status == 2 && strstr(err, "usage: drctl list") && !out[0];
    if (!ok)
        test_fail(__FILE__, __LINE__, "usage refusal", err);
    free(out);
    free(err);
}

static void list_of_empty_folders_says_none_were_found_and_where(void)
{
    char *missing = tmp_path("no-such-folder"), *empty = tmp_path("empty-folder");
    fsio_mkdirs(empty, 0700);
    char *one = xasprintf("--runbooks=%s", missing), *two = xasprintf("--runbooks=%s", empty);
    char *argv1[] = { "drctl", "list", one, NULL };
    char *argv2[] = { "drctl", "list", one, two, NULL };
    char *out1, *err1, *out2, *err2;
    int s1 = drctl(&out1, &err1, NULL, NULL, 3, argv1);
    int s2 = drctl(&out2, &err2, NULL, NULL, 4, argv2);
    char *want1 = xasprintf("no runbooks found (searched %s)", missing);
    char *want2 = xasprintf("no runbooks found (searched %s and the others given)", missing);
    int ok = s1 == 0 && s2 == 0 && strstr(err1, want1) && strstr(err2, want2);
    if (!ok)
        test_fail(__FILE__, __LINE__, "no runbooks found", err2);
    free(want1);
    free(want2);
    free(out1);
    free(err1);
    free(out2);
    free(err2);
    free(one);
    free(two);
    free(missing);
    free(empty);
}

static void a_runbook_shadowed_by_an_earlier_folder_is_listed_once(void)
{
    test_write_file("first/same.lua", RUNBOOK("same"));
    test_write_file("second/same.lua", RUNBOOK("same"));
    test_write_file("second/other.lua", RUNBOOK("other"));
    char *one = xasprintf("--runbooks=%s/first", test_tmpdir()), *two = xasprintf("--runbooks=%s/second", test_tmpdir());
    char *argv[] = { "drctl", "list", "--json", one, two, NULL };
    char *out, *err;
    int status = drctl(&out, &err, NULL, NULL, 5, argv);
    cJSON *list = cJSON_Parse(out);
    int ok = status == 0 && cJSON_GetArraySize(list) == 2 && strstr(out, "first/same.lua") &&
             !strstr(out, "second/same.lua") && strstr(out, "other.lua");
    if (!ok)
        test_fail(__FILE__, __LINE__, "shadowed runbook", out);
    cJSON_Delete(list);
    free(out);
    free(err);
    free(one);
    free(two);
}

/* Every descriptor but one taken: no pipe for a child, so list loads each
 * runbook itself (a runbook needs only the one to be read). */
static int held_fds[256];
static int held_count;
static struct rlimit nofile_was;

static void give_descriptors_back(void);

static void leave_one_descriptor(void)
{
    getrlimit(RLIMIT_NOFILE, &nofile_was);
    struct rlimit few = nofile_was;
    few.rlim_cur = 64;
    setrlimit(RLIMIT_NOFILE, &few);
    int fd;
    while (held_count < 256 && (fd = open("/dev/null", O_RDONLY)) >= 0)
        held_fds[held_count++] = fd;
    close(held_fds[--held_count]);
    int probe[2];
    if (pipe(probe) == 0) { /* not enforced here (valgrind keeps its own table) */
        close(probe[0]);
        close(probe[1]);
        give_descriptors_back();
        exit(LIMIT_NOT_ENFORCED);
    }
}

static void give_descriptors_back(void)
{
    while (held_count > 0)
        close(held_fds[--held_count]);
    setrlimit(RLIMIT_NOFILE, &nofile_was);
}

static void without_a_pipe_list_loads_each_runbook_itself(void)
{
    test_write_file("here/good.lua", RUNBOOK("good"));
    test_write_file("here/broken.lua", "return runbook { name = 'broken' \n");
    char *dirs = xasprintf("--runbooks=%s/here", test_tmpdir());
    char *argv[] = { "drctl", "list", dirs, NULL };
    char *out, *err;
    int status = drctl(&out, &err, leave_one_descriptor, give_descriptors_back, 3, argv);
    int ok = status == LIMIT_NOT_ENFORCED || (status == 2 && strstr(out, "good ") && strstr(out, "the good one") && strstr(out, "(invalid)") &&
             strstr(out, "broken.lua") && strstr(err, "some runbooks do not load"));
    if (!ok)
        test_fail(__FILE__, __LINE__, "listed in-process", out);
    free(out);
    free(err);
    free(dirs);
}

static void interrupt_soon(int sig)
{
    (void)sig;
    raise(SIGINT);
}

static void install_signals_and_an_interrupt_in_half_a_second(void)
{
    signals_install();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = interrupt_soon;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval half = { .it_value = { 0, 500 * 1000 } };
    setitimer(ITIMER_REAL, &half, NULL);
}

static void uninstall_signals(void)
{
    signals_uninstall();
}

static void an_interrupted_list_names_the_runbook_it_was_loading(void)
{
    test_write_file("slow/slow.lua", "local drill = require('drill')\n"
                                     "local t = drill.clock()\n"
                                     "while drill.clock() - t < 5 do end\n" RUNBOOK("slow"));
    char *dirs = xasprintf("--runbooks=%s/slow", test_tmpdir());
    char *argv[] = { "drctl", "list", dirs, NULL };
    char *out, *err;
    double started = timefmt_monotonic();
    int status = drctl(&out, &err, install_signals_and_an_interrupt_in_half_a_second, uninstall_signals, 3, argv);
    double took = timefmt_monotonic() - started;
    int ok = status == 2 && strstr(out, "slow.lua: not loaded (interrupted)") && took < 4;
    if (!ok)
        test_fail(__FILE__, __LINE__, "interrupted list", out);
    free(out);
    free(err);
    free(dirs);
}

/* ---- the drill module --------------------------------------------------------------- */

static int events_seen;

static int count_event(void *ud, const char *kind, cJSON *data)
{
    (void)ud;
    (void)kind;
    cJSON_Delete(data);
    events_seen++;
    return 0;
}

/* Runs code with the drill module on host; "ok: <result>" or "error:
 * <message>" (caller frees). */
static char *eval_drill(dr_host *host, const char *code)
{
    sandbox *sb;
    sandbox_new(&sb, 64u << 20);
    drmod_register(sb, host);
    drill_module *m = drillmod_register(sb, host);
    char *out = test_eval_in(sb, code, 10);
    sandbox_free(sb);
    drillmod_free(m);
    return out;
}

static void outside_a_drill_the_module_is_inactive_and_its_scope_raises(void)
{
    dr_host host = { .event = count_event };
    char *active = eval_drill(&host, "return require('drill').active()");
    char *scope = eval_drill(&host, "return require('drill').scope()");
    char *stats = eval_drill(&host, "return require('drill').writer_stats()");
    int ok = strcmp(active, "ok: false") == 0 && strstr(scope, "error:") &&
             strstr(scope, "the drill module works only inside drctl drill") &&
             strstr(stats, "works only inside drctl drill");
    if (!ok)
        test_fail(__FILE__, __LINE__, "outside a drill", scope);
    free(active);
    free(scope);
    free(stats);
}

static void in_plan_mode_the_drill_writer_is_refused(void)
{
    drill_scope *scope = drill_scope_new("run-1", timefmt_now());
    dr_host host = { .event = count_event, .plan_mode = 1, .drill = scope };
    char *got = eval_drill(&host, "return require('drill').writer_start('postgresql://u@127.0.0.1:1/db', 5)");
    drill_scope_free(scope);
    CHECK_CONTAINS(got, "drill.writer_start is refused in plan mode");
    free(got);
}

static void a_writer_with_a_bad_rate_is_refused_and_names_the_rate(void)
{
    drill_scope *scope = drill_scope_new("run-1", timefmt_now());
    drill_scope_add(scope, DRILL_HOST, "127.0.0.1:1");
    dr_host host = { .event = count_event, .drill = scope };
    events_seen = 0;
    char *got = eval_drill(&host, "local d = require('drill')\n"
                                  "local none = d.writer_stats()\n"
                                  "d.writer_start('postgresql://u@127.0.0.1:1/db', 0)");
    drill_scope_free(scope);
    int ok = strstr(got, "write_rate 0: give 1 to 1000") && events_seen == 0;
    if (!ok)
        test_fail(__FILE__, __LINE__, "bad rate", got);
    free(got);
}

static void a_writer_on_a_uri_without_a_host_is_refused(void)
{
    drill_scope *scope = drill_scope_new("run-1", timefmt_now());
    drill_scope_add(scope, DRILL_HOST, "127.0.0.1:1");
    dr_host host = { .event = count_event, .drill = scope };
    events_seen = 0;
    char *got = eval_drill(&host, "return require('drill').writer_start('dbname=orders', 5)");
    drill_scope_free(scope);
    int ok = strstr(got, "the drill refused a writer on ?: not one of the drill's branches") && events_seen == 1;
    if (!ok)
        test_fail(__FILE__, __LINE__, "hostless writer", got);
    free(got);
}

static void a_running_writer_reports_its_stats_and_is_not_started_twice(void)
{
    drill_scope *scope = drill_scope_new("run-1", timefmt_now());
    drill_scope_add(scope, DRILL_HOST, "127.0.0.1:1");
    dr_host host = { .event = count_event, .drill = scope };
    events_seen = 0;
    char *got = eval_drill(&host, "local d = require('drill')\n"
                                  "local uri = 'postgresql://u@127.0.0.1:1/db?connect_timeout=1'\n"
                                  "assert(d.writer_start(uri, 5) == true)\n"
                                  "local again = d.writer_start(uri, 5)\n"
                                  "local s = d.writer_stats()\n"
                                  "local stopped = d.writer_stop()\n"
                                  "return tostring(again) .. ' ' .. type(s.inserted) .. ' ' .. "
                                  "tostring(s.seconds >= 0) .. ' ' .. tostring(d.writer_stop())");
    drill_scope_free(scope);
    int ok = strcmp(got, "ok: false number true nil") == 0 && events_seen == 2;
    if (!ok)
        test_fail(__FILE__, __LINE__, "writer stats", got);
    free(got);
}

static const char *giterr_text(void)
{
    const git_error *e = git_error_last();
    return e && e->message ? e->message : "?";
}

/* ---- signing and signature checks --------------------------------------------------- */

static int signer_with_key_file(signer **s, const char *key_name, const char *key_text, const char *pub_text)
{
    const char *key = test_write_file(key_name, key_text);
    char *key_path = xstrdup(key);
    if (pub_text) {
        char *pub = xasprintf("%s.pub", key_name);
        test_write_file(pub, pub_text);
        free(pub);
    }
    saved_env env = env_save(SIGNING_KEY_ENV);
    setenv(SIGNING_KEY_ENV, key_path, 1);
    int rc = signer_from_env(s);
    env_restore(&env);
    free(key_path);
    return rc;
}

static void a_key_whose_public_half_is_missing_names_the_fix(void)
{
    signer *s = NULL;
    CHECK(signer_with_key_file(&s, "pubkey-only", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 someone\n", NULL) == DR_EUSAGE);
    CHECK(s == NULL);
    CHECK_CONTAINS(err_last(), "its public half");
    CHECK_CONTAINS(err_last(), "pubkey-only.pub cannot be read");
    CHECK_CONTAINS(err_last(), "ssh-keygen -y -f");
}

static void a_public_half_that_is_no_key_is_named(void)
{
    signer *s = NULL;
    CHECK(signer_with_key_file(&s, "odd-key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 someone\n", "not a key at all\n") ==
          DR_EUSAGE);
    CHECK(s == NULL);
    CHECK_CONTAINS(err_last(), "odd-key.pub is not an SSH public key");
}

static void a_dot_pub_file_given_as_the_key_is_its_own_public_half(void)
{
    signer *s = NULL;
    CHECK(signer_with_key_file(&s, "given.pub", "ssh-ed25519 !!!not-base64!!! someone\n", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "given.pub is not an SSH public key");
    CHECK(!strstr(err_last(), "given.pub.pub"));
}

static void an_ed25519_key_signs_in_process_with_its_fingerprint(void)
{
    char *key = sshkeys_make("signing-key", "ed25519", NULL, "");
    CHECK(key != NULL);
    saved_env env = env_save(SIGNING_KEY_ENV);
    setenv(SIGNING_KEY_ENV, key, 1);
    signer *s = NULL;
    int rc = signer_from_env(&s);
    env_restore(&env);
    free(key);
    CHECK(rc == 0 && s != NULL);
    const char *fp = signer_fingerprint(s);
    int ok = fp && strncmp(fp, "SHA256:", 7) == 0;
    char *armored = NULL;
    int signed_ok = signer_sign(&armored, s, "tree x\n", 7) == 0 && armored && strstr(armored, "BEGIN SSH SIGNATURE");
    free(armored);
    signer_free(s);
    CHECK(ok);
    CHECK(signed_ok);
}

static void a_repository_without_commits_has_no_signatures_to_check(void)
{
    git_repository *repo = NULL;
    char *dir = tmp_path("empty-repo");
    CHECK(git_repository_init(&repo, dir, 0) == 0);
    verify_result r = { .problems = cJSON_CreateArray() };
    verify_signatures(&r, repo, NULL);
    git_repository_free(repo);
    free(dir);
    int none = cJSON_GetArraySize(r.problems) == 0 && r.signed_commits == 0;
    cJSON_Delete(r.problems);
    CHECK(none);
}

static void a_commit_with_a_signature_that_is_not_ssh_is_named(void)
{
    git_repository *repo = NULL;
    char *dir = tmp_path("badsig-repo");
    CHECK(git_repository_init(&repo, dir, 0) == 0);
    git_treebuilder *tb = NULL;
    git_oid tree_id, commit_id;
    git_tree *tree = NULL;
    git_signature *who = NULL;
    git_buf content = GIT_BUF_INIT;
    int made = git_treebuilder_new(&tb, repo, NULL) == 0 && git_treebuilder_write(&tree_id, tb) == 0 &&
               git_tree_lookup(&tree, repo, &tree_id) == 0 &&
               git_signature_new(&who, "Ada", "ada@example.org", 1760000000, 0) == 0 &&
               git_commit_create_buffer(&content, repo, who, who, NULL, "a commit\n", tree, 0, NULL) == 0 &&
               git_commit_create_with_signature(&commit_id, repo, content.ptr, "garbage signature", NULL) == 0 &&
               git_reference_create(NULL, repo, "refs/heads/signed", &commit_id, 1, "test") == 0 &&
               git_repository_set_head(repo, "refs/heads/signed") == 0;
    git_buf_dispose(&content);
    git_signature_free(who);
    git_tree_free(tree);
    git_treebuilder_free(tb);
    verify_result r = { .problems = cJSON_CreateArray() };
    if (made)
        verify_signatures(&r, repo, NULL);
    git_repository_free(repo);
    free(dir);
    char *problems = cJSON_PrintUnformatted(r.problems);
    cJSON_Delete(r.problems);
    int ok = made && strstr(problems, "its signature does not hold") && r.signed_commits == 0;
    if (!ok)
        test_fail(__FILE__, __LINE__, made ? "a problem named" : "commit made", made ? problems : giterr_text());
    free(problems);
}

/* ---- the lock renewer --------------------------------------------------------------- */

static void renew_for_a_while(void *dir)
{
    cJSON *holder = cJSON_CreateObject();
    cJSON_AddStringToObject(holder, "expires_at", "2026-01-01T00:00:00Z");
    lock_renewer *r = lock_renewer_start(dir, "target-key", holder, 0.2);
    struct timespec ts = { 0, 600 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    lock_renewer_stop(r);
}

static void a_renewer_on_a_missing_trail_warns_that_the_lock_will_lapse(void)
{
    char *dir = tmp_path("no-such-trail");
    char *said = stderr_of(renew_for_a_while, dir);
    int ok = strstr(said, "the target lock on origin will not be renewed") != NULL;
    if (!ok)
        test_fail(__FILE__, __LINE__, "missing trail", said);
    free(said);
    struct stat st;
    int made = stat(dir, &st) == 0;
    free(dir);
    CHECK(!made); /* the renewer only reads the trail */
}

static void create_trail(void *dir)
{
    audit *a = NULL;
    if (audit_open(&a, dir, 1) == 0)
        audit_free(a);
}

static void a_lock_that_cannot_be_renewed_on_origin_is_warned_about(void)
{
    char *dir = tmp_path("trail-with-dead-origin");
    char *created = stderr_of(create_trail, dir);
    free(created);
    git_repository *repo = NULL;
    git_remote *origin = NULL;
    char *nowhere = tmp_path("no-such-origin.git");
    int added = git_repository_open(&repo, dir) == 0 && git_remote_create(&origin, repo, "origin", nowhere) == 0;
    git_remote_free(origin);
    git_repository_free(repo);
    free(nowhere);
    char *said = added ? stderr_of(renew_for_a_while, dir) : xstrdup("no origin");
    int ok = added && strstr(said, "the target lock on origin could not be renewed");
    if (!ok)
        test_fail(__FILE__, __LINE__, "renewal failure", said);
    free(said);
    free(dir);
}

/* ---- the terminal ------------------------------------------------------------------- */

static void quieter_than_quiet_silences_errors_too(void *arg)
{
    (void)arg;
    int was = term_verbosity();
    term_set_verbosity(TERM_QUIET - 1);
    term_error("an error %d", 1);
    term_warn("a warning %d", 2);
    term_info("information %d", 3);
    term_out("a result %d", 5);
    term_set_verbosity(TERM_NORMAL);
    term_debug("a detail %d", 6);
    term_set_verbosity(TERM_VERBOSE);
    term_debug("a detail %d", 7);
    term_set_verbosity(was);
    term_warn("a warning %d", 4);
}

static void each_message_shows_only_at_its_verbosity(void)
{
    char *said = stderr_of(quieter_than_quiet_silences_errors_too, NULL);
    char *shown = output_of(1, quieter_than_quiet_silences_errors_too, NULL);
    int ok = strcmp(said, "  . a detail 7\ndrctl: warning: a warning 4\n") == 0 && shown[0] == '\0';
    if (!ok)
        test_fail(__FILE__, __LINE__, "only the last warning", said);
    free(said);
    free(shown);
}

static void a_message_too_long_to_format_is_dropped(void *arg)
{
    (void)arg;
    volatile int widest = 2147483647; /* two of these overflow vasprintf's int */
    term_warn("%*d%*d", widest, 1, widest, 2);
    term_warn("after");
}

static void a_message_that_cannot_be_formatted_is_skipped(void)
{
    char *said = stderr_of(a_message_too_long_to_format_is_dropped, NULL);
    int ok = strcmp(said, "drctl: warning: after\n") == 0;
    if (!ok)
        test_fail(__FILE__, __LINE__, "dropped message", said);
    free(said);
}

TEST_SUITE(cov_engine_small)
{
    REGISTER(the_operator_is_git_name_and_email_when_both_are_configured);
    REGISTER(the_operator_is_git_name_alone_without_an_email);
    REGISTER(an_email_without_a_name_falls_back_to_the_login_name);
    REGISTER(an_empty_git_name_falls_back_to_the_login_name);
    REGISTER(a_git_config_that_does_not_parse_falls_back_to_the_login_name);
    REGISTER(an_empty_drctl_operator_is_not_an_operator);
    REGISTER(drctl_local_counts_only_when_it_says_yes);
    REGISTER(a_cloud_target_at_another_host_is_described_by_its_host);
    REGISTER(no_target_is_described_as_none_and_refused_on_connect);
    REGISTER(a_local_target_with_its_address_is_described_by_the_address);
    REGISTER(a_local_home_that_is_a_file_is_an_error);
    REGISTER(a_lock_that_cannot_be_opened_is_named);
    REGISTER(neon_local_that_cannot_log_is_reported_as_stopped_at_once);
    REGISTER(a_stale_address_is_not_trusted_and_neon_local_is_started_again);
    REGISTER(neon_local_that_exits_at_once_is_reported_with_its_log);
    REGISTER(an_address_where_nothing_answers_is_not_reused);
    REGISTER(a_call_past_its_hard_deadline_is_stopped_with_status_130);
    REGISTER(a_second_signal_stops_at_once_and_names_it);
    REGISTER(a_call_that_ignores_a_signal_is_stopped_after_the_grace);
    REGISTER(without_the_watchdog_two_signals_are_only_flagged);
    REGISTER(a_watchdog_that_cannot_start_is_warned_about);
    REGISTER(list_refuses_a_positional_argument);
    REGISTER(list_of_empty_folders_says_none_were_found_and_where);
    REGISTER(a_runbook_shadowed_by_an_earlier_folder_is_listed_once);
    REGISTER(without_a_pipe_list_loads_each_runbook_itself);
    REGISTER(an_interrupted_list_names_the_runbook_it_was_loading);
    REGISTER(outside_a_drill_the_module_is_inactive_and_its_scope_raises);
    REGISTER(in_plan_mode_the_drill_writer_is_refused);
    REGISTER(a_writer_with_a_bad_rate_is_refused_and_names_the_rate);
    REGISTER(a_writer_on_a_uri_without_a_host_is_refused);
    REGISTER(a_running_writer_reports_its_stats_and_is_not_started_twice);
    REGISTER(a_key_whose_public_half_is_missing_names_the_fix);
    REGISTER(a_public_half_that_is_no_key_is_named);
    REGISTER(a_dot_pub_file_given_as_the_key_is_its_own_public_half);
    REGISTER(an_ed25519_key_signs_in_process_with_its_fingerprint);
    REGISTER(a_repository_without_commits_has_no_signatures_to_check);
    REGISTER(a_commit_with_a_signature_that_is_not_ssh_is_named);
    REGISTER(a_renewer_on_a_missing_trail_warns_that_the_lock_will_lapse);
    REGISTER(a_lock_that_cannot_be_renewed_on_origin_is_warned_about);
    REGISTER(each_message_shows_only_at_its_verbosity);
    REGISTER(a_message_that_cannot_be_formatted_is_skipped);
}
