#include "signing.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "sshsig.h"

#include <stdlib.h>
#include <string.h>

struct signer {
    sshsig_key *key;      /* in-process, or NULL: through ssh-keygen */
    char *path;
    char *fingerprint;
};

/* The fingerprint of a key signed through ssh-keygen: from its public
 * half (PATH.pub, or PATH itself when a public key was given). */
static int fingerprint_by_public_half(signer *s)
{
    const char *pub_suffix = ".pub";
    size_t n = strlen(s->path);
    char *pub = n > 4 && !strcmp(s->path + n - 4, pub_suffix) ? xstrdup(s->path) : xasprintf("%s.pub", s->path);
    char *text = NULL;
    int rc = fsio_read_file(&text, NULL, pub);
    if (rc == 0 && sshsig_fingerprint_of(&s->fingerprint, text) != 0)
        rc = err_set(DR_EUSAGE, "%s: %s is not an SSH public key; it names the key that signs the audit trail",
                     SIGNING_KEY_ENV, pub);
    else if (rc)
        rc = err_set(DR_EUSAGE, "%s=%s: its public half %s cannot be read (make it with ssh-keygen -y -f %s > %s)",
                     SIGNING_KEY_ENV, s->path, pub, s->path, pub);
    free(text);
    free(pub);
    return rc;
}

/* A sample signature through ssh-keygen now, so that a key it cannot use
 * stops the command before anything is committed. */
static int check_by_signing(const signer *s)
{
    char *armored = NULL;
    int rc = sshsig_sign_with_ssh_keygen(&armored, s->path, SSHSIG_NAMESPACE_GIT, "drctl", 5);
    free(armored);
    if (rc)
        return err_set(DR_EUSAGE, "%s=%s cannot sign: %s; nothing was committed", SIGNING_KEY_ENV, s->path, err_last());
    return 0;
}

int signer_from_env(signer **out)
{
    *out = NULL;
    const char *path = getenv(SIGNING_KEY_ENV);
    if (!path || !*path)
        return 0;
    signer *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    int rc;
    if (sshsig_key_needs_ssh_keygen(path)) {
        if ((rc = fingerprint_by_public_half(s)) == 0)
            rc = check_by_signing(s);
    } else if ((rc = sshsig_key_load(&s->key, path)) == 0) {
        s->fingerprint = xstrdup(sshsig_key_fingerprint(s->key));
    } else {
        rc = err_set(DR_EUSAGE, "%s: %s", SIGNING_KEY_ENV, err_last());
    }
    if (rc) {
        signer_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int signer_sign(char **armored, const signer *s, const char *text, size_t len)
{
    return s->key ? sshsig_sign(armored, s->key, SSHSIG_NAMESPACE_GIT, text, len)
                  : sshsig_sign_with_ssh_keygen(armored, s->path, SSHSIG_NAMESPACE_GIT, text, len);
}

const char *signer_fingerprint(const signer *s)
{
    return s->fingerprint;
}

void signer_free(signer *s)
{
    if (!s)
        return;
    sshsig_key_free(s->key);
    free(s->path);
    free(s->fingerprint);
    free(s);
}
