/* verify: `drctl audit verify`, the auditor's check of the trail.
 *
 * At HEAD, for every run: the journal parses, its seq is gapless and its
 * times strictly increase, its hash chain holds, state.json is what
 * replaying the journal gives, run.json names the run. Through history: it
 * is linear; each commit touches one run's folder, the one its message
 * names; journals are only ever appended to; each commit adds one
 * transition, the one its message says (two only when a command commits
 * the one a crash left with its first). And the working tree holds nothing
 * drctl did not write: no file beside a run's own four, none untracked at
 * the top of the trail. Every problem is listed
 * with the run, the file and what is wrong. */
#ifndef DRCTL_VERIFY_H
#define DRCTL_VERIFY_H

#include <cjson/cJSON.h>

typedef struct verify_result {
    cJSON *problems;   /* [{"run":..., "file":..., "commit":..., "problem":...}] */
    long runs;
    long commits;
    long unchained;      /* runs whose journal has no hash chain (an older drctl's) */
    long partly_chained; /* runs begun unchained, chained since a newer drctl resumed them */
    long signed_commits; /* commits whose signature an allowed key made (with allowed_signers) */
    long uncommitted;    /* run folders with events past their last commit: under way, or left by a crash */
    char uncommitted_runs[512]; /* their ids, ", " between (cut short with "..." when long) */
    int incomplete;      /* a problem could not be recorded (out of memory): the result proves nothing */
} verify_result;

/* Fills result (caller frees problems). With allowed_signers (a file in
 * git's allowed-signers format, or NULL), every commit must also carry an
 * SSH signature by a key that file allows for its author (verifysig.h).
 * Returns 0 when the check could be made (problems or not), DR_EUSAGE for
 * an allowed-signers file that does not parse, an error when the
 * repository cannot be read or memory ran out (a problem unrecorded). */
int verify_audit(verify_result *result, const char *dir, const char *allowed_signers);

/* Adds a problem (run, file and commit may be NULL). */
struct git_oid;
void verify_problem(verify_result *r, const char *run, const char *file, const struct git_oid *commit,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
