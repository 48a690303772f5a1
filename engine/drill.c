#include "drill.h"

#include "buf.h"
#include "drmod.h"
#include "err.h"
#include "timefmt.h"
#include "jsonfield.h"

#include <ctype.h>
#include <lauxlib.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[DRILL_KINDS] = { "project", "branch", "endpoint", "snapshot", "host" };

struct drill_scope {
    char *run_tag;      /* the run id in lower case: every name a drill gives holds it */
    double started;
    str_list known[DRILL_KINDS];
    str_list refused;
    char *default_branch;
    char *expires_at;
};

drill_scope *drill_scope_new(const char *run_id, double started)
{
    drill_scope *s = xcalloc(1, sizeof *s);
    s->run_tag = xstrdup(run_id);
    for (char *p = s->run_tag; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    s->started = started;
    return s;
}

void drill_scope_free(drill_scope *s)
{
    if (!s)
        return;
    for (int k = 0; k < DRILL_KINDS; k++)
        str_list_dispose(&s->known[k]);
    str_list_dispose(&s->refused);
    free(s->default_branch);
    free(s->expires_at);
    free(s->run_tag);
    free(s);
}

void drill_scope_add(drill_scope *s, drill_kind kind, const char *id)
{
    if (id && *id && kind < DRILL_KINDS)
        str_list_add_unique(&s->known[kind], id);
}

int drill_scope_has(const drill_scope *s, drill_kind kind, const char *id)
{
    if (!id || kind >= DRILL_KINDS)
        return 0;
    return str_list_has(&s->known[kind], id);
}

int drill_scope_claims(const drill_scope *s, const cJSON *object)
{
    const char *name = json_text(object, "name", NULL), *created = json_text(object, "created_at", NULL);
    double at;
    if (!name || !created || !strstr(name, s->run_tag) || timefmt_parse_timestamp(&at, created) != 0)
        return 0;
    /* created_at is given to the second */
    return at >= s->started - 1;
}

/* ---- classifying a change ---------------------------------------------------- */

/* The path's segments, at most max; returns how many. Query strings cut. */
static size_t split_path(char **segments, size_t max, const char *path)
{
    size_t n = 0;
    const char *p = path;
    while (*p == '/')
        p++;
    while (*p && *p != '?' && n < max) {
        const char *end = p;
        while (*end && *end != '/' && *end != '?')
            end++;
        segments[n++] = xstrndup(p, (size_t)(end - p));
        p = end;
        while (*p == '/')
            p++;
    }
    return n;
}

static const char *body_field(const cJSON *body, const char *object, const char *field)
{
    return json_text(object ? cJSON_GetObjectItemCaseSensitive(body, object) : body, field, NULL);
}

void drill_target_of(drill_target *t, const char *method, const char *path, const cJSON *body)
{
    memset(t, 0, sizeof *t);
    t->kind = DRILL_KINDS;
    if (strcmp(method, "GET") == 0)
        return;
    char *s[6] = { 0 };
    size_t n = split_path(s, 6, path);
    if (n == 1 && !strcmp(s[0], "projects") && !strcmp(method, "POST")) {
        t->creates_project = 1;
    } else if (n >= 2 && !strcmp(s[0], "projects")) {
        t->project = xstrdup(s[1]);
        if (n == 2) {
            t->kind = DRILL_PROJECT;
            t->id = xstrdup(s[1]);
        } else if (n == 3 && !strcmp(s[2], "branches") && !strcmp(method, "POST")) {
            t->creates_branch = 1; /* a new branch: reading its parent changes nothing */
        } else if (n >= 4 && !strcmp(s[2], "branches")) {
            t->kind = DRILL_BRANCH;
            t->id = xstrdup(s[3]);
            t->set_default = n == 5 && !strcmp(s[4], "set_as_default");
        } else if (n == 3 && !strcmp(s[2], "endpoints") && !strcmp(method, "POST")) {
            const char *branch = body_field(body, "endpoint", "branch_id");
            t->kind = DRILL_BRANCH;
            t->id = xstrdup(branch ? branch : "");
        } else if (n >= 4 && !strcmp(s[2], "endpoints")) {
            t->kind = DRILL_ENDPOINT;
            t->id = xstrdup(s[3]);
        } else if (n == 5 && !strcmp(s[2], "snapshots") && !strcmp(s[4], "restore")) {
            /* restoring a snapshot to a new branch reads it; into a branch changes that branch */
            const char *into = body_field(body, NULL, "target_branch_id");
            const cJSON *finalize = cJSON_GetObjectItemCaseSensitive(body, "finalize_restore");
            if (into) {
                t->kind = DRILL_BRANCH;
                t->id = xstrdup(into);
            } else if (cJSON_IsTrue(finalize)) {
                /* finalized without a target, it goes into the snapshot's source branch */
                t->kind = DRILL_SNAPSHOT;
                t->id = xstrdup(s[3]);
            }
        } else if (n >= 4 && !strcmp(s[2], "snapshots")) {
            t->kind = DRILL_SNAPSHOT;
            t->id = xstrdup(s[3]);
        } else {
            /* anything else of a project (its settings, its schedule...) is the project's */
            t->kind = DRILL_PROJECT;
            t->id = xstrdup(s[1]);
        }
    } else {
        t->kind = DRILL_PROJECT; /* outside any project: nothing a drill makes */
        t->id = xstrdup(path);
    }
    for (size_t i = 0; i < n; i++)
        free(s[i]);
}

void drill_target_dispose(drill_target *t)
{
    free(t->project);
    free(t->id);
    memset(t, 0, sizeof *t);
}

/* ---- refusals ---------------------------------------------------------------------- */

const char *drill_scope_refuse(drill_scope *s, const char *what)
{
    /* every refusal counts, the same one again too: each fails its step */
    return str_list_push(&s->refused, what);
}

size_t drill_scope_refusal_count(const drill_scope *s)
{
    return s->refused.count;
}

const char *drill_scope_refusal(const drill_scope *s, size_t i)
{
    return i < s->refused.count ? s->refused.items[i] : NULL;
}

/* ---- learning from answers ----------------------------------------------------------- */

static void learn(drill_scope *s, drill_kind kind, const char *id, cJSON *learned)
{
    if (!id || !*id || drill_scope_has(s, kind, id))
        return;
    drill_scope_add(s, kind, id);
    if (learned) {
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "kind", kind_names[kind]);
        cJSON_AddStringToObject(item, "id", id);
        cJSON_AddItemToArray(learned, item);
    }
}

char *drill_host_of_uri(const char *uri)
{
    char *error = NULL;
    PQconninfoOption *opts = PQconninfoParse(uri, &error);
    PQfreemem(error);
    if (!opts)
        return NULL;
    const char *host = NULL, *port = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!strcmp(o->keyword, "host") && o->val && *o->val)
            host = o->val;
        if (!strcmp(o->keyword, "hostaddr") && o->val && *o->val && !host)
            host = o->val;
        if (!strcmp(o->keyword, "port") && o->val && *o->val)
            port = o->val;
    }
    char *out = host ? xasprintf("%s:%s", host, port ? port : "5432") : NULL;
    PQconninfoFree(opts);
    return out;
}

void drill_scope_learn_uri(drill_scope *s, const char *uri, cJSON *learned)
{
    char *host = uri ? drill_host_of_uri(uri) : NULL;
    learn(s, DRILL_HOST, host, learned);
    free(host);
}

void drill_scope_learn(drill_scope *s, const cJSON *answer, cJSON *learned)
{
    const cJSON *project = cJSON_GetObjectItemCaseSensitive(answer, "project");
    learn(s, DRILL_PROJECT, json_text(project, "id", NULL), learned);
    const cJSON *branch = cJSON_GetObjectItemCaseSensitive(answer, "branch");
    learn(s, DRILL_BRANCH, json_text(branch, "id", NULL), learned);
    const cJSON *snapshot = cJSON_GetObjectItemCaseSensitive(answer, "snapshot");
    learn(s, DRILL_SNAPSHOT, json_text(snapshot, "id", NULL), learned);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(answer, "endpoints"))
        learn(s, DRILL_ENDPOINT, json_text(e, "id", NULL), learned);
    learn(s, DRILL_ENDPOINT, json_text(cJSON_GetObjectItemCaseSensitive(answer, "endpoint"), "id", NULL), learned);
    const cJSON *u;
    cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(answer, "connection_uris"))
        drill_scope_learn_uri(s, json_text(u, "connection_uri", NULL), learned);
}

/* ---- expiry ------------------------------------------------------------------------------- */

void drill_scope_set_expiry(drill_scope *s, const char *expires_at)
{
    free(s->expires_at);
    s->expires_at = expires_at ? xstrdup(expires_at) : NULL;
}

const char *drill_scope_expiry(const drill_scope *s)
{
    return s->expires_at;
}

void drill_scope_stamp_expiry(const drill_scope *s, cJSON *body)
{
    if (!s->expires_at || !cJSON_IsObject(body))
        return;
    cJSON *branch = cJSON_GetObjectItemCaseSensitive(body, "branch");
    if (!branch)
        branch = cJSON_AddObjectToObject(body, "branch");
    if (cJSON_IsObject(branch) && !cJSON_GetObjectItemCaseSensitive(branch, "expires_at"))
        cJSON_AddStringToObject(branch, "expires_at", s->expires_at);
}

/* ---- the drill's default ---------------------------------------------------------------- */

const char *drill_scope_default(const drill_scope *s)
{
    return s->default_branch;
}

void drill_scope_set_default(drill_scope *s, const char *branch_id)
{
    free(s->default_branch);
    s->default_branch = branch_id ? xstrdup(branch_id) : NULL;
}

static void rewrite_one(const drill_scope *s, cJSON *branch)
{
    const char *id = json_text(branch, "id", NULL);
    if (!id || !cJSON_GetObjectItemCaseSensitive(branch, "default"))
        return;
    cJSON_ReplaceItemInObjectCaseSensitive(branch, "default", cJSON_CreateBool(strcmp(id, s->default_branch) == 0));
}

void drill_scope_rewrite_default(const drill_scope *s, cJSON *answer)
{
    if (!s->default_branch || !answer)
        return;
    rewrite_one(s, cJSON_GetObjectItemCaseSensitive(answer, "branch"));
    cJSON *b;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(answer, "branches"))
        rewrite_one(s, b);
}

/* ---- replay and report ------------------------------------------------------------------- */

static drill_kind kind_named(const char *name)
{
    for (int k = 0; k < DRILL_KINDS; k++)
        if (name && strcmp(kind_names[k], name) == 0)
            return (drill_kind)k;
    return DRILL_KINDS;
}

void drill_scope_replay(drill_scope *s, const cJSON *events)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        if (strcmp(json_text(e, "kind", NULL) ? json_text(e, "kind", NULL) : "", "neon") != 0)
            continue;
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(e, "data");
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(data, "drill_learned"))
            drill_scope_add(s, kind_named(json_text(item, "kind", NULL)), json_text(item, "id", NULL));
        if (json_text(data, "drill_default", NULL))
            drill_scope_set_default(s, json_text(data, "drill_default", NULL));
    }
}

cJSON *drill_scope_to_json(const drill_scope *s)
{
    static const char *const plural[DRILL_KINDS] = { "projects", "branches", "endpoints", "snapshots", "hosts" };
    cJSON *out = cJSON_CreateObject();
    for (int k = 0; k < DRILL_KINDS; k++) {
        cJSON *list = cJSON_AddArrayToObject(out, plural[k]);
        for (size_t i = 0; i < s->known[k].count; i++)
            cJSON_AddItemToArray(list, cJSON_CreateString(s->known[k].items[i]));
    }
    if (s->expires_at)
        cJSON_AddStringToObject(out, "expires_at", s->expires_at);
    cJSON *refused = cJSON_AddArrayToObject(out, "refused");
    for (size_t i = 0; i < s->refused.count; i++)
        cJSON_AddItemToArray(refused, cJSON_CreateString(s->refused.items[i]));
    if (s->default_branch)
        cJSON_AddStringToObject(out, "default", s->default_branch);
    else
        cJSON_AddNullToObject(out, "default");
    return out;
}

/* ---- for the modules ---------------------------------------------------------------------- */

int drill_refuse_lua(lua_State *L, dr_host *host, const char *message)
{
    drill_scope_refuse(host->drill, message);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "refused", message);
    host->event(host->ud, "drill-refused", data);
    lua_pushstring(L, message);
    return lua_error(L);
}

int drill_scope_owns_path(const drill_scope *s, const char *path)
{
    if (strstr(path, ".."))
        return 0;
    const char *p = path;
    while ((p = strstr(p, s->run_tag))) {
        int starts = p == path || p[-1] == '/' || p[-1] == '-';
        char end = p[strlen(s->run_tag)];
        if (starts && (end == '\0' || end == '/' || end == '.' || end == '-'))
            return 1;
        p++;
    }
    return 0;
}

int drill_program_allowed(const char *program)
{
    static const char *const allowed[] = { "mkdir", "cat", "ls", "sha256sum", "true", "test", NULL };
    for (int i = 0; allowed[i]; i++)
        if (strcmp(program, allowed[i]) == 0)
            return 1;
    return 0;
}
