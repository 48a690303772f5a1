/* docs: a runbook's documentation as Markdown, for the team's wiki.
 *
 * The page says what the runbook is (name, version, summary, description),
 * what it takes (each param's type, default, env, enum values) and what it
 * does, step by step, with each step's plan as `drctl plan` computes it,
 * which steps are destructive and what their confirmation says will be
 * lost. Plans are computed offline, in plan mode, without a target: a
 * required param without default gets an example value, and a plan that
 * needs the Neon API says so on the page instead of failing it.
 *
 * The page is deterministic (no times, no run ids but "<run-id>"), and its
 * first line names the runbook's git blob id, so a reader (or a check) can
 * tell whether the page is older than the runbook:
 *     <!-- drctl-docs runbook=NAME version=VERSION blob=BLOB_ID -->
 */
#ifndef DRCTL_DOCS_H
#define DRCTL_DOCS_H

#include "runbook.h"
#include "drmod.h"

#include <cjson/cJSON.h>

/* The first line of every page, for a runbook's name, version and blob id;
 * caller frees. */
char *docs_marker_line(const char *name, const char *version, const char *blob_id);

/* Reads a page's first line back: 1 with name and blob_id filled (41 bytes
 * for blob_id, 256 for name) when text starts with a marker line. */
int docs_parse_marker(char name[256], char blob_id[41], const char *text);

/* The params the plans of the page are computed with: each default, and
 * for a required param without one an example value of its type
 * (<name> for text, 2026-01-01T00:00:00Z for a timestamp...). Never read
 * from the environment, so the page is the same wherever it is made. */
cJSON *docs_example_params(const runbook *rb);

/* The page of rb, loaded in a sandbox wired to host (which must have no
 * target). file_name is the runbook's file name as shown on the page.
 * Caller frees. */
char *docs_render_runbook(runbook *rb, dr_host *host, const char *file_name);

/* One row of the index: what index.md lists of a runbook. */
typedef struct docs_entry {
    const char *name;
    const char *version;
    const char *summary;
    const char *blob_id;
    const char *page;      /* the page's file name, e.g. "snapshot.md" */
} docs_entry;

/* index.md: every runbook's name linking to its page, version, summary
 * and blob id. Caller frees. */
char *docs_render_index(const docs_entry *entries, size_t count);

#endif
