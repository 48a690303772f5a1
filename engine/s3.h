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

#endif
