/* allowed_signers: who may sign what, in git's gpg.ssh.allowedSignersFile
 * (the ALLOWED SIGNERS format of ssh-keygen(1)).
 *
 * One signer a line: principals [options] keytype base64 [comment], where
 *   principals   a pattern-list of identities (alice@example.com,*@ops.example.com,!mallory@ops.example.com):
 *                '*' and '?' wildcards, '!' excludes, as ssh's match_pattern_list;
 *   options      comma-separated, keywords case-insensitive, values in double quotes:
 *                cert-authority, namespaces="git,file" (a pattern-list),
 *                valid-after="YYYYMMDD[HHMM[SS]][Z]", valid-before="..." (Z or UTC: UTC,
 *                otherwise the local time zone, read as ssh-keygen reads it);
 * and '#' comment lines and blank lines. The verdicts are ssh-keygen -Y
 * verify's, except that a line that cannot be parsed refuses the whole
 * file at load (ssh-keygen skips one it need not read), so that a typo
 * never silently drops a signer. Certificates are not supported: a
 * cert-authority line is parsed and kept, but never permits a plain key. */
#ifndef DRCTL_ALLOWED_SIGNERS_H
#define DRCTL_ALLOWED_SIGNERS_H

typedef struct allowed_signers allowed_signers;

/* Parses the file at path. DR_EUSAGE for a file that cannot be read, and
 * for a line that cannot be parsed: "FILE:LINE: what is wrong; the fix
 * (one line: principals [options] keytype base64)". */
int allowed_signers_load(allowed_signers **out, const char *path);
/* The same from text already read; name is used in messages as FILE. */
int allowed_signers_parse(allowed_signers **out, const char *name, const char *text);
void allowed_signers_free(allowed_signers *a);

/* How many signer lines (comments and blank lines not counted). */
int allowed_signers_count(const allowed_signers *a);

/* 1 when principal may sign in namespace ns with public_key ("type base64",
 * a comment after it is ignored) at time `when` (epoch seconds, compared
 * in whole seconds as ssh-keygen does), else 0. Any line may permit: each
 * line for the key is tried as ssh-keygen tries them.
 * *why (why may be NULL) is set on 0 and says which condition failed, the
 * one of the line that came closest: no line lists the key, the principal
 * does not match (or is excluded by '!'), the namespace is not allowed, the
 * key is not yet valid or has expired, the key is listed only as a
 * cert-authority, or public_key is not a key. It is owned by a, valid until
 * the next allowed_signers_permits on a or allowed_signers_free (so one
 * allowed_signers is not for concurrent use by several threads); on 1 it
 * is set to "". */
int allowed_signers_permits(const allowed_signers *a, const char *principal, const char *public_key, const char *ns,
                            double when, const char **why);

/* The principals field of the first line that lists public_key as a
 * signer (not as a cert-authority), e.g. "bob@example.com,bob@ops", for
 * messages like "signed by bob@example.com, but the author is
 * alice@example.com"; NULL when no line does. Borrowed from a. */
const char *allowed_signers_principals_of(const allowed_signers *a, const char *public_key);

/* ssh's match_pattern_list: 1 when text matches a pattern of the
 * comma-separated list and no negated (!) one; -1 when a negated pattern
 * matches; 0 when none does. Case-sensitive. */
int allowed_signers_match_list(const char *text, const char *patterns);

#endif
