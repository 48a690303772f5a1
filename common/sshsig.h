/* sshsig: SSH signatures as git makes them with gpg.format=ssh.
 *
 * A signed commit's gpgsig header holds an armored SSHSIG (OpenSSH's
 * PROTOCOL.sshsig) made in the namespace "git". Signing and verifying here
 * give byte for byte what `ssh-keygen -Y sign` prints and what
 * `ssh-keygen -Y verify` accepts, so `git verify-commit` and drctl agree on
 * every audit commit.
 *
 * In-process signing takes an unencrypted ed25519 key in the openssh-key-v1
 * format (what `ssh-keygen -t ed25519 -N ''` writes): Ed25519 is
 * deterministic, so the signature equals ssh-keygen's. Every other key
 * (RSA, ECDSA, FIDO, or a key with a passphrase, then held by ssh-agent) is
 * signed by running ssh-keygen itself (sshsig_sign_with_ssh_keygen).
 *
 * Public keys travel as text, "type base64" (an authorized_keys line
 * without options or comment), the form allowed signers files and
 * messages use. No message ever holds private key material. */
#ifndef DRCTL_SSHSIG_H
#define DRCTL_SSHSIG_H

#include <stddef.h>

/* The namespace git signs commits and tags in. */
#define SSHSIG_NAMESPACE_GIT "git"

typedef struct sshsig_key sshsig_key;

/* Loads an OpenSSH private key file for in-process signing: an
 * unencrypted ed25519 key in the openssh-key-v1 format. DR_EUSAGE, with a
 * message naming the path and the fix, for a file that cannot be read, is
 * not a private key, is a public key, can be read or written by other users
 * (mode & 077, as ssh refuses an "UNPROTECTED PRIVATE KEY FILE": chmod 600),
 * has a passphrase, or is of another type: such keys are signed through
 * ssh-keygen (sshsig_sign_with_ssh_keygen). */
int sshsig_key_load(sshsig_key **out, const char *path);
/* 1 when path holds a key that sshsig_key_load refuses only for what it
 * is and that ssh-keygen can sign with: a key with a passphrase, of another
 * type (RSA, ECDSA, FIDO), in the PEM format, or a public key whose private
 * half may be in ssh-agent; 0 otherwise (an unencrypted ed25519 key, a file
 * that cannot be read or is no key: sshsig_key_load says why). Sets no
 * message. For choosing between sshsig_sign and sshsig_sign_with_ssh_keygen. */
int sshsig_key_needs_ssh_keygen(const char *path);
/* Frees k (NULL is fine). The private bytes are wiped: OpenSSL clears the
 * seed when the EVP key is freed, and every copy made while loading (file
 * text, decoded blob) was wiped with OPENSSL_cleanse as soon as it was read. */
void sshsig_key_free(sshsig_key *k);
/* "ssh-ed25519 AAAA..." (type and base64 blob, no comment). Borrowed. */
const char *sshsig_key_public(const sshsig_key *k);
/* "SHA256:..." as `ssh-keygen -l` prints it. Borrowed. */
const char *sshsig_key_fingerprint(const sshsig_key *k);

/* The armored signature ("-----BEGIN SSH SIGNATURE-----\n...
 * -----END SSH SIGNATURE-----\n", caller frees) over data in namespace ns
 * with hash sha512: byte-identical to `ssh-keygen -Y sign -f KEY -n ns`.
 * DR_EUSAGE for an empty namespace. */
int sshsig_sign(char **armored, const sshsig_key *k, const char *ns, const void *data, size_t len);

/* The same made by `ssh-keygen -Y sign -f key_path -n ns` (run by argv,
 * never through a shell), for any key ssh-keygen can use: RSA, ECDSA,
 * FIDO, and keys with a passphrase, which must then be held by ssh-agent
 * (SSH_AUTH_SOCK is passed on; a passphrase is never asked for, since the
 * data to sign goes to ssh-keygen's standard input). key_path may also be
 * a public key whose private half is in the agent. DR_EUSAGE when
 * ssh-keygen is not on PATH ("install openssh-client"), for an unreadable
 * or unprotected key file, or for a key with a passphrase that the agent
 * does not hold; DR_EFAIL with ssh-keygen's own words when it fails. */
int sshsig_sign_with_ssh_keygen(char **armored, const char *key_path, const char *ns, const void *data,
                                size_t len);

/* Verifies an armored signature over data in namespace ns. 0 and
 * *public_key = the signer's key ("type base64", caller frees) when it is
 * valid; DR_EFAIL with a message saying why otherwise: bad armor or
 * structure, wrong namespace, unsupported key type or hash, or a signature
 * that does not match the data. Keys: ssh-ed25519, ssh-rsa (signatures
 * rsa-sha2-256 and rsa-sha2-512; SHA-1 ssh-rsa is refused, as ssh-keygen
 * does), ecdsa-sha2-nistp256/384/521. Hashes: sha256, sha512. Whether the
 * key may sign is the allowed signers file's question (allowed_signers.h). */
int sshsig_verify(char **public_key, const char *armored, const char *ns, const void *data, size_t len);

/* Helpers shared with allowed_signers.c, usable for messages too. */

/* The "SHA256:..." fingerprint of a public key given as "type base64"
 * (anything after the base64, such as a comment, is ignored); caller frees.
 * DR_EUSAGE when the text is not a public key of a known type. */
int sshsig_fingerprint_of(char **fingerprint, const char *public_key);

/* Decodes "type base64[ comment]" into its blob (caller frees) and checks
 * that the blob holds a key of that type (known types: ssh-ed25519,
 * ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com,
 * sk-ecdsa-sha2-nistp256@openssh.com, ssh-dss). Returns 0, or -1 with
 * *why set to a static phrase ("unknown key type", "not base64", ...). */
int sshsig_public_key_decode(unsigned char **blob, size_t *blob_len, const char *public_key, const char **why);

/* Whether name is a key type that sshsig_public_key_decode knows. */
int sshsig_known_key_type(const char *name, size_t len);

/* Base64 (standard alphabet, padded). decode skips whitespace and
 * returns -1 on anything else that is not base64; *out is caller-freed. */
char *sshsig_base64_encode(const void *data, size_t len);
int sshsig_base64_decode(unsigned char **out, size_t *out_len, const char *text, size_t text_len);

#endif
