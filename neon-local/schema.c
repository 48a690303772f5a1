#include "schema.h"

#include "branchtime.h"
#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "ids.h"
#include "jobs.h"
#include "jsonfield.h"
#include "postgres.h"
#include "proc.h"
#include "state.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a dump two reads can compare ------------------------------------------------ */

/* Lines pg_dump writes differently each time, or from one version to the
 * next, for the same schema: the versions that made it, and (since 15.14)
 * the random key psql's \restrict mode takes for one restore. */
static int varying_dump_line(const char *line, size_t len)
{
    static const char *const prefixes[] = { "-- Dumped from database version", "-- Dumped by pg_dump version",
                                            "\\restrict ", "\\unrestrict ", NULL };
    for (const char *const *p = prefixes; *p; p++) {
        size_t n = strlen(*p);
        if (len >= n && memcmp(line, *p, n) == 0)
            return 1;
    }
    return 0;
}

char *nl_schema_stable_dump(const char *dump)
{
    buf out = BUF_INIT;
    const char *p = dump;
    while (*p) {
        size_t len = strcspn(p, "\n");
        size_t with_end = len + (p[len] == '\n');
        if (!varying_dump_line(p, len))
            buf_append(&out, p, with_end);
        p += with_end;
    }
    return buf_detach(&out);
}

/* ---- unified diff --------------------------------------------------------------- */

/* A text cut into lines (without their '\n'); they point into the text. */
typedef struct line_list {
    const char **start;
    size_t *len;
    size_t count;
} line_list;

static void lines_split(line_list *out, const char *text)
{
    size_t cap = 16;
    out->start = xmalloc(cap * sizeof *out->start);
    out->len = xmalloc(cap * sizeof *out->len);
    out->count = 0;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        if (out->count == cap) {
            cap *= 2;
            out->start = xrealloc(out->start, cap * sizeof *out->start);
            out->len = xrealloc(out->len, cap * sizeof *out->len);
        }
        out->start[out->count] = p;
        out->len[out->count++] = len;
        p += len + (p[len] == '\n');
    }
}

static void lines_dispose(line_list *l)
{
    free(l->start);
    free(l->len);
}

static int line_equal(const line_list *a, size_t i, const line_list *b, size_t j)
{
    return a->len[i] == b->len[j] && memcmp(a->start[i], b->start[j], a->len[i]) == 0;
}

/* One step of the edit script: a line kept ('='), removed from the old
 * text ('-') or added from the new one ('+'), with the positions in both
 * texts before the step. */
typedef struct edit {
    char kind;
    size_t old_pos, new_pos;
} edit;

typedef struct edit_list {
    edit *items;
    size_t count;
} edit_list;

static void edit_push(edit_list *l, char kind, size_t old_pos, size_t new_pos)
{
    l->items[l->count++] = (edit){ kind, old_pos, new_pos };
}

/* Beyond this many differing lines the middle of the two texts is shown
 * as removed then added, not searched for its shortest script: Myers'
 * search keeps (D+1)^2 positions for D differences, and a schema that
 * different is not read line by line anyway. */
#define MAX_SEARCHED_DIFFERENCES 2000

/* Myers' greedy search (An O(ND) Difference Algorithm, 1986) over
 * old[lo_a, hi_a) and new[lo_b, hi_b): the furthest x reached on each
 * diagonal k = x - y after d differences is kept for every d (trace[d],
 * indexed k + d), then the path is walked back from the end. Appends the
 * script in order; 0, or -1 when it needs more than the cap. */
static int myers_middle(edit_list *script, const line_list *a, size_t lo_a, size_t hi_a, const line_list *b,
                        size_t lo_b, size_t hi_b)
{
    long n = (long)(hi_a - lo_a), m = (long)(hi_b - lo_b);
    long max_d = n + m < MAX_SEARCHED_DIFFERENCES ? n + m : MAX_SEARCHED_DIFFERENCES;
    long offset = max_d + 1;
    long *v = xcalloc((size_t)(2 * max_d + 3), sizeof *v);
    long **trace = xcalloc((size_t)max_d + 1, sizeof *trace);
    long found = -1;
    for (long d = 0; d <= max_d && found < 0; d++) {
        for (long k = -d; k <= d; k += 2) {
            long x = (k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1])) ? v[offset + k + 1]
                                                                                   : v[offset + k - 1] + 1;
            long y = x - k;
            while (x < n && y < m && line_equal(a, lo_a + (size_t)x, b, lo_b + (size_t)y))
                x++, y++;
            v[offset + k] = x;
            if (x >= n && y >= m)
                found = d;
        }
        trace[d] = xmalloc((size_t)(2 * d + 1) * sizeof **trace);
        memcpy(trace[d], v + offset - d, (size_t)(2 * d + 1) * sizeof **trace);
    }
    int rc = found < 0 ? -1 : 0;
    if (rc == 0) {
        /* Walked back, the steps come last first: they are written from the
         * end of the slots this search owns, (n + m + d) / 2 of them (each
         * kept line counts for both texts, each difference for one). */
        size_t end = script->count + (size_t)((n + m + found) / 2), at = end;
        long x = n, y = m;
        for (long d = found; d > 0; d--) {
            const long *prev = trace[d - 1];
            long k = x - y;
            int down = k == -d || (k != d && prev[k - 1 + d - 1] < prev[k + 1 + d - 1]);
            long prev_k = down ? k + 1 : k - 1;
            long prev_x = prev[prev_k + d - 1], prev_y = prev_x - prev_k;
            long mid_x = down ? prev_x : prev_x + 1; /* where the snake to (x, y) starts */
            for (; x > mid_x; x--, y--)
                script->items[--at] = (edit){ '=', lo_a + (size_t)x - 1, lo_b + (size_t)y - 1 };
            script->items[--at] = down ? (edit){ '+', lo_a + (size_t)prev_x, lo_b + (size_t)prev_y }
                                       : (edit){ '-', lo_a + (size_t)prev_x, lo_b + (size_t)prev_y };
            x = prev_x, y = prev_y;
        }
        for (; x > 0; x--, y--)
            script->items[--at] = (edit){ '=', lo_a + (size_t)x - 1, lo_b + (size_t)y - 1 };
        script->count = end;
    }
    for (long d = 0; d <= max_d; d++)
        free(trace[d]);
    free(trace);
    free(v);
    return rc;
}

/* The shortest script (or, past the cap, a plain one) from a to b: the
 * lines both start and end with are kept without a search. */
static void edit_script(edit_list *script, const line_list *a, const line_list *b)
{
    script->items = xmalloc((a->count + b->count + 1) * sizeof *script->items);
    script->count = 0;
    size_t head = 0, tail = 0;
    while (head < a->count && head < b->count && line_equal(a, head, b, head))
        head++;
    while (tail < a->count - head && tail < b->count - head &&
           line_equal(a, a->count - 1 - tail, b, b->count - 1 - tail))
        tail++;
    for (size_t i = 0; i < head; i++)
        edit_push(script, '=', i, i);
    size_t hi_a = a->count - tail, hi_b = b->count - tail;
    if (myers_middle(script, a, head, hi_a, b, head, hi_b) != 0) {
        for (size_t i = head; i < hi_a; i++)
            edit_push(script, '-', i, head);
        for (size_t j = head; j < hi_b; j++)
            edit_push(script, '+', hi_a, j);
    }
    for (size_t i = 0; i < tail; i++)
        edit_push(script, '=', hi_a + i, hi_b + i);
}

/* "start,count" as diff -u writes it: the count left out when 1, and the
 * line before the hunk as its start when the side has no line in it. */
static void hunk_range(buf *out, size_t pos, size_t count)
{
    if (count == 1)
        buf_printf(out, "%zu", pos + 1);
    else
        buf_printf(out, "%zu,%zu", count ? pos + 1 : pos, count);
}

/* One hunk: script[from, to), its header first. */
static void write_hunk(buf *out, const edit_list *script, size_t from, size_t to, const line_list *a,
                       const line_list *b)
{
    size_t old_count = 0, new_count = 0;
    for (size_t i = from; i < to; i++) {
        old_count += script->items[i].kind != '+';
        new_count += script->items[i].kind != '-';
    }
    buf_puts(out, "@@ -");
    hunk_range(out, script->items[from].old_pos, old_count);
    buf_puts(out, " +");
    hunk_range(out, script->items[from].new_pos, new_count);
    buf_puts(out, " @@\n");
    for (size_t i = from; i < to; i++) {
        const edit *e = &script->items[i];
        buf_putc(out, e->kind == '=' ? ' ' : e->kind);
        if (e->kind == '+')
            buf_append(out, b->start[e->new_pos], b->len[e->new_pos]);
        else
            buf_append(out, a->start[e->old_pos], a->len[e->old_pos]);
        buf_putc(out, '\n');
    }
}

char *nl_schema_unified_diff(const char *old_text, const char *new_text, const char *old_label,
                             const char *new_label, size_t context)
{
    line_list a, b;
    lines_split(&a, old_text);
    lines_split(&b, new_text);
    edit_list script;
    edit_script(&script, &a, &b);
    buf out = BUF_INIT;
    size_t i = 0;
    while (i < script.count) {
        while (i < script.count && script.items[i].kind == '=')
            i++;
        if (i == script.count)
            break;
        /* A hunk: context before the first change, then changes joined
         * while the kept lines between them are at most two contexts. */
        size_t from = i > context ? i - context : 0, last_change = i;
        for (size_t j = i; j < script.count && j <= last_change + 2 * context + 1; j++)
            if (script.items[j].kind != '=')
                last_change = j;
        size_t to = last_change + 1 + context < script.count ? last_change + 1 + context : script.count;
        if (out.len == 0)
            buf_printf(&out, "--- %s\n+++ %s\n", old_label, new_label);
        write_hunk(&out, &script, from, to, &a, &b);
        i = last_change + 1;
    }
    free(script.items);
    lines_dispose(&a);
    lines_dispose(&b);
    return buf_detach(&out);
}

/* ---- reading a schema ------------------------------------------------------------ */

/* What reading one database's schema needs, copied out of the state so
 * that the read runs without the lock. */
typedef struct schema_source {
    char *branch_id;
    char *db_name;
    int port;     /* the server's own, on 127.0.0.1 (the endpoint's host is its proxy's); 0: none runs */
    char *target; /* a recovery_target_* setting: the schema at that point; NULL: at head */
    char *last_operation; /* id of the branch's newest operation when copied out (NULL: none) */
} schema_source;

static void schema_source_dispose(schema_source *s)
{
    free(s->branch_id);
    free(s->db_name);
    free(s->target);
    free(s->last_operation);
    memset(s, 0, sizeof *s);
}

/* The id of the newest operation on a branch, or NULL. Every change of a
 * branch's server or files (an endpoint started, moved or created, a
 * restore, a deletion) records one on it when it is asked for. */
static const char *newest_operation(cJSON *project, const char *branch_id)
{
    const char *newest = NULL;
    const cJSON *op;
    cJSON_ArrayForEach(op, nl_state_list(project, NL_OPERATIONS)) {
        const char *on = json_text(op, "branch_id", NULL);
        if (on && strcmp(on, branch_id) == 0)
            newest = json_text(op, "id", NULL);
    }
    return newest;
}

/* The branch a schema is read from: in the project, not a snapshot. */
static cJSON *shown_branch(cJSON *project, const char *branch_id)
{
    cJSON *branch = nl_state_item_in(project, NL_BRANCHES, branch_id);
    return branch && !nl_branch_is_snapshot(branch) ? branch : NULL;
}

/* A point in time a request asks a schema at: the values of its lsn and
 * timestamp parameters (NULL when not given), and those parameters' names
 * ("lsn" or "base_lsn", ...) for the answers that refuse them. */
typedef struct schema_point {
    const char *lsn, *timestamp;
    const char *lsn_name, *timestamp_name;
} schema_point;

/* The recovery target of the point (NULL at head), checked as a branch
 * made at that point of this one would be (branchtime.h): within the
 * branch's history and the project's retention, not in the future, not
 * both given. The refusals name the request's parameters. */
static int point_target(char **target, nl_response *bad, cJSON *project, const cJSON *branch,
                        const schema_point *point)
{
    *target = NULL;
    if (!point || (!point->lsn && !point->timestamp))
        return 0;
    cJSON *as_branch = cJSON_CreateObject();
    if (point->timestamp)
        cJSON_AddStringToObject(as_branch, "parent_timestamp", point->timestamp);
    if (point->lsn)
        cJSON_AddStringToObject(as_branch, "parent_lsn", point->lsn);
    int rc = nl_point_in_time(target, bad, project, branch, as_branch);
    cJSON_Delete(as_branch);
    if (rc != 0) {
        nl_error_rename(bad, "parent_timestamp", point->timestamp_name);
        nl_error_rename(bad, "parent_lsn", point->lsn_name);
    }
    return rc;
}

static int parse_lsn(unsigned long long *out, const char *text)
{
    unsigned hi, lo;
    char end;
    if (sscanf(text, "%X/%X%c", &hi, &lo, &end) != 2)
        return -1;
    *out = (unsigned long long)hi << 32 | lo;
    return 0;
}

/* branchtime.h checks an LSN against the end of the branch's WAL; its
 * history starts where the base backup it is replayed from began (START
 * WAL LOCATION in its backup_label), and an LSN before that cannot be
 * reached: -1 with the 400 (or the 423 while that backup is being taken). */
static int lsn_within_history(nl_response *bad, const nl_api *api, const char *branch_id, const schema_point *point)
{
    unsigned long long wanted, start;
    if (!point || !point->lsn || parse_lsn(&wanted, point->lsn) != 0)
        return 0; /* none, or refused by branchtime.h with its own reason */
    char *label = nl_api_branch_path(api, branch_id, "base/backup_label");
    char *text = NULL;
    int rc = 0;
    if (fsio_read_file(&text, NULL, label) != 0) {
        *bad = nl_error(423, "", "the history of branch %s is still being recorded; try again in a moment", branch_id);
        rc = -1;
    } else {
        const char *at = strstr(text, "START WAL LOCATION: ");
        char first[32] = "?";
        if (at)
            sscanf(at + 20, "%31s", first);
        if (parse_lsn(&start, first) == 0 && wanted < start) {
            *bad = nl_error(400, "", "%s %s is before the history of branch %s starts (%s)", point->lsn_name,
                            point->lsn, branch_id, first);
            rc = -1;
        }
    }
    free(text);
    free(label);
    return rc;
}

/* A ready branch whose server runs, with database db_name, and the point
 * in time asked for (point may be NULL: head): copied into *out; -1 with
 * the 404, 423 or 400 answer in *bad. */
static int schema_source_find(schema_source *out, nl_response *bad, const nl_api *api, cJSON *project,
                              const char *project_id, const char *branch_id, const char *db_name,
                              const schema_point *point)
{
    memset(out, 0, sizeof *out);
    cJSON *branch = shown_branch(project, branch_id);
    if (!project) {
        *bad = nl_api_no_project(project_id);
        return -1;
    }
    if (!branch) {
        *bad = nl_api_no_branch(project_id, branch_id);
        return -1;
    }
    if (!nl_job_readable_now(project, branch)) {
        *bad = nl_api_busy("branch", branch_id);
        return -1;
    }
    if (!nl_state_item_named(project, NL_DATABASES, branch_id, db_name)) {
        *bad = nl_error(404, "", "database %s not found on branch %s; GET .../branches/%s/databases lists them",
                        db_name, branch_id, branch_id);
        return -1;
    }
    /* With no running server (no endpoint, or a suspended one), the head
     * is read from a copy of the branch's files; its past needs the WAL a
     * stopped server has not archived, and a commit after the instant. */
    cJSON *endpoint = nl_endpoint_of(project, branch_id);
    int port = nl_state_is(endpoint, NL_ENDPOINT_ACTIVE) ? nl_endpoint_port(endpoint) : 0;
    if (!port && point && (point->lsn || point->timestamp)) {
        *bad = nl_error(400, "", "%s is read from branch %s's running server, and it has none; start its endpoint "
                        "(POST .../endpoints/{endpoint_id}/start) or add one (POST .../endpoints), or leave out "
                        "%s to read its schema at its head", point->lsn ? point->lsn_name : point->timestamp_name,
                        branch_id, point->lsn ? point->lsn_name : point->timestamp_name);
        return -1;
    }
    if (point_target(&out->target, bad, project, branch, point) != 0 ||
        lsn_within_history(bad, api, branch_id, point) != 0) {
        free(out->target);
        out->target = NULL;
        return -1;
    }
    const char *newest = newest_operation(project, branch_id);
    out->branch_id = xstrdup(branch_id);
    out->db_name = xstrdup(db_name);
    out->port = port;
    out->last_operation = newest ? xstrdup(newest) : NULL;
    return 0;
}

/* The servers' superuser password, read from DIR/superuser-password (which
 * neon-local checked at start-up); NULL with the reason set. */
static char *superuser_password(const nl_api *api)
{
    char *path = xasprintf("%s/superuser-password", api->data_dir);
    char *text = NULL;
    int rc = fsio_read_file(&text, NULL, path);
    if (rc != 0)
        err_set(DR_EFAIL, "cannot read the servers' superuser password in %s: %s", path, err_last());
    else
        text[strcspn(text, "\r\n")] = '\0';
    free(path);
    return text;
}

static void forget_secret(char *secret)
{
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
}

/* pg_dump's output is capped: a schema is text, never this big. */
#define DUMP_LIMIT (64u << 20)
#define DUMP_TIMEOUT_SECONDS 120.0

/* pg_dump --schema-only of the source's database, made stable. Where to
 * connect and the password go in the child's environment only, never its
 * arguments (which any local user can read); PGDATABASE is never taken for
 * a connection string, as a database argument would be. */
static int read_dump(char **out, const schema_source *src, int port, const char *password)
{
    *out = NULL;
    char *program = xasprintf("%s/pg_dump", nl_pg_bindir());
    char *argv[] = { program, "--schema-only", "--no-password", NULL };
    char *env[] = { xstrdup("PGHOST=127.0.0.1"), xasprintf("PGPORT=%d", port), xstrdup("PGUSER=postgres"),
                    xasprintf("PGDATABASE=%s", src->db_name), xasprintf("PGPASSWORD=%s", password),
                    xstrdup("PGCONNECT_TIMEOUT=10"), NULL };
    proc_request req = { .argv = argv, .env = env, .timeout = DUMP_TIMEOUT_SECONDS, .output_limit = DUMP_LIMIT };
    proc_result res;
    memset(&res, 0, sizeof res);
    int rc = proc_run(&res, &req);
    if (rc == 0 && (res.exit_code != 0 || res.truncated)) {
        const char *why = res.truncated ? "its output is over 64 MiB" : res.err_len ? res.err : "no message";
        rc = err_set(DR_EFAIL, "pg_dump of database %s on branch %s failed (exit %d): %.*s", src->db_name,
                     src->branch_id, res.exit_code, (int)strcspn(why, "\n"), why);
    }
    if (rc == 0)
        *out = nl_schema_stable_dump(res.out);
    proc_result_dispose(&res);
    for (char **e = env; *e; e++)
        forget_secret(*e);
    free(program);
    return rc;
}

/* The tables of the database as the spec's BranchSchemaJSON: every table
 * outside the system schemas, its columns in order, and its primary key,
 * unique and foreign key constraints. PostgreSQL builds the JSON itself. */
static const char catalog_query[] =
    "SELECT json_build_object('tables', coalesce(json_agg(t ORDER BY t.schema, t.name), '[]'))::text FROM ("
    " SELECT n.nspname AS schema, c.relname AS name,"
    "  coalesce((SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),"
    "     'nullable', NOT a.attnotnull, 'generated', a.attgenerated <> '') ORDER BY a.attnum)"
    "    FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns,"
    "  coalesce((SELECT json_agg(json_strip_nulls(json_build_object("
    "     'type', CASE k.contype WHEN 'p' THEN 'primary_key' WHEN 'u' THEN 'unique' ELSE 'foreign_key' END,"
    "     'name', k.conname,"
    "     'columns', (SELECT json_agg(a.attname ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u(num, ord)"
    "                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num),"
    "     'referenced_table', CASE WHEN k.contype = 'f' THEN json_build_object('schema', fn.nspname,"
    "        'table', fc.relname, 'columns', (SELECT json_agg(a.attname ORDER BY u.ord)"
    "         FROM unnest(k.confkey) WITH ORDINALITY u(num, ord)"
    "         JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num)) END)) ORDER BY k.conname)"
    "    FROM pg_constraint k LEFT JOIN pg_class fc ON fc.oid = k.confrelid"
    "    LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace"
    "    WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'f')), '[]') AS constraints"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"
    ") t";

static int read_catalog(cJSON **out, const schema_source *src, int server_port, const char *password)
{
    *out = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", server_port);
    const char *const keys[] = { "host", "port", "user", "dbname", "password", "connect_timeout", NULL };
    const char *const values[] = { "127.0.0.1", port, "postgres", src->db_name, password, "10", NULL };
    PGconn *conn = PQconnectdbParams(keys, values, 0);
    int rc = 0;
    if (PQstatus(conn) != CONNECTION_OK) {
        rc = err_set(DR_EFAIL, "cannot connect to database %s on branch %s: %s", src->db_name, src->branch_id,
                     PQerrorMessage(conn));
    } else {
        PGresult *res = PQexec(conn, catalog_query);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            *out = cJSON_Parse(PQgetvalue(res, 0, 0));
        if (!*out)
            rc = err_set(DR_EFAIL, "cannot read the tables of database %s on branch %s: %s", src->db_name,
                         src->branch_id, PQresultErrorMessage(res));
        PQclear(res);
    }
    PQfinish(conn);
    return rc;
}

/* ---- a schema at a past point ----------------------------------------------------- */

/* A past schema is read from a server of its own, in
 * DATA_DIR/scratch/schema-PID-UUID: the pid tells this process's folders
 * from those a neon-local killed while reading one left behind. */
static char *scratch_root(const nl_api *api)
{
    return xasprintf("%s/scratch", api->data_dir);
}

/* Stops a scratch folder's server (when one runs there) and removes it. */
static int remove_scratch_folder(const char *folder)
{
    char *datadir = xasprintf("%s/data", folder), *pid = xasprintf("%s/data/postmaster.pid", folder);
    if (fsio_exists(pid))
        (void)nl_pg_stop(datadir); /* a server that died with its neon-local leaves the file too */
    int rc = fsio_remove_tree(folder);
    free(datadir);
    free(pid);
    return rc;
}

/* What a killed neon-local left in the scratch folder goes: its servers
 * would run on for ever, and their copies fill the disk. */
static void remove_left_scratch(const nl_api *api)
{
    char *root = scratch_root(api);
    char mine[48];
    snprintf(mine, sizeof mine, "schema-%ld-", (long)getpid());
    DIR *dir = opendir(root);
    const struct dirent *entry;
    while (dir && (entry = readdir(dir)) != NULL) {
        if (strncmp(entry->d_name, "schema-", 7) != 0 || strncmp(entry->d_name, mine, strlen(mine)) == 0)
            continue;
        char *folder = xasprintf("%s/%s", root, entry->d_name);
        if (remove_scratch_folder(folder) != 0)
            fprintf(stderr, "neon-local: cannot remove %s, left by an earlier neon-local: %s\n", folder, err_last());
        free(folder);
    }
    if (dir)
        closedir(dir);
    free(root);
}

/* The scratch server's last FATAL or ERROR line, as "; it said: ..." (""
 * when none): its log goes with its folder, which the message would
 * otherwise send the reader to. Borrowed, until the next call. */
static const char *last_server_error(const char *folder)
{
    static _Thread_local char said[512];
    char *log = xasprintf("%s/data.log", folder), *text = NULL;
    said[0] = '\0';
    if (fsio_read_file(&text, NULL, log) == 0) {
        for (const char *line = text; *line; line += strcspn(line, "\n"), line += *line == '\n') {
            size_t len = strcspn(line, "\n");
            const char *fatal = memmem(line, len, "FATAL:", 6), *error = memmem(line, len, "ERROR:", 6);
            const char *what = fatal ? fatal : error;
            if (what)
                snprintf(said, sizeof said, "; it said: %.*s", (int)(len - (size_t)(what - line)), what);
        }
    }
    free(text);
    free(log);
    return said;
}

/* The schema of src at its target, as a branch made at that point would
 * have it: the branch's base backup replayed from its WAL archive (the
 * WAL up to now archived first) on a free port, read, then stopped and
 * removed whatever happened. The files read are the branch's own; a job
 * that removes or replaces them meanwhile makes the copy or the replay
 * fail (PostgreSQL refuses to end a recovery short of its target), never
 * answer an earlier schema. */
static int prepare_past(const nl_api *api, const schema_source *src, const char *datadir, int port,
                        const char *archive)
{
    char *base = nl_api_branch_path(api, src->branch_id, "base");
    char *source_archive = nl_api_branch_path(api, src->branch_id, "wal");
    int rc = nl_pg_archive_now(src->port);
    if (rc == 0)
        rc = nl_pg_copy_backup(base, datadir);
    if (rc == 0)
        rc = nl_pg_recover_to(datadir, port, archive, source_archive, src->target);
    free(base);
    free(source_archive);
    return rc;
}

/* Makes a scratch server's data folder and starts it (read_on_scratch). */
typedef int (*scratch_prepare)(const nl_api *api, const schema_source *src, const char *datadir, int port,
                               const char *archive);

/* The schema read from a scratch server that prepare makes in a folder of
 * its own under DIR/scratch, on a free port; the folder is removed
 * whatever happened. `where` says what was read, for errors. */
static int read_on_scratch(char **sql, cJSON **json, const nl_api *api, const schema_source *src,
                           const char *password, scratch_prepare prepare, const char *where)
{
    remove_left_scratch(api);
    char *root = scratch_root(api), *uuid = nl_new_uuid();
    char *folder = xasprintf("%s/schema-%ld-%s", root, (long)getpid(), uuid);
    char *datadir = xasprintf("%s/data", folder), *archive = xasprintf("%s/wal", folder);
    int port = nl_free_port();
    int rc = port > 0 ? fsio_mkdirs(root, 0755)
                      : err_set(DR_EFAIL, "no free port on 127.0.0.1 for a scratch server of branch %s", src->branch_id);
    if (rc == 0)
        rc = prepare(api, src, datadir, port, archive);
    if (rc == 0)
        rc = json ? read_catalog(json, src, port, password) : read_dump(sql, src, port, password);
    if (rc != 0)
        err_set(rc, "cannot read the schema of branch %s %s: %s%s", src->branch_id, where, err_last(),
                last_server_error(folder));
    char *why = rc ? xstrdup(err_last()) : NULL;
    if (fsio_exists(folder) && remove_scratch_folder(folder) != 0)
        fprintf(stderr, "neon-local: cannot remove %s: %s\n", folder, err_last());
    if (why)
        err_set(rc, "%s", why);
    free(why);
    free(root);
    free(uuid);
    free(folder);
    free(datadir);
    free(archive);
    return rc;
}

static int read_past(char **sql, cJSON **json, const nl_api *api, const schema_source *src, const char *password)
{
    char *where = xasprintf("at %s", src->target);
    int rc = read_on_scratch(sql, json, api, src, password, prepare_past, where);
    free(where);
    return rc;
}

/* ---- the head of a branch whose server is stopped ------------------------------- */

/* Whether a server runs in a data folder: a postmaster.pid whose process
 * lives (one that died leaves the file behind). */
static int server_runs_in(const char *datadir)
{
    char *path = xasprintf("%s/postmaster.pid", datadir), *text = NULL;
    long pid = fsio_read_file(&text, NULL, path) == 0 ? strtol(text, NULL, 10) : 0;
    free(text);
    free(path);
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* A copy of the stopped server's files, made consistent: the lock file of
 * a server that died goes (the copy's own start would take it for a
 * running one), its WAL is replayed as after any crash when it starts. */
static int copy_stopped_data(const char *source, const char *datadir, const char *branch_id)
{
    if (server_runs_in(source))
        return err_set(DR_EFAIL, "a server runs in the data folder of branch %s though its endpoint is not "
                       "active; try again once its endpoint change is done", branch_id);
    int rc = nl_pg_copy_backup(source, datadir);
    char *lock = xasprintf("%s/postmaster.pid", datadir);
    if (rc == 0 && unlink(lock) != 0 && errno != ENOENT)
        rc = err_set(DR_EFAIL, "cannot remove %s from the copy: %s", lock, strerror(errno));
    free(lock);
    return rc;
}

/* The schema at the head of a branch whose server is stopped (it has no
 * endpoint, or its endpoint is suspended), as Neon reads any branch's: its
 * data folder copied (never opened in place, nor its server started: the
 * branch stays as the API shows it) and served on a free port by a
 * scratch server, which is read, stopped and removed, as read_past's is.
 * A job that starts the branch's server meanwhile could spoil the copy:
 * read_unlocked then refuses the answer (branch_changed_during_read). */
static int prepare_at_rest(const nl_api *api, const schema_source *src, const char *datadir, int port,
                           const char *archive)
{
    char *source = nl_api_branch_path(api, src->branch_id, "data");
    int rc = copy_stopped_data(source, datadir, src->branch_id);
    if (rc == 0)
        rc = nl_pg_configure(datadir, port, archive, NULL);
    if (rc == 0)
        rc = nl_pg_start(datadir);
    free(source);
    return rc;
}

static int read_at_rest(char **sql, cJSON **json, const nl_api *api, const schema_source *src, const char *password)
{
    return read_on_scratch(sql, json, api, src, password, prepare_at_rest, "from a copy of its data");
}

/* One schema: SQL into *sql, or JSON into *json when json is not NULL;
 * at head from the branch's server (or a copy of its files when it has
 * none running), or at its point in time. */
static int read_source(char **sql, cJSON **json, const nl_api *api, const schema_source *src, const char *password)
{
    if (src->target)
        return read_past(sql, json, api, src, password);
    if (!src->port)
        return read_at_rest(sql, json, api, src, password);
    return json ? read_catalog(json, src, src->port, password) : read_dump(sql, src, src->port, password);
}

/* ---- the requests ---------------------------------------------------------------- */

/* db_name, required by both operations. */
static const char *wanted_database(nl_response *bad, const nl_request *req)
{
    const char *db_name = json_text(req->query, "db_name", NULL);
    if (!db_name || !*db_name)
        *bad = nl_error(400, "", "db_name is required: the database whose schema to read, e.g. ?db_name=neondb");
    return db_name && *db_name ? db_name : NULL;
}

static int valid_branch_id(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 60)
        return 0;
    for (const char *c = id; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-'))
            return 0;
    return 1;
}

/* After a read failed: 404 or 423 when the branch went or got busy while
 * the lock was released (the failure came from that), else 500 with the
 * read's own message. */
static nl_response read_failure(nl_api *api, const char *project_id, const schema_source *src, const char *why)
{
    nl_response moved;
    schema_source again;
    cJSON *project = nl_state_live_project(api->state, project_id);
    if (schema_source_find(&again, &moved, api, project, project_id, src->branch_id, src->db_name, NULL) != 0)
        return moved;
    schema_source_dispose(&again);
    return nl_error(500, "", "%s", why);
}

/* After a read from a copy of a stopped branch's files: whether anything
 * was asked of the branch while the lock was released (a new operation on
 * it, or it is no longer readable), which could have changed the files
 * under the copy. */
static int branch_changed_during_read(nl_api *api, const char *project_id, const schema_source *src)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    cJSON *branch = shown_branch(project, src->branch_id);
    if (!branch || !nl_job_readable_now(project, branch))
        return 1;
    const char *newest = newest_operation(project, src->branch_id);
    if (!newest || !src->last_operation)
        return newest != src->last_operation;
    return strcmp(newest, src->last_operation) != 0;
}

/* The first source of a read (src, then base: NULL ends) read from a copy
 * whose branch changed meanwhile; NULL when none did. */
static const schema_source *copied_and_changed(nl_api *api, const char *project_id, const schema_source *src,
                                               const schema_source *base)
{
    if (!src->port && !src->target && branch_changed_during_read(api, project_id, src))
        return src;
    if (base && !base->port && !base->target && branch_changed_during_read(api, project_id, base))
        return base;
    return NULL;
}

/* Reads one schema, or both of a comparison (base may be NULL), with the
 * lock released. 0, or -1 with the answer in *bad (the lock held again). */
static int read_unlocked(nl_response *bad, nl_api *api, const char *project_id, const schema_source *src,
                         const schema_source *base, int as_json, char **sql, char **base_sql, cJSON **json)
{
    char *password = superuser_password(api);
    if (!password) {
        *bad = nl_error(500, "", "%s", err_last());
        return -1;
    }
    pthread_mutex_unlock(&api->lock);
    const schema_source *failed = NULL;
    int rc = 0;
    if (base && (rc = read_source(base_sql, NULL, api, base, password)) != 0)
        failed = base;
    else if ((rc = read_source(sql, as_json ? json : NULL, api, src, password)) != 0)
        failed = src;
    char *why = rc ? xstrdup(err_last()) : NULL;
    forget_secret(password);
    pthread_mutex_lock(&api->lock);
    if (rc)
        *bad = read_failure(api, project_id, failed, why);
    free(why);
    const schema_source *changed = rc ? NULL : copied_and_changed(api, project_id, src, base);
    if (changed) {
        nl_response gone;
        schema_source again;
        cJSON *project = nl_state_live_project(api->state, project_id);
        if (schema_source_find(&again, &gone, api, project, project_id, changed->branch_id, changed->db_name,
                               NULL) != 0) {
            *bad = gone;
        } else {
            schema_source_dispose(&again);
            *bad = nl_error(423, "", "branch %s changed while its schema was read from a copy of its data; try "
                            "again", changed->branch_id);
        }
        rc = -1;
    }
    return rc ? -1 : 0;
}

nl_response nl_branch_schema_get(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    nl_response bad;
    const char *db_name = wanted_database(&bad, req);
    if (!db_name)
        return bad;
    const schema_point point = { json_text(req->query, "lsn", NULL), json_text(req->query, "timestamp", NULL),
                                 "lsn", "timestamp" };
    const char *format = json_text(req->query, "format", "sql");
    if (strcmp(format, "sql") != 0 && strcmp(format, "json") != 0)
        return nl_error(400, "", "format must be sql or json, not '%s'", format);
    int as_json = strcmp(format, "json") == 0;
    schema_source src;
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    if (schema_source_find(&src, &bad, api, project, ids->project_id, ids->branch_id, db_name, &point) != 0)
        return bad;
    char *sql = NULL;
    cJSON *json = NULL;
    int rc = read_unlocked(&bad, api, ids->project_id, &src, NULL, as_json, &sql, NULL, &json);
    schema_source_dispose(&src);
    if (rc != 0)
        return bad;
    cJSON *body = cJSON_CreateObject();
    if (as_json)
        cJSON_AddItemToObject(body, "json", json);
    else
        cJSON_AddStringToObject(body, "sql", sql);
    free(sql);
    return nl_json(200, body);
}

/* The branch a comparison is made against: base_branch_id, or the
 * branch's parent as Neon takes it; NULL with the answer in *bad. */
static const char *comparison_base(nl_response *bad, const nl_request *req, cJSON *project, const nl_path_ids *ids)
{
    const char *given = json_text(req->query, "base_branch_id", NULL);
    if (given && !valid_branch_id(given)) {
        *bad = nl_error(400, "", "base_branch_id must be a branch id (1 to 60 lowercase letters, digits or '-'), "
                        "not '%s'", given);
        return NULL;
    }
    if (given)
        return given;
    cJSON *branch = shown_branch(project, ids->branch_id);
    if (!project || !branch) {
        *bad = project ? nl_api_no_branch(ids->project_id, ids->branch_id) : nl_api_no_project(ids->project_id);
        return NULL;
    }
    const char *parent = json_text(branch, "parent_id", NULL);
    if (!parent)
        *bad = nl_error(400, "", "branch %s has no parent to compare its schema with; give base_branch_id",
                        ids->branch_id);
    return parent;
}

/* A diff header's name for one side: "a/BRANCH/DB", and after a tab (where
 * diff -u puts a file's time) the point it was read at, if not head. */
static char *side_label(const char *side, const schema_source *src, const schema_point *point)
{
    const char *at = point->lsn ? point->lsn : point->timestamp;
    return at ? xasprintf("%s/%s/%s\t(at %s)", side, src->branch_id, src->db_name, at)
              : xasprintf("%s/%s/%s", side, src->branch_id, src->db_name);
}

nl_response nl_branch_schema_compare(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    nl_response bad;
    const char *db_name = wanted_database(&bad, req);
    if (!db_name)
        return bad;
    const schema_point point = { json_text(req->query, "lsn", NULL), json_text(req->query, "timestamp", NULL),
                                 "lsn", "timestamp" };
    const schema_point base_point = { json_text(req->query, "base_lsn", NULL),
                                      json_text(req->query, "base_timestamp", NULL), "base_lsn", "base_timestamp" };
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    const char *base_id = comparison_base(&bad, req, project, ids);
    if (!base_id)
        return bad;
    schema_source src, base;
    if (schema_source_find(&src, &bad, api, project, ids->project_id, ids->branch_id, db_name, &point) != 0)
        return bad;
    if (schema_source_find(&base, &bad, api, project, ids->project_id, base_id, db_name, &base_point) != 0) {
        schema_source_dispose(&src);
        return bad;
    }
    char *sql = NULL, *base_sql = NULL;
    int rc = read_unlocked(&bad, api, ids->project_id, &src, &base, 0, &sql, &base_sql, NULL);
    char *diff = NULL;
    if (rc == 0) {
        char *old_label = side_label("a", &base, &base_point);
        char *new_label = side_label("b", &src, &point);
        diff = nl_schema_unified_diff(base_sql, sql, old_label, new_label, 3);
        free(old_label);
        free(new_label);
    }
    free(sql);
    free(base_sql);
    schema_source_dispose(&src);
    schema_source_dispose(&base);
    if (rc != 0)
        return bad;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "diff", diff);
    free(diff);
    return nl_json(200, body);
}
