#include "dumpmod.h"

#include "buf.h"
#include "drill.h"
#include "drmod.h"
#include "err.h"
#include "filesmod.h"
#include "fsio.h"
#include "pgconnect.h"
#include "proc.h"
#include "redact.h"
#include "s3.h"
#include "signals.h"
#include "term.h"
#include "timefmt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <libpq-fe.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static dr_host *host_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* ---- connection details, without the password on any command line ------------------------ */

typedef struct conn_env {
    char *passfile;     /* temporary, 0600, removed by conn_env_free */
    char *env[8];       /* NAME=value for the child, NULL-terminated */
    int server_major;
    char *label;
} conn_env;

static void conn_env_free(conn_env *c)
{
    if (c->passfile) {
        unlink(c->passfile);
        free(c->passfile);
    }
    for (int i = 0; c->env[i]; i++)
        free(c->env[i]);
    free(c->label);
    memset(c, 0, sizeof *c);
}

/* A passfile field: ':' and '\' escaped. */
static void put_passfile_field(buf *b, const char *value)
{
    for (const char *p = value ? value : "*"; *p; p++) {
        if (*p == ':' || *p == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *p);
    }
}

/* Passfiles left by a drctl that was killed (kill -9 skips every cleanup)
 * hold a password: those whose process is gone are removed. */
static void sweep_passfiles(const char *tmp)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int pid = 0;
        if (sscanf(e->d_name, "drctl-pgpass-%d-", &pid) != 1 || pid <= 0)
            continue;
        if (kill(pid, 0) != 0 && errno == ESRCH) {
            char *path = xasprintf("%s/%s", tmp, e->d_name);
            unlink(path);
            free(path);
        }
    }
    if (d)
        closedir(d);
}

/* Connects once (the server's version, and a clear error early), then
 * describes the connection for the child through its environment. */
static int conn_env_open(const char *uri, conn_env *c)
{
    memset(c, 0, sizeof *c);
    PGconn *conn = pg_connect_uri(uri, "drctl", "10");
    if (PQstatus(conn) != CONNECTION_OK) {
        int rc = err_set(DR_EFAIL, "cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return rc;
    }
    if (PQpass(conn) && *PQpass(conn))
        redact_add_named_secret("the password of the dump's connection", PQpass(conn));
    c->server_major = PQserverVersion(conn) / 10000;
    c->label = xasprintf("%s@%s:%s/%s", PQuser(conn), PQhost(conn), PQport(conn), PQdb(conn));
    int n = 0;
    c->env[n++] = xasprintf("PGHOST=%s", PQhost(conn));
    c->env[n++] = xasprintf("PGPORT=%s", PQport(conn));
    c->env[n++] = xasprintf("PGUSER=%s", PQuser(conn));
    c->env[n++] = xasprintf("PGDATABASE=%s", PQdb(conn));
    PQconninfoOption *opts = PQconninfo(conn);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "sslmode") && o->val)
            c->env[n++] = xasprintf("PGSSLMODE=%s", o->val);
    PQconninfoFree(opts);
    int rc = 0;
    if (PQpass(conn) && *PQpass(conn)) {
        const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        sweep_passfiles(tmp);
        c->passfile = xasprintf("%s/drctl-pgpass-%d-XXXXXX", tmp, (int)getpid());
        int fd = mkstemp(c->passfile); /* 0600 */
        buf line = BUF_INIT;
        put_passfile_field(&line, "*");
        buf_putc(&line, ':');
        put_passfile_field(&line, "*");
        buf_putc(&line, ':');
        put_passfile_field(&line, "*");
        buf_putc(&line, ':');
        put_passfile_field(&line, PQuser(conn));
        buf_putc(&line, ':');
        put_passfile_field(&line, PQpass(conn));
        buf_putc(&line, '\n');
        if (fd < 0 || write(fd, line.data, line.len) != (ssize_t)line.len)
            rc = err_set(DR_EFAIL, "cannot write a temporary passfile in %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        memset(line.data, 0, line.len);
        buf_dispose(&line);
        c->env[n++] = xasprintf("PGPASSFILE=%s", c->passfile);
    }
    c->env[n] = NULL;
    PQfinish(conn);
    if (rc)
        conn_env_free(c);
    return rc;
}

/* ---- the programs --------------------------------------------------------------------------- */

/* The program from DRCTL_PG_BINDIR when set; else the one of the server's
 * major version when installed (Debian keeps them side by side), else the
 * one on PATH. */
static char *program_for(const char *name, int major)
{
    const char *bindir = getenv("DRCTL_PG_BINDIR");
    if (bindir && *bindir)
        return xasprintf("%s/%s", bindir, name);
    char *path = xasprintf("/usr/lib/postgresql/%d/bin/%s", major, name);
    if (access(path, X_OK) == 0)
        return path;
    free(path);
    return xstrdup(name);
}

/* "pg_dump (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)" -> 15; -1 when it does not run. */
static int program_major(const char *program, char **version_line)
{
    char *argv[] = { (char *)program, "--version", NULL };
    proc_request req = { .argv = argv, .timeout = 30 };
    proc_result r;
    *version_line = NULL;
    if (proc_run(&r, &req) != 0 || r.exit_code != 0) {
        if (r.out)
            proc_result_dispose(&r);
        return -1;
    }
    const char *v = strstr(r.out, ") ");
    int major = v ? atoi(v + 2) : -1;
    *version_line = xstrdup(r.out);
    (*version_line)[strcspn(*version_line, "\n")] = '\0';
    proc_result_dispose(&r);
    return major;
}

typedef struct progress_state {
    const char *what;
    const char *watch_path; /* whose size is reported */
    int tables;
    int total;              /* the tables to do, when known (a restore: its archive's), or 0 */
    double started;
} progress_state;

static int count_lines_with(const char *text, size_t len, const char *needle)
{
    int n = 0;
    size_t nl = strlen(needle);
    for (const char *p = text; p && (size_t)(p - text) + nl <= len; p++) {
        p = memmem(p, len - (size_t)(p - text), needle, nl);
        if (!p)
            break;
        n++;
    }
    return n;
}

static void report_progress(void *ud, const char *err, size_t err_len)
{
    progress_state *s = ud;
    s->tables = count_lines_with(err, err_len, "dumping contents of table") +
                count_lines_with(err, err_len, "processing data for table");
    char took[32];
    double seconds = timefmt_monotonic() - s->started;
    timefmt_format_duration(took, sizeof took, seconds);
    if (s->watch_path) {
        double mb = files_size_of(s->watch_path) / 1e6;
        term_progress("%s: %d tables done, %.1f MB written (%.1f MB/s), %s", s->what, s->tables, mb,
                      seconds > 0 ? mb / seconds : 0, took);
    } else if (s->total > 0) {
        term_progress("%s: %d of %d tables, %s", s->what, s->tables, s->total, took);
    } else {
        term_progress("%s: %d tables done, %s", s->what, s->tables, took);
    }
}

static int stop_requested(void)
{
    return signals_pending() != 0;
}

/* Runs a program with the connection's environment and progress; the
 * step's deadline applies. Fails with the server it worked on (a server
 * that died mid-way leaves pg_restore saying only "server closed the
 * connection") and the program's last stderr lines. */
static int run_tool(lua_State *L, char **argv, const conn_env *c, progress_state *progress, proc_result *r)
{
    double timeout = sandbox_time_left(sandbox_from_state(L));
    proc_request req = { .argv = argv, .env = c ? c->env : NULL, .timeout = timeout > 0 ? timeout : 0,
                         .output_limit = 4u << 20, .should_stop = stop_requested,
                         .progress = report_progress, .progress_ud = progress };
    progress->started = timefmt_monotonic();
    int ran = proc_run(r, &req);
    term_progress_end();
    if (ran != 0)
        return err_set(DR_EFAIL, "cannot run %s: %s", argv[0], err_last());
    if (r->exit_code != 0 || r->timed_out || r->stopped) {
        const char *tail = r->err_len > 800 ? r->err + r->err_len - 800 : r->err;
        return err_set(r->stopped ? DR_EINTR : DR_EFAIL, "%s%s%s %s (exit %d): %s", argv[0], c ? " on " : "",
                       c ? c->label : "", r->timed_out ? "ran out of time" : r->stopped ? "was interrupted" : "failed",
                       r->exit_code, tail);
    }
    return 0;
}

/* ---- Lua --------------------------------------------------------------------------------------- */

static const char *opt_string(lua_State *L, const char *key, const char *fallback)
{
    lua_getfield(L, 1, key);
    const char *v = lua_isnil(L, -1) ? fallback : luaL_checkstring(L, -1);
    lua_pop(L, 1); /* the table keeps the string alive */
    return v;
}

static int opt_int(lua_State *L, const char *key, int fallback)
{
    lua_getfield(L, 1, key);
    int v = lua_isnil(L, -1) ? fallback : (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    return v;
}

static int valid_name(const char *name)
{
    if (!name || !*name || name[0] == '.' || strlen(name) > 200)
        return 0;
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p < 32)
            return 0;
    return 1;
}

static int journal_tool(lua_State *L, const char *tool, cJSON *data)
{
    dr_host *host = host_of(L);
    cJSON_AddStringToObject(data, "tool", tool);
    return host->event(host->ud, "dump", data);
}

/* pg_restore --list of a dump, counted: its entries and its tables' data. */
static int list_dump(lua_State *L, const char *path, int *entries, int *tables)
{
    *entries = *tables = 0;
    if (!fsio_exists(path))
        return err_set(DR_EFAIL, "%s does not exist", path);
    char *program = program_for("pg_restore", 15);
    char *argv[] = { program, "--list", (char *)path, NULL };
    proc_result r = { 0 };
    int rc = run_tool(L, argv, NULL, &(progress_state){ .what = "pg_restore --list" }, &r);
    free(program);
    for (char *line = rc == 0 ? r.out : NULL; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (*line != ';' && *line)
            (*entries)++;
        if (*line != ';' && strstr(line, " TABLE DATA "))
            (*tables)++;
        line = end ? end + 1 : NULL;
    }
    if (r.out || r.err)
        proc_result_dispose(&r);
    return rc;
}

/* Everything a pg_dump call needs, checked before anything is written. */
typedef struct dump_job {
    const char *uri, *dest, *name, *format;
    const char *snapshot;   /* --snapshot: the dump sees what a caller's transaction sees */
    int jobs, check, listed_tables;
    char *final_path, *partial_path, *program, *version;
    char *staging, *remote;  /* an S3 destination: dumped here first, then uploaded there */
    conn_env conn;
} dump_job;

static void dump_job_free(dump_job *j)
{
    if (j->staging)
        fsio_remove_tree(j->staging);
    free(j->staging);
    free(j->remote);
    free(j->final_path);
    free(j->partial_path);
    free(j->program);
    free(j->version);
    conn_env_free(&j->conn);
}

static int prepare_dump(dump_job *j)
{
    if (s3_is_url(j->dest)) {
        if (strcmp(j->format, "custom") != 0)
            return err_set(DR_EUSAGE, "dump.pg_dump: an S3 destination takes format=\"custom\" (one file)");
        const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        j->staging = xasprintf("%s/drctl-dump-XXXXXX", tmp);
        if (!mkdtemp(j->staging))
            return err_set(DR_EFAIL, "cannot make a staging folder in %s: %s", tmp, strerror(errno));
        j->remote = xasprintf("%s%s%s.dump", j->dest, j->dest[strlen(j->dest) - 1] == '/' ? "" : "/", j->name);
        j->dest = j->staging;
        int exists, rc = s3_exists(&exists, j->remote);
        if (rc)
            return rc;
        if (exists)
            return err_set(DR_EFAIL, "dump.pg_dump: %s already exists; a dump is never overwritten", j->remote);
    }
    if (strcmp(j->format, "custom") != 0 && strcmp(j->format, "directory") != 0)
        return err_set(DR_EUSAGE, "dump.pg_dump: format must be custom or directory, not '%s'", j->format);
    if (!valid_name(j->name))
        return err_set(DR_EUSAGE, "dump.pg_dump: name '%s' must be a plain file name", j->name ? j->name : "");
    if (j->jobs < 1 || j->jobs > 64 || (j->jobs > 1 && strcmp(j->format, "directory") != 0))
        return err_set(DR_EUSAGE, "dump.pg_dump: jobs=%d: parallel dumps need format=\"directory\" (1 to 64 jobs)",
                       j->jobs);
    int rc = fsio_mkdirs(j->dest, 0755);
    if (rc)
        return rc;
    j->final_path = xasprintf("%s/%s%s", j->dest, j->name, strcmp(j->format, "custom") == 0 ? ".dump" : "");
    j->partial_path = xasprintf("%s.partial", j->final_path);
    if (fsio_exists(j->final_path))
        return err_set(DR_EFAIL, "dump.pg_dump: %s already exists; a dump is never overwritten", j->final_path);
    if ((rc = conn_env_open(j->uri, &j->conn)) != 0)
        return rc;
    j->program = program_for("pg_dump", j->conn.server_major);
    int major = program_major(j->program, &j->version);
    if (major < 0)
        return err_set(DR_EFAIL, "cannot run %s --version: is the PostgreSQL client installed?", j->program);
    if (major < j->conn.server_major)
        return err_set(DR_EFAIL, "%s is version %d, older than the server (PostgreSQL %d): it cannot dump it "
                       "faithfully. Install postgresql-client-%d.", j->program, major, j->conn.server_major,
                       j->conn.server_major);
    /* What a failed dump left: not ours to keep. */
    return fsio_remove_tree(j->partial_path);
}

static int l_pg_dump(lua_State *L)
{
    dr_host *host = host_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    dump_job j = { .uri = opt_string(L, "uri", NULL), .dest = opt_string(L, "dest", NULL),
                   .name = opt_string(L, "name", NULL), .format = opt_string(L, "format", "custom"),
                   .snapshot = opt_string(L, "snapshot", NULL), .jobs = opt_int(L, "jobs", 1) };
    lua_getfield(L, 1, "check");
    j.check = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (j.dest && !s3_is_url(j.dest)) /* before the plan's refusal: the message names the allowed folders */
        free(files_confine_lua(L, host, "dump.pg_dump", j.dest, CONFINE_ACCESS));
    if (host->plan_mode)
        return luaL_error(L, "dump.pg_dump is refused in plan mode (a plan must not act)");
    if (!j.uri || !j.dest)
        return luaL_error(L, "dump.pg_dump needs {uri = ..., dest = DIR, name = ...}");
    if (prepare_dump(&j) != 0) {
        lua_pushstring(L, err_last());
        dump_job_free(&j);
        return lua_error(L);
    }
    char jobs[16];
    snprintf(jobs, sizeof jobs, "%d", j.jobs);
    char *snapshot_arg = j.snapshot ? xasprintf("--snapshot=%s", j.snapshot) : NULL;
    char *argv[12] = { j.program, "--verbose", "--no-password", strcmp(j.format, "custom") == 0 ? "-Fc" : "-Fd",
                       "-f", j.partial_path };
    int argc = 6;
    if (j.jobs > 1) {
        argv[argc++] = "-j";
        argv[argc++] = jobs;
    }
    if (snapshot_arg)
        argv[argc++] = snapshot_arg;
    argv[argc] = NULL;
    progress_state progress = { .what = "pg_dump", .watch_path = j.partial_path };
    proc_result r = { 0 };
    double t0 = timefmt_monotonic();
    int rc = run_tool(L, argv, &j.conn, &progress, &r);
    char hex[65] = "";
    if (rc == 0 && rename(j.partial_path, j.final_path) != 0)
        rc = err_set(DR_EFAIL, "cannot rename %s: %s", j.partial_path, strerror(errno));
    free(snapshot_arg);
    if (rc == 0)
        rc = files_sha256(j.final_path, hex);
    int entries = 0;
    if (rc == 0 && j.check && (rc = list_dump(L, j.final_path, &entries, &j.listed_tables)) == 0 && entries == 0)
        rc = err_set(DR_EFAIL, "pg_restore --list finds nothing in %s", j.final_path);
    long long bytes = rc == 0 ? files_size_of(j.final_path) : 0;
    if (rc == 0 && j.remote) {
        rc = s3_upload(j.final_path, j.remote, hex, files_report_upload, NULL);
        free(j.final_path);
        j.final_path = xstrdup(j.remote); /* the dump is where it was asked for */
    }
    double seconds = timefmt_monotonic() - t0;
    report_progress(&progress, r.err ? r.err : "", r.err_len);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "connection", j.conn.label);
    cJSON_AddStringToObject(data, "path", j.final_path);
    cJSON_AddNumberToObject(data, "exit_code", r.exit_code);
    cJSON_AddNumberToObject(data, "bytes", (double)bytes);
    cJSON_AddNumberToObject(data, "duration_ms", round(seconds * 1000));
    if (rc == 0)
        cJSON_AddStringToObject(data, "sha256", hex);
    else
        cJSON_AddStringToObject(data, "error", err_last());
    lua_pushstring(L, err_last()); /* kept before anything else sets it */
    int jrc = journal_tool(L, "pg_dump", data);
    if (r.out || r.err)
        proc_result_dispose(&r);
    if (rc || jrc) {
        dump_job_free(&j);
        sandbox_check_abort(L);
        if (!rc)
            lua_pushfstring(L, "cannot record the dump event: %s", err_last());
        return lua_error(L);
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, j.final_path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, j.format);
    lua_setfield(L, -2, "format");
    lua_pushinteger(L, bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushstring(L, hex);
    lua_setfield(L, -2, "sha256");
    lua_pushnumber(L, round(seconds * 1000) / 1000);
    lua_setfield(L, -2, "seconds");
    lua_pushinteger(L, progress.tables);
    lua_setfield(L, -2, "tables");
    lua_pushstring(L, j.version);
    lua_setfield(L, -2, "pg_dump_version");
    lua_pushinteger(L, j.conn.server_major);
    lua_setfield(L, -2, "server_version");
    if (j.check) {
        lua_pushinteger(L, j.listed_tables);
        lua_setfield(L, -2, "listed_tables");
    }
    dump_job_free(&j);
    return 1;
}

static int l_pg_restore(lua_State *L)
{
    dr_host *host = host_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *uri = opt_string(L, "uri", NULL), *source = opt_string(L, "source", NULL);
    if (source)
        free(files_confine_lua(L, host, "dump.pg_restore", source, CONFINE_ACCESS));
    if (host->plan_mode)
        return luaL_error(L, "dump.pg_restore is refused in plan mode (a plan must not act)");
    int jobs = opt_int(L, "jobs", 1);
    lua_getfield(L, 1, "clean");
    int clean = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!uri || !source)
        return luaL_error(L, "dump.pg_restore needs {uri = ..., source = PATH}");
    if (host->drill) {
        char *where = drill_host_of_uri(uri);
        int owned = where && drill_scope_has(host->drill, DRILL_HOST, where);
        lua_pushfstring(L, "the drill refused dump.pg_restore into %s: not one of the drill's branches",
                        where ? where : "(a connection string without a host)");
        free(where);
        if (!owned)
            return drill_refuse_lua(L, host, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    if (jobs < 1 || jobs > 64)
        return luaL_error(L, "dump.pg_restore: jobs must be 1 to 64");
    if (!fsio_exists(source))
        return luaL_error(L, "dump.pg_restore: %s does not exist", source);
    conn_env c;
    if (conn_env_open(uri, &c) != 0)
        return luaL_error(L, "%s", err_last());
    char *program = program_for("pg_restore", c.server_major);
    char jobs_text[16];
    snprintf(jobs_text, sizeof jobs_text, "%d", jobs);
    /* Without -d pg_restore only prints SQL; the name comes from the connection. */
    const char *dbname = "postgres";
    for (int i = 0; c.env[i]; i++)
        if (!strncmp(c.env[i], "PGDATABASE=", 11))
            dbname = c.env[i] + 11;
    char *argv[16]; /* 12 options at most, and the NULL */
    int n = 0;
    argv[n++] = program;
    argv[n++] = "--verbose";
    argv[n++] = "--no-password";
    argv[n++] = "--no-owner";
    argv[n++] = "--exit-on-error";
    argv[n++] = "-j";
    argv[n++] = jobs_text;
    if (clean) {
        argv[n++] = "--clean";
        argv[n++] = "--if-exists";
    }
    argv[n++] = "-d";
    argv[n++] = (char *)dbname;
    argv[n++] = (char *)source;
    argv[n] = NULL;
    progress_state progress = { .what = "pg_restore" };
    int entries;
    if (list_dump(L, source, &entries, &progress.total) != 0)
        progress.total = 0; /* the restore says what is wrong with the archive */
    proc_result r = { 0 };
    double t0 = timefmt_monotonic();
    int rc = run_tool(L, argv, &c, &progress, &r);
    double seconds = timefmt_monotonic() - t0;
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "connection", c.label);
    cJSON_AddStringToObject(data, "source", source);
    cJSON_AddNumberToObject(data, "exit_code", r.exit_code);
    cJSON_AddNumberToObject(data, "duration_ms", round(seconds * 1000));
    if (rc)
        cJSON_AddStringToObject(data, "error", err_last());
    lua_pushstring(L, err_last());
    int jrc = journal_tool(L, "pg_restore", data);
    if (r.out || r.err)
        proc_result_dispose(&r);
    free(program);
    conn_env_free(&c);
    if (rc || jrc) {
        sandbox_check_abort(L);
        return lua_error(L);
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, round(seconds * 1000) / 1000);
    lua_setfield(L, -2, "seconds");
    lua_pushinteger(L, progress.tables);
    lua_setfield(L, -2, "tables");
    return 1;
}

/* dump.list(path): pg_restore --list, counted. */
static int l_list(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    free(files_confine_lua(L, host_of(L), "dump.list", path, CONFINE_ACCESS));
    int entries, tables;
    if (list_dump(L, path, &entries, &tables) != 0)
        return luaL_error(L, "dump.list %s: %s", path, err_last());
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, entries);
    lua_setfield(L, -2, "entries");
    lua_pushinteger(L, tables);
    lua_setfield(L, -2, "tables");
    return 1;
}

static int open_dump(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "pg_dump", l_pg_dump }, { "pg_restore", l_pg_restore }, { "list", l_list }, { NULL, NULL },
    };
    luaL_newlibtable(L, functions);
    lua_pushvalue(L, lua_upvalueindex(1));
    luaL_setfuncs(L, functions, 1);
    /* the file functions it had before `files` existed, confined the same way */
    filesmod_add_dump_aliases(L, host_of(L));
    return 1;
}

void dumpmod_register(sandbox *sb, dr_host *host)
{
    sandbox_add_module(sb, "dump", open_dump, host);
    filesmod_register(sb, host);
}
