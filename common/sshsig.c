#include "sshsig.h"

#include "buf.h"
#include "err.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

/* PROTOCOL.sshsig: the blob's magic, its version, and the armor. */
#define SSHSIG_MAGIC "SSHSIG"
#define SSHSIG_MAGIC_LEN 6
#define SSHSIG_VERSION 1
#define ARMOR_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define ARMOR_END "-----END SSH SIGNATURE-----"
/* ssh-keygen wraps the base64 of keys and signatures at 70 columns. */
#define ARMOR_LINE 70

/* PROTOCOL.key: the openssh-key-v1 private key file. */
#define KEY_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define KEY_END "-----END OPENSSH PRIVATE KEY-----"
#define KEY_MAGIC "openssh-key-v1"          /* followed by a NUL byte */
#define KEY_MAGIC_LEN (sizeof KEY_MAGIC)     /* with that NUL */
/* The private section of an unencrypted key is padded to this. */
#define KEY_CLEAR_BLOCK 8
/* Larger than any OpenSSH private key (an RSA 16384 key is about 13 KB). */
#define KEY_FILE_MAX (64 * 1024)

#define ED25519_PUBLIC_LEN 32
#define ED25519_SEED_LEN 32
#define ED25519_SIG_LEN 64
/* ssh refuses RSA keys below this (SSH_RSA_MINIMUM_MODULUS_SIZE). */
#define RSA_MIN_BITS 1024

/* How long ssh-keygen may take: a FIDO key waits for a touch. */
#define SSH_KEYGEN_TIMEOUT 60.0

#define MAKE_ED25519_HINT "ssh-keygen -t ed25519 -N '' -f NEW_KEY_PATH"

struct sshsig_key {
    EVP_PKEY *pkey;           /* holds the private seed; OpenSSL wipes it when freed */
    unsigned char *public_blob;
    size_t public_blob_len;
    char *public_text;        /* "ssh-ed25519 AAAA..." */
    char *fingerprint;        /* "SHA256:..." */
};

/* ---- base64 ---------------------------------------------------------- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sshsig_base64_encode(const void *data, size_t len)
{
    const unsigned char *in = data;
    char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = b64_alphabet[v >> 18 & 63];
        *o++ = b64_alphabet[v >> 12 & 63];
        *o++ = b64_alphabet[v >> 6 & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        *o++ = b64_alphabet[v >> 18 & 63];
        *o++ = b64_alphabet[v >> 12 & 63];
        *o++ = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64_alphabet, c) : NULL;
    return p ? (int)(p - b64_alphabet) : -1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Decodes into one allocation of the final size (never grown), so that a
 * private key's bytes exist in one place that the caller can wipe. */
int sshsig_base64_decode(unsigned char **out, size_t *out_len, const char *text, size_t text_len)
{
    *out = NULL;
    *out_len = 0;
    unsigned char *bytes = xmalloc(text_len / 4 * 3 + 3);
    size_t n = 0;
    uint32_t acc = 0;
    int held = 0, pad = 0;
    for (size_t i = 0; i < text_len; i++) {
        char c = text[i];
        if (is_space(c))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad) {
            free(bytes);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        if (++held == 4) {
            bytes[n++] = (unsigned char)(acc >> 16);
            bytes[n++] = (unsigned char)(acc >> 8);
            bytes[n++] = (unsigned char)acc;
            acc = 0;
            held = 0;
        }
    }
    /* Padded as ssh writes it: 2 or 3 characters left need 2 or 1 '='. */
    int ok = (held == 0 && pad == 0) || (held == 2 && pad == 2) || (held == 3 && pad == 1);
    if (!ok) {
        OPENSSL_cleanse(bytes, n);
        free(bytes);
        return -1;
    }
    if (held == 2) {
        bytes[n++] = (unsigned char)(acc >> 4);
    } else if (held == 3) {
        bytes[n++] = (unsigned char)(acc >> 10);
        bytes[n++] = (unsigned char)(acc >> 2);
    }
    *out = bytes;
    *out_len = n;
    return 0;
}

/* ---- the SSH wire format (RFC 4251 section 5) -------------------------- */

typedef struct wire {
    const unsigned char *p;
    size_t left;
} wire;

static int wire_u32(wire *w, uint32_t *v)
{
    if (w->left < 4)
        return -1;
    *v = (uint32_t)w->p[0] << 24 | (uint32_t)w->p[1] << 16 | (uint32_t)w->p[2] << 8 | w->p[3];
    w->p += 4;
    w->left -= 4;
    return 0;
}

static int wire_string(wire *w, wire *s)
{
    uint32_t len;
    if (wire_u32(w, &len) != 0 || len > w->left)
        return -1;
    s->p = w->p;
    s->left = len;
    w->p += len;
    w->left -= len;
    return 0;
}

static int wire_is(const wire *s, const char *text)
{
    return s->left == strlen(text) && memcmp(s->p, text, s->left) == 0;
}

/* An mpint that must not be negative; *s is left on its magnitude
 * without leading zero bytes. */
static int wire_mpint(wire *w, wire *s)
{
    if (wire_string(w, s) != 0 || (s->left > 0 && (s->p[0] & 0x80)))
        return -1;
    while (s->left > 0 && s->p[0] == 0) {
        s->p++;
        s->left--;
    }
    return 0;
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
    if (len)
        buf_append(b, data, len);
}

static void put_cstring(buf *b, const char *text)
{
    put_string(b, text, strlen(text));
}

/* ---- key types ---------------------------------------------------------- */

enum key_kind { KIND_ED25519, KIND_RSA, KIND_ECDSA, KIND_OTHER };

typedef struct key_type {
    const char *name;         /* as in the blob and in authorized_keys */
    const char *label;        /* as ssh-keygen -l shows it */
    enum key_kind kind;
    const char *curve;        /* ECDSA: the blob's curve name */
    const char *group;        /* ECDSA: OpenSSL's group name */
    size_t field_len;         /* ECDSA: bytes of one coordinate */
} key_type;

static const key_type key_types[] = {
    { "ssh-ed25519", "ED25519", KIND_ED25519, NULL, NULL, 0 },
    { "ssh-rsa", "RSA", KIND_RSA, NULL, NULL, 0 },
    { "ecdsa-sha2-nistp256", "ECDSA", KIND_ECDSA, "nistp256", "P-256", 32 },
    { "ecdsa-sha2-nistp384", "ECDSA", KIND_ECDSA, "nistp384", "P-384", 48 },
    { "ecdsa-sha2-nistp521", "ECDSA", KIND_ECDSA, "nistp521", "P-521", 66 },
    { "sk-ssh-ed25519@openssh.com", "ED25519-SK", KIND_OTHER, NULL, NULL, 0 },
    { "sk-ecdsa-sha2-nistp256@openssh.com", "ECDSA-SK", KIND_OTHER, NULL, NULL, 0 },
    { "ssh-dss", "DSA", KIND_OTHER, NULL, NULL, 0 },
    { NULL, NULL, KIND_OTHER, NULL, NULL, 0 },
};

static const key_type *key_type_named(const void *name, size_t len)
{
    for (const key_type *t = key_types; t->name; t++)
        if (strlen(t->name) == len && memcmp(t->name, name, len) == 0)
            return t;
    return NULL;
}

int sshsig_known_key_type(const char *name, size_t len)
{
    return key_type_named(name, len) != NULL;
}

/* The ECDSA hash is fixed by the curve (RFC 5656 section 6.2.1). */
static const EVP_MD *ecdsa_md(const key_type *t)
{
    return t->field_len == 32 ? EVP_sha256() : t->field_len == 48 ? EVP_sha384() : EVP_sha512();
}

/* Checks that blob is a well-formed public key; returns its type, or NULL
 * with *why. Key types drctl only lists (FIDO, DSA) are checked by name. */
static const key_type *check_public_blob(const unsigned char *blob, size_t len, const char **why)
{
    wire w = { blob, len }, name, a, b;
    if (wire_string(&w, &name) != 0) {
        *why = "the key blob is truncated";
        return NULL;
    }
    const key_type *t = key_type_named(name.p, name.left);
    if (!t) {
        *why = "unknown key type";
        return NULL;
    }
    int read = 1, ok = 1;
    switch (t->kind) {
    case KIND_ED25519:
        read = wire_string(&w, &a) == 0;
        ok = read && a.left == ED25519_PUBLIC_LEN && w.left == 0;
        break;
    case KIND_RSA:
        read = wire_mpint(&w, &a) == 0 && wire_mpint(&w, &b) == 0;
        ok = read && a.left > 0 && b.left > 0 && w.left == 0;
        break;
    case KIND_ECDSA:
        read = wire_string(&w, &a) == 0 && wire_string(&w, &b) == 0;
        ok = read && wire_is(&a, t->curve) && b.left == 1 + 2 * t->field_len && b.p[0] == 0x04 && w.left == 0;
        break;
    case KIND_OTHER:
        break;
    }
    if (!ok) {
        *why = read ? "the key blob does not hold a valid key of its type" : "the key blob is truncated";
        return NULL;
    }
    return t;
}

int sshsig_public_key_decode(unsigned char **blob, size_t *blob_len, const char *public_key, const char **why)
{
    *blob = NULL;
    *blob_len = 0;
    const char *p = public_key ? public_key : "";
    p += strspn(p, " \t");
    size_t type_len = strcspn(p, " \t\r\n");
    const key_type *t = key_type_named(p, type_len);
    if (!t) {
        *why = type_len ? "unknown key type" : "no key type";
        return -1;
    }
    const char *b64 = p + type_len;
    b64 += strspn(b64, " \t");
    size_t b64_len = strcspn(b64, " \t\r\n");
    if (b64_len == 0) {
        *why = "no base64 key after the key type";
        return -1;
    }
    unsigned char *bytes;
    size_t n;
    if (sshsig_base64_decode(&bytes, &n, b64, b64_len) != 0) {
        *why = "the key is not valid base64";
        return -1;
    }
    const key_type *inner = check_public_blob(bytes, n, why);
    if (!inner || inner != t) {
        if (inner)
            *why = "the base64 key holds a key of another type than the one named before it";
        free(bytes);
        return -1;
    }
    *blob = bytes;
    *blob_len = n;
    return 0;
}

static char *fingerprint_of_blob(const unsigned char *blob, size_t len)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_Digest(blob, len, digest, &digest_len, EVP_sha256(), NULL);
    char *b64 = sshsig_base64_encode(digest, digest_len);
    b64[strcspn(b64, "=")] = '\0';       /* ssh-keygen -l leaves out the padding */
    char *fp = xasprintf("SHA256:%s", b64);
    free(b64);
    return fp;
}

int sshsig_fingerprint_of(char **fingerprint, const char *public_key)
{
    *fingerprint = NULL;
    unsigned char *blob;
    size_t len;
    const char *why;
    if (sshsig_public_key_decode(&blob, &len, public_key, &why) != 0)
        return err_set(DR_EUSAGE, "not a public key (%s): give it as \"type base64\", e.g. ssh-ed25519 AAAA...",
                       why);
    *fingerprint = fingerprint_of_blob(blob, len);
    free(blob);
    return 0;
}

static char *public_text_of_blob(const unsigned char *blob, size_t len)
{
    wire w = { blob, len }, name;
    if (wire_string(&w, &name) != 0)
        return NULL;
    char *b64 = sshsig_base64_encode(blob, len);
    char *text = xasprintf("%.*s %s", (int)name.left, (const char *)name.p, b64);
    free(b64);
    return text;
}

/* ---- reading a key file --------------------------------------------------- */

/* What a key file turned out to be, judged from its text alone. */
enum file_kind { FILE_OPENSSH_PRIVATE, FILE_PEM_PRIVATE, FILE_PUBLIC, FILE_PUTTY, FILE_NOT_A_KEY };

static int starts_with(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

static enum file_kind classify_key_text(const char *text)
{
    text += strspn(text, " \t\r\n");
    if (starts_with(text, KEY_BEGIN))
        return FILE_OPENSSH_PRIVATE;
    if (starts_with(text, "-----BEGIN ")) {
        const char *eol = text + strcspn(text, "\n");
        const char *tag = strstr(text, "PRIVATE KEY-----");
        return tag && tag < eol ? FILE_PEM_PRIVATE : FILE_NOT_A_KEY;
    }
    if (starts_with(text, "---- BEGIN SSH2 PUBLIC KEY"))
        return FILE_PUBLIC;
    if (starts_with(text, "PuTTY-User-Key-File"))
        return FILE_PUTTY;
    size_t word = strcspn(text, " \t\r\n");
    static const char cert_suffix[] = "-cert-v01@openssh.com";
    size_t cert_len = sizeof cert_suffix - 1;
    if (key_type_named(text, word) ||
        (word > cert_len && memcmp(text + word - cert_len, cert_suffix, cert_len) == 0))
        return FILE_PUBLIC;
    return FILE_NOT_A_KEY;
}

/* The file's content, read through one descriptor so that the mode checked
 * is the mode of the file read. *text is one exact allocation for the
 * caller to wipe. */
static int read_key_file(char **text, size_t *len, mode_t *mode, const char *path)
{
    *text = NULL;
    /* O_NONBLOCK: a FIFO given as the key must not hang the open. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return err_set(DR_EUSAGE,
                       "cannot read the signing key %s: %s; give the path of an OpenSSH private key file "
                       "(make one with: " MAKE_ED25519_HINT ")",
                       path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(DR_EUSAGE, "the signing key %s is not a regular file: give the path of an OpenSSH private key file",
                       path);
    }
    if (st.st_size > KEY_FILE_MAX) {
        close(fd);
        return err_set(DR_EUSAGE, "%s is not a private key (%lld bytes is far more than any key file): "
                       "give the path of an OpenSSH private key file", path, (long long)st.st_size);
    }
    size_t want = (size_t)st.st_size, got = 0;
    char *data = xmalloc(want + 1);
    while (got < want) {
        ssize_t n = read(fd, data + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            OPENSSL_cleanse(data, got);
            free(data);
            return err_set(DR_EUSAGE, "cannot read the signing key %s: %s", path, strerror(saved));
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    data[got] = '\0';
    *text = data;
    *len = got;
    *mode = st.st_mode;
    return 0;
}

static void wipe_text(char *text, size_t len)
{
    if (!text)
        return;
    OPENSSL_cleanse(text, len);
    free(text);
}

static int refuse_public_key_file(const char *path)
{
    size_t len = strlen(path);
    if (len > 4 && strcmp(path + len - 4, ".pub") == 0)
        return err_set(DR_EUSAGE, "%s is a public key, not a private key: give the private key file beside it, "
                       "%.*s (the same path without .pub)", path, (int)(len - 4), path);
    return err_set(DR_EUSAGE, "%s is a public key, not a private key: give the private key file "
                   "(the one ssh-keygen wrote without the .pub suffix)", path);
}

/* ssh ignores a private key that others may read or change; so does drctl. */
static int refuse_unprotected(const char *path, mode_t mode)
{
    if ((mode & 077) == 0)
        return 0;
    return err_set(DR_EUSAGE, "UNPROTECTED PRIVATE KEY FILE %s: its permissions 0%03o let other users read or "
                   "change it, so it is not used; run: chmod 600 %s", path, (unsigned)(mode & 0777), path);
}

/* The decoded binary of an openssh-key-v1 file (caller wipes and frees). */
static int decode_openssh_armor(unsigned char **bin, size_t *bin_len, const char *text, const char *path)
{
    const char *start = strstr(text, KEY_BEGIN);
    const char *end = start ? strstr(start, KEY_END) : NULL;
    if (!end)
        return err_set(DR_EUSAGE, "%s is not a valid OpenSSH private key: its '" KEY_END "' line is missing; "
                       "the file is cut short: restore it or make a new key (" MAKE_ED25519_HINT ")", path);
    start += strlen(KEY_BEGIN);
    if (sshsig_base64_decode(bin, bin_len, start, (size_t)(end - start)) != 0)
        return err_set(DR_EUSAGE, "%s is not a valid OpenSSH private key: its body is not base64; "
                       "restore it or make a new key (" MAKE_ED25519_HINT ")", path);
    return 0;
}

static int corrupt_key(const char *path, const char *what)
{
    return err_set(DR_EUSAGE, "%s is not a valid openssh-key-v1 private key (%s): restore it or make a new key ("
                   MAKE_ED25519_HINT ")", path, what);
}

/* "an RSA", "an ED25519", "a DSA": by the sound of the label's first letter. */
static const char *article(const char *label)
{
    return strchr("AEFHILMNORSXu", label[0]) ? "an" : "a";
}

/* The parts of the openssh-key-v1 container drctl looks at. */
typedef struct openssh_container {
    wire cipher, kdf, public_blob, private_section;
    uint32_t key_count;
} openssh_container;

static int parse_container(openssh_container *c, const unsigned char *bin, size_t len)
{
    if (len < KEY_MAGIC_LEN || memcmp(bin, KEY_MAGIC, KEY_MAGIC_LEN) != 0)
        return -1;
    wire w = { bin + KEY_MAGIC_LEN, len - KEY_MAGIC_LEN }, kdf_options;
    if (wire_string(&w, &c->cipher) != 0 || wire_string(&w, &c->kdf) != 0 ||
        wire_string(&w, &kdf_options) != 0 || wire_u32(&w, &c->key_count) != 0 || c->key_count != 1 ||
        wire_string(&w, &c->public_blob) != 0 || wire_string(&w, &c->private_section) != 0)
        return -1;
    return 0;
}

/* An unencrypted private section holding one ed25519 key: two equal check
 * words, the key, a comment, and padding 1, 2, 3... (PROTOCOL.key). On
 * success *seed points into the section. */
static const char *parse_ed25519_private(wire section, const wire *public_blob, const unsigned char **seed)
{
    uint32_t check1, check2;
    wire w = section, name, pk, sk, comment;
    if (section.left % KEY_CLEAR_BLOCK != 0)
        return "its private section is not padded to whole blocks";
    if (wire_u32(&w, &check1) != 0 || wire_u32(&w, &check2) != 0 || check1 != check2)
        return "its check words differ";
    if (wire_string(&w, &name) != 0 || !wire_is(&name, "ssh-ed25519"))
        return "its private key is not the ed25519 key its header names";
    if (wire_string(&w, &pk) != 0 || pk.left != ED25519_PUBLIC_LEN || wire_string(&w, &sk) != 0 ||
        sk.left != ED25519_SEED_LEN + ED25519_PUBLIC_LEN)
        return "its ed25519 key has the wrong length";
    if (memcmp(sk.p + ED25519_SEED_LEN, pk.p, ED25519_PUBLIC_LEN) != 0)
        return "its private key does not end with its public key";
    wire header = *public_blob, header_name, header_pk;
    if (wire_string(&header, &header_name) != 0 || wire_string(&header, &header_pk) != 0 ||
        header_pk.left != ED25519_PUBLIC_LEN || memcmp(header_pk.p, pk.p, ED25519_PUBLIC_LEN) != 0)
        return "its public key header does not match its private key";
    if (wire_string(&w, &comment) != 0)
        return "its comment is truncated";
    for (size_t i = 0; i < w.left; i++)
        if (w.p[i] != (unsigned char)(i + 1))
            return "its padding is wrong";
    *seed = sk.p;
    return NULL;
}

/* The EVP key for an ed25519 seed, checked against the public key the
 * file claims (a flipped bit anywhere in the seed shows here). */
static EVP_PKEY *ed25519_from_seed(const unsigned char *seed, const unsigned char *expected_public)
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, ED25519_SEED_LEN);
    unsigned char derived[ED25519_PUBLIC_LEN];
    size_t derived_len = sizeof derived;
    if (!pkey || EVP_PKEY_get_raw_public_key(pkey, derived, &derived_len) != 1 ||
        derived_len != ED25519_PUBLIC_LEN || memcmp(derived, expected_public, ED25519_PUBLIC_LEN) != 0) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return NULL;
    }
    return pkey;
}

static const key_type *container_key_type(const openssh_container *c)
{
    wire w = c->public_blob, name;
    if (wire_string(&w, &name) != 0)
        return NULL;
    return key_type_named(name.p, name.left);
}

static int refuse_other_type(const char *path, const key_type *t)
{
    const char *label = t ? t->label : "unknown";
    return err_set(DR_EUSAGE, "%s is %s %s key: drctl signs in-process only with unencrypted ed25519 keys; "
                   "such a key is signed through ssh-keygen, or make an ed25519 key: " MAKE_ED25519_HINT,
                   path, article(label), label);
}

static int refuse_encrypted(const char *path)
{
    return err_set(DR_EUSAGE, "%s has a passphrase: drctl signs in-process only with unencrypted ed25519 keys; "
                   "such a key is signed through ssh-keygen with the key held by ssh-agent (ssh-add %s), "
                   "or make an unencrypted ed25519 key: " MAKE_ED25519_HINT, path, path);
}

static sshsig_key *key_from_parts(EVP_PKEY *pkey, const wire *public_blob)
{
    sshsig_key *k = xcalloc(1, sizeof *k);
    k->pkey = pkey;
    k->public_blob_len = public_blob->left;
    k->public_blob = xmalloc(public_blob->left);
    memcpy(k->public_blob, public_blob->p, public_blob->left);
    k->public_text = public_text_of_blob(k->public_blob, k->public_blob_len);
    k->fingerprint = fingerprint_of_blob(k->public_blob, k->public_blob_len);
    return k;
}

/* The openssh-key-v1 binary to a key, or a refusal. */
static int key_from_container(sshsig_key **out, const unsigned char *bin, size_t len, const char *path)
{
    openssh_container c;
    if (parse_container(&c, bin, len) != 0)
        return corrupt_key(path, "its header is not openssh-key-v1 holding one key");
    if (!wire_is(&c.cipher, "none"))
        return refuse_encrypted(path);
    const key_type *t = container_key_type(&c);
    if (!t || t->kind != KIND_ED25519)
        return refuse_other_type(path, t);
    const char *why;
    if (!check_public_blob(c.public_blob.p, c.public_blob.left, &why))
        return corrupt_key(path, why);
    const unsigned char *seed = NULL;
    const char *bad = parse_ed25519_private(c.private_section, &c.public_blob, &seed);
    if (bad)
        return corrupt_key(path, bad);
    EVP_PKEY *pkey = ed25519_from_seed(seed, seed + ED25519_SEED_LEN);
    if (!pkey)
        return corrupt_key(path, "its private key does not give its public key");
    *out = key_from_parts(pkey, &c.public_blob);
    return 0;
}

static int refuse_by_kind(enum file_kind kind, const char *path)
{
    switch (kind) {
    case FILE_PUBLIC:
        return refuse_public_key_file(path);
    case FILE_PEM_PRIVATE:
        return err_set(DR_EUSAGE, "%s is a private key in the old PEM format, not openssh-key-v1: such a key is "
                       "signed through ssh-keygen, or rewrite it in the OpenSSH format (ssh-keygen -p -f %s) "
                       "or make an ed25519 key: " MAKE_ED25519_HINT, path, path);
    case FILE_PUTTY:
        return err_set(DR_EUSAGE, "%s is a PuTTY key: export it in the OpenSSH format "
                       "(puttygen %s -O private-openssh-new -o NEW_PATH) or make an ed25519 key: "
                       MAKE_ED25519_HINT, path, path);
    default:
        return err_set(DR_EUSAGE, "%s is not an OpenSSH private key (no '" KEY_BEGIN "' line): give the path of "
                       "the private key file, or make one: " MAKE_ED25519_HINT, path);
    }
}

/* The key in a file's text, judged in this order: what the file is, then
 * whether others may read it, then what the key is. */
static int key_from_text(sshsig_key **out, const char *text, mode_t mode, const char *path)
{
    enum file_kind kind = classify_key_text(text);
    if (kind == FILE_PUBLIC || kind == FILE_NOT_A_KEY)
        return refuse_by_kind(kind, path);
    int rc = refuse_unprotected(path, mode);
    if (rc != 0)
        return rc;
    if (kind != FILE_OPENSSH_PRIVATE)
        return refuse_by_kind(kind, path);
    unsigned char *bin = NULL;
    size_t bin_len = 0;
    rc = decode_openssh_armor(&bin, &bin_len, text, path);
    if (rc == 0)
        rc = key_from_container(out, bin, bin_len, path);
    if (bin) {
        OPENSSL_cleanse(bin, bin_len);
        free(bin);
    }
    return rc;
}

int sshsig_key_load(sshsig_key **out, const char *path)
{
    *out = NULL;
    char *text;
    size_t text_len;
    mode_t mode;
    int rc = read_key_file(&text, &text_len, &mode, path);
    if (rc != 0)
        return rc;
    rc = key_from_text(out, text, mode, path);
    wipe_text(text, text_len);
    return rc;
}

int sshsig_key_needs_ssh_keygen(const char *path)
{
    char *text;
    size_t text_len;
    mode_t mode;
    if (read_key_file(&text, &text_len, &mode, path) != 0) {
        err_clear();
        return 0;
    }
    int needs = 0;
    enum file_kind kind = classify_key_text(text);
    if (kind == FILE_PUBLIC || kind == FILE_PEM_PRIVATE) {
        needs = 1;
    } else if (kind == FILE_OPENSSH_PRIVATE) {
        unsigned char *bin = NULL;
        size_t bin_len = 0;
        openssh_container c;
        if (decode_openssh_armor(&bin, &bin_len, text, path) == 0 && parse_container(&c, bin, bin_len) == 0) {
            const key_type *t = container_key_type(&c);
            needs = !wire_is(&c.cipher, "none") || (t && t->kind != KIND_ED25519);
        }
        err_clear();
        if (bin) {
            OPENSSL_cleanse(bin, bin_len);
            free(bin);
        }
    }
    wipe_text(text, text_len);
    return needs;
}

void sshsig_key_free(sshsig_key *k)
{
    if (!k)
        return;
    /* EVP_PKEY_free clears the key's private bytes (OpenSSL's ecx key
     * free uses OPENSSL_secure_clear_free); every copy this file made
     * while loading was wiped with OPENSSL_cleanse already. */
    EVP_PKEY_free(k->pkey);
    free(k->public_blob);
    free(k->public_text);
    free(k->fingerprint);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

const char *sshsig_key_public(const sshsig_key *k)
{
    return k->public_text;
}

const char *sshsig_key_fingerprint(const sshsig_key *k)
{
    return k->fingerprint;
}

/* ---- signing -------------------------------------------------------------- */

static const EVP_MD *hash_named(const wire *name)
{
    if (wire_is(name, "sha512"))
        return EVP_sha512();
    if (wire_is(name, "sha256"))
        return EVP_sha256();
    return NULL;
}

/* What is signed (PROTOCOL.sshsig): the magic, the namespace, an empty
 * reserved string, the hash's name and the hash of the data. */
static void signed_data(buf *out, const char *ns, size_t ns_len, const char *hash_name, const EVP_MD *md,
                        const void *data, size_t len)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_Digest(data, len, digest, &digest_len, md, NULL);
    buf_append(out, SSHSIG_MAGIC, SSHSIG_MAGIC_LEN);
    put_string(out, ns, ns_len);
    put_string(out, "", 0);
    put_cstring(out, hash_name);
    put_string(out, digest, digest_len);
}

static char *armor(const unsigned char *blob, size_t len)
{
    char *b64 = sshsig_base64_encode(blob, len);
    size_t b64_len = strlen(b64);
    buf out = BUF_INIT;
    buf_puts(&out, ARMOR_BEGIN "\n");
    for (size_t i = 0; i < b64_len; i += ARMOR_LINE) {
        buf_append(&out, b64 + i, b64_len - i < ARMOR_LINE ? b64_len - i : ARMOR_LINE);
        buf_putc(&out, '\n');
    }
    buf_puts(&out, ARMOR_END "\n");
    free(b64);
    return buf_detach(&out);
}

static int check_namespace(const char *ns)
{
    if (!ns || !*ns)
        return err_set(DR_EUSAGE, "no signature namespace given: git signs in the namespace \"git\"");
    return 0;
}

int sshsig_sign(char **armored, const sshsig_key *k, const char *ns, const void *data, size_t len)
{
    *armored = NULL;
    int rc = check_namespace(ns);
    if (rc != 0)
        return rc;
    buf tbs = BUF_INIT;
    signed_data(&tbs, ns, strlen(ns), "sha512", EVP_sha512(), data, len);
    unsigned char sig[ED25519_SIG_LEN];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)tbs.data, tbs.len) == 1 &&
             sig_len == ED25519_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    buf_dispose(&tbs);
    if (!ok) {
        ERR_clear_error();
        return err_set(DR_EFAIL, "signing with %s failed inside OpenSSL", k->fingerprint);
    }
    buf sig_blob = BUF_INIT, blob = BUF_INIT;
    put_cstring(&sig_blob, "ssh-ed25519");
    put_string(&sig_blob, sig, sig_len);
    buf_append(&blob, SSHSIG_MAGIC, SSHSIG_MAGIC_LEN);
    put_u32(&blob, SSHSIG_VERSION);
    put_string(&blob, k->public_blob, k->public_blob_len);
    put_cstring(&blob, ns);
    put_string(&blob, "", 0);
    put_cstring(&blob, "sha512");
    put_string(&blob, sig_blob.data, sig_blob.len);
    *armored = armor((const unsigned char *)blob.data, blob.len);
    buf_dispose(&sig_blob);
    buf_dispose(&blob);
    return 0;
}

/* ---- verifying ------------------------------------------------------------ */

/* A copy of untrusted text fit for a message: printable ASCII, at most 64
 * characters. */
static void printable(char *out, size_t size, const wire *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->left && n + 5 < size && i < 64; i++) {
        unsigned char c = s->p[i];
        n += (size_t)snprintf(out + n, size - n, c >= 0x20 && c < 0x7f && c != '"' ? "%c" : "\\x%02x", c);
    }
    out[n] = '\0';
}

static int dearmor(unsigned char **blob, size_t *len, const char *armored)
{
    const char *p = armored;
    p += strspn(p, " \t\r\n");
    if (!starts_with(p, ARMOR_BEGIN))
        return err_set(DR_EFAIL, "bad signature armor: it does not start with '" ARMOR_BEGIN "'");
    p += strlen(ARMOR_BEGIN);
    const char *end = strstr(p, ARMOR_END);
    if (!end)
        return err_set(DR_EFAIL, "bad signature armor: its '" ARMOR_END "' line is missing");
    const char *after = end + strlen(ARMOR_END);
    if (after[strspn(after, " \t\r\n")] != '\0')
        return err_set(DR_EFAIL, "bad signature armor: text follows its '" ARMOR_END "' line");
    if (sshsig_base64_decode(blob, len, p, (size_t)(end - p)) != 0)
        return err_set(DR_EFAIL, "bad signature armor: its body is not base64");
    return 0;
}

/* The parts of an SSHSIG blob. */
typedef struct sshsig_blob {
    wire public_blob, ns, hash, signature;
} sshsig_blob;

static int parse_sshsig(sshsig_blob *s, const unsigned char *blob, size_t len)
{
    if (len < SSHSIG_MAGIC_LEN || memcmp(blob, SSHSIG_MAGIC, SSHSIG_MAGIC_LEN) != 0)
        return err_set(DR_EFAIL, "bad signature: it is not an SSHSIG (its magic is missing)");
    wire w = { blob + SSHSIG_MAGIC_LEN, len - SSHSIG_MAGIC_LEN }, reserved;
    uint32_t version;
    if (wire_u32(&w, &version) != 0)
        return err_set(DR_EFAIL, "bad signature: it is truncated");
    if (version != SSHSIG_VERSION)
        return err_set(DR_EFAIL, "bad signature: SSHSIG version %u is not supported (only %d)", version,
                       SSHSIG_VERSION);
    /* The reserved field is ignored, as the format asks. */
    if (wire_string(&w, &s->public_blob) != 0 || wire_string(&w, &s->ns) != 0 ||
        wire_string(&w, &reserved) != 0 || wire_string(&w, &s->hash) != 0 || wire_string(&w, &s->signature) != 0)
        return err_set(DR_EFAIL, "bad signature: it is truncated");
    if (w.left != 0)
        return err_set(DR_EFAIL, "bad signature: %zu bytes follow the SSHSIG", w.left);
    return 0;
}

static BIGNUM *bn_of(const wire *magnitude)
{
    return BN_bin2bn(magnitude->p, (int)magnitude->left, NULL);
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static EVP_PKEY *rsa_public(wire w)
{
    wire name, e, n;
    if (wire_string(&w, &name) != 0 || wire_mpint(&w, &e) != 0 || wire_mpint(&w, &n) != 0)
        return NULL;
    BIGNUM *bn_e = bn_of(&e), *bn_n = bn_of(&n);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pkey = NULL;
    if (bn_e && bn_n && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1 && (params = OSSL_PARAM_BLD_to_param(bld)))
        pkey = pkey_from_params("RSA", params);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_e);
    BN_free(bn_n);
    return pkey;
}

static EVP_PKEY *ecdsa_public(wire w, const key_type *t)
{
    wire name, curve, q;
    if (wire_string(&w, &name) != 0 || wire_string(&w, &curve) != 0 || wire_string(&w, &q) != 0)
        return NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)t->group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)q.p, q.left),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *pkey = pkey_from_params("EC", params);
    /* A point off the curve would make the check meaningless. */
    EVP_PKEY_CTX *check = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    if (pkey && (!check || EVP_PKEY_public_check(check) != 1)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(check);
    return pkey;
}

static EVP_PKEY *ed25519_public(wire w)
{
    wire name, pk;
    if (wire_string(&w, &name) != 0 || wire_string(&w, &pk) != 0)
        return NULL;
    return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk.p, pk.left);
}

/* 1 valid, 0 not, as EVP_DigestVerify says (errors count as not valid). */
static int evp_verify(EVP_PKEY *pkey, const EVP_MD *md, const unsigned char *sig, size_t sig_len,
                      const buf *tbs)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)tbs->data, tbs->len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static int signature_mismatch(void)
{
    return err_set(DR_EFAIL, "the signature does not match the data: the data or the signature was changed "
                   "after signing, or it was signed with another key");
}

static int verify_ed25519(EVP_PKEY *pkey, wire sig, const buf *tbs)
{
    wire name, bytes;
    if (wire_string(&sig, &name) != 0 || !wire_is(&name, "ssh-ed25519") || wire_string(&sig, &bytes) != 0 ||
        bytes.left != ED25519_SIG_LEN || sig.left != 0)
        return err_set(DR_EFAIL, "bad signature: its ed25519 signature is malformed");
    return evp_verify(pkey, NULL, bytes.p, bytes.left, tbs) ? 0 : signature_mismatch();
}

static int verify_rsa(EVP_PKEY *pkey, wire sig, const buf *tbs)
{
    wire name, bytes;
    if (wire_string(&sig, &name) != 0 || wire_string(&sig, &bytes) != 0 || sig.left != 0)
        return err_set(DR_EFAIL, "bad signature: its RSA signature is malformed");
    const EVP_MD *md = wire_is(&name, "rsa-sha2-512") ? EVP_sha512()
                       : wire_is(&name, "rsa-sha2-256") ? EVP_sha256() : NULL;
    if (!md) {
        char shown[300];
        printable(shown, sizeof shown, &name);
        return err_set(DR_EFAIL, "unsupported RSA signature algorithm \"%s\": only rsa-sha2-256 and rsa-sha2-512 "
                       "(ssh-keygen refuses SHA-1 ssh-rsa signatures too)", shown);
    }
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits < RSA_MIN_BITS)
        return err_set(DR_EFAIL, "the RSA key has %d bits, fewer than the %d ssh accepts", bits, RSA_MIN_BITS);
    /* ssh accepts a signature shorter than the modulus (leading zeros
     * dropped); OpenSSL wants it full length. */
    size_t mod_len = (size_t)EVP_PKEY_get_size(pkey);
    if (bytes.left > mod_len)
        return signature_mismatch();
    unsigned char *full = xcalloc(1, mod_len);
    memcpy(full + mod_len - bytes.left, bytes.p, bytes.left);
    int ok = evp_verify(pkey, md, full, mod_len, tbs);
    free(full);
    return ok ? 0 : signature_mismatch();
}

static int verify_ecdsa(EVP_PKEY *pkey, const key_type *t, wire sig, const buf *tbs)
{
    wire name, inner, r, s;
    if (wire_string(&sig, &name) != 0 || !wire_is(&name, t->name) || wire_string(&sig, &inner) != 0 ||
        sig.left != 0 || wire_mpint(&inner, &r) != 0 || wire_mpint(&inner, &s) != 0 || inner.left != 0)
        return err_set(DR_EFAIL, "bad signature: its %s signature is malformed", t->name);
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *bn_r = bn_of(&r), *bn_s = bn_of(&s);
    unsigned char *der = NULL;
    int der_len = -1;
    if (es && bn_r && bn_s && ECDSA_SIG_set0(es, bn_r, bn_s) == 1) {
        bn_r = bn_s = NULL;  /* es owns them now */
        der_len = i2d_ECDSA_SIG(es, &der);
    }
    BN_free(bn_r);
    BN_free(bn_s);
    ECDSA_SIG_free(es);
    int ok = der_len > 0 && evp_verify(pkey, ecdsa_md(t), der, (size_t)der_len, tbs);
    OPENSSL_free(der);
    return ok ? 0 : signature_mismatch();
}

static int verify_with_key(const key_type *t, const wire *public_blob, const wire *sig, const buf *tbs)
{
    EVP_PKEY *pkey = t->kind == KIND_ED25519 ? ed25519_public(*public_blob)
                     : t->kind == KIND_RSA  ? rsa_public(*public_blob)
                                            : ecdsa_public(*public_blob, t);
    if (!pkey) {
        ERR_clear_error();
        return err_set(DR_EFAIL, "bad signature: its %s public key is not valid", t->name);
    }
    int rc = t->kind == KIND_ED25519 ? verify_ed25519(pkey, *sig, tbs)
             : t->kind == KIND_RSA  ? verify_rsa(pkey, *sig, tbs)
                                    : verify_ecdsa(pkey, t, *sig, tbs);
    EVP_PKEY_free(pkey);
    return rc;
}

/* The checks on a parsed blob that need no cryptography: the namespace,
 * the hash, the key. */
static int check_parts(const sshsig_blob *s, const char *ns, const key_type **type, const EVP_MD **md)
{
    char shown[300];
    if (!wire_is(&s->ns, ns)) {
        printable(shown, sizeof shown, &s->ns);
        return err_set(DR_EFAIL, "wrong signature namespace: the signature was made for \"%s\", not \"%s\"", shown,
                       ns);
    }
    if (!(*md = hash_named(&s->hash))) {
        printable(shown, sizeof shown, &s->hash);
        return err_set(DR_EFAIL, "unsupported signature hash \"%s\": only sha256 and sha512", shown);
    }
    const char *why;
    *type = check_public_blob(s->public_blob.p, s->public_blob.left, &why);
    if (!*type) {
        wire w = s->public_blob, name = { (const unsigned char *)"", 0 };
        (void)wire_string(&w, &name);
        printable(shown, sizeof shown, &name);
        return err_set(DR_EFAIL, "unsupported or invalid signing key \"%s\" (%s): drctl verifies ssh-ed25519, "
                       "ssh-rsa and ecdsa-sha2-nistp256/384/521 keys", shown, why);
    }
    if ((*type)->kind == KIND_OTHER)
        return err_set(DR_EFAIL, "unsupported signing key type %s: drctl verifies ssh-ed25519, ssh-rsa and "
                       "ecdsa-sha2-nistp256/384/521 keys", (*type)->name);
    return 0;
}

int sshsig_verify(char **public_key, const char *armored, const char *ns, const void *data, size_t len)
{
    *public_key = NULL;
    if (!ns || !*ns)
        return err_set(DR_EFAIL, "no signature namespace given: git signs in the namespace \"git\"");
    unsigned char *blob;
    size_t blob_len;
    int rc = dearmor(&blob, &blob_len, armored ? armored : "");
    if (rc != 0)
        return rc;
    sshsig_blob s;
    const key_type *t = NULL;
    const EVP_MD *md = NULL;
    rc = parse_sshsig(&s, blob, blob_len);
    if (rc == 0)
        rc = check_parts(&s, ns, &t, &md);
    if (rc == 0) {
        buf tbs = BUF_INIT;
        wire hash_name = s.hash;
        signed_data(&tbs, ns, strlen(ns), wire_is(&hash_name, "sha512") ? "sha512" : "sha256", md, data, len);
        rc = verify_with_key(t, &s.public_blob, &s.signature, &tbs);
        buf_dispose(&tbs);
    }
    if (rc == 0)
        *public_key = public_text_of_blob(s.public_blob.p, s.public_blob.left);
    free(blob);
    return rc;
}

/* ---- signing through ssh-keygen ------------------------------------------------ */

/* The full path of an executable named name in PATH, or NULL. */
static char *find_in_path(const char *name)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/bin:/bin";
    for (const char *p = path;;) {
        size_t n = strcspn(p, ":");
        char *candidate = n ? xasprintf("%.*s/%s", (int)n, p, name) : xasprintf("./%s", name);
        struct stat st;
        if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0)
            return candidate;
        free(candidate);
        if (!p[n])
            return NULL;
        p += n + 1;
    }
}

/* ssh-keygen's stderr in one line for a message, without its chatter. */
static char *tool_words(const char *err)
{
    buf b = BUF_INIT;
    for (const char *line = err; line && *line;) {
        size_t n = strcspn(line, "\n");
        size_t trimmed = n;
        while (trimmed && (line[trimmed - 1] == '\r' || line[trimmed - 1] == ' '))
            trimmed--;
        if (trimmed && strncmp(line, "Signing data on standard input", trimmed) != 0 &&
            strspn(line, "@") < trimmed) {
            if (b.len)
                buf_puts(&b, "; ");
            buf_append(&b, line, trimmed);
        }
        line += n + (line[n] == '\n');
    }
    return b.len ? buf_detach(&b) : xstrdup("(it printed nothing)");
}

/* The public key text ssh-keygen will look for in the agent, when the
 * file tells it without a passphrase; NULL otherwise. */
static char *public_text_of_file(const char *text, enum file_kind kind)
{
    if (kind == FILE_PUBLIC) {
        unsigned char *blob;
        size_t len;
        const char *why;
        if (sshsig_public_key_decode(&blob, &len, text, &why) != 0)
            return NULL;
        char *out = public_text_of_blob(blob, len);
        free(blob);
        return out;
    }
    if (kind != FILE_OPENSSH_PRIVATE)
        return NULL;
    unsigned char *bin = NULL;
    size_t bin_len = 0;
    char *out = NULL;
    openssh_container c;
    if (decode_openssh_armor(&bin, &bin_len, text, "") == 0 && parse_container(&c, bin, bin_len) == 0)
        out = public_text_of_blob(c.public_blob.p, c.public_blob.left);
    err_clear();
    if (bin) {
        OPENSSL_cleanse(bin, bin_len);
        free(bin);
    }
    return out;
}

/* Whether an openssh-key-v1 file's key has a passphrase. */
static int openssh_file_encrypted(const char *text)
{
    unsigned char *bin = NULL;
    size_t bin_len = 0;
    openssh_container c;
    int encrypted = decode_openssh_armor(&bin, &bin_len, text, "") == 0 && parse_container(&c, bin, bin_len) == 0 &&
                    !wire_is(&c.cipher, "none");
    err_clear();
    if (bin) {
        OPENSSL_cleanse(bin, bin_len);
        free(bin);
    }
    return encrypted;
}

static int run_tool(proc_result *res, char **argv, const char *auth_sock, const void *data, size_t len)
{
    char *env_entry = auth_sock ? xasprintf("SSH_AUTH_SOCK=%s", auth_sock) : NULL;
    char *env[] = { env_entry, NULL };
    proc_request req = {
        .argv = argv,
        .env = env_entry ? env : NULL,
        .stdin_data = data,
        .stdin_len = len,
        .timeout = SSH_KEYGEN_TIMEOUT,
        .output_limit = 1 << 20,
    };
    int rc = proc_run(res, &req);
    free(env_entry);
    return rc;
}

/* Whether one of the lines of `ssh-add -L` is the key blob. */
static int listed(const char *lines, const unsigned char *blob, size_t blob_len)
{
    for (const char *line = lines; line && *line;) {
        unsigned char *other;
        size_t other_len;
        const char *why;
        if (sshsig_public_key_decode(&other, &other_len, line, &why) == 0) {
            int same = other_len == blob_len && memcmp(other, blob, blob_len) == 0;
            free(other);
            if (same)
                return 1;
        }
        line += strcspn(line, "\n");
        line += *line == '\n';
    }
    return 0;
}

/* Whether the agent at auth_sock holds public_text (by `ssh-add -L`): 1,
 * 0, or -1 when that cannot be told (no ssh-add), left to ssh-keygen. */
static int agent_holds(const char *auth_sock, const char *public_text, char **problem)
{
    *problem = NULL;
    unsigned char *blob;
    size_t blob_len;
    const char *why;
    char *ssh_add = find_in_path("ssh-add");
    if (!ssh_add || sshsig_public_key_decode(&blob, &blob_len, public_text, &why) != 0) {
        free(ssh_add);
        return -1;
    }
    char *argv[] = { ssh_add, "-L", NULL };
    proc_result res;
    int held = -1;
    if (run_tool(&res, argv, auth_sock, NULL, 0) == 0) {
        /* Exit 1 is an agent without keys ("The agent has no identities."). */
        if (res.exit_code == 0 || res.exit_code == 1)
            held = listed(res.out, blob, blob_len);
        else {
            *problem = tool_words(res.err);
            held = 0;
        }
        proc_result_dispose(&res);
    } else {
        err_clear();
    }
    free(blob);
    free(ssh_add);
    return held;
}

/* A key ssh-keygen can only use through the agent: refuses unless the
 * agent is there and (as far as can be told) holds it, so that ssh-keygen
 * never stops to ask for a passphrase. */
static int require_agent(const char *path, const char *public_text, const char *reason)
{
    const char *auth_sock = getenv("SSH_AUTH_SOCK");
    if (!auth_sock || !*auth_sock)
        return err_set(DR_EUSAGE, "%s %s, so ssh-keygen can sign with it only through ssh-agent, and SSH_AUTH_SOCK "
                       "is not set: start an agent (eval \"$(ssh-agent)\") and add the key (ssh-add %s)",
                       path, reason, path);
    if (!public_text)
        return err_set(DR_EUSAGE, "%s %s and its public key cannot be read without the passphrase, so whether "
                       "ssh-agent holds it cannot be checked: rewrite it in the OpenSSH format (ssh-keygen -p -f %s) "
                       "and add it to the agent (ssh-add %s)", path, reason, path, path);
    char *problem = NULL;
    int held = agent_holds(auth_sock, public_text, &problem);
    if (held == 0) {
        char *fp = NULL;
        if (sshsig_fingerprint_of(&fp, public_text) != 0)
            err_clear();
        int rc = problem
                     ? err_set(DR_EUSAGE, "%s %s, so ssh-keygen can sign with it only through ssh-agent, and the "
                               "agent at SSH_AUTH_SOCK=%s does not answer (%s): start one (eval \"$(ssh-agent)\") and "
                               "add the key (ssh-add %s)", path, reason, auth_sock, problem, path)
                     : err_set(DR_EUSAGE, "%s %s, so ssh-keygen can sign with it only through ssh-agent, and the "
                               "agent does not hold it (%s): add it with ssh-add %s", path, reason,
                               fp ? fp : "?", path);
        free(fp);
        free(problem);
        return rc;
    }
    return 0;
}

/* The checks made before ssh-keygen runs, so that the user reads why in
 * drctl's words and ssh-keygen never waits on a prompt. */
static int check_key_for_ssh_keygen(const char *path)
{
    char *text;
    size_t text_len;
    mode_t mode;
    int rc = read_key_file(&text, &text_len, &mode, path);
    if (rc != 0)
        return rc;
    enum file_kind kind = classify_key_text(text);
    if (kind == FILE_NOT_A_KEY || kind == FILE_PUTTY) {
        rc = refuse_by_kind(kind, path);
    } else if (kind == FILE_PUBLIC) {
        char *pub = public_text_of_file(text, kind);
        rc = pub ? require_agent(path, pub, "is a public key")
                 : err_set(DR_EUSAGE, "%s is a public key of a kind drctl cannot read: give the private key file",
                           path);
        free(pub);
    } else if ((rc = refuse_unprotected(path, mode)) == 0) {
        int encrypted = kind == FILE_OPENSSH_PRIVATE ? openssh_file_encrypted(text)
                                                     : strstr(text, "ENCRYPTED") != NULL;
        if (encrypted) {
            char *pub = public_text_of_file(text, kind);
            rc = require_agent(path, pub, "has a passphrase");
            free(pub);
        }
    }
    wipe_text(text, text_len);
    return rc;
}

int sshsig_sign_with_ssh_keygen(char **armored, const char *key_path, const char *ns, const void *data, size_t len)
{
    *armored = NULL;
    int rc = check_namespace(ns);
    if (rc != 0)
        return rc;
    char *ssh_keygen = find_in_path("ssh-keygen");
    if (!ssh_keygen)
        return err_set(DR_EUSAGE, "ssh-keygen is not installed: install openssh-client (it signs with %s)",
                       key_path);
    rc = check_key_for_ssh_keygen(key_path);
    if (rc != 0) {
        free(ssh_keygen);
        return rc;
    }
    char *argv[] = { ssh_keygen, "-Y", "sign", "-n", (char *)ns, "-f", (char *)key_path, NULL };
    proc_result res;
    rc = run_tool(&res, argv, getenv("SSH_AUTH_SOCK"), data, len);
    free(ssh_keygen);
    if (rc != 0)
        return rc;
    if (res.timed_out) {
        rc = err_set(DR_EFAIL, "ssh-keygen -Y sign -f %s did not finish in %.0f s: a security key may be waiting "
                     "for a touch", key_path, SSH_KEYGEN_TIMEOUT);
    } else if (res.exit_code != 0 || !starts_with(res.out, ARMOR_BEGIN)) {
        char *words = tool_words(res.err);
        rc = err_set(DR_EFAIL, "ssh-keygen -Y sign -f %s failed (exit %d): %s", key_path, res.exit_code, words);
        free(words);
    } else {
        *armored = xstrdup(res.out);
    }
    proc_result_dispose(&res);
    return rc;
}
