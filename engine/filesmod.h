/* filesmod: the `files` module for runbooks: file and S3 access, confined
 * to the folders the run was given (the runbook API, docs/runbooks.md,
 * "The files module"; the rules in confine.h).
 *
 * The allowed folders are those of the run's params of type "path" (s3://
 * values are not local and go to S3) and the run's own folder,
 * <working dir>/.drctl/runs/<run-id>. Outside a run or a plan none is
 * allowed. In plan mode the reading functions work and the writing ones
 * are refused. */
#ifndef DRCTL_FILESMOD_H
#define DRCTL_FILESMOD_H

#include "confine.h"
#include "drmod.h"

#include <lauxlib.h>

struct param_spec;

/* Makes `files` requirable. host must outlive the sandbox's use. */
void filesmod_register(sandbox *sb, dr_host *host);

/* Sets the files functions into the table on the stack top under the
 * names the dump module has always had (sha256, upload, download,
 * list_remote, list_files, delete, write_text, read_text), their messages
 * naming dump. */
void filesmod_add_dump_aliases(lua_State *L, dr_host *host);

/* The run whose folders file access is confined to, from now on: its id
 * (its run folder), its runbook's params, and where the run keeps their
 * values (*params is read at each call, so it may be set later), all
 * borrowed until files_end_run. Called as every run, resume, abort and
 * plan is set up. */
void files_begin_run(dr_host *host, const char *run_id, const struct param_spec *specs, size_t count,
                     cJSON *const *params);

/* The run is over in this process: its folder goes when it ended
 * completed or aborted (finished), and nothing is allowed until the next
 * files_begin_run. */
void files_end_run(dr_host *host, const char *run_id, int finished);

/* The folders the host's run may use (dispose with confine_roots_dispose). */
void files_allowed_folders(confine_roots *roots, const dr_host *host);

/* Checks a local path for a module function named what; on success pushes
 * nothing and returns the resolved path (caller frees), on refusal raises
 * a Lua error that names what, the path and the allowed folders. */
char *files_confine_lua(lua_State *L, const dr_host *host, const char *what, const char *path,
                        confine_purpose purpose);

/* The sha256 of a file, or over a directory's files (sorted by name, each
 * as "name sha256\n"); hex in out[65]. Links are not followed. */
int files_sha256(const char *path, char out[65]);

/* The size of a file, or of a folder's files; links are not followed. */
long long files_size_of(const char *path);

/* Reports an upload's progress on the terminal (an s3_upload callback). */
void files_report_upload(void *ud, long long done, long long total);

#endif
