#include "report.h"

#include "buf.h"
#include "checkpoint.h"
#include "err.h"
#include "fsio.h"
#include "journal.h"
#include "jsontext.h"
#include "localtime.h"
#include "redact.h"
#include "timefmt.h"
#include "jsonfield.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Table cells must stay on one line and not break the table. */
static void put_cell(buf *b, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\n')
            buf_puts(b, "<br>");
        else if (*p == '|')
            buf_puts(b, "\\|");
        else
            buf_putc(b, *p);
    }
}

static void put_value(buf *b, const cJSON *value)
{
    if (!value)
        return;
    char *text = cJSON_IsString(value) ? xstrdup(value->valuestring) : json_print_exact(value, 0);
    put_cell(b, text);
    free(text);
}

static double event_epoch(const cJSON *event)
{
    double t = 0;
    timefmt_parse_timestamp(&t, json_text(event, "time", ""));
    return t;
}

/* A timestamp param (recorded in UTC) on the operator's clock too. */
static void put_instant_as_read(buf *b, const cJSON *value)
{
    double t;
    const char *text = cJSON_IsString(value) ? value->valuestring : NULL;
    size_t n = text ? strlen(text) : 0;
    if (n < 20 || text[n - 1] != 'Z' || text[10] != 'T' || timefmt_parse_timestamp(&t, text) != 0)
        return;
    char shown[128];
    localtime_show(shown, sizeof shown, t);
    if (strcmp(shown, text) != 0) {
        buf_puts(b, ": ");
        put_cell(b, shown);
    }
}

static void header(buf *b, const cJSON *info, const cJSON *events, const checkpoint *cp, const char *chain_head)
{
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(info, "runbook");
    const cJSON *first = cJSON_GetArrayItem(events, 0);
    const cJSON *last = cJSON_GetArrayItem(events, cJSON_GetArraySize(events) - 1);
    buf_printf(b, "# Run %s\n\n", json_text(info, "run_id", "?"));
    buf_puts(b, "| | |\n|---|---|\n");
    buf_printf(b, "| runbook | %s %s (blob %s) |\n", json_text(rb, "name", "?"), json_text(rb, "version", "?"),
               json_text(rb, "blob_id", "?"));
    buf_printf(b, "| status | **%s**", checkpoint_run_status_name(cp->status));
    if (cp->status_detail) {
        buf_puts(b, ": ");
        put_cell(b, cp->status_detail);
    }
    buf_puts(b, " |\n");
    /* Every operator who acted on the run, in order of appearance. */
    buf operators = BUF_INIT;
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        const char *op = json_text(cJSON_GetObjectItemCaseSensitive(e, "data"), "operator", NULL);
        if (op && !strstr(buf_cstr(&operators), op))
            buf_printf(&operators, "%s%s", operators.len ? ", " : "", op);
    }
    buf_puts(b, "| operators | ");
    put_cell(b, buf_cstr(&operators));
    buf_puts(b, " |\n");
    buf_dispose(&operators);
    buf_printf(b, "| host | %s |\n", json_text(info, "host", "?"));
    buf_printf(b, "| drctl | %s |\n", json_text(info, "drctl_version", "?"));
    buf_printf(b, "| started | %s |\n", json_text(first, "time", "?"));
    buf_printf(b, "| last event | %s |\n", json_text(last, "time", "?"));
    /* the anchor: a copy of it kept elsewhere dates the whole journal */
    if (chain_head && json_text(last, "prev", NULL))
        buf_printf(b, "| journal chain head | `%s` (event %d) |\n", chain_head, cJSON_GetArraySize(events));
    else
        buf_puts(b, "| journal chain head | none: the journal is unchained (written by an older drctl) |\n");
    char took[32];
    timefmt_format_duration(took, sizeof took, event_epoch(last) - event_epoch(first));
    buf_printf(b, "| elapsed | %s |\n\n", took);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(info, "params");
    if (cJSON_GetArraySize(params) > 0) {
        buf_puts(b, "## Params\n\n| param | value |\n|---|---|\n");
        const cJSON *p;
        cJSON_ArrayForEach(p, params) {
            buf_printf(b, "| %s | ", p->string);
            put_value(b, p);
            put_instant_as_read(b, p);
            buf_puts(b, " |\n");
        }
        buf_puts(b, "\n");
    }
}

static void timeline(buf *b, const cJSON *events)
{
    buf_puts(b, "## Timeline\n\n| time | step | event | detail |\n|---|---|---|---|\n");
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        const char *kind = json_text(e, "kind", "");
        if (strncmp(kind, "step-", 5) != 0 && strncmp(kind, "run-", 4) != 0 && strcmp(kind, "abort-requested") != 0 &&
            strcmp(kind, "runbook-changed") != 0 && strcmp(kind, "lock-takeover") != 0)
            continue;
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(e, "data");
        buf_printf(b, "| %s | %s | %s | ", json_text(e, "time", ""), json_text(e, "step", ""), kind);
        buf detail = BUF_INIT;
        double ms = json_number(data, "duration_ms", -1);
        if (ms >= 0 && strncmp(kind, "step-", 5) == 0) {
            char took[32];
            timefmt_format_duration(took, sizeof took, ms / 1000);
            buf_printf(&detail, "took %s", took);
        }
        if (json_number(data, "attempt", -1) > 0)
            buf_printf(&detail, "%sattempt %.0f", detail.len ? ", " : "", json_number(data, "attempt", -1));
        const char *why = json_text(data, "error", json_text(data, "reason", json_text(data, "operator", NULL)));
        if (why)
            buf_printf(&detail, "%s%s", detail.len ? ": " : "", why);
        put_cell(b, buf_cstr(&detail));
        buf_dispose(&detail);
        buf_puts(b, " |\n");
    }
    buf_puts(b, "\n");
}

static void put_names(buf *b, const cJSON *list)
{
    const cJSON *n;
    int first = 1;
    cJSON_ArrayForEach(n, list) {
        if (!cJSON_IsString(n))
            continue;
        buf_puts(b, first ? "" : ", ");
        put_cell(b, n->valuestring);
        first = 0;
    }
}

/* Four eyes: how many were asked and from whom, who approved which
 * summary (its hash, short), and why a refusal was made. */
static void approval_detail(buf *b, const char *kind, const cJSON *data)
{
    const char *hash = json_text(data, "summary_hash", "");
    if (!strcmp(kind, "approval-requested")) {
        buf_printf(b, "%.0f approvals needed", json_number(data, "required", 0));
        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(data, "from"))) {
            buf_puts(b, ", from ");
            put_names(b, cJSON_GetObjectItemCaseSensitive(data, "from"));
        }
        buf_puts(b, "; counted: ");
        put_names(b, cJSON_GetObjectItemCaseSensitive(data, "approved_by"));
        if (json_text(data, "not_counted", NULL)) {
            buf_puts(b, "; not counted: ");
            put_cell(b, json_text(data, "not_counted", ""));
        }
    } else if (!strcmp(kind, "approval-met")) {
        buf_puts(b, "approved by ");
        put_names(b, cJSON_GetObjectItemCaseSensitive(data, "approved_by"));
    } else if (!strcmp(kind, "approval-refused")) {
        put_cell(b, json_text(data, "reason", ""));
    } else {
        buf_printf(b, "from %s", json_text(data, "host", "?"));
        if (json_text(data, "how", NULL))
            buf_printf(b, ", %s", json_text(data, "how", ""));
        if (json_text(data, "signing_key", NULL))
            buf_printf(b, ", key %s", json_text(data, "signing_key", ""));
    }
    buf_printf(b, " (summary %.12s)", hash);
}

static void confirmations(buf *b, const cJSON *events)
{
    buf section = BUF_INIT;
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        const char *kind = json_text(e, "kind", "");
        int approval = strncmp(kind, "approval-", 9) == 0;
        if (strncmp(kind, "confirmation-", 13) != 0 && !approval)
            continue;
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(e, "data");
        buf_printf(&section, "| %s | %s | %s | ", json_text(e, "time", ""), json_text(e, "step", ""),
                   approval ? kind : kind + 13);
        put_cell(&section, json_text(data, "operator", ""));
        buf_puts(&section, " | ");
        if (approval) {
            approval_detail(&section, kind, data);
        } else if (strcmp(kind, "confirmation-asked") == 0) {
            put_cell(&section, json_text(data, "summary", ""));
            buf_printf(&section, " (challenge: `%s`)", json_text(data, "challenge", ""));
        } else if (json_text(data, "answer", NULL)) {
            buf_puts(&section, "typed: ");
            put_cell(&section, json_text(data, "answer", ""));
        }
        buf_puts(&section, " |\n");
    }
    if (section.len)
        buf_printf(b, "## Confirmations\n\n| time | step | what | who | detail |\n|---|---|---|---|---|\n%s\n",
                   buf_cstr(&section));
    buf_dispose(&section);
}

static void figures(buf *b, const cJSON *events)
{
    buf section = BUF_INIT;
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        if (strcmp(json_text(e, "kind", ""), "figure") != 0)
            continue;
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(e, "data");
        buf_printf(&section, "| %s | ", json_text(e, "step", ""));
        put_cell(&section, json_text(data, "label", ""));
        buf_puts(&section, " | ");
        put_value(&section, cJSON_GetObjectItemCaseSensitive(data, "value"));
        buf_puts(&section, " |\n");
    }
    if (section.len)
        buf_printf(b, "## Figures\n\n| step | figure | value |\n|---|---|---|\n%s\n", buf_cstr(&section));
    buf_dispose(&section);
}

static void outputs_and_errors(buf *b, const checkpoint *cp)
{
    buf_puts(b, "## Steps\n\n| step | state | attempts | outputs or error |\n|---|---|---|---|\n");
    for (size_t i = 0; i < cp->step_count; i++) {
        const step_record *r = &cp->steps[i];
        buf_printf(b, "| %s | %s | %d | ", r->name, checkpoint_step_state_name(r->state), r->attempts);
        if (r->error) {
            buf_puts(b, "error: ");
            put_cell(b, r->error);
        } else if (r->outputs && !cJSON_IsNull(r->outputs)) {
            buf_puts(b, "`");
            put_value(b, r->outputs);
            buf_puts(b, "`");
        }
        buf_puts(b, " |\n");
    }
    buf_puts(b, "\n");
}

char *report_render(const cJSON *info, const cJSON *events, const char *chain_head)
{
    checkpoint *cp = NULL;
    if (checkpoint_replay(&cp, json_text(info, "run_id", "?"), events) != 0)
        return xasprintf("# Run %s\n\nThe journal cannot be replayed: %s\n", json_text(info, "run_id", "?"), err_last());
    buf b = BUF_INIT;
    header(&b, info, events, cp, chain_head);
    timeline(&b, events);
    confirmations(&b, events);
    figures(&b, events);
    outputs_and_errors(&b, cp);
    checkpoint_free(cp);
    char *text = buf_detach(&b);
    char *clean = redact_text(text);
    free(text);
    return clean;
}

int report_write(const char *run_dir)
{
    char *info_path = xasprintf("%s/run.json", run_dir);
    char *journal_path = xasprintf("%s/journal.jsonl", run_dir);
    char *report_path = xasprintf("%s/report.md", run_dir);
    char *info_text = NULL;
    cJSON *info = NULL, *events = NULL;
    int rc = fsio_read_file(&info_text, NULL, info_path);
    if (rc == 0 && !(info = cJSON_Parse(info_text)))
        rc = err_set(DR_EFAIL, "%s is not valid JSON", info_path);
    journal_chain head = { 0 };
    if (rc == 0)
        rc = journal_read_chained(&events, &head, journal_path, json_text(info, "run_id", "?"));
    if (rc == 0) {
        char *text = report_render(info, events, head.head);
        rc = fsio_write_durable(report_path, text, strlen(text));
        free(text);
    }
    journal_chain_dispose(&head);
    cJSON_Delete(events);
    cJSON_Delete(info);
    free(info_text);
    free(info_path);
    free(journal_path);
    free(report_path);
    return rc;
}
