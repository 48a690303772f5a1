/* check: the backup guide's production checklist, scored from what is
 * really there (the readiness contract, docs/design.md).
 *
 * Eight items, each pass, warn or fail with its evidence (what was found,
 * with dates and figures) and its fix (the command to run): backups,
 * history, schema-backup, notifications, restore-test, export, docs and
 * contact. What they read: the Neon API (the project, its branches,
 * snapshots, backup schedule and schemas), the audit trail (the runs of
 * snapshot, export, verify-backup and drills; the recorded test
 * notifications), the team's settings (thresholds, webhooks, contact,
 * docs.dir), the export's files at their destination, and the runbooks on
 * the search path. Nothing is changed: a check only reads. */
#ifndef DRCTL_CHECK_H
#define DRCTL_CHECK_H
#include "config.h"
#include "neon.h"
#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct check_input {
    neon_client *neon;        /* the API the project lives on */
    const char *project;
    const char *branch;       /* name or id; NULL: the project's default */
    const char *audit_dir;
    const config *settings;
    char **runbook_dirs;      /* the search path, for the docs item */
    size_t runbook_dir_count;
    double now;               /* epoch seconds */
} check_input;

/* Scores every item: {"project","branch","time","result":"pass"|"warn"|
 * "fail","items":[{"item","title","status","evidence","fix"}],
 * "metrics":{name: seconds or null}}. */
cJSON *check_run(const check_input *in);

/* The node_exporter textfile-collector text of a check_run result:
 * drctl_check_ok{item="..."} and the age, RTO, RPO and history gauges. */
char *check_prometheus_text(const cJSON *result);

#endif
