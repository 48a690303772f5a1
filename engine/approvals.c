#include "approvals.h"

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
