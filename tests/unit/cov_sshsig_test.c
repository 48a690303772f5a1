/* sshsig and allowed_signers on malformed input: key blobs, key files and
 * signatures built here byte by byte (with OpenSSL for the cryptography),
 * each wrong in one way, must be refused with a message saying how; and
 * signing through ssh-keygen with stand-in tools on PATH that fail in the
 * ways the real ones can. */
#include "test.h"

#include "allowed_signers.h"
#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "sshsig.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

/* ---- the SSH wire format, for building test input ------------------------- */

static void w_u32(buf *b, uint32_t v)
{
    unsigned char be[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                            (unsigned char)v };
    buf_append(b, be, 4);
}

static void w_str(buf *b, const void *data, size_t len)
{
    w_u32(b, (uint32_t)len);
    if (len)
        buf_append(b, data, len);
}

static void w_cstr(buf *b, const char *text)
{
    w_str(b, text, strlen(text));
}

/* An mpint from a big-endian magnitude: a zero byte first when the top bit is set. */
static void w_mpint(buf *b, const unsigned char *mag, size_t len)
{
    while (len && mag[0] == 0) {
        mag++;
        len--;
    }
    int pad = len && (mag[0] & 0x80);
    w_u32(b, (uint32_t)(len + (size_t)pad));
    if (pad)
        buf_putc(b, 0);
    if (len)
        buf_append(b, mag, len);
}

static void w_bn(buf *b, const BIGNUM *bn)
{
    unsigned char mag[1024];
    int n = BN_bn2bin(bn, mag);
    w_mpint(b, mag, (size_t)n);
}

/* "type base64" of a blob (caller frees). */
static char *public_text(const char *type, const buf *blob)
{
    char *b64 = sshsig_base64_encode(blob->data, blob->len);
    char *text = xasprintf("%s %s", type, b64);
    free(b64);
    return text;
}

/* What decoding "type base64(blob)" says: "ok" or the why. */
static const char *decode_verdict(const char *type, const buf *blob)
{
    static char verdict[200];
    char *text = public_text(type, blob);
    unsigned char *out = NULL;
    size_t len = 0;
    const char *why = "ok";
    if (sshsig_public_key_decode(&out, &len, text, &why) == 0)
        why = "ok";
    snprintf(verdict, sizeof verdict, "%s", why);
    free(out);
    free(text);
    return verdict;
}

/* ---- keys ------------------------------------------------------------------ */

static EVP_PKEY *test_ed25519(unsigned char seed[32], unsigned char pk[32])
{
    for (int i = 0; i < 32; i++)
        seed[i] = (unsigned char)(7 * i + 3);
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    size_t len = 32;
    EVP_PKEY_get_raw_public_key(pkey, pk, &len);
    return pkey;
}

static void ed25519_blob(buf *b, const unsigned char pk[32])
{
    w_cstr(b, "ssh-ed25519");
    w_str(b, pk, 32);
}

static void rsa_blob(buf *b, EVP_PKEY *pkey)
{
    BIGNUM *n = NULL, *e = NULL;
    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e);
    w_cstr(b, "ssh-rsa");
    w_bn(b, e);
    w_bn(b, n);
    BN_free(n);
    BN_free(e);
}

static void p256_blob(buf *b, EVP_PKEY *pkey)
{
    unsigned char q[133];
    size_t q_len = 0;
    EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, q, sizeof q, &q_len);
    w_cstr(b, "ecdsa-sha2-nistp256");
    w_cstr(b, "nistp256");
    w_str(b, q, q_len);
}

/* ---- signatures ------------------------------------------------------------ */

/* What SSHSIG signs (PROTOCOL.sshsig). */
static void to_be_signed(buf *out, const char *ns, const char *hash, const void *data, size_t len)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_Digest(data, len, digest, &digest_len, EVP_get_digestbyname(hash), NULL);
    buf_append(out, "SSHSIG", 6);
    w_cstr(out, ns);
    w_str(out, "", 0);
    w_cstr(out, hash);
    w_str(out, digest, digest_len);
}

/* A raw signature of tbs by pkey with md (NULL for ed25519); its length. */
static size_t raw_sign(unsigned char *sig, size_t room, EVP_PKEY *pkey, const EVP_MD *md, const buf *tbs)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = room;
    if (EVP_DigestSignInit(ctx, NULL, md, NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &len, (const unsigned char *)tbs->data, tbs->len) != 1)
        len = 0;
    EVP_MD_CTX_free(ctx);
    return len;
}

/* An SSHSIG blob from its parts, armored (caller frees). */
static char *armored_sshsig_cut(uint32_t version, const buf *public_blob, const char *ns, const char *hash,
                                const buf *signature, size_t trailing, size_t cut)
{
    buf blob = BUF_INIT;
    buf_append(&blob, "SSHSIG", 6);
    w_u32(&blob, version);
    w_str(&blob, public_blob->data, public_blob->len);
    w_cstr(&blob, ns);
    w_str(&blob, "", 0);
    w_cstr(&blob, hash);
    w_str(&blob, signature->data, signature->len);
    for (size_t i = 0; i < trailing; i++)
        buf_putc(&blob, 'T');
    if (cut)
        blob.len = cut;
    char *b64 = sshsig_base64_encode(blob.data, blob.len);
    char *text = xasprintf("-----BEGIN SSH SIGNATURE-----\n%s\n-----END SSH SIGNATURE-----\n", b64);
    free(b64);
    buf_dispose(&blob);
    return text;
}

static char *armored_sshsig(uint32_t version, const buf *public_blob, const char *ns, const char *hash,
                            const buf *signature, size_t trailing)
{
    return armored_sshsig_cut(version, public_blob, ns, hash, signature, trailing, 0);
}

/* The error of verifying armored over "data" in "git", or "(valid)". */
static const char *verify_error(const char *armored)
{
    char *signer = NULL;
    err_clear();
    int rc = sshsig_verify(&signer, armored, "git", "data", 4);
    free(signer);
    return rc == 0 ? "(valid)" : err_last();
}

/* An ed25519 signature blob over "data" in "git" with hash (sig_len bytes of it kept). */
static void ed25519_sig_blob(buf *sig_blob, EVP_PKEY *pkey, const char *name, const char *hash, size_t keep,
                             size_t trailing)
{
    buf tbs = BUF_INIT;
    to_be_signed(&tbs, "git", hash, "data", 4);
    unsigned char sig[64];
    size_t len = raw_sign(sig, sizeof sig, pkey, NULL, &tbs);
    buf_dispose(&tbs);
    w_cstr(sig_blob, name);
    w_str(sig_blob, sig, keep < len ? keep : len);
    for (size_t i = 0; i < trailing; i++)
        buf_putc(sig_blob, 0);
}

/* ---- base64 and public keys ----------------------------------------------- */

static void base64_with_bad_characters_or_padding_is_refused(void)
{
    unsigned char *out;
    size_t len;
    CHECK(sshsig_base64_decode(&out, &len, "QUJD", 4) == 0);
    CHECK(len == 3 && memcmp(out, "ABC", 3) == 0);
    free(out);
    CHECK(sshsig_base64_decode(&out, &len, "QU!D", 4) == -1);
    CHECK(out == NULL && len == 0);
    CHECK(sshsig_base64_decode(&out, &len, "QQ==QUJD", 8) == -1); /* data after the padding */
    CHECK(sshsig_base64_decode(&out, &len, "QUJDQ", 5) == -1);    /* one character left over */
    CHECK(sshsig_base64_decode(&out, &len, "QQ=", 3) == -1);      /* two left need two '=' */
    CHECK(sshsig_base64_decode(&out, &len, "QUI==", 5) == -1);    /* three left need one '=' */
    CHECK(sshsig_base64_decode(&out, &len, "QU\0D", 4) == -1);    /* a NUL is not base64 */
    CHECK(sshsig_base64_decode(&out, &len, "QUJD=", 5) == -1);    /* none left need no '=' */
    CHECK(sshsig_base64_decode(&out, &len, "QUI", 3) == -1);      /* nor may it be left out */
    CHECK(sshsig_base64_decode(&out, &len, " Q U\r\nI=\t", 9) == 0);
    CHECK(len == 2 && memcmp(out, "AB", 2) == 0);
    free(out);
}

static void public_key_text_without_type_or_base64_is_refused(void)
{
    unsigned char *blob = NULL;
    size_t len = 0;
    const char *why = NULL;
    CHECK(sshsig_public_key_decode(&blob, &len, NULL, &why) == -1);
    CHECK_STR(why, "no key type");
    CHECK(sshsig_public_key_decode(&blob, &len, "ssh-foo AAAA", &why) == -1);
    CHECK_STR(why, "unknown key type");
    CHECK(sshsig_public_key_decode(&blob, &len, "ssh-ed25519   ", &why) == -1);
    CHECK_STR(why, "no base64 key after the key type");
    CHECK(sshsig_public_key_decode(&blob, &len, "ssh-ed25519 AA!A", &why) == -1);
    CHECK_STR(why, "the key is not valid base64");
    CHECK(blob == NULL);
}

static void malformed_key_blobs_are_refused_with_the_reason(void)
{
    unsigned char pk[32] = { 0 };
    buf b = BUF_INIT;
    w_u32(&b, 99); /* a name longer than the blob */
    CHECK_STR(decode_verdict("ssh-ed25519", &b), "the key blob is truncated");
    buf_dispose(&b);

    w_cstr(&b, "ssh-nothing");
    CHECK_STR(decode_verdict("ssh-ed25519", &b), "unknown key type");
    buf_dispose(&b);

    w_cstr(&b, "ssh-ed25519");
    CHECK_STR(decode_verdict("ssh-ed25519", &b), "the key blob is truncated");
    w_str(&b, pk, 31);
    CHECK_STR(decode_verdict("ssh-ed25519", &b), "the key blob does not hold a valid key of its type");
    buf_dispose(&b);

    ed25519_blob(&b, pk);
    buf_putc(&b, 0); /* a byte after the key */
    CHECK_STR(decode_verdict("ssh-ed25519", &b), "the key blob does not hold a valid key of its type");
    buf_dispose(&b);

    ed25519_blob(&b, pk);
    CHECK_STR(decode_verdict("ssh-rsa", &b),
              "the base64 key holds a key of another type than the one named before it");
    buf_dispose(&b);
}

static void malformed_rsa_and_ecdsa_blobs_are_refused(void)
{
    const unsigned char negative[] = { 0x80, 0x01 }, one[] = { 0x01 }, zero[] = { 0x00 };
    buf b = BUF_INIT;
    w_cstr(&b, "ssh-rsa");
    w_str(&b, negative, sizeof negative); /* a negative exponent */
    w_str(&b, one, 1);
    CHECK_STR(decode_verdict("ssh-rsa", &b), "the key blob is truncated");
    buf_dispose(&b);

    w_cstr(&b, "ssh-rsa");
    w_str(&b, one, 1);
    w_str(&b, zero, 1); /* a modulus of zero */
    CHECK_STR(decode_verdict("ssh-rsa", &b), "the key blob does not hold a valid key of its type");
    buf_dispose(&b);

    w_cstr(&b, "ssh-rsa");
    w_str(&b, "", 0); /* an empty exponent */
    w_str(&b, one, 1);
    CHECK_STR(decode_verdict("ssh-rsa", &b), "the key blob does not hold a valid key of its type");
    buf_dispose(&b);

    w_cstr(&b, "ssh-rsa");
    w_str(&b, one, 1);
    w_str(&b, one, 1);
    buf_putc(&b, 0); /* a byte after the modulus */
    CHECK_STR(decode_verdict("ssh-rsa", &b), "the key blob does not hold a valid key of its type");
    buf_dispose(&b);

    unsigned char point[65];
    memset(point, 1, sizeof point);
    point[0] = 0x04;
    const char *curves[] = { "nistp384", "nistp256", "nistp256" };
    size_t lens[] = { 65, 33, 65 };
    unsigned char firsts[] = { 0x04, 0x04, 0x02 };
    for (int i = 0; i < 3; i++) {
        point[0] = firsts[i];
        w_cstr(&b, "ecdsa-sha2-nistp256");
        w_cstr(&b, curves[i]);
        w_str(&b, point, lens[i]);
        CHECK_STR(decode_verdict("ecdsa-sha2-nistp256", &b), "the key blob does not hold a valid key of its type");
        buf_dispose(&b);
    }
    w_cstr(&b, "ecdsa-sha2-nistp256");
    w_cstr(&b, "nistp256");
    CHECK_STR(decode_verdict("ecdsa-sha2-nistp256", &b), "the key blob is truncated");
    buf_dispose(&b);

    w_cstr(&b, "ssh-dss"); /* listed only: its name is enough */
    w_str(&b, one, 1);
    CHECK_STR(decode_verdict("ssh-dss", &b), "ok");
    buf_dispose(&b);
}

static void fingerprint_of_a_non_key_names_why(void)
{
    char *fp = (char *)"x";
    CHECK(sshsig_fingerprint_of(&fp, "ssh-ed25519 AAAA") == DR_EUSAGE);
    CHECK(fp == NULL);
    CHECK_CONTAINS(err_last(), "not a public key (the key blob is truncated)");
}

/* ---- key files ------------------------------------------------------------- */

/* An openssh-key-v1 file's parts, each to be spoilt by one test. */
typedef struct key_spec {
    const char *cipher;        /* "none" */
    uint32_t nkeys;            /* 1 */
    const char *header_type;   /* "ssh-ed25519" */
    int header_pk_differs;
    uint32_t check_delta;      /* check2 - check1 */
    const char *inner_type;    /* "ssh-ed25519" */
    size_t pk_len;             /* 32 */
    int sk_tail_differs;       /* the secret key's second half is not the public key */
    int seed_differs;          /* the seed does not give the public key */
    int no_comment;
    int bad_padding;
    int extra_byte;            /* the section is not whole blocks */
    size_t header_pk_len;      /* 32 */
    size_t header_cut;         /* 0, or the public blob cut to this many bytes */
    long section_cut;          /* -1, or the private section cut to this many bytes (then zero-padded) */
    size_t container_cut;      /* 0, or the whole binary cut to this many bytes */
} key_spec;

static key_spec good_spec(void)
{
    return (key_spec){ "none", 1, "ssh-ed25519", 0, 0, "ssh-ed25519", 32, 0, 0, 0, 0, 0, 32, 0, -1, 0 };
}

static char *key_text(const key_spec *s)
{
    unsigned char seed[32], pk[32];
    EVP_PKEY_free(test_ed25519(seed, pk));
    buf pub = BUF_INIT, sec = BUF_INIT, bin = BUF_INIT;
    unsigned char header_pk[32];
    memcpy(header_pk, pk, 32);
    header_pk[0] ^= (unsigned char)s->header_pk_differs;
    w_cstr(&pub, s->header_type);
    w_str(&pub, header_pk, s->header_pk_len);
    if (s->header_cut)
        pub.len = s->header_cut;
    w_u32(&sec, 0x11223344);
    w_u32(&sec, 0x11223344 + s->check_delta);
    w_cstr(&sec, s->inner_type);
    unsigned char pk_field[40] = { 0 };
    memcpy(pk_field, pk, 32);
    w_str(&sec, pk_field, s->pk_len);
    unsigned char sk[64];
    memcpy(sk, seed, 32);
    memcpy(sk + 32, pk, 32);
    sk[0] ^= (unsigned char)s->seed_differs;
    sk[63] ^= (unsigned char)s->sk_tail_differs;
    w_str(&sec, sk, 64);
    if (!s->no_comment)
        w_cstr(&sec, "tester@drctl");
    for (unsigned char i = 1; sec.len % 8 != 0; i++)
        buf_putc(&sec, s->bad_padding ? 0 : (char)i);
    if (s->extra_byte)
        buf_putc(&sec, 1);
    if (s->section_cut >= 0) {
        sec.len = (size_t)s->section_cut;
        while (sec.len % 8 != 0)
            buf_putc(&sec, 0);
    }
    buf_append(&bin, "openssh-key-v1", 15);
    w_cstr(&bin, s->cipher);
    w_cstr(&bin, "none");
    w_str(&bin, "", 0);
    w_u32(&bin, s->nkeys);
    w_str(&bin, pub.data, pub.len);
    w_str(&bin, sec.data, sec.len);
    if (s->container_cut)
        bin.len = s->container_cut;
    char *b64 = sshsig_base64_encode(bin.data, bin.len);
    char *text = xasprintf("-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----\n", b64);
    free(b64);
    buf_dispose(&pub);
    buf_dispose(&sec);
    buf_dispose(&bin);
    return text;
}

/* Writes text as a file of the test's folder with mode, without a shell
 * (the tests below change PATH); its path (static buffer). */
static const char *file_with_mode(const char *name, const char *text, mode_t mode)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    if (fsio_write_durable_mode(path, text, strlen(text), mode) != 0 || chmod(path, mode) != 0)
        printf("    cannot write %s: %s\n", path, err_last());
    return path;
}

static const char *key_file(const char *name, const char *text)
{
    return file_with_mode(name, text, 0600);
}

/* The refusal of loading a key file with text, or "(loaded)". */
static const char *load_refusal(const char *text)
{
    static int serial;
    char name[32];
    snprintf(name, sizeof name, "key%d", ++serial);
    const char *path = key_file(name, text);
    sshsig_key *k = NULL;
    err_clear();
    int rc = sshsig_key_load(&k, path);
    sshsig_key_free(k);
    if (rc == 0)
        return "(loaded)";
    return rc == DR_EUSAGE ? err_last() : "(another error code)";
}

static const char *spec_refusal(const key_spec *s)
{
    char *text = key_text(s);
    const char *why = load_refusal(text);
    free(text);
    return why;
}

static void a_key_built_here_loads_and_signs_what_verifies(void)
{
    key_spec s = good_spec();
    char *text = key_text(&s);
    const char *path = key_file("good", text);
    free(text);
    sshsig_key *k = NULL;
    CHECK(sshsig_key_load(&k, path) == 0);
    CHECK(sshsig_key_needs_ssh_keygen(path) == 0);
    char *sig = NULL, *signer = NULL;
    int rc = sshsig_sign(&sig, k, "git", "data", 4);
    int verified = rc == 0 ? sshsig_verify(&signer, sig, "git", "data", 4) : -1;
    int same = signer && strcmp(signer, sshsig_key_public(k)) == 0;
    char *no_ns = NULL;
    int no_ns_rc = sshsig_sign(&no_ns, k, NULL, "data", 4);
    int no_ns_said = strstr(err_last(), "no signature namespace given") != NULL;
    free(sig);
    free(signer);
    sshsig_key_free(k);
    CHECK(rc == 0 && verified == 0 && same);
    CHECK(no_ns_rc == DR_EUSAGE && no_ns == NULL && no_ns_said);
}

static void each_corruption_of_a_key_file_is_named(void)
{
    key_spec s = good_spec();
    s.nkeys = 2;
    CHECK_CONTAINS(spec_refusal(&s), "its header is not openssh-key-v1 holding one key");
    s = good_spec();
    s.cipher = "aes256-ctr";
    CHECK_CONTAINS(spec_refusal(&s), "has a passphrase");
    s = good_spec();
    s.header_type = "ssh-rsa";
    CHECK_CONTAINS(spec_refusal(&s), "is an RSA key");
    s = good_spec();
    s.header_type = "ssh-unknown";
    CHECK_CONTAINS(spec_refusal(&s), "is an unknown key");
    s = good_spec();
    s.header_type = "ssh-dss";
    CHECK_CONTAINS(spec_refusal(&s), "is a DSA key");
    s = good_spec();
    s.header_cut = 3;
    CHECK_CONTAINS(spec_refusal(&s), "is an unknown key");
    s = good_spec();
    s.header_pk_len = 31;
    CHECK_CONTAINS(spec_refusal(&s), "(the key blob does not hold a valid key of its type)");
    /* a private section cut short: before the check words, the key's
     * name, its public half, its secret half */
    long cuts[] = { 0, 8, 23, 59 };
    const char *cut_errors[] = { "its check words differ", "its private key is not the ed25519 key its header names",
                                 "its ed25519 key has the wrong length", "its ed25519 key has the wrong length" };
    for (int i = 0; i < 4; i++) {
        s = good_spec();
        s.section_cut = cuts[i];
        CHECK_CONTAINS(spec_refusal(&s), cut_errors[i]);
    }
    /* the container cut anywhere in its header fields */
    for (size_t cut = 16; cut < 15 + 8 + 8 + 4 + 4 + 4 + 51 + 4; cut += 3) {
        s = good_spec();
        s.container_cut = cut;
        const char *why = spec_refusal(&s);
        if (!strstr(why, "its header is not openssh-key-v1 holding one key"))
            printf("    cut at %zu: %s\n", cut, why);
        CHECK_CONTAINS(why, "its header is not openssh-key-v1 holding one key");
    }
    s = good_spec();
    s.extra_byte = 1;
    CHECK_CONTAINS(spec_refusal(&s), "its private section is not padded to whole blocks");
    s = good_spec();
    s.check_delta = 1;
    CHECK_CONTAINS(spec_refusal(&s), "its check words differ");
    s = good_spec();
    s.inner_type = "ssh-ed25519x";
    CHECK_CONTAINS(spec_refusal(&s), "its private key is not the ed25519 key its header names");
    s = good_spec();
    s.pk_len = 31;
    CHECK_CONTAINS(spec_refusal(&s), "its ed25519 key has the wrong length");
    s = good_spec();
    s.sk_tail_differs = 1;
    CHECK_CONTAINS(spec_refusal(&s), "its private key does not end with its public key");
    s = good_spec();
    s.header_pk_differs = 1;
    CHECK_CONTAINS(spec_refusal(&s), "its public key header does not match its private key");
    s = good_spec();
    s.no_comment = 1;
    CHECK_CONTAINS(spec_refusal(&s), "its comment is truncated");
    s = good_spec();
    s.bad_padding = 1;
    CHECK_CONTAINS(spec_refusal(&s), "its padding is wrong");
    s = good_spec();
    s.seed_differs = 1;
    CHECK_CONTAINS(spec_refusal(&s), "its private key does not give its public key");
}

static void key_files_that_are_not_openssh_keys_are_named_for_what_they_are(void)
{
    CHECK_CONTAINS(load_refusal("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"), "line is missing");
    CHECK_CONTAINS(load_refusal("-----BEGIN OPENSSH PRIVATE KEY-----\nAA!A\n-----END OPENSSH PRIVATE KEY-----\n"),
                   "its body is not base64");
    CHECK_CONTAINS(load_refusal("-----BEGIN OPENSSH PRIVATE KEY-----\nQUJD\n-----END OPENSSH PRIVATE KEY-----\n"),
                   "its header is not openssh-key-v1");
    CHECK_CONTAINS(load_refusal("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"),
                   "in the old PEM format");
    CHECK_CONTAINS(load_refusal("-----BEGIN CERTIFICATE-----\nMIIB\n"), "is not an OpenSSH private key");
    CHECK_CONTAINS(load_refusal("PuTTY-User-Key-File-3: ssh-ed25519\n"), "is a PuTTY key");
    CHECK_CONTAINS(load_refusal("---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n"), "is a public key, not a private key");
    CHECK_CONTAINS(load_refusal("ssh-ed25519-cert-v01@openssh.com AAAA\n"), "is a public key, not a private key");
    CHECK_CONTAINS(load_refusal("hello\n"), "is not an OpenSSH private key");
    CHECK_CONTAINS(load_refusal("-----BEGIN FOO-----\nPRIVATE KEY-----\n"), "is not an OpenSSH private key");
    CHECK_CONTAINS(load_refusal("-cert-v01@openssh.com AAAA\n"), "is not an OpenSSH private key");
    CHECK_CONTAINS(load_refusal("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjIAAAAAAAAAAAAA\n"
                                "-----END OPENSSH PRIVATE KEY-----\n"),
                   "its header is not openssh-key-v1");
    const char *pub = key_file("id.pub", "ssh-ed25519 AAAA\n");
    sshsig_key *k = NULL;
    CHECK(sshsig_key_load(&k, pub) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "give the private key file beside it");
}

static void key_paths_that_are_no_regular_files_or_too_big_are_refused(void)
{
    sshsig_key *k = NULL;
    CHECK(sshsig_key_load(&k, test_tmpdir()) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "is not a regular file");
    size_t big = 70 * 1024;
    char *text = xmalloc(big + 1);
    memset(text, 'a', big);
    text[big] = '\0';
    const char *path = key_file("big", text);
    free(text);
    CHECK(sshsig_key_load(&k, path) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "71680 bytes is far more than any key file");
    CHECK(sshsig_key_needs_ssh_keygen(path) == 0);
    CHECK(sshsig_key_needs_ssh_keygen(test_tmpdir()) == 0);
}

static void which_built_keys_need_ssh_keygen(void)
{
    key_spec s = good_spec();
    s.cipher = "aes256-ctr";
    char *text = key_text(&s);
    CHECK(sshsig_key_needs_ssh_keygen(key_file("enc", text)) == 1);
    free(text);
    s = good_spec();
    s.header_type = "ssh-rsa";
    text = key_text(&s);
    CHECK(sshsig_key_needs_ssh_keygen(key_file("rsa", text)) == 1);
    free(text);
    s = good_spec();
    s.header_type = "ssh-unknown"; /* no tool can sign with it */
    text = key_text(&s);
    CHECK(sshsig_key_needs_ssh_keygen(key_file("unknown", text)) == 0);
    free(text);
    CHECK(sshsig_key_needs_ssh_keygen(key_file("cut", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n")) == 0);
    CHECK(sshsig_key_needs_ssh_keygen(key_file("short", "-----BEGIN OPENSSH PRIVATE KEY-----\nQUJD\n"
                                                        "-----END OPENSSH PRIVATE KEY-----\n")) == 0);
    CHECK(sshsig_key_needs_ssh_keygen(key_file("pem", "-----BEGIN EC PRIVATE KEY-----\nMH\n")) == 1);
    CHECK(sshsig_key_needs_ssh_keygen(key_file("putty", "PuTTY-User-Key-File-2: ssh-rsa\n")) == 0);
}

/* ---- verifying ------------------------------------------------------------- */

static void armor_and_blob_defects_are_named(void)
{
    CHECK_CONTAINS(verify_error("-----BEGIN SSH SIGNATURE-----\nQUJD\n-----END SSH SIGNATURE-----\nmore"),
                   "text follows its");
    CHECK_CONTAINS(verify_error("-----BEGIN SSH SIGNATURE-----\nQU!D\n-----END SSH SIGNATURE-----\n"),
                   "its body is not base64");
    /* "SSHSIG" and two bytes: no room for the version */
    CHECK_CONTAINS(verify_error("-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAA=\n-----END SSH SIGNATURE-----\n"),
                   "bad signature: it is truncated");
    char *signer = NULL;
    CHECK(sshsig_verify(&signer, "x", "", "d", 1) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "no signature namespace given");
    CHECK(sshsig_verify(&signer, "x", NULL, "d", 1) == DR_EFAIL);
}

static void sshsig_fields_that_are_wrong_are_named(void)
{
    unsigned char seed[32], pk[32];
    EVP_PKEY *pkey = test_ed25519(seed, pk);
    buf pub = BUF_INIT, sig = BUF_INIT;
    ed25519_blob(&pub, pk);
    ed25519_sig_blob(&sig, pkey, "ssh-ed25519", "sha512", 64, 0);

    char *good = armored_sshsig(1, &pub, "git", "sha512", &sig, 0);
    CHECK_STR(verify_error(good), "(valid)");
    free(good);

    char *text = armored_sshsig(2, &pub, "git", "sha512", &sig, 0);
    CHECK_CONTAINS(verify_error(text), "SSHSIG version 2 is not supported (only 1)");
    free(text);
    text = armored_sshsig(1, &pub, "git", "sha512", &sig, 3);
    CHECK_CONTAINS(verify_error(text), "bad signature: 3 bytes follow the SSHSIG");
    free(text);
    text = armored_sshsig(1, &pub, "fi\"le\x01", "sha512", &sig, 0);
    CHECK_CONTAINS(verify_error(text), "made for \"fi\\x22le\\x01\", not \"git\"");
    free(text);
    text = armored_sshsig(1, &pub, "git", "md5", &sig, 0);
    CHECK_CONTAINS(verify_error(text), "unsupported signature hash \"md5\"");
    free(text);

    /* cut anywhere after the version: truncated */
    size_t whole = 6 + 4 + 4 + pub.len + 4 + 3 + 4 + 4 + 6 + 4 + sig.len;
    for (size_t cut = 10; cut < whole; cut += 7) {
        text = armored_sshsig_cut(1, &pub, "git", "sha512", &sig, 0, cut);
        const char *why = verify_error(text);
        free(text);
        if (!strstr(why, "bad signature: it is truncated"))
            printf("    cut at %zu: %s\n", cut, why);
        CHECK_CONTAINS(why, "bad signature: it is truncated");
    }
    CHECK_CONTAINS(verify_error("-----BEGIN SSH SIGNATURE-----\nU1NIU0lIAAAAAQ==\n-----END SSH SIGNATURE-----\n"),
                   "its magic is missing");
    char long_ns[101];
    memset(long_ns, 'n', 100);
    long_ns[99] = '\x7f';
    long_ns[100] = '\0';
    text = armored_sshsig(1, &pub, long_ns, "sha512", &sig, 0);
    const char *why = verify_error(text);
    free(text);
    CHECK_CONTAINS(why, "made for \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\", not");

    buf bad_pub = BUF_INIT;
    w_cstr(&bad_pub, "ssh-nothing");
    text = armored_sshsig(1, &bad_pub, "git", "sha512", &sig, 0);
    CHECK_CONTAINS(verify_error(text), "unsupported or invalid signing key \"ssh-nothing\" (unknown key type)");
    free(text);
    buf_dispose(&bad_pub);

    w_cstr(&bad_pub, "ssh-dss");
    text = armored_sshsig(1, &bad_pub, "git", "sha512", &sig, 0);
    CHECK_CONTAINS(verify_error(text), "unsupported signing key type ssh-dss");
    free(text);
    buf_dispose(&bad_pub);

    buf_dispose(&pub);
    buf_dispose(&sig);
    EVP_PKEY_free(pkey);
}

static void malformed_and_mismatched_ed25519_signatures_are_refused(void)
{
    unsigned char seed[32], pk[32];
    EVP_PKEY *pkey = test_ed25519(seed, pk);
    buf pub = BUF_INIT;
    ed25519_blob(&pub, pk);
    struct {
        const char *name;
        size_t keep, trailing;
        const char *error;
    } cases[] = {
        { "ssh-rsa", 64, 0, "its ed25519 signature is malformed" },
        { "ssh-ed25519", 63, 0, "its ed25519 signature is malformed" },
        { "ssh-ed25519", 64, 2, "its ed25519 signature is malformed" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf sig = BUF_INIT;
        ed25519_sig_blob(&sig, pkey, cases[i].name, "sha512", cases[i].keep, cases[i].trailing);
        char *text = armored_sshsig(1, &pub, "git", "sha512", &sig, 0);
        CHECK_CONTAINS(verify_error(text), cases[i].error);
        free(text);
        buf_dispose(&sig);
    }
    buf odd = BUF_INIT;
    char *empty = armored_sshsig(1, &pub, "git", "sha512", &odd, 0);
    CHECK_CONTAINS(verify_error(empty), "its ed25519 signature is malformed");
    free(empty);
    w_cstr(&odd, "ssh-ed25519");
    char *name_only = armored_sshsig(1, &pub, "git", "sha512", &odd, 0);
    CHECK_CONTAINS(verify_error(name_only), "its ed25519 signature is malformed");
    free(name_only);
    buf_dispose(&odd);
    /* A sha256 signature presented as sha512: what was signed differs. */
    buf sig = BUF_INIT;
    ed25519_sig_blob(&sig, pkey, "ssh-ed25519", "sha256", 64, 0);
    char *text = armored_sshsig(1, &pub, "git", "sha512", &sig, 0);
    CHECK_CONTAINS(verify_error(text), "the signature does not match the data");
    free(text);
    text = armored_sshsig(1, &pub, "git", "sha256", &sig, 0);
    CHECK_STR(verify_error(text), "(valid)");
    free(text);
    buf_dispose(&sig);
    buf_dispose(&pub);
    EVP_PKEY_free(pkey);
}

/* An RSA signature blob over "data" in "git" (sha512), named name, with
 * extra bytes in front of the signature when pad_front is set. */
static void rsa_sig_blob(buf *out, EVP_PKEY *pkey, const char *name, const EVP_MD *md, int pad_front, int trailing)
{
    buf tbs = BUF_INIT;
    to_be_signed(&tbs, "git", "sha512", "data", 4);
    unsigned char raw[600];
    size_t len = raw_sign(raw + 1, sizeof raw - 1, pkey, md, &tbs);
    raw[0] = 0x01;
    buf_dispose(&tbs);
    w_cstr(out, name);
    w_str(out, pad_front ? raw : raw + 1, len + (size_t)(pad_front != 0));
    if (trailing)
        buf_putc(out, 0);
}

static void rsa_signatures_with_wrong_algorithm_size_or_form_are_refused(void)
{
    EVP_PKEY *pkey = EVP_RSA_gen(1024);
    CHECK(pkey);
    buf pub = BUF_INIT;
    rsa_blob(&pub, pkey);
    struct {
        const char *name;
        const EVP_MD *md;
        int pad_front, trailing;
        const char *error;
    } cases[] = {
        { "rsa-sha2-512", EVP_sha512(), 0, 0, "(valid)" },
        { "rsa-sha2-256", EVP_sha256(), 0, 0, "(valid)" },
        { "rsa-sha2-256", EVP_sha512(), 0, 0, "the signature does not match the data" },
        { "rsa-sha2-512", EVP_sha512(), 1, 0, "the signature does not match the data" },
        { "rsa-sha2-512", EVP_sha512(), 0, 1, "its RSA signature is malformed" },
        { "ssh-rsa", EVP_sha1(), 0, 0, "unsupported RSA signature algorithm \"ssh-rsa\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf sig = BUF_INIT;
        rsa_sig_blob(&sig, pkey, cases[i].name, cases[i].md, cases[i].pad_front, cases[i].trailing);
        char *text = armored_sshsig(1, &pub, "git", "sha512", &sig, 0);
        const char *error = verify_error(text);
        free(text);
        buf_dispose(&sig);
        if (!strstr(error, cases[i].error))
            printf("    case %zu\n", i);
        CHECK_CONTAINS(error, cases[i].error);
    }
    buf odd = BUF_INIT;
    char *empty = armored_sshsig(1, &pub, "git", "sha512", &odd, 0);
    CHECK_CONTAINS(verify_error(empty), "its RSA signature is malformed");
    free(empty);
    w_cstr(&odd, "rsa-sha2-512");
    char *name_only = armored_sshsig(1, &pub, "git", "sha512", &odd, 0);
    CHECK_CONTAINS(verify_error(name_only), "its RSA signature is malformed");
    free(name_only);
    buf_dispose(&odd);
    buf_dispose(&pub);
    EVP_PKEY_free(pkey);
}

static void an_rsa_key_below_1024_bits_is_refused(void)
{
    EVP_PKEY *pkey = EVP_RSA_gen(768);
    CHECK(pkey);
    buf pub = BUF_INIT, sig = BUF_INIT;
    rsa_blob(&pub, pkey);
    rsa_sig_blob(&sig, pkey, "rsa-sha2-512", EVP_sha512(), 0, 0);
    char *text = armored_sshsig(1, &pub, "git", "sha512", &sig, 0);
    const char *error = verify_error(text);
    free(text);
    buf_dispose(&pub);
    buf_dispose(&sig);
    EVP_PKEY_free(pkey);
    CHECK_CONTAINS(error, "the RSA key has 768 bits, fewer than the 1024 ssh accepts");
}

/* An ECDSA P-256 signature blob over "data" in "git" (sha512): r and s as
 * mpints inside, then extra bytes inside or after as asked. */
static void p256_sig_blob(buf *out, EVP_PKEY *pkey, const char *name, int bad_r, int inner_trailing)
{
    buf tbs = BUF_INIT;
    to_be_signed(&tbs, "git", "sha512", "data", 4);
    unsigned char der[128];
    size_t len = raw_sign(der, sizeof der, pkey, EVP_sha256(), &tbs);
    buf_dispose(&tbs);
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(es, &r, &s);
    buf inner = BUF_INIT;
    if (bad_r) {
        BIGNUM *r1 = BN_dup(r);
        BN_add_word(r1, 1);
        w_bn(&inner, r1);
        BN_free(r1);
    } else {
        w_bn(&inner, r);
    }
    w_bn(&inner, s);
    if (inner_trailing)
        buf_putc(&inner, 0);
    ECDSA_SIG_free(es);
    w_cstr(out, name);
    w_str(out, inner.data, inner.len);
    buf_dispose(&inner);
}

static void ecdsa_signatures_malformed_or_mismatched_are_refused(void)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    CHECK(pkey);
    buf pub = BUF_INIT;
    p256_blob(&pub, pkey);
    struct {
        const char *name;
        int bad_r, inner_trailing;
        const char *error;
    } cases[] = {
        { "ecdsa-sha2-nistp256", 0, 0, "(valid)" },
        { "ecdsa-sha2-nistp384", 0, 0, "its ecdsa-sha2-nistp256 signature is malformed" },
        { "ecdsa-sha2-nistp256", 0, 1, "its ecdsa-sha2-nistp256 signature is malformed" },
        { "ecdsa-sha2-nistp256", 1, 0, "the signature does not match the data" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf sig = BUF_INIT;
        p256_sig_blob(&sig, pkey, cases[i].name, cases[i].bad_r, cases[i].inner_trailing);
        char *text = armored_sshsig(1, &pub, "git", "sha512", &sig, 0);
        const char *error = verify_error(text);
        free(text);
        buf_dispose(&sig);
        if (!strstr(error, cases[i].error))
            printf("    case %zu\n", i);
        CHECK_CONTAINS(error, cases[i].error);
    }
    /* an empty blob; a name alone; r negative; s missing; a byte after the inner string */
    const unsigned char high = 0x80, small = 0x04;
    for (int i = 0; i < 5; i++) {
        buf odd = BUF_INIT, inner = BUF_INIT;
        if (i == 2)
            w_str(&inner, &high, 1);
        if (i == 3)
            w_str(&inner, &small, 1);
        if (i == 4) {
            w_str(&inner, &small, 1);
            w_str(&inner, &small, 1);
        }
        if (i > 0)
            w_cstr(&odd, "ecdsa-sha2-nistp256");
        if (i > 1)
            w_str(&odd, inner.data, inner.len);
        if (i == 4)
            buf_putc(&odd, 0);
        char *text = armored_sshsig(1, &pub, "git", "sha512", &odd, 0);
        const char *error = verify_error(text);
        free(text);
        buf_dispose(&odd);
        buf_dispose(&inner);
        if (!strstr(error, "its ecdsa-sha2-nistp256 signature is malformed"))
            printf("    odd case %d: %s\n", i, error);
        CHECK_CONTAINS(error, "its ecdsa-sha2-nistp256 signature is malformed");
    }
    buf_dispose(&pub);
    EVP_PKEY_free(pkey);
}

static void an_ecdsa_point_off_the_curve_is_not_a_key(void)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    CHECK(pkey);
    unsigned char point[65];
    memset(point, 0x11, sizeof point);
    point[0] = 0x04;
    buf pub = BUF_INIT, sig = BUF_INIT;
    w_cstr(&pub, "ecdsa-sha2-nistp256");
    w_cstr(&pub, "nistp256");
    w_str(&pub, point, sizeof point);
    p256_sig_blob(&sig, pkey, "ecdsa-sha2-nistp256", 0, 0);
    char *text = armored_sshsig(1, &pub, "git", "sha512", &sig, 0);
    const char *error = verify_error(text);
    free(text);
    buf_dispose(&pub);
    buf_dispose(&sig);
    EVP_PKEY_free(pkey);
    CHECK_CONTAINS(error, "bad signature: its ecdsa-sha2-nistp256 public key is not valid");
}

/* ---- signing through stand-in tools ------------------------------------------ */

static char *signer_key(void);

/* Saves and restores PATH and SSH_AUTH_SOCK around a test. */
typedef struct saved_env {
    char *path, *sock;
} saved_env;

static saved_env save_env(void)
{
    const char *path = getenv("PATH"), *sock = getenv("SSH_AUTH_SOCK");
    return (saved_env){ path ? xstrdup(path) : NULL, sock ? xstrdup(sock) : NULL };
}

static void restore_env(saved_env *s)
{
    if (s->path)
        setenv("PATH", s->path, 1);
    else
        unsetenv("PATH");
    if (s->sock)
        setenv("SSH_AUTH_SOCK", s->sock, 1);
    else
        unsetenv("SSH_AUTH_SOCK");
    free(s->path);
    free(s->sock);
}

/* A stand-in tool DIR/bin/name running script (a shell script body). */
static char *tool_dir(void)
{
    char *dir = xasprintf("%s/bin", test_tmpdir());
    fsio_mkdirs(dir, 0755);
    return dir;
}

static void stand_in(const char *name, const char *script)
{
    char *rel = xasprintf("bin/%s", name);
    file_with_mode(rel, script, 0755);
    free(rel);
}

/* The error of signing "data" with key_path through ssh-keygen. */
static const char *keygen_error(const char *key_path)
{
    char *sig = NULL;
    err_clear();
    /* A stand-in may exit before it reads the data; drctl itself ignores
     * SIGPIPE (engine/signals.c), the test runner does not. */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    int rc = sshsig_sign_with_ssh_keygen(&sig, key_path, "git", "data", 4);
    signal(SIGPIPE, old);
    int valid = rc == 0 && sig && strncmp(sig, "-----BEGIN SSH SIGNATURE-----", 29) == 0;
    free(sig);
    if (rc == 0)
        return valid ? "(signed)" : "(signed, but not armored)";
    return err_last();
}

/* keygen_error with so few descriptors left that the key file can still
 * be read but no pipe to a tool can be made (a copy, caller frees). A
 * tool that cannot be started is made so rather than by a missing
 * interpreter, which valgrind (make valgrind) cannot survive. */
static char *keygen_error_without_pipes(const char *key_path)
{
    struct rlimit saved;
    int lowest_free = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (lowest_free < 0 || getrlimit(RLIMIT_NOFILE, &saved) != 0)
        return xstrdup("(cannot lower the descriptor limit)");
    close(lowest_free);
    struct rlimit lowered = { (rlim_t)lowest_free + 1, saved.rlim_max };
    if (setrlimit(RLIMIT_NOFILE, &lowered) != 0)
        return xstrdup("(cannot lower the descriptor limit)");
    char *error = xstrdup(keygen_error(key_path));
    setrlimit(RLIMIT_NOFILE, &saved);
    return error;
}

static void a_failing_ssh_keygen_is_quoted_without_its_chatter(void)
{
    saved_env saved = save_env();
    char *dir = tool_dir();
    stand_in("ssh-keygen", "#!/bin/sh\n"
                           "echo 'Signing data on standard input' >&2\n"
                           "echo '@@@@@@@@@@@@' >&2\n"
                           "echo 'first trouble  ' >&2\n"
                           "echo '   ' >&2\n"
                           "printf '\\r\\n' >&2\n"
                           "printf 'second trouble\\r\\n' >&2\n"
                           "exit 3\n");
    /* An empty entry is the current folder; a file there that cannot
     * be run is passed over. */
    char *dir0 = xasprintf("%s/bin0", test_tmpdir());
    fsio_mkdirs(dir0, 0755);
    file_with_mode("bin0/ssh-keygen", "#!/bin/sh\nexit 99\n", 0644);
    char *path = xasprintf(":%s:%s", dir0, dir);
    free(dir0);
    setenv("PATH", path, 1);
    key_spec s = good_spec();
    char *text = key_text(&s);
    char *key = xstrdup(key_file("key", text));
    free(text);
    const char *error = keygen_error(key);
    char *copy = xstrdup(error);
    stand_in("ssh-keygen", "#!/bin/sh\nexit 4\n");
    const char *silent = keygen_error(key);
    char *silent_copy = xstrdup(silent);
    stand_in("ssh-keygen", "#!/bin/sh\necho not a signature\n");
    const char *unarmored = keygen_error(key);
    char *unarmored_copy = xstrdup(unarmored);
    char *unstartable_copy = keygen_error_without_pipes(key);
    restore_env(&saved);
    free(path);
    free(dir);
    free(key);
    int ok = strstr(copy, "failed (exit 3): first trouble; second trouble") &&
             !strstr(copy, "Signing data") && !strstr(copy, "@@@");
    int ok_silent = strstr(silent_copy, "failed (exit 4): (it printed nothing)") != NULL;
    int ok_unarmored = strstr(unarmored_copy, "failed (exit 0)") != NULL;
    int ok_unstartable = strstr(unstartable_copy, "cannot create pipes") != NULL;
    if (!(ok && ok_silent && ok_unarmored && ok_unstartable))
        printf("    %s\n    %s\n    %s\n    %s\n", copy, silent_copy, unarmored_copy, unstartable_copy);
    free(copy);
    free(silent_copy);
    free(unarmored_copy);
    free(unstartable_copy);
    CHECK(ok && ok_silent && ok_unarmored && ok_unstartable);
}

/* A public key file of the test's ed25519 key; its path. */
static const char *public_key_file(void)
{
    unsigned char seed[32], pk[32];
    EVP_PKEY_free(test_ed25519(seed, pk));
    buf blob = BUF_INIT;
    ed25519_blob(&blob, pk);
    char *text = public_text("ssh-ed25519", &blob);
    buf_dispose(&blob);
    char *line = xasprintf("%s tester@drctl\n", text);
    const char *path = key_file("agent-key.pub", line);
    free(line);
    free(text);
    return path;
}

static void a_public_key_needs_an_agent_that_answers_and_holds_it(void)
{
    saved_env saved = save_env();
    char *dir = tool_dir();
    stand_in("ssh-keygen", "#!/bin/sh\necho '-----BEGIN SSH SIGNATURE-----'\n");
    setenv("PATH", dir, 1);
    const char *pub = public_key_file();
    char *pub_path = xstrdup(pub);

    unsetenv("SSH_AUTH_SOCK");
    char *no_sock = xstrdup(keygen_error(pub_path));
    setenv("SSH_AUTH_SOCK", "", 1);
    char *empty_sock = xstrdup(keygen_error(pub_path));
    setenv("SSH_AUTH_SOCK", "/nonexistent/agent.sock", 1);
    /* no ssh-add on PATH: whether the agent holds the key is ssh-keygen's to find out */
    char *no_ssh_add = xstrdup(keygen_error(pub_path));
    stand_in("ssh-add", "#!/bin/sh\necho 'Error connecting to agent: No such file or directory' >&2\nexit 2\n");
    char *dead_agent = xstrdup(keygen_error(pub_path));
    stand_in("ssh-add", "#!/bin/sh\necho 'The agent has no identities.'\nexit 1\n");
    char *empty_agent = xstrdup(keygen_error(pub_path));
    char *listing = xasprintf("#!/bin/sh\necho 'not a key'\nprintf '%%s\\n' '%s'\n", "ssh-ed25519 AAAA");
    stand_in("ssh-add", listing);
    free(listing);
    char *other_keys = xstrdup(keygen_error(pub_path));
    char *pub_text = NULL;
    fsio_read_file(&pub_text, NULL, pub_path);
    /* another key first, then this one */
    listing = xasprintf("#!/bin/sh\necho 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'\n"
                        "echo '%.*s'\n", (int)strcspn(pub_text, "\n"), pub_text);
    free(pub_text);
    stand_in("ssh-add", listing);
    free(listing);
    char *holding_agent = xstrdup(keygen_error(pub_path));
    /* ssh-add cannot be run either: whether the agent holds the key is
     * left to ssh-keygen, which cannot be run then */
    char *broken_ssh_add = keygen_error_without_pipes(pub_path);
    restore_env(&saved);
    free(dir);

    int ok = strstr(no_sock, "is a public key, so ssh-keygen can sign with it only through ssh-agent, and "
                             "SSH_AUTH_SOCK is not set") &&
             strstr(empty_sock, "SSH_AUTH_SOCK is not set") &&
             strcmp(no_ssh_add, "(signed)") == 0 &&
             strstr(dead_agent, "does not answer (Error connecting to agent: No such file or directory)") &&
             strstr(empty_agent, "the agent does not hold it (SHA256:") &&
             strstr(other_keys, "the agent does not hold it") && strcmp(holding_agent, "(signed)") == 0 &&
             strstr(broken_ssh_add, "cannot create pipes");
    if (!ok)
        printf("    %s\n    %s\n    %s\n    %s\n    %s\n    %s\n    %s\n", no_sock, no_ssh_add, dead_agent,
               empty_agent, other_keys, holding_agent, broken_ssh_add);
    free(no_sock);
    free(empty_sock);
    free(no_ssh_add);
    free(dead_agent);
    free(empty_agent);
    free(other_keys);
    free(holding_agent);
    free(broken_ssh_add);
    free(pub_path);
    CHECK(ok);
}

static void keys_ssh_keygen_cannot_be_checked_for_are_refused_before_it_runs(void)
{
    saved_env saved = save_env();
    char *dir = tool_dir();
    stand_in("ssh-keygen", "#!/bin/sh\necho '-----BEGIN SSH SIGNATURE-----'\n");
    setenv("PATH", dir, 1);
    setenv("SSH_AUTH_SOCK", "/nonexistent/agent.sock", 1);
    char *pem = xstrdup(keygen_error(key_file("pem", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                                                    "DEK-Info: AES-128-CBC,00\n\nAAAA\n"
                                                    "-----END RSA PRIVATE KEY-----\n")));
    char *plain_pem = xstrdup(keygen_error(key_file("plain-pem", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n"
                                                                 "-----END RSA PRIVATE KEY-----\n")));
    char *bad_pub = xstrdup(keygen_error(key_file("bad.pub", "ssh-ed25519 !!!!\n")));
    char *putty = xstrdup(keygen_error(key_file("putty", "PuTTY-User-Key-File-3: ssh-ed25519\n")));
    char *nothing = xstrdup(keygen_error(key_file("nothing", "nothing\n")));
    const char *open_key = file_with_mode("open-key", "-----BEGIN OPENSSH PRIVATE KEY-----\n", 0644);
    char *unprotected = xstrdup(keygen_error(open_key));
    char *absent_path = xasprintf("%s/absent", test_tmpdir());
    char *absent = xstrdup(keygen_error(absent_path));
    /* ssh-keygen reads a cut key itself (and says what is wrong) */
    char *cut = xstrdup(keygen_error(key_file("cut", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n")));
    /* a key with a passphrase, held by the agent */
    char *pub = signer_key();
    char *listing = xasprintf("#!/bin/sh\necho '%s'\n", pub);
    free(pub);
    stand_in("ssh-add", listing);
    free(listing);
    key_spec enc_spec = good_spec();
    enc_spec.cipher = "aes256-ctr";
    char *enc_text = key_text(&enc_spec);
    char *held = xstrdup(keygen_error(key_file("enc", enc_text)));
    free(enc_text);
    free(absent_path);
    restore_env(&saved);
    free(dir);
    int ok = strstr(pem, "has a passphrase and its public key cannot be read without the passphrase") &&
             strcmp(plain_pem, "(signed)") == 0 && strstr(bad_pub, "is a public key of a kind drctl cannot read") &&
             strstr(putty, "is a PuTTY key") && strstr(nothing, "is not an OpenSSH private key") &&
             strstr(unprotected, "UNPROTECTED PRIVATE KEY FILE") && strstr(absent, "cannot read the signing key") &&
             strcmp(cut, "(signed)") == 0 && strcmp(held, "(signed)") == 0;
    if (!ok)
        printf("    %s\n    %s\n    %s\n    %s\n    %s\n    %s\n    %s\n    %s\n    %s\n", pem, plain_pem, bad_pub,
               putty, nothing, unprotected, absent, cut, held);
    free(cut);
    free(held);
    free(pem);
    free(plain_pem);
    free(bad_pub);
    free(putty);
    free(nothing);
    free(unprotected);
    free(absent);
    CHECK(ok);
}

static void an_empty_path_looks_in_the_system_folders(void)
{
    saved_env saved = save_env();
    setenv("PATH", "", 1);
    char *sig = NULL;
    char *absent = xasprintf("%s/absent", test_tmpdir());
    int rc = sshsig_sign_with_ssh_keygen(&sig, absent, "git", "d", 1);
    free(absent);
    char *error = xstrdup(err_last());
    unsetenv("PATH"); /* no PATH at all: the same folders */
    char *unset_sig = NULL;
    int unset_rc = sshsig_sign_with_ssh_keygen(&unset_sig, "", "git", "d", 1);
    free(unset_sig);
    restore_env(&saved);
    int found = access("/usr/bin/ssh-keygen", X_OK) == 0 || access("/bin/ssh-keygen", X_OK) == 0;
    int ok = rc == DR_EUSAGE && unset_rc == DR_EUSAGE &&
             strstr(error, found ? "cannot read the signing key" : "ssh-keygen is not installed");
    if (!ok)
        printf("    %s\n", error);
    free(error);
    free(sig);
    CHECK(ok);
}

/* ---- allowed signers ---------------------------------------------------------- */

static char *signer_key(void)
{
    unsigned char seed[32], pk[32];
    EVP_PKEY_free(test_ed25519(seed, pk));
    buf blob = BUF_INIT;
    ed25519_blob(&blob, pk);
    char *text = public_text("ssh-ed25519", &blob);
    buf_dispose(&blob);
    return text;
}

/* The refusal of one line with options opts, or "(accepted)". */
static const char *line_refusal(const char *opts)
{
    char *key = signer_key();
    char *text = xasprintf("alice@example.com %s %s\n", opts, key);
    free(key);
    allowed_signers *a = NULL;
    err_clear();
    int rc = allowed_signers_parse(&a, "signers", text);
    free(text);
    allowed_signers_free(a);
    return rc == 0 ? "(accepted)" : err_last();
}

static void times_ssh_keygen_would_not_read_are_refused(void)
{
    const char *bad[] = {
        "valid-after=\"2025010xZ\"", "valid-after=\"202501012400Z\"", "valid-after=\"202501010060Z\"",
        "valid-after=\"20250101000060Z\"", "valid-after=\"19700101Z\"", "valid-after=\"20250001Z\"",
        "valid-after=\"20251301Z\"", "valid-after=\"20250100Z\"", "valid-after=\"20250132Z\"",
        "valid-after=\"19000229Z\"", "valid-after=\"2025Z\"", "valid-after=\"Z\"",
        "valid-before=\"2025010112Z\"", "valid-after=\"2025010/Z\"", "valid-after=\"UTC\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *why = line_refusal(bad[i]);
        if (!strstr(why, "is not a time ssh-keygen reads"))
            printf("    %s: %s\n", bad[i], why);
        CHECK_CONTAINS(why, "is not a time ssh-keygen reads");
    }
    const char *good[] = {
        "valid-after=\"20000229z\"", "valid-after=\"202501011230UTC\"", "valid-after=\"20250101123059utc\"",
        "valid-after=\"20240229Z\"", "valid-before=\"99991231235959Z\"",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        const char *why = line_refusal(good[i]);
        if (strcmp(why, "(accepted)") != 0)
            printf("    %s: %s\n", good[i], why);
        CHECK_STR(why, "(accepted)");
    }
}

static void quoted_quotes_in_option_values_are_kept(void)
{
    char *key = signer_key();
    char *text = xasprintf("alice@example.com namespaces=\"a\\\"b,git\" %s\n", key);
    allowed_signers *a = NULL;
    int rc = allowed_signers_parse(&a, "signers", text);
    free(text);
    CHECK(rc == 0);
    const char *why = NULL;
    int permits = allowed_signers_permits(a, "alice@example.com", key, "git", 1e9, &why);
    int quoted = allowed_signers_permits(a, "alice@example.com", key, "a\"b", 1e9, &why);
    int other = allowed_signers_permits(a, "alice@example.com", key, "file", 1e9, &why);
    char *why_other = xstrdup(why);
    allowed_signers_free(a);
    free(key);
    CHECK(permits == 1 && quoted == 1 && other == 0);
    CHECK_CONTAINS(why_other, "only in namespaces \"a\"b,git\", not in \"file\"");
    free(why_other);
}

static void an_overlong_pattern_matches_nothing(void)
{
    size_t n = 1100;
    char *pattern = xmalloc(n + 1);
    memset(pattern, '*', n);
    pattern[n] = '\0';
    CHECK(allowed_signers_match_list("anyone", pattern) == 0);
    pattern[1000] = ',';
    pattern[1001] = '\0';
    int matched = allowed_signers_match_list("anyone", pattern);
    free(pattern);
    CHECK(matched == 1);
}

static void principals_of_a_non_key_is_null(void)
{
    char *key = signer_key();
    char *text = xasprintf("alice@example.com %s\n", key);
    allowed_signers *a = NULL;
    int rc = allowed_signers_parse(&a, "signers", text);
    free(text);
    CHECK(rc == 0);
    const char *bad = allowed_signers_principals_of(a, "ssh-ed25519 AA!A");
    const char *good = allowed_signers_principals_of(a, key);
    int ok = bad == NULL && good && strcmp(good, "alice@example.com") == 0;
    allowed_signers_free(a);
    free(key);
    CHECK(ok);
}

static void options_given_twice_unknown_or_without_a_value_are_refused(void)
{
    CHECK_CONTAINS(line_refusal("valid-after=\"20250101Z\",VALID-AFTER=\"20250102Z\""),
                   "valid-after= is given twice; give it once (");
    CHECK_CONTAINS(line_refusal("valid-before=\"20250101Z\",valid-before=\"20250102Z\""),
                   "valid-before= is given twice");
    CHECK_CONTAINS(line_refusal("namespaces="), "the value of namespaces= must be in double quotes");
    CHECK_STR(line_refusal("Namespaces=\"git\",Cert-Authority"), "(accepted)");
    CHECK_CONTAINS(line_refusal("namespaces"), "\"namespaces\" is neither a key type");
    CHECK_CONTAINS(line_refusal("foo,namespaces=\"git\""), "unknown option \"foo\"");
    CHECK_CONTAINS(line_refusal("cert-auth,namespaces=\"git\""), "unknown option \"cert-auth\"");
    CHECK_CONTAINS(line_refusal("cert-authority2,namespaces=\"git\""), "unknown option \"cert-authority2\"");
    /* quoted principals may hold '=' */
    char *key = signer_key();
    char *text = xasprintf("\"role=admin\" %s\n", key);
    allowed_signers *a = NULL;
    int rc = allowed_signers_parse(&a, "signers", text);
    int permits = rc == 0 && allowed_signers_permits(a, "role=admin", key, "git", 1e9, NULL);
    allowed_signers_free(a);
    free(text);
    free(key);
    CHECK(permits);
}

static void many_lines_are_all_kept(void)
{
    char *key = signer_key();
    buf text = BUF_INIT;
    for (int i = 0; i < 20; i++)
        buf_printf(&text, "user%d@example.com %s\r\n", i, key);
    allowed_signers *a = NULL;
    int rc = allowed_signers_parse(&a, "signers", text.data);
    buf_dispose(&text);
    CHECK(rc == 0);
    int count = allowed_signers_count(a);
    int last = allowed_signers_permits(a, "user19@example.com", key, "git", 1e9, NULL);
    allowed_signers_free(a);
    free(key);
    CHECK(count == 20);
    CHECK(last == 1);
}

static void the_closest_line_says_why_whatever_the_order(void)
{
    char *key = signer_key();
    char *text = xasprintf("bob@example.com %s\n"
                           "alice@example.com namespaces=\"file\" %s\n"
                           "alice@example.com cert-authority %s\n"
                           "carol@example.com %s\n"
                           "alice@example.com namespaces=\"tmp\" %s\n",
                           key, key, key, key, key);
    allowed_signers *a = NULL;
    int rc = allowed_signers_parse(&a, "signers", text);
    free(text);
    CHECK(rc == 0);
    const char *why = NULL;
    int alice = allowed_signers_permits(a, "alice@example.com", key, "git", 1e9, &why);
    char *why_alice = xstrdup(why);
    int nobody = allowed_signers_permits(a, NULL, key, NULL, 1e9, &why);
    char *why_nobody = xstrdup(why);
    allowed_signers_free(a);
    free(key);
    int ok = alice == 0 && strstr(why_alice, "signers:2 allows this key to sign only in namespaces \"file\"") &&
             nobody == 0 && strstr(why_nobody, "signers:1 lists this key for \"bob@example.com\", which does not "
                                               "match \"\"");
    if (!ok)
        printf("    %s\n    %s\n", why_alice, why_nobody);
    free(why_alice);
    free(why_nobody);
    CHECK(ok);
}

TEST_SUITE(cov_sshsig)
{
    REGISTER(base64_with_bad_characters_or_padding_is_refused);
    REGISTER(public_key_text_without_type_or_base64_is_refused);
    REGISTER(malformed_key_blobs_are_refused_with_the_reason);
    REGISTER(malformed_rsa_and_ecdsa_blobs_are_refused);
    REGISTER(fingerprint_of_a_non_key_names_why);
    REGISTER(a_key_built_here_loads_and_signs_what_verifies);
    REGISTER(each_corruption_of_a_key_file_is_named);
    REGISTER(key_files_that_are_not_openssh_keys_are_named_for_what_they_are);
    REGISTER(key_paths_that_are_no_regular_files_or_too_big_are_refused);
    REGISTER(which_built_keys_need_ssh_keygen);
    REGISTER(armor_and_blob_defects_are_named);
    REGISTER(sshsig_fields_that_are_wrong_are_named);
    REGISTER(malformed_and_mismatched_ed25519_signatures_are_refused);
    REGISTER(rsa_signatures_with_wrong_algorithm_size_or_form_are_refused);
    REGISTER(an_rsa_key_below_1024_bits_is_refused);
    REGISTER(ecdsa_signatures_malformed_or_mismatched_are_refused);
    REGISTER(an_ecdsa_point_off_the_curve_is_not_a_key);
    REGISTER(a_failing_ssh_keygen_is_quoted_without_its_chatter);
    REGISTER(a_public_key_needs_an_agent_that_answers_and_holds_it);
    REGISTER(keys_ssh_keygen_cannot_be_checked_for_are_refused_before_it_runs);
    REGISTER(an_empty_path_looks_in_the_system_folders);
    REGISTER(times_ssh_keygen_would_not_read_are_refused);
    REGISTER(quoted_quotes_in_option_values_are_kept);
    REGISTER(an_overlong_pattern_matches_nothing);
    REGISTER(principals_of_a_non_key_is_null);
    REGISTER(options_given_twice_unknown_or_without_a_value_are_refused);
    REGISTER(many_lines_are_all_kept);
    REGISTER(the_closest_line_says_why_whatever_the_order);
}
