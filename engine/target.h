/* target: which Neon the commands act on (the target contract,
 * docs/design.md).
 *
 * The Neon API at NEON_API_HOST (default the cloud's) when NEON_API_KEY is
 * set; neon-local only when asked (--local or DRCTL_LOCAL=1), at
 * .drctl/neon-local under the current directory, started in the background
 * when it is not running and reused when it is. With neither, a refusal
 * that says how to choose. Never a silent fallback from one to the other:
 * a recovery meant for production must not land on a rehearsal. */
#ifndef DRCTL_TARGET_H
#define DRCTL_TARGET_H

#include <cjson/cJSON.h>

typedef enum { TARGET_NONE, TARGET_CLOUD, TARGET_LOCAL } target_kind;

typedef struct target {
    target_kind kind;
    char *api_host;   /* the API base URL */
    char *api_key;    /* never printed, never journaled */
    char *local_dir;  /* neon-local's data folder (local) */
    int connected;
} target;

#define NEON_CLOUD_API "https://console.neon.tech/api/v2"

/* From the flag and the environment; starts nothing. */
void target_resolve(target *t, int local_flag);

/* The refusal when kind is TARGET_NONE (DR_EUSAGE). */
int target_refuse(void);

/* Makes the target usable: for neon-local, reuses the running one or starts
 * it in the background and waits until it answers. */
int target_connect(target *t);

/* "Neon cloud (https://...)" or "neon-local (rehearsal), http://...". */
char *target_describe(const target *t);

/* {"kind": "cloud"|"local", "api_host": ...} for run.json. */
cJSON *target_json(const target *t);

void target_dispose(target *t);

#endif
