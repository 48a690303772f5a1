#include "approvals.h"

#include "config.h"
#include "err.h"
#include "jsonfield.h"
#include "redact.h"
#include "timefmt.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void approvals_summary_hash(char out[APPROVAL_HASH_SIZE], const char *summary, const char *challenge)
{
    char *clean_summary = redact_text(summary), *clean_challenge = redact_text(challenge);
    char *text = xasprintf("%s\n%s", clean_summary, clean_challenge);
    unsigned char digest[32];
    EVP_Digest(text, strlen(text), digest, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    free(text);
    free(clean_summary);
    free(clean_challenge);
}

char *approvals_person(const char *identity)
{
    const char *lt = strrchr(identity, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    char *person = lt && gt && gt > lt + 1 ? xstrndup(lt + 1, (size_t)(gt - lt - 1)) : xstrdup(identity);
    for (char *p = person; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return person;
}

int approvals_allowed(const approval_rule *rule, const char *identity)
{
    if (rule->from.count == 0)
        return 1;
    char *person = approvals_person(identity);
    int allowed = 0;
    for (size_t i = 0; !allowed && i < rule->from.count; i++) {
        char *listed = approvals_person(rule->from.items[i]);
        allowed = strcmp(listed, person) == 0;
        free(listed);
    }
    free(person);
    return allowed;
}

char *approvals_who_may(const approval_rule *rule)
{
    if (rule->from.count == 0)
        return xstrdup("any other operator");
    buf b = BUF_INIT;
    for (size_t i = 0; i < rule->from.count; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", rule->from.items[i]);
    return buf_detach(&b);
}

/* Whether the person or the key approved already. */
static int counted_already(const approval_tally *t, const char *identity, const char *key)
{
    char *person = approvals_person(identity);
    int seen = 0;
    for (size_t i = 0; !seen && i < t->approvers.count; i++) {
        char *other = approvals_person(t->approvers.items[i]);
        seen = strcmp(other, person) == 0;
        free(other);
    }
    free(person);
    return seen || (key && *key && str_list_has(&t->keys, key));
}

static void not_counted(approval_tally *t, const char *who, const char *why)
{
    buf_printf(&t->not_counted, "%s%s: %s", t->not_counted.len ? "; " : "", who, why);
}

static void count(approval_tally *t, const char *identity, const char *key)
{
    str_list_push(&t->approvers, identity);
    if (key && *key)
        str_list_add_unique(&t->keys, key);
}

/* One approval-given event: counted, or the reason it is not. */
static void tally_event(approval_tally *t, const cJSON *e, const char *hash, const approval_rule *rule, double now)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(e, "data");
    const char *who = json_text(data, "operator", "?"), *key = json_text(data, "signing_key", NULL);
    double at = 0;
    timefmt_parse_timestamp(&at, json_text(e, "time", ""));
    if (strcmp(json_text(data, "summary_hash", ""), hash) != 0) {
        not_counted(t, who, "approved another summary (it changed since)");
    } else if (now - at > rule->valid_for) {
        char valid[32];
        timefmt_format_duration(valid, sizeof valid, rule->valid_for);
        char *why = xasprintf("approved at %s, and an approval is valid for %s", json_text(e, "time", "?"), valid);
        not_counted(t, who, why);
        free(why);
    } else if (!approvals_allowed(rule, who)) {
        not_counted(t, who, "is not among who may approve");
    } else if (!counted_already(t, who, key)) {
        count(t, who, key);
    }
}

void approvals_tally(approval_tally *t, const cJSON *events, const char *step, const char *hash,
                     const approval_rule *rule, const char *operator, const char *signing_key, double now)
{
    memset(t, 0, sizeof *t);
    if (approvals_allowed(rule, operator))
        count(t, operator, signing_key);
    else
        not_counted(t, operator, "is not among who may approve");
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        if (!strcmp(json_text(e, "kind", ""), "approval-given") && !strcmp(json_text(e, "step", ""), step))
            tally_event(t, e, hash, rule, now);
    }
}

void approvals_tally_dispose(approval_tally *t)
{
    str_list_dispose(&t->approvers);
    str_list_dispose(&t->keys);
    buf_dispose(&t->not_counted);
}

const cJSON *approvals_pending_request(const cJSON *events, const char *step)
{
    const cJSON *request = NULL, *e;
    cJSON_ArrayForEach(e, events) {
        if (strcmp(json_text(e, "step", ""), step) != 0)
            continue;
        const char *kind = json_text(e, "kind", "");
        if (!strcmp(kind, "approval-requested"))
            request = e;
        else if (!strcmp(kind, "step-started"))
            request = NULL;
    }
    return request;
}

/* ---- the team's policy -------------------------------------------------------- */

static const char *const rule_words[] = { "count", "from", "valid_for", "runbook", "step", "project", "branch", NULL };

static int bad_rule(const char *word, const char *why)
{
    return err_set(DR_EUSAGE, "'%s' %s; a rule is words like count=2 from=alice@example.org,bob@example.org "
                   "valid_for=1h runbook=NAME step=NAME project=ID branch=NAME (count is required)", word, why);
}

static int rule_word(policy_rule *r, const char *word, const char *key, size_t key_len, const char *value)
{
    double seconds;
    char *end = NULL;
    if (!*value)
        return bad_rule(word, "has no value");
    if (!strncmp(key, "count", key_len)) {
        long n = strtol(value, &end, 10);
        if (*end || n < 1 || n > 10)
            return bad_rule(word, "is not a count from 1 to 10");
        r->rule.count = (int)n;
    } else if (!strncmp(key, "from", key_len)) {
        char *list = xstrdup(value), *save = NULL;
        for (char *who = strtok_r(list, ",", &save); who; who = strtok_r(NULL, ",", &save))
            str_list_add_unique(&r->rule.from, who);
        free(list);
        /* An empty list would mean anyone: never what a restriction meant. */
        if (r->rule.from.count == 0)
            return bad_rule(word, "names no one (give the approvers' e-mail addresses, comma-separated)");
    } else if (!strncmp(key, "valid_for", key_len)) {
        if (timefmt_parse_duration(&seconds, value) != 0 || seconds <= 0)
            return bad_rule(word, "is not a duration such as 30m or 1h");
        r->rule.valid_for = seconds;
    } else {
        char **field = !strncmp(key, "runbook", key_len) ? &r->runbook
                       : !strncmp(key, "step", key_len)  ? &r->step
                       : !strncmp(key, "project", key_len) ? &r->project
                                                           : &r->branch;
        free(*field);
        *field = xstrdup(value);
    }
    return 0;
}

static int known_word(const char *key, size_t len)
{
    for (const char *const *w = rule_words; *w; w++)
        if (strlen(*w) == len && !strncmp(*w, key, len))
            return 1;
    return 0;
}

int approvals_parse_rule(policy_rule *out, const char *text)
{
    memset(out, 0, sizeof *out);
    out->rule.valid_for = APPROVAL_DEFAULT_VALIDITY;
    char *copy = xstrdup(text), *save = NULL;
    int rc = 0;
    for (char *word = strtok_r(copy, " \t", &save); rc == 0 && word; word = strtok_r(NULL, " \t", &save)) {
        const char *eq = strchr(word, '=');
        if (!eq || !known_word(word, (size_t)(eq - word)))
            rc = bad_rule(word, "is not one of count=, from=, valid_for=, runbook=, step=, project=, branch=");
        else
            rc = rule_word(out, word, word, (size_t)(eq - word), eq + 1);
    }
    if (rc == 0 && out->rule.count == 0)
        rc = bad_rule(text, "has no count=N");
    free(copy);
    return rc;
}

void approvals_rule_dispose(policy_rule *r)
{
    free(r->runbook);
    free(r->step);
    free(r->project);
    free(r->branch);
    approval_rule_dispose(&r->rule);
    memset(r, 0, sizeof *r);
}

void approval_rule_dispose(approval_rule *r)
{
    str_list_dispose(&r->from);
}

static int field_matches(const char *wanted, const char *actual)
{
    return !wanted || (actual && !strcmp(wanted, actual));
}

static void copy_list(str_list *to, const str_list *from)
{
    str_list_dispose(to);
    for (size_t i = 0; i < from->count; i++)
        str_list_push(to, from->items[i]);
}

void approvals_effective(approval_rule *out, const approval_rule *declared, const config *cfg,
                         const char *runbook_name, const char *step, const char *project, const char *branch)
{
    memset(out, 0, sizeof *out);
    out->count = declared->count;
    out->valid_for = declared->valid_for;
    copy_list(&out->from, &declared->from);
    for (size_t i = 0; i < config_list_count(cfg, "approvals"); i++) {
        policy_rule r;
        if (approvals_parse_rule(&r, config_list_item(cfg, "approvals", i)) == 0 && field_matches(r.runbook, runbook_name) &&
            field_matches(r.step, step) && field_matches(r.project, project) && field_matches(r.branch, branch)) {
            if (r.rule.count > out->count)
                out->count = r.rule.count;
            if (r.rule.from.count)
                copy_list(&out->from, &r.rule.from);
            if (r.rule.valid_for < out->valid_for)
                out->valid_for = r.rule.valid_for;
        }
        approvals_rule_dispose(&r);
    }
}
