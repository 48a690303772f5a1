#include "runs.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- run ids and paths ----------------------------------------------------- */

static int is_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
}

/* A run id becomes a folder and a file name: no '/', no "..", no hidden
 * name, nothing a shell or git would read specially. */
int runs_valid_id(const char *run_id)
{
    size_t len = strlen(run_id);
    if (len == 0 || len > 128 || run_id[0] == '.')
        return 0;
    for (const char *p = run_id; *p; p++)
        if (!is_id_char(*p))
            return 0;
    return 1;
}

/* The time first, so that ids sort as the runs started; the random part
 * keeps two runs started in the same second apart. */
char *runs_new_id(const char *runbook_name)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    unsigned random_part = 0;
    FILE *urandom = fopen("/dev/urandom", "rb");
    if (!urandom || fread(&random_part, sizeof random_part, 1, urandom) != 1)
        random_part = (unsigned)getpid() ^ (unsigned)now;
    if (urandom)
        fclose(urandom);
    return xasprintf("%s-%s-%04x", stamp, runbook_name, random_part & 0xffff);
}

/* Under .git, so that the lock files are never part of the trail. */
char *runs_lock_path(const char *audit_dir, const char *run_id)
{
    return xasprintf("%s/.git/drctl/locks/run-%s.lock", audit_dir, run_id);
}

char *runs_journal_path(const char *audit_dir, const char *run_id)
{
    return xasprintf("%s/runs/%s/journal.jsonl", audit_dir, run_id);
}

/* ---- run.json ---------------------------------------------------------------- */

/* The record parsed, or DR_EUSAGE naming the file: a corrupt record is
 * bad input, and nothing is changed because of it. */
static int parse_run_info(cJSON **info, const char *path)
{
    char *text;
    if (fsio_read_file(&text, NULL, path) != 0)
        return DR_EUSAGE;
    *info = cJSON_Parse(text);
    free(text);
    if (cJSON_IsObject(*info))
        return 0;
    cJSON_Delete(*info);
    *info = NULL;
    return err_set(DR_EUSAGE, "%s is not valid JSON (corrupt run record); nothing was changed", path);
}

int runs_read_info(cJSON **info, const char *audit_dir, const char *run_id)
{
    *info = NULL;
    if (!runs_valid_id(run_id))
        return err_set(DR_EUSAGE, "'%s' is not a run id (drctl status lists the runs)", run_id);
    char *path = xasprintf("%s/runs/%s/run.json", audit_dir, run_id);
    int rc;
    if (fsio_exists(path))
        rc = parse_run_info(info, path);
    else
        rc = err_set(DR_EUSAGE, "there is no run %s in %s (drctl status lists the runs)", run_id, audit_dir);
    free(path);
    return rc;
}
