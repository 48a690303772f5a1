#include "cmd_config.h"

#include "audit.h"
#include "audit_remote.h"
#include "buf.h"
#include "config.h"
#include "err.h"
#include "fsio.h"
#include "identity.h"
#include "term.h"
#include "timefmt.h"

#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- where each setting came from ------------------------------------------------------ */

/* The commit that last changed key: its subject is "config: VERB KEY". */
typedef struct source {
    char commit[GIT_OID_HEXSZ + 1];
    char *author;
    char date[40];
} source;

static int names_key(const char *message, const char *key)
{
    if (strncmp(message, "config: ", 8) != 0)
        return 0;
    const char *verb_end = strchr(message + 8, ' ');
    if (!verb_end)
        return 0;
    size_t len = strlen(key);
    return strncmp(verb_end + 1, key, len) == 0 && strchr(" \n", verb_end[1 + len]) && verb_end[1 + len];
}

/* Fills sources[i] for each known key from the newest settings commits. */
static void find_sources(source *sources, const config_key *keys, size_t key_count, const char *dir)
{
    git_repository *repo = NULL;
    git_revwalk *walk = NULL;
    if (git_repository_open_ext(&repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) != 0 ||
        git_revwalk_new(&walk, repo) != 0 || git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL) != 0 ||
        git_revwalk_push_head(walk) != 0)
        goto cleanup;
    size_t found = 0;
    git_oid oid;
    while (found < key_count && git_revwalk_next(&oid, walk) == 0) {
        git_commit *commit = NULL;
        if (git_commit_lookup(&commit, repo, &oid) != 0)
            continue;
        const char *message = git_commit_message(commit);
        for (size_t i = 0; i < key_count; i++) {
            if (sources[i].commit[0] || !names_key(message, keys[i].name))
                continue;
            git_oid_tostr(sources[i].commit, sizeof sources[i].commit, &oid);
            const git_signature *author = git_commit_author(commit);
            sources[i].author = xasprintf("%s <%s>", author->name, author->email);
            timefmt_format_utc(sources[i].date, sizeof sources[i].date, (double)author->when.time);
            found++;
        }
        git_commit_free(commit);
    }
cleanup:
    git_revwalk_free(walk);
    git_repository_free(repo);
}

/* ---- showing --------------------------------------------------------------------------- */

static cJSON *value_json(const config *cfg, const config_key *k)
{
    if (!config_is_list(k)) {
        const char *text = config_text(cfg, k->name);
        return text ? cJSON_CreateString(text) : cJSON_CreateNull();
    }
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < config_list_count(cfg, k->name); i++)
        cJSON_AddItemToArray(list, cJSON_CreateString(config_list_item(cfg, k->name, i)));
    return list;
}

static cJSON *settings_json(const config *cfg, const char *file, const source *sources)
{
    size_t count;
    const config_key *keys = config_keys(&count);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "file", file);
    cJSON *settings = cJSON_AddArrayToObject(out, "settings");
    for (size_t i = 0; i < count; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "key", keys[i].name);
        cJSON_AddItemToObject(s, "value", value_json(cfg, &keys[i]));
        if (keys[i].default_text)
            cJSON_AddStringToObject(s, "default", keys[i].default_text);
        int set = config_is_set(cfg, keys[i].name);
        cJSON_AddStringToObject(s, "source", set ? "config" : keys[i].default_text ? "default" : "unset");
        if (set && sources[i].commit[0]) {
            cJSON_AddStringToObject(s, "commit", sources[i].commit);
            cJSON_AddStringToObject(s, "author", sources[i].author);
            cJSON_AddStringToObject(s, "date", sources[i].date);
        }
        cJSON_AddStringToObject(s, "doc", keys[i].doc);
        cJSON_AddItemToArray(settings, s);
    }
    return out;
}

static void print_settings(const cJSON *out)
{
    term_out("settings from %s", cJSON_GetObjectItemCaseSensitive(out, "file")->valuestring);
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(out, "settings")) {
        const char *key = cJSON_GetObjectItemCaseSensitive(s, "key")->valuestring;
        const char *src = cJSON_GetObjectItemCaseSensitive(s, "source")->valuestring;
        const cJSON *commit = cJSON_GetObjectItemCaseSensitive(s, "commit");
        buf from = BUF_INIT;
        if (!strcmp(src, "config") && commit)
            buf_printf(&from, "config.json, commit %.12s by %s, %s", commit->valuestring,
                       cJSON_GetObjectItemCaseSensitive(s, "author")->valuestring,
                       cJSON_GetObjectItemCaseSensitive(s, "date")->valuestring);
        else
            buf_puts(&from, !strcmp(src, "config") ? "config.json" : src);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, "value");
        buf value = BUF_INIT;
        if (cJSON_IsArray(v)) {
            const cJSON *u;
            cJSON_ArrayForEach(u, v)
                buf_printf(&value, "%s%s", value.len ? " " : "", u->valuestring);
        } else if (cJSON_IsString(v)) {
            buf_puts(&value, v->valuestring);
        }
        term_out("%-28s %-30s (%s)", key, value.len ? buf_cstr(&value) : "-", buf_cstr(&from));
        buf_dispose(&value);
        buf_dispose(&from);
    }
}

static int show(const cli *c)
{
    const char *dir = cli_audit_dir(c);
    config *cfg = NULL;
    int rc = config_load(&cfg, dir);
    if (rc)
        return rc;
    size_t count;
    const config_key *keys = config_keys(&count);
    source *sources = xcalloc(count, sizeof *sources);
    if (fsio_is_dir(dir))
        find_sources(sources, keys, count, dir);
    char *file = xasprintf("%s/%s", dir, CONFIG_FILE);
    cJSON *out = settings_json(cfg, file, sources);
    if (c->json)
        cli_print_json(out);
    else
        print_settings(out);
    cJSON_Delete(out);
    free(file);
    for (size_t i = 0; i < count; i++)
        free(sources[i].author);
    free(sources);
    config_free(cfg);
    return 0;
}

/* ---- changing ------------------------------------------------------------------------------ */

/* A change that could not be both written and committed is undone, so
 * that config.json stays what the trail's last commit has and the next
 * command is not refused as a change made outside drctl. Best effort: on
 * a disk still full, putting the old file back may fail too. */
static void restore_config(const char *file, const char *before, size_t len)
{
    char *why = xstrdup(err_last());
    if (before)
        (void)fsio_write_durable(file, before, len);
    else
        (void)unlink(file);
    err_set(DR_EFAIL, "%s", why);
    free(why);
}

/* Applies one change to the file and commits it: validated first, nothing
 * written when it is refused or changes nothing. */
static int change(const cli *c, int set, const char *key, const char *value)
{
    int rc = set ? config_validate(key, value) : config_find_key(key) ? 0 : config_validate(key, "");
    if (rc)
        return rc;
    audit *a = NULL;
    config *cfg = NULL;
    char *text = NULL, *file = NULL, *message = NULL, *operator = NULL, *before = NULL;
    size_t before_len = 0;
    int had_file = 0;
    if ((rc = audit_open(&a, cli_audit_dir(c), 1)) != 0 || (rc = audit_sync(a)) != 0 ||
        (rc = audit_check_config_clean(a)) != 0 || (rc = config_load(&cfg, cli_audit_dir(c))) != 0)
        goto cleanup;
    int changed = 0;
    const config_key *k = config_find_key(key);
    rc = set ? config_set(cfg, key, value, &changed) : config_unset(cfg, key, value, &changed);
    if (rc)
        goto cleanup;
    if (!changed) {
        term_info("%s is already %s; nothing to record", key, set ? value : "unset");
        goto cleanup;
    }
    const char *verb = config_is_list(k) ? (set ? "add" : value ? "remove" : "unset") : set ? "set" : "unset";
    message = value ? xasprintf("config: %s %s\n\n%s\n", verb, key, value) : xasprintf("config: %s %s\n", verb, key);
    text = config_to_text(cfg);
    file = xasprintf("%s/%s", cli_audit_dir(c), CONFIG_FILE);
    operator = identity_operator();
    had_file = fsio_read_file(&before, &before_len, file) == 0;
    err_clear();
    if (fsio_write_durable(file, text, strlen(text)) != 0) {
        rc = DR_EFAIL; /* fsio's message names the file and the cause */
        restore_config(file, had_file ? before : NULL, before_len);
        goto cleanup;
    }
    if ((rc = audit_commit_config(a, message, operator)) != 0)
        restore_config(file, had_file ? before : NULL, before_len);
    else if ((rc = audit_settle(a, NULL)) == 0)
        term_info("%s %s%s%s (committed to %s by %s)", verb, key, value ? " " : "", value ? value : "", file, operator);
cleanup:
    free(before);
    free(operator);
    free(message);
    free(file);
    free(text);
    config_free(cfg);
    audit_free(a);
    return rc;
}

int cmd_config(cli *c)
{
    const char *sub = c->arg_count ? c->args[0] : NULL;
    if (!sub)
        return show(c);
    if (!strcmp(sub, "set")) {
        int rc = cli_expect_args(c, 3, 3, "set KEY VALUE");
        return rc ? rc : change(c, 1, c->args[1], c->args[2]);
    }
    if (!strcmp(sub, "unset")) {
        int rc = cli_expect_args(c, 2, 3, "unset KEY [VALUE]");
        return rc ? rc : change(c, 0, c->args[1], c->arg_count == 3 ? c->args[2] : NULL);
    }
    if (!strcmp(sub, "show")) {
        int rc = cli_expect_args(c, 1, 1, "[show]");
        return rc ? rc : show(c);
    }
    return err_set(DR_EUSAGE, "drctl config %s: unknown; it is drctl config [show], set KEY VALUE or unset KEY "
                   "[VALUE] (drctl config --help)", sub);
}
