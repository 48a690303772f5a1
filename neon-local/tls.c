#include "tls.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEN_YEARS (10L * 365 * 24 * 3600)

/* The contents of a memory BIO, written durably to path with mode (a new
 * file beside it, then renamed: a crash never leaves half a key). */
static int write_bio(BIO *bio, const char *path, mode_t mode)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len <= 0)
        return err_set(DR_EFAIL, "cannot encode %s", path);
    int rc = fsio_write_durable_mode(path, data, (size_t)len, mode);
    if (rc == 0)
        rc = nl_pg_own(path);
    return rc;
}

static int add_extension(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A self-signed certificate for key: random serial, valid from now for ten
 * years, its own CA. NULL on failure. */
static X509 *self_signed(EVP_PKEY *key)
{
    X509 *cert = X509_new();
    BIGNUM *serial = BN_new();
    X509_NAME *name = cert ? X509_get_subject_name(cert) : NULL;
    int ok = cert && serial && name && X509_set_version(cert, 2) && BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) &&
             X509_gmtime_adj(X509_getm_notBefore(cert), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(cert), TEN_YEARS) && X509_set_pubkey(cert, key) &&
             X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"neon-local", -1, -1, 0) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"neon-local", -1, -1, 0) &&
             X509_set_issuer_name(cert, name);
    ok = ok && add_extension(cert, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
         add_extension(cert, NID_key_usage, "critical,digitalSignature,keyCertSign") == 0 &&
         add_extension(cert, NID_ext_key_usage, "serverAuth") == 0 &&
         add_extension(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") == 0 &&
         add_extension(cert, NID_subject_key_identifier, "hash") == 0 && X509_sign(cert, key, EVP_sha256()) > 0;
    BN_free(serial);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* A new key and certificate: the key first, so that a certificate on disk
 * always has its key beside it. */
static int make_pair(const char *cert_path, const char *key_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = key ? self_signed(key) : NULL;
    BIO *key_pem = BIO_new(BIO_s_mem()), *cert_pem = BIO_new(BIO_s_mem());
    int rc = 0;
    if (!cert || !key_pem || !cert_pem || !PEM_write_bio_PrivateKey(key_pem, key, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509(cert_pem, cert))
        rc = err_set(DR_EFAIL, "cannot make a TLS key and certificate with OpenSSL");
    if (rc == 0)
        rc = write_bio(key_pem, key_path, 0600);
    if (rc == 0)
        rc = write_bio(cert_pem, cert_path, 0644);
    /* The key's text stays in memory no longer than needed. */
    if (key_pem) {
        char *data = NULL;
        long len = BIO_get_mem_data(key_pem, &data);
        if (len > 0)
            OPENSSL_cleanse(data, (size_t)len);
    }
    BIO_free(key_pem);
    BIO_free(cert_pem);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* A key that is there: readable by its owner only, owned by the servers'
 * user (a copied folder may have lost both). */
static int check_key(const char *key_path)
{
    struct stat st;
    if (stat(key_path, &st) != 0)
        return err_set(DR_EFAIL, "cannot read %s: %s", key_path, strerror(errno));
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return err_set(DR_EUSAGE, "%s can be read by other users (mode %03o); it is the servers' TLS key: "
                       "chmod 600 %s", key_path, (unsigned)(st.st_mode & 0777), key_path);
    return nl_pg_own(key_path);
}

int nl_tls_prepare(const char *data_dir, char **cert_path, char **key_path)
{
    *cert_path = *key_path = NULL;
    char absolute[PATH_MAX];
    if (!realpath(data_dir, absolute))
        return err_set(DR_EFAIL, "cannot resolve %s: %s", data_dir, strerror(errno));
    char *dir = xasprintf("%s/tls", absolute);
    char *cert = xasprintf("%s/server.crt", dir), *key = xasprintf("%s/server.key", dir);
    /* Its own folder, the servers' user's alone. */
    int rc = fsio_mkdirs(dir, 0700);
    if (rc == 0 && chmod(dir, 0700) != 0)
        rc = err_set(DR_EFAIL, "cannot chmod %s: %s", dir, strerror(errno));
    if (rc == 0)
        rc = nl_pg_own(dir);
    if (rc == 0)
        rc = fsio_exists(cert) && fsio_exists(key) ? check_key(key) : make_pair(cert, key);
    if (rc == 0)
        rc = nl_pg_own(cert);
    free(dir);
    if (rc) {
        free(cert);
        free(key);
        return rc;
    }
    *cert_path = cert;
    *key_path = key;
    return 0;
}
