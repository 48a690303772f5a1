#include "cli.h"

#include "audit.h"
#include "audit_remote.h"
#include "buf.h"
#include "checkpoint.h"
#include "drill.h"
#include "drillmod.h"
#include "drmod.h"
#include "dumpmod.h"
#include "err.h"
#include "fsio.h"
#include "journal.h"
#include "jsontext.h"
#include "lock.h"
#include "neonmod.h"
#include "params.h"
#include "pgmod.h"
#include "redact.h"
#include "runbook.h"
#include "report.h"
#include "runner.h"
#include "runs.h"
#include "sandbox.h"
#include "signals.h"
#include "term.h"
#include "timefmt.h"
#include "verify.h"
#include "jsonfield.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MEMORY_LIMIT (512u << 20)

typedef struct cli {
    const char *command;
    char **runbook_dirs;
    size_t runbook_dir_count;
    const char *audit_dir;
    int json;
    char **params;
    size_t param_count;
    char **approvals;
    size_t approval_count;
    const char *run_id;
    int allow_runbook_change;
    int local;        /* --local: rehearse on neon-local */
    char **args;
    size_t arg_count;
    int help;
    int reported;     /* the error was already shown with the run's outcome */
    int history;      /* drill --history */
} cli;

/* ---- help ------------------------------------------------------------------ */

static const char usage_text[] =
    "drctl: disaster-recovery runbooks for PostgreSQL on Neon\n"
    "\n"
    "usage: drctl [global options] COMMAND [args]\n"
    "\n"
    "commands:\n"
    "  list                      runbooks on the search path: name, version, summary, blob id\n"
    "  plan RUNBOOK [-p k=v]...  dry run: the steps, what each would do, which need confirmation\n"
    "  run RUNBOOK [-p k=v]... [--approve STEP]... [--run-id ID]\n"
    "                            run a runbook, checkpointing every step\n"
    "  resume RUN_ID [--approve STEP]... [--allow-runbook-change] [-p secret=v]...\n"
    "                            go on with a paused, failed or interrupted run\n"
    "  status [RUN_ID]           all runs, or the steps of one run\n"
    "  abort RUN_ID              close a paused or failed run for good (cleanup steps run)\n"
    "  drill SCENARIO [-p k=v]... rehearse accidental-deletion, corruption or total-loss on a\n"
    "                            copy of production: RTO, RPO, exactness, nothing left behind\n"
    "  drill --history           past drills, newest first\n"
    "  audit log | show RUN_ID | verify\n"
    "                            read and check the audit trail (a git repository)\n"
    "\n"
    "global options:\n"
    "  --runbooks DIR   where runbooks are found (repeatable; default ./runbooks, then\n"
    "                   " DRCTL_SHAREDIR "/runbooks)\n"
    "  --audit DIR      the audit directory (default $DRCTL_AUDIT_DIR, else ./drctl-audit)\n"
    "  --json           machine-readable output on stdout\n"
    "  --local          act on neon-local (rehearsal) in ./.drctl/neon-local, started when\n"
    "                   not running (also DRCTL_LOCAL=1); without it, runbooks that use\n"
    "                   Neon act on the Neon API of NEON_API_KEY (and NEON_API_HOST)\n"
    "  -v, -q           more or less output\n"
    "  -h, --help       help (also: drctl COMMAND --help)\n"
    "  --version        the version\n"
    "\n"
    "exit codes: 0 done; 1 a step failed (resumable); 2 usage error or bad input (nothing\n"
    "was done); 3 a confirmation was refused or is missing (paused, resumable); 4 locked by\n"
    "another run; 130 interrupted (checkpoint saved, resumable).\n";

static const struct {
    const char *command;
    const char *text;
} command_help[] = {
    { "list",
      "usage: drctl list [--runbooks DIR]... [--json]\n"
      "\n"
      "Lists the runbooks on the search path with their version, summary and git blob id.\n"
      "A runbook that does not load is listed with its error, and the exit code is 2.\n" },
    { "plan",
      "usage: drctl plan RUNBOOK [-p key=value]... [--json]\n"
      "\n"
      "Shows what a run would do, step by step, without doing it: each step's plan, which\n"
      "steps are destructive and what their confirmation will say. Params are validated as\n"
      "for run. RUNBOOK is a name on the search path or a path to a .lua file.\n" },
    { "run",
      "usage: drctl run RUNBOOK [-p key=value]... [--approve STEP]... [--run-id ID] [--json]\n"
      "\n"
      "Runs RUNBOOK. Every step's state is made durable before the next action, so a run\n"
      "that dies can be resumed. Destructive steps ask for a typed confirmation on the\n"
      "terminal; without one, only --approve STEP lets such a step go.\n"
      "\n"
      "  -p key=value     a param (see drctl plan); also DRCTL_PARAM_<KEY> in the environment,\n"
      "                   which keeps secret values off the command line\n"
      "  --approve STEP   pre-approve the confirmation of STEP (recorded with your identity)\n"
      "  --run-id ID      name the run (default: <UTC time>-<runbook>-<random>)\n" },
    { "resume",
      "usage: drctl resume RUN_ID [--approve STEP]... [--allow-runbook-change] [-p secret=v]...\n"
      "\n"
      "Goes on with a run: done steps are skipped and their outputs restored. A step that\n"
      "began and did not finish runs again only if it is idempotent; otherwise it needs a\n"
      "confirmation (terminal or --approve STEP). If the runbook file changed since the run\n"
      "started, resume refuses unless --allow-runbook-change is given (recorded).\n"
      "Params are those of the run; secret params, never stored, are given again with -p\n"
      "or DRCTL_PARAM_<KEY>.\n" },
    { "status",
      "usage: drctl status [RUN_ID] [--json]\n"
      "\n"
      "Without RUN_ID: every run, newest first, with its runbook, status and operator.\n"
      "With RUN_ID: the run's params and each step's state, attempts, outputs and errors.\n" },
    { "abort",
      "usage: drctl abort RUN_ID [--approve STEP]... [-p secret=v]...\n"
      "\n"
      "Closes a paused, failed or interrupted run for good. Its cleanup steps (always = true)\n"
      "that have not run yet run first, so nothing is left behind; then the run is recorded\n"
      "as aborted by you and can no longer be resumed.\n" },
    { "drill",
      "usage: drctl drill accidental-deletion|corruption|total-loss [-p key=value]... [--run-id ID] [--json]\n"
      "       drctl drill --history [--json]\n"
      "\n"
      "Rehearses a scenario for real on the target (the Neon API, or neon-local with --local),\n"
      "never changing production: a copy of `branch` (default: the project's default branch)\n"
      "is made, the incident happens on the copy, and the scenario's real runbook recovers it.\n"
      "Its destructive steps are approved for the drill's own branches only: the engine refuses\n"
      "any change to a branch, endpoint or project the drill did not make, and the drill fails.\n"
      "\n"
      "  -p incident_sql=SQL     accidental-deletion (default: 10% of the largest table's rows deleted)\n"
      "  -p corruption_sql=SQL -p check_sql=SQL\n"
      "                          corruption (default: a column nulled on 10% of the largest table)\n"
      "  -p dump=MANIFEST        total-loss: the export to restore (default: a new export of the copy)\n"
      "  -p write_rate=N         N writes a second on the copy from before the incident to the check\n"
      "  -p ttl=DURATION         every branch the drill makes expires after it (default 1d)\n"
      "  -p strategy=... and the scenario's other params pass through (drctl plan SCENARIO)\n"
      "\n"
      "Measured: RTO (the scenario's start to its check, each step's share), RPO (the restore\n"
      "point to the incident, and the rows lost per table), and exactness: every table of the\n"
      "recovered branch against the copy just before the incident (count and checksum). Then\n"
      "everything the drill made is deleted and listed again (left behind: 0). A killed drill\n"
      "resumes with drctl resume; drctl abort cleans it up.\n"
      "Exit 0: passed; 1: failed (or a step failed); otherwise as for run.\n"
      "\n"
      "  --history               every drill in the audit trail: scenario, date, operator, RTO, RPO, result\n" },
    { "audit",
      "usage: drctl audit log | show RUN_ID | verify [--json]\n"
      "\n"
      "  log            every run, newest first: id, runbook@version, operator, state, start, duration\n"
      "  show RUN_ID    the run's timeline, confirmations with who and when, figures, outputs, errors\n"
      "  verify         checks the trail: gapless journals ordered in time, state.json agreeing with\n"
      "                 the journal, linear history, one run folder per commit, journals only ever\n"
      "                 appended to, one commit per transition, nothing edited outside drctl.\n"
      "                 Exit 0 when all holds; otherwise 1, with each problem's run, file and cause.\n" },
};

static const char *help_for(const char *command)
{
    for (size_t i = 0; i < sizeof command_help / sizeof *command_help; i++)
        if (strcmp(command_help[i].command, command) == 0)
            return command_help[i].text;
    return NULL;
}

/* ---- argument parsing -------------------------------------------------------- */

static void push_arg(char ***list, size_t *count, char *value)
{
    *list = xrealloc(*list, (*count + 1) * sizeof **list);
    (*list)[(*count)++] = value;
}

/* The value of an option given as "--opt VALUE" or "--opt=VALUE". */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t len = strlen(name);
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (*i + 1 >= argc) {
        err_set(DR_EUSAGE, "%s needs a value", name);
        return NULL;
    }
    return argv[++*i];
}

static int matches(const char *arg, const char *name)
{
    size_t len = strlen(name);
    return strncmp(arg, name, len) == 0 && (arg[len] == '\0' || arg[len] == '=');
}

static int parse_args(cli *c, int argc, char **argv)
{
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        const char *value;
        if (only_positional || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (!c->command)
                c->command = arg;
            else
                push_arg(&c->args, &c->arg_count, arg);
        } else if (strcmp(arg, "--") == 0) {
            only_positional = 1;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            c->help = 1;
        } else if (strcmp(arg, "--json") == 0) {
            c->json = 1;
        } else if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            term_set_verbosity(TERM_VERBOSE);
        } else if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
            term_set_verbosity(TERM_QUIET);
        } else if (strcmp(arg, "--local") == 0) {
            c->local = 1;
        } else if (strcmp(arg, "--history") == 0) {
            c->history = 1;
        } else if (strcmp(arg, "--allow-runbook-change") == 0) {
            c->allow_runbook_change = 1;
        } else if (strcmp(arg, "--version") == 0) {
            c->command = "version";
        } else if (matches(arg, "--runbooks")) {
            if (!(value = option_value(argc, argv, &i, "--runbooks")))
                return DR_EUSAGE;
            push_arg(&c->runbook_dirs, &c->runbook_dir_count, (char *)value);
        } else if (matches(arg, "--audit")) {
            if (!(value = option_value(argc, argv, &i, "--audit")))
                return DR_EUSAGE;
            c->audit_dir = value;
        } else if (strcmp(arg, "-p") == 0 || matches(arg, "--param")) {
            if (!(value = option_value(argc, argv, &i, arg[1] == 'p' ? "-p" : "--param")))
                return DR_EUSAGE;
            push_arg(&c->params, &c->param_count, (char *)value);
        } else if (strncmp(arg, "-p", 2) == 0 && strchr(arg, '=')) {
            push_arg(&c->params, &c->param_count, arg + 2);
        } else if (matches(arg, "--approve")) {
            if (!(value = option_value(argc, argv, &i, "--approve")))
                return DR_EUSAGE;
            push_arg(&c->approvals, &c->approval_count, (char *)value);
        } else if (matches(arg, "--run-id")) {
            if (!(value = option_value(argc, argv, &i, "--run-id")))
                return DR_EUSAGE;
            /* Refused here, before a runbook, a target or the audit
             * repository is touched: a refusal leaves nothing behind. */
            if (!runs_valid_id(value))
                return err_set(DR_EUSAGE, "--run-id '%s' must be 1 to 128 letters, digits, '.', '_' or '-', "
                               "not starting with '.'", value);
            c->run_id = value;
        } else {
            return err_set(DR_EUSAGE, "unknown option '%s' (drctl --help lists them)", arg);
        }
    }
    return 0;
}

/* Options that only make sense for some commands are refused elsewhere, so
 * that a typo never silently does nothing. */
static int check_options_apply(const cli *c)
{
    const char *cmd = c->command;
    int acts = !strcmp(cmd, "run") || !strcmp(cmd, "resume") || !strcmp(cmd, "abort") || !strcmp(cmd, "drill");
    if (c->history && strcmp(cmd, "drill") != 0)
        return err_set(DR_EUSAGE, "--history does not apply to '%s' (it is drctl drill --history)", cmd);
    if (c->param_count && !acts && strcmp(cmd, "plan") != 0)
        return err_set(DR_EUSAGE, "-p does not apply to '%s'", cmd);
    if (c->approval_count && !acts)
        return err_set(DR_EUSAGE, "--approve does not apply to '%s'", cmd);
    if (c->run_id && strcmp(cmd, "run") != 0 && strcmp(cmd, "drill") != 0)
        return err_set(DR_EUSAGE, "--run-id does not apply to '%s'", cmd);
    if (c->allow_runbook_change && strcmp(cmd, "resume") != 0 && strcmp(cmd, "abort") != 0)
        return err_set(DR_EUSAGE, "--allow-runbook-change does not apply to '%s'", cmd);
    return 0;
}

static int expect_args(const cli *c, size_t min, size_t max, const char *what)
{
    if (c->arg_count < min || c->arg_count > max)
        return err_set(DR_EUSAGE, "usage: drctl %s %s (drctl %s --help)", c->command, what, c->command);
    return 0;
}

/* ---- runbooks ------------------------------------------------------------------ */

static void search_dirs(const cli *c, char ***dirs, size_t *count)
{
    *dirs = NULL;
    *count = 0;
    for (size_t i = 0; i < c->runbook_dir_count; i++)
        push_arg(dirs, count, xstrdup(c->runbook_dirs[i]));
    if (c->runbook_dir_count == 0) {
        push_arg(dirs, count, xstrdup("runbooks"));
        push_arg(dirs, count, xstrdup(DRCTL_SHAREDIR "/runbooks"));
    }
}

static void free_list(char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

static int looks_like_path(const char *arg)
{
    size_t len = strlen(arg);
    return strchr(arg, '/') || (len > 4 && strcmp(arg + len - 4, ".lua") == 0);
}

/* The file of a runbook given by name or path; NULL with DR_EUSAGE. */
static char *resolve_runbook(const cli *c, const char *name_or_path, const char *fallback_path)
{
    if (looks_like_path(name_or_path)) {
        if (fsio_exists(name_or_path))
            return xstrdup(name_or_path);
        err_set(DR_EUSAGE, "runbook file %s does not exist", name_or_path);
        return NULL;
    }
    if (!runbook_valid_name(name_or_path)) {
        err_set(DR_EUSAGE, "'%s' is not a runbook name (lower-case letters, digits and '-'); "
                "drctl list shows the runbooks", name_or_path);
        return NULL;
    }
    char **dirs;
    size_t count;
    search_dirs(c, &dirs, &count);
    buf looked = BUF_INIT;
    char *found = NULL;
    for (size_t i = 0; i < count && !found; i++) {
        char *candidate = xasprintf("%s/%s.lua", dirs[i], name_or_path);
        if (fsio_exists(candidate))
            found = candidate;
        else {
            buf_printf(&looked, "%s%s", looked.len ? ", " : "", candidate);
            free(candidate);
        }
    }
    free_list(dirs, count);
    if (!found && fallback_path && fsio_exists(fallback_path))
        found = xstrdup(fallback_path);
    if (!found)
        err_set(DR_EUSAGE, "no runbook named '%s' (looked for %s); drctl list shows the runbooks, "
                "--runbooks DIR adds a folder", name_or_path, buf_cstr(&looked));
    buf_dispose(&looked);
    return found;
}

/* A sandbox with the engine modules and the lua/ folders beside the
 * runbook, in the current directory and in the installed share folder. */
static sandbox *new_sandbox(const char *runbook_path, dr_host *host, neon_module *neon, pg_module **pg,
                            drill_module **drill)
{
    sandbox *sb;
    if (sandbox_new(&sb, MEMORY_LIMIT) != 0)
        return NULL;
    char *dir = fsio_dirname(runbook_path);
    char *beside = xasprintf("%s/../lua", dir);
    sandbox_add_lib_dir(sb, beside);
    sandbox_add_lib_dir(sb, "lua");
    sandbox_add_lib_dir(sb, DRCTL_SHAREDIR "/lua");
    /* drctl's own lua/ (the drill, the scenarios' shared code) also serves
     * runbooks kept in a folder of their own */
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *bin = fsio_dirname(exe);
        char *own = xasprintf("%s/../lua", bin);
        sandbox_add_lib_dir(sb, own);
        free(own);
        free(bin);
    }
    free(beside);
    free(dir);
    drmod_register(sb, host);
    neonmod_register(sb, neon);
    *pg = pgmod_register(sb, host);
    dumpmod_register(sb, host);
    *drill = drillmod_register(sb, host);
    return sb;
}

static int validate_approvals(const cli *c, const runbook *rb)
{
    for (size_t i = 0; i < c->approval_count; i++)
        if (runbook_step_index(rb, c->approvals[i]) < 0)
            return err_set(DR_EUSAGE, "--approve %s: runbook %s has no step named '%s'",
                           c->approvals[i], rb->name, c->approvals[i]);
    return 0;
}

/* ---- output helpers --------------------------------------------------------------- */

static void print_json(const cJSON *value)
{
    char *text = json_print_exact(value, 1);
    term_out("%s", text);
    free(text);
}

static const char *audit_dir_of(const cli *c)
{
    if (c->audit_dir)
        return c->audit_dir;
    const char *env = getenv("DRCTL_AUDIT_DIR");
    return env && *env ? env : "drctl-audit";
}

/* ---- list ---------------------------------------------------------------------------- */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What listing learns of one runbook: name, version, summary and blob id,
 * or the error that kept it from loading. */
static cJSON *describe_runbook(const char *file)
{
    dr_host host = { 0 };
    neon_module neon = { .host = &host }; /* listing calls nothing */
    pg_module *pg = NULL;
    drill_module *drill = NULL;
    sandbox *sb = new_sandbox(file, &host, &neon, &pg, &drill);
    runbook *rb = NULL;
    cJSON *entry = cJSON_CreateObject();
    if (sb && runbook_load(&rb, sb, file) == 0) {
        cJSON_AddStringToObject(entry, "name", rb->name);
        cJSON_AddStringToObject(entry, "version", rb->version);
        cJSON_AddStringToObject(entry, "summary", rb->summary);
        cJSON_AddStringToObject(entry, "blob_id", rb->blob_id);
    } else {
        cJSON_AddStringToObject(entry, "error", err_last());
    }
    runbook_free(rb);
    sandbox_free(sb);
    pgmod_free(pg);
    drillmod_free(drill);
    return entry;
}

/* Top-level code stuck inside one C call is out of reach of the load
 * deadline; past it, plus this margin, the child loading it is killed. */
#define LIST_LOAD_MARGIN_SECONDS 3.0

/* Reads the child's answer until it closes the pipe, the limit passes or
 * a signal comes; 1 when the whole answer was read. */
static int read_child_answer(int fd, buf *text, double limit_seconds)
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

/* Loads a runbook in a child process, so that one whose code never
 * returns is reported by name and the others are still listed. */
static cJSON *describe_runbook_apart(const char *file)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return describe_runbook(file);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return describe_runbook(file);
    }
    if (pid == 0) {
        close(fds[0]);
        cJSON *entry = describe_runbook(file);
        char *text = cJSON_PrintUnformatted(entry);
        _exit(fsio_write_all(fds[1], text, strlen(text)) == 0 ? 0 : 1);
    }
    close(fds[1]);
    buf text = BUF_INIT;
    int whole = read_child_answer(fds[0], &text, RUNBOOK_LOAD_TIMEOUT_SECONDS + LIST_LOAD_MARGIN_SECONDS);
    close(fds[0]);
    if (!whole)
        kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    cJSON *entry = whole ? cJSON_Parse(buf_cstr(&text)) : NULL;
    buf_dispose(&text);
    if (!entry) {
        entry = cJSON_CreateObject();
        char *why = signals_pending()
                        ? xasprintf("%s: not loaded (interrupted)", file)
                        : xasprintf("%s: did not load within %.0f s (its top-level code never returns, perhaps "
                                    "inside one long C call such as a pattern match); fix or remove it",
                                    file, RUNBOOK_LOAD_TIMEOUT_SECONDS + LIST_LOAD_MARGIN_SECONDS);
        cJSON_AddStringToObject(entry, "error", why);
        free(why);
    }
    return entry;
}

static int name_listed(const cJSON *out, const char *name)
{
    const cJSON *seen;
    cJSON_ArrayForEach(seen, out)
        if (strcmp(json_text(seen, "name", ""), name) == 0)
            return 1;
    return 0;
}

static void list_dir(const char *dir, cJSON *out, int *bad)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char **files = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".lua") == 0 && e->d_name[0] != '.')
            push_arg(&files, &count, xasprintf("%s/%s", dir, e->d_name));
    }
    closedir(d);
    qsort(files, count, sizeof *files, compare_strings);
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
        free(files[i]);
    }
    free(files);
}

static int cmd_list(cli *c)
{
    int rc = expect_args(c, 0, 0, "");
    if (rc)
        return rc;
    char **dirs;
    size_t count;
    search_dirs(c, &dirs, &count);
    cJSON *out = cJSON_CreateArray();
    int bad = 0;
    for (size_t i = 0; i < count; i++)
        list_dir(dirs[i], out, &bad);
    if (c->json) {
        print_json(out);
    } else if (cJSON_GetArraySize(out) == 0) {
        term_info("no runbooks found (searched %s%s)", dirs[0], count > 1 ? " and the others given" : "");
    } else {
        const cJSON *e;
        cJSON_ArrayForEach(e, out) {
            if (cJSON_GetObjectItemCaseSensitive(e, "error"))
                term_out("%-22s %-8s %s", "(invalid)", "", json_text(e, "error", ""));
            else
                term_out("%-22s %-8s %.12s  %s", json_text(e, "name", ""), json_text(e, "version", ""),
                         json_text(e, "blob_id", ""), json_text(e, "summary", ""));
        }
    }
    cJSON_Delete(out);
    free_list(dirs, count);
    return bad ? err_set(DR_EUSAGE, "some runbooks do not load (shown above)") : 0;
}

/* ---- plan ------------------------------------------------------------------------------- */

static void print_plan_text(const cJSON *plan)
{
    term_out("plan: %s %s (blob %.12s)", json_text(plan, "runbook", ""), json_text(plan, "version", ""),
             json_text(plan, "blob_id", ""));
    term_out("  %s", json_text(plan, "summary", ""));
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(plan, "params");
    const cJSON *p;
    cJSON_ArrayForEach(p, params) {
        char *value = cJSON_IsString(p) ? xstrdup(p->valuestring) : json_print_exact(p, 0);
        term_out("  param %s = %s", p->string, value);
        free(value);
    }
    int n = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(plan, "steps")) {
        buf flags = BUF_INIT;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "destructive")))
            buf_puts(&flags, " [DESTRUCTIVE: asks for a typed confirmation]");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "idempotent")))
            buf_puts(&flags, " [idempotent]");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "always")))
            buf_puts(&flags, " [always: runs even after a failure]");
        term_out("%d. %s%s", ++n, json_text(s, "name", ""), buf_cstr(&flags));
        buf_dispose(&flags);
        term_out("     %s", json_text(s, "plan", ""));
        const cJSON *confirm = cJSON_GetObjectItemCaseSensitive(s, "confirm");
        if (confirm)
            term_out("     confirmation: %s (challenge: type '%s')", json_text(confirm, "summary", ""),
                     json_text(confirm, "challenge", ""));
    }
}

typedef struct loaded {
    dr_host host;
    neon_module neon;
    pg_module *pg;
    drill_module *drill;
    target target;
    sandbox *sb;
    runbook *rb;
} loaded;

static void loaded_free(loaded *l)
{
    neonmod_close(&l->neon);
    drillmod_free(l->drill); /* its writer first: it may be writing */
    l->drill = NULL;
    pgmod_free(l->pg);
    l->pg = NULL;
    drill_scope_free(l->host.drill);
    l->host.drill = NULL;
    target_dispose(&l->target);
    runbook_free(l->rb);
    sandbox_free(l->sb);
    l->rb = NULL;
    l->sb = NULL;
}

/* composed: the runbook at path is a drill's scenario (lua/drctl/drill.lua). */
static int load_runbook_as(const cli *c, const char *name_or_path, const char *fallback, int composed, loaded *l)
{
    memset(l, 0, sizeof *l);
    char *path = resolve_runbook(c, name_or_path, fallback);
    if (!path)
        return DR_EUSAGE;
    target_resolve(&l->target, c->local);
    l->neon.host = &l->host;
    l->neon.target = &l->target;
    l->sb = new_sandbox(path, &l->host, &l->neon, &l->pg, &l->drill);
    int rc = !l->sb ? DR_EFAIL
             : composed ? runbook_load_composed(&l->rb, l->sb, path, "drctl.drill", "compose")
                        : runbook_load(&l->rb, l->sb, path);
    free(path);
    if (rc == 0)
        rc = validate_approvals(c, l->rb);
    if (rc)
        loaded_free(l);
    return rc;
}

static int load_runbook(const cli *c, const char *name_or_path, const char *fallback, loaded *l)
{
    return load_runbook_as(c, name_or_path, fallback, 0, l);
}

/* When the runbook uses Neon: refuses without a chosen target, refuses a
 * resume on another target than the run's, starts or finds neon-local,
 * and says on the first line what will be acted on. */
static int prepare_target(loaded *l, const cJSON *params, const cJSON *recorded)
{
    if (!l->neon.required)
        return 0;
    if (l->target.kind == TARGET_NONE)
        return target_refuse();
    int rc = 0;
    if (cJSON_IsObject(recorded)) {
        const char *was = json_text(recorded, "kind", "none");
        const char *now = l->target.kind == TARGET_LOCAL ? "local" : "cloud";
        const char *was_host = json_text(recorded, "api_host", "");
        if (strcmp(was, now) != 0)
            return err_set(DR_EUSAGE, "this run was started on %s and would now act on %s: resume it with the same "
                           "target (%s)", strcmp(was, "local") == 0 ? "neon-local (--local)" : "the Neon API",
                           strcmp(now, "local") == 0 ? "neon-local" : "the Neon API",
                           strcmp(was, "local") == 0 ? "--local" : "NEON_API_KEY, without --local");
        if (!strcmp(now, "cloud") && strcmp(was_host, l->target.api_host) != 0)
            return err_set(DR_EUSAGE, "this run was started on the Neon API at %s, and NEON_API_HOST now says %s: "
                           "resume it with the same NEON_API_HOST", was_host, l->target.api_host);
    }
    if ((rc = target_connect(&l->target)) != 0)
        return rc;
    redact_add_named_secret("the Neon API key", l->target.api_key);
    char *what = target_describe(&l->target);
    const char *project = params ? json_text(params, "project", NULL) : NULL;
    term_info("target: %s%s%s", what, project && *project ? ", project " : "", project && *project ? project : "");
    free(what);
    return 0;
}

static int cmd_plan(cli *c)
{
    int rc = expect_args(c, 1, 1, "RUNBOOK [-p key=value]...");
    loaded l;
    if (rc || (rc = load_runbook(c, c->args[0], NULL, &l)) != 0)
        return rc;
    cJSON *params = NULL, *plan = NULL;
    rc = params_resolve(&params, l.rb->params, l.rb->param_count, c->params, c->param_count, NULL);
    if (rc == 0) {
        params_register_secrets(l.rb->params, l.rb->param_count, params);
        rc = prepare_target(&l, params, NULL);
    }
    if (rc == 0) {
        rc = runner_plan(&plan, l.rb, params, &l.host);
        if (plan && c->json)
            print_json(plan);
        else if (plan)
            print_plan_text(plan);
    }
    cJSON_Delete(plan);
    cJSON_Delete(params);
    loaded_free(&l);
    return rc;
}

/* ---- status ------------------------------------------------------------------------------ */

/* The run's state, replayed from its journal (state.json may lag it by the
 * one event a crash interrupted). */
static cJSON *run_state(const char *audit_dir, const char *run_id, int *live)
{
    char *journal_path = xasprintf("%s/runs/%s/journal.jsonl", audit_dir, run_id);
    char *lock_path = runs_lock_path(audit_dir, run_id);
    *live = lock_is_held(lock_path);
    cJSON *events = NULL, *state = NULL;
    checkpoint *cp = NULL;
    if (journal_read(&events, NULL, journal_path) == 0 && checkpoint_replay(&cp, run_id, events) == 0) {
        state = checkpoint_to_json(cp);
        double first = 0, last = 0;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(events, 0), "time");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(events, cJSON_GetArraySize(events) - 1), "time");
        if (cJSON_IsString(a) && cJSON_IsString(b) && timefmt_parse_timestamp(&first, a->valuestring) == 0 &&
            timefmt_parse_timestamp(&last, b->valuestring) == 0)
            cJSON_AddNumberToObject(state, "elapsed_seconds", round((last - first) * 1000) / 1000);
    } else {
        state = cJSON_CreateObject();
        cJSON_AddStringToObject(state, "status", "corrupt");
        cJSON_AddStringToObject(state, "detail", err_last());
    }
    checkpoint_free(cp);
    cJSON_Delete(events);
    free(journal_path);
    free(lock_path);
    return state;
}

static const char *shown_status(const cJSON *state, int live)
{
    const char *status = json_text(state, "status", "?");
    if (strcmp(status, "running") == 0 && !live)
        return "dead (the process stopped mid-run; resume it)";
    return status;
}

/* Every run in the audit folder, newest first, one JSON row each. */
static cJSON *collect_runs(const char *audit_path)
{
    char *runs_dir = xasprintf("%s/runs", audit_path);
    DIR *d = opendir(runs_dir);
    char **ids = NULL;
    size_t count = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            push_arg(&ids, &count, xstrdup(e->d_name));
    if (d)
        closedir(d);
    free(runs_dir);
    qsort(ids, count, sizeof *ids, compare_strings);
    cJSON *rows = cJSON_CreateArray();
    for (size_t i = count; i-- > 0;) {
        cJSON *info = NULL;
        if (runs_read_info(&info, audit_path, ids[i]) != 0)
            continue;
        int live;
        cJSON *state = run_state(audit_path, ids[i], &live);
        const cJSON *rb = cJSON_GetObjectItemCaseSensitive(info, "runbook");
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "run_id", ids[i]);
        cJSON_AddStringToObject(row, "runbook", json_text(rb, "name", "?"));
        cJSON_AddStringToObject(row, "version", json_text(rb, "version", "?"));
        cJSON_AddStringToObject(row, "status", json_text(state, "status", "?"));
        cJSON_AddStringToObject(row, "shown_status", shown_status(state, live));
        cJSON_AddBoolToObject(row, "live", live);
        cJSON_AddStringToObject(row, "started_at", json_text(info, "started_at", "?"));
        cJSON_AddStringToObject(row, "operator", json_text(info, "operator", "?"));
        const cJSON *elapsed = cJSON_GetObjectItemCaseSensitive(state, "elapsed_seconds");
        cJSON_AddNumberToObject(row, "duration_seconds", cJSON_IsNumber(elapsed) ? elapsed->valuedouble : 0);
        cJSON_AddItemToArray(rows, row);
        cJSON_Delete(state);
        cJSON_Delete(info);
    }
    free_list(ids, count);
    return rows;
}

/* status and audit log: the same rows, the latter with durations. */
static int print_runs(cli *c, int with_duration)
{
    const char *audit_path = audit_dir_of(c);
    cJSON *rows = collect_runs(audit_path);
    const cJSON *row;
    if (c->json) {
        cJSON_ArrayForEach(row, rows)
            cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)row, "shown_status");
        print_json(rows);
    } else if (cJSON_GetArraySize(rows) == 0) {
        term_info("no runs in %s", audit_path);
    }
    if (!c->json)
        cJSON_ArrayForEach(row, rows) {
        char *rbv = xasprintf("%s@%s", json_text(row, "runbook", "?"), json_text(row, "version", "?"));
        char took[32] = "";
        if (with_duration)
            timefmt_format_duration(took, sizeof took,
                                    cJSON_GetObjectItemCaseSensitive(row, "duration_seconds")->valuedouble);
        term_out("%-44s %-24s %-12s %-28s %s%s%s", json_text(row, "run_id", "?"), rbv,
                 json_text(row, "shown_status", "?"), json_text(row, "started_at", "?"), took,
                 with_duration ? "  " : "", json_text(row, "operator", "?"));
        free(rbv);
    }
    cJSON_Delete(rows);
    return 0;
}

static int cmd_status_all(cli *c)
{
    return print_runs(c, 0);
}

static void print_step_lines(const cJSON *state)
{
    int n = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(state, "steps")) {
        const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(s, "attempts");
        term_out("  %d. %-28s %-12s attempts %d", ++n, json_text(s, "name", "?"),
                 json_text(s, "state", "?"), cJSON_IsNumber(attempts) ? attempts->valueint : 0);
        const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(s, "outputs");
        if (outputs && !cJSON_IsNull(outputs)) {
            char *text = json_print_exact(outputs, 0);
            term_out("       outputs: %s", text);
            free(text);
        }
        if (cJSON_GetObjectItemCaseSensitive(s, "error"))
            term_out("       error: %s", json_text(s, "error", ""));
    }
}

static int cmd_status_one(cli *c, const char *run_id)
{
    const char *audit_path = audit_dir_of(c);
    cJSON *info = NULL;
    int rc = runs_read_info(&info, audit_path, run_id);
    if (rc)
        return rc;
    int live;
    cJSON *state = run_state(audit_path, run_id, &live);
    if (c->json) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddItemToObject(out, "run", info);
        cJSON_AddItemToObject(out, "state", state);
        cJSON_AddBoolToObject(out, "live", live);
        print_json(out);
        cJSON_Delete(out);
        return 0;
    }
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(info, "runbook");
    term_out("run:      %s", run_id);
    term_out("runbook:  %s %s (blob %.12s)", json_text(rb, "name", "?"), json_text(rb, "version", "?"),
             json_text(rb, "blob_id", "?"));
    term_out("status:   %s%s%s", shown_status(state, live), cJSON_GetObjectItemCaseSensitive(state, "detail") ? ": " : "",
             json_text(state, "detail", ""));
    term_out("operator: %s on %s, started %s", json_text(info, "operator", "?"), json_text(info, "host", "?"),
             json_text(info, "started_at", "?"));
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(info, "params")) {
        char *value = cJSON_IsString(p) ? xstrdup(p->valuestring) : json_print_exact(p, 0);
        term_out("param:    %s = %s", p->string, value);
        free(value);
    }
    term_out("steps:");
    print_step_lines(state);
    cJSON_Delete(state);
    cJSON_Delete(info);
    return 0;
}

static int cmd_status(cli *c)
{
    int rc = expect_args(c, 0, 1, "[RUN_ID]");
    if (rc)
        return rc;
    return c->arg_count ? cmd_status_one(c, c->args[0]) : cmd_status_all(c);
}

/* ---- drill ---------------------------------------------------------------------------- */

static const char *const drill_scenarios[] = { "accidental-deletion", "corruption", "total-loss", NULL };

/* The scenario's destructive steps are approved: the scope, not a person,
 * keeps them to the drill's own branches. */
static void drill_approvals(const cli *c, const runbook *rb, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    for (size_t i = 0; i < c->approval_count; i++)
        push_arg(out, count, c->approvals[i]);
    for (size_t i = 0; i < rb->step_count; i++)
        if (rb->steps[i].destructive)
            push_arg(out, count, rb->steps[i].name);
}

/* A resumed drill knows again what it made, from its journal. */
static void drill_scope_resume(const cli *c, loaded *l, const char *run_id, const cJSON *drill)
{
    const cJSON *started = cJSON_GetObjectItemCaseSensitive(drill, "started");
    l->host.drill = drill_scope_new(run_id, cJSON_IsNumber(started) ? started->valuedouble : 0);
    drill_scope_set_expiry(l->host.drill, json_text(drill, "expires_at", NULL));
    char *path = xasprintf("%s/runs/%s/journal.jsonl", audit_dir_of(c), run_id);
    cJSON *events = NULL;
    if (journal_read(&events, NULL, path) == 0)
        drill_scope_replay(l->host.drill, events);
    cJSON_Delete(events);
    free(path);
}

static const cJSON *step_outputs(const cJSON *state, const char *step)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(state, "steps"))
        if (strcmp(json_text(s, "name", ""), step) == 0)
            return cJSON_GetObjectItemCaseSensitive(s, "outputs");
    return NULL;
}

/* passed, failed, or the run's state while it is not over. */
static const char *drill_result(const cJSON *state)
{
    const char *status = json_text(state, "status", "?");
    if (strcmp(status, "done") == 0)
        return "passed";
    if (strcmp(status, "failed") == 0 || strcmp(status, "aborted") == 0)
        return "failed";
    return status;
}

static cJSON *drill_summary(const char *run_id, const cJSON *info, const cJSON *state)
{
    const cJSON *m = step_outputs(state, "measure"), *clean = step_outputs(state, "drill-cleanup");
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "run_id", run_id);
    cJSON_AddStringToObject(out, "scenario", json_text(cJSON_GetObjectItemCaseSensitive(info, "drill"), "scenario", "?"));
    cJSON_AddStringToObject(out, "started_at", json_text(info, "started_at", "?"));
    cJSON_AddStringToObject(out, "operator", json_text(info, "operator", "?"));
    cJSON_AddStringToObject(out, "result", drill_result(state));
    const char *fields[] = { "rto_seconds", "rto_steps", "rpo_seconds", "rpo_rows", "restore_point", "incident_time",
                             "exactness", "recovered", "writes_after_incident", "writer", "failure", NULL };
    for (int i = 0; fields[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, fields[i]);
        cJSON_AddItemToObject(out, fields[i], v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
    }
    const cJSON *left = cJSON_GetObjectItemCaseSensitive(clean, "left_behind");
    cJSON_AddItemToObject(out, "left_behind", left ? cJSON_Duplicate(left, 1) : cJSON_CreateNull());
    return out;
}

static void print_drill_text(const cJSON *d)
{
    term_out("drill %s (%s): %s", json_text(d, "scenario", "?"), json_text(d, "run_id", "?"),
             json_text(d, "result", "?"));
    const cJSON *rto = cJSON_GetObjectItemCaseSensitive(d, "rto_seconds");
    if (cJSON_IsNumber(rto)) {
        buf shares = BUF_INIT;
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(d, "rto_steps"))
            buf_printf(&shares, "%s%s %.1f s", shares.len ? ", " : "", json_text(s, "step", "?"),
                       json_number(s, "seconds", 0));
        term_out("  RTO  %.1f s (%s)", rto->valuedouble, buf_cstr(&shares));
        buf_dispose(&shares);
    }
    const cJSON *rpo = cJSON_GetObjectItemCaseSensitive(d, "rpo_seconds");
    if (cJSON_IsNumber(rpo)) {
        buf rows = BUF_INIT;
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(d, "rpo_rows"))
            if (cJSON_IsNumber(r) && r->valuedouble != 0)
                buf_printf(&rows, "%s%s %.0f", rows.len ? ", " : "", r->string, r->valuedouble);
        term_out("  RPO  %.3f s between the restore point (%s) and the incident; rows lost: %s", rpo->valuedouble,
                 json_text(d, "restore_point", "?"), rows.len ? buf_cstr(&rows) : "none");
        buf_dispose(&rows);
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d, "exactness"))
        term_out("  %-32s %-8s %s", json_text(e, "table", "?"),
                 cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "match")) ? "ok" : "MISMATCH", json_text(e, "note", ""));
    const cJSON *left = cJSON_GetObjectItemCaseSensitive(d, "left_behind");
    if (cJSON_IsNumber(left))
        term_out("  left behind: %.0f", left->valuedouble);
    if (json_text(d, "failure", NULL))
        term_out("  %s", json_text(d, "failure", ""));
    term_out("  report: drctl audit show %s", json_text(d, "run_id", "?"));
}

/* A drill's end: its figures (or JSON), from its state and run.json. */
static void drill_outcome(cli *c, const char *run_id, const cJSON *info, cJSON *state, int rc)
{
    cJSON *d = drill_summary(run_id, info, state);
    if (c->json) {
        cJSON_AddNumberToObject(d, "exit_code", err_exit_status(rc));
        if (rc)
            cJSON_AddStringToObject(d, "message", err_last());
        cJSON_AddItemToObject(d, "steps", cJSON_DetachItemFromObjectCaseSensitive(state, "steps"));
        print_json(d);
    } else {
        print_drill_text(d);
    }
    cJSON_Delete(d);
}

static int drill_history(cli *c)
{
    int rc = expect_args(c, 0, 0, "--history");
    if (rc)
        return rc;
    const char *audit_path = audit_dir_of(c);
    cJSON *rows = collect_runs(audit_path), *out = cJSON_CreateArray();
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        const char *id = json_text(row, "run_id", "");
        cJSON *info = NULL;
        if (runs_read_info(&info, audit_path, id) != 0)
            continue;
        if (cJSON_GetObjectItemCaseSensitive(info, "drill")) {
            int live;
            cJSON *state = run_state(audit_path, id, &live);
            cJSON_AddItemToArray(out, drill_summary(id, info, state));
            cJSON_Delete(state);
        }
        cJSON_Delete(info);
    }
    cJSON_Delete(rows);
    if (c->json) {
        print_json(out);
    } else if (cJSON_GetArraySize(out) == 0) {
        term_info("no drills in %s (drctl drill SCENARIO runs one)", audit_path);
    } else {
        term_out("%-20s %-20s %-28s %8s %8s %-8s %s", "scenario", "started", "operator", "RTO (s)", "RPO (s)",
                 "result", "run");
        const cJSON *d;
        cJSON_ArrayForEach(d, out) {
            char rto[32] = "-", rpo[32] = "-";
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, "rto_seconds");
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(d, "rpo_seconds");
            if (cJSON_IsNumber(a))
                snprintf(rto, sizeof rto, "%.1f", a->valuedouble);
            if (cJSON_IsNumber(b))
                snprintf(rpo, sizeof rpo, "%.3f", b->valuedouble);
            /* to the second, and the operator cut to its column: one line a drill */
            term_out("%-20s %.19sZ %-28.28s %8s %8s %-8s %s", json_text(d, "scenario", "?"),
                     json_text(d, "started_at", "?"), json_text(d, "operator", "?"), rto, rpo,
                     json_text(d, "result", "?"), json_text(d, "run_id", "?"));
        }
    }
    cJSON_Delete(out);
    return 0;
}

/* ---- run, resume, abort ------------------------------------------------------------------ */

/* What a command that ran steps says at the end: one line (or JSON) on
 * stdout with the run's outcome, and the error on stderr. */
static int report_outcome(cli *c, const char *run_id, int rc)
{
    if (!run_id)
        return rc;
    if (rc)
        term_error("%s", err_last());
    c->reported = 1;
    int live;
    cJSON *state = run_state(audit_dir_of(c), run_id, &live), *info = NULL;
    runs_read_info(&info, audit_dir_of(c), run_id);
    if (cJSON_GetObjectItemCaseSensitive(info, "drill")) {
        drill_outcome(c, run_id, info, state, rc);
    } else if (c->json) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "run_id", run_id);
        cJSON_AddStringToObject(out, "status", json_text(state, "status", "?"));
        cJSON_AddNumberToObject(out, "exit_code", err_exit_status(rc));
        if (rc)
            cJSON_AddStringToObject(out, "message", err_last());
        cJSON_AddItemToObject(out, "steps", cJSON_DetachItemFromObjectCaseSensitive(state, "steps"));
        print_json(out);
        cJSON_Delete(out);
    } else {
        term_out("run %s: %s", run_id, json_text(state, "status", "?"));
    }
    cJSON_Delete(info);
    cJSON_Delete(state);
    return rc;
}

static runner_options options_for(const cli *c, dr_host *host)
{
    return (runner_options){ .audit_dir = audit_dir_of(c), .approvals = c->approvals,
                             .approval_count = c->approval_count,
                             .allow_runbook_change = c->allow_runbook_change, .run_id = c->run_id,
                             .host = host };
}

static int cmd_run(cli *c)
{
    int rc = expect_args(c, 1, 1, "RUNBOOK [-p key=value]... [--approve STEP]...");
    loaded l;
    if (rc || (rc = load_runbook(c, c->args[0], NULL, &l)) != 0)
        return rc;
    cJSON *params = NULL;
    char *run_id = NULL;
    rc = params_resolve(&params, l.rb->params, l.rb->param_count, c->params, c->param_count, NULL);
    audit *trail = NULL;
    if (rc == 0) {
        params_register_secrets(l.rb->params, l.rb->param_count, params);
        rc = prepare_target(&l, params, NULL);
    }
    if (rc == 0 && (rc = audit_open(&trail, audit_dir_of(c), 1)) == 0)
        rc = audit_check_clean(trail);
    cJSON *target_info = l.neon.required ? target_json(&l.target) : NULL;
    if (rc == 0) {
        runner_options opts = options_for(c, &l.host);
        opts.audit = trail;
        opts.target = target_info;
        rc = runner_start(&run_id, l.rb, params, &opts);
        report_outcome(c, run_id, rc);
    }
    audit_free(trail);
    cJSON_Delete(target_info);
    cJSON_Delete(params);
    free(run_id);
    loaded_free(&l);
    return rc;
}

static int valid_scenario(const char *name)
{
    for (int i = 0; drill_scenarios[i]; i++)
        if (strcmp(drill_scenarios[i], name) == 0)
            return 1;
    return 0;
}

static int cmd_drill(cli *c)
{
    if (c->history)
        return drill_history(c);
    int rc = expect_args(c, 1, 1, "accidental-deletion|corruption|total-loss [-p key=value]...");
    if (rc)
        return rc;
    const char *scenario = c->args[0];
    if (!valid_scenario(scenario))
        return err_set(DR_EUSAGE, "drill: '%s' is not a scenario a drill rehearses; give accidental-deletion, "
                       "corruption or total-loss", scenario);
    loaded l;
    if ((rc = load_runbook_as(c, scenario, NULL, 1, &l)) != 0)
        return rc;
    cJSON *params = NULL, *info = NULL, *target_info = NULL;
    char *run_id = NULL, **approvals = NULL;
    size_t approval_count = 0;
    audit *trail = NULL;
    rc = params_resolve(&params, l.rb->params, l.rb->param_count, c->params, c->param_count, NULL);
    if (rc == 0) {
        params_register_secrets(l.rb->params, l.rb->param_count, params);
        rc = prepare_target(&l, params, NULL);
    }
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(params, "write_rate");
    if (rc == 0 && cJSON_IsNumber(rate) && (rate->valuedouble < 0 || rate->valuedouble > 1000))
        rc = err_set(DR_EUSAGE, "-p write_rate=%.0f: give 0 (no writer) to 1000 writes a second", rate->valuedouble);
    if (rc == 0 && (rc = audit_open(&trail, audit_dir_of(c), 1)) == 0)
        rc = audit_check_clean(trail);
    if (rc == 0) {
        run_id = c->run_id ? xstrdup(c->run_id) : runs_new_id(l.rb->name);
        double now = timefmt_now();
        const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(params, "ttl");
        char expires[48];
        timefmt_format_utc(expires, sizeof expires, floor(now + (cJSON_IsNumber(ttl) ? ttl->valuedouble : 86400)));
        l.host.drill = drill_scope_new(run_id, now);
        drill_scope_set_expiry(l.host.drill, expires);
        info = cJSON_CreateObject();
        cJSON_AddStringToObject(info, "scenario", scenario);
        cJSON_AddStringToObject(info, "scenario_blob_id", l.rb->blob_id);
        cJSON_AddNumberToObject(info, "started", floor(now));
        cJSON_AddStringToObject(info, "expires_at", expires);
        target_info = target_json(&l.target);
        drill_approvals(c, l.rb, &approvals, &approval_count);
        runner_options opts = options_for(c, &l.host);
        opts.audit = trail;
        opts.target = target_info;
        opts.drill = info;
        opts.run_id = run_id;
        opts.approvals = approvals;
        opts.approval_count = approval_count;
        char *started_id = NULL;
        rc = runner_start(&started_id, l.rb, params, &opts);
        report_outcome(c, started_id, rc);
        free(started_id);
    }
    free(approvals);
    free(run_id);
    audit_free(trail);
    cJSON_Delete(target_info);
    cJSON_Delete(info);
    cJSON_Delete(params);
    loaded_free(&l);
    return rc;
}

/* resume and abort find the runbook by the name the run recorded. */
static int with_existing_run(cli *c, int aborting)
{
    int rc = expect_args(c, 1, 1, "RUN_ID");
    if (rc)
        return rc;
    const char *run_id = c->args[0];
    if (!runs_valid_id(run_id))
        return err_set(DR_EUSAGE, "'%s' is not a run id (drctl status lists the runs)", run_id);
    cJSON *info = NULL;
    audit *trail = NULL;
    /* A run paused on another machine arrives with the fetch. */
    if ((rc = audit_open(&trail, audit_dir_of(c), 0)) != 0)
        return rc;
    audit_sync(trail);
    if ((rc = runs_read_info(&info, audit_dir_of(c), run_id)) != 0) {
        audit_free(trail);
        return rc;
    }
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(info, "runbook");
    const cJSON *drill = cJSON_GetObjectItemCaseSensitive(info, "drill");
    loaded l;
    if (drill)
        rc = load_runbook_as(c, json_text(drill, "scenario", "?"), json_text(rb, "path", NULL), 1, &l);
    else
        rc = load_runbook(c, json_text(rb, "name", "?"), json_text(rb, "path", NULL), &l);
    int loaded_ok = rc == 0;
    if (loaded_ok && drill)
        drill_scope_resume(c, &l, run_id, drill);
    if (loaded_ok && (rc = prepare_target(&l, cJSON_GetObjectItemCaseSensitive(info, "params"),
                                          cJSON_GetObjectItemCaseSensitive(info, "target"))) != 0)
        loaded_free(&l);
    cJSON_Delete(info);
    if (rc == DR_EUSAGE && aborting && !loaded_ok && (rc = audit_check_clean(trail)) == 0) {
        /* A run must be closable even when its runbook is gone. */
        char *why = xasprintf("its runbook cannot be loaded: %s", err_last());
        term_warn("%s; closing run %s WITHOUT its cleanup steps: check what it left behind", why, run_id);
        runner_options opts = options_for(c, NULL);
        opts.audit = trail;
        rc = runner_close_without_runbook(run_id, &opts, why);
        free(why);
        report_outcome(c, run_id, rc);
        audit_free(trail);
        return rc;
    }
    if (rc == 0 && (rc = audit_check_clean(trail)) != 0)
        loaded_free(&l);
    if (rc) {
        audit_free(trail);
        return rc;
    }
    runner_options opts = options_for(c, &l.host);
    opts.audit = trail;
    char **approvals = NULL;
    size_t approval_count = 0;
    if (l.host.drill) {
        drill_approvals(c, l.rb, &approvals, &approval_count);
        opts.approvals = approvals;
        opts.approval_count = approval_count;
    }
    if (aborting)
        rc = runner_abort(l.rb, run_id, c->params, c->param_count, &opts);
    else
        rc = runner_resume(l.rb, run_id, c->params, c->param_count, &opts);
    report_outcome(c, run_id, rc);
    free(approvals);
    loaded_free(&l);
    audit_free(trail);
    return rc;
}

static int cmd_resume(cli *c)
{
    return with_existing_run(c, 0);
}

static int cmd_abort(cli *c)
{
    return with_existing_run(c, 1);
}

/* ---- audit ---------------------------------------------------------------------------------- */

static int audit_show(cli *c, const char *run_id)
{
    const char *audit_path = audit_dir_of(c);
    cJSON *info = NULL, *events = NULL;
    int rc = runs_read_info(&info, audit_path, run_id);
    if (rc)
        return rc;
    char *journal_path = xasprintf("%s/runs/%s/journal.jsonl", audit_path, run_id);
    rc = journal_read(&events, NULL, journal_path);
    free(journal_path);
    if (rc == 0 && c->json) {
        int live;
        cJSON *out = cJSON_CreateObject();
        cJSON_AddItemToObject(out, "run", info);
        cJSON_AddItemToObject(out, "state", run_state(audit_path, run_id, &live));
        cJSON_AddItemToObject(out, "events", events);
        print_json(out);
        cJSON_Delete(out);
        return 0;
    }
    if (rc == 0) {
        char *text = report_render(info, events);
        fputs(text, stdout);
        free(text);
    }
    cJSON_Delete(events);
    cJSON_Delete(info);
    return rc;
}

static int audit_verify(cli *c)
{
    verify_result result;
    int rc = verify_audit(&result, audit_dir_of(c));
    if (rc) {
        cJSON_Delete(result.problems);
        return rc;
    }
    int problems = cJSON_GetArraySize(result.problems);
    if (c->json) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddBoolToObject(out, "ok", problems == 0);
        cJSON_AddNumberToObject(out, "runs", (double)result.runs);
        cJSON_AddNumberToObject(out, "commits", (double)result.commits);
        cJSON_AddItemToObject(out, "problems", result.problems);
        print_json(out);
        cJSON_Delete(out);
    } else {
        const cJSON *p;
        cJSON_ArrayForEach(p, result.problems) {
            buf line = BUF_INIT;
            if (*json_text(p, "run", ""))
                buf_printf(&line, "run %s: ", json_text(p, "run", ""));
            if (*json_text(p, "file", ""))
                buf_printf(&line, "%s: ", json_text(p, "file", ""));
            buf_puts(&line, json_text(p, "problem", ""));
            if (json_text(p, "commit", NULL))
                buf_printf(&line, " (commit %.12s)", json_text(p, "commit", ""));
            term_out("%s", buf_cstr(&line));
            buf_dispose(&line);
        }
        term_out("verified %ld runs and %ld commits: %s", result.runs, result.commits,
                 problems ? "PROBLEMS FOUND" : "ok");
        cJSON_Delete(result.problems);
    }
    return problems ? err_set(DR_EFAIL, "the audit trail has %d problem%s (listed above)", problems,
                              problems > 1 ? "s" : "")
                    : 0;
}

static int cmd_audit(cli *c)
{
    const char *sub = c->arg_count ? c->args[0] : "";
    if (strcmp(sub, "log") == 0 && c->arg_count == 1)
        return print_runs(c, 1);
    if (strcmp(sub, "show") == 0 && c->arg_count == 2)
        return audit_show(c, c->args[1]);
    if (strcmp(sub, "verify") == 0 && c->arg_count == 1)
        return audit_verify(c);
    return err_set(DR_EUSAGE, "usage: drctl audit log | show RUN_ID | verify (drctl audit --help)");
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn)(cli *c);
} commands[] = {
    { "list", cmd_list }, { "plan", cmd_plan },     { "run", cmd_run },
    { "resume", cmd_resume }, { "status", cmd_status }, { "abort", cmd_abort },
    { "audit", cmd_audit }, { "drill", cmd_drill },
};

static int dispatch(cli *c)
{
    if (c->command && strcmp(c->command, "version") == 0) {
        term_out("drctl %s", DRCTL_VERSION);
        return 0;
    }
    if (!c->command || strcmp(c->command, "help") == 0) {
        const char *topic = c->command && c->arg_count ? help_for(c->args[0]) : NULL;
        fputs(topic ? topic : usage_text, stdout);
        return c->command || c->help ? 0 : err_set(DR_EUSAGE, "a command is needed (drctl --help)");
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(commands[i].name, c->command) != 0)
            continue;
        if (c->help) {
            fputs(help_for(c->command), stdout);
            return 0;
        }
        int rc = check_options_apply(c);
        return rc ? rc : commands[i].fn(c);
    }
    return err_set(DR_EUSAGE, "unknown command '%s' (drctl --help lists them)", c->command);
}

int cli_main(int argc, char **argv)
{
    cli c = { 0 };
    int rc = parse_args(&c, argc, argv);
    if (rc == 0)
        rc = dispatch(&c);
    if (rc && !c.reported)
        term_error("%s", err_last());
    free(c.runbook_dirs);
    free(c.params);
    free(c.approvals);
    free(c.args);
    return err_exit_status(rc);
}
