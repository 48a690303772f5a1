/* cmd_list: drctl list, the runbooks on the search path. */
#ifndef DRCTL_CMD_LIST_H
#define DRCTL_CMD_LIST_H

#include "cli.h"

/* Lists each runbook with its version, summary and blob id; one that does
 * not load is listed with its error, and the result is DR_EUSAGE. */
int cmd_list(cli *c);

/* The .lua files of dir, not hidden, sorted (caller frees with
 * cli_free_list): the runbooks drctl list and drctl docs show. */
void cmd_list_runbook_files(char ***files, size_t *count, const char *dir);

/* fn(file, context) for each runbook file of each folder of the search
 * path, in order (names shadowed further on included: fn decides). */
void cmd_list_each_runbook_file(const cli *c, void (*fn)(const char *file, void *context), void *context);

/* The same for the files of dir whose names end with suffix. */
void cmd_list_files_ending(char ***files, size_t *count, const char *dir, const char *suffix);

#endif
