#include "verifysig.h"

#include "buf.h"
#include "err.h"
#include "sshsig.h"

#include <stdlib.h>
#include <string.h>

/* One commit: signed, by a key the file allows for its author. */
static void check_commit(verify_result *r, git_repository *repo, const git_oid *oid, const allowed_signers *signers)
{
    git_buf signature = GIT_BUF_INIT, data = GIT_BUF_INIT;
    git_commit *commit = NULL;
    char *key = NULL;
    if (git_commit_lookup(&commit, repo, oid) != 0) {
        verify_problem(r, NULL, NULL, oid, "the commit cannot be read");
        goto cleanup;
    }
    const git_signature *author = git_commit_author(commit);
    if (git_commit_extract_signature(&signature, &data, repo, (git_oid *)oid, NULL) != 0) {
        verify_problem(r, NULL, NULL, oid, "the commit is not signed (by %s <%s>, \"%.60s\")", author->name,
                       author->email, git_commit_summary(commit));
        goto cleanup;
    }
    if (sshsig_verify(&key, signature.ptr, SSHSIG_NAMESPACE_GIT, data.ptr, data.size) != 0) {
        verify_problem(r, NULL, NULL, oid, "its signature does not hold: %s (the commit was changed after it "
                       "was signed, or the signature is not an SSH one)", err_last());
        goto cleanup;
    }
    const char *why = NULL;
    if (!allowed_signers_permits(signers, author->email, key, SSHSIG_NAMESPACE_GIT, (double)author->when.time,
                                 &why)) {
        char *fingerprint = NULL;
        sshsig_fingerprint_of(&fingerprint, key);
        const char *principals = allowed_signers_principals_of(signers, key);
        verify_problem(r, NULL, NULL, oid, "signed by key %s%s%s%s, which may not sign for its author %s: %s",
                       fingerprint ? fingerprint : "?", principals ? " (allowed for " : "",
                       principals ? principals : "", principals ? ")" : "", author->email, why);
        free(fingerprint);
        goto cleanup;
    }
    r->signed_commits++;
cleanup:
    free(key);
    git_commit_free(commit);
    git_buf_dispose(&signature);
    git_buf_dispose(&data);
}

void verify_signatures(verify_result *r, git_repository *repo, const allowed_signers *signers)
{
    git_revwalk *walk = NULL;
    if (git_revwalk_new(&walk, repo) != 0 || git_revwalk_push_head(walk) != 0) {
        git_revwalk_free(walk);
        return; /* no commit yet */
    }
    git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
    git_oid oid;
    while (git_revwalk_next(&oid, walk) == 0)
        check_commit(r, repo, &oid, signers);
    git_revwalk_free(walk);
}
