#include "cmd_complete.h"

#include "buf.h"
#include "cli.h"
#include "cmd_list.h"
#include "config.h"
#include "err.h"
#include "jsonfield.h"
#include "params.h"
#include "runbook.h"
#include "runs.h"
#include "session.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A runbook whose top-level code hangs inside one C call is out of reach
 * of the load deadline: past this, the completion dies, printing nothing,
 * rather than hang the shell. */
#define COMPLETE_SECONDS 5

/* The commands whose positional arguments are run ids. */
static int takes_run_id(const char *command)
{
    static const char *const names[] = { "resume", "status", "abort", "approve", "undo", NULL };
    for (const char *const *n = names; *n; n++)
        if (strcmp(command, *n) == 0)
            return 1;
    return 0;
}

/* ---- what there is to complete ------------------------------------------------------- */

static void add_commands(str_list *out)
{
    for (size_t i = 0; cli_command_name(i); i++)
        str_list_push(out, cli_command_name(i));
}

/* The options a help text lists: its words that begin with "-". */
static void add_options_of(str_list *out, const char *help)
{
    for (const char *p = help; p && *p; p++) {
        if (*p != '-' || (p > help && !strchr(" [|\n", p[-1])))
            continue;
        size_t n = strspn(p, "-abcdefghijklmnopqrstuvwxyz");
        if (n >= 2 && p[1] != ' ') {
            char *option = xstrndup(p, n);
            if (strcmp(option, "--") != 0 && !str_list_has(out, option))
                str_list_push(out, option);
            free(option);
        }
        p += n ? n - 1 : 0;
    }
}

static void add_options(str_list *out, const char *command)
{
    add_options_of(out, strstr(cli_help_for(NULL), "global options:")); /* the global ones */
    if (command)
        add_options_of(out, cli_help_for(command));
}

static void add_runbook_name(const char *file, void *context)
{
    str_list *out = context;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    char *name = xstrndup(base, strlen(base) - strlen(".lua"));
    if (runbook_valid_name(name) && !str_list_has(out, name))
        str_list_push(out, name);
    free(name);
}

/* The runbook names on the search path (a name shadowed by an earlier
 * folder is listed once). */
static void add_runbook_names(str_list *out, const cli *c)
{
    cmd_list_each_runbook_file(c, add_runbook_name, out);
}

/* The runs status lists by default: those not ended and the most recent. */
static void add_run_ids(str_list *out, const cli *c)
{
    runs_filter filter = { .since = -1, .recent = 10 };
    size_t total;
    cJSON *rows = runs_select(&total, cli_audit_dir(c), &filter);
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
        str_list_push(out, json_text(row, "run_id", ""));
    cJSON_Delete(rows);
}

/* The runbook a command line is about: plan/run/docs RUNBOOK, drill
 * SCENARIO (composed as the drill runs it), or the one a run id names. */
static int load_runbook_of(session *s, cli *c)
{
    const char *cmd = c->command;
    if (!cmd || c->arg_count == 0)
        return DR_EUSAGE;
    /* steps approved on the line are checked by the command itself, not
     * here: one mistyped must not stop the completion of the others */
    c->approval_count = 0;
    if (!strcmp(cmd, "plan") || !strcmp(cmd, "run") || !strcmp(cmd, "docs"))
        return session_load(s, c, c->args[0], NULL, 0);
    if (!strcmp(cmd, "drill"))
        return session_load(s, c, c->args[0], NULL, 1);
    if (!takes_run_id(cmd))
        return DR_EUSAGE;
    cJSON *info = NULL;
    int rc = runs_read_info(&info, cli_audit_dir(c), c->args[0]);
    if (rc == 0) {
        const cJSON *rb = cJSON_GetObjectItemCaseSensitive(info, "runbook");
        int drill = cJSON_GetObjectItemCaseSensitive(info, "drill") != NULL;
        const char *name = drill ? json_text(cJSON_GetObjectItemCaseSensitive(info, "drill"), "scenario", "?")
                                 : json_text(rb, "name", "?");
        rc = session_load(s, c, name, json_text(rb, "path", NULL), drill);
    }
    cJSON_Delete(info);
    return rc;
}

static void add_steps(str_list *out, cli *c)
{
    session s;
    if (load_runbook_of(&s, c) != 0)
        return;
    for (size_t i = 0; i < s.rb->step_count; i++)
        str_list_push(out, s.rb->steps[i].name);
    session_dispose(&s);
}

/* After -p: "name=" for each param; once a name and "=" are typed, an
 * enum's values or a bool's. */
static void add_params(str_list *out, cli *c, const char *current)
{
    session s;
    if (load_runbook_of(&s, c) != 0)
        return;
    const char *eq = strchr(current, '=');
    for (size_t i = 0; i < s.rb->param_count; i++) {
        const param_spec *p = &s.rb->params[i];
        if (!eq) {
            char *name = xasprintf("%s=", p->name);
            str_list_push(out, name);
            free(name);
        } else if (strlen(p->name) == (size_t)(eq - current) && !strncmp(p->name, current, (size_t)(eq - current))) {
            static const char *const bools[] = { "true", "false" };
            size_t n = p->type == PARAM_BOOL ? 2 : p->type == PARAM_ENUM ? p->value_count : 0;
            for (size_t v = 0; v < n; v++) {
                char *pair = xasprintf("%s=%s", p->name, p->type == PARAM_BOOL ? bools[v] : p->values[v]);
                str_list_push(out, pair);
                free(pair);
            }
        }
    }
    session_dispose(&s);
}

static void add_words(str_list *out, const char *const *words)
{
    for (; *words; words++)
        str_list_push(out, *words);
}

static void add_config_keys(str_list *out)
{
    size_t count;
    const config_key *keys = config_keys(&count);
    for (size_t i = 0; i < count; i++)
        str_list_push(out, keys[i].name);
}

/* ---- by position ---------------------------------------------------------------------- */

/* The values of option; *files is set ('d' folders, 'f' files) when the
 * shell's own names are what to offer. */
static void complete_value(str_list *out, int *files, cli *c, const char *option, const char *current)
{
    if (!strcmp(option, "-p") || !strcmp(option, "--param"))
        add_params(out, c, current);
    else if (!strcmp(option, "--approve"))
        add_steps(out, c);
    else if (!strcmp(option, "--runbook"))
        add_runbook_names(out, c);
    else if (!strcmp(option, "--status"))
        add_words(out, (const char *const[]){ "running", "paused", "failed", "interrupted", "done", "aborted",
                                              "dead", "corrupt", NULL });
    else if (!strcmp(option, "--runbooks") || !strcmp(option, "--audit") || !strcmp(option, "--out"))
        *files = 'd';
    else if (!strcmp(option, "--allowed-signers") || !strcmp(option, "--prometheus"))
        *files = 'f';
}

static void complete_argument(str_list *out, cli *c)
{
    const char *cmd = c->command;
    size_t n = c->arg_count;
    if (!cmd)
        add_commands(out);
    else if (n == 0 && (!strcmp(cmd, "plan") || !strcmp(cmd, "run") || !strcmp(cmd, "docs")))
        add_runbook_names(out, c);
    else if (n == 0 && !strcmp(cmd, "drill") && !c->history)
        add_words(out, (const char *const[]){ "accidental-deletion", "corruption", "total-loss", NULL });
    else if (n == 0 && takes_run_id(cmd))
        add_run_ids(out, c);
    else if (n == 1 && !strcmp(cmd, "approve"))
        add_steps(out, c);
    else if (n == 0 && !strcmp(cmd, "audit"))
        add_words(out, (const char *const[]){ "log", "show", "verify", NULL });
    else if (n == 1 && !strcmp(cmd, "audit") && !strcmp(c->args[0], "show"))
        add_run_ids(out, c);
    else if (n == 0 && !strcmp(cmd, "config"))
        add_words(out, (const char *const[]){ "set", "unset", NULL });
    else if (n == 1 && !strcmp(cmd, "config") && (!strcmp(c->args[0], "set") || !strcmp(c->args[0], "unset")))
        add_config_keys(out);
    else if (n == 0 && !strcmp(cmd, "notify"))
        add_words(out, (const char *const[]){ "test", NULL });
}

/* ---- the answer ---------------------------------------------------------------------------- */

static void print_matching(const str_list *out, const char *prefix, const char *current)
{
    size_t len = strlen(current);
    for (size_t i = 0; i < out->count; i++) {
        char *word = xasprintf("%s%s", prefix, out->items[i]);
        if (strncmp(word, current, len) == 0)
            printf("%s\n", word);
        free(word);
    }
}

/* Nothing a runbook or a library prints while it loads may reach the
 * shell: stderr goes nowhere. */
static void silence_stderr(void)
{
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDERR_FILENO);
        close(null);
    }
}

int cmd_complete(int argc, char **argv)
{
    alarm(COMPLETE_SECONDS);
    silence_stderr();
    int index = argc > 2 ? atoi(argv[2]) : 0;
    char **words = argv + 3;
    int count = argc - 3;
    if (index < 1 || index > count)
        return 0;
    const char *current = index < count ? words[index] : "";
    const char *previous = words[index - 1];
    /* "--approve=ap": the value of an option, typed joined to it. */
    const char *joined = strchr(current, '=');
    char *option = NULL;
    if (current[0] == '-' && joined) {
        option = xstrndup(current, (size_t)(joined - current));
        if (!cli_takes_value(option)) {
            free(option);
            option = NULL;
        }
    }
    int value_of = !option && cli_takes_value(previous);
    cli c = { 0 };
    (void)cli_parse(&c, value_of ? index - 1 : index, words);
    str_list out = { 0 };
    int files = 0;
    if (option) {
        complete_value(&out, &files, &c, option, joined + 1);
        char *prefix = xasprintf("%s=", option);
        print_matching(&out, prefix, current);
        free(prefix);
    } else {
        if (value_of)
            complete_value(&out, &files, &c, previous, current);
        else if (current[0] == '-')
            add_options(&out, c.command);
        else
            complete_argument(&out, &c);
        if (files)
            printf("%s\n", files == 'd' ? ":dirs" : ":files");
        else
            print_matching(&out, "", current);
    }
    fflush(stdout);
    str_list_dispose(&out);
    free(option);
    free(c.runbook_dirs);
    free(c.params);
    free(c.approvals);
    free(c.args);
    return 0;
}
