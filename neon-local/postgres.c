#include "postgres.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *nl_pg_bindir(void)
{
    static const char *const candidates[] = { "/usr/lib/postgresql/15/bin", "/usr/local/pgsql/bin", NULL };
    for (const char *const *c = candidates; *c; c++) {
        char *initdb = xasprintf("%s/initdb", *c);
        int found = access(initdb, X_OK) == 0;
        free(initdb);
        if (found)
            return *c;
    }
    return "";
}

/* The user the servers run as: postgres when we are root, else ourselves. */
static int server_user(uid_t *uid, gid_t *gid)
{
    if (geteuid() != 0) {
        *uid = geteuid();
        *gid = getegid();
        return 0;
    }
    struct passwd *pw = getpwnam("postgres");
    if (!pw)
        return err_set(DR_EFAIL, "neon-local runs as root, and PostgreSQL refuses root, but there is no "
                       "'postgres' user to run it as (apt-get install postgresql-15 creates it)");
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

int nl_pg_own(const char *path)
{
    uid_t uid;
    gid_t gid;
    int rc = server_user(&uid, &gid);
    if (rc)
        return rc;
    if (chown(path, uid, gid) != 0)
        return err_set(DR_EFAIL, "cannot give %s to the PostgreSQL user: %s", path, strerror(errno));
    return 0;
}

/* The superuser's password, one for every server (branches inherit it with
 * their data); set by nl_pg_load_superuser_password before any server is
 * touched. */
static char *superuser_password;

static int random_hex(char *out, size_t bytes)
{
    unsigned char raw[32];
    if (bytes > sizeof raw)
        return err_set(DR_EFAIL, "cannot make a secret of %zu bytes", bytes);
    FILE *f = fopen("/dev/urandom", "rb");
    int ok = f && fread(raw, 1, bytes, f) == bytes;
    if (f)
        fclose(f);
    if (!ok)
        return err_set(DR_EFAIL, "cannot read /dev/urandom to make the superuser password");
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    explicit_bzero(raw, sizeof raw);
    return 0;
}

/* A password neon-local wrote: long, and plain enough to sit in SQL quotes
 * and a pgpass line unescaped. */
static int plain_password(const char *text)
{
    size_t n = strlen(text);
    if (n < 16)
        return 0;
    for (const char *c = text; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return 0;
    return 1;
}

static int read_password_file(const char *path, char **out)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set(DR_EFAIL, "cannot read %s: %s", path, strerror(errno));
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return err_set(DR_EUSAGE, "%s can be read by other users (mode %03o); it holds the servers' superuser "
                       "password: chmod 600 %s", path, (unsigned)(st.st_mode & 0777), path);
    char *text = NULL;
    int rc = fsio_read_file(&text, NULL, path);
    if (rc)
        return rc;
    text[strcspn(text, "\r\n")] = '\0';
    if (!plain_password(text)) {
        explicit_bzero(text, strlen(text));
        free(text);
        return err_set(DR_EUSAGE, "%s does not hold a password neon-local wrote (one line of at least 16 letters, "
                       "digits or '_'); put back the file it wrote, whose password the servers know", path);
    }
    *out = text;
    return 0;
}

static int write_new_password_file(const char *path, char **out)
{
    char hex[2 * 24 + 1];
    int rc = random_hex(hex, 24);
    if (rc)
        return rc;
    char *text = xasprintf("nls_%s\n", hex);
    explicit_bzero(hex, sizeof hex);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
        rc = err_set(DR_EFAIL, "cannot write %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (rc == 0) {
        char *dir = fsio_dirname(path);
        rc = fsio_fsync_dir(dir);
        free(dir);
    }
    text[len - 1] = '\0';
    if (rc) {
        explicit_bzero(text, len);
        free(text);
        return rc;
    }
    *out = text;
    return 0;
}

int nl_pg_load_superuser_password(const char *data_dir, int *created)
{
    char *path = xasprintf("%s/superuser-password", data_dir);
    char *password = NULL;
    *created = !fsio_exists(path);
    int rc = *created ? write_new_password_file(path, &password) : read_password_file(path, &password);
    free(path);
    if (rc)
        return rc;
    nl_pg_forget_superuser_password();
    superuser_password = password;
    return 0;
}

void nl_pg_forget_superuser_password(void)
{
    if (superuser_password) {
        explicit_bzero(superuser_password, strlen(superuser_password));
        free(superuser_password);
    }
    superuser_password = NULL;
}

/* The environment for a child: ours, with PGPASSWORD set to the superuser's
 * password when it connects to a server (pg_basebackup), and no password of
 * the caller's. Built before fork: the child of a threaded process may not
 * allocate. Free with free_environment. */
static char **child_environment(int with_password)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = xcalloc(n + 2, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "PGPASSWORD=", 11) != 0 && strncmp(environ[i], "PGPASSFILE=", 11) != 0)
            env[k++] = environ[i];
    if (with_password && superuser_password)
        env[k++] = xasprintf("PGPASSWORD=%s", superuser_password);
    env[k] = NULL;
    return env;
}

static void free_environment(char **env, int with_password)
{
    if (with_password && superuser_password) {
        for (char **e = env; *e; e++) {
            if (strncmp(*e, "PGPASSWORD=", 11) == 0) {
                explicit_bzero(*e, strlen(*e));
                free(*e);
            }
        }
    }
    free(env);
}

/* In the child: stdin from a pipe holding input (made after dropping
 * privileges, so that the server's user may open /dev/stdin), or from
 * /dev/null. The input is small: it fits in the pipe before anyone reads. */
static void child_stdin(const char *input)
{
    int fds[2];
    if (input && pipe(fds) == 0) {
        size_t len = strlen(input);
        if (write(fds[1], input, len) != (ssize_t)len)
            _exit(126);
        close(fds[1]);
        dup2(fds[0], 0);
        close(fds[0]);
        return;
    }
    if (input)
        _exit(126);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
}

/* Runs argv as the server user; its output goes to log (appended), its
 * stdin is input (may be NULL). with_password gives it the superuser's
 * password in its environment, never in its arguments. */
static int run_as_server(char *const argv[], const char *log, const char *input, int with_password)
{
    uid_t uid;
    gid_t gid;
    int rc = server_user(&uid, &gid);
    if (rc)
        return rc;
    char **env = child_environment(with_password);
    pid_t pid = fork();
    if (pid < 0) {
        free_environment(env, with_password);
        return err_set(DR_EFAIL, "cannot start %s: %s", argv[0], strerror(errno));
    }
    if (pid == 0) {
        /* Privileges first, so that the log belongs to the server's user
         * (pg_ctl appends to it later as that user). */
        if (geteuid() == 0 && (setgid(gid) != 0 || setuid(uid) != 0))
            _exit(126);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        child_stdin(input);
        execve(argv[0], argv, env);
        _exit(127);
    }
    free_environment(env, with_password);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return err_set(DR_EFAIL, "%s failed (exit %d); see %s", argv[0],
                       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), log);
    return 0;
}

static char *log_path(const char *datadir)
{
    return xasprintf("%s.log", datadir);
}

/* Every login needs a password, the superuser's too: on 127.0.0.1, only a
 * password tells neon-local's own connections from another local user's,
 * which trust cannot. Replication (pg_basebackup) needs it as well. The
 * first line marks a file written this way: a data folder from an older
 * neon-local has another one, and no superuser password. */
static const char hba_text[] = "# neon-local: every login needs its password (scram-sha-256), the superuser's too\n"
                               "host all all 127.0.0.1/32 scram-sha-256\n"
                               "host replication postgres 127.0.0.1/32 scram-sha-256\n";

static char *in_datadir(const char *datadir, const char *name)
{
    return xasprintf("%s/%s", datadir, name);
}

static int hba_is_current(const char *datadir)
{
    char *path = in_datadir(datadir, "pg_hba.conf");
    char *text = NULL;
    size_t len = 0;
    int current = fsio_read_file(&text, &len, path) == 0 && len == sizeof hba_text - 1 &&
                  memcmp(text, hba_text, len) == 0;
    free(text);
    free(path);
    return current;
}

static int write_hba(const char *datadir)
{
    char *path = in_datadir(datadir, "pg_hba.conf");
    int rc = fsio_write_durable_mode(path, hba_text, sizeof hba_text - 1, 0600);
    if (rc == 0)
        rc = nl_pg_own(path);
    free(path);
    return rc;
}

/* Sets the superuser's password on a stopped server, in single-user mode:
 * no connection is open meanwhile, and the password goes in on stdin. An
 * error ends the run (exit_on_error) and never logs the statement. */
static int set_password_offline(const char *datadir)
{
    if (!superuser_password)
        return err_set(DR_EFAIL, "no superuser password loaded (nl_pg_load_superuser_password)");
    char *postgres = xasprintf("%s/postgres", nl_pg_bindir());
    char *log = log_path(datadir);
    char *argv[] = { postgres, "--single", "-D", (char *)datadir, "-c", "exit_on_error=on",
                     "-c", "log_min_error_statement=panic", "-c", "log_statement=none",
                     "-c", "log_min_duration_statement=-1", "-c", "password_encryption=scram-sha-256",
                     "postgres", NULL };
    char *input = xasprintf("ALTER ROLE postgres PASSWORD '%s'\n", superuser_password);
    int rc = run_as_server(argv, log, input, 0);
    explicit_bzero(input, strlen(input));
    free(input);
    free(postgres);
    free(log);
    return rc;
}

int nl_pg_initdb(const char *datadir)
{
    if (!superuser_password)
        return err_set(DR_EFAIL, "no superuser password loaded (nl_pg_load_superuser_password)");
    char *parent = fsio_dirname(datadir);
    int rc = fsio_mkdirs(parent, 0755);
    if (rc == 0)
        rc = nl_pg_own(parent);
    char *initdb = xasprintf("%s/initdb", nl_pg_bindir());
    char *log = log_path(datadir);
    char *argv[] = { initdb, "-D", (char *)datadir, "-U", "postgres", "--auth=scram-sha-256", "--pwfile=/dev/stdin",
                     "-E", "UTF8", "--no-instructions", NULL };
    char *input = xasprintf("%s\n", superuser_password);
    if (rc == 0)
        rc = run_as_server(argv, log, input, 0);
    explicit_bzero(input, strlen(input));
    free(input);
    /* Branches inherit this file, and the password, with their data. */
    if (rc == 0)
        rc = write_hba(datadir);
    free(initdb);
    free(log);
    free(parent);
    return rc;
}

int nl_pg_basebackup(int source_port, const char *datadir)
{
    char *parent = fsio_dirname(datadir);
    int rc = fsio_mkdirs(parent, 0755);
    if (rc == 0)
        rc = nl_pg_own(parent);
    char *program = xasprintf("%s/pg_basebackup", nl_pg_bindir());
    char *port = xasprintf("%d", source_port);
    char *log = log_path(datadir);
    char *argv[] = { program, "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-D", (char *)datadir,
                     "-X", "stream", "-c", "fast", "--no-manifest", "--no-password", NULL };
    if (rc == 0)
        rc = run_as_server(argv, log, NULL, 1);
    free(program);
    free(port);
    free(log);
    free(parent);
    return rc;
}

int nl_pg_configure(const char *datadir, int port, const char *archive_dir, const char *extra)
{
    int rc = fsio_mkdirs(archive_dir, 0755);
    if (rc == 0)
        rc = nl_pg_own(archive_dir);
    if (rc)
        return rc;
    char *conf = xasprintf("%s/postgresql.auto.conf", datadir);
    /* test -f keeps an existing segment: archiving must never overwrite. */
    /* No Unix sockets: their lock files would sit in the data folder and
     * travel with every base backup, stopping the copies from starting. */
    char *text = xasprintf("port = %d\n"
                           "listen_addresses = '127.0.0.1'\n"
                           "unix_socket_directories = ''\n"
                           "wal_level = replica\n"
                           "archive_mode = on\n"
                           "archive_command = 'test ! -f %s/%%f && cp %%p %s/%%f'\n"
                           "archive_timeout = 60\n"
                           "max_wal_senders = 4\n%s",
                           port, archive_dir, archive_dir, extra ? extra : "");
    rc = fsio_write_durable(conf, text, strlen(text));
    if (rc == 0)
        rc = nl_pg_own(conf);
    free(conf);
    free(text);
    return rc;
}

static int pg_ctl(const char *datadir, const char *action)
{
    char *program = xasprintf("%s/pg_ctl", nl_pg_bindir());
    char *log = log_path(datadir);
    char *argv[] = { program, (char *)action, "-D", (char *)datadir, "-w", "-l", log, "-m", "fast", NULL };
    if (strcmp(action, "start") == 0)
        argv[7] = NULL; /* -m applies to stop only */
    int rc = run_as_server(argv, log, NULL, 0);
    free(program);
    free(log);
    return rc;
}

int nl_pg_secure(const char *datadir, int force)
{
    char *version = in_datadir(datadir, "PG_VERSION");
    char *pid = in_datadir(datadir, "postmaster.pid");
    char *recovering = in_datadir(datadir, "recovery.signal");
    int rc = 0;
    if (!fsio_exists(version) || (!force && hba_is_current(datadir)))
        goto cleanup; /* not a data folder yet, or already closed */
    /* A server that runs with the old rule is open: it stops first. A stale
     * postmaster.pid fails pg_ctl but not single-user mode, which checks it. */
    if (fsio_exists(pid))
        (void)pg_ctl(datadir, "stop");
    /* A server still replaying WAL gets its password when it is promoted
     * (nl_pg_recover_to); single-user mode would replay it. */
    if (!fsio_exists(recovering))
        rc = set_password_offline(datadir);
    if (rc == 0)
        rc = write_hba(datadir);
    if (rc)
        err_set(rc, "cannot make %s require the superuser password: %s", datadir, err_last());
cleanup:
    free(version);
    free(pid);
    free(recovering);
    return rc;
}

/* The certificate and key every server presents (nl_pg_use_tls); NULL:
 * servers without TLS. */
static char *tls_cert, *tls_key;

void nl_pg_use_tls(const char *cert_path, const char *key_path)
{
    free(tls_cert);
    free(tls_key);
    tls_cert = cert_path ? xstrdup(cert_path) : NULL;
    tls_key = key_path ? xstrdup(key_path) : NULL;
}

/* A path as a quoted value of postgresql.conf ('' for '); a newline has no
 * quoting there and is refused. */
static int conf_quote(buf *out, const char *path)
{
    if (strpbrk(path, "\r\n"))
        return err_set(DR_EUSAGE, "the path %s holds a line break, which PostgreSQL's settings cannot quote: "
                       "move neon-local's data folder to a path without one", path);
    buf_putc(out, '\'');
    for (const char *c = path; *c; c++) {
        if (*c == '\'')
            buf_putc(out, '\'');
        buf_putc(out, *c);
    }
    buf_putc(out, '\'');
    return 0;
}

/* postgresql.auto.conf's TLS settings made the current ones, whatever
 * wrote the rest of it: an older neon-local, or the branch a base backup
 * came from. */
static int write_tls_settings(const char *datadir)
{
    char *conf = in_datadir(datadir, "postgresql.auto.conf");
    char *text = NULL;
    buf b = BUF_INIT;
    int rc = fsio_exists(conf) ? fsio_read_file(&text, NULL, conf) : 0;
    for (char *save = NULL, *line = text ? strtok_r(text, "\n", &save) : NULL; rc == 0 && line;
         line = strtok_r(NULL, "\n", &save))
        if (strncmp(line, "ssl", 3) != 0)
            buf_printf(&b, "%s\n", line);
    if (rc == 0 && tls_cert && tls_key) {
        buf_puts(&b, "ssl = on\nssl_cert_file = ");
        rc = conf_quote(&b, tls_cert);
        buf_puts(&b, "\nssl_key_file = ");
        if (rc == 0)
            rc = conf_quote(&b, tls_key);
        buf_putc(&b, '\n');
    }
    if (rc == 0)
        rc = fsio_write_durable(conf, b.data ? b.data : "", b.len);
    if (rc == 0)
        rc = nl_pg_own(conf);
    buf_dispose(&b);
    free(text);
    free(conf);
    return rc;
}

int nl_pg_start(const char *datadir)
{
    /* Never a server with an older, trusting pg_hba.conf (a copy of an
     * older data folder): it gets the password rule first. */
    int rc = nl_pg_secure(datadir, 0);
    if (rc == 0)
        rc = write_tls_settings(datadir);
    if (rc == 0)
        rc = pg_ctl(datadir, "start");
    return rc;
}

int nl_pg_stop(const char *datadir)
{
    return pg_ctl(datadir, "stop");
}

/* A connection as the superuser, its password passed in memory. */
static PGconn *connect_superuser(int port, const char *dbname)
{
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    const char *const keys[] = { "host", "port", "user", "dbname", "password", "connect_timeout", NULL };
    const char *const values[] = { "127.0.0.1", port_text, "postgres", dbname,
                                   superuser_password ? superuser_password : "", "10", NULL };
    return PQconnectdbParams(keys, values, 0);
}

int nl_pg_sql_refused(int port, const char *dbname, const char *sql, char sqlstate[6], char *why, size_t why_size)
{
    PGconn *conn = connect_superuser(port, dbname);
    int rc = 0;
    if (sqlstate)
        sqlstate[0] = '\0';
    if (PQstatus(conn) != CONNECTION_OK) {
        rc = err_set(DR_EFAIL, "cannot connect to the server on port %d: %s", port, PQerrorMessage(conn));
    } else {
        PGresult *res = PQexec(conn, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            rc = err_set(DR_EFAIL, "SQL failed on port %d: %s", port, PQresultErrorMessage(res));
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            if (sqlstate && state)
                snprintf(sqlstate, 6, "%s", state);
            if (why && why_size)
                snprintf(why, why_size, "%s", primary ? primary : "");
        }
        PQclear(res);
    }
    PQfinish(conn);
    return rc;
}

int nl_pg_sql(int port, const char *dbname, const char *sql)
{
    return nl_pg_sql_refused(port, dbname, sql, NULL, NULL, 0);
}

/* The first value of a query, as text (caller frees), or NULL. */
static char *sql_value(int port, const char *sql)
{
    PGconn *conn = connect_superuser(port, "postgres");
    char *value = NULL;
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
            value = xstrdup(PQgetvalue(res, 0, 0));
        else
            err_set(DR_EFAIL, "SQL failed on port %d: %s", port, PQresultErrorMessage(res));
        PQclear(res);
    } else {
        err_set(DR_EFAIL, "cannot connect to the server on port %d: %s", port, PQerrorMessage(conn));
    }
    PQfinish(conn);
    return value;
}

char *nl_pg_current_lsn(int port)
{
    return sql_value(port, "SELECT pg_current_wal_lsn()::text");
}

int nl_pg_is_up(int port)
{
    char *v = sql_value(port, "SELECT 1");
    int up = v != NULL;
    free(v);
    return up;
}

int nl_pg_archive_now(int port)
{
    char *xid = sql_value(port, "SELECT pg_current_xact_id()::text");
    if (!xid)
        return DR_EFAIL;
    free(xid);
    char *segment = sql_value(port, "SELECT pg_walfile_name(pg_switch_wal())");
    if (!segment)
        return DR_EFAIL;
    int rc = err_set(DR_EFAIL, "WAL segment %s was not archived within 30 s", segment);
    for (int i = 0; i < 600; i++) {
        char *last = sql_value(port, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
        int done = last && strcmp(last, segment) >= 0;
        free(last);
        if (done) {
            rc = 0;
            break;
        }
        usleep(50000);
    }
    free(segment);
    return rc;
}

int nl_pg_copy_backup(const char *backup, const char *datadir)
{
    char *parent = fsio_dirname(datadir);
    int rc = fsio_mkdirs(parent, 0755);
    if (rc == 0)
        rc = nl_pg_own(parent);
    char *log = log_path(datadir);
    char *argv[] = { "/bin/cp", "-a", (char *)backup, (char *)datadir, NULL };
    if (rc == 0)
        rc = run_as_server(argv, log, NULL, 0);
    free(log);
    free(parent);
    return rc;
}

/* The state pg_control records (PostgreSQL's DBState: 1 shut down, 2 shut
 * down in recovery, 6 in production), or -1 when unreadable. It is the
 * int32 after the system identifier, pg_control_version and
 * catalog_version_no; pg_ctl promote -w waits on it the same way. */
enum { CLUSTER_SHUT_DOWN = 1, CLUSTER_IN_PRODUCTION = 6 };

static int cluster_state(const char *datadir)
{
    char *path = in_datadir(datadir, "global/pg_control"), *data = NULL;
    size_t len = 0;
    int32_t state = -1;
    if (fsio_read_file(&data, &len, path) == 0 && len >= 20)
        memcpy(&state, data + 16, sizeof state);
    free(data);
    free(path);
    return state;
}

/* For a base backup from an older neon-local, whose superuser has no
 * password (or another one) and so cannot log in: waits until the server
 * has ended its recovery (pg_control says in production: recovery.signal
 * goes earlier, before the new timeline and the end-of-recovery checkpoint,
 * and a server stopped then is still in recovery), stops it, sets the
 * password offline and starts it again. Single-user mode on a server shut
 * down in recovery would replay all the WAL it holds, past the target. */
static int promote_then_set_password(const char *datadir, int port)
{
    char *pid = in_datadir(datadir, "postmaster.pid");
    int rc = err_set(DR_EFAIL, "the server on port %d did not finish recovery within 60 s; see %s.log", port, datadir);
    for (int i = 0; i < 1200; i++) {
        if (cluster_state(datadir) == CLUSTER_IN_PRODUCTION) {
            rc = 0;
            break;
        }
        if (!fsio_exists(pid)) {
            rc = err_set(DR_EFAIL, "the server on port %d stopped before the end of its recovery; see %s.log", port,
                         datadir);
            break;
        }
        usleep(50000);
    }
    if (rc == 0)
        rc = nl_pg_stop(datadir);
    if (rc == 0 && cluster_state(datadir) != CLUSTER_SHUT_DOWN)
        rc = err_set(DR_EFAIL, "the server on port %d stopped before the end of its recovery (pg_control state %d); "
                     "see %s.log", port, cluster_state(datadir), datadir);
    if (rc == 0)
        rc = set_password_offline(datadir);
    if (rc == 0)
        rc = pg_ctl(datadir, "start");
    free(pid);
    return rc;
}

int nl_pg_recover_to(const char *datadir, int port, const char *archive_dir, const char *source_archive,
                     const char *target_setting)
{
    int older = !hba_is_current(datadir);
    char *extra = xasprintf("restore_command = 'cp %s/%%f %%p'\n%s\nrecovery_target_action = 'promote'\n",
                            source_archive, target_setting);
    int rc = nl_pg_configure(datadir, port, archive_dir, extra);
    free(extra);
    char *signal_file = xasprintf("%s/recovery.signal", datadir);
    if (rc == 0)
        rc = fsio_write_durable(signal_file, "", 0);
    if (rc == 0)
        rc = nl_pg_own(signal_file);
    free(signal_file);
    if (rc == 0)
        rc = nl_pg_start(datadir);
    if (rc == 0 && older)
        rc = promote_then_set_password(datadir, port);
    if (rc)
        return rc;
    /* pg_ctl -w returns once connections are accepted, which a hot standby
     * does before recovery ends: wait for the promotion. */
    for (int i = 0; i < 1200; i++) {
        char *in_recovery = sql_value(port, "SELECT pg_is_in_recovery()::text");
        int promoted = in_recovery && strcmp(in_recovery, "false") == 0;
        free(in_recovery);
        if (promoted)
            return 0;
        usleep(50000);
    }
    return err_set(DR_EFAIL, "the server on port %d did not finish recovery within 60 s; see %s.log", port, datadir);
}

/* Ports handed out, or held by an endpoint of a state loaded: the kernel
 * takes a port for free from the moment the probe below closes until a
 * server binds it, and all the while an endpoint is suspended (its port is
 * kept: the connection string must not change); neither may be handed out
 * again. Never released: a process runs out of ports only after tens of
 * thousands of endpoints. */
static pthread_mutex_t ports_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char ports_claimed[65536 / 8];

/* Claims PORT; 0 when it was claimed already. */
static int port_claim(int port)
{
    if (port <= 0 || port > 65535)
        return 1;
    pthread_mutex_lock(&ports_lock);
    unsigned char bit = (unsigned char)(1u << (port % 8));
    int fresh = !(ports_claimed[port / 8] & bit);
    ports_claimed[port / 8] |= bit;
    pthread_mutex_unlock(&ports_lock);
    return fresh;
}

int nl_port_is_claimed(int port)
{
    if (port <= 0 || port > 65535)
        return 0;
    pthread_mutex_lock(&ports_lock);
    int claimed = (ports_claimed[port / 8] >> (port % 8)) & 1;
    pthread_mutex_unlock(&ports_lock);
    return claimed;
}

void nl_ports_claim_in(const cJSON *node)
{
    for (const cJSON *c = node ? node->child : NULL; c; c = c->next) {
        if (c->string && !strcmp(c->string, NL_PORT) && cJSON_IsNumber(c))
            (void)port_claim(c->valueint);
        else if (cJSON_IsObject(c) || cJSON_IsArray(c))
            nl_ports_claim_in(c);
    }
}

/* A port the kernel sees free on 127.0.0.1 now, or -1. */
static int probe_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int nl_free_port(void)
{
    int port = -1;
    for (int attempt = 0; attempt < 256; attempt++) {
        port = probe_free_port();
        if (port < 0 || port_claim(port))
            return port;
    }
    return port; /* nearly every port claimed: the kernel's last pick, free for now */
}
