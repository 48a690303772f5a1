/* cli: drctl's command line (the command line contract: commands,
 * options and exit statuses). */
#ifndef DRCTL_CLI_H
#define DRCTL_CLI_H

/* Runs one command; returns the process exit status. */
int cli_main(int argc, char **argv);

#endif
