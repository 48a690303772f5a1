/* drctl: disaster-recovery runbook executor for PostgreSQL on Neon. */
#include "cli.h"
#include "redact.h"
#include "signals.h"

#include <git2.h>

int main(int argc, char **argv)
{
    git_libgit2_init();
    signals_install();
    redact_add_environment_secrets();
    int status = cli_main(argc, argv);
    redact_clear();
    git_libgit2_shutdown();
    return status;
}
