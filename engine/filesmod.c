#include "filesmod.h"

#include "buf.h"
#include "drill.h"
#include "err.h"
#include "fsio.h"
#include "params.h"
#include "s3.h"
#include "term.h"
#include "timefmt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A text a runbook reads whole into its memory: a manifest, not a dump. */
#define READ_TEXT_LIMIT (16u << 20)

static dr_host *host_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* "files.read_text" or "dump.read_text": the name the runbook called. */
static const char *name_of(lua_State *L, const char *function, char out[48])
{
    const char *module = lua_tostring(L, lua_upvalueindex(2));
    snprintf(out, 48, "%s.%s", module ? module : "files", function);
    return out;
}

/* ---- checksums and sizes ------------------------------------------------------------------ */

static int file_sha256(const char *path, unsigned char digest[32])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return err_set(DR_EFAIL, "cannot read %s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    static char chunk[1 << 16];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        EVP_DigestUpdate(ctx, chunk, (size_t)n);
    int rc = n < 0 ? err_set(DR_EFAIL, "cannot read %s: %s", path, strerror(errno)) : 0;
    unsigned int len = 32;
    EVP_DigestFinal_ex(ctx, digest, &len);
    EVP_MD_CTX_free(ctx);
    close(fd);
    return rc;
}

static void to_hex(const unsigned char digest[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int files_sha256(const char *path, char out[65])
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return err_set(DR_EFAIL, "cannot read %s: %s", path, strerror(errno));
    unsigned char digest[32];
    if (!S_ISDIR(st.st_mode)) {
        int rc = file_sha256(path, digest);
        if (rc == 0)
            to_hex(digest, out);
        return rc;
    }
    DIR *d = opendir(path);
    if (!d)
        return err_set(DR_EFAIL, "cannot read %s: %s", path, strerror(errno));
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        names = xrealloc(names, (count + 1) * sizeof *names);
        names[count++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (count > 1) /* an empty folder leaves names NULL, which qsort may not take */
        qsort(names, count, sizeof *names, compare_names);
    buf listing = BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        char *file = xasprintf("%s/%s", path, names[i]);
        char hex[65];
        if (rc == 0 && (rc = file_sha256(file, digest)) == 0) {
            to_hex(digest, hex);
            buf_printf(&listing, "%s %s\n", names[i], hex);
        }
        free(file);
        free(names[i]);
    }
    free(names);
    if (rc == 0) {
        EVP_Digest(listing.data ? listing.data : "", listing.len, digest, NULL, EVP_sha256(), NULL);
        to_hex(digest, out);
    }
    buf_dispose(&listing);
    return rc;
}

long long files_size_of(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return (long long)st.st_size;
    long long total = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *file = xasprintf("%s/%s", path, e->d_name);
        total += files_size_of(file);
        free(file);
    }
    if (d)
        closedir(d);
    return total;
}

void files_report_upload(void *ud, long long done, long long total)
{
    (void)ud;
    term_info("    upload: %.1f of %.1f MB", done / 1e6, total / 1e6);
}

/* ---- the run and its folders ---------------------------------------------------------------- */

static char *run_folder_path(const char *run_id)
{
    char *cwd = getcwd(NULL, 0);
    if (!cwd) {
        err_set(DR_EFAIL, "cannot read the working directory: %s", strerror(errno));
        return NULL;
    }
    char *path = xasprintf("%s/.drctl/runs/%s", strcmp(cwd, "/") == 0 ? "" : cwd, run_id);
    free(cwd);
    return path;
}

void files_begin_run(dr_host *host, const char *run_id, const param_spec *specs, size_t count, cJSON *const *params)
{
    host->run_id = run_id;
    host->param_specs = specs;
    host->param_count = count;
    host->params = params;
}

void files_end_run(dr_host *host, const char *run_id, int finished)
{
    host->run_id = NULL;
    host->param_specs = NULL;
    host->param_count = 0;
    host->params = NULL;
    if (!finished || !run_id)
        return;
    char *folder = run_folder_path(run_id);
    if (folder && fsio_remove_tree(folder) != 0)
        term_warn("the run's folder %s is left: %s", folder, err_last());
    free(folder);
}

void files_allowed_folders(confine_roots *roots, const dr_host *host)
{
    *roots = (confine_roots)CONFINE_ROOTS_INIT;
    if (!host->run_id)
        return;
    for (size_t i = 0; i < host->param_count; i++) {
        const param_spec *spec = &host->param_specs[i];
        const cJSON *value = host->params ? cJSON_GetObjectItemCaseSensitive(*host->params, spec->name) : NULL;
        if (spec->type != PARAM_PATH || !cJSON_IsString(value) || s3_is_url(value->valuestring))
            continue;
        if (confine_roots_add(roots, value->valuestring) != 0) /* unresolvable: nothing in it is allowed */
            term_debug("the folder of param %s is not allowed: %s", spec->name, err_last());
    }
    char *folder = run_folder_path(host->run_id);
    if (folder)
        confine_roots_add(roots, folder);
    free(folder);
}

char *files_confine_lua(lua_State *L, const dr_host *host, const char *what, const char *path,
                        confine_purpose purpose)
{
    confine_roots roots;
    files_allowed_folders(&roots, host);
    char *resolved;
    int rc = confine_check(&resolved, &roots, path, purpose);
    confine_roots_dispose(&roots);
    if (rc) {
        lua_pushfstring(L, "%s refused: %s", what, err_last());
        lua_error(L);
    }
    return resolved;
}

/* ---- Lua ----------------------------------------------------------------------------------- */

/* A plan must not act: raises in plan mode, after freeing what the caller
 * held (the path it checked first, so that a path outside the allowed
 * folders is told so, in a plan too). */
static void refuse_in_plan(lua_State *L, const char *what, char *held)
{
    if (!host_of(L)->plan_mode)
        return;
    free(held);
    luaL_error(L, "%s is refused in plan mode (a plan must not act)", what);
}

/* Journals a file or S3 operation; raises on failure (after the journal). */
static int record_operation(lua_State *L, const char *tool, const char *url, int rc, double t0)
{
    dr_host *host = host_of(L);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "url", url);
    cJSON_AddNumberToObject(data, "duration_ms", round((timefmt_monotonic() - t0) * 1000));
    if (rc)
        cJSON_AddStringToObject(data, "error", err_last());
    lua_pushstring(L, err_last());
    cJSON_AddStringToObject(data, "tool", tool);
    int jrc = host->event ? host->event(host->ud, "dump", data) : (cJSON_Delete(data), 0);
    if (jrc != 0 && rc == 0)
        return luaL_error(L, "cannot record the dump event: %s", err_last());
    if (rc) {
        sandbox_check_abort(L);
        return lua_error(L);
    }
    lua_pop(L, 1);
    return 0;
}

/* A temporary file name in TMPDIR (the file itself removed: callers make it). */
static char *temp_name(void)
{
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *path = xasprintf("%s/drctl-text-XXXXXX", tmp);
    int fd = mkstemp(path);
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    return path;
}

/* A whole regular file of at most READ_TEXT_LIMIT bytes; the last
 * component is never followed (it was checked as it is). */
static int read_small_file(char **out, size_t *len, const char *path, const char *shown)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return err_set(DR_EFAIL, "cannot read %s: %s", shown, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = err_set(DR_EFAIL, "cannot read %s: %s", shown, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = err_set(DR_EFAIL, "%s is not a file", shown);
    else if ((unsigned long long)st.st_size > READ_TEXT_LIMIT)
        rc = err_set(DR_EFAIL, "%s holds %lld bytes, more than the 16 MiB a text may have", shown,
                     (long long)st.st_size);
    char *text = rc ? NULL : xmalloc((size_t)st.st_size + 1);
    size_t have = 0;
    while (rc == 0 && have <= READ_TEXT_LIMIT) {
        ssize_t n = read(fd, text + have, (size_t)st.st_size - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = err_set(DR_EFAIL, "cannot read %s: %s", shown, strerror(errno));
        if (n <= 0)
            break;
        have += (size_t)n;
        if (have == (size_t)st.st_size)
            break;
    }
    close(fd);
    if (rc) {
        free(text);
        return rc;
    }
    text[have] = '\0';
    *out = text;
    *len = have;
    return 0;
}

/* files.read_text(path or url) -> text */
static int l_read_text(lua_State *L)
{
    const char *where = luaL_checkstring(L, 1);
    char name[48];
    name_of(L, "read_text", name);
    char *local = s3_is_url(where) ? NULL : files_confine_lua(L, host_of(L), name, where, CONFINE_ACCESS);
    char *tmp = local ? NULL : temp_name();
    int rc = tmp ? s3_download(where, tmp) : 0;
    char *text = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = read_small_file(&text, &len, local ? local : tmp, where);
    if (tmp)
        unlink(tmp);
    free(tmp);
    free(local);
    if (rc)
        return luaL_error(L, "%s %s: %s", name, where, err_last());
    lua_pushlstring(L, text, len);
    free(text);
    return 1;
}

/* files.write_text(path or url, text): a small file (a manifest), never
 * overwriting one. */
static int l_write_text(lua_State *L)
{
    const char *where = luaL_checkstring(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    char name[48];
    name_of(L, "write_text", name);
    char *local = s3_is_url(where) ? NULL : files_confine_lua(L, host_of(L), name, where, CONFINE_ACCESS);
    refuse_in_plan(L, name, local);
    double t0 = timefmt_monotonic();
    int rc;
    if (!local) {
        char *tmp = temp_name(), hex[65];
        rc = fsio_write_durable(tmp, text, len);
        if (rc == 0 && (rc = files_sha256(tmp, hex)) == 0)
            rc = s3_upload(tmp, where, hex, NULL, NULL);
        unlink(tmp);
        free(tmp);
    } else {
        struct stat st;
        rc = lstat(local, &st) == 0 ? err_set(DR_EFAIL, "%s already exists; it is not overwritten", where)
                                    : fsio_write_durable(local, text, len);
        free(local);
    }
    record_operation(L, "write", where, rc, t0);
    return 0;
}

/* files.delete(path or "s3://..."): absent is not an error. */
static int l_delete(lua_State *L)
{
    const char *what = luaL_checkstring(L, 1);
    char name[48];
    name_of(L, "delete", name);
    dr_host *host = host_of(L);
    char *local = s3_is_url(what) ? NULL : files_confine_lua(L, host, name, what, CONFINE_REMOVE);
    refuse_in_plan(L, name, local);
    if (host->drill && !drill_scope_owns_path(host->drill, what)) {
        free(local);
        lua_pushfstring(L, "the drill refused %s %s: a drill deletes only what it made", name, what);
        return drill_refuse_lua(L, host, lua_tostring(L, -1));
    }
    double t0 = timefmt_monotonic();
    int rc = local ? fsio_remove_tree(local) : s3_delete(what);
    free(local);
    record_operation(L, "delete", what, rc, t0);
    return 0;
}

static void push_file_entry(lua_State *L, const char *url, const char *key, long long size, const char *modified)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, url);
    lua_setfield(L, -2, "url");
    lua_pushstring(L, key);
    lua_setfield(L, -2, "key");
    lua_pushinteger(L, size);
    lua_setfield(L, -2, "size");
    lua_pushstring(L, modified);
    lua_setfield(L, -2, "last_modified");
}

/* The entries of a local folder, as S3 objects are listed: urls in the
 * form the folder was given, links described, not followed. */
static int list_local(lua_State *L, const char *name, const char *dir)
{
    char *local = files_confine_lua(L, host_of(L), name, dir, CONFINE_ACCESS);
    DIR *d = opendir(local);
    if (!d) {
        int saved = errno;
        free(local);
        if (saved == ENOENT) {
            lua_newtable(L);
            return 1;
        }
        return luaL_error(L, "%s %s: %s", name, dir, strerror(saved));
    }
    lua_newtable(L);
    lua_Integer n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *real = xasprintf("%s/%s", local, e->d_name);
        char *url = xasprintf("%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        struct stat st;
        if (lstat(real, &st) == 0) {
            char modified[48];
            timefmt_format_utc(modified, sizeof modified, (double)st.st_mtime);
            push_file_entry(L, url, e->d_name, files_size_of(real), modified);
            lua_rawseti(L, -2, ++n);
        }
        free(url);
        free(real);
    }
    closedir(d);
    free(local);
    return 1;
}

/* files.list("s3://bucket/prefix" or a folder) -> {{url=, key=, size=, last_modified=}, ...} */
static int l_list(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    char name[48];
    name_of(L, "list", name);
    if (!s3_is_url(url))
        return list_local(L, name, url);
    s3_object *objects;
    size_t count;
    if (s3_list(&objects, &count, url) != 0)
        return luaL_error(L, "%s %s: %s", name, url, err_last());
    const char *slash = strchr(url + 5, '/');
    size_t bucket_len = slash ? (size_t)(slash - url) : strlen(url);
    lua_createtable(L, (int)count, 0);
    for (size_t i = 0; i < count; i++) {
        char *object_url = xasprintf("%.*s/%s", (int)bucket_len, url, objects[i].key ? objects[i].key : "");
        push_file_entry(L, object_url, objects[i].key ? objects[i].key : "", objects[i].size,
                        objects[i].last_modified ? objects[i].last_modified : "");
        free(object_url);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    s3_objects_free(objects, count);
    return 1;
}

static int l_sha256(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char name[48], hex[65];
    name_of(L, "sha256", name);
    char *local = files_confine_lua(L, host_of(L), name, path, CONFINE_ACCESS);
    int rc = files_sha256(local, hex);
    free(local);
    if (rc != 0)
        return luaL_error(L, "%s: %s", name, err_last());
    lua_pushstring(L, hex);
    return 1;
}

/* files.upload(path, "s3://bucket/key") -> {url=, bytes=, sha256=} */
static int l_upload(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1), *url = luaL_checkstring(L, 2);
    char name[48];
    name_of(L, "upload", name);
    char *local = files_confine_lua(L, host_of(L), name, path, CONFINE_ACCESS);
    refuse_in_plan(L, name, local);
    char hex[65];
    double t0 = timefmt_monotonic();
    int rc = files_sha256(local, hex);
    if (rc == 0)
        rc = s3_upload(local, url, hex, files_report_upload, NULL);
    long long bytes = files_size_of(local);
    free(local);
    record_operation(L, "s3-upload", url, rc, t0);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, url);
    lua_setfield(L, -2, "url");
    lua_pushinteger(L, bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushstring(L, hex);
    lua_setfield(L, -2, "sha256");
    return 1;
}

/* files.download("s3://bucket/key", path) -> path */
static int l_download(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1), *path = luaL_checkstring(L, 2);
    char name[48];
    name_of(L, "download", name);
    char *local = files_confine_lua(L, host_of(L), name, path, CONFINE_ACCESS);
    refuse_in_plan(L, name, local);
    double t0 = timefmt_monotonic();
    int rc = s3_download(url, local);
    free(local);
    record_operation(L, "s3-download", url, rc, t0);
    lua_pushstring(L, path);
    return 1;
}

/* files.run_folder() -> the run's own folder, made 0700 on first use (in a
 * plan only named: a plan makes nothing). */
static int l_run_folder(lua_State *L)
{
    dr_host *host = host_of(L);
    if (!host->run_id)
        return luaL_error(L, "files.run_folder() is for a run's steps: there is no run here");
    char *folder = run_folder_path(host->run_id);
    if (!folder)
        return luaL_error(L, "files.run_folder(): %s", err_last());
    if (!host->plan_mode) {
        char *runs = fsio_dirname(folder);
        int rc = fsio_mkdirs(runs, 0755);
        free(runs);
        if (rc == 0 && mkdir(folder, 0700) != 0 && errno != EEXIST)
            rc = err_set(DR_EFAIL, "cannot create %s: %s", folder, strerror(errno));
        if (rc) {
            lua_pushfstring(L, "files.run_folder(): %s", err_last());
            free(folder);
            return lua_error(L);
        }
    }
    lua_pushstring(L, folder);
    free(folder);
    return 1;
}

void filesmod_add_dump_aliases(lua_State *L, dr_host *host)
{
    static const luaL_Reg aliases[] = {
        { "sha256", l_sha256 }, { "upload", l_upload }, { "download", l_download }, { "list_remote", l_list },
        { "list_files", l_list }, { "delete", l_delete }, { "write_text", l_write_text },
        { "read_text", l_read_text }, { NULL, NULL },
    };
    lua_pushlightuserdata(L, host);
    lua_pushstring(L, "dump");
    luaL_setfuncs(L, aliases, 2);
}

static int open_files(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "read_text", l_read_text }, { "write_text", l_write_text }, { "delete", l_delete },
        { "list", l_list }, { "sha256", l_sha256 }, { "upload", l_upload }, { "download", l_download },
        { "run_folder", l_run_folder }, { NULL, NULL },
    };
    luaL_newlibtable(L, functions);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushstring(L, "files");
    luaL_setfuncs(L, functions, 2);
    return 1;
}

void filesmod_register(sandbox *sb, dr_host *host)
{
    sandbox_add_module(sb, "files", open_files, host);
}
