/* sshsig against the reference, OpenSSH's own ssh-keygen: the keys are
 * made by it, its signatures are checked here, ours are checked by it. */
#include "sshkeys.h"
#include "test.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "proc.h"
#include "sshsig.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

/* `ssh-keygen -Y sign` of data; NULL when it fails. extra: one more
 * option pair (e.g. "-O", "hashalg=sha256") or NULLs. */
static char *reference_sign(const char *key, const char *ns, const void *data, size_t len, const char *opt,
                            const char *value)
{
    char *argv[] = { "ssh-keygen", "-Y", "sign", "-n", (char *)ns, "-f", (char *)key, (char *)opt, (char *)value,
                     NULL };
    proc_result res;
    char *out = NULL;
    if (sshkeys_run(&res, argv, NULL, data, len) == 0 && res.exit_code == 0)
        out = xstrdup(res.out);
    else if (res.err)
        printf("    ssh-keygen -Y sign: %s\n", res.err);
    proc_result_dispose(&res);
    return out;
}

/* `ssh-keygen -Y verify`'s exit code for sig over data (-1: not run). */
static int reference_verify(const char *allowed_text, const char *principal, const char *ns, const char *sig,
                            const void *data, size_t len)
{
    char *allowed = xasprintf("%s", test_write_file("allowed_signers", allowed_text));
    char *sig_path = xasprintf("%s", test_write_file("data.sig", sig));
    char *argv[] = { "ssh-keygen", "-Y", "verify", "-f", allowed, "-I", (char *)principal, "-n", (char *)ns, "-s",
                     sig_path, NULL };
    proc_result res;
    int code = -1;
    if (sshkeys_run(&res, argv, NULL, data, len) == 0)
        code = res.exit_code;
    proc_result_dispose(&res);
    free(allowed);
    free(sig_path);
    return code;
}

/* ssh-keygen -l's fingerprint of a key file (caller frees). */
static char *reference_fingerprint(const char *key_path)
{
    char *argv[] = { "ssh-keygen", "-l", "-f", (char *)key_path, NULL };
    proc_result res;
    char *fp = NULL;
    if (sshkeys_run(&res, argv, NULL, NULL, 0) == 0 && res.exit_code == 0) {
        char *start = strchr(res.out, ' ');
        if (start) {
            start++;
            fp = xstrndup(start, strcspn(start, " "));
        }
    }
    proc_result_dispose(&res);
    return fp;
}

/* Deterministic filler bytes. */
static void fill(unsigned char *out, size_t len, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[i] = (unsigned char)x;
    }
}

/* The armor around blob, as ssh-keygen writes it (caller frees). */
static char *rearmor(const unsigned char *blob, size_t len)
{
    char *b64 = sshsig_base64_encode(blob, len);
    buf out = BUF_INIT;
    buf_puts(&out, "-----BEGIN SSH SIGNATURE-----\n");
    for (size_t i = 0, n = strlen(b64); i < n; i += 70) {
        buf_append(&out, b64 + i, n - i < 70 ? n - i : 70);
        buf_putc(&out, '\n');
    }
    buf_puts(&out, "-----END SSH SIGNATURE-----\n");
    free(b64);
    return buf_detach(&out);
}

/* The binary of an armored signature (caller frees), or NULL. */
static unsigned char *unarmor(const char *armored, size_t *len)
{
    const char *start = strchr(armored, '\n');
    const char *end = strstr(armored, "-----END");
    unsigned char *blob;
    if (!start || !end || sshsig_base64_decode(&blob, len, start, (size_t)(end - start)) != 0)
        return NULL;
    return blob;
}

static void put_u32(buf *b, uint32_t v)
{
    unsigned char be[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                            (unsigned char)v };
    buf_append(b, be, 4);
}

static void put_string(buf *b, const void *data, size_t len)
{
    put_u32(b, (uint32_t)len);
    buf_append(b, data, len);
}

/* ---- in-process signing equals ssh-keygen's ------------------------------------- */

static void sshsig_ed25519_signatures_equal_ssh_keygen_byte_for_byte(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "");
    CHECK(key_path);
    sshsig_key *k;
    CHECK(sshsig_key_load(&k, key_path) == 0);

    static unsigned char mib[1 << 20];
    fill(mib, sizeof mib, 7);
    static const unsigned char with_nuls[] = { 't', 'r', 'e', 'e', 0, 0, 'x', 0, '\n', 0 };
    struct { const void *data; size_t len; const char *ns; } cases[] = {
        { "", 0, "git" }, { "x", 1, "git" }, { mib, sizeof mib, "git" }, { with_nuls, sizeof with_nuls, "git" },
        { "tree 0123\nauthor a <a@x> 1 +0000\n\nmsg\n", 37, "git" }, { "x", 1, "file" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *ours = NULL, *theirs = reference_sign(key_path, cases[i].ns, cases[i].data, cases[i].len, NULL, NULL);
        CHECK(theirs);
        CHECK(sshsig_sign(&ours, k, cases[i].ns, cases[i].data, cases[i].len) == 0);
        CHECK_STR(ours, theirs);
        free(ours);
        free(theirs);
    }
    sshsig_key_free(k);
    free(key_path);
}

static void sshsig_key_public_and_fingerprint_match_ssh_keygen(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "");
    CHECK(key_path);
    sshsig_key *k;
    CHECK(sshsig_key_load(&k, key_path) == 0);
    char *pub = sshkeys_public_of(key_path), *fp = reference_fingerprint(key_path);
    CHECK(pub && fp);
    CHECK_STR(sshsig_key_public(k), pub);
    CHECK_STR(sshsig_key_fingerprint(k), fp);
    char *again = NULL;
    CHECK(sshsig_fingerprint_of(&again, pub) == 0);
    CHECK_STR(again, fp);
    free(again);
    free(pub);
    free(fp);
    sshsig_key_free(k);

    /* The fingerprint of other key types, from their public key. */
    char *rsa = sshkeys_make("id_rsa", "rsa", "3072", "");
    CHECK(rsa);
    pub = sshkeys_public_of(rsa);
    fp = reference_fingerprint(rsa);
    CHECK(pub && fp);
    CHECK(sshsig_fingerprint_of(&again, pub) == 0);
    CHECK_STR(again, fp);
    free(again);
    CHECK(sshsig_fingerprint_of(&again, "ssh-foo AAAA") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "unknown key type");
    free(pub);
    free(fp);
    free(rsa);
    free(key_path);
}

static void sshsig_signing_refuses_an_empty_namespace(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "");
    CHECK(key_path);
    sshsig_key *k;
    CHECK(sshsig_key_load(&k, key_path) == 0);
    char *sig = NULL;
    CHECK(sshsig_sign(&sig, k, "", "x", 1) == DR_EUSAGE);
    CHECK(sig == NULL);
    CHECK_CONTAINS(err_last(), "namespace");
    sshsig_key_free(k);
    free(key_path);
}

/* ---- verifying ---------------------------------------------------------------------- */

/* ssh-keygen's signature with key_path verifies here, names the key, and
 * fails on changed data, a changed signature and another namespace. */
static void check_reference_signature(const char *key_path, const char *hash_option)
{
    static const unsigned char data[] = { 'c', 'o', 'm', 'm', 'i', 't', 0, '\n', 0xff, 0 };
    char *sig = reference_sign(key_path, "git", data, sizeof data, hash_option ? "-O" : NULL, hash_option);
    CHECK(sig);
    char *signer = NULL, *pub = sshkeys_public_of(key_path);
    CHECK(pub);
    if (sshsig_verify(&signer, sig, "git", data, sizeof data) != 0)
        printf("    %s: %s\n", key_path, err_last());
    CHECK(signer);
    CHECK_STR(signer, pub);
    free(signer);

    unsigned char changed[sizeof data];
    memcpy(changed, data, sizeof data);
    changed[3] ^= 1;
    CHECK(sshsig_verify(&signer, sig, "git", changed, sizeof changed) == DR_EFAIL);
    CHECK(signer == NULL);
    CHECK_CONTAINS(err_last(), "does not match the data");

    CHECK(sshsig_verify(&signer, sig, "file", data, sizeof data) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "wrong signature namespace: the signature was made for \"git\", not \"file\"");

    size_t len;
    unsigned char *blob = unarmor(sig, &len);
    CHECK(blob);
    blob[len - 3] ^= 0x10;  /* inside the signature bytes */
    char *tampered = rearmor(blob, len);
    CHECK(sshsig_verify(&signer, tampered, "git", data, sizeof data) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "does not match");
    free(tampered);
    free(blob);
    free(pub);
    free(sig);
}

static void sshsig_verifies_ssh_keygen_signatures_of_each_key_type(void)
{
    struct { const char *type, *bits; } keys[] = {
        { "ed25519", NULL }, { "rsa", "3072" }, { "ecdsa", "256" }, { "ecdsa", "384" }, { "ecdsa", "521" },
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *name = xasprintf("key%zu", i);
        char *key_path = sshkeys_make(name, keys[i].type, keys[i].bits, "");
        free(name);
        CHECK(key_path);
        check_reference_signature(key_path, NULL);
        if (test_failed_now()) {
            free(key_path);
            return;
        }
        /* ssh-keygen can hash with sha256 as well. */
        check_reference_signature(key_path, "hashalg=sha256");
        free(key_path);
        if (test_failed_now())
            return;
    }
}

static void sshsig_our_signatures_verify_with_ssh_keygen(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "");
    CHECK(key_path);
    sshsig_key *k;
    CHECK(sshsig_key_load(&k, key_path) == 0);
    static const unsigned char data[] = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\naudit\0entry\n";
    char *sig = NULL;
    CHECK(sshsig_sign(&sig, k, "git", data, sizeof data) == 0);
    char *allowed = xasprintf("alice@example.com %s\n", sshsig_key_public(k));
    CHECK(reference_verify(allowed, "alice@example.com", "git", sig, data, sizeof data) == 0);
    /* ...and ssh-keygen refuses it for the wrong data or principal too. */
    CHECK(reference_verify(allowed, "alice@example.com", "git", sig, data, sizeof data - 1) != 0);
    CHECK(reference_verify(allowed, "bob@example.com", "git", sig, data, sizeof data) != 0);
    char *signer = NULL;
    CHECK(sshsig_verify(&signer, sig, "git", data, sizeof data) == 0);
    CHECK_STR(signer, sshsig_key_public(k));
    free(signer);
    free(allowed);
    free(sig);
    sshsig_key_free(k);
    free(key_path);
}

static void sshsig_bad_armor_and_structure_say_why(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "");
    CHECK(key_path);
    sshsig_key *k;
    CHECK(sshsig_key_load(&k, key_path) == 0);
    char *sig = NULL, *signer = NULL;
    CHECK(sshsig_sign(&sig, k, "git", "d", 1) == 0);

    CHECK(sshsig_verify(&signer, "not a signature", "git", "d", 1) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "bad signature armor: it does not start with '-----BEGIN SSH SIGNATURE-----'");
    CHECK(sshsig_verify(&signer, NULL, "git", "d", 1) == DR_EFAIL);
    char *cut = xstrndup(sig, strlen(sig) - 30);
    CHECK(sshsig_verify(&signer, cut, "git", "d", 1) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "END SSH SIGNATURE-----' line is missing");
    free(cut);
    char *garbled = xstrdup(sig);
    garbled[40] = '*';
    CHECK(sshsig_verify(&signer, garbled, "git", "d", 1) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "not base64");
    free(garbled);

    size_t len;
    unsigned char *blob = unarmor(sig, &len);
    CHECK(blob);
    char *short_blob = rearmor(blob, len - 20);
    CHECK(sshsig_verify(&signer, short_blob, "git", "d", 1) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "truncated");
    free(short_blob);
    blob[0] = 'X';
    char *no_magic = rearmor(blob, len);
    CHECK(sshsig_verify(&signer, no_magic, "git", "d", 1) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "not an SSHSIG");
    free(no_magic);
    CHECK(signer == NULL);
    free(blob);
    free(sig);
    sshsig_key_free(k);
    free(key_path);
}

/* An SSHSIG blob built by hand: key blob, namespace, hash, signature blob. */
static char *hand_made(const buf *key, const char *ns, const char *hash, const buf *signature)
{
    buf b = BUF_INIT;
    buf_append(&b, "SSHSIG", 6);
    put_u32(&b, 1);
    put_string(&b, key->data, key->len);
    put_string(&b, ns, strlen(ns));
    put_string(&b, "", 0);
    put_string(&b, hash, strlen(hash));
    put_string(&b, signature->data, signature->len);
    char *armored = rearmor((const unsigned char *)b.data, b.len);
    buf_dispose(&b);
    return armored;
}

static void sshsig_unsupported_key_types_and_hashes_are_named(void)
{
    unsigned char pk[32];
    fill(pk, sizeof pk, 3);
    buf key = BUF_INIT, signature = BUF_INIT;
    put_string(&key, "sk-ssh-ed25519@openssh.com", 26);
    put_string(&key, pk, sizeof pk);
    put_string(&key, "ssh:", 4);
    put_string(&signature, "sk-ssh-ed25519@openssh.com", 26);
    put_string(&signature, pk, sizeof pk);
    char *armored = hand_made(&key, "git", "sha512", &signature), *signer = NULL;
    CHECK(sshsig_verify(&signer, armored, "git", "d", 1) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "unsupported signing key type sk-ssh-ed25519@openssh.com");
    free(armored);
    buf_dispose(&key);

    put_string(&key, "ssh-ed25519", 11);
    put_string(&key, pk, sizeof pk);
    armored = hand_made(&key, "git", "sha1", &signature);
    CHECK(sshsig_verify(&signer, armored, "git", "d", 1) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "unsupported signature hash \"sha1\"");
    free(armored);
    buf_dispose(&key);

    put_string(&key, "ssh-foo", 7);
    armored = hand_made(&key, "git", "sha512", &signature);
    CHECK(sshsig_verify(&signer, armored, "git", "d", 1) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "unsupported or invalid signing key \"ssh-foo\"");
    free(armored);
    buf_dispose(&key);
    buf_dispose(&signature);
    CHECK(signer == NULL);
}

/* ---- keys refused in-process ------------------------------------------------------------ */

/* No line of the key file's body shows up in the message. */
static int message_leaks_key(const char *key_path, const char *message)
{
    char *text;
    size_t len;
    if (fsio_read_file(&text, &len, key_path) != 0)
        return 1;
    int leaks = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, "-----", 5) != 0 && strlen(line) > 8 && strstr(message, line))
            leaks = 1;
    free(text);
    return leaks;
}

static void sshsig_an_encrypted_key_is_refused_in_process(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "secret pass");
    CHECK(key_path);
    sshsig_key *k = NULL;
    CHECK(sshsig_key_load(&k, key_path) == DR_EUSAGE);
    CHECK(k == NULL);
    CHECK_CONTAINS(err_last(), key_path);
    CHECK_CONTAINS(err_last(), "has a passphrase");
    CHECK_CONTAINS(err_last(), "signed through ssh-keygen");
    CHECK_CONTAINS(err_last(), "ssh-agent");
    CHECK_CONTAINS(err_last(), "ssh-keygen -t ed25519 -N ''");
    CHECK(!message_leaks_key(key_path, err_last()));
    free(key_path);
}

static void sshsig_keys_of_other_types_are_refused_in_process(void)
{
    struct { const char *type, *bits, *label; } keys[] = {
        { "rsa", "3072", "is an RSA key" }, { "ecdsa", "256", "is an ECDSA key" },
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *key_path = sshkeys_make(keys[i].type, keys[i].type, keys[i].bits, "");
        CHECK(key_path);
        sshsig_key *k = NULL;
        CHECK(sshsig_key_load(&k, key_path) == DR_EUSAGE);
        CHECK_CONTAINS(err_last(), key_path);
        CHECK_CONTAINS(err_last(), keys[i].label);
        CHECK_CONTAINS(err_last(), "signed through ssh-keygen");
        CHECK(!message_leaks_key(key_path, err_last()));
        free(key_path);
    }
    /* A key in the old PEM format. */
    char *pem = xasprintf("%s/pem", test_tmpdir());
    char *argv[] = { "ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", pem, NULL };
    proc_result res;
    CHECK(sshkeys_run(&res, argv, NULL, NULL, 0) == 0 && res.exit_code == 0);
    proc_result_dispose(&res);
    sshsig_key *k = NULL;
    CHECK(sshsig_key_load(&k, pem) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "old PEM format");
    CHECK(!message_leaks_key(pem, err_last()));
    free(pem);
}

static void sshsig_tells_which_keys_need_ssh_keygen(void)
{
    char *plain = sshkeys_make("plain", "ed25519", NULL, ""), *locked = sshkeys_make("locked", "ed25519", NULL, "pass");
    char *rsa = sshkeys_make("rsa", "rsa", "2048", ""), *ecdsa = sshkeys_make("ecdsa", "ecdsa", "256", "");
    CHECK(plain && locked && rsa && ecdsa);
    CHECK(sshsig_key_needs_ssh_keygen(plain) == 0);
    CHECK(sshsig_key_needs_ssh_keygen(locked) == 1);
    CHECK(sshsig_key_needs_ssh_keygen(rsa) == 1);
    CHECK(sshsig_key_needs_ssh_keygen(ecdsa) == 1);
    char *pub = xasprintf("%s.pub", plain), *missing = xasprintf("%s/none", test_tmpdir());
    CHECK(sshsig_key_needs_ssh_keygen(pub) == 1);
    CHECK(sshsig_key_needs_ssh_keygen(missing) == 0);
    CHECK(sshsig_key_needs_ssh_keygen(test_write_file("junk", "junk\n")) == 0);
    CHECK_STR(err_last(), "");
    free(pub);
    free(missing);
    free(plain);
    free(locked);
    free(rsa);
    free(ecdsa);
}

static void sshsig_unprotected_key_files_are_refused(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "");
    CHECK(key_path);
    mode_t modes[] = { 0640, 0604, 0660, 0644, 0601 };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        CHECK(chmod(key_path, modes[i]) == 0);
        sshsig_key *k = NULL;
        CHECK(sshsig_key_load(&k, key_path) == DR_EUSAGE);
        CHECK(k == NULL);
        CHECK_CONTAINS(err_last(), "UNPROTECTED PRIVATE KEY FILE");
        CHECK_CONTAINS(err_last(), key_path);
        char *fix = xasprintf("chmod 600 %s", key_path);
        CHECK_CONTAINS(err_last(), fix);
        free(fix);
        char *sig = NULL;
        CHECK(sshsig_sign_with_ssh_keygen(&sig, key_path, "git", "x", 1) == DR_EUSAGE);
        CHECK_CONTAINS(err_last(), "UNPROTECTED PRIVATE KEY FILE");
    }
    CHECK(chmod(key_path, 0400) == 0);
    sshsig_key *k = NULL;
    CHECK(sshsig_key_load(&k, key_path) == 0);
    sshsig_key_free(k);
    free(key_path);
}

static void sshsig_public_keys_and_other_files_are_refused_as_private_keys(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "");
    CHECK(key_path);
    char *pub_path = xasprintf("%s.pub", key_path);
    sshsig_key *k = NULL;
    CHECK(sshsig_key_load(&k, pub_path) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "is a public key, not a private key");
    char *fix = xasprintf("%s (the same path without .pub)", key_path);
    CHECK_CONTAINS(err_last(), fix);
    free(fix);

    /* A public key under another name, mode 600 or not. */
    char *pub = sshkeys_public_of(key_path);
    const char *renamed = test_write_file("signing-key", pub);
    CHECK(sshsig_key_load(&k, renamed) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "is a public key");

    char *missing = xasprintf("%s/nowhere", test_tmpdir());
    CHECK(sshsig_key_load(&k, missing) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "cannot read the signing key");
    CHECK_CONTAINS(err_last(), missing);
    CHECK_CONTAINS(err_last(), "No such file");
    CHECK(sshsig_key_load(&k, test_tmpdir()) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "not a regular file");

    char *fifo = xasprintf("%s/fifo", test_tmpdir());
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK(sshsig_key_load(&k, fifo) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "not a regular file");
    free(fifo);

    const char *text = test_write_file("notes.txt", "hello\n");
    CHECK(chmod(text, 0600) == 0);
    CHECK(sshsig_key_load(&k, text) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "is not an OpenSSH private key");
    CHECK(k == NULL);
    free(missing);
    free(pub);
    free(pub_path);
    free(key_path);
}

/* Rewrites key_path with its binary passed through change (mode 600). */
static int rewrite_key(const char *key_path, void (*change)(unsigned char *bin, size_t len, const char *pub))
{
    char *text, *pub = sshkeys_public_of(key_path);
    size_t len;
    if (!pub || fsio_read_file(&text, &len, key_path) != 0)
        return -1;
    const char *start = strchr(text, '\n'), *end = strstr(text, "-----END");
    unsigned char *bin;
    size_t bin_len;
    if (!start || !end || sshsig_base64_decode(&bin, &bin_len, start, (size_t)(end - start)) != 0)
        return -1;
    change(bin, bin_len, pub);
    char *b64 = sshsig_base64_encode(bin, bin_len);
    buf out = BUF_INIT;
    buf_puts(&out, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for (size_t i = 0, n = strlen(b64); i < n; i += 70) {
        buf_append(&out, b64 + i, n - i < 70 ? n - i : 70);
        buf_putc(&out, '\n');
    }
    buf_puts(&out, "-----END OPENSSH PRIVATE KEY-----\n");
    int rc = fsio_write_durable_mode(key_path, out.data, out.len, 0600);
    buf_dispose(&out);
    free(b64);
    free(bin);
    free(text);
    free(pub);
    return rc;
}

/* Flips a bit of the seed: the 32 bytes before the last copy of the public key. */
static void flip_seed(unsigned char *bin, size_t len, const char *pub)
{
    unsigned char *blob;
    size_t blob_len;
    const char *why;
    if (sshsig_public_key_decode(&blob, &blob_len, pub, &why) != 0)
        return;
    const unsigned char *pk = blob + blob_len - 32;
    for (size_t i = len - 32; i > 32; i--) {
        if (memcmp(bin + i, pk, 32) == 0) {
            bin[i - 32 + 5] ^= 1;
            break;
        }
    }
    free(blob);
}

static void flip_check_word(unsigned char *bin, size_t len, const char *pub)
{
    (void)pub;
    /* The private section is the last string; its first word is checkint 1. */
    size_t section = len;
    for (size_t i = 0; i + 4 <= len; i++) {
        uint32_t n = (uint32_t)bin[i] << 24 | (uint32_t)bin[i + 1] << 16 | (uint32_t)bin[i + 2] << 8 | bin[i + 3];
        if (n > 0 && i + 4 + n == len && n % 8 == 0) {
            section = i + 4;
            break;
        }
    }
    if (section < len)
        bin[section] ^= 1;
}

static void sshsig_corrupt_key_files_are_refused(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "");
    CHECK(key_path);
    CHECK(rewrite_key(key_path, flip_seed) == 0);
    sshsig_key *k = NULL;
    CHECK(sshsig_key_load(&k, key_path) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "not a valid openssh-key-v1 private key");
    CHECK(!message_leaks_key(key_path, err_last()));
    free(key_path);

    key_path = sshkeys_make("id2", "ed25519", NULL, "");
    CHECK(key_path);
    CHECK(rewrite_key(key_path, flip_check_word) == 0);
    CHECK(sshsig_key_load(&k, key_path) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "check words differ");

    char *text;
    size_t len;
    CHECK(fsio_read_file(&text, &len, key_path) == 0);
    CHECK(fsio_write_durable_mode(key_path, text, len / 2, 0600) == 0);
    CHECK(sshsig_key_load(&k, key_path) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "line is missing");
    CHECK(k == NULL);
    free(text);
    free(key_path);
}

/* ---- signing through ssh-keygen ------------------------------------------------------ */

static void sshsig_signing_through_ssh_keygen_works_for_rsa_and_ecdsa(void)
{
    const char *types[][2] = { { "rsa", "3072" }, { "ecdsa", "256" }, { "ed25519", NULL } };
    for (size_t i = 0; i < 3; i++) {
        char *key_path = sshkeys_make(types[i][0], types[i][0], types[i][1], "");
        CHECK(key_path);
        char *sig = NULL, *signer = NULL, *pub = sshkeys_public_of(key_path);
        static const unsigned char data[] = "commit\0body";
        CHECK(sshsig_sign_with_ssh_keygen(&sig, key_path, "git", data, sizeof data) == 0);
        CHECK_CONTAINS(sig, "-----BEGIN SSH SIGNATURE-----\n");
        CHECK(sshsig_verify(&signer, sig, "git", data, sizeof data) == 0);
        CHECK_STR(signer, pub);
        if (strcmp(types[i][0], "ed25519") == 0) {
            sshsig_key *k;
            char *ours = NULL;
            CHECK(sshsig_key_load(&k, key_path) == 0);
            CHECK(sshsig_sign(&ours, k, "git", data, sizeof data) == 0);
            CHECK_STR(ours, sig);
            free(ours);
            sshsig_key_free(k);
        }
        free(signer);
        free(sig);
        free(pub);
        free(key_path);
    }
}

static void sshsig_ssh_keygen_missing_from_path_is_a_usage_error(void)
{
    char *key_path = sshkeys_make("rsa", "rsa", "2048", "");
    CHECK(key_path);
    char *saved = getenv("PATH") ? xstrdup(getenv("PATH")) : NULL;
    setenv("PATH", test_tmpdir(), 1);
    char *sig = NULL;
    int rc = sshsig_sign_with_ssh_keygen(&sig, key_path, "git", "x", 1);
    if (saved)
        setenv("PATH", saved, 1);
    free(saved);
    CHECK(rc == DR_EUSAGE);
    CHECK(sig == NULL);
    CHECK_CONTAINS(err_last(), "ssh-keygen is not installed: install openssh-client");
    free(key_path);
}

static void sshsig_ssh_keygen_failures_carry_its_words(void)
{
    char *sig = NULL;
    char *missing = xasprintf("%s/absent", test_tmpdir());
    CHECK(sshsig_sign_with_ssh_keygen(&sig, missing, "git", "x", 1) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "cannot read the signing key");
    free(missing);
    const char *junk = test_write_file("junk", "not a key\n");
    CHECK(chmod(junk, 0600) == 0);
    CHECK(sshsig_sign_with_ssh_keygen(&sig, junk, "git", "x", 1) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "is not an OpenSSH private key");
    CHECK(sshsig_sign_with_ssh_keygen(&sig, junk, "", "x", 1) == DR_EUSAGE);
    CHECK(sig == NULL);
}

/* An encrypted key without an agent: refused before ssh-keygen could ask
 * for a passphrase. */
static void sshsig_an_encrypted_key_needs_ssh_agent(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "secret pass");
    CHECK(key_path);
    char *saved = getenv("SSH_AUTH_SOCK") ? xstrdup(getenv("SSH_AUTH_SOCK")) : NULL;
    unsetenv("SSH_AUTH_SOCK");
    char *sig = NULL;
    int rc = sshsig_sign_with_ssh_keygen(&sig, key_path, "git", "x", 1);
    if (saved)
        setenv("SSH_AUTH_SOCK", saved, 1);
    free(saved);
    CHECK(rc == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "has a passphrase, so ssh-keygen can sign with it only through ssh-agent");
    CHECK_CONTAINS(err_last(), "SSH_AUTH_SOCK is not set");
    CHECK_CONTAINS(err_last(), "ssh-add");
    free(key_path);
}

/* With ssh-agent holding the encrypted key (added through an askpass
 * script), ssh-keygen signs with it; before the key is added, drctl says
 * the agent lacks it. */
static void sign_through_agent(const char *key_path, const char *sock, const char *askpass)
{
    char *sig = NULL;
    static const unsigned char data[] = "audit\0commit";
    CHECK(sshsig_sign_with_ssh_keygen(&sig, key_path, "git", data, sizeof data) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "the agent does not hold it (SHA256:");

    char *env_sock = xasprintf("SSH_AUTH_SOCK=%s", sock), *env_askpass = xasprintf("SSH_ASKPASS=%s", askpass);
    char *env[] = { env_sock, env_askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0", NULL };
    char *argv[] = { "ssh-add", "-q", (char *)key_path, NULL };
    proc_result res;
    int added = sshkeys_run(&res, argv, env, NULL, 0) == 0 && res.exit_code == 0;
    if (!added)
        printf("    ssh-add: %s\n", res.err ? res.err : "");
    proc_result_dispose(&res);
    free(env_sock);
    free(env_askpass);
    CHECK(added);

    CHECK(sshsig_sign_with_ssh_keygen(&sig, key_path, "git", data, sizeof data) == 0);
    char *signer = NULL, *pub = sshkeys_public_of(key_path);
    CHECK(sshsig_verify(&signer, sig, "git", data, sizeof data) == 0);
    CHECK_STR(signer, pub);
    free(signer);
    free(sig);
    /* The public key file alone is enough when the agent holds the key. */
    char *pub_path = xasprintf("%s.pub", key_path);
    CHECK(sshsig_sign_with_ssh_keygen(&sig, pub_path, "git", data, sizeof data) == 0);
    CHECK(sshsig_verify(&signer, sig, "git", data, sizeof data) == 0);
    CHECK_STR(signer, pub);
    free(signer);
    free(sig);
    free(pub_path);
    free(pub);
}

static void sshsig_an_encrypted_key_signs_through_ssh_agent(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "secret pass");
    CHECK(key_path);
    char *askpass = xasprintf("%s/askpass", test_tmpdir());
    CHECK(fsio_write_durable_mode(askpass, "#!/bin/sh\necho 'secret pass'\n", 30, 0700) == 0);
    char *sock = xasprintf("%s/agent.sock", test_tmpdir());
    char *argv[] = { "ssh-agent", "-s", "-a", sock, NULL };
    proc_result res;
    CHECK(sshkeys_run(&res, argv, NULL, NULL, 0) == 0 && res.exit_code == 0);
    const char *pid_at = strstr(res.out, "SSH_AGENT_PID=");
    pid_t agent = pid_at ? (pid_t)atoi(pid_at + strlen("SSH_AGENT_PID=")) : 0;
    proc_result_dispose(&res);
    CHECK(agent > 0);

    char *saved = getenv("SSH_AUTH_SOCK") ? xstrdup(getenv("SSH_AUTH_SOCK")) : NULL;
    setenv("SSH_AUTH_SOCK", sock, 1);
    sign_through_agent(key_path, sock, askpass);
    if (saved)
        setenv("SSH_AUTH_SOCK", saved, 1);
    else
        unsetenv("SSH_AUTH_SOCK");
    free(saved);
    kill(agent, SIGTERM);
    free(sock);
    free(askpass);
    free(key_path);
}

TEST_SUITE(sshsig)
{
    REGISTER(sshsig_ed25519_signatures_equal_ssh_keygen_byte_for_byte);
    REGISTER(sshsig_key_public_and_fingerprint_match_ssh_keygen);
    REGISTER(sshsig_signing_refuses_an_empty_namespace);
    REGISTER(sshsig_verifies_ssh_keygen_signatures_of_each_key_type);
    REGISTER(sshsig_our_signatures_verify_with_ssh_keygen);
    REGISTER(sshsig_bad_armor_and_structure_say_why);
    REGISTER(sshsig_unsupported_key_types_and_hashes_are_named);
    REGISTER(sshsig_an_encrypted_key_is_refused_in_process);
    REGISTER(sshsig_keys_of_other_types_are_refused_in_process);
    REGISTER(sshsig_tells_which_keys_need_ssh_keygen);
    REGISTER(sshsig_unprotected_key_files_are_refused);
    REGISTER(sshsig_public_keys_and_other_files_are_refused_as_private_keys);
    REGISTER(sshsig_corrupt_key_files_are_refused);
    REGISTER(sshsig_signing_through_ssh_keygen_works_for_rsa_and_ecdsa);
    REGISTER(sshsig_ssh_keygen_missing_from_path_is_a_usage_error);
    REGISTER(sshsig_ssh_keygen_failures_carry_its_words);
    REGISTER(sshsig_an_encrypted_key_needs_ssh_agent);
    REGISTER(sshsig_an_encrypted_key_signs_through_ssh_agent);
}
