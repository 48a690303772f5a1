/* cli: drctl's command line (the command line contract in docs/design.md: commands,
 * options and exit statuses).
 *
 * cli.c parses the options, holds the help text and dispatches to one
 * command; each command lives in engine/cmd_<command>.c, session.c loads
 * the runbook a command acts with, and runs.c reads past runs. What follows
 * cli_main is what the commands share. */
#ifndef DRCTL_CLI_H
#define DRCTL_CLI_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The command line, parsed. The strings point into argv. */
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
    const char *out_dir; /* docs --out DIR */
    const char *prometheus_file; /* check --prometheus FILE */
    const char *allowed_signers; /* audit verify --allowed-signers FILE */
    int all;                   /* status, audit log: --all */
    const char *since;         /* status, audit log: --since WHEN */
    const char *runbook_filter; /* status, audit log: --runbook NAME */
    const char *status_filter;  /* status, audit log: --status STATUS */
} cli;

/* Runs one command; returns the process exit status. */
int cli_main(int argc, char **argv);

/* DR_EUSAGE, with the command's usage (what), unless it was given min to
 * max positional arguments. */
int cli_expect_args(const cli *c, size_t min, size_t max, const char *what);

/* --audit DIR, else $DRCTL_AUDIT_DIR, else ./drctl-audit. */
const char *cli_audit_dir(const cli *c);

/* The installed share folder: share/drctl beside the bin/ drctl runs
 * from when there is one (a package unpacked elsewhere works as it is),
 * else the one drctl was built for. */
const char *cli_share_dir(void);

/* The folders runbooks are looked for in, in order: each --runbooks DIR,
 * else ./runbooks then the installed share folder. Free with
 * cli_free_list. */
void cli_search_dirs(char ***dirs, size_t *count, const cli *c);

/* Appends value (not copied) to a growing list. */
void cli_push_arg(char ***list, size_t *count, char *value);

/* Frees each entry of list, then list. */
void cli_free_list(char **list, size_t count);

/* Parses argv[1..argc-1] into c (the lists it allocates are the caller's
 * to free); DR_EUSAGE on a bad option. */
int cli_parse(cli *c, int argc, char **argv);

/* 1 when option takes a value (--approve STEP, -p key=value). */
int cli_takes_value(const char *option);

/* The help text of command (NULL: drctl's own usage), NULL when there is
 * no such command; the commands, by index until NULL. */
const char *cli_help_for(const char *command);
const char *cli_command_name(size_t i);

/* value as indented JSON on stdout, its numbers exactly as read. */
void cli_print_json(const cJSON *value);

#endif
