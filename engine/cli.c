#include "cli.h"

#include "buf.h"
#include "cmd_audit.h"
#include "cmd_check.h"
#include "cmd_complete.h"
#include "cmd_config.h"
#include "cmd_docs.h"
#include "cmd_drill.h"
#include "cmd_list.h"
#include "cmd_notify.h"
#include "cmd_plan.h"
#include "cmd_run.h"
#include "cmd_status.h"
#include "cmd_undo.h"
#include "cmd_approve.h"
#include "err.h"
#include "fsio.h"
#include "jsontext.h"
#include "runpath.h"
#include "runs.h"
#include "term.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    "  status [RUN_ID]           runs not ended and the most recent, or the steps of one run\n"
    "  abort RUN_ID              close a paused or failed run for good (cleanup steps run)\n"
    "  drill SCENARIO [-p k=v]... rehearse accidental-deletion, corruption or total-loss on a\n"
    "                            copy of production: RTO, RPO, exactness, nothing left behind\n"
    "  drill --history           past drills, newest first\n"
    "  undo RUN_ID [--approve undo]\n"
    "  approve RUN_ID STEP [--approve STEP]\n"
    "                            put a branch back as it was before a finished\n"
    "                            accidental-deletion or corruption run\n"
    "  audit log | show RUN_ID | verify\n"
    "                            read and check the audit trail (a git repository)\n"
    "  docs [RUNBOOK] [--out DIR]\n"
    "                            the runbooks' documentation as Markdown, for the team's wiki\n"
    "  config [set KEY VALUE | unset KEY [VALUE]]\n"
    "                            the team's settings (in the audit repository), and where each came from\n"
    "  check [-p project=ID] [-p branch=NAME] [--prometheus FILE]\n"
    "                            the production checklist scored from live data: pass, warn or fail\n"
    "  notify test               send a test notification to every configured webhook\n"
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
      "Shows what a run would do, step by step, without doing it: each param and where its\n"
      "value came from (-p, the environment, config.json, the default), each step's plan,\n"
      "which steps are destructive and what their confirmation will say (<step.field> stands\n"
      "for what an earlier step finds at run time). Params are validated as for run.\n"
      "RUNBOOK is a name on the search path or a path to a .lua file. --json prints the plan\n"
      "as JSON (params, param_sources, steps).\n" },
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
      "       drctl status [--all] [--since WHEN] [--runbook NAME] [--status STATUS] [--json]\n"
      "\n"
      "Without RUN_ID: the runs that have not ended (running, paused, failed, interrupted,\n"
      "dead) and the 10 most recent, newest first, with runbook, status, start and operator.\n"
      "With RUN_ID: the run's params and each step's state, attempts, outputs and errors.\n"
      "  --all            every run of the trail\n"
      "  --since WHEN     the runs started since WHEN: a duration ago (30m, 12h, 7d) or a\n"
      "                   time (2026-01-11T14:30:00Z; without an offset on your clock, TZ; a day\n"
      "                   alone, 2026-01-11, from its 00:00 on your clock)\n"
      "  --runbook NAME   the runs of that runbook\n"
      "  --status STATUS  the runs in that status: " RUNS_STATUSES "\n"
      "Filters together: runs that match them all, however old.\n" },
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
    { "approve",
      "usage: drctl approve RUN_ID STEP [--approve STEP]\n"
      "\n"
      "A second (or third...) operator's approval of a destructive step that needs several\n"
      "(approvers = N in the runbook): the run paused there, after its own operator confirmed.\n"
      "From your own clone of the audit trail, drctl fetches, shows you the same summary of\n"
      "what will be lost, asks you to type its challenge on the terminal, then commits your\n"
      "approval and pushes it. The run's operator then goes on with drctl resume RUN_ID.\n"
      "Refused, and recorded: approving twice (the same identity, or the same signing key),\n"
      "an operator not in the step's list of approvers. An approval counts only for the summary\n"
      "it saw, and only while younger than its validity (1h unless the runbook says).\n"
      "With the remote unreachable, the approval is committed here and pushed by the next\n"
      "drctl command that records something (run, resume, abort, approve, config set); the\n"
      "run cannot go on before its operator sees it.\n"
      "\n"
      "  --approve STEP   approve without a terminal (counts as your one approval)\n" },
    { "undo",
      "usage: drctl undo RUN_ID [--approve undo] [--run-id ID] [--json]\n"
      "\n"
      "Puts the branch a finished accidental-deletion or corruption run recovered back as it\n"
      "was before that run, on the target the run acted on (--local for neon-local):\n"
      "  restore   the branch is restored in place from the branch the run preserved; its\n"
      "            state now is kept as <branch>-before-undo-<undo run>\n"
      "  promote   the branch that was the default before the run is the default again; the\n"
      "            promoted branch stays, with what was written on it\n"
      "  reinsert  exactly the rows the run inserted (by the primary keys it recorded) are\n"
      "            deleted, in one transaction\n"
      "The undo step is destructive: its typed confirmation says what is lost (what was\n"
      "written since the recovery). The undo is its own run in the audit trail, with param\n"
      "run = RUN_ID; drctl status shows the link both ways. Refused, with the reason and\n"
      "nothing changed, for a run that is not done, was undone already, whose preserved\n"
      "branch is gone, protected or changed since, or whose previous default is gone.\n" },
    { "audit",
      "usage: drctl audit log [--all] [--since WHEN] [--runbook NAME] [--status STATUS] [--json]\n"
      "       drctl audit show RUN_ID [--json]\n"
      "       drctl audit verify [--allowed-signers FILE] [--json]\n"
      "\n"
      "  log            the runs drctl status lists (not ended, and the 10 most recent; --all,\n"
      "                 --since, --runbook and --status as there), newest first: id,\n"
      "                 runbook@version, state, start, duration, operator\n"
      "  show RUN_ID    the run's timeline, confirmations with who and when, figures, outputs, errors\n"
      "  verify         checks the trail: gapless journals ordered in time with their hash chains\n"
      "                 whole, state.json agreeing with the journal, linear history, one run folder\n"
      "                 per commit, journals only ever appended to, one commit per transition,\n"
      "                 nothing edited or added outside drctl. Exit 0 when all holds; otherwise 1,\n"
      "                 with each problem's run, file and cause.\n"
      "  --allowed-signers FILE  with verify: every commit must also be signed (DRCTL_SIGNING_KEY)\n"
      "                 by a key FILE allows for its author, in git's allowed-signers format\n"
      "                 (gpg.ssh.allowedSignersFile: \"alice@example.org ssh-ed25519 AAAA...\")\n" },
    { "docs",
      "usage: drctl docs [RUNBOOK] [--out DIR]\n"
      "\n"
      "Renders runbooks' documentation as Markdown: summary, description, params (type, default,\n"
      "env, enum values), each step in order with its plan as drctl plan computes it, which steps\n"
      "are destructive and what their confirmation says will be lost. Plans are computed offline\n"
      "(no target needed); a required param without default is shown with an example value.\n"
      "The first line of a page names the runbook's blob id; the output has no times, so the same\n"
      "runbook always gives the same page.\n"
      "\n"
      "  RUNBOOK      one runbook: its page on stdout, or DIR/RUNBOOK.md with --out\n"
      "  (none)       every runbook on the search path (as drctl list): with --out, DIR/NAME.md\n"
      "               each and DIR/index.md linking them; without, the pages on stdout one after\n"
      "               another, separated by a line '---'\n"
      "  --out DIR    the folder to write to (made when missing; files replaced atomically)\n" },
    { "config",
      "usage: drctl config [--json]\n"
      "       drctl config set KEY VALUE\n"
      "       drctl config unset KEY [VALUE]\n"
      "\n"
      "The team's settings live in config.json at the root of the audit repository, committed\n"
      "(one commit per change, authored by you) and pushed like the runs. drctl config shows every\n"
      "setting, its value and where it came from (the default, or the commit that set it).\n"
      "\n"
      "  notify.webhook           webhook URLs (a list): set adds one, unset KEY URL removes one,\n"
      "                           unset KEY removes all; slack: before a value sends Slack's body.\n"
      "                           A URL holding a token is given as env:NAME,\n"
      "                           read from that environment variable when used: a literal URL with\n"
      "                           a user, password or query string is refused\n"
      "  contact                  Neon's emergency contact for the team (free text)\n"
      "  check.backup_max_age     duration (default 26h)\n"
      "  check.history_min        duration (default 7d)\n"
      "  check.history_warn       duration (default 30d)\n"
      "  check.restore_test_max_age  duration (default 31d)\n"
      "  check.export_max_age     duration (default 8d)\n"
      "  notify.timeout           duration, 1s to 60s (default 10s): the most notifying may take\n"
      "  throwaway_ttl            duration (default 1d), the TTL of throwaway branches\n"
      "  docs.dir                 where drctl docs --out writes the pages, read by drctl check\n"
      "  lock.ttl                 duration (default 1h): a run's target lock on origin lasts\n"
      "                           this long unless renewed (a quarter of it apart, while the\n"
      "                           run's process lives): how long a killed holder blocks others\n"
      "  approvals                four-eyes rules (a list, like notify.webhook), each one line of\n"
      "                           words: count=N (required, 1-10) and optionally from=a@x,b@y\n"
      "                           valid_for=1h runbook=NAME step=NAME project=ID branch=NAME.\n"
      "                           Each destructive step a rule matches needs at least N distinct\n"
      "                           approvers (drctl approve); never fewer than its runbook asks\n"
      "\n"
      "Values are checked before anything is written; a bad value or a bad config.json is exit 2.\n" },
    { "check",
      "usage: drctl check [-p project=ID] [-p branch=NAME] [--prometheus FILE] [--json]\n"
      "\n"
      "Scores the backup guide's production checklist from what is really there: the Neon API\n"
      "(the cloud, or neon-local with --local) and the audit trail. Each item is pass, warn or fail,\n"
      "with its evidence (what was found, with dates and figures) and its fix (the command to run):\n"
      "  backups          a backup schedule on the branch, or a backup branch or snapshot of it\n"
      "                   younger than check.backup_max_age (26h)\n"
      "  history          the project's history window >= check.history_min (7d); warn below\n"
      "                   check.history_warn (30d)\n"
      "  schema-backup    the schema at the newest backup equals today's (else the difference)\n"
      "  notifications    a webhook is configured and a test notification was delivered to it\n"
      "  restore-test     a drill or verify-backup passed within check.restore_test_max_age (31d)\n"
      "  export           an export younger than check.export_max_age (8d) whose manifest and\n"
      "                   sha256 still check at its destination\n"
      "  docs             drctl docs pages in docs.dir, no older than the runbooks\n"
      "  contact          Neon's emergency contact recorded (drctl config set contact ...)\n"
      "\n"
      "  -p project=ID    the project (default NEON_PROJECT_ID)\n"
      "  -p branch=NAME   the branch backed up (default the project's default branch)\n"
      "  --prometheus FILE  also write node_exporter textfile-collector metrics to FILE (atomically)\n"
      "\n"
      "A failing check notifies the configured webhooks. Exit 0: every item passes (warnings\n"
      "included); 1: an item fails; 2: bad configuration or usage.\n" },
    { "notify",
      "usage: drctl notify test [--json]\n"
      "\n"
      "Sends one test notification to every webhook of notify.webhook (drctl config), and records\n"
      "in the audit trail what each delivery did (delivered, or failed with the reason); the\n"
      "check's notifications item relies on it. Exit 0 when every webhook got it, 1 when one did\n"
      "not, 2 when none is configured.\n" },
};

static const char *help_for(const char *command)
{
    for (size_t i = 0; i < sizeof command_help / sizeof *command_help; i++)
        if (strcmp(command_help[i].command, command) == 0)
            return command_help[i].text;
    return NULL;
}

const char *cli_help_for(const char *command)
{
    return command ? help_for(command) : usage_text;
}

const char *cli_command_name(size_t i)
{
    return i < sizeof command_help / sizeof *command_help ? command_help[i].command : NULL;
}

/* ---- argument parsing -------------------------------------------------------- */

void cli_push_arg(char ***list, size_t *count, char *value)
{
    *list = xrealloc(*list, (*count + 1) * sizeof **list);
    (*list)[(*count)++] = value;
}

/* The value of an option given as "--opt VALUE" or "--opt=VALUE". */
static const char *option_value(int *i, int argc, char **argv, const char *name)
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

/* A flag, an option without a value; 0 when arg is none of them. */
static int parse_flag(cli *c, const char *arg)
{
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
        c->help = 1;
    else if (strcmp(arg, "--json") == 0)
        c->json = 1;
    else if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0)
        term_set_verbosity(TERM_VERBOSE);
    else if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0)
        term_set_verbosity(TERM_QUIET);
    else if (strcmp(arg, "--local") == 0)
        c->local = 1;
    else if (strcmp(arg, "--history") == 0)
        c->history = 1;
    else if (strcmp(arg, "--allow-runbook-change") == 0)
        c->allow_runbook_change = 1;
    else if (strcmp(arg, "--all") == 0)
        c->all = 1;
    else if (strcmp(arg, "--version") == 0)
        c->command = "version";
    else
        return 0;
    return 1;
}

/* Refused here, before a runbook, a target or the audit repository is
 * touched: a refusal leaves nothing behind. */
static int set_run_id(cli *c, const char *value)
{
    if (!runs_valid_id(value))
        return err_set(DR_EUSAGE, "--run-id '%s' must be 1 to 128 letters, digits, '.', '_' or '-', "
                       "not starting with '.'", value);
    /* A run is filed under the day its id begins with (runpath.h), and
     * status --since and the most recent runs go by that day: an id that
     * begins with another day than today's would hide the run from them. */
    char day[11];
    if (runpath_day_of_id(day, value) == 0 && !runpath_day_is_about_today(day))
        return err_set(DR_EUSAGE, "--run-id '%s' begins with the date %.10s, not today's (UTC): a run is filed "
                       "under the day its id begins with. Choose an id without a date, or with today's", value,
                       day);
    c->run_id = value;
    return 0;
}

/* An option with a value, at argv[*i] (*i moves past a separate value). */
static int parse_option(cli *c, int *i, int argc, char **argv)
{
    char *arg = argv[*i];
    const char *value;
    if (matches(arg, "--runbooks")) {
        if (!(value = option_value(i, argc, argv, "--runbooks")))
            return DR_EUSAGE;
        cli_push_arg(&c->runbook_dirs, &c->runbook_dir_count, (char *)value);
    } else if (matches(arg, "--audit")) {
        if (!(value = option_value(i, argc, argv, "--audit")))
            return DR_EUSAGE;
        c->audit_dir = value;
    } else if (strcmp(arg, "-p") == 0 || matches(arg, "--param")) {
        if (!(value = option_value(i, argc, argv, arg[1] == 'p' ? "-p" : "--param")))
            return DR_EUSAGE;
        cli_push_arg(&c->params, &c->param_count, (char *)value);
    } else if (strncmp(arg, "-p", 2) == 0 && strchr(arg, '=')) {
        cli_push_arg(&c->params, &c->param_count, arg + 2);
    } else if (matches(arg, "--approve")) {
        if (!(value = option_value(i, argc, argv, "--approve")))
            return DR_EUSAGE;
        cli_push_arg(&c->approvals, &c->approval_count, (char *)value);
    } else if (matches(arg, "--out")) {
        if (!(c->out_dir = option_value(i, argc, argv, "--out")))
            return DR_EUSAGE;
    } else if (matches(arg, "--allowed-signers")) {
        if (!(c->allowed_signers = option_value(i, argc, argv, "--allowed-signers")))
            return DR_EUSAGE;
    } else if (matches(arg, "--since")) {
        if (!(c->since = option_value(i, argc, argv, "--since")))
            return DR_EUSAGE;
    } else if (matches(arg, "--runbook")) {
        if (!(c->runbook_filter = option_value(i, argc, argv, "--runbook")))
            return DR_EUSAGE;
    } else if (matches(arg, "--status")) {
        if (!(c->status_filter = option_value(i, argc, argv, "--status")))
            return DR_EUSAGE;
    } else if (matches(arg, "--prometheus")) {
        if (!(c->prometheus_file = option_value(i, argc, argv, "--prometheus")))
            return DR_EUSAGE;
    } else if (matches(arg, "--run-id")) {
        if (!(value = option_value(i, argc, argv, "--run-id")))
            return DR_EUSAGE;
        return set_run_id(c, value);
    } else {
        return err_set(DR_EUSAGE, "unknown option '%s' (drctl --help lists them)", arg);
    }
    return 0;
}

/* The options that take a value: as separate words (--approve STEP) or
 * joined (--approve=STEP, -pkey=value). */
static const char *const valued_options[] = { "--runbooks", "--audit", "-p", "--param", "--approve", "--out",
                                              "--allowed-signers", "--since", "--runbook", "--status",
                                              "--prometheus", "--run-id", NULL };

int cli_takes_value(const char *option)
{
    for (const char *const *o = valued_options; *o; o++)
        if (strcmp(option, *o) == 0)
            return 1;
    return 0;
}

static int parse_args(cli *c, int argc, char **argv)
{
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        int rc = 0;
        if (only_positional || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (!c->command)
                c->command = arg;
            else
                cli_push_arg(&c->args, &c->arg_count, arg);
        } else if (strcmp(arg, "--") == 0) {
            only_positional = 1;
        } else if (!parse_flag(c, arg)) {
            rc = parse_option(c, &i, argc, argv);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Options that only make sense for some commands are refused elsewhere, so
 * that a typo never silently does nothing. */
static int check_options_apply(const cli *c)
{
    const char *cmd = c->command;
    int acts = !strcmp(cmd, "run") || !strcmp(cmd, "resume") || !strcmp(cmd, "abort") || !strcmp(cmd, "drill") ||
               !strcmp(cmd, "undo") || !strcmp(cmd, "approve");
    if (c->history && strcmp(cmd, "drill") != 0)
        return err_set(DR_EUSAGE, "--history does not apply to '%s' (it is drctl drill --history)", cmd);
    if (c->param_count && !acts && strcmp(cmd, "plan") != 0 && strcmp(cmd, "check") != 0)
        return err_set(DR_EUSAGE, "-p does not apply to '%s'", cmd);
    if (c->approval_count && !acts)
        return err_set(DR_EUSAGE, "--approve does not apply to '%s'", cmd);
    if (c->run_id && strcmp(cmd, "run") != 0 && strcmp(cmd, "drill") != 0 && strcmp(cmd, "undo") != 0)
        return err_set(DR_EUSAGE, "--run-id does not apply to '%s'", cmd);
    if (c->out_dir && strcmp(cmd, "docs") != 0)
        return err_set(DR_EUSAGE, "--out does not apply to '%s' (it is drctl docs --out DIR)", cmd);
    if (c->allowed_signers && strcmp(cmd, "audit") != 0)
        return err_set(DR_EUSAGE, "--allowed-signers does not apply to '%s' (it is drctl audit verify "
                       "--allowed-signers FILE)", cmd);
    if (c->prometheus_file && strcmp(cmd, "check") != 0)
        return err_set(DR_EUSAGE, "--prometheus does not apply to '%s' (it is drctl check --prometheus FILE)", cmd);
    if (c->allow_runbook_change && strcmp(cmd, "resume") != 0 && strcmp(cmd, "abort") != 0)
        return err_set(DR_EUSAGE, "--allow-runbook-change does not apply to '%s'", cmd);
    const char *pick = c->all ? "--all" : c->since ? "--since" : c->runbook_filter ? "--runbook"
                                      : c->status_filter ? "--status" : NULL;
    int lists = (!strcmp(cmd, "status") && c->arg_count == 0) ||
                (!strcmp(cmd, "audit") && c->arg_count == 1 && !strcmp(c->args[0], "log"));
    if (pick && !lists)
        return err_set(DR_EUSAGE, "%s does not apply to '%s%s%s' (it picks the runs drctl status and drctl audit "
                       "log list)", pick, cmd, c->arg_count ? " " : "", c->arg_count ? c->args[0] : "");
    return 0;
}

int cli_expect_args(const cli *c, size_t min, size_t max, const char *what)
{
    if (c->arg_count < min || c->arg_count > max)
        return err_set(DR_EUSAGE, "usage: drctl %s %s (drctl %s --help)", c->command, what, c->command);
    return 0;
}

/* ---- what the commands share ---------------------------------------------------- */

const char *cli_share_dir(void)
{
    static char *dir;
    if (!dir) {
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            char *bin = fsio_dirname(exe);
            char *beside = xasprintf("%s/../share/drctl", bin);
            free(bin);
            if (fsio_is_dir(beside))
                dir = beside;
            else
                free(beside);
        }
        if (!dir)
            dir = xstrdup(DRCTL_SHAREDIR);
    }
    return dir;
}

void cli_search_dirs(char ***dirs, size_t *count, const cli *c)
{
    *dirs = NULL;
    *count = 0;
    for (size_t i = 0; i < c->runbook_dir_count; i++)
        cli_push_arg(dirs, count, xstrdup(c->runbook_dirs[i]));
    if (c->runbook_dir_count == 0) {
        cli_push_arg(dirs, count, xstrdup("runbooks"));
        cli_push_arg(dirs, count, xasprintf("%s/runbooks", cli_share_dir()));
    }
}

void cli_free_list(char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

void cli_print_json(const cJSON *value)
{
    char *text = json_print_exact(value, 1);
    term_out("%s", text);
    free(text);
}

const char *cli_audit_dir(const cli *c)
{
    if (c->audit_dir)
        return c->audit_dir;
    const char *env = getenv("DRCTL_AUDIT_DIR");
    return env && *env ? env : "drctl-audit";
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn)(cli *c);
} commands[] = {
    { "list", cmd_list }, { "plan", cmd_plan },     { "run", cmd_run },
    { "resume", cmd_resume }, { "status", cmd_status }, { "abort", cmd_abort },
    { "audit", cmd_audit }, { "drill", cmd_drill }, { "undo", cmd_undo }, { "approve", cmd_approve },
    { "docs", cmd_docs }, { "config", cmd_config }, { "check", cmd_check }, { "notify", cmd_notify },
};

static int dispatch(cli *c)
{
    if (c->command && strcmp(c->command, "version") == 0) {
#ifdef DRCTL_TEST_HOOKS
        /* never to be mistaken for a build to ship: its kill and fault
         * points obey the environment */
        term_out("drctl %s (test build: DRCTL_TEST_* kill and fault points)", DRCTL_VERSION);
#else
        term_out("drctl %s", DRCTL_VERSION);
#endif
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

int cli_parse(cli *c, int argc, char **argv)
{
    return parse_args(c, argc, argv);
}

int cli_main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "__complete") == 0)
        return cmd_complete(argc, argv);
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
