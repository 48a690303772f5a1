/* Keys made by the real ssh-keygen for the signing tests (sshsig_test.c,
 * allowed_signers_test.c). */
#ifndef DRCTL_TEST_SSHKEYS_H
#define DRCTL_TEST_SSHKEYS_H

#include "proc.h"

#include <stddef.h>

/* Runs argv (no shell) with stdin data and env (may be NULL); the result
 * is disposed by the caller. */
int sshkeys_run(proc_result *res, char **argv, char **env, const void *data, size_t len);

/* A fresh key in the test's folder: its path (caller frees), or NULL.
 * bits may be NULL for the type's default. */
char *sshkeys_make(const char *name, const char *type, const char *bits, const char *passphrase);

/* The "type base64" of a key's .pub file (caller frees), or NULL. */
char *sshkeys_public_of(const char *key_path);

#endif
