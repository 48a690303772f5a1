#include "nl_pg.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Runs argv as the server user; its output goes to log (appended). */
static int run_as_server(char *const argv[], const char *log)
{
    uid_t uid;
    gid_t gid;
    int rc = server_user(&uid, &gid);
    if (rc)
        return rc;
    pid_t pid = fork();
    if (pid < 0)
        return err_set(DR_EFAIL, "cannot start %s: %s", argv[0], strerror(errno));
    if (pid == 0) {
        /* Privileges first, so that the log belongs to the server's user
         * (pg_ctl appends to it later as that user). */
        if (geteuid() == 0 && (setgid(gid) != 0 || setuid(uid) != 0))
            _exit(126);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        execv(argv[0], argv);
        _exit(127);
    }
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

int nl_pg_initdb(const char *datadir)
{
    char *parent = fsio_dirname(datadir);
    int rc = fsio_mkdirs(parent, 0755);
    if (rc == 0)
        rc = nl_pg_own(parent);
    char *initdb = xasprintf("%s/initdb", nl_pg_bindir());
    char *log = log_path(datadir);
    char *argv[] = { initdb, "-D", (char *)datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                     "--no-instructions", NULL };
    if (rc == 0)
        rc = run_as_server(argv, log);
    if (rc == 0) {
        /* Roles log in with their passwords, as on Neon; only neon-local's
         * own superuser connections from 127.0.0.1 are trusted. Branches
         * inherit this file with their data. */
        static const char hba[] = "host all postgres 127.0.0.1/32 trust\n"
                                  "host replication postgres 127.0.0.1/32 trust\n"
                                  "host all all 127.0.0.1/32 scram-sha-256\n";
        char *path = xasprintf("%s/pg_hba.conf", datadir);
        rc = fsio_write_durable(path, hba, sizeof hba - 1);
        if (rc == 0)
            rc = nl_pg_own(path);
        free(path);
    }
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
        rc = run_as_server(argv, log);
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
    int rc = run_as_server(argv, log);
    free(program);
    free(log);
    return rc;
}

int nl_pg_start(const char *datadir)
{
    return pg_ctl(datadir, "start");
}

int nl_pg_stop(const char *datadir)
{
    return pg_ctl(datadir, "stop");
}

int nl_pg_sql(int port, const char *dbname, const char *sql)
{
    char *conninfo = xasprintf("host=127.0.0.1 port=%d user=postgres dbname=%s connect_timeout=10", port, dbname);
    PGconn *conn = PQconnectdb(conninfo);
    free(conninfo);
    int rc = 0;
    if (PQstatus(conn) != CONNECTION_OK) {
        rc = err_set(DR_EFAIL, "cannot connect to the server on port %d: %s", port, PQerrorMessage(conn));
    } else {
        PGresult *res = PQexec(conn, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            rc = err_set(DR_EFAIL, "SQL failed on port %d: %s", port, PQresultErrorMessage(res));
        PQclear(res);
    }
    PQfinish(conn);
    return rc;
}

/* The first value of a query, as text (caller frees), or NULL. */
static char *sql_value(int port, const char *sql)
{
    char *conninfo = xasprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=10", port);
    PGconn *conn = PQconnectdb(conninfo);
    free(conninfo);
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
        rc = run_as_server(argv, log);
    free(log);
    free(parent);
    return rc;
}

int nl_pg_recover_to(const char *datadir, int port, const char *archive_dir, const char *source_archive,
                     const char *target_setting)
{
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

int nl_free_port(void)
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
