/* cmd_complete: drctl __complete INDEX WORD..., what the shell completions
 * (completion/drctl.bash, completion/_drctl) ask drctl for.
 *
 * WORD 0 is drctl, INDEX the word being completed (it may be one past the
 * last word: a new word). The candidates that begin with that word are
 * printed one per line: commands and their options (as each command's
 * --help lists them), runbook names on the search path, each runbook's
 * params after -p (name=, then an enum's values), step names after
 * --approve, run ids, audit and config sub-commands. A line ":files" or
 * ":dirs" asks the shell for its own file names. drctl answers from what
 * is there now, so completion stays true as runbooks change; a runbook
 * that does not load completes nothing, and nothing is ever printed on
 * stderr. Always exits 0. */
#ifndef DRCTL_CMD_COMPLETE_H
#define DRCTL_CMD_COMPLETE_H

int cmd_complete(int argc, char **argv);

#endif
