/*
 * AWS Signature Version 4 request signing, with OpenSSL's SHA-256 and HMAC.
 * Used by the Route 53 provider; checked against AWS's published examples.
 */
#ifndef HC_SIGV4_H
#define HC_SIGV4_H

#include "mr_buf.h"

#include <stddef.h>

typedef struct hc_sigv4_header {
    const char *name; /* any case; signed in lower case */
    const char *value;
} hc_sigv4_header;

typedef struct hc_sigv4_req {
    const char *method;
    const char *path;  /* already URI-encoded, e.g. "/2013-04-01/hostedzone/Z1/rrset/" */
    const char *query; /* raw query string without '?', or NULL */
    const char *host;
    /* Extra headers to sign besides host and x-amz-date (content-type, ...). */
    const hc_sigv4_header *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
    const char *amz_date; /* "YYYYMMDDTHHMMSSZ" */
    const char *region;   /* "us-east-1" */
    const char *service;  /* "route53" */
    const char *access_key;
    const char *secret_key;
} hc_sigv4_req;

/**
 * Sign `r`. Appends the Authorization header value to `auth`; when not NULL,
 * the canonical request and the string to sign are appended to `creq` and
 * `sts` (for tests and debugging). Returns 0, or -1 when a header is malformed.
 */
int hc_sigv4_sign(const hc_sigv4_req *r, mr_buf *auth, mr_buf *creq, mr_buf *sts);

/** Hex SHA-256 of `p` (65 bytes with the NUL). */
void hc_sigv4_sha256_hex(const void *p, size_t n, char out[65]);
/** Format a time (seconds since the epoch) as an x-amz-date value (17 bytes with the NUL);
 * "" for a time past the year 9999. */
void hc_sigv4_amz_date(long long t, char out[17]);

#endif
