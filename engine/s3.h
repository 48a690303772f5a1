/* s3: S3-compatible object storage over libcurl (CURLOPT_AWS_SIGV4), for
 * the dump module's exports.
 *
 * Configured like the AWS tools: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN, AWS_REGION (or AWS_DEFAULT_REGION, default
 * us-east-1), and an endpoint for S3-compatible services in
 * AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (path-style requests; default
 * https://s3.REGION.amazonaws.com). Objects are named by URLs
 * s3://bucket/key. Uploads larger than one part (8 MiB) are multipart, one
 * part in memory at a time; every upload is checked afterwards (the
 * object's size and ETag against the local file's MD5s) and carries the
 * file's sha256 as metadata. Nothing is ever overwritten.
 *
 * Keys may hold any character: they are percent-encoded in URLs as SigV4
 * signs them, and S3's XML answers are read with expat (entities decoded;
 * a DOCTYPE, or an answer over 8 MiB, refused). A listing stops with an
 * error when a page is truncated with no token or repeats a token. */
#ifndef DRCTL_S3_H
#define DRCTL_S3_H

#include "buf.h"

#include <curl/curl.h>
#include <stddef.h>

typedef struct s3_object {
    char *key;
    long long size;
    char *last_modified; /* as the service says it (ISO 8601) */
} s3_object;

/* 1 when text starts with s3:// */
int s3_is_url(const char *text);

/* Uploads path to url (s3://bucket/key) with the file's sha256 (hex) as
 * metadata; refuses when the object exists. progress may be NULL. */
int s3_upload(const char *path, const char *url, const char *sha256,
              void (*progress)(void *ud, long long done, long long total), void *ud);

/* *exists: whether the object is there (HEAD). */
int s3_exists(int *exists, const char *url);

/* Downloads url to path (which must not exist). */
int s3_download(const char *url, const char *path);

/* The objects under url (s3://bucket/prefix), every page. */
int s3_list(s3_object **objects, size_t *count, const char *url);
void s3_objects_free(s3_object *objects, size_t count);

int s3_delete(const char *url);

/* ---- SigV4, as every request above is signed --------------------------------
 * libcurl computes the signature (CURLOPT_AWS_SIGV4); drctl gives it the
 * scope and credentials, the payload's hash, and a URL already in SigV4's
 * canonical form. tests/unit/s3_test.c checks the whole against AWS's
 * published vectors. */

typedef struct s3_signer {
    const char *region;
    const char *service; /* "s3" for every request drctl sends */
    const char *key_id;
    const char *secret;
    const char *token;   /* the session token, or NULL */
} s3_signer;

/* Appends text to out percent-encoded as SigV4 signs it: every byte but
 * A-Z a-z 0-9 - _ . ~ (and '/' when keep_slash) as %XX, upper-case. Keys go
 * into paths and values into queries this way, so that what is sent is
 * what is signed. */
void s3_escape(buf *out, const char *text, int keep_slash);

/* hex gets the SHA-256 of the payload in lower-case hex, as
 * x-amz-content-sha256 carries it. */
void s3_payload_sha256(char hex[65], const void *body, size_t len);

/* Makes h sign its request: the provider "aws:amz:REGION:SERVICE" and the
 * key go to libcurl, and *headers gets x-amz-security-token (with a token)
 * and, when payload_sha256 is not NULL, x-amz-content-sha256, which S3
 * wants signed and this libcurl does not add. The caller sets
 * CURLOPT_HTTPHEADER to *headers and frees it after the transfer. libcurl
 * signs at the moment the request goes, or at the time an X-Amz-Date
 * header already in *headers names. */
void s3_sign_request(struct curl_slist **headers, CURL *h, const s3_signer *signer, const char *payload_sha256);

#endif
