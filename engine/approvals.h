/* approvals: four eyes on a destructive step (the confirmation contract,
 * docs/design.md).
 *
 * A step that needs N approvers runs once N distinct operators approved
 * the same summary: the one who confirms at the run (typed, or
 * --approve), and others who ran `drctl approve RUN_ID STEP` from their
 * own clone of the trail. Each approval is a journal event naming the
 * operator, the time, the hash of the summary and challenge it saw (as
 * journaled, redacted) and the signing key when commits are signed. An
 * approval counts only for the summary it saw, while younger than the
 * rule's validity, and from an operator the rule allows; one person
 * counts once, by identity and by signing key. */
#ifndef DRCTL_APPROVALS_H
#define DRCTL_APPROVALS_H

#include "buf.h"
#include "runbook.h"

#include <cjson/cJSON.h>

#define APPROVAL_HASH_SIZE 65

/* The hash an approval names: SHA-256 (hex) of the redacted summary, a
 * newline and the challenge. */
void approvals_summary_hash(char out[APPROVAL_HASH_SIZE], const char *summary, const char *challenge);

/* The part of an identity that names the person: the address inside <>,
 * else the whole text, lower-cased. Caller frees. */
char *approvals_person(const char *identity);

/* Whether the rule lets identity approve (from empty: anyone). */
int approvals_allowed(const approval_rule *rule, const char *identity);

typedef struct approval_tally {
    str_list approvers;   /* the identities whose approval counts, in order */
    str_list keys;        /* their signing keys' fingerprints, when signed */
    buf not_counted;      /* why others do not count, "who: why; ..." */
} approval_tally;

/* The approvals that count for step now: operator's (with signing_key,
 * may be NULL) first, when the rule allows it, then each approval-given
 * event of step in events for this hash. */
void approvals_tally(approval_tally *t, const cJSON *events, const char *step, const char *hash,
                     const approval_rule *rule, const char *operator, const char *signing_key, double now);
void approvals_tally_dispose(approval_tally *t);

/* The last approval-requested event of step that no step-started of it
 * followed: what `drctl approve` approves. Borrowed from events; NULL when
 * the step is not waiting for approval. */
const cJSON *approvals_pending_request(const cJSON *events, const char *step);

/* A rule of the team's policy (config.json's "approvals" list), one line
 * of words: count=N (1 to 10, required), and optionally from=a@x,b@y,
 * valid_for=DURATION, and what it applies to: runbook=NAME, step=NAME,
 * project=ID, branch=NAME (the run's params project and branch). */
typedef struct policy_rule {
    char *runbook, *step, *project, *branch; /* NULL: any */
    approval_rule rule;
} policy_rule;

/* DR_EUSAGE naming the word that is wrong and the form expected. */
int approvals_parse_rule(policy_rule *out, const char *text);
void approvals_rule_dispose(policy_rule *r);

struct config;
/* What a destructive step needs: the runbook's rule, raised by each team
 * rule that matches it (the highest count; a rule's from list replaces
 * the runbook's; the shortest validity). The policy never asks less than
 * the runbook. */
void approvals_effective(approval_rule *out, const approval_rule *declared, const struct config *cfg,
                         const char *runbook_name, const char *step, const char *project, const char *branch);
void approval_rule_dispose(approval_rule *r);

/* "alice@x, bob@y" from a rule's from list, or "any operator". Caller frees. */
char *approvals_who_may(const approval_rule *rule);

#endif
