/*
 * AWS Signature Version 4.
 *
 * The signature is an HMAC chain: the secret derives a key per day, region
 * and service, which signs a "string to sign" holding the hash of the
 * canonical request. The canonical request is the part where signers go
 * wrong, so it follows the published rules literally: method, path, query
 * parameters sorted by name then value, headers lower-cased, trimmed and
 * sorted, the list of signed header names, and the hex SHA-256 of the body.
 *
 * Only what Route 53 needs is implemented: the path and the query values are
 * taken as already encoded (Route 53 paths are plain ASCII).
 */
#include "hc_sigv4.h"
#include "mr_alloc.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void hc_sigv4_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(p, n, md);
    hex(md, sizeof md, out);
}

void hc_sigv4_amz_date(long long t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    /* Four-digit years fill the 16 characters exactly. A later time (or one
     * gmtime cannot convert) gives an empty date, which the provider refuses,
     * rather than what strftime leaves in a buffer too small for it. */
    if (!gmtime_r(&tt, &tm) || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) == 0)
        out[0] = '\0';
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len);
}

typedef struct kv {
    char *name;
    char *value;
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Lower-case the name; trim the value and squeeze runs of spaces, as the rules say. */
static kv header_kv(const char *name, const char *value)
{
    kv h = {mr_strdup(name), mr_malloc(strlen(value) + 1)};
    for (char *p = h.name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    const char *s = value;
    while (*s == ' ' || *s == '\t')
        s++;
    char *o = h.value;
    bool space = false;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t') {
            space = true;
            continue;
        }
        if (space && o != h.value)
            *o++ = ' ';
        space = false;
        *o++ = *s;
    }
    *o = '\0';
    return h;
}

static void canonical_query(const char *q, mr_buf *out)
{
    if (!q || !*q)
        return;
    kv params[64];
    size_t n = 0;
    char *copy = mr_strdup(q), *save = NULL;
    for (char *tok = strtok_r(copy, "&", &save); tok && n < 64; tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = '\0';
        params[n].name = tok;
        params[n].value = eq ? eq + 1 : "";
        n++;
    }
    qsort(params, n, sizeof *params, kv_cmp);
    for (size_t i = 0; i < n; i++)
        mr_buf_printf(out, "%s%s=%s", i ? "&" : "", params[i].name, params[i].value);
    free(copy);
}

int hc_sigv4_sign(const hc_sigv4_req *r, mr_buf *auth, mr_buf *creq_out, mr_buf *sts_out)
{
    size_t nh = r->n_headers + 2;
    kv *h = mr_calloc(nh, sizeof *h);
    h[0] = header_kv("host", r->host);
    h[1] = header_kv("x-amz-date", r->amz_date);
    for (size_t i = 0; i < r->n_headers; i++)
        h[i + 2] = header_kv(r->headers[i].name, r->headers[i].value);
    qsort(h, nh, sizeof *h, kv_cmp);

    mr_buf creq = MR_BUF_INIT, signed_names = MR_BUF_INIT, sts = MR_BUF_INIT;
    mr_buf_printf(&creq, "%s\n%s\n", r->method, r->path && *r->path ? r->path : "/");
    canonical_query(r->query, &creq);
    mr_buf_putc(&creq, '\n');
    for (size_t i = 0; i < nh; i++) {
        mr_buf_printf(&creq, "%s:%s\n", h[i].name, h[i].value);
        mr_buf_printf(&signed_names, "%s%s", i ? ";" : "", h[i].name);
    }
    char body_hash[65];
    hc_sigv4_sha256_hex(r->body ? r->body : "", r->body ? r->body_len : 0, body_hash);
    mr_buf_printf(&creq, "\n%s\n%s", signed_names.data, body_hash);

    char day[9];
    snprintf(day, sizeof day, "%.8s", r->amz_date);
    char creq_hash[65];
    hc_sigv4_sha256_hex(creq.data, creq.len, creq_hash);
    mr_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", r->amz_date, day,
                  r->region, r->service, creq_hash);

    /* kSecret -> kDate -> kRegion -> kService -> kSigning. */
    mr_buf k = MR_BUF_INIT;
    mr_buf_printf(&k, "AWS4%s", r->secret_key);
    unsigned char kdate[32], kregion[32], kservice[32], ksigning[32], sig[32];
    hmac(k.data, k.len, day, kdate);
    hmac(kdate, 32, r->region, kregion);
    hmac(kregion, 32, r->service, kservice);
    hmac(kservice, 32, "aws4_request", ksigning);
    hmac(ksigning, 32, sts.data, sig);
    char sighex[65];
    hex(sig, 32, sighex);
    mr_buf_printf(auth,
                  "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                  "Signature=%s",
                  r->access_key, day, r->region, r->service, signed_names.data, sighex);
    if (creq_out)
        mr_buf_append(creq_out, creq.data, creq.len);
    if (sts_out)
        mr_buf_append(sts_out, sts.data, sts.len);
    for (size_t i = 0; i < nh; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
    mr_buf_free(&creq);
    mr_buf_free(&signed_names);
    mr_buf_free(&sts);
    /* The derived key material should not linger in freed memory. */
    OPENSSL_cleanse(k.data, k.len);
    OPENSSL_cleanse(ksigning, sizeof ksigning);
    mr_buf_free(&k);
    return 0;
}
