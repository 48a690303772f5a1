/* drill: what a drill may change, enforced below the runbooks.
 *
 * A drill rehearses a scenario on a copy of production with the scenario's
 * real runbook, its destructive steps approved. What keeps production safe
 * is this scope, not the runbook's good manners: every change the `neon`,
 * `pg` and `dump` modules are asked for is checked here first, and a change
 * to a project, branch, endpoint or snapshot the drill did not create is
 * refused (and remembered, so the step fails even if the runbook swallows
 * the error).
 *
 * The drill's own things are learned from the answers of the calls that
 * made them. After a crash between a creation and its journal line, a
 * branch is still known as the drill's when its name carries the run id
 * and it was created after the drill began (every name a runbook gives is
 * made from the run id).
 *
 * Moving the project's default branch is a change of the project; inside a
 * drill it is kept as the drill's own default (the answers about branches
 * say so), so that a `promote` strategy is rehearsed without production's
 * default ever moving. */
#ifndef DRCTL_DRILL_H
#define DRCTL_DRILL_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct drill_scope drill_scope;

/* The scope of run_id, which began at epoch `started`. */
drill_scope *drill_scope_new(const char *run_id, double started);
void drill_scope_free(drill_scope *s);

typedef enum drill_kind { DRILL_PROJECT, DRILL_BRANCH, DRILL_ENDPOINT, DRILL_SNAPSHOT, DRILL_HOST, DRILL_KINDS } drill_kind;

void drill_scope_add(drill_scope *s, drill_kind kind, const char *id);
int drill_scope_has(const drill_scope *s, drill_kind kind, const char *id);

/* Whether a branch or project the scope does not know yet is the drill's
 * by name and creation time (the object as the API gave it). */
int drill_scope_claims(const drill_scope *s, const cJSON *object);

/* What a change needs to know before it may go: the branch, endpoint,
 * snapshot or project it touches, and whether it moves the default. */
typedef struct drill_target {
    drill_kind kind;      /* DRILL_KINDS: nothing to check (a creation, a read) */
    char *project;
    char *id;             /* the object the change touches */
    int set_default;      /* POST .../branches/{id}/set_as_default */
    int creates_project;  /* POST /projects */
    int creates_branch;   /* POST /projects/{id}/branches */
} drill_target;

/* Classifies METHOD path (+ body) for the checks. Reads are DRILL_KINDS. */
void drill_target_of(drill_target *t, const char *method, const char *path, const cJSON *body);
void drill_target_dispose(drill_target *t);

/* Records a refusal (the text is copied) and returns the message to raise. */
const char *drill_scope_refuse(drill_scope *s, const char *what);
size_t drill_scope_refusal_count(const drill_scope *s);
const char *drill_scope_refusal(const drill_scope *s, size_t i);

/* Learns what an answer says was created: projects, branches, endpoints,
 * snapshots and the hosts of their connection strings. The ids learned are
 * added to `learned` (an array, for the journal), when not NULL. */
void drill_scope_learn(drill_scope *s, const cJSON *answer, cJSON *learned);

/* Learns the host:port of a connection string (URI or key=value form). */
void drill_scope_learn_uri(drill_scope *s, const char *uri, cJSON *learned);

/* "host:port" of a connection string (port 5432 by default), or NULL. */
char *drill_host_of_uri(const char *uri);

/* The TTL every branch the drill makes carries (Neon's expires_at, RFC
 * 3339), so that a drill never resumed is still cleaned by Neon itself. */
void drill_scope_set_expiry(drill_scope *s, const char *expires_at);
const char *drill_scope_expiry(const drill_scope *s);

/* Gives a branch creation's body the scope's expires_at when it has none. */
void drill_scope_stamp_expiry(const drill_scope *s, cJSON *body);

/* The drill's own default branch (promote), or NULL. */
const char *drill_scope_default(const drill_scope *s);
void drill_scope_set_default(drill_scope *s, const char *branch_id);

/* Rewrites the `default` flags of branches in an answer (a branch or a
 * list of them) to show the drill's default, when it has one. */
void drill_scope_rewrite_default(const drill_scope *s, cJSON *answer);

/* Replays what earlier commands of this run learned, from its journal
 * (the "neon" events' drill_learned and drill_default fields). */
void drill_scope_replay(drill_scope *s, const cJSON *events);

/* {"projects":[...],"branches":[...],...,"refused":[...],"default":...} */
cJSON *drill_scope_to_json(const drill_scope *s);



/* ---- for the modules ---------------------------------------------------------------- */

struct lua_State;
struct dr_host;

/* Records the refusal, journals it ("drill-refused") and raises it. */
int drill_refuse_lua(struct lua_State *L, struct dr_host *host, const char *message);

/* A file or S3 object a drill may delete: one whose path has a component
 * naming the run (the drill's own work folder), with no "..". */
int drill_scope_owns_path(const drill_scope *s, const char *path);

/* Programs dr.exec may run in a drill: none that can reach a database or
 * the network (the scenario runbooks make folders and read files). */
int drill_program_allowed(const char *program);
#endif
