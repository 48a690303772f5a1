/* signing: the key that signs the audit trail's commits (the audit trail
 * contract, docs/design.md).
 *
 * With DRCTL_SIGNING_KEY naming an SSH private key file (as git's
 * user.signingkey with gpg.format=ssh), every commit drctl makes carries a
 * gpgsig header: an SSHSIG in the namespace "git" over the commit, the
 * signature `git verify-commit` checks. An unencrypted ed25519 key signs
 * in-process; any other key (RSA, ECDSA, one with a passphrase held by
 * ssh-agent) through ssh-keygen. A key that cannot be used is refused when
 * the trail is opened, so nothing is ever committed unsigned once signing
 * was asked for. */
#ifndef DRCTL_SIGNING_H
#define DRCTL_SIGNING_H

#include <stddef.h>

#define SIGNING_KEY_ENV "DRCTL_SIGNING_KEY"

typedef struct signer signer;

/* The signer DRCTL_SIGNING_KEY names, or *out NULL when it is unset or
 * empty. DR_EUSAGE, naming the file and the fix, for a key that cannot
 * sign (unreadable, unprotected, not a key, ssh-keygen missing for a key
 * that needs it). */
int signer_from_env(signer **out);

/* The armored SSH signature of a commit's text (caller frees). */
int signer_sign(char **armored, const signer *s, const char *text, size_t len);

/* "SHA256:..." of the signing key: what approvals compare. */
const char *signer_fingerprint(const signer *s);

void signer_free(signer *s);

#endif
