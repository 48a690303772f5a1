/* drctl: disaster-recovery runbook executor for PostgreSQL on Neon. */
#include "buf.h"
#include "cli.h"
#include "redact.h"
#include "signals.h"

#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

/* Not dumpable: a program a runbook starts as the same user can then
 * neither ptrace drctl nor read its /proc/<pid>/environ, mem or fds (those
 * become root's). Core dumps, which would hold the secrets, are off too. */
static void refuse_inspection(void)
{
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static int is_original(char *const *original, const char *entry)
{
    for (; *original; original++)
        if (*original == entry)
            return 1;
    return 0;
}

/* /proc/<pid>/environ shows the block the kernel wrote at exec, whatever
 * setenv and unsetenv did since; and an entry a secret param is read from
 * (DRCTL_PARAM_*) is not known to be secret before its runbook is loaded.
 * So every variable is copied to the heap, where getenv still finds it
 * (libpq, libgit2 credentials, S3 and the Neon target read theirs later),
 * and the original block is wiped. Called first thing, while environ
 * holds only the kernel's strings. */
static void move_environment_to_heap(void)
{
    size_t count = 0;
    while (environ[count])
        count++;
    /* setenv replaces entries in place, so the kernel's pointers are kept
     * aside first. */
    char **original = xcalloc(count + 1, sizeof *original);
    memcpy(original, environ, count * sizeof *original);
    for (size_t i = 0; i < count; i++) {
        const char *eq = strchr(original[i], '=');
        if (!eq || eq == original[i])
            continue;
        char *name = xstrndup(original[i], (size_t)(eq - original[i]));
        if (getenv(name) == eq + 1) /* of duplicates, the one getenv sees */
            setenv(name, eq + 1, 1);
        free(name);
    }
    /* What still points into the block (a duplicate name, an entry with no
     * '='): no lookup reaches it, so it goes. */
    size_t kept = 0;
    for (size_t i = 0; environ[i]; i++)
        if (!is_original(original, environ[i]))
            environ[kept++] = environ[i];
    environ[kept] = NULL;
    for (size_t i = 0; i < count; i++)
        memset(original[i], 0, strlen(original[i]));
    free(original);
}

/* Read at start (for redaction) and by no later code in drctl: neon-local's
 * key lives in its own folder. */
static void drop_unused_secrets(void)
{
    unsetenv("NEON_LOCAL_API_KEY");
}

int main(int argc, char **argv)
{
    refuse_inspection();
    move_environment_to_heap();
    git_libgit2_init();
    signals_install();
    redact_add_environment_secrets();
    drop_unused_secrets();
    int status = cli_main(argc, argv);
    signals_uninstall();
    redact_clear();
    git_libgit2_shutdown();
    return status;
}
