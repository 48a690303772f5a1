/* cli: drctl's command line (DESIGN.md section 3). */
#ifndef DRCTL_CLI_H
#define DRCTL_CLI_H

/* Runs one command; returns the process exit status. */
int cli_main(int argc, char **argv);

#endif
